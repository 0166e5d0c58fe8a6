"""How ingest and search scale with the catalogue: yes_complete grown 1x, 4x, 16x (benchmarks/grow.py).

    python benchmarks/scale.py --data ../shared/data/yes/yes_complete [--sizes 1,4,16] [--layouts plain,int8]
    python benchmarks/scale.py --data ... --quick        # a 4 % slice grown 1x and 2x, to try it out

For every size and layout: the `ingest` command in a fresh process and SONGSEARCH_HOME (embedded
store), its seconds and peak resident memory per stage (from its own summary table) and of the
whole process, the store's size on disk and the bytes of dense vectors it keeps in RAM, then
in-process p50/p95 of `similar` with and without `--artist`, and recall@10 against exact search.
Results accumulate in a JSON file (``--results``), so sizes can be run one at a time; the
markdown table (``--out``) and the plot (``--plot``) are written from all results in it.
Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench import bench_recall, percentiles
from grow import grow
from process_tree import TreePeak, memory_cgroup

from search.clikit import markdown_table

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LAYOUTS = {"plain": [], "int8": ["--quantization", "int8"]}
ABOUT = """
Regenerate with `make scale SONGSEARCH_DATA=DIR` (`SCALE_SIZES=1,4` for fewer sizes); the results
accumulate in docs/scale.json, so sizes can be run one at a time.

- Catalogues: `benchmarks/grow.py` grows yes_complete N times (seed 13): every song gets N - 1
  twins with new titles (half the words drawn from all titles) and new artists, every playlist is
  replayed through each copy's twins with 10 % of its songs taken from other copies.
- Ingest: the `ingest` command with the default settings into a fresh SONGSEARCH_HOME (embedded
  store), wall time and the peak RSS of the ingest process and its quality-gate process together
  (sampled every 50 ms; rows measured before the gate had its own process are the ingest's alone); the per-stage seconds and peak RSS are the
  ones `ingest` prints. RSS counts the pages of the store's memory-mapped files the process has
  touched, page cache the kernel takes back under pressure; its anonymous part (sampled the same
  way, rows from session 11 on) is the memory that cannot be. `--memory-limit GIB` runs each
  ingest in a memory cgroup of that limit (page cache included): the ingest needs no more than
  the limit if it completes under it. The plain row starts from an empty title-embedding cache; the int8 row
  (`ingest --quantization int8`) from the plain row's cache, so it encodes no titles. From
  0affa12 the gate judges a seeded sample of 12,000 playlists of a bigger dataset (4x and 16x;
  before, every playlist), and songs_meta above 250,000 songs is built with HNSW ef_construct
  128 instead of 64 (`LARGE_INDEXES` in search/contract.py).
- Store: bytes under SONGSEARCH_HOME/qdrant; vectors in RAM: the dense vectors a searching
  process keeps in memory: the int8 copies, and the stored vectors Edge does not leave on disk.
  From the rows measured in session 11 (2026-12-07) both collections keep int8 copies in every
  layout (before, songs_w2v only), and `--quantization int8` leaves songs_w2v's stored float16
  vectors on disk too (read only to rescore). Rows measured before counted, per segment, its int8
  copies when it had them, else its stored vectors (songs_meta float16, or float32 before
  2026-12-07).
- Search: in-process `SongSearch`, {queries} seeded random songs of songs_w2v after one warm-up
  call, `--artist` being the song's own artist. Recall@10: the served answers against exact search
  (quantization ignored) for {queries} songs drawn uniformly: the default `similar` request on
  songs_w2v, and the dense vector alone on songs_meta (HNSW). The load average says how busy the
  machine was while searching (the latencies depend on it; ingest was not running then).
- Code: the commit a row was measured at. A row measured again with newer code keeps its earlier
  peaks in the table that compares them.
"""


def grown_dataset(source: Path, factor: int, workdir: Path, shrink: float) -> Path:
    """The grown dataset, generated once per (source, factor, shrink) and reused."""
    out = workdir / (f"data-x{factor}" + ("" if shrink == 1 else f"-{shrink:g}"))
    stamp = out / ".grown"
    wanted = json.dumps({"source": str(source.resolve()), "factor": factor, "shrink": shrink})
    if not (stamp.is_file() and stamp.read_text() == wanted):
        shutil.rmtree(out, ignore_errors=True)
        grow(source, out, factor, shrink=shrink)
        stamp.write_text(wanted)
    return out


def run_ingest(data: Path, home: Path, layout: str, memory_limit_gib: float | None = None) -> dict:
    """The `ingest` command in a fresh process: wall seconds, peak RSS (and its anonymous part),
    and its stage table; with ``memory_limit_gib``, run in a memory cgroup of that limit."""
    env = {**os.environ, "SONGSEARCH_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("QDRANT_URL", None)
    home.mkdir(parents=True, exist_ok=True)
    limited = memory_cgroup(int(memory_limit_gib * 2**30)) if memory_limit_gib else contextlib.nullcontext((None, None))
    with limited as (join, group_peak), open(home / "ingest.out", "w+") as out, open(home / "ingest.err", "w+") as err:
        start = time.perf_counter()
        enter = (lambda: join.write_text(str(os.getpid()))) if join else None
        process = subprocess.Popen([str(BIN / "ingest"), "--data", str(data), "--quiet", *LAYOUTS[layout]], env=env, stdout=out, stderr=err, preexec_fn=enter)
        with TreePeak(process.pid) as tree:  # ingest and its gate process together
            _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        limit = {"memory_limit_gib": memory_limit_gib, "cgroup_peak_mib": group_peak() / 2**20} if join else {}
        out.seek(0), err.seek(0)
        summary, errors = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        killed = " (killed: over --memory-limit?)" if join and os.waitstatus_to_exitcode(status) == -9 else ""
        sys.exit(f"ingest of {data} failed{killed}:\n{summary}\n{errors}")
    stages = parse_stages(summary)
    # ingest restarts the peak at each stage (so the kernel's final peak is the last stage's);
    # the sampled tree catches the gate process's peak on top of the ingest's
    peak = max([usage.ru_maxrss / 1024, tree.mib] + [mib for _, mib in stages.values()])
    return {"wall_s": seconds, "peak_rss_mib": peak, "peak_anon_mib": tree.anon_mib, **limit, "stages": stages, "summary": summary.strip()}


def parse_stages(summary: str) -> dict[str, list[float]]:
    """{stage: [seconds, peak RSS MiB]} from the table `ingest` prints (total left out)."""
    lines = summary.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("stage")) + 2
    stages = {}
    for line in lines[start:]:
        *name, seconds, peak = line.split()
        if name == ["total"]:
            break
        stages[" ".join(name)] = [float(seconds), float(peak)]
    return stages


def store_bytes(home: Path) -> tuple[int, int, int]:
    """(bytes on disk under the embedded store, bytes of dense vectors kept in RAM, bytes of the
    same dense vectors unquantized in float32): per segment, its int8 copies when it has them, and
    its stored dense vectors unless its collection leaves them on disk (memory "cold")."""
    root = home / "qdrant"
    disk = sum(p.stat().st_blocks * 512 for p in root.rglob("*") if p.is_file())
    in_ram = float32 = 0
    for collection in root.glob("collections/*"):
        vectors = json.loads((collection / "edge_config.json").read_text())["vectors"][""]
        cold, widen = vectors.get("memory") == "cold", 2 if vectors.get("datatype") == "float16" else 1
        for storage in collection.glob("segments/*/vector_storage"):
            files = [p for p in storage.rglob("*") if p.is_file()]
            quantized = sum(p.stat().st_size for p in files if p.name == "quantized.data")
            dense = sum(p.stat().st_size for p in files if not p.name.startswith(("quantized", "deleted", "flags")) and p.suffix not in (".json",))
            in_ram += quantized + (0 if cold else dense)
            float32 += dense * widen
    return disk, in_ram, float32


def measure_search(home: Path, queries: int) -> dict:
    """p50/p95 (ms) of `similar` with and without --artist, and recall@10 against exact search."""
    os.environ["SONGSEARCH_HOME"] = str(home)
    os.environ.pop("QDRANT_URL", None)
    from search.api import SongSearch

    timings = {}
    with SongSearch() as songs:
        ids = songs.store.scroll_ids("songs_w2v")
        sample = random.Random(1).sample(ids, min(queries, len(ids)))
        artists = {i: p.payload["artist"] for i, p in songs.store.retrieve("songs_w2v", sample).items()}
        cases = {"similar": lambda i: songs.similar(i), "similar --artist": lambda i: songs.similar(i, artist=artists[i])}
        for name, call in cases.items():
            call(sample[0])  # warm-up: opens the shards
            samples = []
            for song in sample:
                start = time.perf_counter()
                call(song)
                samples.append((time.perf_counter() - start) * 1000)
            timings[name] = percentiles(samples)
    load = os.getloadavg()[0]  # other processes on the machine: the latencies depend on it
    recall = {f"{row[0]} {row[1]}": float(row[3]) for row in bench_recall(queries, mixes=("uniform over songs",))}
    return {"ms": timings, "recall": recall, "load": load}


def home_of(workdir: Path, factor: int, layout: str) -> Path:
    return workdir / f"home-x{factor}-{layout}"


def measure(source: Path, factor: int, layout: str, args) -> dict:
    data = grown_dataset(source, factor, args.workdir, args.shrink)
    home = home_of(args.workdir, factor, layout)
    shutil.rmtree(home, ignore_errors=True)
    plain_cache = home_of(args.workdir, factor, "plain") / "cache"
    if layout != "plain" and plain_cache.is_dir():  # titles encoded once per size
        shutil.copytree(plain_cache, home / "cache")
    print(f"x{factor} {layout}: ingest ...", file=sys.stderr, flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    result = {"factor": factor, "layout": layout, "commit": commit or "?", **run_ingest(data, home, layout, args.memory_limit)}
    counts = re.search(r"(\d+) songs, (\d+) playlists", result["summary"])
    result["songs"], result["playlists"] = int(counts[1]), int(counts[2])
    result["disk_bytes"], result["vector_ram_bytes"], result["vector_float32_bytes"] = store_bytes(home)
    print(f"x{factor} {layout}: search ...", file=sys.stderr, flush=True)
    result.update(measure_search(home, args.queries))
    return result


def mib(n: float) -> str:
    return f"{n / 2**20:.0f}"


def ms(pair) -> str:
    return f"{pair[0]:.2f} / {pair[1]:.2f}"


def fit(results: list[dict], value) -> tuple[float, float]:
    """(intercept, slope per song) of the least-squares line of ``value(result)`` against songs."""
    songs = [r["songs"] for r in results]
    if len(set(songs)) < 2:
        return 0.0, value(results[0]) / songs[0]
    slope, intercept = np.polyfit(songs, [value(r) for r in results], 1)
    return float(intercept), float(slope)


def at(results: list[dict], value, songs: int) -> float:
    intercept, slope = fit(results, value)
    return intercept + slope * songs


MEASURES = {  # what the growth and projection tables fit: (column, value of a result, shown as)
    "ingest s": (lambda r: r["wall_s"], "{:.0f}"),
    "ingest peak RSS MiB": (lambda r: r["peak_rss_mib"], "{:.0f}"),
    "store on disk MiB": (lambda r: r["disk_bytes"] / 2**20, "{:.0f}"),
    "dense vectors in RAM MiB": (lambda r: r["vector_ram_bytes"] / 2**20, "{:.0f}"),
}


def growth(results: list[dict], project: int | None) -> list[str]:
    """Per layout, the fitted cost of a million more songs, and (``project``) the lines at that size."""
    by_layout = {layout: [r for r in results if r["layout"] == layout] for layout in LAYOUTS}
    by_layout = {k: v for k, v in by_layout.items() if v}
    per_million = [[layout, *(f"{fit(rs, value)[1] * 1e6:.0f}" for value, _ in MEASURES.values())] for layout, rs in by_layout.items()]
    parts = ["Growth per million songs (slope of the least-squares line through the sizes measured):",
             markdown_table(["layout", *(f"{name} per million songs" for name in MEASURES)], per_million)]
    if project:
        base = min(results, key=lambda r: r["factor"])
        songs = base["songs"] * project // base["factor"]
        rows = []
        for layout, rs in by_layout.items():
            rows.append([layout, *(shown.format(at(rs, value, songs)) for value, shown in MEASURES.values())])
        stage_rows = []
        plain = by_layout.get("plain", [])
        for name in dict.fromkeys(n for r in plain for n in r["stages"]):
            have = [r for r in plain if name in r["stages"]]
            stage_rows.append([name, *(f"{at(have, lambda r, i=i: r['stages'][name][i], songs):.0f}" for i in (0, 1))])
        parts += [f"Projected at {project}x ({songs:,} songs) by those lines, **not measured**:",
                  markdown_table(["layout", *MEASURES], rows),
                  f"Projected seconds and peak RSS of each stage at {project}x, plain, **not measured**:",
                  markdown_table(["stage", "seconds", "peak RSS MiB"], stage_rows)]
    return parts


def earlier(results: list[dict]) -> list[str]:
    """Rows measured again with newer code: the stages' peak RSS (MiB) then and now."""
    again = [r for r in results if "previous" in r]
    if not again:
        return []
    def peak(stages: dict, name: str) -> str:
        return f"{stages[name][1]:.0f}" if name in stages else "-"  # a stage the code of then or now did not have

    rows = [[name, *(f"{peak(r['previous']['stages'], name)} / {peak(r['stages'], name)}" for r in again)]
            for name in dict.fromkeys(n for r in again for n in r["stages"])]
    rows.append(["whole ingest", *(f"{r['previous']['peak_rss_mib']:.0f} / {r['peak_rss_mib']:.0f}" for r in again)])
    head = [f"{r['factor']}x {r['layout']}: {r['previous'].get('commit', 'earlier')} / {r['commit']}" for r in again]
    return ["Peak RSS (MiB) of the rows measured again with newer code, then / now:", markdown_table(["stage", *head], rows)]


def report(results: list[dict], command: str, project: int | None = None) -> str:
    """docs/scale.md from every result: the measurements, the stages, growth and projection, the targets."""
    rows = [[f"{r['factor']}x", f"{r['songs']:,}", f"{r['playlists']:,}", r["layout"], r.get("commit", "?"), f"{r['wall_s']:.0f}", f"{r['peak_rss_mib']:.0f} / " + (f"{r['peak_anon_mib']:.0f}" if "peak_anon_mib" in r else "-"),
             mib(r["disk_bytes"]), mib(r["vector_ram_bytes"]), f"{r['load']:.1f}" if "load" in r else "-", ms(r["ms"]["similar"]), ms(r["ms"]["similar --artist"]),
             f"{r['recall']['songs_w2v `similar` (fused)']:.3f}", f"{r['recall']['songs_meta dense vector']:.3f}"] for r in results]
    main = markdown_table(["size", "songs", "playlists", "layout", "code", "ingest s (wall)", "ingest peak RSS / of it anonymous MiB", "store on disk MiB",
                           "dense vectors in RAM MiB", "load (1 min) while searching", "similar p50 / p95 ms", "similar --artist p50 / p95 ms",
                           "recall@10 similar", "recall@10 songs_meta"], rows)
    stage_names = list(dict.fromkeys(name for r in results for name in r["stages"]))
    stage_rows = [[name, *(("{:.1f} / {:.0f}".format(*r["stages"][name])) if name in r["stages"] else "-" for r in results)] for name in stage_names]
    stages = markdown_table(["stage: seconds / peak RSS MiB", *(f"{r['factor']}x {r['layout']}" for r in results)], stage_rows)
    return "\n\n".join([f"# Scale\n\n`{command}`, {os.cpu_count()} cores.\n{ABOUT.format(queries=results[0]['queries'])}",
                        "![ingest time and memory against catalogue size](img/scale.png)", main,
                        "Seconds and peak RSS (MiB) of each ingest stage:", stages, *earlier(results), *growth(results, project),
                        "Against the targets of issue 13 (2 cores), at the largest size measured:", targets(results)]) + "\n"


def targets(results: list[dict]) -> str:
    plain = {r["factor"]: r for r in results if r["layout"] == "plain"}
    int8 = {r["factor"]: r for r in results if r["layout"] == "int8"}
    largest = max(plain)
    big, rows = plain[largest], []

    def row(what, target, value, met):
        rows.append([what, target, value, "met" if met else "missed"])

    if 1 in plain and largest > 1:
        ratio = big["wall_s"] / plain[1]["wall_s"]
        row(f"ingest time at {largest}x / at 1x", f"at most {largest * 1.2:g}", f"{ratio:.1f}", ratio <= largest * 1.2)
    limit = big.get("memory_limit_gib")
    if limit:  # the memory it needs: it ran in a cgroup that reclaims page cache to stay under the limit
        row(f"ingest peak memory at {largest}x", "at most 8 GiB", f"ran in a memory cgroup of {limit:g} GiB (peak RSS {big['peak_rss_mib'] / 1024:.2f} GiB, "
            f"{big['peak_anon_mib'] / 1024:.2f} GiB of it anonymous)", limit <= 8)
    else:
        row(f"ingest peak RSS at {largest}x", "at most 8 GiB", f"{big['peak_rss_mib'] / 1024:.2f} GiB", big["peak_rss_mib"] <= 8 * 1024)
    row(f"in-process `similar` p50 at {largest}x", "at most 5 ms", f"{big['ms']['similar'][0]:.2f} ms", big["ms"]["similar"][0] <= 5)
    recall = min(big["recall"].values())
    row(f"recall@10 at {largest}x (lower of the two)", "at least 0.95", f"{recall:.3f}", recall >= 0.95)
    if largest in int8:
        q = int8[largest]
        if "vector_float32_bytes" in q:  # rows measured from 2026-12-07 (session 11)
            shrink = q["vector_float32_bytes"] / max(1, q["vector_ram_bytes"])
            row(f"int8: dense vectors in RAM at {largest}x, unquantized float32 / int8", "at least 3", f"{shrink:.1f}", shrink >= 3)
        shrink = big["vector_ram_bytes"] / max(1, q["vector_ram_bytes"])
        row(f"int8: dense vectors in RAM at {largest}x, plain / int8", "at least 3", f"{shrink:.1f}", shrink >= 3)
        recall = min(q["recall"].values())
        row(f"int8: recall@10 at {largest}x (lower of the two)", "at least 0.95", f"{recall:.3f}", recall >= 0.95)
    return markdown_table(["target", "wanted", "measured", ""], rows)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for layout, style in (("plain", "o-"), ("int8", "s--")):
        rs = sorted((r for r in results if r["layout"] == layout), key=lambda r: r["songs"])
        if not rs:
            continue
        songs = [r["songs"] / 1e6 for r in rs]
        left.plot(songs, [r["wall_s"] for r in rs], style, label=f"ingest, {layout}")
        right.plot(songs, [r["peak_rss_mib"] / 1024 for r in rs], style, label=f"ingest peak RSS, {layout}")
        right.plot(songs, [r["vector_ram_bytes"] / 2**30 for r in rs], style, alpha=0.5, label=f"dense vectors in RAM, {layout}")
        if layout == "plain":
            encode = [r["stages"].get("encode metadata", [0])[0] for r in rs]
            left.plot(songs, encode, "^:", label="of which encode metadata, plain")
            left.plot(songs, [rs[0]["wall_s"] * r["songs"] / rs[0]["songs"] for r in rs], "k:", alpha=0.4, label="linear from the smallest")
    left.set(xlabel="songs (millions)", ylabel="seconds", title="ingest time (wall)")
    right.set(xlabel="songs (millions)", ylabel="GiB", title="memory")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def shown_arguments(argv: list[str]) -> list[str]:
    """The arguments that say what was measured (not where files went, nor a re-render)."""
    hidden, skip, out = {"--workdir", "--results", "--out", "--plot"}, False, []
    for arg in argv:
        if skip or arg in ("--report-only", "--search-only"):
            skip = False
            continue
        if arg in hidden:
            skip = True
            continue
        out.append(Path(arg).name if arg.startswith("/") else arg)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=os.environ.get("SONGSEARCH_DATA"), required=not os.environ.get("SONGSEARCH_DATA"))
    parser.add_argument("--sizes", help="catalogue sizes, times the dataset's [default: 1,4,16; --quick: 1,2]")
    parser.add_argument("--layouts", default="plain,int8", help="plain (default ingest) and/or int8 (--quantization int8)")
    parser.add_argument("--quick", action="store_true", help="a 4 %% slice of the dataset, 30 queries, results in --workdir")
    parser.add_argument("--queries", type=int, help="query songs for latency and recall [default: 200; --quick: 30]")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "songsearch-scale", help="grown datasets and homes")
    parser.add_argument("--results", type=Path, help="JSON the results accumulate in [default: docs/scale.json; --quick: in --workdir]")
    parser.add_argument("--out", type=Path, help="markdown report [default: docs/scale.md; --quick: in --workdir]")
    parser.add_argument("--report-only", action="store_true", help="measure nothing: write --out and --plot from --results")
    parser.add_argument("--search-only", action="store_true", help="measure the searches again on the homes in --workdir (a quieter machine)")
    parser.add_argument("--project", type=int, help="also project the fitted lines to this size (e.g. 16 when it was not run)")
    parser.add_argument("--memory-limit", type=float, metavar="GIB", help="run each ingest in a memory cgroup of this limit (needs root)")
    parser.add_argument("--plot", type=Path, help="PNG plot [default: docs/img/scale.png; --quick: in --workdir]")
    args = parser.parse_args()
    docs = args.workdir if args.quick else ROOT / "docs"
    args.results, args.out, args.plot = (args.results or docs / "scale.json", args.out or docs / "scale.md", args.plot or docs / "img" / "scale.png")
    args.queries = args.queries or (30 if args.quick else 200)
    args.shrink = 0.04 if args.quick else 1.0
    try:
        sizes = [int(s) for s in (args.sizes or ("1,2" if args.quick else "1,4,16")).split(",")]
        layouts = args.layouts.split(",")
    except ValueError:
        parser.error("--sizes takes whole numbers, e.g. 1,4,16")
    if any(s < 1 for s in sizes) or not set(layouts) <= set(LAYOUTS):
        parser.error(f"--sizes must be at least 1 and --layouts among {', '.join(LAYOUTS)}")
    if not (args.data / "song_hash.txt").is_file():
        parser.error(f"{args.data} is not a dataset directory (no song_hash.txt)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    for factor in [] if args.report_only else sizes:
        for layout in sorted(layouts, key=list(LAYOUTS).index):  # plain first: int8 reuses its title cache
            key = f"{factor}x {layout}"
            if args.search_only:
                results[key].update(measure_search(home_of(args.workdir, factor, layout), args.queries))
            else:
                previous = results.get(key)
                results[key] = measure(args.data, factor, layout, args)
                if previous and previous.get("commit") != results[key]["commit"]:  # kept, to compare the code's
                    results[key]["previous"] = {k: v for k, v in previous.items() if k != "previous"}
            results[key]["queries"] = args.queries
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(results, indent=1))
    ordered = sorted(results.values(), key=lambda r: (r["factor"], list(LAYOUTS).index(r["layout"])))
    command = " ".join(["benchmarks/scale.py", *shown_arguments(sys.argv[1:])])
    args.out.write_text(report(ordered, command, args.project))
    plot(ordered, args.plot)
    print(args.out.read_text())


if __name__ == "__main__":
    main()

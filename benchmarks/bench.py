"""Benchmark songsearch on a real dataset and print markdown tables.

    python benchmarks/bench.py --data ../shared/data/yes/yes_complete [--home DIR] [--queries 200]

Ingest runs as the `ingest` command in a fresh process (wall time end to end),
searches both in-process (p50/p95 over many queries) and as fresh `search`
processes.  Uses its own SONGSEARCH_HOME (default: a new temporary directory),
so the numbers start from an empty embedding cache.  Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from search.clikit import markdown_table

ABOUT = """
Regenerate with `make bench SONGSEARCH_DATA=DIR`. It ingests into a fresh SONGSEARCH_HOME (empty
title-embedding cache), with the default settings and the embedded store.

- Ingest: wall time of the `ingest` command, process start included. The re-ingest retrains on
  the same data (quality gate included; titles from the cache; `songs_meta` copied from the live
  version). The update adds 300 playlists resampled from the dataset, each with one of 10 new songs.
  The quality gate runs in its own process beside training and writing; its row is the time
  ingest still waited for the verdict, and its peak RSS is the gate process's own (the two
  processes' peaks add up).
- In-process: `SongSearch(warm=True)`, as `search serve` opens it, timed once its warm-up (the
  store's files read once, but the stored vectors songs_meta keeps on disk) has finished; 200
  seeded random songs of `songs_w2v`, after one warm-up call per row; `--artist` is the query
  song's own artist; metadata cold start uses real titles and artists. `similar --id` is the
  default answer: one Qdrant query fusing Word2Vec and co-play evidence. Three passes over all
  rows; a row shows the median of its passes' p50 and p95 (this VM's speed drifts by up to half
  for minutes at a time, and a pass per row spreads such a spell over all rows).
- Recall: served answers against exact search, on the version live at the end (which the update
  derived), for songs drawn uniformly and weighted by plays: each collection's dense vector alone,
  and the default `similar` request (both prefetches) with exact search. songs_w2v has no HNSW
  graph (search/contract.py `INDEXES`): a search scans int8 copies of its vectors and rescores
  the best with the stored ones, so only the int8 rounding can make it differ from exact.
- Fresh process: the `search` command, wall time.
- search serve: `search serve --workers 2` on 127.0.0.1, 16 keep-alive clients asking `/similar`
  for random songs (`benchmarks/serve_load.py`), on the same 2 cores as the server: closed loop
  (each client asks again at once: latency is clients / throughput), then open loop (the clients
  together offer 300 requests/s on fixed schedules; latency counted from when a request was due),
  steady and while `nice -n 19 ingest --update` (300 playlists) publishes a new version, the load
  kept on until it has (niced, as README.md advises on a serving machine, the ingest takes the
  cores the answers leave); then the page in headless
  Chromium: type a title, click the first song, time the neighbours' table (7 clicks).

How ingest time, memory, disk, latency and recall grow with the catalogue (1x, 4x, 16x, with and
without int8 quantization): [scale.md](scale.md), ![time and memory against size](img/scale.png)
(`make scale`).
"""
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
UPDATE_PLAYLISTS = 300
NEW_SONGS = 10


def run(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


#: passes over every in-process row; a row shows the median of its passes' p50 and p95
IN_PROCESS_PASSES = 3


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def write_update(data: Path, workdir: Path, seed: int = 7, new_songs: int = NEW_SONGS) -> tuple[Path, Path]:
    """300 playlists resampled from the dataset, each with one of ``new_songs`` brand-new songs."""
    lines = (data / "train.txt").read_text().splitlines()[2:]
    playlists = [line.split() for line in lines if len(line.split()) >= 2]
    first_new = max(int(line.split("\t")[0]) for line in (data / "song_hash.txt").read_text().splitlines() if line.strip()) + 1
    rng = random.Random(seed)
    chosen = rng.sample(playlists, UPDATE_PLAYLISTS)
    out = []
    for n, playlist in enumerate(chosen):
        songs = playlist[: rng.randint(10, 40)]
        if new_songs:
            songs.insert(rng.randrange(len(songs)), str(first_new + n % new_songs))
        out.append(" ".join(songs))
    update, songs_file = workdir / f"update-{seed}.txt", workdir / f"new_songs-{seed}.txt"
    update.write_text("\n".join(out) + "\n")
    songs_file.write_text("".join(f"{first_new + k}\tBrand New Song {k}\tNew Artist {k % 3}\n" for k in range(new_songs)))
    return update, songs_file


def bench_ingest(data: Path, env: dict, workdir: Path) -> tuple[list[list[str]], list[str]]:
    """Wall time of three ingests, and the summaries `ingest` printed (stage times)."""
    update, songs = write_update(data, workdir)
    runs = [
        ("full ingest, empty embedding cache", ["--data", str(data)]),
        ("re-ingest (retrain), embedding cache warm", ["--data", str(data)]),
        (f"ingest --update, {UPDATE_PLAYLISTS} playlists + {NEW_SONGS} new songs", ["--update", str(update), "--songs", str(songs)]),
    ]
    rows, summaries = [], []
    for name, args in runs:
        seconds, out = run([str(BIN / "ingest"), *args, "--quiet"], env)
        rows.append([name, f"{seconds:.1f}"])
        summaries.append(f"{name}:\n\n```\n{out.strip()}\n```")
    return rows, summaries


def bench_alias_switch(env: dict) -> list[list[str]]:
    os.environ.update(env)
    from ingest import publish as pub
    from search.store import open_store

    with open_store() as store:
        names = [v.name for v in pub.versions(store) if v.complete]
        live = pub.live_version(store)
        samples = []
        for _ in range(20):
            for target in (names[0], live):
                start = time.perf_counter()
                pub.switch_to(store, target)
                samples.append((time.perf_counter() - start) * 1000)
    p50, p95 = percentiles(samples)
    return [["alias switch (both aliases, atomic)", f"{p50:.2f} ms", f"{p95:.2f} ms"]]


def bench_in_process(queries: int) -> list[list[str]]:
    from search.api import SongSearch
    from search.contract import SongSearchError
    from search.find import Filters

    rows = []
    with SongSearch(warm=True) as songs:  # as `search serve` opens it, timed once warm
        songs.wait_warm()
        store = songs.store
        ids = store.scroll_ids("songs_w2v")
        rng = random.Random(1)
        sample = rng.sample(ids, min(queries, len(ids)))
        points = store.retrieve("songs_w2v", sample)
        artists = {i: p.payload["artist"] for i, p in points.items()}
        names = {i: (p.payload["title"], p.payload["artist"]) for i, p in points.items()}

        def by_name(name):
            try:
                return songs.similar(name[0], by=name[1])
            except SongSearchError:  # a title without a word ("?"): timed all the same
                return None

        def find(title):
            try:
                return songs.songs(title)
            except SongSearchError:
                return None

        contexts = [rng.sample(ids, 3) for _ in sample]
        meta_ids = store.scroll_ids("songs_meta")
        titles = [(p.payload["title"], p.payload["artist"]) for p in store.retrieve("songs_meta", rng.sample(meta_ids, len(sample))).values()]
        cases = [
            ("similar --id (fused)", lambda i, k: songs.similar(i)),
            ("similar --id --evidence w2v", lambda i, k: songs.similar(i, evidence="w2v")),
            ("similar --id --evidence coplay", lambda i, k: songs.similar(i, evidence="coplay")),
            ("similar --id --artist", lambda i, k: songs.similar(i, artist=artists[i])),
            ("similar --id --hybrid", lambda i, k: songs.similar_hybrid(i)),
            ("similar --id --hybrid --artist", lambda i, k: songs.similar_hybrid(i, artist=artists[i])),
            ("cold-start --context (3 ids)", lambda i, k: songs.cold_start(context=contexts[k])),
            ("cold-start --title --artist (warm)", lambda i, k: songs.cold_start(title=titles[k % len(titles)][0], artist=titles[k % len(titles)][1])),
            ("songs TITLE", lambda i, k: find(titles[k % len(titles)][0])),
            ("similar --song TITLE --by ARTIST", lambda i, k: by_name(names[i])),
            ("similar --id --tag rock", lambda i, k: songs.similar(i, filters=Filters(tags=("rock",)))),
            ("similar --id --tag metal --max-plays 50", lambda i, k: songs.similar(i, filters=Filters(tags=("metal",), max_plays=50))),
            ("similar --id --exclude-artist", lambda i, k: songs.similar(i, filters=Filters(exclude_artists=(artists[i],)))),
            ("similar --id --exclude-artist --min-plays 20", lambda i, k: songs.similar(i, filters=Filters(exclude_artists=(artists[i],), min_plays=20))),
            ("similar --id --per-artist 1", lambda i, k: songs.similar(i, per_artist=1)),
            ("similar --id --diversity 0.5", lambda i, k: songs.similar(i, diversity=0.5)),
            ("recommend --like (2 ids) --dislike (1 id)", lambda i, k: songs.recommend(contexts[k][:2], dislike=contexts[k][2:])),
            ("recommend --per-artist 1 --diversity 0.5", lambda i, k: songs.recommend(contexts[k][:2], dislike=contexts[k][2:], per_artist=1, diversity=0.5)),
            ("cold-start --context --per-artist 1", lambda i, k: songs.cold_start(context=contexts[k], per_artist=1)),
            ("tags", lambda i, k: songs.tags()),
        ]
        for name, call in cases:
            call(sample[0], 0)  # warm-up: opens shards, loads the encoder
        passes: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in cases}
        for _ in range(IN_PROCESS_PASSES):  # every row in every pass: a slow spell of the machine spreads over all
            for name, call in cases:
                samples = []
                for k, song_id in enumerate(sample):
                    start = time.perf_counter()
                    call(song_id, k)
                    samples.append((time.perf_counter() - start) * 1000)
                passes[name].append(percentiles(samples))
        for name, measured in passes.items():
            p50, p95 = (statistics.median(values) for values in zip(*measured))
            rows.append([name, f"{p50:.2f} ms", f"{p95:.2f} ms"])
    return rows


MIXES = ("uniform over songs", "weighted by plays")


def bench_recall(queries: int, mixes: tuple[str, ...] = MIXES) -> list[list[str]]:
    """recall@10 of the served (HNSW) answers against exact search: each collection's dense
    vectors, and the default fused `similar` query (its request with exact search), for query
    songs drawn as ``mixes`` say (uniformly, weighted by plays)."""
    from dataclasses import replace

    from search import query as core
    from search.api import SongSearch
    from search.contract import META_ALIAS, W2V_ALIAS
    from search.store import Nearest, PayloadFilter, Search

    def overlap(store, alias, request):
        served = {h.song_id for h in store.search(alias, request)}
        exact = {h.song_id for h in store.search(alias, replace(request, exact=True))}
        return len(served & exact) / max(1, len(exact))

    rows = []
    with SongSearch() as songs:
        store = songs.store
        for alias in (W2V_ALIAS, META_ALIAS):
            ids = store.scroll_ids(alias)
            rng = np.random.default_rng(3)
            samples = {MIXES[0]: rng.choice(ids, queries, replace=False)}
            if MIXES[1] in mixes:
                points = store.retrieve(alias, ids)
                plays = np.array([max(points[i].payload["plays"], 0) for i in ids], dtype=float)
                samples[MIXES[1]] = rng.choice(ids, queries, replace=False, p=plays / plays.sum())
            for mix in mixes:
                sample = samples[mix]
                found = store.retrieve(alias, [int(i) for i in sample], with_vectors=True)
                dense = [overlap(store, alias, Search((Nearest(p.vector),), 10, PayloadFilter().without_ids([i]))) for i, p in found.items()]
                rows.append([alias, "dense vector", mix, f"{np.mean(dense):.3f}"])
                if alias == W2V_ALIAS:
                    fused = [
                        overlap(store, alias, core.w2v_request(core.probe_of(p), 10, PayloadFilter().without_ids([i])))
                        for i, p in found.items()
                    ]
                    rows.append([alias, "`similar` (fused)", mix, f"{np.mean(fused):.3f}"])
    return rows


def bench_fresh_process(env: dict, repeats: int) -> list[list[str]]:
    commands = [
        ["similar", "--id", "2172"],
        ["similar", "--id", "2172", "--artist", "iron maiden", "--limit", "5"],
        ["similar", "--id", "2172", "--hybrid"],
        ["songs", "enter sandman"],
        ["similar", "--song", "Fade To Black"],
        ["cold-start", "--context", "2172,1922,2849"],
        ["cold-start", "--title", "Master Of Puppets", "--artist", "Metallica"],
    ]
    rows = []
    for args in commands:
        samples = [run([str(BIN / "search"), *args], env)[0] for _ in range(repeats)]
        p50, _ = percentiles(samples)
        rows.append(["search " + " ".join(f'"{a}"' if " " in a else a for a in args), f"{p50:.2f} s", f"{max(samples):.2f} s"])
    return rows


#: the offered load of the open-loop runs: the rate `search serve` is meant to sustain on 2 cores
SERVE_RATE = 300


def bench_serve(data: Path, env: dict, workdir: Path, seconds: float) -> tuple[list[list[str]], list[str]]:
    """`search serve --workers 2` under 16 clients (benchmarks/serve_load.py): closed loop, open loop,
    and open loop while an `ingest --update` publishes a new version; how soon it answers /health;
    the page's click to neighbours (benchmarks/serve_page.py) where a browser is installed."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    update, _ = write_update(data, workdir, seed=8, new_songs=0)

    def serve(workers: int) -> tuple[subprocess.Popen, float]:
        start = time.perf_counter()
        server = subprocess.Popen([str(BIN / "search"), "serve", "--port", str(port), "--workers", str(workers)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                    if response.status == 200:
                        return server, time.perf_counter() - start
            except OSError:
                if server.poll() is not None or time.perf_counter() - start > 60:
                    server.kill()
                    raise SystemExit("search serve did not start") from None
                time.sleep(0.05)

    rows = []
    for workers in (1, 2):
        server, ready = serve(workers)
        rows.append([f"`search serve --workers {workers}`: first 200 from /health after start", f"{ready:.2f} s"])
        if workers == 1:
            server.terminate()
            server.wait()
    load = [sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), "--url", url, "--clients", "16", "--seconds", str(seconds)]
    paced = [*load, "--rate", str(SERVE_RATE)]
    runs = [("steady, closed loop", load), (f"steady, open loop at {SERVE_RATE} requests/s", paced),
            (f"open loop at {SERVE_RATE} requests/s while `ingest --update` publishes", [*paced, "--publish", f"nice -n 19 {BIN / 'ingest'} --update {update} --quiet"])]
    sys.path.insert(0, str(ROOT))
    from tests import browser

    no_browser = browser.missing()
    try:
        outputs = [(name, run(command, env)[1]) for name, command in runs]
        page = [sys.executable, str(ROOT / "benchmarks" / "serve_page.py"), "--url", url, "--repeats", "7"]
        outputs.append(("the page in headless Chromium (benchmarks/serve_page.py)", f"not measured: {no_browser}" if no_browser else run(page, env)[1]))
    finally:
        server.terminate()
        server.wait()
    return rows, [f"{name}:\n\n```\n{out.strip()}\n```" for name, out in outputs]


def machine_speed() -> tuple[float, float]:
    """Milliseconds (median of 5) of two fixed workloads, to compare this machine's speed between
    runs: a pure-Python loop, and a float32 matrix-vector product the shape of songs_w2v."""
    matrix, vector = np.ones((75_000, 256), dtype=np.float32), np.ones(256, dtype=np.float32)

    def timed(work) -> float:
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            work()
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    return timed(lambda: sum(range(1_000_000))), timed(lambda: matrix @ vector)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("SONGSEARCH_DATA"), required=not os.environ.get("SONGSEARCH_DATA"))
    parser.add_argument("--home", help="SONGSEARCH_HOME to use (default: a new temporary directory)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5, help="fresh-process runs per command")
    parser.add_argument("--skip-ingest", action="store_true", help="search benchmarks only, on what --home holds")
    parser.add_argument("--serve-seconds", type=float, default=30, help="seconds of load on search serve, per run")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="songsearch-bench-"))
    home = Path(args.home) if args.home else workdir / "home"
    env = {**os.environ, "SONGSEARCH_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("QDRANT_URL", None)
    print(f"# Benchmarks\n\n`{' '.join(sys.argv)}` on {Path(args.data).name}, {os.cpu_count()} cores.\n{ABOUT}")
    summaries, speed = [], [("at the start", machine_speed())]
    if not args.skip_ingest:
        rows, summaries = bench_ingest(Path(args.data), env, workdir)
        print(markdown_table(["ingest", "seconds (wall)"], rows) + "\n")
        print(markdown_table(["operation", "p50", "p95"], bench_alias_switch(env)) + "\n")
    os.environ.update(env)
    speed.append(("before the in-process searches", machine_speed()))
    print(markdown_table([f"in-process, {args.queries} queries", "p50", "p95"], bench_in_process(args.queries)) + "\n")
    print(markdown_table(["collection", "query", f"songs ({args.queries})", "recall@10, served vs exact"], bench_recall(args.queries)) + "\n")
    print(markdown_table([f"fresh process, {args.repeats} runs", "p50 wall", "max wall"], bench_fresh_process(env, args.repeats)) + "\n")
    rows, load = bench_serve(Path(args.data), env, workdir, args.serve_seconds)
    print("## search serve\n\n" + markdown_table(["start", "seconds"], rows) + "\n\n" + "\n\n".join(load) + "\n")
    speed.append(("at the end", machine_speed()))
    print("## This machine's speed\n\nTwo fixed workloads, median of 5 (compare runs by them: this VM's speed drifts):\n\n"
          + markdown_table(["when", "pure-Python loop, 10^6 additions", "float32 75,000 x 256 matrix-vector product"],
                           [[when, f"{py:.1f} ms", f"{mv:.1f} ms"] for when, (py, mv) in speed]) + "\n")
    if summaries:
        print("\n## What `ingest` printed\n\n" + "\n\n".join(summaries))


if __name__ == "__main__":
    main()

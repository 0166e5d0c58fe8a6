"""``ingest evaluate`` (:func:`run`), docs/quality.md and its plots, from one evaluation run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ingest.dataset import load_dataset
from ingest.evaluation.continuation import MAX_QUERIES, SEEDS
from ingest.evaluation.metrics import HEADLINE_K, KS, METRICS, MethodResult, format_rows
from ingest.evaluation.runner import DEFAULT_LABEL, Evaluation, evaluate
from ingest.gate import FLOOR_LIFT, SAMPLED_SUFFIX, GateVerdict, quality_gate
from ingest.train import DEFAULT_PRESET, PRESETS, W2VSettings
from search.clikit import format_table, markdown_table
from search.contract import Settings
from search.encoder import MetadataEncoder, TitleCache
from search.query import BRIDGE_NEIGHBOURS

#: Tags the song map colours by (the first of them a song has, in this order).
MAP_TAGS = ("hip-hop", "rnb", "country", "metal", "jazz", "dance", "classic rock", "alternative", "soul", "pop", "rock")
LABELS = {"hit": "next-song hit rate", "coplay": "co-play precision", "tags": "tag coherence", "coverage": "catalogue coverage"}
SEED_LABEL = "seed"
MAP_MIN_PLAYS = 20


def labelled_settings(presets: Sequence[str] = ()) -> dict[str, W2VSettings]:
    """Label -> settings to train: the default preset is labelled ``default`` and comes first."""
    names = sorted(dict.fromkeys(presets or (DEFAULT_PRESET, SEED_LABEL)), key=lambda n: n != DEFAULT_PRESET)
    return {(DEFAULT_LABEL if n == DEFAULT_PRESET else n): PRESETS[n] for n in names}


def run(data: str | None = None, *, holdout: float = 0.1, seed: int = 7, k: int = HEADLINE_K, queries: int = 5000, cold: int = 500,
        presets: Sequence[str] = (), meta: bool = True, report: str | Path | None = None, tuning: str | Path | None = None,
        gate: bool = True, encoder=None, progress: Callable[[str], None] | None = None) -> Evaluation:
    """What ``ingest evaluate`` does: every method on one split; with ``report``, the quality
    gate's timing (``gate``) and docs/quality.md (with ``tuning``, a search's JSON, if the file exists)."""
    say = progress or (lambda message: None)
    env = Settings.from_env()
    dataset = load_dataset(data, env.home / "datasets")
    if meta and encoder is None:
        encoder = MetadataEncoder(cache=TitleCache(env.cache_dir))
    settings = labelled_settings(presets)
    evaluation = evaluate(dataset, settings, holdout, seed, queries, cold, tuple(sorted(set(KS) | {k})), encoder if meta else None, say)
    if meta and encoder.cache is not None:  # written if it grew; its vectors let go of either way
        encoder.cache.save()
    if report:
        verdict = None
        if gate:
            say("timing the quality gate ...")
            verdict = quality_gate(dataset, next(iter(settings.values())))
        tuned = json.loads(Path(tuning).read_text()) if tuning and Path(tuning).is_file() else None
        if tuned is not None and not all(isinstance(t, dict) and "settings" in t for t in tuned.get("trials") or [None]):
            tuned = None  # e.g. `ingest tune`'s fusion JSON
        if tuning and tuned is None:
            say(f"{tuning}: no Word2Vec search there; the report leaves it out")
        write_report(evaluation, Path(report), tuned, verdict)
        say(f"wrote {report}")
    return evaluation


def json_payload(evaluation: Evaluation, k: int) -> dict:
    """``Evaluation.to_dict()`` with ``k``; NaN (a metric with nothing to average) becomes null."""

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {key: clean(v) for key, v in x.items()}
        return [clean(v) for v in x] if isinstance(x, (list, tuple)) else x

    return clean({**evaluation.to_dict(), "k": k})


def summary(evaluation: Evaluation, k: int) -> str:
    e = evaluation
    out = [format_table(*format_rows(e.table("warm", k), k))]
    if e.cold:
        out += ["", f"cold start ({e.data['cold_queries']} songs hidden from training):", format_table(*format_rows(e.table("cold", k), k))]
    times = ", ".join(f"{label} {s:.0f} s" for label, s in e.train_seconds.items())
    out += ["", f"{e.data['queries']} queries, {e.data['heldout_playlists']} held-out playlists; training {times}; total {e.seconds:.0f} s"]
    return "\n".join(out)


# --------------------------------------------------------------------------- report


def _f(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and math.isfinite(a) and math.isfinite(b) else "-"


def _figure(ncols: int, size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=size)
    return plt, fig, axes


def _plot_vs_k(results: list[MethodResult], path: Path, title: str) -> None:
    plt, fig, axes = _figure(4, (17, 4.2))
    for ax, metric in zip(axes, METRICS):
        for r in results:
            ks = sorted(r.metrics[metric])
            ax.plot(ks, [r.metrics[metric][k] for k in ks], marker="o", markersize=3, label=r.name)
        ax.set_title(LABELS[metric])
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_map(evaluation: Evaluation, label: str, path: Path, seed: int = 0) -> bool:
    """PCA of the normalised Word2Vec vectors of songs with a map tag and enough training plays."""
    data, (index, vectors) = evaluation.split, evaluation.vectors[label]
    rows, colours = [], []
    for row, song in enumerate(np.asarray(index).tolist()):
        if data.train_plays[song] >= MAP_MIN_PLAYS:
            tag = next((n for n, t in enumerate(MAP_TAGS) if t in data.tags[song]), None)
            if tag is not None:
                rows.append(row)
                colours.append(tag)
    if len(rows) < 3:
        return False
    x = np.asarray(vectors, np.float64)[rows]
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x -= x.mean(axis=0)
    xy = x @ np.linalg.svd(x, full_matrices=False)[2][:2].T
    colours = np.array(colours)
    order = np.random.default_rng(seed).permutation(len(rows))
    plt, fig, ax = _figure(1, (8, 7))
    palette = ["#1f77b4", "#d62728", "#ff7f0e", "#7f7f7f", "#2ca02c", "#e377c2", "#8c564b", "#17becf", "#9467bd", "#bcbd22", "#000000"]
    for number, tag in enumerate(MAP_TAGS):
        sel = order[colours[order] == number]
        if len(sel):
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.55, color=palette[number], label=f"{tag} ({len(sel)})")
    ax.legend(markerscale=4, fontsize=8, loc="best")
    ax.set_title(f"Word2Vec song vectors ({label}, normalised), first two principal components\n"
                 f"songs with >= {MAP_MIN_PLAYS} training plays, coloured by their first tag in the list")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _settings_diff(a: Mapping, b: Mapping) -> str:
    return ", ".join(f"{k} {a[k]} -> {b[k]}" for k in a if k not in ("workers", "seed") and a[k] != b[k]) or "none"


def _headline(e: Evaluation, first: str, k: int) -> list[str]:
    rows = {r.name: r for r in e.warm}
    d = rows[first]
    base = [r for r in e.warm if r.name == "item-item cosine" or r.name.startswith("RP3beta")]
    names = " / ".join(f"`{r.name}`" for r in [d] + base)

    def row(metric: str) -> str:
        return f"{metric}@{k} " + " / ".join(_f(r.at(metric, k)) for r in [d] + base)

    out = [
        f"- The served default (`{first}`: `search similar`, Word2Vec and co-play fused in one Qdrant query) against "
        f"the co-play baselines: coplay@{k} {_f(d.at('coplay', k))}, "
        + ", ".join(f"**{_ratio(d.at('coplay', k), r.at('coplay', k))}** `{r.name}` ({_f(r.at('coplay', k))})" for r in base)
        + f"; {names}: {row('hit')}, {row('tags')}, {row('coverage')}."
    ]
    w2v, coplay = rows.get(f"{first}, Word2Vec only"), rows.get(f"{first}, co-play only")
    if w2v and coplay:
        out.append(
            f"- Each evidence alone, same store: Word2Vec only coplay@{k} {_f(w2v.at('coplay', k))} "
            f"({_ratio(w2v.at('coplay', k), d.at('coplay', k))} the default's), hit@{k} {_f(w2v.at('hit', k))}, "
            f"tags@{k} {_f(w2v.at('tags', k))}, coverage@{k} {_f(w2v.at('coverage', k))}; co-play only (item-item cosine as "
            f"sparse vectors, answered by Qdrant) coplay@{k} "
            f"{_f(coplay.at('coplay', k))}, tags@{k} {_f(coplay.at('tags', k))}, coverage@{k} {_f(coplay.at('coverage', k))}."
        )
    seed = rows.get(SEED_LABEL) if first != SEED_LABEL else None
    if seed:
        seed_w2v = rows.get(f"{SEED_LABEL}, Word2Vec only")
        alone = f"; Word2Vec only {_f(seed_w2v.at('coplay', k))} against the default's {_f(w2v.at('coplay', k))}" if seed_w2v and w2v else ""
        out.append(
            f"- The seed notebook's settings (`{SEED_LABEL}`, trained on the same split, served by the same code): "
            f"coplay@{k} {_f(seed.at('coplay', k))} ({_ratio(seed.at('coplay', k), d.at('coplay', k))} the default's){alone}; "
            f"tags@{k} {_f(seed.at('tags', k))}, hit@{k} {_f(seed.at('hit', k))}; training "
            f"{e.train_seconds[SEED_LABEL]:.0f} s against {e.train_seconds[first]:.0f} s."
        )
    hybrid = rows.get(f"{first}, hybrid")
    if hybrid:
        out.append(
            f"- The hybrid with songs_meta: coplay@{k} {_f(hybrid.at('coplay', k))}, tags@{k} {_f(hybrid.at('tags', k))}, "
            f"coverage@{k} {_f(hybrid.at('coverage', k))} (the default: {_f(d.at('tags', k))}, {_f(d.at('coverage', k))})."
        )
    return out


def write_report(evaluation: Evaluation, path: Path, tuning: Mapping | None = None, gate: GateVerdict | None = None, command: str = "make eval") -> Path:
    """docs/quality.md and its PNGs (in ``img/`` next to it) from one :func:`evaluate` run."""
    path, e, d, k = Path(path), evaluation, evaluation.data, HEADLINE_K
    img = path.parent / "img"
    img.mkdir(parents=True, exist_ok=True)
    labels = list(e.settings)
    first = labels[0]
    plotted = [r for r in e.warm if "," not in r.name or r.name.startswith(first + ",")]
    _plot_vs_k(plotted, img / "metrics_vs_k.png", f"Held-out playlists ({d['queries']} queries, {d['heldout_playlists']} held-out playlists)")
    if e.cold:
        _plot_vs_k(e.cold, img / "cold_start.png", f"Cold start ({d['cold_queries']} songs hidden from training)")
    song_map = e.split is not None and first in e.vectors and _plot_map(e, first, img / "song_map.png")
    out = [
        "# Recommendation quality", "",
        f"Generated by `{command}` (`ingest evaluate --report {path if not path.is_absolute() else path.name}`); do not edit by hand.", "",
        f"Data: `{Path(d['source']).name}` ({d['songs']:,} songs, fingerprint `{d['fingerprint']}`). "
        f"Split seed {d['seed']}: {d['heldout_playlists']:,} whole playlists held out ({d['holdout']:.0%}), "
        f"{d['train_playlists']:,} for training; {d['pool']:,} songs known to training form the pool every method answers from. "
        f"{d['queries']:,} queries (positions of held-out playlists, song and next song known to training; "
        f"{d['queries_with_tags']:,} of them have a useful tag). Evaluation took {e.seconds:.0f} s on this machine, "
        "training and building the stores included; training: " + ", ".join(f"`{label}` {s:.0f} s" for label, s in e.train_seconds.items()) + ".", "",
        "Every method `search` serves is measured by calling `SongSearch` on a throwaway Qdrant Edge store built from the "
        "split's model exactly as ingest builds one (songs_w2v with its co-play vectors; songs_meta for the hybrid and "
        "cold-start rows); the baselines are computed in numpy from the same training playlists.", "",
        "Metrics at k (answers exclude the query): **hit@k** the song that followed is among the k answers; "
        "**coplay@k** share of the k answers in the query's held-out playlist; **tags@k** share of the k answers "
        "sharing a useful Last.fm tag with the query (generic tags such as favorites, awesome, seen live, decades, "
        "male/female vocalists, countries are left out; queries without a useful tag are skipped); "
        "**coverage@k** share of the pool that appears in some answer.", "",
        "## Headline", "", *_headline(e, first, k), "",
        f"## All methods, same split, same queries (k = {k})", "",
    ]
    headers, rows = format_rows(e.table("warm"))
    out += [markdown_table(headers + ["how"], [r + [w.note] for r, w in zip(rows, e.warm)]), "", "![metric against k](img/metrics_vs_k.png)", ""]
    if e.cold:
        headers, rows = format_rows(e.table("cold"))
        out += [
            "## Cold start", "",
            f"{d['cold_queries']:,} songs that occur in held-out playlists are hidden from training entirely (every occurrence "
            "cut out of the training playlists, so no collection holds them). Each is queried once, from one held-out "
            f"occurrence, through `SongSearch.cold_start` on the `{first}` store: **context**, the songs played near it "
            "in the training playlists (plays that happened but that the model never saw; `cold-start --context` leaves "
            "those songs out of its answers); **title + artist**, its metadata in songs_meta fused with the bridge (the "
            f"Word2Vec vectors of its {BRIDGE_NEIGHBOURS} nearest metadata neighbours). Item-item with the same plays "
            "(the playlists of the songs played around it, which it may answer) is there for scale.", "",
            markdown_table(headers + ["how"], [r + [c.note] for r, c in zip(rows, e.cold)]), "", "![cold start](img/cold_start.png)", "",
        ]
    out += _continuation_section(e, first, k)
    names = [n for n in e.settings[first] if n != "workers"]
    out += ["## Settings", "", markdown_table(["setting"] + labels, [[n] + [str(e.settings[l][n]) for l in labels] for n in names]), ""]
    if SEED_LABEL in e.settings and first != SEED_LABEL:
        out += [
            f"`{SEED_LABEL}` is the seed notebook's call exactly (`Word2Vec(playlists, vector_size=32, window=20, negative=50, "
            f"min_count=1)`, gensim defaults otherwise); `ingest --preset seed` still trains it. Changes in `{first}`: "
            f"{_settings_diff(e.settings[SEED_LABEL], e.settings[first])}.", "",
        ]
    plays_setting = e.settings[first].get("sample_plays")
    if plays_setting is not None and e.split is not None:
        plays = int(e.split.train_plays.sum())
        sample = W2VSettings(**e.settings[first]).effective_sample(plays)
        out += [
            "`sample_plays` states the down-sampling threshold as a play count: `sample` = sample_plays / plays in the "
            f"training corpus (at most 1e-3), here {plays_setting:g} / {plays:,} = {sample:.3g}; a bare ratio tuned on a "
            "large dataset down-samples nearly every play of a small one.", "",
        ]
    if tuning:
        out += _tuning_section(tuning)
    if gate:
        out += _gate_section(gate, first)
    out += ["![song map](img/song_map.png)", ""] if song_map else []
    path.write_text("\n".join(out))
    return path


def _continuation_section(e: Evaluation, first: str, k: int) -> list[str]:
    """Playlist continuation, and what --per-artist and --diversity cost and give."""
    out = []
    if e.continuation:
        headers = ["method", f"hit@{k}", f"coplay@{k}", "how"]
        rows = [[r.name, _f(r.at("hit", k)), _f(r.at("coplay", k)), r.note] for r in e.continuation]
        out += [
            "## Playlist continuation", "",
            f"Held-out playlists whose first {SEEDS} songs and the song after them are known to training: each method "
            f"answers {k} songs from those {SEEDS} (left out of the answer), on the `{first}` store. hit@{k}: the song "
            f"after them is among the answers; coplay@{k}: share of the answers in that playlist.", "",
            markdown_table(headers, rows), "",
        ]
    if e.shapes:
        headers = ["answer", f"hit@{k}", f"coplay@{k}", f"distinct artists in {k}", "how"]
        rows = [[row["result"].name, _f(row["result"].at("hit", k)), _f(row["result"].at("coplay", k)), f"{row['artists']:.2f}",
                 row["result"].note] for row in e.shapes]
        out += [
            "## Diversity", "",
            f"`search similar` as served, and shaped, on the same warm queries (at most {MAX_QUERIES:,}): what "
            "`--per-artist 1` and `--diversity 0.5` cost in hit rate and co-play, and give in distinct artists per answer.", "",
            markdown_table(headers, rows), "",
        ]
    return out


def _tuning_section(tuning: Mapping) -> list[str]:
    keys = [m for m in ("coplay", "tags", "hit") if m in tuning["best"].get("metrics", {})]
    extra = [c for c in ("plays >= 3 coplay", "plays >= 10 coplay") if c in tuning["best"].get("metrics", {})]
    out = [
        "## Hyperparameter search", "",
        f"Coordinate search for the Word2Vec settings from the seed notebook's (`ingest tune --word2vec`; in the spirit "
        f"of Caselles-Dupré et al., RecSys 2018), on a *different* split (seed {tuning['split_seed']}, {tuning['queries']:,} "
        f"queries) so that the defaults were not picked on the queries above; time boxes totalling {tuning['budget_min']:.0f} min, "
        f"{tuning['elapsed_min']:.0f} min spent. Trials scored by "
        f"{tuning.get('scored_by', 'the cosine of the Word2Vec vectors, computed outside any store (before scoring went through the served store)')}. "
        f"A value is kept when it raises coplay@10 without lowering tags@10 by more than {tuning['tag_tolerance']} and trains "
        f"within {tuning['max_train_s']:.0f} s; a trial whose first epochs predicted more than the trial cap was stopped (\"too slow\").", "",
    ]
    if extra:
        out[-2] += " Columns `>=3`, `>=10`: coplay@10 with answers limited to songs with at least that many training plays."
    rows = []
    for t in tuning["trials"]:
        m = t.get("metrics", {})
        rows.append([t["step"], f"{t['train_seconds']:.0f}" + (" (est.)" if t.get("too_slow") else "")]
                    + [_f(m.get(c)) for c in keys + extra] + ["too slow" if t.get("too_slow") else ""])
    headers = ["step (from the current best)", "train s"] + [f"{c}@10" for c in keys] + [">=" + c.split()[2] for c in extra] + [""]
    return out + [markdown_table(headers, rows), ""]


def _gate_playlists(protocol: dict) -> str:
    if protocol["version"].endswith(SAMPLED_SUFFIX):
        return f"a seeded sample of {protocol['max_playlists']:,} playlists"
    return "every playlist"


def _gate_section(gate: GateVerdict, label: str) -> list[str]:
    m, p, k = gate.metrics, gate.protocol, gate.protocol["k"]
    return [
        "## Quality gate (publish)", "",
        f"`ingest.gate.quality_gate` trains the settings being published on a seeded split (protocol `{p['version']}`: "
        f"{_gate_playlists(p)}, {p['queries']} queries, holdout {p['holdout']}, "
        f"seed {p['seed']}), publishes the model into a throwaway store and scores the served default answer; it refuses "
        f"when {gate.metric} does not beat max(popularity, chance) by {FLOOR_LIFT:.0%}, or is more than {gate.margin:.0%} "
        f"(relative) below the live version's recorded value. On this data with the `{label}` settings it took "
        f"{gate.seconds:.0f} s: {gate.metric} {gate.value:.3f} (popularity {m[f'popularity_coplay@{k}']:.3f}, chance "
        f"{m[f'chance_coplay@{k}']:.3f}), tags@{k} {_f(m[f'tags@{k}'])}. Verdict: {gate.reason}.", "",
    ]

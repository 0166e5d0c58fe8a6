"""Tuning on a split the report never uses (seed 11; docs/quality.md reports seed 7), so that
nothing in the report was picked on its own queries.

* :func:`tune_fusion` (``ingest tune``): how the default ``similar`` answer fuses Word2Vec and
  co-play evidence in songs_w2v (:class:`search.query.EvidenceFusion`).  The default Word2Vec
  settings are trained once on the split and published once into a throwaway store
  (:class:`~ingest.evaluation.served.ServedModel`); every candidate is asked through
  ``SongSearch.similar(fusion=...)`` on the same queries.
* :func:`tune_word2vec` (``ingest tune --word2vec``): time-boxed coordinate search for the
  Word2Vec settings from the seed notebook's (in the spirit of Caselles-Dupré et al., RecSys
  2018).  Each trial is trained, published and scored on its Word2Vec answers
  (``evidence="w2v"``); a value is kept when it raises coplay@10 without lowering tags@10 by
  more than ``TAG_TOLERANCE`` and trains within ``max_train_s``; a trial whose first epochs
  predict more than ``trial_cap_s`` is stopped and recorded as too slow.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ingest.dataset import Dataset, load_dataset
from ingest.evaluation.baselines import RP3Beta
from ingest.evaluation.metrics import HEADLINE_K, METRICS, score
from ingest.evaluation.served import ServedModel
from ingest.evaluation.split import EvalData, prepare
from ingest.train import DEFAULT_PRESET, PRESETS, SEED_NOTEBOOK, W2VSettings, train_word2vec
from search.clikit import format_table
from search.contract import Settings, SongSearchError
from search.query import DEFAULT_FUSION, EvidenceFusion

TUNING_SEED = 11
REPORT_SEED = 7  # `ingest evaluate`'s split: never tune on it
HOLDOUT = 0.1
TAG_TOLERANCE = 0.002
SCORED_BY = "the served Word2Vec answer (`similar --evidence w2v`)"
RRF_KS = (10, 30, 60, 100)
#: coplay_weight / w2v_weight
RATIOS = (0.5, 1.0, 1.5, 2.0, 3.0)
DEPTH_FACTORS = (1.0, 2.0)
#: RP3beta (alpha, beta) scored beside the fusions; the report shows the best by coplay@10
RP3BETA_GRID = tuple((alpha, beta) for alpha in (0.5, 1.0) for beta in (0.0, 0.25, 0.5, 0.75))

#: (parameter, candidate values), in the order the Word2Vec coordinate search visits them:
#: cheap, high-impact parameters first, costly ones last.
GRID: list[tuple[str, list]] = [
    ("negative", [5, 10, 20]),
    ("window", [5, 10, 50]),
    ("sample", [1e-4, 1e-5, 0.0]),
    ("ns_exponent", [-0.5, 0.0, 0.5, 1.0]),
    ("epochs", [10, 20, 40]),
    ("vector_size", [64, 128]),
    ("window", [3, 5, 10, 20, 50]),
    ("negative", [3, 5, 10, 20]),
    ("sg", [1]),
    ("ns_exponent", [-0.5, -0.25, 0.0, 0.25, 0.5, 1.0]),
    ("sample", [1e-3, 1e-4, 1e-5]),
    ("epochs", [10, 20, 40, 60]),
]
#: A second pass (``--extend``) from the best of a finished search.
EXTEND_GRID: list[tuple[str, list]] = [("vector_size", [192, 256]), ("window", [3, 7, 10]), ("epochs", [3, 8])]

Say = Callable[[str], None]


def _split(dataset: Dataset, seed: int, queries: int) -> EvalData:
    if seed == REPORT_SEED:
        raise SongSearchError(f"seed {REPORT_SEED} is the report's split: tune on another (default {TUNING_SEED})")
    return prepare(dataset, HOLDOUT, seed, queries, cold=0)


def _metrics(served: ServedModel, ask) -> dict[str, float]:
    data, k = served.data, HEADLINE_K
    row = score("trial", served.answers(data.queries.song, k, ask), data, data.queries, (k,))
    return {m: round(float(row.at(m, k)), 4) for m in METRICS}


def run(data: str | None, out: str | Path, word2vec: bool = False, seed: int = TUNING_SEED, queries: int = 3000, budget_min: float = 25.0,
        max_train_s: float = 75.0, trial_cap_s: float = 120.0, extend: bool = False, say: Say | None = None) -> str:
    """What ``ingest tune`` does: load the dataset, tune, write ``out``; returns the table to print."""
    dataset = load_dataset(data, Settings.from_env().home / "datasets")
    if word2vec:
        return word2vec_table(tune_word2vec(dataset, out, seed, queries, budget_min, max_train_s, trial_cap_s, extend, say))
    return fusion_table(tune_fusion(dataset, out, seed, queries, say=say))


def fusion_grid(limit: int = HEADLINE_K) -> list[EvidenceFusion]:
    """The current default first, then every candidate; candidates whose Qdrant request would be
    the same are dropped (DBSF takes no weights, and its depth is all ``k`` changes)."""
    grid, seen = [], set()
    candidates = [DEFAULT_FUSION] + [
        EvidenceFusion(method, k, 1.0, ratio, depth)
        for method in ("rrf", "dbsf")
        for k in RRF_KS
        for ratio in (RATIOS if method == "rrf" else (1.0,))
        for depth in DEPTH_FACTORS
    ]
    for f in candidates:
        key = (f.method, f.depth(limit)) + ((f.k, f.coplay_weight / f.w2v_weight) if f.method == "rrf" else ())
        if key not in seen:
            seen.add(key)
            grid.append(f)
    return grid


def _fusion_cells(f: EvidenceFusion) -> list[str]:
    rrf = f.method == "rrf"
    return [f.method, str(f.k) if rrf else "-", f"{f.coplay_weight / f.w2v_weight:g}" if rrf else "-", f"{f.depth_factor:g}", str(f.depth(HEADLINE_K))]


def tune_fusion(dataset: Dataset, out: str | Path | None = None, seed: int = TUNING_SEED, queries: int = 3000,
                settings: W2VSettings | None = None, say: Say | None = None) -> dict:
    """Every fusion of :func:`fusion_grid` on the tuning split, written to ``out`` (JSON); the best is
    the highest coplay@10 whose tags@10 is at most ``TAG_TOLERANCE`` below the current default's."""
    say = say or (lambda message: None)
    start = time.perf_counter()
    settings = settings or PRESETS[DEFAULT_PRESET]
    data = _split(dataset, seed, queries)
    t = time.perf_counter()
    model = train_word2vec(data.train_sentences(), settings)
    train_seconds = time.perf_counter() - t
    say(f"split seed {seed}: {len(data.queries)} queries; trained the default Word2Vec in {train_seconds:.1f} s")
    k, trials, references = HEADLINE_K, [], {}
    with ServedModel(dataset, data, model) as served:
        for evidence in ("w2v", "coplay"):
            references[evidence] = _metrics(served, lambda s, song, e=evidence: s.similar(song, limit=k, evidence=e))
        grid = fusion_grid(k)
        for number, f in enumerate(grid, 1):
            t = time.perf_counter()
            metrics = _metrics(served, lambda s, song, f=f: s.similar(song, limit=k, fusion=f))
            trials.append({"fusion": asdict(f), "depth": f.depth(k), "metrics": metrics, "seconds": round(time.perf_counter() - t, 2)})
            say(f"[{number}/{len(grid)}] {' '.join(_fusion_cells(f))}: coplay@{k} {metrics['coplay']:.4f}")
    for alpha, beta in RP3BETA_GRID:  # the baseline gets the same chance to be tuned
        rp3 = RP3Beta(data.train, data.size, alpha, beta)
        row = score("rp3beta", rp3.top(data.queries.song, k, data.pool), data, data.queries, (k,))
        references[f"RP3beta alpha {alpha} beta {beta}"] = {m: round(float(row.at(m, k)), 4) for m in METRICS}
    current = trials[0]
    allowed = [t for t in trials if t["metrics"]["tags"] >= current["metrics"]["tags"] - TAG_TOLERANCE]
    best = max(allowed, key=lambda t: (t["metrics"]["coplay"], t["metrics"]["hit"]))
    result = {
        "what": "EvidenceFusion of the default `similar` answer (search/query.py)",
        "data": {"source": dataset.source, "fingerprint": dataset.fingerprint},
        "split_seed": seed, "holdout": HOLDOUT, "queries": len(data.queries), "k": k,
        "w2v_settings": asdict(settings), "train_seconds": round(train_seconds, 1), "tag_tolerance": TAG_TOLERANCE,
        "references": references, "current": current, "best": best, "trials": trials,
        "seconds": round(time.perf_counter() - start, 1),
    }
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=1))
    return result


def fusion_table(result: dict) -> str:
    mark = {id(result["current"]): "current", id(result["best"]): "best"}
    if result["best"] is result["current"]:
        mark[id(result["current"])] = "current, best"
    rows = [
        _fusion_cells(EvidenceFusion(**t["fusion"])) + [f"{t['metrics'][m]:.4f}" for m in METRICS] + [mark.get(id(t), "")]
        for t in sorted(result["trials"], key=lambda t: -t["metrics"]["coplay"])
    ]
    rows += [[e if e.startswith("RP3beta") else f"{e} only", "-", "-", "-", "-"] + [f"{m[x]:.4f}" for x in METRICS] + ["reference"] for e, m in result["references"].items()]
    k, best, current = result["k"], result["best"], result["current"]
    return "\n".join([
        format_table(["method", "k", "coplay:w2v", "depth x", "depth"] + [f"{m}@{k}" for m in METRICS] + [""], rows), "",
        f"best: {EvidenceFusion(**best['fusion'])}: coplay@{k} {best['metrics']['coplay']:.4f}, "
        f"current default {current['metrics']['coplay']:.4f} ({len(result['trials'])} fusions, split seed {result['split_seed']}, {result['queries']} queries)",
    ])


# --------------------------------------------------------------------------- Word2Vec settings


class _TooSlow(Exception):
    pass


class _Cap:
    """A progress "bar" for train_word2vec that stops a trial predicted to exceed ``cap_s``."""

    def __init__(self, epochs: int, cap_s: float):
        self.epochs, self.cap_s, self.start, self.done = epochs, cap_s, time.perf_counter(), 0

    def update(self, n: int = 1) -> None:
        self.done += n
        predicted = (time.perf_counter() - self.start) / self.done * self.epochs
        if self.done < self.epochs and predicted > self.cap_s:
            raise _TooSlow(predicted)


def run_trial(dataset: Dataset, data: EvalData, settings: W2VSettings, cap_s: float) -> dict:
    row = {"settings": asdict(settings)}
    start = time.perf_counter()
    try:
        model = train_word2vec(data.train_sentences(), settings, _Cap(settings.epochs, cap_s))
    except _TooSlow as slow:
        return {**row, "train_seconds": round(float(slow.args[0]), 1), "too_slow": True}
    row["train_seconds"] = round(time.perf_counter() - start, 1)
    with ServedModel(dataset, data, model) as served:
        row["metrics"] = _metrics(served, lambda s, song: s.similar(song, limit=HEADLINE_K, evidence="w2v"))
    return row


def tune_word2vec(dataset: Dataset, out: Path, seed: int = TUNING_SEED, queries: int = 3000, budget_min: float = 25.0,
                  max_train_s: float = 75.0, trial_cap_s: float = 120.0, extend: bool = False, say: Say | None = None) -> dict:
    """Coordinate search (``extend``: continue the finished search in ``out`` with EXTEND_GRID);
    ``out`` is rewritten after every trial."""
    say = say or (lambda message: None)
    start = time.perf_counter()
    data = _split(dataset, seed, queries)
    previous = json.loads(Path(out).read_text()) if extend else None
    if previous and previous.get("scored_by") != SCORED_BY:
        what = previous.get("scored_by") or previous.get("what") or "a search scored outside the served store"
        raise SongSearchError(f"{out} is not a Word2Vec search scored by {SCORED_BY} ({what}): start a new one")
    trials: list[dict] = list(previous["trials"]) if previous else []
    state = {"best": previous["best"] if previous else None}

    def save() -> dict:
        result = {
            "what": "Word2Vec settings, coordinate search", "scored_by": SCORED_BY,
            "split_seed": seed, "queries": len(data.queries), "budget_min": budget_min + (previous["budget_min"] if previous else 0),
            "max_train_s": max_train_s, "tag_tolerance": TAG_TOLERANCE,
            "elapsed_min": round((previous["elapsed_min"] if previous else 0) + (time.perf_counter() - start) / 60, 1),
            "best": state["best"], "trials": trials,
        }
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=1))
        return result

    def log(row: dict, step: str) -> None:
        row["step"] = step
        trials.append(row)
        m = row.get("metrics", {})
        say(f"[{(time.perf_counter() - start) / 60:5.1f} min] {step:28s} train {row['train_seconds']:6.1f} s "
            + ("TOO SLOW" if row.get("too_slow") else f"coplay {m['coplay']:.4f} tags {m['tags']:.4f}"))

    if previous:
        current, grid = W2VSettings(**previous["best"]["settings"]), EXTEND_GRID
    else:
        state["best"], current, grid = run_trial(dataset, data, SEED_NOTEBOOK, float("inf")), SEED_NOTEBOOK, GRID
        log(state["best"], "seed notebook")
    seed_tags = trials[0]["metrics"]["tags"]
    tried = {json.dumps(t["settings"], sort_keys=True) for t in trials} | {json.dumps(asdict(current), sort_keys=True)}
    for name, values in grid:
        for value in values:
            if (time.perf_counter() - start) / 60 > budget_min:
                say("budget spent")
                return save()
            candidate = current.with_options(**{name: value})
            key = json.dumps(asdict(candidate), sort_keys=True)
            if key in tried:
                continue
            tried.add(key)
            row = run_trial(dataset, data, candidate, trial_cap_s)
            best = state["best"]["metrics"]
            kept = (not row.get("too_slow") and row["train_seconds"] <= max_train_s
                    and row["metrics"]["coplay"] > best["coplay"] and row["metrics"]["tags"] >= seed_tags - TAG_TOLERANCE)
            log(row, f"{name}={value}{' (kept)' if kept else ''}")
            if kept:
                state["best"], current = row, candidate
            save()
    return save()


def word2vec_table(result: dict) -> str:
    rows = [
        [t["step"], f"{t['train_seconds']:.1f}"] + (["-"] * len(METRICS) + ["too slow"] if t.get("too_slow") else [f"{t['metrics'][m]:.4f}" for m in METRICS] + [""])
        for t in result["trials"]
    ]
    return format_table(["step (from the current best)", "train s"] + [f"{m}@{HEADLINE_K}" for m in METRICS] + [""], rows)

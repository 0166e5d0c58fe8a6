"""Metrics of answers to held-out playlist queries, and the result of one method."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ingest.evaluation.split import EvalData, Queries

KS = (1, 5, 10, 20)
HEADLINE_K = 10
METRICS = ("hit", "coplay", "tags", "coverage")

# --------------------------------------------------------------------------- metrics
# ``answers`` is a (queries x K) integer array of song keys, best first; -1 pads
# a row that has fewer than K answers (a padded slot counts as a miss).


def hit_rate(answers: np.ndarray, targets: Sequence[int], k: int) -> float:
    """Share of queries whose target (the next song) is among the first k answers."""
    answers = np.asarray(answers)
    if len(answers) == 0:
        return float("nan")
    targets = np.asarray(targets).reshape(-1, 1)
    return float(np.mean(np.any(answers[:, :k] == targets, axis=1)))


def coplay_precision(answers: np.ndarray, truth: Sequence[set | frozenset], k: int) -> float:
    """Mean over queries of |first k answers in the query's held-out playlist| / k."""
    answers = np.asarray(answers)
    if len(answers) == 0:
        return float("nan")
    total = 0.0
    for row, same in zip(answers[:, :k], truth):
        total += sum(1 for a in row.tolist() if a in same) / k
    return total / len(answers)


def tag_coherence(answers: np.ndarray, query_tags: Sequence[frozenset], tags_of: Callable[[int], frozenset] | Sequence, k: int) -> float:
    """Mean over queries that have a useful tag of the share of the first k answers sharing one with it."""
    lookup = tags_of if callable(tags_of) else (lambda key: tags_of[key] if key >= 0 else frozenset())
    answers = np.asarray(answers)
    total, counted = 0.0, 0
    for row, mine in zip(answers[:, :k], query_tags):
        if not mine:
            continue
        counted += 1
        total += sum(1 for a in row.tolist() if a >= 0 and not mine.isdisjoint(lookup(a))) / k
    return total / counted if counted else float("nan")


def coverage(answers: np.ndarray, k: int, catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one answer's first k."""
    top = np.asarray(answers)[:, :k]
    return len(np.unique(top[top >= 0])) / catalogue_size if catalogue_size else float("nan")


@dataclass
class MethodResult:
    name: str
    metrics: dict[str, dict[int, float]]  # metric -> k -> value
    note: str = ""
    seconds: float = 0.0

    def at(self, metric: str, k: int = HEADLINE_K) -> float:
        return self.metrics[metric][k]


def score(name: str, answers: np.ndarray, data: EvalData, queries: Queries, ks: Sequence[int] = KS, note: str = "", seconds: float = 0.0) -> MethodResult:
    truth = [data.heldout_sets[p] for p in queries.playlist.tolist()]
    qtags = [data.tags[s] for s in queries.song.tolist()]
    pool = int(data.pool.sum())
    metrics = {m: {} for m in METRICS}
    for k in ks:
        metrics["hit"][k] = hit_rate(answers, queries.next, k)
        metrics["coplay"][k] = coplay_precision(answers, truth, k)
        metrics["tags"][k] = tag_coherence(answers, qtags, data.tags, k)
        metrics["coverage"][k] = coverage(answers, k, pool)
    return MethodResult(name, metrics, note, seconds)


def chance_coplay(data: EvalData, queries: Queries) -> float:
    """Expected coplay@k of answers drawn at random from the pool (the same for every k)."""
    pool = data.pool
    n = int(pool.sum())
    if not len(queries) or n < 2:
        return float("nan")
    total = 0.0
    for song, pl in zip(queries.song.tolist(), queries.playlist.tolist()):
        members = np.fromiter(data.heldout_sets[pl], dtype=np.int64)
        total += (int(pool[members].sum()) - int(pool[song] and song in data.heldout_sets[pl])) / (n - 1)
    return total / len(queries)



def format_rows(rows: list[dict], k: int = HEADLINE_K) -> tuple[list[str], list[list[str]]]:
    headers = ["method", f"hit@{k}", f"coplay@{k}", f"tags@{k}", f"coverage@{k}"]
    body = [[r["method"]] + [_fmt(r[m]) for m in METRICS] for r in rows]
    return headers, body


def _fmt(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


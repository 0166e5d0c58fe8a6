"""Score fusion of ranked lists from different collections.

Qdrant fuses prefetches within one collection (songs_w2v's Word2Vec and
co-play evidence is fused by Qdrant itself); songs_w2v and songs_meta are two
collections, so their answers are fused here, with Qdrant's formulas:

* ``rrf``: reciprocal rank fusion, sum over lists of ``1 / (rank / weight + k - 1)``
  (rank from 1; unweighted this is ``1 / (k + rank - 1)``, Qdrant's zero-based
  ``1 / (k + position)``); k = 60 as in Cormack et al. 2009.
* ``dbsf``: distribution-based score fusion: each list's scores are mapped
  from [mean - 3 sd, mean + 3 sd] onto [0, 1] (sample sd, not clipped; a list
  whose scores are all equal maps to 0.5), then weighted and summed, as Qdrant
  does (Qdrant's own DBSF is unweighted).

A song missing from a list contributes nothing from that list.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from search.contract import SongSearchError

RRF_K = 60
FUSIONS = ("rrf", "dbsf")
#: Larger weights only overflow DBSF sums; ratios are what matter.
MAX_WEIGHT = 1e6

#: list name -> [(song id, score), ...] best first
Ranked = Mapping[str, Sequence[tuple[int, float]]]


def candidates(limit: int, k: int = RRF_K) -> int:
    """How many songs to fetch from each side for a fused top ``limit``.

    With two equally weighted lists cut at C, a song in neither list scores at
    most 2 / (k + C) under RRF, while the limit-th song of either list alone
    has at least 1 / (k + limit - 1); C = k + 2 * limit keeps such a song out.
    """
    return k + 2 * limit


def rrf(lists: Ranked, weights: Mapping[str, float], k: int = RRF_K) -> dict[int, float]:
    fused: dict[int, float] = {}
    for name, ranked in lists.items():
        for rank, (song_id, _) in enumerate(ranked, start=1):
            weight = weights.get(name, 1.0)
            if weight > 0:
                fused[song_id] = fused.get(song_id, 0.0) + 1.0 / (rank / weight + k - 1)
    return fused


def dbsf_normalise(scores: Sequence[float]) -> list[float]:
    """Qdrant's normalisation: (score - (mean - 3 sd)) / (6 sd), sample sd, not clipped;
    a list of one score, or of equal scores, maps to 0.5."""
    if len(scores) < 2:
        return [0.5] * len(scores)
    mean = sum(scores) / len(scores)
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
    if sd == 0:
        return [0.5] * len(scores)
    return [(s - (mean - 3 * sd)) / (6 * sd) for s in scores]


def dbsf(lists: Ranked, weights: Mapping[str, float]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for name, ranked in lists.items():
        normalised = dbsf_normalise([score for _, score in ranked])
        for (song_id, _), value in zip(ranked, normalised):
            fused[song_id] = fused.get(song_id, 0.0) + weights.get(name, 1.0) * value
    return fused


def fuse(lists: Ranked, method: str, weights: Mapping[str, float], limit: int) -> list[tuple[int, float]]:
    """The top ``limit`` (song id, fused score), best first; ties broken by song id."""
    if method not in FUSIONS:
        raise SongSearchError(f"unknown fusion {method!r}: use one of {', '.join(FUSIONS)}")
    fused = rrf(lists, weights) if method == "rrf" else dbsf(lists, weights)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:limit]

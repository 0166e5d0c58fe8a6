"""Playlist continuation and the cost of diversity, through ``SongSearch`` on the served store.

* **Continuation.**  From the first ``SEEDS`` songs of a held-out playlist (all
  known to training, distinct), each method answers k songs, the seeds left
  out: ``recommend`` (Qdrant's recommend query fused with co-play), context
  averaging (``cold-start --context``) and item-item cosine on the seeds'
  summed playlist memberships.  hit@k: the song after the seeds is among the
  answers; coplay@k: share of the answers in that held-out playlist.
* **Shape.**  The default ``similar`` answer against ``--per-artist 1`` and
  ``--diversity 0.5`` on the same warm queries: what they cost in co-play and
  hit rate, and what they give in distinct artists per answer.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import sparse

from ingest.evaluation.baselines import ItemItem
from ingest.evaluation.metrics import HEADLINE_K, MethodResult, score
from ingest.evaluation.served import ServedModel
from ingest.evaluation.split import EvalData, Queries
from search.api import Answer, SongSearch

SEEDS = 3
#: continuation queries and shape queries at most (each shape is a SongSearch call per query)
MAX_QUERIES = 2000
SHAPES = (
    ("default", "`search similar`", {}),
    ("--per-artist 1", "at most one song by an artist", {"per_artist": 1}),
    ("--diversity 0.5", "Qdrant's MMR, half relevance, half spread", {"diversity": 0.5}),
)


def continuation_queries(data: EvalData, seeds: int = SEEDS, limit: int = MAX_QUERIES, seed: int = 0) -> tuple[list[np.ndarray], Queries]:
    """Held-out playlists whose first ``seeds`` songs and the one after are known to training and
    distinct: (the seeds of each, Queries with the first seed, the next song and the playlist)."""
    pool = data.pool
    chosen, nexts, lists = [], [], []
    for number, p in enumerate(data.heldout):
        head = p[: seeds + 1]
        if len(head) == seeds + 1 and pool[head].all() and len(set(head.tolist())) == seeds + 1:
            chosen.append(head[:seeds])
            nexts.append(int(head[seeds]))
            lists.append(number)
    if len(chosen) > limit:
        pick = np.sort(np.random.default_rng(seed).choice(len(chosen), size=limit, replace=False))
        chosen, nexts, lists = [chosen[i] for i in pick], [nexts[i] for i in pick], [lists[i] for i in pick]
    first = np.array([c[0] for c in chosen], dtype=np.int64)
    return chosen, Queries(first, np.array(nexts, dtype=np.int64), np.array(lists, dtype=np.int64))


def _served(data: EvalData, search: SongSearch, rows: Sequence, k: int, ask: Callable[[SongSearch, object], Answer]) -> tuple[np.ndarray, list[Answer]]:
    """(queries x k) catalogue indexes of ``ask``'s answers for each row, and the answers."""
    out, answers = np.full((len(rows), k), -1, dtype=np.int64), []
    for i, row in enumerate(rows):
        answer = ask(search, row)
        ids = answer.ids[:k]
        out[i, : len(ids)] = np.searchsorted(data.ids, ids)
        answers.append(answer)
    return out, answers


def continuation_methods(served: ServedModel, item_item: ItemItem, ks: Sequence[int]) -> list[MethodResult]:
    data, k = served.data, max(ks)
    seeds, queries = continuation_queries(data)
    if not len(queries):
        return []
    seed_ids = [[int(i) for i in data.ids[s]] for s in seeds]
    results = []
    asks = [
        ("recommend", f"`recommend --like` the first {SEEDS} songs: Qdrant's recommend (best score) fused with co-play",
         lambda s, likes: s.recommend(likes, limit=k)),
        ("context averaging", f"`cold-start --context` the first {SEEDS} songs: their mean vector, summed co-play",
         lambda s, likes: s.cold_start(context=likes, limit=k)),
    ]
    for name, note, ask in asks:
        answers, _ = _served(data, served.search, seed_ids, k, ask)
        results.append(score(name, answers, data, queries, ks, note))
    member = sparse.csr_matrix(
        (np.ones(SEEDS * len(seeds), np.float32), (np.repeat(np.arange(len(seeds)), SEEDS), np.concatenate(seeds))), shape=(len(seeds), data.size)
    )
    memberships = (member @ item_item.xt).tocsr()
    memberships.data = np.minimum(memberships.data, 1.0)
    answers = item_item.top(queries.song, k, data.pool, memberships=memberships, excluded=seeds)
    results.append(score("item-item cosine", answers, data, queries, ks, f"co-membership with the playlists of the first {SEEDS} songs"))
    return results


def shape_methods(served: ServedModel, ks: Sequence[int], limit: int = MAX_QUERIES) -> list[dict]:
    """Per shape: the metrics at each k (MethodResult) and the mean distinct artists in an
    answer's first HEADLINE_K songs."""
    data, k = served.data, max(ks)
    queries = data.queries.take(limit)
    song_ids = [int(i) for i in data.ids[queries.song]]
    rows = []
    for name, note, options in SHAPES:
        answers, served_answers = _served(data, served.search, song_ids, k, lambda s, song, o=options: s.similar(song, limit=k, **o))
        artists = float(np.mean([len({r.artist for r in a.results[:HEADLINE_K]}) for a in served_answers])) if served_answers else float("nan")
        rows.append({"result": score(name, answers, data, queries, ks, note), "artists": artists})
    return rows

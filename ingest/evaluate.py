"""Recommendation quality on held-out playlists, cold start, and the publish quality gate.

The protocol, in one place:

* **Split.**  A seeded permutation holds out whole playlists (``holdout`` of
  them); the model under test trains on the rest.  Optionally some *cold*
  songs are hidden from training entirely: every occurrence of them is cut out
  of the training playlists (the playlists themselves stay).
* **Queries.**  Positions of the held-out playlists whose song and whose next
  song are both known to training (and differ), drawn uniformly with a seeded
  generator, so popular songs are queried as often as radio plays them.
* **Answers.**  Every method returns its top-k songs for the query song, the
  query itself excluded, chosen among the songs known to training (the pool),
  so that every method answers from the same catalogue.
* **Metrics** (all in [0, 1], averaged over queries):

  - ``hit@k``: the song that followed the query in the held-out playlist is
    among the k answers;
  - ``coplay@k``: share of the k answers that are in the query's held-out
    playlist;
  - ``tags@k``: share of the k answers that share a Last.fm tag with the query,
    generic tags (:func:`is_generic_tag`) left out; queries without a useful
    tag are skipped;
  - ``coverage@k``: share of the pool that appears in at least one answer.

The nearest-neighbour search is brute force in numpy over L2-normalised
vectors, in batches (equal to what Qdrant returns for cosine, minus the
approximation), so a full evaluation takes a few minutes on two cores.

:func:`quality_gate` is the small, fast version that ingest can run on every
publish; see its docstring for the contract.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import sparse

from ingest.dataset import Dataset
from ingest.train import W2VSettings, train_word2vec
from search.fusion import fuse

KS = (1, 5, 10, 20)
HEADLINE_K = 10
METRICS = ("hit", "coplay", "tags", "coverage")

# --------------------------------------------------------------------------- tags

#: Tags that say how much someone liked a song, where it came from or who sang,
#: not what it sounds like.  Decades are matched by :data:`_DECADE`.
GENERIC_TAGS = frozenset(
    {
        "favorites", "favorite", "favourites", "favourite", "favs", "faves", "fav", "my favorite",
        "my favorites", "favorite songs", "favourite songs", "favorite artists", "all time favourites",
        "best songs ever", "songs i absolutely love", "love it", "loved", "love at first listen", "awesome",
        "fucking awesome", "amazing", "great", "good", "nice", "cool", "lovely", "perfect", "best", "the best",
        "brilliant", "genius", "masterpiece", "legend", "great song", "great lyrics", "good stuff", "<3",
        "seen live", "live", "heard on pandora", "male vocalists", "male vocalist", "female vocalists",
        "female vocalist", "female vocals", "male vocals", "female", "male", "vocal", "american", "usa",
        "english", "british", "uk", "canadian", "california", "new york", "other", "classic", "classics",
        "cover", "covers", "radioparadise", "radio paradise", "radiotsar approved", "wjlb-fm", "aitch",
        "drjazzmrfunkmusic", "77davez-all-tracks", "acclaimed music top 3000", "my pop music",
        "malloy2000 playlist - top songs - classical to metal", "radio music", "guilty pleasure",
        "guilty pleasures",
    }
)
#: 80s, 80's, 1980s, 00s, 10s, 2000s, 2009, 2010 ...
_DECADE = re.compile(r"^(?:\d0'?s|(?:19|20)\d0'?s|(?:19|20)\d\d)$")


def is_generic_tag(tag: str) -> bool:
    """True for tags that carry no genre or mood: likes, 'seen live', decades, vocalist gender, places."""
    tag = " ".join(tag.casefold().split())
    return tag in GENERIC_TAGS or bool(_DECADE.match(tag))


def useful_tags(tags: Sequence[str]) -> frozenset[str]:
    return frozenset(" ".join(t.casefold().split()) for t in tags if not is_generic_tag(t))


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


# --------------------------------------------------------------------------- split and queries


def split_playlists(n_playlists: int, holdout: float = 0.1, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(training indexes, held-out indexes), both sorted: whole playlists, a seeded choice.

    At least one playlist is held out and at least one kept (when there are two).
    """
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be between 0 and 1, got {holdout}")
    order = np.random.default_rng(seed).permutation(n_playlists)
    n_held = min(max(1, round(n_playlists * holdout)), max(0, n_playlists - 1))
    return np.sort(order[n_held:]), np.sort(order[:n_held])


@dataclass
class Queries:
    """Query songs (catalogue indexes), the song that followed, and the held-out playlist each came from."""

    song: np.ndarray
    next: np.ndarray
    playlist: np.ndarray

    def __len__(self) -> int:
        return len(self.song)

    def take(self, n: int) -> "Queries":
        return Queries(self.song[:n], self.next[:n], self.playlist[:n])


@dataclass
class EvalData:
    """Everything an evaluation needs, computed once per (dataset, split): settings-independent."""

    ids: np.ndarray  # catalogue song ids, ascending; a song's index is its position here
    train: list[np.ndarray]  # training playlists (catalogue indexes), cold songs cut out
    heldout: list[np.ndarray]
    heldout_sets: list[frozenset]
    train_plays: np.ndarray  # plays of each song in the training playlists
    tags: list[frozenset]  # useful tags of each song
    queries: Queries
    cold: np.ndarray  # catalogue indexes of the songs hidden from training
    cold_queries: Queries
    cold_context: list[np.ndarray]  # per cold song: the songs played around it in the training playlists
    holdout: float
    seed: int

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def pool(self) -> np.ndarray:
        """Mask of the songs known to training: the songs every method may answer."""
        return self.train_plays > 0

    def train_sentences(self) -> list[list[int]]:
        """The training playlists as song ids, for :func:`ingest.train.train_word2vec`."""
        return [self.ids[p].tolist() for p in self.train]


def _draw_positions(playlists: list[np.ndarray], ok_song: np.ndarray, n: int, rng) -> Queries:
    songs, nexts, lists = [], [], []
    for number, p in enumerate(playlists):
        if len(p) < 2:
            continue
        a, b = p[:-1], p[1:]
        keep = ok_song[a] & ok_song[b] & (a != b)
        songs.append(a[keep])
        nexts.append(b[keep])
        lists.append(np.full(int(keep.sum()), number, dtype=np.int64))
    if not songs:
        return Queries(*(np.zeros(0, np.int64) for _ in range(3)))
    song, nxt, pl = np.concatenate(songs), np.concatenate(nexts), np.concatenate(lists)
    if n < len(song):
        pick = rng.choice(len(song), size=n, replace=False)
        song, nxt, pl = song[pick], nxt[pick], pl[pick]
    return Queries(song.astype(np.int64), nxt.astype(np.int64), pl.astype(np.int64))


def prepare(
    dataset: Dataset,
    holdout: float = 0.1,
    seed: int = 7,
    queries: int = 5000,
    cold: int = 500,
    context_window: int = 5,  # CONTEXT_WINDOW
    max_train_playlists: int | None = None,
) -> EvalData:
    """Split ``dataset`` and draw the queries; cheap (no training).

    ``cold`` songs are drawn among songs that appear both in a held-out playlist
    (so that they can be scored) and in a training playlist (so that context
    averaging has plays to average); all their training occurrences are cut
    out.  ``context_window`` is how many songs either side of such an
    occurrence count as "played with" it.  ``max_train_playlists`` caps the
    training playlists (a seeded subset) for quick runs such as the gate.
    """
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(dataset.songs), dtype=np.int64)
    lookup = {int(s): i for i, s in enumerate(ids.tolist())}
    encoded = [np.array([lookup[s] for s in p], dtype=np.int64) for p in dataset.playlists]
    train_idx, held_idx = split_playlists(len(encoded), holdout, seed)
    if max_train_playlists is not None and len(train_idx) > max_train_playlists:
        train_idx = np.sort(rng.choice(train_idx, size=max_train_playlists, replace=False))
    train_full = [encoded[i] for i in train_idx]
    heldout = [encoded[i] for i in held_idx]
    n = len(ids)

    plays_full = np.bincount(np.concatenate(train_full), minlength=n) if train_full else np.zeros(n, np.int64)
    in_held = np.zeros(n, bool)
    for p in heldout:
        in_held[p] = True
    candidates = np.flatnonzero(in_held & (plays_full > 0))
    cold_songs = np.sort(rng.choice(candidates, size=min(cold, len(candidates) // 10), replace=False)) if cold else np.zeros(0, np.int64)
    is_cold = np.zeros(n, bool)
    is_cold[cold_songs] = True

    context: dict[int, list[np.ndarray]] = {int(c): [] for c in cold_songs}
    train = []
    for p in train_full:
        hit = is_cold[p]
        if hit.any():
            for pos in np.flatnonzero(hit):
                around = np.concatenate([p[max(0, pos - context_window) : pos], p[pos + 1 : pos + 1 + context_window]])
                context[int(p[pos])].append(around)
            p = p[~hit]
        train.append(p)
    train_plays = np.bincount(np.concatenate(train), minlength=n) if train else np.zeros(n, np.int64)
    warm = train_plays > 0
    cold_context = []
    for c in cold_songs:
        around = np.concatenate(context[int(c)]) if context[int(c)] else np.zeros(0, np.int64)
        cold_context.append(around[warm[around]])

    warm_queries = _draw_positions(heldout, warm, queries, rng)
    # cold queries: one occurrence per cold song, followed by a song known to training
    cold_ok = warm | is_cold
    all_cold = _draw_positions(heldout, cold_ok, 10**12, rng)
    keep = is_cold[all_cold.song] & warm[all_cold.next]
    cs, cn, cp = all_cold.song[keep], all_cold.next[keep], all_cold.playlist[keep]
    order = rng.permutation(len(cs))
    _, first = np.unique(cs[order], return_index=True)
    chosen = order[first]
    cold_queries = Queries(cs[chosen], cn[chosen], cp[chosen])

    return EvalData(
        ids=ids,
        train=train,
        heldout=heldout,
        heldout_sets=[frozenset(p.tolist()) for p in heldout],
        train_plays=train_plays,
        tags=[useful_tags(dataset.songs[int(s)].tags) for s in ids],
        queries=warm_queries,
        cold=cold_songs,
        cold_queries=cold_queries,
        cold_context=cold_context,
        holdout=holdout,
        seed=seed,
    )


# --------------------------------------------------------------------------- nearest neighbours


def normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def _top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the k best scores of each row, best first; -1 where a row has fewer finite scores."""
    wanted, k = k, min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    top[~np.isfinite(np.take_along_axis(vals, order, axis=1))] = -1
    if wanted > k:
        top = np.hstack([top, np.full((len(top), wanted - k), -1, dtype=top.dtype)])
    return top


def top_k(
    query_vectors: np.ndarray,
    candidates: np.ndarray,
    k: int,
    allowed: np.ndarray,
    exclude: np.ndarray | None = None,
    batch: int = 512,
    with_scores: bool = False,
):
    """Top-k rows of ``candidates`` by dot product with each query vector (cosine if both are normalised).

    ``allowed`` masks the candidates that may be answered; ``exclude[i]`` (a
    candidate index or -1) is never answered to query i (the query itself).
    With ``with_scores``, returns (top, scores); -1 / -inf pad short rows.
    """
    out = np.empty((len(query_vectors), k), dtype=np.int64)
    out_scores = np.empty((len(query_vectors), k), dtype=np.float32) if with_scores else None
    blocked = np.where(allowed, 0.0, -np.inf).astype(np.float32)
    cand_t = np.ascontiguousarray(np.asarray(candidates, dtype=np.float32).T)
    for start in range(0, len(query_vectors), batch):
        q = np.asarray(query_vectors[start : start + batch], dtype=np.float32)
        scores = q @ cand_t
        scores += blocked
        if exclude is not None:
            ex = exclude[start : start + batch]
            rows = np.flatnonzero(ex >= 0)
            scores[rows, ex[rows]] = -np.inf
        top = _top_rows(scores, k)
        out[start : start + len(q)] = top
        if with_scores:
            got = np.take_along_axis(scores, np.maximum(top, 0), axis=1)
            got[top < 0] = -np.inf
            out_scores[start : start + len(q)] = got
    return (out, out_scores) if with_scores else out


def scored_top_k(query_vectors, candidates, k, allowed, exclude=None, batch=512) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`top_k`, with the scores (for fusion)."""
    return top_k(query_vectors, candidates, k, allowed, exclude, batch, with_scores=True)


def _dedupe(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    unique, inverse = np.unique(queries, return_inverse=True)
    return unique, inverse


class ItemItem:
    """Item-item cosine on playlist co-membership: cos(i, j) = n_ij / sqrt(n_i n_j).

    n_ij is the number of training playlists holding both songs.  Ties (and
    songs never played with the query) are broken by popularity, so that a
    row is never short of answers.
    """

    def __init__(self, playlists: list[np.ndarray], size: int):
        rows = np.concatenate([np.full(len(np.unique(p)), i) for i, p in enumerate(playlists)]) if playlists else np.zeros(0, int)
        cols = np.concatenate([np.unique(p) for p in playlists]) if playlists else np.zeros(0, int)
        x = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(playlists), size))
        self.x = x
        self.xt = x.T.tocsr()
        self.n = np.asarray(x.sum(axis=0)).ravel()
        self.inv_sqrt = np.where(self.n > 0, 1.0 / np.sqrt(np.maximum(self.n, 1)), 0.0).astype(np.float32)
        pop = self.n / max(1.0, self.n.max())
        self.tiebreak = (1e-7 * pop).astype(np.float32)

    def scores_for_rows(self, memberships: sparse.csr_matrix) -> np.ndarray:
        """Cosine scores for query songs given as rows of playlist memberships (songs x playlists)."""
        co = (memberships @ self.x).toarray().astype(np.float32)
        q_norm = np.sqrt(np.asarray(memberships.sum(axis=1)).ravel()).astype(np.float32)
        co *= self.inv_sqrt[None, :]
        co /= np.where(q_norm == 0, 1.0, q_norm)[:, None]
        return co + self.tiebreak[None, :]

    def top(self, songs: np.ndarray, k: int, allowed: np.ndarray, batch: int = 256, memberships=None) -> np.ndarray:
        unique, inverse = _dedupe(songs) if memberships is None else (songs, np.arange(len(songs)))
        out = np.empty((len(unique), k), dtype=np.int64)
        blocked = np.where(allowed, 0.0, -np.inf).astype(np.float32)
        for start in range(0, len(unique), batch):
            chunk = unique[start : start + batch]
            rows = self.xt[chunk] if memberships is None else memberships[start : start + batch]
            scores = self.scores_for_rows(rows) + blocked
            if memberships is None:
                scores[np.arange(len(chunk)), chunk] = -np.inf
            out[start : start + len(chunk)] = _top_rows(scores, k)
        return out[inverse]


# --------------------------------------------------------------------------- models under test


@dataclass
class W2VVectors:
    """A trained model's vectors laid out on the catalogue (zero rows for unknown songs)."""

    inputs: np.ndarray  # normalised input vectors (wv)
    outputs: np.ndarray | None  # normalised output vectors (syn1neg), when trained with negative sampling
    known: np.ndarray  # mask: songs in the model's vocabulary
    train_seconds: float = 0.0


def train_vectors(data: EvalData, settings: W2VSettings) -> W2VVectors:
    """Train Word2Vec on the training split with ``settings``; vectors per catalogue index."""
    start = time.perf_counter()
    model = train_word2vec(data.train_sentences(), settings)
    seconds = time.perf_counter() - start
    return vectors_from_model(model, data, seconds)


def vectors_from_model(model, data: EvalData, seconds: float = 0.0) -> W2VVectors:
    words = np.array([int(w) for w in model.wv.index_to_key], dtype=np.int64)
    where = np.searchsorted(data.ids, words)
    inputs = np.zeros((data.size, model.wv.vector_size), np.float32)
    inputs[where] = model.wv.vectors
    outputs = None
    if getattr(model, "syn1neg", None) is not None and len(model.syn1neg):
        outputs = np.zeros_like(inputs)
        outputs[where] = model.syn1neg
    known = np.zeros(data.size, bool)
    known[where] = True
    return W2VVectors(normalise(inputs), None if outputs is None else normalise(outputs), known, seconds)


def metadata_vectors(dataset: Dataset, data: EvalData, encoder=None) -> np.ndarray:
    """MetadataEncoder vectors of the whole catalogue (title vectors from the TitleCache when present)."""
    if encoder is None:
        from search.encoder import MetadataEncoder, TitleCache

        home = Path(os.environ.get("SONGSEARCH_HOME", "~/.songsearch")).expanduser()
        encoder = MetadataEncoder(cache=TitleCache(home / "cache"))
    songs = [dataset.songs[int(i)] for i in data.ids]
    vectors = encoder.encode([s.title for s in songs], [s.artist for s in songs])
    if getattr(encoder, "cache", None) is not None and getattr(encoder, "encoded_titles", 0):
        encoder.cache.save()
    return normalise(vectors)


# --------------------------------------------------------------------------- scoring


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


def popularity_answers(data: EvalData, songs: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-data.train_plays, kind="stable")[: k + 1]
    rows = np.array([[s for s in order if s != q][:k] for q in songs.tolist()], dtype=np.int64)
    return rows.reshape(len(songs), k)


def vector_answers(query_vectors, candidates, data: EvalData, songs, k, allowed=None, exclude_self=True) -> np.ndarray:
    allowed = data.pool if allowed is None else allowed
    unique, inverse = _dedupe(songs)
    top = top_k(query_vectors[unique], candidates, k, allowed, unique if exclude_self else None)
    return top[inverse]


def fused_answers(lists: Mapping[str, tuple[np.ndarray, np.ndarray]], k: int, method: str = "rrf", weights=None) -> np.ndarray:
    """Per-query fusion (search.fusion.fuse) of several (top, scores) arrays."""
    names = list(lists)
    weights = weights or {n: 1.0 for n in names}
    n_queries = len(next(iter(lists.values()))[0])
    out = np.full((n_queries, k), -1, dtype=np.int64)
    for i in range(n_queries):
        ranked = {
            n: [(int(s), float(v)) for s, v in zip(lists[n][0][i], lists[n][1][i]) if s >= 0] for n in names
        }
        fused = fuse(ranked, method, weights, k)
        out[i, : len(fused)] = [s for s, _ in fused]
    return out


def _scored_lists(query_vectors, candidates, data, songs, depth, allowed=None):
    allowed = data.pool if allowed is None else allowed
    unique, inverse = _dedupe(songs)
    top, scores = scored_top_k(query_vectors[unique], candidates, depth, allowed, unique)
    return top[inverse], scores[inverse]


def w2v_methods(
    data: EvalData,
    vectors: W2VVectors,
    label: str,
    ks: Sequence[int] = KS,
    meta: np.ndarray | None = None,
    min_plays: Sequence[int] = (),
    variants: bool = False,
    queries: Queries | None = None,
) -> list[MethodResult]:
    """The Word2Vec rows of the report for one trained model.

    ``min_plays``: also score with answers restricted to songs with at least
    that many training plays (the ``plays`` payload filter).  ``variants``:
    also score with the output vectors and a fusion of input and output
    rankings.  ``meta``: also score the hybrid (RRF of w2v and meta lists).
    """
    queries = queries or data.queries
    kmax = max(ks)
    songs = queries.song
    allowed = data.pool & vectors.known
    results = []

    def run(name, fn, note=""):
        start = time.perf_counter()
        answers = fn()
        results.append(score(name, answers, data, queries, ks, note, time.perf_counter() - start))

    run(label, lambda: vector_answers(vectors.inputs, vectors.inputs, data, songs, kmax, allowed), "cosine of input vectors")
    for m in min_plays:
        mask = allowed & (data.train_plays >= m)
        run(f"{label}, plays >= {m}", lambda mask=mask: vector_answers(vectors.inputs, vectors.inputs, data, songs, kmax, mask), f"answers limited to songs with >= {m} training plays")
    if variants and vectors.outputs is not None:
        run(f"{label}, in-out", lambda: vector_answers(vectors.inputs, vectors.outputs, data, songs, kmax, allowed), "query input vector against output vectors (syn1neg)")
        run(f"{label}, out-out", lambda: vector_answers(vectors.outputs, vectors.outputs, data, songs, kmax, allowed), "cosine of output vectors (syn1neg)")

        def blend():
            depth = max(50, kmax)
            a = _scored_lists(vectors.inputs, vectors.inputs, data, songs, depth, allowed)
            b = _scored_lists(vectors.inputs, vectors.outputs, data, songs, depth, allowed)
            return fused_answers({"in": a, "out": b}, kmax)

        run(f"{label}, in+in-out RRF", blend, "RRF of the input-input and input-output rankings")
    if meta is not None:

        def hybrid():
            depth = max(50, kmax)
            a = _scored_lists(vectors.inputs, vectors.inputs, data, songs, depth, allowed)
            b = _scored_lists(meta, meta, data, songs, depth, data.pool)
            return fused_answers({"w2v": a, "meta": b}, kmax)

        run(f"hybrid ({label} + meta, RRF)", hybrid, "search.fusion.fuse, rrf, equal weights")
    return results


def baseline_methods(data: EvalData, ks: Sequence[int] = KS, meta: np.ndarray | None = None, queries: Queries | None = None, item_item: ItemItem | None = None) -> list[MethodResult]:
    queries = queries or data.queries
    kmax = max(ks)
    results = []
    start = time.perf_counter()
    results.append(score("popularity", popularity_answers(data, queries.song, kmax), data, queries, ks, "most played in training", time.perf_counter() - start))
    start = time.perf_counter()
    item_item = item_item or ItemItem(data.train, data.size)
    answers = item_item.top(queries.song, kmax, data.pool)
    results.append(score("item-item cosine", answers, data, queries, ks, "playlist co-membership, sparse", time.perf_counter() - start))
    if meta is not None:
        start = time.perf_counter()
        answers = vector_answers(meta, meta, data, queries.song, kmax)
        results.append(score("metadata", answers, data, queries, ks, "MiniLM title + hashed artist", time.perf_counter() - start))
    return results


# --------------------------------------------------------------------------- cold start

BRIDGE_NEIGHBOURS = 20
#: Softmax temperature of the bridge weights (0 = weights are the raw cosine similarities).
BRIDGE_TEMPERATURE = 0.02
CONTEXT_WINDOW = 5


def bridge_vectors(
    meta_queries: np.ndarray, meta: np.ndarray, w2v: W2VVectors, allowed: np.ndarray,
    neighbours: int = BRIDGE_NEIGHBOURS, temperature: float = BRIDGE_TEMPERATURE,
) -> np.ndarray:
    """Estimated w2v vectors: similarity-weighted mean of the w2v vectors of the nearest metadata neighbours.

    Weights are the cosine similarities, or with ``temperature`` > 0
    ``exp((sim - best sim) / temperature)``, which favours the closest ones.
    """
    top, sims = scored_top_k(meta_queries, meta, neighbours, allowed & w2v.known)
    if temperature > 0:
        sims = np.exp((sims - sims[:, :1]) / temperature)
    weights = np.where(top >= 0, np.maximum(sims, 0.0), 0.0).astype(np.float32)
    estimate = np.einsum("qk,qkd->qd", weights, w2v.inputs[np.maximum(top, 0)])
    return normalise(estimate)


def context_vectors(contexts: Sequence[np.ndarray], w2v: W2VVectors) -> np.ndarray:
    """Mean of the w2v vectors of the songs each cold song was played with (zero if none known)."""
    out = np.zeros((len(contexts), w2v.inputs.shape[1]), np.float32)
    for i, ctx in enumerate(contexts):
        ctx = ctx[w2v.known[ctx]]
        if len(ctx):
            out[i] = w2v.inputs[ctx].mean(axis=0)
    return normalise(out)


def cold_start_methods(data: EvalData, w2v: W2VVectors, meta: np.ndarray | None, ks: Sequence[int] = KS, item_item: ItemItem | None = None) -> list[MethodResult]:
    """Cold songs (hidden from training) placed by context, metadata, bridge; popularity and item-item for scale."""
    q = data.cold_queries
    if len(q) == 0:
        return []
    kmax = max(ks)
    allowed = data.pool & w2v.known
    slot = {int(c): i for i, c in enumerate(data.cold.tolist())}
    rows = np.array([slot[int(s)] for s in q.song.tolist()], dtype=np.int64)
    results = [score("popularity", popularity_answers(data, q.song, kmax), data, q, ks)]
    # item-item with the plays context averaging uses: co-membership of the songs played around it
    item_item = item_item or ItemItem(data.train, data.size)
    contexts = [data.cold_context[r] for r in rows.tolist()]
    member = sparse.csr_matrix(
        (np.ones(sum(len(c) for c in contexts), np.float32), (np.repeat(np.arange(len(contexts)), [len(c) for c in contexts]), np.concatenate(contexts) if contexts else [])),
        shape=(len(contexts), data.size),
    )
    # songs x playlists for "the playlists of its neighbours", weighted by how often each neighbour was near it
    memberships = (member @ item_item.xt).tocsr()
    memberships.data = np.minimum(memberships.data, 1.0)
    results.append(score("item-item (its neighbours' playlists)", item_item.top(q.song, kmax, data.pool, memberships=memberships), data, q, ks, "co-membership with the playlists of the songs played around it"))
    ctx = context_vectors(contexts, w2v)
    results.append(score("w2v, context average", top_k(ctx, w2v.inputs, kmax, allowed), data, q, ks, f"mean w2v vector of the songs played around it (window {CONTEXT_WINDOW})"))
    if meta is not None:
        results.append(score("metadata", top_k(meta[q.song], meta, kmax, data.pool), data, q, ks))
        bridge = bridge_vectors(meta[q.song], meta, w2v, allowed)
        how = f"w2v estimate from its {BRIDGE_NEIGHBOURS} nearest metadata neighbours" + (f", softmax weights (T={BRIDGE_TEMPERATURE})" if BRIDGE_TEMPERATURE else "")
        results.append(score("w2v, bridge from metadata", top_k(bridge, w2v.inputs, kmax, allowed), data, q, ks, how))
    return results


# --------------------------------------------------------------------------- full evaluation


@dataclass
class Evaluation:
    data: dict  # split description
    settings: dict[str, dict]  # label -> W2VSettings as dict
    train_seconds: dict[str, float]
    warm: list[MethodResult]
    cold: list[MethodResult]
    seconds: float = 0.0
    extras: dict = field(default_factory=dict)

    def table(self, which: str = "warm", k: int = HEADLINE_K) -> list[dict]:
        rows = self.warm if which == "warm" else self.cold
        return [{"method": r.name, **{m: r.at(m, k) for m in METRICS}, "note": r.note} for r in rows]

    def find(self, name: str, which: str = "warm") -> MethodResult:
        for r in self.warm if which == "warm" else self.cold:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict:
        def res(r: MethodResult):
            return {"method": r.name, "note": r.note, "metrics": {m: {str(k): v for k, v in d.items()} for m, d in r.metrics.items()}}

        return {
            "data": self.data,
            "settings": self.settings,
            "train_seconds": self.train_seconds,
            "warm": [res(r) for r in self.warm],
            "cold": [res(r) for r in self.cold],
            "seconds": self.seconds,
            "extras": self.extras,
        }


def evaluate(
    dataset: Dataset,
    settings: Mapping[str, W2VSettings],
    holdout: float = 0.1,
    seed: int = 7,
    queries: int = 5000,
    cold: int = 500,
    ks: Sequence[int] = KS,
    with_meta: bool = True,
    encoder=None,
    min_plays: Sequence[int] = (),
    variants_for: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
    keep_vectors: bool = False,
) -> Evaluation:
    """Every method on the same split and the same queries.

    ``settings`` maps a label to the W2V settings to train (e.g. ``{"w2v seed":
    ..., "w2v default": ...}``); the first one is also used for the hybrid and
    the cold-start rows.  ``min_plays`` / ``variants_for`` add the optional
    rows (answer filter; output vectors and blend) for the labels named.
    """
    say = progress or (lambda message: None)
    start = time.perf_counter()
    data = prepare(dataset, holdout, seed, queries, cold)
    say(f"split: {len(data.train)} training / {len(data.heldout)} held-out playlists, {len(data.queries)} queries, {len(data.cold_queries)} cold songs")
    meta = None
    if with_meta:
        t = time.perf_counter()
        meta = metadata_vectors(dataset, data, encoder)
        say(f"metadata vectors: {time.perf_counter() - t:.1f} s")
    item_item = ItemItem(data.train, data.size)
    warm = baseline_methods(data, ks, meta, item_item=item_item)
    say("baselines scored")
    train_seconds, vectors = {}, {}
    cold_rows: list[MethodResult] = []
    for number, (label, s) in enumerate(settings.items()):
        say(f"training {label} ...")
        v = train_vectors(data, s)
        vectors[label] = v
        train_seconds[label] = v.train_seconds
        say(f"trained {label} in {v.train_seconds:.1f} s")
        warm += w2v_methods(
            data, v, label, ks,
            meta=meta if number == 0 else None,
            min_plays=min_plays if label in variants_for else (),
            variants=label in variants_for,
        )
        if number == 0:
            cold_rows = cold_start_methods(data, v, meta, ks, item_item)
    evaluation = Evaluation(
        data={
            "source": dataset.source, "fingerprint": dataset.fingerprint, "songs": data.size,
            "pool": int(data.pool.sum()), "train_playlists": len(data.train), "heldout_playlists": len(data.heldout),
            "queries": len(data.queries), "cold_queries": len(data.cold_queries), "holdout": holdout, "seed": seed,
            "queries_with_tags": int(sum(1 for s in data.queries.song.tolist() if data.tags[s])),
        },
        settings={label: asdict(s) for label, s in settings.items()},
        train_seconds=train_seconds,
        warm=warm,
        cold=cold_rows,
        seconds=time.perf_counter() - start,
    )
    if keep_vectors:
        evaluation.extras["_vectors"] = vectors
        evaluation.extras["_meta"] = meta
        evaluation.extras["_data"] = data
    return evaluation


# --------------------------------------------------------------------------- quality gate

GATE_METRIC = f"coplay@{HEADLINE_K}"
#: A new model may be at most this much (relative) worse than the live one on GATE_METRIC.
GATE_MARGIN = 0.10
#: ... and must beat max(popularity, chance) on the same queries by this much (relative).
FLOOR_LIFT = 0.25
QUALITY_FILE = "quality.json"


@dataclass(frozen=True)
class GateProtocol:
    """How the gate samples: fixed, so that two runs on similar data are comparable.

    The gate draws fewer queries than the full evaluation (and no cold songs);
    ``train_playlists`` can cap training to a seeded subset of the training
    split for slow settings, which lowers the numbers: gate numbers are only
    comparable with gate numbers of the same ``version``.
    """

    holdout: float = 0.1
    seed: int = 7
    queries: int = 1000
    train_playlists: int | None = None  # None: the whole training split (the default settings train in ~11 s)
    k: int = HEADLINE_K
    version: str = "gate-v1"


@dataclass
class GateVerdict:
    """What :func:`quality_gate` decided, and why."""

    passed: bool
    reason: str
    metric: str
    value: float
    live_value: float | None
    margin: float
    change: float | None  # relative change against the live value: value / live_value - 1
    floor: float  # max(popularity's value, chance level) on the same queries; a model must beat it
    metrics: dict[str, float]  # w2v: hit@k, coplay@k, tags@k, coverage@k; and popularity_coplay@k
    protocol: dict
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        verdict = "passed" if self.passed else "REFUSED"
        return f"quality gate {verdict}: {self.reason}"


def quality_gate(
    dataset: Dataset,
    settings: W2VSettings,
    live_metrics: Mapping | None = None,
    margin: float = GATE_MARGIN,
    protocol: GateProtocol = GateProtocol(),
    trainer: Callable[[list[list[int]], W2VSettings], object] | None = None,
) -> GateVerdict:
    """Evaluate ``settings`` quickly on a seeded held-out split and decide whether to publish.

    Contract (for ingest/pipeline.py):

    * Call it before switching the aliases, with the dataset being ingested,
      the W2V settings being published, and ``live_metrics`` = the
      ``metrics`` dict recorded for the live version (see
      :func:`read_recorded_metrics`; None when there is no live version or it
      recorded nothing).  It trains its own model with ``settings`` on a
      capped training split (``protocol``): it never touches the store or the
      model being published.  Time: about 15-20 s on yes_complete with the
      default settings, two cores (most of it training on 90 % of the
      playlists; the seed preset takes ~1 min); well under a second on test data.
    * ``verdict.passed`` is False (refuse to publish unless ``--force``) when

      - the model does not beat ``verdict.floor`` = max(popularity, chance level)
        on ``GATE_METRIC`` (coplay@10), same queries, by ``FLOOR_LIFT`` (25 %
        relative): a broken model, whatever the live one; or
      - ``live_metrics`` was recorded under the same ``protocol.version`` and the
        new value < live value x (1 - ``margin``) (default 10 % relative drop).

      Live metrics from another protocol version are ignored (the reason says so).
    * After publishing, store ``verdict.to_dict()`` with
      :func:`record_metrics` in the new version's model directory, so that the
      next ingest compares against it.  Put ``verdict.summary()`` and the
      numbers in the ingest summary.
    * ``trainer(playlists, settings)`` replaces training (tests use it to plant
      a broken model); it returns a gensim Word2Vec.
    """
    start = time.perf_counter()
    data = prepare(dataset, protocol.holdout, protocol.seed, protocol.queries, cold=0, max_train_playlists=protocol.train_playlists)
    t = time.perf_counter()
    model = (trainer or train_word2vec)(data.train_sentences(), settings)
    vectors = vectors_from_model(model, data, time.perf_counter() - t)
    k = protocol.k
    ks = (k,)
    row = w2v_methods(data, vectors, "w2v", ks)[0]
    pop = score("popularity", popularity_answers(data, data.queries.song, k), data, data.queries, ks)
    metrics = {f"{m}@{k}": round(float(row.at(m, k)), 6) for m in METRICS}
    metrics[f"popularity_coplay@{k}"] = round(float(pop.at("coplay", k)), 6)
    metrics[f"chance_coplay@{k}"] = round(chance_coplay(data, data.queries), 6)
    metrics["train_seconds"] = round(vectors.train_seconds, 3)
    metric = f"coplay@{k}"
    value = metrics[metric]
    floor = max(metrics[f"popularity_coplay@{k}"], metrics[f"chance_coplay@{k}"])
    live_value, change = None, None
    comparable = bool(live_metrics) and live_metrics.get("protocol_version") == protocol.version and metric in live_metrics
    if comparable:
        live_value = float(live_metrics[metric])
        change = value / live_value - 1 if live_value > 0 else None
    if not (value > floor * (1 + FLOOR_LIFT)):
        passed, reason = False, f"{metric} {value:.4f} does not beat max(popularity, chance) ({floor:.4f}) by {FLOOR_LIFT:.0%} on the same queries"
    elif comparable and value < live_value * (1 - margin):
        passed, reason = False, f"{metric} {value:.4f} is {-change:.1%} below the live version's {live_value:.4f} (allowed: {margin:.0%})"
    elif comparable:
        passed, reason = True, f"{metric} {value:.4f} vs live {live_value:.4f} ({change:+.1%}, allowed drop {margin:.0%})"
    else:
        why = "no live metrics recorded" if not live_metrics else f"live metrics from another protocol ({live_metrics.get('protocol_version')})"
        passed, reason = True, f"{metric} {value:.4f} beats max(popularity, chance) ({floor:.4f}); {why}"
    metrics["protocol_version"] = protocol.version
    return GateVerdict(passed, reason, metric, value, live_value, margin, change, floor, metrics, asdict(protocol), time.perf_counter() - start)


def record_metrics(model_dir: Path, verdict: GateVerdict) -> Path:
    """Write the verdict next to a published model (``<models>/<version>/quality.json``)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / QUALITY_FILE
    path.write_text(json.dumps(verdict.to_dict(), indent=1))
    return path


def read_recorded_metrics(model_dir: Path | None) -> dict | None:
    """The ``metrics`` a version recorded with :func:`record_metrics`; None if none (or unreadable)."""
    if model_dir is None:
        return None
    try:
        return json.loads((Path(model_dir) / QUALITY_FILE).read_text())["metrics"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def format_rows(rows: list[dict], k: int = HEADLINE_K) -> tuple[list[str], list[list[str]]]:
    headers = ["method", f"hit@{k}", f"coplay@{k}", f"tags@{k}", f"coverage@{k}"]
    body = [[r["method"]] + [_fmt(r[m]) for m in METRICS] for r in rows]
    return headers, body


def _fmt(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


# --------------------------------------------------------------------------- report

#: Tags the song map colours by (the first of them a song has, in this order).
MAP_TAGS = ("hip-hop", "rnb", "country", "metal", "jazz", "dance", "classic rock", "alternative", "soul", "pop", "rock")
LABELS = {"hit": "next-song hit rate", "coplay": "co-play precision", "tags": "tag coherence", "coverage": "catalogue coverage"}


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _plot_vs_k(results: list[MethodResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_map(data: EvalData, vectors: W2VVectors, path: Path, min_plays: int = 20, seed: int = 0) -> None:
    """PCA of the w2v vectors of songs with a map tag and enough plays, coloured by tag."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks, colours = [], []
    for song in np.flatnonzero(vectors.known & (data.train_plays >= min_plays)).tolist():
        for number, tag in enumerate(MAP_TAGS):
            if tag in data.tags[song]:
                picks.append(song)
                colours.append(number)
                break
    picks, colours = np.array(picks), np.array(colours)
    x = vectors.inputs[picks] - vectors.inputs[picks].mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(picks))
    fig, ax = plt.subplots(figsize=(8, 7))
    palette = ["#1f77b4", "#d62728", "#ff7f0e", "#7f7f7f", "#2ca02c", "#e377c2", "#8c564b", "#17becf", "#9467bd", "#bcbd22", "#000000"]
    for number, tag in enumerate(MAP_TAGS):
        sel = order[colours[order] == number]
        ax.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.55, color=palette[number % len(palette)], label=f"{tag} ({len(sel)})")
    ax.legend(markerscale=4, fontsize=8, loc="best")
    ax.set_title(f"Word2Vec song vectors (default settings), first two principal components\nsongs with >= {min_plays} training plays, coloured by their first tag in the list")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _settings_diff(a: Mapping, b: Mapping) -> str:
    return ", ".join(f"{k} {a[k]} -> {b[k]}" for k in a if k not in ("workers", "seed") and a[k] != b[k]) or "same"


def write_report(evaluation: Evaluation, path: Path, tuning: Mapping | None = None, gate: GateVerdict | None = None, command: str = "make eval", default_label: str = "w2v default", seed_label: str = "w2v seed") -> Path:
    """docs/quality.md and its PNGs (in ``img/`` next to it) from one :func:`evaluate` run."""
    path = Path(path)
    labels_first = next(iter(evaluation.settings))
    img = path.parent / "img"
    img.mkdir(parents=True, exist_ok=True)
    e, d, k = evaluation, evaluation.data, HEADLINE_K
    core = [r for r in e.warm if ", " not in r.name or r.name.startswith("hybrid")]
    _plot_vs_k(core, img / "metrics_vs_k.png", f"Held-out playlists ({d['queries']} queries, {d['heldout_playlists']} held-out playlists)")
    if e.cold:
        _plot_vs_k(e.cold, img / "cold_start.png", f"Cold start ({d['cold_queries']} songs hidden from training)")
    if "_vectors" in e.extras and default_label in e.extras["_vectors"]:
        _plot_map(e.extras["_data"], e.extras["_vectors"][default_label], img / "song_map.png")

    default, seed, item = e.find(default_label), e.find(seed_label), e.find("item-item cosine")
    gain = default.at("coplay") / seed.at("coplay") - 1
    out = [
        "# Recommendation quality",
        "",
        f"Generated by `{command}` (`ingest evaluate --report docs/quality.md`); do not edit by hand.",
        "",
        f"Data: `{Path(d['source']).name}` ({d['songs']:,} songs, fingerprint `{d['fingerprint']}`). "
        f"Split seed {d['seed']}: {d['heldout_playlists']:,} whole playlists held out ({d['holdout']:.0%}), "
        f"{d['train_playlists']:,} for training; {d['pool']:,} songs known to training form the pool every method answers from. "
        f"{d['queries']:,} queries (positions of held-out playlists, song and next song known to training; "
        f"{d['queries_with_tags']:,} of them have a useful tag). Evaluation took {e.seconds:.0f} s on this machine "
        f"(2 cores, shared, `nice -n 19`), training included: "
        + ", ".join(f"{label} {s:.0f} s" for label, s in e.train_seconds.items()) + ".",
        "",
        "Metrics at k (answers exclude the query): **hit@k** the song that followed is among the k answers; "
        "**coplay@k** share of the k answers in the query's held-out playlist; **tags@k** share of the k answers "
        "sharing a useful Last.fm tag with the query (generic tags such as favorites, awesome, seen live, decades, "
        "male/female vocalists, countries are left out; queries without a useful tag are skipped); "
        "**coverage@k** share of the pool that appears in some answer.",
        "",
        "## Headline",
        "",
        f"- The default settings (`{default_label}`) against the seed notebook's (`{seed_label}`): coplay@{k} "
        f"{seed.at('coplay'):.3f} -> {default.at('coplay'):.3f} (**{gain:+.0%}**), tags@{k} {seed.at('tags'):.3f} -> "
        f"{default.at('tags'):.3f}, hit@{k} {seed.at('hit'):.3f} -> {default.at('hit'):.3f}; training "
        f"{e.train_seconds[seed_label]:.0f} s -> {e.train_seconds[default_label]:.0f} s.",
        f"- The item-item cosine baseline reaches coplay@{k} {item.at('coplay'):.3f}: the default stays "
        f"{1 - default.at('coplay') / item.at('coplay'):.0%} below it "
        f"(the seed settings {1 - seed.at('coplay') / item.at('coplay'):.0%}).",
    ]
    out.append(
        f"- The price: the default answers from a narrower set of songs (coverage@{k} {default.at('coverage'):.3f}, "
        f"seed {seed.at('coverage'):.3f}, item-item {item.at('coverage'):.3f}); it leans to well-played songs."
    )
    options = [r for r in e.warm if r.name.startswith(default_label + ",")]
    if options:
        best = max(options, key=lambda r: r.at("coplay"))
        listed = "; ".join(f"`{r.name[len(default_label) + 2:]}` {r.at('coplay') - default.at('coplay'):+.3f}" for r in options)
        if best.at("coplay") > default.at("coplay") + 0.005:
            verdict = (f"`{best.name}` gains most (coplay@{k} {best.at('coplay'):.3f}, "
                       f"{1 - best.at('coplay') / item.at('coplay'):+.0%} against item-item; tags@{k} {best.at('tags'):.3f})")
        else:
            verdict = "none of them closes the gap"
        out.append(f"- Options measured on top of the default (coplay@{k} change): {listed}: {verdict}.")
    out += ["", f"## All methods, same split, same queries (k = {k})", ""]
    headers, rows = format_rows(e.table("warm"))
    out += [_md_table(headers + ["how"], [r + [w.note] for r, w in zip(rows, e.warm)]), ""]
    out += ["![metric against k](img/metrics_vs_k.png)", ""]
    if e.cold:
        out += [
            "## Cold start",
            "",
            f"{d['cold_queries']} songs that occur in held-out playlists are hidden from training entirely (every "
            "occurrence cut out of the training playlists). Each is queried once, from one held-out occurrence, "
            f"and placed by: **context average**, the mean `{labels_first}` vector of the songs "
            "played within 5 positions of it in the training playlists (plays that happened but that the model "
            "never saw); **metadata**, its MiniLM title + artist vector; **bridge**, the similarity-weighted mean of "
            f"the w2v vectors of its {BRIDGE_NEIGHBOURS} nearest metadata neighbours, then a w2v search. Item-item "
            "with the same plays (the playlists of the songs played around it) is there for scale.",
            "",
        ]
        headers, rows = format_rows(e.table("cold"))
        out += [_md_table(headers, rows), "", "![cold start](img/cold_start.png)", ""]
    out += ["## Settings", ""]
    labels = list(e.settings)
    names = [n for n in e.settings[labels[0]] if n not in ("workers",)]
    out += [_md_table(["setting"] + labels, [[n] + [str(e.settings[l][n]) for l in labels] for n in names]), ""]
    out += [
        f"`seed` is the seed notebook's call exactly (`Word2Vec(playlists, vector_size=32, window=20, negative=50, "
        f"min_count=1)`, gensim defaults otherwise); `ingest --preset seed` still trains it. Changes: "
        f"{_settings_diff(e.settings[seed_label], e.settings[default_label])}.",
        "",
        "`sample_plays` states the down-sampling threshold as a play count (`sample` = sample_plays / plays in the "
        "corpus): the search found sample = 1e-5 on the 1.7M training plays, i.e. 17 plays; as a bare ratio the same "
        "1e-5 down-samples nearly every play of a small dataset such as yes_small and ruins the model there.",
        "",
    ]
    if tuning:
        out += [
            "## Hyperparameter search",
            "",
            f"`python -m ingest.tune` (time boxes totalling {tuning['budget_min']:.0f} min for a first pass and an `--extend` pass, spent {tuning['elapsed_min']:.0f} min; training times measured while other jobs shared the machine): "
            "coordinate search from the seed settings in the spirit of Caselles-Dupré et al., RecSys 2018, "
            f"on a *different* split (seed {tuning['split_seed']}, {tuning['queries']} queries) so that the defaults "
            "were not picked on the queries above. A value is kept when it raises coplay@10 without lowering tags@10 "
            f"by more than {tuning['tag_tolerance']} and trains within {tuning['max_train_s']:.0f} s; a trial whose first "
            "epoch predicted more than the trial cap was stopped (\"too slow\"). Columns `>=3`, `>=10`: coplay@10 "
            "with answers limited to songs with at least that many training plays.",
            "",
        ]
        rows = []
        for t in tuning["trials"]:
            m = t.get("metrics", {})
            rows.append([
                t["step"], f"{t['train_seconds']:.0f}" + (" (est.)" if t.get("too_slow") else ""),
                _fmt(m.get("coplay")), _fmt(m.get("tags")), _fmt(m.get("hit")),
                _fmt(m.get("plays >= 3 coplay")), _fmt(m.get("plays >= 10 coplay")),
                "too slow" if t.get("too_slow") else "",
            ])
        out += [_md_table(["step (from the current best)", "train s", "coplay@10", "tags@10", "hit@10", ">=3", ">=10", ""], rows), ""]
    if gate:
        m = gate.metrics
        out += [
            "## Quality gate (publish)",
            "",
            f"`ingest.evaluate.quality_gate` trains the settings being published on a seeded split "
            f"(protocol `{gate.protocol['version']}`: {gate.protocol['train_playlists'] or 'all'} training playlists of the split, "
            f"{gate.protocol['queries']} queries, holdout {gate.protocol['holdout']}, seed {gate.protocol['seed']}) and "
            f"refuses when {gate.metric} does not beat max(popularity, chance) by {FLOOR_LIFT:.0%}, or is more than "
            f"{gate.margin:.0%} (relative) below the live version's recorded value. On this data with the default "
            f"settings it took {gate.seconds:.0f} s: {gate.metric} {gate.value:.3f} (popularity "
            f"{m[f'popularity_coplay@{k}']:.3f}, chance {m[f'chance_coplay@{k}']:.3f}), tags@{k} {m[f'tags@{k}']:.3f}. "
            f"Verdict: {gate.reason}.",
            "",
        ]
    out += ["![song map](img/song_map.png)", ""] if (img / "song_map.png").exists() else []
    path.write_text("\n".join(out))
    return path

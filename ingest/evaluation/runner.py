"""Every method on one split and the same queries: baselines in numpy, served methods
through ``SongSearch`` on a store built from the split's model."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import sparse

from ingest.dataset import Dataset
from ingest.evaluation.baselines import ItemItem, RP3Beta, popularity_answers
from ingest.evaluation.continuation import continuation_methods, shape_methods
from ingest.evaluation.metrics import HEADLINE_K, KS, METRICS, MethodResult, score
from ingest.evaluation.served import ServedModel
from ingest.evaluation.split import EvalData, prepare
from ingest.train import W2VSettings, train_word2vec
from search.query import EvidenceFusion

DEFAULT_LABEL = "default"
#: RP3beta as often published (beta 0.5), and as tuned for coplay@10 on the tuning split (seed 11):
#: there no popularity penalty (beta 0, i.e. P3alpha) wins co-play and hit rate, at low coverage.
RP3BETA_ROWS = (
    ("RP3beta", 1.0, 0.5, ""),
    ("RP3beta, tuned", 0.5, 0.0, " (best coplay@10 on the tuning split)"),
)

@dataclass
class Evaluation:
    data: dict  # split description
    settings: dict[str, dict]  # label -> W2VSettings as dict
    train_seconds: dict[str, float]
    warm: list[MethodResult]
    cold: list[MethodResult]
    seconds: float = 0.0
    #: playlist continuation from the first songs of held-out playlists (the first settings' store)
    continuation: list[MethodResult] = field(default_factory=list)
    #: the default answer, --per-artist 1 and --diversity 0.5: {"result": MethodResult, "artists": mean distinct artists}
    shapes: list[dict] = field(default_factory=list)
    #: label -> (catalogue indexes known to the model, their Word2Vec vectors), for the song map
    vectors: dict = field(default_factory=dict, repr=False)
    split: EvalData | None = field(default=None, repr=False)

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
            "continuation": [res(r) for r in self.continuation],
            "shapes": [{**res(row["result"]), "artists": row["artists"]} for row in self.shapes],
            "seconds": self.seconds,
        }


def _timed(results: list, name: str, note: str, answer: Callable[[], np.ndarray], data: EvalData, queries, ks) -> None:
    start = time.perf_counter()
    answers = answer()
    results.append(score(name, answers, data, queries, ks, note, time.perf_counter() - start))


def warm_methods(served: ServedModel, label: str, ks: Sequence[int], with_meta: bool, fusion: EvidenceFusion | None = None) -> list[MethodResult]:
    """The served answers of one model: the default (Word2Vec and co-play fused by Qdrant),
    each evidence alone, and the hybrid with the metadata collection."""
    data, k, results = served.data, max(ks), []
    songs = data.queries.song
    extra = {} if fusion is None else {"fusion": fusion}
    asks = [
        (label, "`search similar`: Word2Vec and co-play, one fused Qdrant query", lambda s, song: s.similar(song, limit=k, **extra)),
        (f"{label}, Word2Vec only", "`--evidence w2v`", lambda s, song: s.similar(song, limit=k, evidence="w2v")),
        (f"{label}, co-play only", "`--evidence coplay`", lambda s, song: s.similar(song, limit=k, evidence="coplay")),
    ]
    if with_meta:
        asks.append((f"{label}, hybrid", "`--hybrid`: the default fused with songs_meta (RRF)", lambda s, song: s.similar_hybrid(song, limit=k)))
    for name, note, ask in asks:
        _timed(results, name, note, lambda ask=ask: served.answers(songs, k, ask), data, data.queries, ks)
    return results


def baseline_methods(data: EvalData, ks: Sequence[int], item_item: ItemItem) -> list[MethodResult]:
    k, songs, results = max(ks), data.queries.song, []
    _timed(results, "popularity", "most played in training", lambda: popularity_answers(data, songs, k), data, data.queries, ks)
    _timed(results, "item-item cosine", "playlist co-membership, sparse", lambda: item_item.top(songs, k, data.pool), data, data.queries, ks)
    for name, alpha, beta, how in RP3BETA_ROWS:
        rp3 = RP3Beta(data.train, data.size, alpha, beta)
        _timed(results, name, f"random walk song-playlist-song, alpha {alpha}, beta {beta}{how}", lambda rp3=rp3: rp3.top(songs, k, data.pool), data, data.queries, ks)
    return results


def cold_methods(dataset: Dataset, served: ServedModel, ks: Sequence[int], item_item: ItemItem, with_meta: bool) -> list[MethodResult]:
    """Songs hidden from training, placed from the songs played around them or from their metadata."""
    data, q, k = served.data, served.data.cold_queries, max(ks)
    if len(q) == 0:
        return []
    slot = {int(c): i for i, c in enumerate(data.cold.tolist())}
    contexts = [data.cold_context[slot[int(s)]] for s in q.song.tolist()]
    results = [score("popularity", popularity_answers(data, q.song, k), data, q, ks)]
    member = sparse.csr_matrix(
        (np.ones(sum(len(c) for c in contexts), np.float32), (np.repeat(np.arange(len(contexts)), [len(c) for c in contexts]), np.concatenate(contexts) if contexts else [])),
        shape=(len(contexts), data.size),
    )
    memberships = (member @ item_item.xt).tocsr()  # the playlists of the songs played around it
    memberships.data = np.minimum(memberships.data, 1.0)
    results.append(score("item-item (its neighbours' playlists)", item_item.top(q.song, k, data.pool, memberships=memberships, excluded=contexts), data, q, ks, "co-membership with the playlists of the songs played around it (those songs left out, as cold start does)"))
    context_of = {int(s): c for s, c in zip(q.song.tolist(), contexts)}
    context_ids = lambda song: [int(i) for i in data.ids[np.unique(context_of[int(np.searchsorted(data.ids, song))])]]  # noqa: E731
    asks = [("cold start, context", "`cold-start --context` with the songs played within 5 positions of it", lambda s, song: s.cold_start(context=context_ids(song), limit=k))]
    if with_meta:
        meta = lambda song: dataset.songs[song]  # noqa: E731
        asks.append(("cold start, title + artist", "`cold-start --title --artist`: songs_meta fused with the bridge", lambda s, song: s.cold_start(title=meta(song).title, artist=meta(song).artist, limit=k)))
    for name, note, ask in asks:
        answers = np.full((len(q), k), -1, np.int64)
        for row, song in enumerate(q.song.tolist()):
            if name.endswith("context") and not len(context_of[song]):
                continue
            ids = ask(served.search, int(data.ids[song])).ids[:k]
            answers[row, : len(ids)] = np.searchsorted(data.ids, ids)
        results.append(score(name, answers, data, q, ks, note))
    return results


def evaluate(
    dataset: Dataset,
    settings: Mapping[str, W2VSettings],
    holdout: float = 0.1,
    seed: int = 7,
    queries: int = 5000,
    cold: int = 500,
    ks: Sequence[int] = KS,
    encoder=None,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Every method on the same split and the same queries.

    ``settings`` maps a label to the W2V settings to train; the first is also
    published with songs_meta (``encoder``; None: no metadata rows) for the
    hybrid and cold-start rows.
    """
    say = progress or (lambda message: None)
    start = time.perf_counter()
    data = prepare(dataset, holdout, seed, queries, cold)
    say(f"split: {len(data.train)} training / {len(data.heldout)} held-out playlists, {len(data.queries)} queries, {len(data.cold_queries)} cold songs")
    item_item = ItemItem(data.train, data.size)
    warm = baseline_methods(data, ks, item_item)
    say("baselines scored")
    train_seconds, vectors = {}, {}
    cold_rows: list[MethodResult] = []
    continuation: list[MethodResult] = []
    shapes: list[dict] = []
    for number, (label, s) in enumerate(settings.items()):
        t = time.perf_counter()
        model = train_word2vec(data.train_sentences(), s)
        train_seconds[label] = time.perf_counter() - t
        say(f"trained {label} in {train_seconds[label]:.1f} s; publishing it into a scratch store ...")
        words = np.searchsorted(data.ids, np.array([int(w) for w in model.wv.index_to_key], dtype=np.int64))
        vectors[label] = (words, np.asarray(model.wv.vectors, np.float32))
        with ServedModel(dataset, data, model, encoder if number == 0 else None) as served:
            warm += warm_methods(served, label, ks, with_meta=encoder is not None and number == 0)
            if number == 0:
                cold_rows = cold_methods(dataset, served, ks, item_item, encoder is not None)
                continuation = continuation_methods(served, item_item, ks)
                shapes = shape_methods(served, ks)
        say(f"scored {label}")
    return Evaluation(
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
        continuation=continuation,
        shapes=shapes,
        seconds=time.perf_counter() - start,
        vectors=vectors,
        split=data,
    )

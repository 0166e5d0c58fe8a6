"""The query core: how every answer is asked of Qdrant.

``SongSearch`` serves these functions and the evaluation measures them, so
what ``docs/quality.md`` reports is what ``search`` answers.  They read the
collections through a :class:`~search.store.Reader` only.

* A **probe** is what a query starts from: a Word2Vec vector and, where known,
  a co-play vector (a song's stored vectors; for a context, the mean of its
  songs' Word2Vec vectors and the sum of their co-play vectors).
* **songs_w2v** answers one Qdrant query: by default the fusion of the
  nearest Word2Vec vectors and the largest co-play dot products
  (``evidence="fused"``), or either alone.
* Answers from **both collections** (hybrid, metadata cold start) are fused
  here, by :mod:`search.fusion`: Qdrant fuses only within one collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal, Mapping, Sequence

import numpy as np

from search import fusion as fu
from search.contract import COPLAY_VECTOR, ArgumentError
from search.store import Diversify, Fusion, Hit, Nearest, PayloadFilter, Point, Reader, Recommend, Search, Sparse, per_artist

Evidence = Literal["fused", "w2v", "coplay"]
EVIDENCE: tuple[str, ...] = ("fused", "w2v", "coplay")

#: Metadata neighbours whose Word2Vec vectors estimate a new song's (the bridge).
BRIDGE_NEIGHBOURS = 20
#: Bridge weights: softmax of the neighbours' cosines at this temperature (0: the raw cosines).
BRIDGE_TEMPERATURE = 0.02
#: The bridge is an estimate: unless told otherwise it counts half as much as direct metadata
#: evidence, so that a known artist's songs lead.
BRIDGE_WEIGHT = 0.5
#: MMR (``diversity``) re-ranks this many times ``limit`` candidates (at least MIN_DIVERSITY_CANDIDATES),
#: so that it can pick songs beyond the plain top ``limit`` rather than only reorder them; more
#: candidates cost relevance faster than they add spread (MMR's relevance is the Word2Vec cosine
#: alone, not the fused rank)
DIVERSITY_CANDIDATES = 3
MIN_DIVERSITY_CANDIDATES = 30
#: recommend's best-score stage scores this many times its list's depth of the songs nearest to
#: the likes' mean (one scan; best score over every song scans once per like and dislike)
RECOMMEND_AMONG = 1


@dataclass(frozen=True)
class EvidenceFusion:
    """How songs_w2v fuses its two kinds of evidence.  The defaults were chosen on the tuning
    split (`make tune`, docs/fusion_tuning.json): a large k and more weight on co-play raise
    co-play precision, hit rate and tag coherence there.  Lists twice as deep (depth_factor 2)
    raised co-play@10 by 0.006 there but cost a query about a tenth of its time, and coverage."""

    method: Literal["rrf", "dbsf"] = "rrf"
    k: int = 100
    w2v_weight: float = 1.0
    coplay_weight: float = 2.0
    #: how deep each list is read, as a multiple of fusion.candidates(limit, k)
    depth_factor: float = 1.0

    def depth(self, limit: int) -> int:
        return max(limit, int(round(fu.candidates(limit, self.k) * self.depth_factor)))


DEFAULT_FUSION = EvidenceFusion()


@dataclass(frozen=True)
class Probe:
    """What a query starts from.  With ``likes``, the Word2Vec side is Qdrant's recommend query
    (best score) from the liked songs' vectors away from the ``dislikes``; ``vector`` is then
    the likes' mean (for MMR and the cosine shown)."""

    vector: np.ndarray
    coplay: Sparse | None = None
    likes: tuple[np.ndarray, ...] = ()
    dislikes: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True)
class Result:
    song_id: int
    title: str
    artist: str
    score: float
    sources: tuple[str, ...]
    plays: int = 0
    #: training playlists shared with the query song (or with the context); None: not known
    coplays: int | None = None
    #: cosine of the Word2Vec vectors of the answer and of the query; None: not known
    cosine: float | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "song_id": self.song_id, "title": self.title, "artist": self.artist, "score": self.score,
            "sources": list(self.sources), "plays": self.plays, "coplays": self.coplays,
            "cosine": self.cosine, "tags": list(self.tags),
        }


@dataclass(frozen=True)
class Answer:
    """The results of one query, best first, what the query skipped (and why), and what it
    answered: ``query`` names the songs it resolved (``Songs like 2172 Fade To Black, Metallica``)."""

    results: tuple[Result, ...]
    skipped: tuple[str, ...] = ()
    query: str = ""
    #: how many results were asked for
    limit: int | None = None

    @property
    def note(self) -> str | None:
        """Why the answer is shorter than its limit (never silently): every search behind it is
        exact or read deeper than the limit, so fewer results means fewer songs match."""
        if self.limit is None or len(self.results) >= self.limit:
            return None
        return f"{len(self.results)} songs answer, fewer than the {self.limit} asked: no more songs match"

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> Result:
        return self.results[index]

    @property
    def ids(self) -> list[int]:
        return [r.song_id for r in self.results]


def probe_of(point: Point) -> Probe:
    return Probe(point.vector, point.sparse.get(COPLAY_VECTOR))


def context_probe(points: Sequence[Point]) -> Probe:
    """Mean Word2Vec vector and summed co-play vector of the context songs."""
    vector = np.mean(np.stack([p.vector for p in points]), axis=0)
    indices = [p.sparse[COPLAY_VECTOR].indices for p in points if COPLAY_VECTOR in p.sparse]
    if not indices:
        return Probe(vector)
    values = [p.sparse[COPLAY_VECTOR].values for p in points if COPLAY_VECTOR in p.sparse]
    dims, inverse = np.unique(np.concatenate(indices), return_inverse=True)
    return Probe(vector, Sparse.of(dims, np.bincount(inverse, weights=np.concatenate(values))))


def recommend_probe(likes: Sequence[Point], dislikes: Sequence[Point]) -> Probe:
    """Likes and dislikes: recommend on Word2Vec, the likes' summed co-play vectors on co-play."""
    context = context_probe(likes)
    return Probe(context.vector, context.coplay, tuple(p.vector for p in likes), tuple(p.vector for p in dislikes))


def diversify(probe: Probe, limit: int, diversity: float | None, shown: int | None = None, most_per_artist: int | None = None) -> Diversify | None:
    """MMR picking ``limit`` answers, of which ``shown`` (default: all) are shown, from candidates
    with at most ``most_per_artist`` songs of one artist."""
    if not diversity:
        return None
    return Diversify(probe.vector, diversity, max(MIN_DIVERSITY_CANDIDATES, DIVERSITY_CANDIDATES * (shown or limit), limit), most_per_artist)


def w2v_request(probe: Probe, limit: int, flt: PayloadFilter, evidence: Evidence = "fused", fusion: EvidenceFusion = DEFAULT_FUSION,
                diversity: float | None = None, shown: int | None = None, most_per_artist: int | None = None) -> Search:
    """The one Qdrant query songs_w2v answers for ``probe`` (co-play evidence only where the probe
    has it), its answers re-ranked by MMR with ``diversity``; ``shown``: how many of the ``limit``
    answers are shown (fewer when a per-artist cap reads deeper), which MMR's candidates follow;
    ``most_per_artist`` caps MMR's candidates (so MMR's answers) per artist."""
    mmr = diversify(probe, limit, diversity, shown, most_per_artist)
    depth = fusion.depth(mmr.candidates if mmr else limit)
    dense = Recommend(probe.likes, probe.dislikes, among=RECOMMEND_AMONG * depth) if probe.likes else Nearest(probe.vector)
    coplay = Nearest(probe.coplay, COPLAY_VECTOR) if probe.coplay is not None and len(probe.coplay) else None
    if evidence == "coplay" and coplay is not None:
        return Search((coplay,), limit, flt, diversify=mmr)
    if evidence == "w2v" or coplay is None:
        return Search((dense,), limit, flt, diversify=mmr)
    if fusion.method == "rrf":
        weights = (fusion.w2v_weight, fusion.coplay_weight)
    elif (fusion.w2v_weight, fusion.coplay_weight) != (1.0, 1.0):
        raise ArgumentError("fusion", "dbsf takes no weights (Qdrant's DBSF is unweighted)")
    else:
        weights = None
    return Search((dense, coplay), limit, flt, Fusion(fusion.method, fusion.k, weights), depth, diversify=mmr)


def capped(run: Callable[[int], list[Hit]], limit: int, most: int | None) -> list[Hit]:
    """``run(n)``'s top ``limit`` with at most ``most`` songs by one artist: Python Edge has no
    group query, so ask ever deeper until the cap leaves ``limit`` songs or nothing is left."""
    if most is None:
        return run(limit)
    depth = limit * 3
    while True:
        hits = run(depth)
        kept = per_artist(hits, most)
        if len(kept) >= limit or len(hits) < depth:
            return kept[:limit]
        depth *= 4


def bridge_probe(reader: Reader, w2v: str, meta: str, meta_vector: np.ndarray, exclude: Sequence[int], temperature: float = BRIDGE_TEMPERATURE) -> Probe | None:
    """A Word2Vec vector for a song known by metadata only: the weighted mean of the Word2Vec
    vectors of its nearest metadata neighbours (softmax of their cosines at ``temperature``)."""
    hits = reader.search(meta, Search((Nearest(meta_vector),), BRIDGE_NEIGHBOURS, PayloadFilter().without_ids(exclude)))
    hits = sorted(hits, key=lambda h: (-h.score, h.song_id))  # tied neighbours summed in one order, whatever the engine's
    found = reader.retrieve(w2v, [h.song_id for h in hits], with_vectors=True, with_payload=False)
    pairs = [(found[h.song_id].vector, h.score) for h in hits if h.song_id in found]
    if not pairs:
        return None
    sims = np.array([s for _, s in pairs], dtype=np.float64)
    weights = np.exp((sims - sims.max()) / temperature) if temperature > 0 else np.maximum(sims, 0.0)
    if weights.sum() <= 0:
        return None
    return Probe(np.average(np.stack([v for v, _ in pairs]), axis=0, weights=weights))


def with_evidence(reader: Reader, w2v: str, hits: Sequence[Hit], sources: Mapping[int, tuple[str, ...]], probe: Probe | None) -> list[Result]:
    """Results with what a person needs to judge them: shared playlists and Word2Vec cosine."""
    stored = reader.retrieve(w2v, [h.song_id for h in hits], with_vectors=True, with_payload=False) if probe is not None and hits else {}
    query_dims = probe.coplay.indices if probe is not None and probe.coplay is not None else None
    query_norm = float(np.linalg.norm(probe.vector)) if probe is not None else 0.0
    results = []
    for hit in hits:
        point, payload = stored.get(hit.song_id), hit.payload or {}
        coplays = cosine = None
        if point is not None:
            if query_dims is not None:
                answer = point.sparse.get(COPLAY_VECTOR)
                coplays = len(np.intersect1d(query_dims, answer.indices, assume_unique=True)) if answer is not None else 0
            norm = float(np.linalg.norm(point.vector)) * query_norm
            cosine = float(np.dot(point.vector, probe.vector) / norm) if norm > 0 else 0.0
        found_by = sources[hit.song_id]
        if coplays == 0 and "coplay" in found_by and len(found_by) > 1:  # the Word2Vec side found it alone
            found_by = tuple(s for s in found_by if s != "coplay")
        results.append(Result(
            hit.song_id, payload.get("title", ""), payload.get("artist", ""), hit.score, found_by,
            int(payload.get("plays", 0)), coplays, cosine, tuple(payload.get("tags", ())),
        ))
    return results


def fuse_lists(lists: Mapping[str, tuple[tuple[str, ...], list[Hit]]], limit: int, method: str, weights: Mapping[str, float]) -> tuple[list[Hit], dict[int, tuple[str, ...]]]:
    """Fuse ranked lists of two collections (named by side, each with the evidence it asked for);
    each answer says which evidence found it."""
    ranked = {side: [(h.song_id, h.score) for h in hits] for side, (_, hits) in lists.items()}
    payload = {h.song_id: h.payload for _, hits in lists.values() for h in hits}
    found_in = {side: {h.song_id for h in hits} for side, (_, hits) in lists.items() if weights.get(side, 1.0) > 0}
    fused = [Hit(song_id, score, payload[song_id]) for song_id, score in fu.fuse(ranked, method, weights, limit)]
    sources = {
        h.song_id: tuple(e for side, (evidence, _) in lists.items() if h.song_id in found_in.get(side, ()) for e in evidence)
        for h in fused
    }
    return fused, sources


def w2v_sources(request: Search, label: str = "w2v") -> tuple[str, ...]:
    """What a songs_w2v query asked: the Word2Vec side (``label``), the co-play side, or both."""
    return tuple("coplay" if n.using == COPLAY_VECTOR else label for n in request.lists)

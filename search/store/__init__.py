"""Two small storage interfaces, two backends behind them.

* :class:`Reader`: what ``search`` needs (aliases, counts, points, one query).
* :class:`Writer`: what ``ingest`` needs (collections, points, aliases).

Backends implement both (:class:`Store`):

* ``EdgeStore``: Qdrant Edge in-process, under ``SONGSEARCH_HOME`` (the default).
* ``ServerStore``: a Qdrant server through qdrant-client (``QDRANT_URL``); its
  in-memory local mode stands in for a server in tests.

Backends are imported lazily so that ``search similar`` never pays for
qdrant-client's import when it runs embedded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Iterator, Literal, Mapping, Sequence

import numpy as np

from search.contract import IndexSettings, Layout, Settings


@dataclass(frozen=True, slots=True)
class Sparse:
    """A sparse vector: dimension numbers (ascending) and their values."""

    indices: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, indices, values) -> "Sparse":
        return cls(np.asarray(indices, dtype=np.int64), np.asarray(values, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class PayloadFilter:
    """Conditions on the payload; every set field must hold (all inside Qdrant, on indexed fields)."""

    artist_key: str | None = None
    min_plays: int | None = None
    exclude_ids: frozenset[int] = field(default_factory=frozenset)
    max_plays: int | None = None
    #: every one of these tags
    tags: tuple[str, ...] = ()
    #: none of these artist keys
    exclude_artists: frozenset[str] = field(default_factory=frozenset)
    #: every one of these words in the full-text indexed name field (contract.NAME_FIELD)
    name_words: str | None = None

    def without_ids(self, ids) -> "PayloadFilter":
        return replace(self, exclude_ids=self.exclude_ids | frozenset(int(i) for i in ids))

    def __bool__(self) -> bool:
        return any((self.artist_key is not None, self.min_plays is not None, self.max_plays is not None,
                    self.exclude_ids, self.tags, self.exclude_artists, self.name_words))


@dataclass(frozen=True)
class Nearest:
    """One ranked list: the points nearest to ``vector`` by the named vector ``using``
    (None: the collection's default dense vector)."""

    vector: np.ndarray | Sparse
    using: str | None = None


@dataclass(frozen=True)
class Recommend:
    """One ranked list by Qdrant's recommend query (best-score strategy): near any of the
    ``positives``, away from the ``negatives``, by the named vector ``using``.  With ``among``,
    it scores only the ``among`` points nearest to the positives' mean (a prefetch stage: one
    scan of the collection instead of one per example)."""

    positives: tuple[np.ndarray, ...]
    negatives: tuple[np.ndarray, ...] = ()
    using: str | None = None
    among: int = 0

    @property
    def centre(self) -> Nearest:
        """The query whose first ``among`` answers this one re-scores."""
        return Nearest(np.mean(np.stack(self.positives), axis=0), self.using)


@dataclass(frozen=True)
class Diversify:
    """Qdrant's maximal marginal relevance over the query's first ``candidates`` answers:
    relevance is the cosine to ``vector``; ``diversity`` 0 keeps the order, 1 maximises spread."""

    vector: np.ndarray
    diversity: float
    candidates: int
    #: at most this many songs of one artist among the candidates (the most relevant of each),
    #: read deeper until ``limit`` are left: MMR then picks from songs the cap lets through
    per_artist: int | None = None


@dataclass(frozen=True)
class Fusion:
    """How Qdrant fuses prefetched lists: ``rrf`` (weighted, constant ``k``) or ``dbsf`` (unweighted)."""

    method: Literal["rrf", "dbsf"] = "rrf"
    k: int = 60
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Search:
    """One Qdrant query: the nearest points to one vector, or (with ``fusion``) the fusion of
    several lists, each prefetched ``depth`` deep; ``filter`` holds on every list."""

    lists: tuple[Nearest | Recommend, ...]
    limit: int
    filter: PayloadFilter | None = None
    fusion: Fusion | None = None
    depth: int = 0
    exact: bool = False
    #: re-rank (MMR) the first ``diversify.candidates`` answers of the lists above
    diversify: Diversify | None = None

    @property
    def first_depth(self) -> int:
        """How many answers the first stage (the vector search itself) is asked for."""
        return self.depth if self.fusion is not None else self.limit

    def deeper(self, factor: int) -> "Search":
        """This request with every stage asking ``factor`` times as many answers."""
        lists = tuple(replace(n, among=n.among * factor) if isinstance(n, Recommend) else n for n in self.lists)
        return replace(self, lists=lists, limit=self.limit * factor, depth=self.depth * factor)

    def over_asked(self) -> tuple["Search", frozenset[int]]:
        """This request without its excluded ids, every stage asking that many more answers,
        and the ids to drop from what it returns.  A "not these ids" condition is checked on
        every point an exact scan reads, which costs more than the rest of the query; leaving
        a few known ids out afterwards costs nothing."""
        excluded = self.filter.exclude_ids if self.filter is not None else frozenset()
        if not excluded:
            return self, frozenset()
        more = len(excluded)
        asked = replace(self, limit=self.limit + more, depth=self.depth + more if self.depth else 0,
                        filter=replace(self.filter, exclude_ids=frozenset()))
        return asked, excluded


@dataclass(frozen=True)
class Hit:
    song_id: int
    score: float
    payload: dict


#: the payload field :func:`per_artist` caps by
ARTIST_FIELD = "artist_key"


def per_artist(hits: Sequence[Hit], most: int) -> list[Hit]:
    """At most ``most`` songs by one artist (the payload's ``artist_key``), in order."""
    seen: dict[str, int] = {}
    kept = []
    for hit in hits:
        artist = (hit.payload or {}).get(ARTIST_FIELD, "")
        if seen.get(artist, 0) < most:
            seen[artist] = seen.get(artist, 0) + 1
            kept.append(hit)
    return kept


def left_out(hits: Sequence[Hit], excluded: frozenset[int], limit: int) -> list[Hit]:
    """The answer of an :meth:`Search.over_asked` request: its hits but the excluded ids."""
    return [h for h in hits if h.song_id not in excluded][:limit]


@dataclass(frozen=True)
class Point:
    """A stored point: payload, and (when asked for) its dense vector and named sparse vectors."""

    song_id: int
    payload: dict | None = None
    vector: np.ndarray | None = None
    sparse: Mapping[str, Sparse] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record, with_vectors: bool) -> "Point":
        """From a record of either Qdrant client: ``vector`` is the dense list, or a dict of
        named vectors ("" the dense one) whose sparse ones have ``indices`` and ``values``."""
        if not with_vectors:
            return cls(int(record.id), record.payload)
        vectors = record.vector if isinstance(record.vector, dict) else {"": record.vector}
        dense = vectors.get("")
        sparse = {name: Sparse.of(v.indices, v.values) for name, v in vectors.items() if name}
        return cls(int(record.id), record.payload, None if dense is None else np.asarray(dense, dtype=np.float32), sparse)


def point_batches(ids, vectors: np.ndarray, payloads, sparse: Mapping[str, Sequence[Sparse]] | None, size: int, convert) -> Iterator[list[tuple]]:
    """Points to upsert, ``size`` at a time, as (id, vector, payload): the dense vector as a list,
    or ``{"": dense, name: convert(sparse), ...}`` when the point has non-empty sparse vectors."""
    vectors = np.asarray(vectors, dtype=np.float32)
    sparse = sparse or {}
    for start in range(0, len(ids), size):
        batch = []
        for row, (song, dense, payload) in enumerate(zip(ids[start : start + size], vectors[start : start + size].tolist(), payloads[start : start + size]), start):
            named = {name: convert(rows[row]) for name, rows in sparse.items() if len(rows[row])}
            batch.append((int(song), {"": dense, **named} if named else dense, payload))
        yield batch


def error_line(exc: BaseException) -> str:
    """The first line of an engine's or client's error (theirs run to pages), for a one-line message."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def quantization_params(index: IndexSettings, request: Search) -> dict:
    """How a search treats int8 copies: an exact search ignores them; otherwise the best of them
    are rescored with the stored vectors (``IndexSettings.oversampling_for`` the first stage's
    depth).  Sent on every search: Qdrant ignores them on a collection without quantization."""
    return {"ignore": True} if request.exact else {"rescore": True, "oversampling": index.oversampling_for(request.first_depth)}


class Reader(ABC):
    """Reading collections. ``collection`` may be an alias or a physical name."""

    @abstractmethod
    def aliases(self) -> dict[str, str]:
        """alias -> physical collection."""

    @abstractmethod
    def count(self, collection: str, flt: PayloadFilter | None = None) -> int: ...

    @abstractmethod
    def exists(self, collection: str, flt: PayloadFilter) -> bool:
        """Whether any point matches ``flt``: stops at the first, where counting reads them all."""

    @abstractmethod
    def retrieve(self, collection: str, ids: Sequence[int], with_vectors: bool = False, with_payload: bool = True) -> dict[int, Point]:
        """The points of those ids that exist, with payloads (unless not asked for: their
        conversion costs more than the vectors') and vectors when asked for."""

    @abstractmethod
    def quantization(self, collection: str) -> str | None:
        """The quantization the collection was created with (``Layout.quantization``)."""

    def search(self, collection: str, request: Search) -> list[Hit]:
        """Best first; ``request.exact`` skips the HNSW index (for measuring it).  MMR
        (``request.diversify``) is a second query over just the first query's candidates:
        as a stage over prefetched points it would need the exclusions as a filter there, which
        Qdrant checks against every point of the collection."""
        mmr = request.diversify
        if mmr is None:
            return self._query(collection, request)
        candidates = self._mmr_candidates(collection, replace(request, limit=mmr.candidates, diversify=None), mmr, request.limit)
        return self._mmr(collection, mmr, [h.song_id for h in candidates], request.limit) if candidates else []

    def _mmr_candidates(self, collection: str, first: Search, mmr: Diversify, wanted: int) -> list[Hit]:
        """``first``'s answers, capped by ``mmr.per_artist``: each round reads four times deeper
        until ``wanted`` songs are left or the collection has no more to give."""
        while True:
            # the artist only: a payload costs more to hand over than the rest of a hit
            found = self._query(collection, first, with_payload=[ARTIST_FIELD] if mmr.per_artist is not None else False)
            if mmr.per_artist is None:
                return found
            kept = per_artist(found, mmr.per_artist)
            if len(kept) >= wanted or len(found) < first.limit:
                return kept
            first = first.deeper(4)

    @abstractmethod
    def _query(self, collection: str, request: Search, with_payload: bool | Sequence[str] = True) -> list[Hit]:
        """:meth:`search` without ``request.diversify``: one Qdrant query (hits without payloads
        unless ``with_payload``: True, or the payload fields to return)."""

    @abstractmethod
    def _mmr(self, collection: str, mmr: Diversify, ids: Sequence[int], limit: int) -> list[Hit]:
        """Qdrant's MMR over the points ``ids`` only: ``limit`` of them, one Qdrant query."""

    @abstractmethod
    def scroll_ids(self, collection: str) -> list[int]:
        """Every point id, ascending."""

    @abstractmethod
    def search_text(self, collection: str, field: str, text: str, limit: int, flt: PayloadFilter | None = None) -> list[Hit]:
        """Points ranked by BM25 of ``text`` over ``field``'s full-text index, best first."""

    @abstractmethod
    def facet(self, collection: str, key: str, limit: int, flt: PayloadFilter | None = None) -> list[tuple[str, int]]:
        """The most common values of the indexed field ``key`` and how many points hold each
        (exact counts), most common first, ties by value."""

    def warm(self, collection: str) -> None:  # noqa: B027 - only backends that read lazily
        """Read what ``collection`` keeps in memory once, so that the first answers of a long-running
        process do not pay for reading the store from disk page by page (a server keeps its own caches)."""

    def release_except(self, names) -> None:  # noqa: B027 - only backends that cache handles
        """Let go of handles on collections other than ``names``."""

    def close(self) -> None:  # noqa: B027 - optional for backends
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Writer(ABC):
    """Writing collections (ingest)."""

    #: whether :meth:`copy_collection` works (a cheap file copy of a published collection)
    can_copy: bool = False
    #: whether :meth:`create_collection` spreads a collection over shards and replicas
    can_distribute: bool = False

    @abstractmethod
    def create_collection(self, name: str, dim: int, sparse_vectors: Sequence[str] = (), layout: Layout = Layout(), points: int = 0) -> None:
        """A new empty collection for ``points`` points, indexed as ``index_settings(name,
        layout.quantization, points)`` says."""

    @abstractmethod
    def upsert(
        self, name: str, ids: Sequence[int], vectors: np.ndarray, payloads: Sequence[dict],
        sparse: Mapping[str, Sequence[Sparse]] | None = None,
    ) -> None:
        """Write points: dense vectors, payloads and, per named sparse vector, one per point."""

    @abstractmethod
    def set_payloads(self, name: str, ids: Sequence[int], payloads: Sequence[dict]) -> None:
        """Replace the payloads of existing points, leaving their vectors (and the index) alone."""

    @abstractmethod
    def finish_collection(self, name: str, reindex: bool = True, payload_indexes: bool = True) -> None:
        """Make the written points durable (and, with ``reindex``, fully indexed), ready to serve;
        with ``payload_indexes``, the contract's payload indexes (only filters use them)."""

    def copy_collection(self, source: str, target: str) -> None:
        """Copy a whole collection (only where :attr:`can_copy`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot copy collections")

    @abstractmethod
    def delete_collection(self, name: str) -> None: ...

    def check_space(self, points: int) -> None:  # noqa: B027 - only backends that write locally
        """Refuse, in one line, to start writing a version of ``points`` points that cannot fit."""

    def temporaries(self) -> list:
        """Paths of what a killed writer of this backend left behind (the ingest janitor removes them)."""
        return []

    @abstractmethod
    def collections(self) -> list[str]: ...

    @abstractmethod
    def switch_aliases(self, mapping: dict[str, str]) -> None:
        """Point every alias in ``mapping`` at its collection, all at once."""


class Store(Reader, Writer):
    """A backend: both interfaces over one Qdrant."""


def open_store(settings: Settings | None = None) -> Store:
    """The server store when ``QDRANT_URL`` is set, else the embedded store."""
    settings = settings or Settings.from_env()
    if settings.qdrant_url:
        from search.store.server import ServerStore

        return ServerStore.connect(settings.qdrant_url, settings.qdrant_api_key, settings.timeout_s)
    from search.store.edge import EdgeStore

    return EdgeStore(settings.embedded_dir)

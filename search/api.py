"""The search API: what the ``search`` CLI calls, and what other code imports.

    from search import SongSearch
    with SongSearch() as songs:
        for result in songs.similar(2172, limit=5, artist="iron maiden"):
            print(result.title, result.score)

Only the aliases of the contract are read.  Nothing here imports torch,
sentence-transformers or gensim; the metadata encoder is loaded only by the
calls that embed a title.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from typing import Sequence

import numpy as np

from search import fusion
from search.contract import META_ALIAS, W2V_ALIAS, Settings, SongSearchError, artist_key
from search.store import Hit, PayloadFilter, Store, open_store

#: The two sides of a fused answer, as named in ``--weights``.
SIDES = ("w2v", "meta")
#: Metadata neighbours whose playlist vectors estimate a new song's (the bridge).
BRIDGE_NEIGHBOURS = 20
#: The bridge is an estimate: unless --weights says otherwise, it counts half
#: as much as direct metadata evidence, so that a known artist's songs lead.
BRIDGE_WEIGHT = 0.5


@dataclass(frozen=True)
class Result:
    song_id: int
    title: str
    artist: str
    score: float
    sources: tuple[str, ...] = ("w2v",)

    @classmethod
    def from_hit(cls, hit: Hit, sources: tuple[str, ...]) -> "Result":
        return cls(hit.song_id, hit.payload.get("title", ""), hit.payload.get("artist", ""), hit.score, sources)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["sources"] = list(self.sources)
        return data


MAX_SONG_ID = 2**63 - 1


def _song_id(value) -> int:
    song_id = int(value)
    if not 0 <= song_id <= MAX_SONG_ID:
        raise SongSearchError(f"unknown song id {song_id}")
    return song_id


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise SongSearchError(f"--limit must be at least 1, got {limit}")


class SongSearch:
    def __init__(self, store: Store | None = None, settings: Settings | None = None, encoder=None):
        self.settings = settings or Settings.from_env()
        self.store = store or open_store(self.settings)
        self._encoder = encoder
        self._w2v, self._meta = W2V_ALIAS, META_ALIAS
        #: what the last call skipped (unknown context ids), for the CLI to report
        self.warnings: list[str] = []

    @property
    def encoder(self):
        """The metadata encoder ingest used, loaded on first use (numpy MiniLM: no torch)."""
        if self._encoder is None:
            from search.encoder import MetadataEncoder, numpy_title_model

            self._encoder = MetadataEncoder(title_model=numpy_title_model())
        return self._encoder

    def close(self) -> None:
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- building blocks --
    def _pin(self) -> None:
        """Resolve both aliases once per call, so that one answer reads one version,
        even while ingest switches the aliases."""
        aliases = self.store.aliases()
        pinned = (aliases.get(W2V_ALIAS, W2V_ALIAS), aliases.get(META_ALIAS, META_ALIAS))
        if pinned != (self._w2v, self._meta):  # a new version went live
            self.store.release_except(pinned)
        self._w2v, self._meta = pinned

    def payload_filter(self, artist: str | None, collection: str | None = None) -> PayloadFilter:
        """The filter for ``--artist``; an artist not in the catalogue is an error, not an empty answer.

        Checked in the collection about to be queried first, so that a plain
        ``similar`` never has to open the larger metadata collection.
        """
        if artist is None:
            return PayloadFilter()
        key = artist_key(artist)
        if not key:
            raise SongSearchError("--artist is empty")
        flt = PayloadFilter(artist_key=key)
        collection = collection or self._w2v
        if self.store.count(collection, flt) == 0:
            if collection != self._meta and self.store.count(self._meta, flt) > 0:
                raise SongSearchError(f"artist {artist!r} has no songs in {W2V_ALIAS} (none in the training playlists)")
            raise SongSearchError(f"artist {artist!r} is not in the catalogue")
        return flt

    def _w2v_vector(self, song_id: int):
        found = self.store.vectors(self._w2v, [song_id])
        if song_id in found:
            return found[song_id]
        if self.store.payloads(self._meta, [song_id]):
            raise SongSearchError(
                f"song {song_id} is in no playlist the model was trained on: try --hybrid or `search cold-start`"
            )
        raise SongSearchError(f"unknown song id {song_id}")

    def _bridge_vector(self, meta_vector: np.ndarray, exclude: Sequence[int]) -> np.ndarray | None:
        """A playlist vector for a song known by metadata only: the similarity-weighted
        mean of the Word2Vec vectors of its nearest metadata neighbours (unfiltered)."""
        meta_hits = self.store.query(self._meta, meta_vector, BRIDGE_NEIGHBOURS, PayloadFilter().without_ids(exclude))
        found = self.store.vectors(self._w2v, [h.song_id for h in meta_hits])
        pairs = [(found[h.song_id], max(h.score, 0.0)) for h in meta_hits if h.song_id in found]
        if not pairs or sum(w for _, w in pairs) == 0:
            return None
        return np.average(np.stack([v for v, _ in pairs]), axis=0, weights=[w for _, w in pairs])

    def _fused(
        self, lists: dict[str, tuple[str, list[Hit]]], limit: int, method: str, weights: dict[str, float] | None
    ) -> list[Result]:
        """Fuse ranked lists named by side ("w2v"/"meta"); each hit says which evidence found it."""
        if weights is None:
            weights = {side: BRIDGE_WEIGHT if lists[side][0] == "bridge" else 1.0 for side in lists}
        ranked = {side: [(h.song_id, h.score) for h in hits] for side, (_, hits) in lists.items()}
        payload = {h.song_id: h.payload for _, hits in lists.values() for h in hits}
        found_by = {evidence: {h.song_id for h in hits} for evidence, hits in lists.values()}
        return [
            Result.from_hit(
                Hit(song_id, score, payload[song_id]), tuple(e for e, ids in found_by.items() if song_id in ids)
            )
            for song_id, score in fusion.fuse(ranked, method, weights, limit)
        ]

    # -- queries --
    def similar(
        self,
        song_id: int,
        limit: int = 10,
        artist: str | None = None,
        hybrid: bool = False,
        fusion_method: str = "rrf",
        weights: dict[str, float] | str | None = None,
    ) -> list[Result]:
        """Songs played in the same contexts as ``song_id`` (the song itself left out).

        With ``hybrid``, the nearest songs in songs_w2v and in songs_meta are fused
        (``fusion_method`` "rrf" or "dbsf", ``weights`` per side, e.g. "w2v=1,meta=0.5").
        """
        _check_limit(limit)
        self._pin()
        song_id = _song_id(song_id)
        if not hybrid:
            vector = self._w2v_vector(song_id)
            flt = self.payload_filter(artist).without_ids([song_id])
            return [Result.from_hit(h, ("w2v",)) for h in self.store.query(self._w2v, vector, limit, flt)]
        weights = self._weights(weights, fusion_method)
        meta_vector = self.store.vectors(self._meta, [song_id]).get(song_id)
        if meta_vector is None:
            raise SongSearchError(f"unknown song id {song_id}")
        flt = self.payload_filter(artist, self._meta).without_ids([song_id])
        candidates = fusion.candidates(limit)
        meta_hits = self.store.query(self._meta, meta_vector, candidates, flt)
        w2v_vector = self.store.vectors(self._w2v, [song_id]).get(song_id)
        evidence = "w2v"
        if w2v_vector is None:  # in the catalogue but in no training playlist
            w2v_vector, evidence = self._bridge_vector(meta_vector, [song_id]), "bridge"
        lists = {"meta": ("meta", meta_hits)}
        if w2v_vector is not None:
            lists["w2v"] = (evidence, self.store.query(self._w2v, w2v_vector, candidates, flt))
        return self._fused(lists, limit, fusion_method, weights)

    def cold_start(
        self,
        context: Sequence[int] = (),
        title: str | None = None,
        artist: str | None = None,
        limit: int = 10,
        only_artist: str | None = None,
        fusion_method: str = "rrf",
        weights: dict[str, float] | str | None = None,
    ) -> list[Result]:
        """Songs for a song the model never saw.

        * ``context``: ids of songs it was played with; their mean Word2Vec vector
          is queried against songs_w2v (the context songs are left out).  Unknown
          ids are skipped and listed in ``self.warnings``.
        * ``title`` / ``artist``: its metadata, embedded like ingest did and queried
          against songs_meta; without context, a playlist vector is also estimated
          from its metadata neighbours (the "bridge").
        Evidence from both sides is fused; ``only_artist`` filters every side.
        """
        _check_limit(limit)
        self._pin()
        self.warnings = []
        title, artist = (title or "").strip(), (artist or "").strip()
        context = [int(c) for c in context]
        if not context and not title and not artist:
            raise SongSearchError("give --context song ids, or --title and/or --artist of the new song")
        weights = self._weights(weights, fusion_method)
        flt = self.payload_filter(only_artist, self._meta if (title or artist) else self._w2v)
        candidates = fusion.candidates(limit)
        lists: dict[str, tuple[str, list[Hit]]] = {}
        if context:
            found = self.store.vectors(self._w2v, [c for c in context if 0 <= c <= MAX_SONG_ID])
            unknown = [c for c in context if c not in found]
            if unknown:
                self.warnings.append(f"skipped unknown context song id(s): {', '.join(map(str, unknown))}")
            if not found:
                raise SongSearchError("none of the --context song ids is known to the model")
            mean = np.mean(np.stack(list(found.values())), axis=0)
            lists["w2v"] = ("context", self.store.query(self._w2v, mean, candidates, flt.without_ids(found)))
        if title or artist:
            query = self.encoder.encode([title], [artist])[0]
            meta_hits = self.store.query(self._meta, query, candidates, flt.without_ids(context))
            lists["meta"] = ("meta", meta_hits)
            if "w2v" not in lists:
                bridge = self._bridge_vector(query, context)
                if bridge is not None:
                    lists["w2v"] = ("bridge", self.store.query(self._w2v, bridge, candidates, flt))
        if len(lists) == 1:
            ((evidence, hits),) = lists.values()
            return [Result.from_hit(h, (evidence,)) for h in hits[:limit]]
        return self._fused(lists, limit, fusion_method, weights)

    @staticmethod
    def _weights(weights, method: str) -> dict[str, float] | None:
        """Validated weights per side; None when the caller left them to the defaults."""
        if method not in fusion.FUSIONS:
            raise SongSearchError(f"unknown fusion {method!r}: use one of {', '.join(fusion.FUSIONS)}")
        if weights is None:
            return None
        if isinstance(weights, dict):
            return {**{side: 1.0 for side in SIDES}, **weights}
        return fusion.parse_weights(weights, SIDES)


def similar(song_id: int, limit: int = 10, artist: str | None = None) -> list[Result]:
    """One-shot helper: open the configured store, answer, close."""
    with SongSearch() as songs:
        return songs.similar(song_id, limit=limit, artist=artist)

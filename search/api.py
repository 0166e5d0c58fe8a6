"""The search API: what the ``search`` CLI calls, and what other code imports.

    from search import SongSearch
    with SongSearch() as songs:
        for result in songs.similar(2172, limit=5, artist="iron maiden"):
            print(result.title, result.score, result.coplays)

Only the aliases of the contract are read.  Nothing here imports torch,
sentence-transformers or gensim; the metadata encoder is loaded only by the
calls that embed a title.  Errors name the argument (``limit``, ``artist``);
the CLI names its flags instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Literal, Mapping, Sequence

from search import fusion as fu
from search import query as core
from search.contract import META_ALIAS, W2V_ALIAS, ArgumentError, Settings, SongSearchError, artist_key, song_id
from search.query import DEFAULT_FUSION, Evidence, EvidenceFusion, Result
from search.store import Hit, Nearest, PayloadFilter, Reader, Search, open_store

#: The two sides of a fused answer across collections, as named in ``weights``.
SIDES = ("w2v", "meta")
FusionMethod = Literal["rrf", "dbsf"]


@dataclass(frozen=True)
class Answer:
    """The results of one query, best first, and what the query skipped (and why)."""

    results: tuple[Result, ...]
    skipped: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> Result:
        return self.results[index]

    @property
    def ids(self) -> list[int]:
        return [r.song_id for r in self.results]


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ArgumentError("limit", f"must be at least 1, got {limit}")


def _check_method(method: str) -> None:
    if method not in fu.FUSIONS:
        raise ArgumentError("method", f"unknown fusion {method!r}: use one of {', '.join(fu.FUSIONS)}")


def _check_weights(weights: Mapping[str, float] | None, bridge: bool = False) -> dict[str, float]:
    """Weights per side, the defaults filled in; all-zero or unknown sides are errors."""
    defaults = {"w2v": core.BRIDGE_WEIGHT if bridge else 1.0, "meta": 1.0}
    if weights is None:
        return defaults
    unknown = set(weights) - set(SIDES)
    if unknown:
        raise ArgumentError("weights", f"unknown side(s) {', '.join(sorted(unknown))}: use {' and '.join(SIDES)}")
    try:
        merged = {side: float(weights.get(side, 1.0)) for side in SIDES}
    except (TypeError, ValueError):
        raise ArgumentError("weights", "must be numbers") from None
    if any(not math.isfinite(w) or w < 0 or w > fu.MAX_WEIGHT for w in merged.values()):
        raise ArgumentError("weights", f"must be between 0 and {fu.MAX_WEIGHT:g}")
    if not any(merged.values()):
        raise ArgumentError("weights", "cannot all be 0")
    return merged


def _context_ids(values: Sequence) -> tuple[list[int], list]:
    """(valid ids, every value as given: its id, or the value itself when beyond any song id);
    the latter are reported as unknown, like absent ones, in the order given."""
    valid, given = [], []
    for value in values:
        try:
            valid.append(song_id(value, argument="context"))
            given.append(valid[-1])
        except ArgumentError:
            raise
        except SongSearchError:
            given.append(value)
    return valid, given


class SongSearch:
    def __init__(self, store: Reader | None = None, settings: Settings | None = None, encoder=None):
        self.settings = settings or Settings.from_env()
        self.store = store or open_store(self.settings)
        self._encoder = encoder
        self._w2v, self._meta = W2V_ALIAS, META_ALIAS

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

    def payload_filter(self, artist: str | None, argument: str = "artist", collection: str | None = None) -> PayloadFilter:
        """The filter for an artist; an artist not in the catalogue is an error, not an empty answer.

        Checked in the collection about to be queried first, so that a plain
        ``similar`` never has to open the larger metadata collection.
        """
        if artist is None:
            return PayloadFilter()
        key = artist_key(artist)
        if not key:
            raise ArgumentError(argument, "is empty")
        flt = PayloadFilter(artist_key=key)
        collection = collection or self._w2v
        if self.store.count(collection, flt) == 0:
            shown = artist if len(artist) <= 80 else artist[:77] + "..."
            if collection != self._meta and self.store.count(self._meta, flt) > 0:
                raise SongSearchError(f"artist {shown!r} has no songs in {W2V_ALIAS} (none in the training playlists)")
            raise SongSearchError(f"artist {shown!r} is not in the catalogue")
        return flt

    def _w2v_point(self, song: int):
        found = self.store.retrieve(self._w2v, [song], with_vectors=True)
        if song in found:
            return found[song]
        if self.store.retrieve(self._meta, [song]):
            raise SongSearchError(f"song {song} is in no playlist the model was trained on: ask the hybrid or cold start")
        raise SongSearchError(f"unknown song id {song}")

    def _w2v_answer(self, probe: core.Probe, limit: int, flt: PayloadFilter, evidence: Evidence = "fused", label: str = "w2v", fusion: EvidenceFusion = DEFAULT_FUSION) -> tuple[tuple[str, ...], list[Hit]]:
        """songs_w2v's answer to ``probe``, and the evidence it asked for."""
        request = core.w2v_request(probe, limit, flt, evidence, fusion)
        hits = sorted(self.store.search(self._w2v, request), key=lambda h: (-h.score, h.song_id))  # ties in id order
        return core.w2v_sources(request, label), hits

    def _meta_hits(self, vector, depth: int, flt: PayloadFilter) -> list[Hit]:
        """songs_meta's nearest points to ``vector``, ties in id order (as on the songs_w2v side)."""
        hits = self.store.search(self._meta, Search((Nearest(vector),), depth, flt))
        return sorted(hits, key=lambda h: (-h.score, h.song_id))

    def _results(self, hits: Sequence[Hit], sources: Mapping[int, tuple[str, ...]], probe: core.Probe | None) -> tuple[Result, ...]:
        return tuple(core.with_evidence(self.store, self._w2v, hits, sources, probe))

    # -- queries --
    def similar(
        self,
        song: int,
        *,
        limit: int = 10,
        artist: str | None = None,
        evidence: Evidence = "fused",
        fusion: EvidenceFusion = DEFAULT_FUSION,
    ) -> Answer:
        """Songs played in the same contexts as ``song`` (itself left out): by default one Qdrant
        query fusing the nearest Word2Vec vectors with the songs sharing most playlists."""
        _check_limit(limit)
        if evidence not in core.EVIDENCE:
            raise ArgumentError("evidence", f"unknown evidence {evidence!r}: use one of {', '.join(core.EVIDENCE)}")
        song = song_id(song)
        self._pin()
        probe = core.probe_of(self._w2v_point(song))
        flt = self.payload_filter(artist).without_ids([song])
        sources, hits = self._w2v_answer(probe, limit, flt, evidence, fusion=fusion)
        return Answer(self._results(hits, {h.song_id: sources for h in hits}, probe))

    def similar_hybrid(
        self,
        song: int,
        *,
        limit: int = 10,
        artist: str | None = None,
        method: FusionMethod = "rrf",
        weights: Mapping[str, float] | None = None,
    ) -> Answer:
        """The songs_w2v answer fused with the song's metadata neighbours in songs_meta
        (``method`` rrf or dbsf, ``weights`` per side: ``{"w2v": 1, "meta": 0.5}``)."""
        _check_limit(limit)
        _check_method(method)
        song = song_id(song)
        self._pin()
        meta_point = self.store.retrieve(self._meta, [song], with_vectors=True).get(song)
        if meta_point is None:
            raise SongSearchError(f"unknown song id {song}")
        flt = self.payload_filter(artist, collection=self._meta).without_ids([song])
        depth = fu.candidates(limit)
        lists = {"meta": (("meta",), self._meta_hits(meta_point.vector, depth, flt))}
        w2v_point = self.store.retrieve(self._w2v, [song], with_vectors=True).get(song)
        if w2v_point is not None:
            probe, label = core.probe_of(w2v_point), "w2v"
        else:  # in the catalogue but in no training playlist
            probe, label = core.bridge_probe(self.store, self._w2v, self._meta, meta_point.vector, [song]), "bridge"
        if probe is not None:
            lists["w2v"] = self._w2v_answer(probe, depth, flt, label=label)
        fused, sources = core.fuse_lists(lists, limit, method, _check_weights(weights, bridge=label == "bridge"))
        return Answer(self._results(fused, sources, probe))

    def cold_start(
        self,
        *,
        context: Sequence[int] = (),
        title: str | None = None,
        artist: str | None = None,
        limit: int = 10,
        only_artist: str | None = None,
        method: FusionMethod = "rrf",
        weights: Mapping[str, float] | None = None,
    ) -> Answer:
        """Songs for a song the model never saw.

        * ``context``: ids of songs it was played with: their mean Word2Vec vector and summed
          co-play vectors query songs_w2v (the context songs left out); unknown ids are skipped
          and listed in ``Answer.skipped``.
        * ``title`` / ``artist``: its metadata, embedded as ingest did, queries songs_meta;
          without context, a Word2Vec vector is also estimated from its metadata neighbours
          (the bridge).
        Evidence from both collections is fused; ``only_artist`` filters every side.
        """
        _check_limit(limit)
        _check_method(method)
        title, artist = (title or "").strip(), (artist or "").strip()
        context, given = _context_ids(context)
        if not given and not title and not artist:
            raise ArgumentError("context", "or title/artist: give the songs the new song was played with, or its metadata")
        self._pin()
        flt = self.payload_filter(only_artist, "only_artist", self._meta if (title or artist) else self._w2v)
        depth = fu.candidates(limit)
        lists: dict[str, tuple[tuple[str, ...], list[Hit]]] = {}
        skipped: tuple[str, ...] = ()
        probe = None
        if given:
            found = self.store.retrieve(self._w2v, context, with_vectors=True) if context else {}
            unknown = [c for c in given if c not in found]  # in the order given
            if unknown:
                skipped = (f"unknown context song id(s): {', '.join(map(str, unknown))}",)
            if not found:
                raise ArgumentError("context", "has no song known to the model")
            probe = core.context_probe(list(found.values()))
            lists["w2v"] = self._w2v_answer(probe, depth, flt.without_ids(found), label="context")
        bridge = False
        if title or artist:
            query = self.encoder.encode([title], [artist])[0]
            lists["meta"] = (("meta",), self._meta_hits(query, depth, flt.without_ids(context)))
            if probe is None:
                probe = core.bridge_probe(self.store, self._w2v, self._meta, query, context)
                if probe is not None:
                    lists["w2v"], bridge = self._w2v_answer(probe, depth, flt, "w2v", label="bridge"), True
        if len(lists) == 1:
            ((sources, hits),) = lists.values()
            top = hits[:limit]
            return Answer(self._results(top, {h.song_id: sources for h in top}, probe), skipped)
        fused, sources = core.fuse_lists(lists, limit, method, _check_weights(weights, bridge))
        return Answer(self._results(fused, sources, probe), skipped)


def similar(song: int, limit: int = 10, artist: str | None = None) -> Answer:
    """One-shot helper: open the configured store, answer, close."""
    with SongSearch() as songs:
        return songs.similar(song, limit=limit, artist=artist)

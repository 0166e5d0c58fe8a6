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
import threading
from typing import Literal, Mapping, Sequence

from search import find
from search import fusion as fu
from search import query as core
from search.contract import META_ALIAS, W2V_ALIAS, VERSION_SEPARATOR, ArgumentError, NotFoundError, Settings, SongSearchError, song_id
from search.find import Filters
from search.query import DEFAULT_FUSION, Answer, Evidence, EvidenceFusion, Result
from search.store import Hit, Nearest, PayloadFilter, Reader, Search, open_store

#: The two sides of a fused answer across collections, as named in ``weights``.
SIDES = ("w2v", "meta")
FusionMethod = Literal["rrf", "dbsf"]


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


class SongSearch:
    def __init__(self, store: Reader | None = None, settings: Settings | None = None, encoder=None, warm: bool = False):
        """``warm``: read each version of the collections into memory, in the background, when it
        goes live here (a long-running service's choice: answers soon cost no more than later ones,
        and none waits for it)."""
        self.settings = settings or Settings.from_env()
        self.store = store or open_store(self.settings)
        self._encoder = encoder
        self._warm = warm
        self._warming: threading.Thread | None = None
        self._w2v, self._meta = W2V_ALIAS, META_ALIAS
        if warm:
            self._pin()

    def wait_warm(self, timeout: float | None = None) -> None:
        """Wait until the collections live at the last question are warm (see ``warm``)."""
        if self._warming is not None:
            self._warming.join(timeout)

    def _warm_up(self, names: tuple[str, ...]) -> None:
        try:
            for name in names:
                self.store.warm(name)
        except (OSError, SongSearchError):  # only an optimisation: a version dropped meanwhile, a store gone
            pass

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
            if self._warm:
                self._warming = threading.Thread(target=self._warm_up, args=(pinned,), name="songsearch-warm", daemon=True)
                self._warming.start()
        self._w2v, self._meta = pinned

    def payload_filter(self, artist: str | None, argument: str = "artist", collection: str | None = None, filters: Filters | None = None) -> PayloadFilter:
        """The filter for an artist and ``filters``; an artist or tag not in the catalogue is an
        error, not an empty answer.

        The artist is checked in the collection about to be queried first, so that a plain
        ``similar`` never has to open the larger metadata collection.
        """
        filters = filters or Filters()
        if artist is not None:
            filters = Filters(artist, filters.tags, filters.exclude_artists, filters.min_plays, filters.max_plays)
        if filters == Filters():
            return PayloadFilter()
        return find.build_filter(self.store, collection or self._w2v, self._meta, filters, argument)

    def _resolve(self, song, by: str | None = None, argument: str = "song", trained: bool = True) -> int:
        """A song id, or the id of the best match for a name (by the artist ``by``): among the
        trained songs (songs_w2v, where the query needs a Word2Vec vector: one collection
        opened, and never a match the model cannot answer for), else among all (songs_meta)."""
        if find.is_id(song) and by is None:
            return song_id(song, argument)
        if not isinstance(song, str):
            raise ArgumentError(argument, f"must be a song id or a name, got {song!r}")
        return find.resolve_song(self.store, self._w2v if trained else self._meta, song, by, argument).song_id

    def song_named(self, name: str, by: str | None = None, trained: bool = True) -> int:
        """The id of the song a name means (also a name of digits: "1979"), as :meth:`similar`
        (``trained``) or :meth:`similar_hybrid` resolve it; no match is an error."""
        self._pin()
        return find.resolve_song(self.store, self._w2v if trained else self._meta, name, by, "song").song_id

    def _resolve_all(self, songs: Sequence, argument: str) -> tuple[list[int], list]:
        """Ids and names (each resolved) -> (ids, all in the order given: ids beyond any song id too)."""
        if isinstance(songs, (str, int)):
            songs = [songs]
        given = list(dict.fromkeys(s if find.is_id(s) else self._resolve(s, argument=argument) for s in songs))
        ids, _ = find.context_ids(given, argument)
        return ids, given

    def _labels(self, ids: Sequence[int], found=None) -> str:
        found = found if found is not None else self.store.retrieve(self._meta, ids)
        return "; ".join(find.label(i, found[i].payload) if i in found else str(i) for i in ids)

    def _w2v_point(self, song: int):
        found = self.store.retrieve(self._w2v, [song], with_vectors=True)
        if song in found:
            return found[song]
        if self.store.retrieve(self._meta, [song]):
            raise NotFoundError(f"song {song} is in no playlist the model was trained on: ask the hybrid or cold start")
        raise NotFoundError(f"unknown song id {song}")

    def _w2v_answer(self, probe: core.Probe, limit: int, flt: PayloadFilter, evidence: Evidence = "fused", label: str = "w2v", fusion: EvidenceFusion = DEFAULT_FUSION, per_artist: int | None = None, diversity: float | None = None) -> tuple[tuple[str, ...], list[Hit]]:
        """songs_w2v's answer to ``probe``, and the evidence it asked for."""
        request = core.w2v_request(probe, limit, flt, evidence, fusion, diversity)
        if diversity and per_artist is not None:  # the cap on MMR's candidates: one MMR over ``limit``
            shaped = core.w2v_request(probe, limit, flt, evidence, fusion, diversity, most_per_artist=per_artist)
            return core.w2v_sources(request, label), self.store.search(self._w2v, shaped)

        def run(n: int) -> list[Hit]:
            asked = core.w2v_request(probe, n, flt, evidence, fusion, diversity, shown=limit)
            hits = self.store.search(self._w2v, asked)
            # ties in id order; MMR's order is its own (its scores are the relevance, not the rank)
            return hits if diversity else sorted(hits, key=lambda h: (-h.score, h.song_id))

        return core.w2v_sources(request, label), core.capped(run, limit, per_artist)

    def _meta_hits(self, vector, depth: int, flt: PayloadFilter) -> list[Hit]:
        """songs_meta's nearest points to ``vector``, ties in id order (as on the songs_w2v side)."""
        hits = self.store.search(self._meta, Search((Nearest(vector),), depth, flt))
        return sorted(hits, key=lambda h: (-h.score, h.song_id))

    def _results(self, hits: Sequence[Hit], sources: Mapping[int, tuple[str, ...]], probe: core.Probe | None) -> tuple[Result, ...]:
        return tuple(core.with_evidence(self.store, self._w2v, hits, sources, probe))

    def status(self) -> dict:
        """What is live: each alias's collection and version, and its point count (one pinned version)."""
        self._pin()
        live = {}
        for alias, name in ((W2V_ALIAS, self._w2v), (META_ALIAS, self._meta)):
            live[alias] = {"collection": name, "version": name.partition(VERSION_SEPARATOR)[2] or None, "points": self.store.count(name)}
        return live

    # -- queries --
    def songs(self, query: str, *, limit: int = 10, artist: str | None = None, filters: Filters | None = None) -> Answer:
        """Songs whose title or artist holds the words of ``query`` (case, punctuation and
        accents aside), best match (BM25) first, equal matches by plays."""
        _check_limit(limit)
        self._pin()
        flt = self.payload_filter(artist, collection=self._meta, filters=filters)
        hits = find.find_songs(self.store, self._meta, query, limit, flt)
        results = tuple(Result(h.song_id, h.payload.get("title", ""), h.payload.get("artist", ""), h.score, ("name",),
                               int(h.payload.get("plays", 0)), tags=tuple(h.payload.get("tags", ()))) for h in hits)
        return Answer(results, limit=limit, query=f"Songs matching {query.strip()!r}" + (f" by {artist}" if artist else ""))

    def tags(self, *, limit: int = 20, artist: str | None = None) -> list[tuple[str, int]]:
        """The most common tags (of ``artist``'s songs) and how many songs carry each."""
        _check_limit(limit)
        self._pin()
        return find.tag_counts(self.store, self._meta, limit, self.payload_filter(artist, collection=self._meta) or None)

    def similar(
        self,
        song: int | str,
        *,
        limit: int = 10,
        artist: str | None = None,
        evidence: Evidence = "fused",
        fusion: EvidenceFusion = DEFAULT_FUSION,
        by: str | None = None,
        filters: Filters | None = None,
        per_artist: int | None = None,
        diversity: float | None = None,
    ) -> Answer:
        """Songs played in the same contexts as ``song`` (itself left out): by default one Qdrant
        query fusing the nearest Word2Vec vectors with the songs sharing most playlists.

        ``song`` is an id or a name (the best ``songs`` match, by the artist ``by`` if given);
        ``filters`` hold inside Qdrant; ``per_artist`` caps the songs of one artist and
        ``diversity`` (0 to 1) re-ranks by Qdrant's MMR."""
        _check_limit(limit)
        find.check_shape(per_artist, diversity, limit)
        if evidence not in core.EVIDENCE:
            raise ArgumentError("evidence", f"unknown evidence {evidence!r}: use one of {', '.join(core.EVIDENCE)}")
        self._pin()
        song = self._resolve(song, by)
        point = self._w2v_point(song)
        probe = core.probe_of(point)
        flt = self.payload_filter(artist, filters=filters).without_ids([song])
        sources, hits = self._w2v_answer(probe, limit, flt, evidence, fusion=fusion, per_artist=per_artist, diversity=diversity)
        return Answer(self._results(hits, {h.song_id: sources for h in hits}, probe), query=f"Songs like {find.label(song, point.payload)}", limit=limit)

    def recommend(
        self,
        like: Sequence[int | str],
        *,
        dislike: Sequence[int | str] = (),
        limit: int = 10,
        artist: str | None = None,
        filters: Filters | None = None,
        evidence: Evidence = "fused",
        per_artist: int | None = None,
        diversity: float | None = None,
    ) -> Answer:
        """Songs for a listener who likes ``like`` and not ``dislike`` (ids or names): Qdrant's
        recommend query (best score) over the Word2Vec vectors, fused with the songs sharing
        most playlists with the likes; likes and dislikes are left out."""
        _check_limit(limit)
        find.check_shape(per_artist, diversity, limit)
        if evidence not in core.EVIDENCE:
            raise ArgumentError("evidence", f"unknown evidence {evidence!r}: use one of {', '.join(core.EVIDENCE)}")
        self._pin()
        likes, given = self._resolve_all(like, "like")
        dislikes, given_dislikes = self._resolve_all(dislike, "dislike")
        if not given:
            raise ArgumentError("like", "needs at least one song")
        found = self.store.retrieve(self._w2v, likes + dislikes, with_vectors=True)
        unknown = [s for s in given + given_dislikes if s not in found]
        skipped = (f"unknown or untrained song id(s): {', '.join(map(str, unknown))}",) if unknown else ()
        liked = [found[s] for s in likes if s in found]
        if not liked:
            raise ArgumentError("like", "has no song known to the model")
        probe = core.recommend_probe(liked, [found[s] for s in dislikes if s in found])
        flt = self.payload_filter(artist, filters=filters).without_ids(likes + dislikes)
        sources, hits = self._w2v_answer(probe, limit, flt, evidence, per_artist=per_artist, diversity=diversity)
        query = f"Songs for likes {self._labels([p.song_id for p in liked], found)}"
        disliked = [s for s in dislikes if s in found]
        if disliked:
            query += f", not {self._labels(disliked, found)}"
        return Answer(self._results(hits, {h.song_id: sources for h in hits}, probe), skipped, query, limit)

    def similar_hybrid(
        self,
        song: int,
        *,
        limit: int = 10,
        artist: str | None = None,
        method: FusionMethod = "rrf",
        weights: Mapping[str, float] | None = None,
        filters: Filters | None = None,
    ) -> Answer:
        """The songs_w2v answer fused with the song's metadata neighbours in songs_meta
        (``method`` rrf or dbsf, ``weights`` per side: ``{"w2v": 1, "meta": 0.5}``)."""
        _check_limit(limit)
        _check_method(method)
        self._pin()
        song = self._resolve(song, trained=False)
        meta_point = self.store.retrieve(self._meta, [song], with_vectors=True).get(song)
        if meta_point is None:
            raise NotFoundError(f"unknown song id {song}")
        flt = self.payload_filter(artist, collection=self._meta, filters=filters).without_ids([song])
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
        return Answer(self._results(fused, sources, probe), query=f"Songs like {find.label(song, meta_point.payload)} (hybrid)", limit=limit)

    def cold_start(
        self,
        *,
        context: Sequence[int | str] = (),
        title: str | None = None,
        artist: str | None = None,
        limit: int = 10,
        only_artist: str | None = None,
        method: FusionMethod = "rrf",
        weights: Mapping[str, float] | None = None,
        filters: Filters | None = None,
        per_artist: int | None = None,
        diversity: float | None = None,
    ) -> Answer:
        """Songs for a song the model never saw.

        * ``context``: songs it was played with (ids or names): their mean Word2Vec vector and
          summed co-play vectors query songs_w2v (the context songs left out); unknown ids are
          skipped and listed in ``Answer.skipped``.
        * ``title`` / ``artist``: its metadata, embedded as ingest did, queries songs_meta;
          without context, a Word2Vec vector is also estimated from its metadata neighbours
          (the bridge).
        Evidence from both collections is fused; ``only_artist`` and ``filters`` hold on every
        side; ``per_artist`` and ``diversity`` (on the Word2Vec side) as in :meth:`similar`.
        """
        _check_limit(limit)
        _check_method(method)
        find.check_shape(per_artist, diversity, limit)
        title, artist = (title or "").strip(), (artist or "").strip()
        self._pin()
        context, given = self._resolve_all(context, "context")
        if not given and not title and not artist:
            raise ArgumentError("context", "or title/artist: give the songs the new song was played with, or its metadata")
        flt = self.payload_filter(only_artist, "only_artist", self._meta if (title or artist) else self._w2v, filters)
        skipped, probe, found, heard = (), None, {}, []
        if given:
            found = self.store.retrieve(self._w2v, context, with_vectors=True) if context else {}
            unknown = [c for c in given if c not in found]
            if unknown:
                skipped = (f"unknown context song id(s): {', '.join(map(str, unknown))}",)
            if not found:
                raise ArgumentError("context", "has no song known to the model")
            probe = core.context_probe(list(found.values()))
            heard = [f"heard with {self._labels([c for c in context if c in found], found)}"]
        query = self.encoder.encode([title], [artist])[0] if title or artist else None
        bridge = False
        if probe is None and query is not None:
            probe = core.bridge_probe(self.store, self._w2v, self._meta, query, context)
            bridge = probe is not None
        found_by: dict[int, tuple[str, ...]] = {}

        def run(n: int) -> list[Hit]:
            depth = fu.candidates(n) if probe is not None and query is not None else n  # deeper only to fuse
            lists: dict[str, tuple[tuple[str, ...], list[Hit]]] = {}
            if probe is not None:
                label = "bridge" if bridge else "context"
                lists["w2v"] = self._w2v_answer(probe, depth, flt.without_ids(found), label=label, diversity=diversity)
            if query is not None:
                lists["meta"] = (("meta",), self._meta_hits(query, depth, flt.without_ids(context)))
            if len(lists) == 1:
                ((sources, hits),) = lists.values()
                found_by.update((h.song_id, sources) for h in hits)
                return hits[:n]
            fused, sources = core.fuse_lists(lists, n, method, _check_weights(weights, bridge))
            found_by.update(sources)
            return fused

        hits = core.capped(run, limit, per_artist)
        named = [f"{name} {value!r}" for name, value in (("titled", title), ("by", artist)) if value]
        return Answer(self._results(hits, found_by, probe), skipped, "Songs for a new song " + ", ".join(heard + named), limit)


def similar(song: int, limit: int = 10, artist: str | None = None) -> Answer:
    """One-shot helper: open the configured store, answer, close."""
    with SongSearch() as songs:
        return songs.similar(song, limit=limit, artist=artist)

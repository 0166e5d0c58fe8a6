"""Finding songs by name, filters on the payload, and the tags they may name.

* ``find_songs``: BM25 over the full-text index of the ``name`` payload field
  (title and artist, folded by :func:`search.contract.fold_text`), ties broken
  by plays, then by id.
* :class:`Filters`: what a user may say about the answers (artist, tags,
  excluded artists, plays), checked against the catalogue and turned into a
  :class:`~search.store.PayloadFilter` that Qdrant applies inside the query.
* ``tag_counts``: the most common tags (a Qdrant facet).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Sequence

from search.contract import NAME_FIELD, W2V_ALIAS, ArgumentError, NotFoundError, SongSearchError, artist_key, fold_text, song_id
from search.store import Hit, PayloadFilter, Reader

#: tags read to suggest the nearest known ones (yes_complete has a few hundred)
MAX_TAGS = 10_000


@dataclass(frozen=True)
class Filters:
    """Conditions on every answer of a query, applied inside Qdrant."""

    artist: str | None = None
    #: every one of these tags (Last.fm tag names, as ``search tags`` lists them)
    tags: Sequence[str] = ()
    exclude_artists: Sequence[str] = ()
    min_plays: int | None = None
    max_plays: int | None = None


#: MMR compares every pair of its candidates (10 x limit): 2,000 take seconds, 100,000 exhaust
#: the memory
MAX_DIVERSITY_LIMIT = 200


def check_shape(per_artist: int | None, diversity: float | None, limit: int) -> None:
    if per_artist is not None and (isinstance(per_artist, bool) or not isinstance(per_artist, int) or per_artist < 1):
        raise ArgumentError("per_artist", f"must be a whole number of at least 1, got {per_artist!r}")
    if diversity is not None:
        if isinstance(diversity, bool) or not isinstance(diversity, (int, float)) or not 0 <= diversity <= 1:
            raise ArgumentError("diversity", f"must be between 0 and 1, got {diversity!r}")
        if diversity and limit > MAX_DIVERSITY_LIMIT:
            raise ArgumentError("diversity", f"goes with a limit of at most {MAX_DIVERSITY_LIMIT} (MMR compares every pair of its candidates), got {limit}")


def is_id(value) -> bool:
    """Whether a song is given by number (a bad number is an error, not a name to look up)."""
    if not isinstance(value, str):
        return True
    text = value.strip().lstrip("+-")
    return bool(text) and all(c.isdigit() or c in "._" for c in text) and any(c.isdigit() for c in text)


def context_ids(values: Sequence, argument: str = "context") -> tuple[list[int], list]:
    """(valid ids, every value as given: its id, or the value itself when beyond any song id);
    the latter are reported as unknown, like absent ones, in the order given."""
    valid, given = [], []
    for value in values:
        try:
            valid.append(song_id(value, argument=argument))
            given.append(valid[-1])
        except ArgumentError:
            raise
        except SongSearchError:
            given.append(value)
    return valid, given


def label(song_id: int, payload: dict | None) -> str:
    """How an answer names a song: ``2172 Fade To Black, Metallica``."""
    payload = payload or {}
    return f"{song_id} {payload.get('title', '')}, {payload.get('artist', '')}"


def _count(value, argument: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(argument, f"must be a whole number, got {value!r}")
    if value < 0:
        raise ArgumentError(argument, f"must be 0 or more, got {value}")
    return value


def tag_counts(reader: Reader, collection: str, limit: int, flt: PayloadFilter | None = None) -> list[tuple[str, int]]:
    return reader.facet(collection, "tags", limit, flt)


def _check_tags(reader: Reader, collection: str, tags: Sequence[str]) -> tuple[str, ...]:
    checked = []
    for tag in tags:
        name = (tag or "").strip() if isinstance(tag, str) else None
        if not name:
            raise ArgumentError("tag", f"must be a tag name, got {tag!r}")
        if not reader.exists(collection, PayloadFilter(tags=(name,))):
            known = [value for value, _ in tag_counts(reader, collection, MAX_TAGS)]
            lowered = {k.casefold(): k for k in known}
            near = difflib.get_close_matches(name.casefold(), list(lowered), n=3, cutoff=0.6)
            hint = f": did you mean {', '.join(lowered[n] for n in near)}?" if near else ": `search tags` lists them"
            raise ArgumentError("tag", f"{name[:40]!r} is not a known tag{hint}")
        checked.append(name)
    return tuple(dict.fromkeys(checked))


def build_filter(reader: Reader, collection: str, catalogue: str, filters: Filters, artist_argument: str = "artist") -> PayloadFilter:
    """The payload filter for ``filters``, checked: an artist or a tag not in the catalogue is an
    error, not an empty answer.  The artist is checked in ``collection`` (about to be queried)
    first, then in ``catalogue`` (songs_meta) to say why it is missing."""
    low, high = _count(filters.min_plays, "min_plays"), _count(filters.max_plays, "max_plays")
    if low is not None and high is not None and low > high:
        raise ArgumentError("max_plays", f"must be at least min_plays ({low}), got {high}")
    if isinstance(filters.tags, str) or isinstance(filters.exclude_artists, str):
        raise ArgumentError("tag" if isinstance(filters.tags, str) else "exclude_artist", "must be a list of names")
    excluded = []
    for name in filters.exclude_artists:
        key = artist_key(name) if isinstance(name, str) else ""
        if not key:
            raise ArgumentError("exclude_artist", f"must be an artist name, got {name!r}")
        excluded.append(key)
    flt = PayloadFilter(min_plays=low, max_plays=high, tags=_check_tags(reader, catalogue, filters.tags), exclude_artists=frozenset(excluded))
    if filters.artist is None:
        return flt
    key = artist_key(filters.artist)
    if not key:
        raise ArgumentError(artist_argument, "is empty")
    artist_only = PayloadFilter(artist_key=key)
    if not reader.exists(collection, artist_only):
        shown = filters.artist if len(filters.artist) <= 80 else filters.artist[:77] + "..."
        if collection != catalogue and reader.exists(catalogue, artist_only):
            raise SongSearchError(f"artist {shown!r} has no songs in {W2V_ALIAS} (none in the training playlists)")
        raise SongSearchError(f"artist {shown!r} is not in the catalogue")
    return PayloadFilter(artist_key=key, min_plays=low, max_plays=high, tags=flt.tags, exclude_artists=flt.exclude_artists)


def find_songs(reader: Reader, collection: str, text: str, limit: int, flt: PayloadFilter | None = None, argument: str = "query") -> list[Hit]:
    """Songs whose title or artist holds the words of ``text``, best BM25 first; equal scores by
    plays (most first), then id.  Read deeper while the last song read ties the ``limit``-th."""
    words = fold_text(text or "")
    if not words:
        raise ArgumentError(argument, f"must hold a word of a title or an artist, got {text!r}")
    depth = limit + 10
    while True:
        hits = reader.search_text(collection, NAME_FIELD, words, depth, flt)
        if len(hits) < depth or hits[-1].score < hits[min(limit, len(hits)) - 1].score:
            break
        depth *= 4
    hits.sort(key=lambda h: (-h.score, -int((h.payload or {}).get("plays", 0)), h.song_id))
    return hits[:limit]


def resolve_song(reader: Reader, collection: str, name: str, by: str | None = None, argument: str = "song") -> Hit:
    """The song a name means: the best ``find_songs`` match holding every word of the name
    (by the artist ``by``, if given); none is an error naming the best partial match."""
    if by is not None and not artist_key(by):
        raise ArgumentError("by", "is empty")
    flt = PayloadFilter(artist_key=artist_key(by) if by else None)
    hits = find_songs(reader, collection, name, 1, replace(flt, name_words=fold_text(name)), argument)
    if not hits:
        shown = name if len(name) <= 60 else name[:57] + "..."
        near = find_songs(reader, collection, name, 1, flt or None, argument)
        hint = f": did you mean {label(near[0].song_id, near[0].payload)}?" if near else ""
        raise NotFoundError(f"no song matches {shown!r}" + (f" by {by!r}" if by else "") + hint)
    return hits[0]

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

from search.contract import META_ALIAS, W2V_ALIAS, Settings, SongSearchError, artist_key
from search.store import Hit, PayloadFilter, Store, open_store


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


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise SongSearchError(f"--limit must be at least 1, got {limit}")


class SongSearch:
    def __init__(self, store: Store | None = None, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self.store = store or open_store(self.settings)

    def close(self) -> None:
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- building blocks --
    def payload_filter(self, artist: str | None) -> PayloadFilter:
        """The filter for ``--artist``; an artist not in the catalogue is an error, not an empty answer."""
        if artist is None:
            return PayloadFilter()
        key = artist_key(artist)
        if not key:
            raise SongSearchError("--artist is empty")
        if self.store.count(META_ALIAS, PayloadFilter(artist_key=key)) == 0:
            raise SongSearchError(f"artist {artist!r} is not in the catalogue")
        return PayloadFilter(artist_key=key)

    def _w2v_vector(self, song_id: int):
        found = self.store.vectors(W2V_ALIAS, [song_id])
        if song_id in found:
            return found[song_id]
        if self.store.payloads(META_ALIAS, [song_id]):
            raise SongSearchError(
                f"song {song_id} is in no playlist the model was trained on: try --hybrid or `search cold-start`"
            )
        raise SongSearchError(f"unknown song id {song_id}")

    # -- queries --
    def similar(self, song_id: int, limit: int = 10, artist: str | None = None) -> list[Result]:
        """Songs played in the same contexts as ``song_id`` (the song itself left out)."""
        _check_limit(limit)
        song_id = int(song_id)
        vector = self._w2v_vector(song_id)
        flt = self.payload_filter(artist).without_ids([song_id])
        return [Result.from_hit(h, ("w2v",)) for h in self.store.query(W2V_ALIAS, vector, limit, flt)]


def similar(song_id: int, limit: int = 10, artist: str | None = None) -> list[Result]:
    """One-shot helper: open the configured store, answer, close."""
    with SongSearch() as songs:
        return songs.similar(song_id, limit=limit, artist=artist)

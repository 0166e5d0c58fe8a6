"""The public Qdrant contract of songsearch, written once.

Other services query these collections directly, so everything here is a
promise: the alias names, the payload fields and how to connect.  Both the
``ingest`` and the ``search`` packages import it; nothing else defines them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Aliases that always point at the live version of each collection.
W2V_ALIAS = "songs_w2v"
META_ALIAS = "songs_meta"
ALIASES = (W2V_ALIAS, META_ALIAS)

#: Physical collections are named ``<alias>__<version>``; readers use the aliases only.
VERSION_SEPARATOR = "__"

#: Payload carried by every point of both collections (point id == song_id).
PAYLOAD_FIELDS = ("song_id", "title", "artist", "artist_key", "tags", "plays")

#: Payload fields with a keyword index (where the backend has indexes).
KEYWORD_INDEXED_FIELDS = ("artist_key", "tags")
#: Payload fields with an integer index.
INTEGER_INDEXED_FIELDS = ("plays",)

DISTANCE = "Cosine"

DEFAULT_TIMEOUT_S = 10.0


class SongSearchError(Exception):
    """An error the user can act on; the CLIs print it as one line and exit non-zero."""


def artist_key(artist: str) -> str:
    """Casefolded artist name with whitespace collapsed: the value filters match on."""
    return " ".join(artist.casefold().split())


def song_payload(song_id: int, title: str, artist: str, tags: list[str], plays: int) -> dict:
    return {
        "song_id": int(song_id),
        "title": title,
        "artist": artist,
        "artist_key": artist_key(artist),
        "tags": list(tags),
        "plays": int(plays),
    }


def physical_name(alias: str, version: str) -> str:
    return f"{alias}{VERSION_SEPARATOR}{version}"


def split_physical_name(name: str) -> tuple[str, str] | None:
    """``songs_w2v__v1`` -> (``songs_w2v``, ``v1``); None for names that are not ours."""
    alias, sep, version = name.partition(VERSION_SEPARATOR)
    if not sep or alias not in ALIASES or not version:
        return None
    return alias, version


@dataclass(frozen=True)
class Settings:
    """Where songsearch keeps its files and which Qdrant it talks to (from the environment)."""

    home: Path
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_env(cls) -> "Settings":
        home = os.environ.get("SONGSEARCH_HOME") or str(Path.home() / ".songsearch")
        timeout = os.environ.get("QDRANT_TIMEOUT")
        try:
            timeout_s = float(timeout) if timeout else DEFAULT_TIMEOUT_S
        except ValueError:
            raise SongSearchError(f"QDRANT_TIMEOUT must be a number of seconds, got {timeout!r}") from None
        return cls(
            home=Path(home).expanduser(),
            qdrant_url=os.environ.get("QDRANT_URL") or None,
            qdrant_api_key=os.environ.get("QDRANT_API_KEY") or None,
            timeout_s=timeout_s,
        )

    @property
    def embedded_dir(self) -> Path:
        return self.home / "qdrant"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

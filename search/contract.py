"""The public Qdrant contract of songsearch, written once.

Other services query these collections directly, so everything here is a
promise: the alias names, the payload fields and how to connect.  Both the
``ingest`` and the ``search`` packages import it; nothing else defines them.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

#: Aliases that always point at the live version of each collection.
W2V_ALIAS = "songs_w2v"
META_ALIAS = "songs_meta"
ALIASES = (W2V_ALIAS, META_ALIAS)

#: Physical collections are named ``<alias>__<version>``; readers use the aliases only.
VERSION_SEPARATOR = "__"

#: songs_w2v's named sparse vector: the training playlists a song was played in
#: (dimension = playlist number, value = 1 / sqrt(its playlist count), times a per-song
#: tie-break factor within a millionth of 1), so that the dot product of two songs is the
#: cosine of their playlist co-membership.  The Word2Vec vector stays the collection's
#: default (unnamed) dense vector.
COPLAY_VECTOR = "coplay"

#: Payload fields with a keyword index (where the backend has indexes).
KEYWORD_INDEXED_FIELDS = ("artist_key", "tags")
#: Payload fields with an integer index.
INTEGER_INDEXED_FIELDS = ("plays",)
#: Payload field holding the song's title and artist folded by :func:`fold_text` (lowercase ASCII
#: words), with a full-text index (word tokenizer, BM25 scoring) that ``search songs`` ranks by.
#: Folding before indexing keeps the index at the default tokenization, which every Qdrant
#: (server, Edge, qdrant-client's local mode) ranks alike.
NAME_FIELD = "name"
#: Payload fields with a full-text index with BM25 scoring.
TEXT_INDEXED_FIELDS = (NAME_FIELD,)


@dataclass(frozen=True)
class IndexSettings:
    """How both backends index a collection (not a promise to readers, but one place)."""

    #: HNSW links per node; 0 builds no graph, so every search is exact
    hnsw_m: int = 16
    hnsw_ef_construct: int = 64
    #: HNSW beam width at query time
    hnsw_ef: int = 128
    #: below this many KB of vectors, a filtered search scans exactly (an artist has few songs)
    full_scan_threshold: int = 1000
    #: below this many matching points, a filtered sparse search scores each point's sparse vector
    #: instead of reading the inverted index (Qdrant's default: 5000)
    sparse_full_scan_threshold: int = 5000
    #: store the dense vectors as float16 (half the memory a scan reads)
    float16: bool = False
    #: leave the stored vectors on disk (the page cache keeps what searches read) instead of
    #: reading them whole into memory at every load: an HNSW search reads a few thousand
    cold_vectors: bool = False
    #: vectors (KB) a segment holds before the optimizer builds its index
    indexing_threshold_kb: int = 1000
    #: vacuum a segment when this share of its points is deleted: a collection derived from the
    #: live one by moving a few vectors must be rebuilt on optimize (deleted HNSW nodes cut the graph)
    deleted_threshold: float = 0.001
    vacuum_min_vector_number: int = 100
    #: "int8": the dense vectors are also kept as int8 copies (scalar quantization, a quarter of
    #: float32), which searches scan and an HNSW graph is built on; None: the stored vectors
    #: only.  ``ingest --quantization int8`` (:class:`Layout`) keeps the stored vectors of every
    #: collection on disk.
    quantization: str | None = None
    #: a search of int8 copies rescores with the stored vectors ``oversampling`` times the answers
    #: asked for, and at least ``rescored`` (a short list needs a deeper rescore to come out exact)
    oversampling: float = 2.0
    rescored: int = 100

    def oversampling_for(self, answers: int) -> float:
        return max(self.oversampling, self.rescored / max(answers, 1))


#: what ``ingest --quantization`` accepts
QUANTIZATIONS = ("int8",)


#: songs_w2v has no HNSW graph: most songs have few plays and barely trained vectors, on which
#: a graph finds few of the true neighbours (benchmarks/bench.py measures recall).  A search
#: scans its int8 copies and rescores the best with the float16 vectors: as exact in practice
#: as a float16 scan, and a quarter of the bytes read.  songs_meta's MiniLM vectors suit HNSW,
#: with a wide beam, its vectors in float16 and left on disk (else every fresh process reads
#: them all in at load), and its graph built on int8 copies (several times faster than on the
#: float16 vectors at a million songs, for the same recall: benchmarks/scale.py measures both).
#: A co-play query reads the posting lists of the query song's playlists, a few thousand entries:
#: cheaper than scoring the sparse vectors of thousands of songs a tag or plays filter keeps.
#: int8 copies map this central share of each collection's values onto the 256 levels
INT8_QUANTILE = 0.99

INDEXES = {
    W2V_ALIAS: IndexSettings(hnsw_m=0, float16=True, quantization="int8", sparse_full_scan_threshold=100),
    META_ALIAS: IndexSettings(hnsw_ef=1024, float16=True, cold_vectors=True, quantization="int8"),
}


#: A collection of more than this many points is built as LARGE_INDEXES says: the recall of
#: songs_meta's graph falls as the catalogue grows, unless it is built with a wider beam
#: (benchmarks/scale.py measures it).
#: songs_w2v stays an exact scan at any size: a graph on its vectors finds fewer of the true
#: neighbours the larger the catalogue (benchmarks/engine_floor.py, docs/engine_floor.md).
LARGE_COLLECTION_POINTS = 250_000
LARGE_INDEXES = {META_ALIAS: dict(hnsw_ef_construct=128)}


def index_settings(collection: str, quantization: str | None = None, points: int = 0) -> IndexSettings:
    """The index settings of an alias or of a physical collection behind one (with a version's
    quantization, when it has one); ``points`` (how many a new collection will hold) matters to
    how it is built, not to how it is searched."""
    parsed = split_physical_name(collection)
    alias = parsed[0] if parsed else collection
    settings = INDEXES.get(alias, IndexSettings())
    if points > LARGE_COLLECTION_POINTS:
        settings = replace(settings, **LARGE_INDEXES.get(alias, {}))
    return replace(settings, quantization=quantization) if quantization else settings


@dataclass(frozen=True)
class Layout:
    """How ingest lays out one version's collections; recorded with the version (``ingest
    --update`` keeps the live one's) and in the collections themselves."""

    #: one of QUANTIZATIONS, or None
    quantization: str | None = None
    #: a server's shards per collection and copies of each shard (None: the cluster's defaults)
    shards: int | None = None
    replicas: int | None = None

    def __post_init__(self):
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            raise SongSearchError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {self.quantization!r}")
        for name in ("shards", "replicas"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise SongSearchError(f"{name} must be at least 1, got {getattr(self, name)}")

    def describe(self) -> str:
        """``int8 quantization, 3 shards, 2 replicas`` (only what differs from the defaults)."""
        parts = [f"{self.quantization} quantization" if self.quantization else ""]
        parts += [f"{n} {name}" for n, name in ((self.shards, "shards"), (self.replicas, "replicas")) if n is not None]
        return ", ".join(p for p in parts if p)

    @property
    def write_consistency(self) -> int | None:
        """Copies of a shard that must acknowledge a write: a majority of the replicas."""
        return self.replicas // 2 + 1 if self.replicas else None

    @property
    def distributed(self) -> bool:
        return self.shards is not None or self.replicas is not None


DEFAULT_TIMEOUT_S = 10
#: qdrant-client counts whole seconds; beyond an hour a hung server is better reported
MAX_TIMEOUT_S = 3600


class SongSearchError(Exception):
    """An error the user can act on; the CLIs print it as one line and exit non-zero."""


class NotFoundError(SongSearchError):
    """No song has the id or name asked for (HTTP: 404)."""


class StoreUnavailableError(SongSearchError):
    """The store cannot answer: a server out of reach, nothing ingested yet (HTTP: 503)."""


class AliasesDamagedError(StoreUnavailableError):
    """The embedded store's aliases.json cannot be read as aliases: ``ingest rollback`` rewrites it."""


class ArgumentError(SongSearchError):
    """A bad value of one argument of the API; the CLIs name their flag for it instead."""

    def __init__(self, argument: str, problem: str):
        super().__init__(f"{argument} {problem}")
        self.argument, self.problem = argument, problem


MAX_SONG_ID = 2**63 - 1
#: the only text that is a song id: ASCII digits (int() would also take "2_172", "+5", "２１７２")
_DIGITS = re.compile(r"[0-9]+")
_DIGIT_LIST = re.compile(r"[0-9 \t\r\n]*")


def song_id(value, argument: str = "song") -> int:
    """A song id as the API takes it: a non-negative integer (ints, or decimal ASCII digits)."""
    if isinstance(value, bool):
        raise ArgumentError(argument, f"must be a song id, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not _DIGITS.fullmatch(text):
            raise ArgumentError(argument, f"must be a song id (digits), got {value[:40]!r}")
        value = int(text)
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        raise ArgumentError(argument, f"must be a song id, got {value!r}") from None
    if number != value or not 0 <= number <= MAX_SONG_ID:
        raise NotFoundError(f"unknown song id {value}")
    return number


def song_ids(text: str) -> list[int] | None:
    """Song ids separated by spaces, as the dataset files hold them; None if any is not one
    (the same rule as :func:`song_id`, checked per line for speed)."""
    if not _DIGIT_LIST.fullmatch(text):
        return None
    ids = [int(token) for token in text.split()]
    return ids if not ids or max(ids) <= MAX_SONG_ID else None


def artist_key(artist: str) -> str:
    """Casefolded artist name with whitespace collapsed: the value filters match on."""
    return " ".join(artist.casefold().split())


#: letters NFKD does not decompose into an ASCII base letter
_FOLD_LETTERS = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})


#: what separates words: neither a letter nor a digit (str.isalnum), an underscore included
_SEPARATORS = re.compile(r"[\W_]+")


def fold_text(text: str) -> str:
    """Lowercase words without accents or punctuation ("Mötley Crüe!" -> "motley crue"): how the
    name field is stored and how a ``songs`` query is asked."""
    letters = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD_LETTERS))
    if not letters.isascii():  # ASCII has no combining marks to drop
        letters = "".join(c for c in letters if not unicodedata.combining(c))
    return " ".join(_SEPARATORS.split(letters)).strip()


def song_payload(song_id: int, title: str, artist: str, tags: list[str], plays: int) -> dict:
    return {
        "song_id": int(song_id),
        "title": title,
        "artist": artist,
        "artist_key": artist_key(artist),
        "tags": list(tags),
        "plays": int(plays),
        NAME_FIELD: fold_text(f"{title} {artist}"),
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
    timeout_s: int = DEFAULT_TIMEOUT_S

    @classmethod
    def from_env(cls) -> "Settings":
        home = os.environ.get("SONGSEARCH_HOME") or str(Path.home() / ".songsearch")
        return cls(
            home=Path(home).expanduser(),
            qdrant_url=_qdrant_url(os.environ.get("QDRANT_URL") or None),
            qdrant_api_key=os.environ.get("QDRANT_API_KEY") or None,
            timeout_s=_timeout(os.environ.get("QDRANT_TIMEOUT") or None),
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


def _timeout(text: str | None) -> int:
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = int(text.strip())
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= MAX_TIMEOUT_S:
        raise SongSearchError(f"QDRANT_TIMEOUT must be whole seconds from 1 to {MAX_TIMEOUT_S}, got {text[:40]!r}")
    return seconds


def _qdrant_url(url: str | None) -> str | None:
    """The server URL, checked here: qdrant-client raises tracebacks (or waits) on malformed ones."""
    if url is None:
        return None
    problem = None
    try:
        parts = urlsplit(url)
        port = parts.port  # a port out of range raises
    except ValueError as exc:
        parts, port, problem = None, None, str(exc)
    if problem is None and any(c.isspace() or not c.isprintable() for c in url):
        problem = "it holds a space or a control character"
    elif problem is None and parts.scheme not in ("http", "https"):
        problem = "use http:// or https://"
    elif problem is None and not parts.hostname:
        problem = "it names no host"
    elif problem is None and port == 0:
        problem = "port 0"
    if problem:
        raise SongSearchError(f"QDRANT_URL {url[:80]!r} is not a Qdrant server URL ({problem}), e.g. http://localhost:6333")
    return url

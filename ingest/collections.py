"""What ingest writes into the two collections, computed from a catalogue, its training
playlists and a trained model: payloads, Word2Vec vectors, co-play vectors, metadata vectors.

Ingest publishes these; the evaluation builds the same collections from its
training split, so that it measures what ``search`` serves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ingest.dataset import Catalogue
from ingest.train import release_model
from search.contract import COPLAY_VECTOR, META_ALIAS, W2V_ALIAS, IndexSettings, index_settings, song_payload
from search.store import Sparse


class SongPayloads(Sequence):
    """The payload of each song of ``ids`` (a row each), made when asked: a catalogue's worth of
    payload dicts, hundreds of bytes a song, would sit in memory through the whole ingest."""

    def __init__(self, catalogue: Catalogue, ids: np.ndarray):
        self._songs, self._plays, self._ids = catalogue.songs, catalogue.plays, ids.tolist()

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, row: int) -> dict:
        song_id = self._ids[row]
        song = self._songs[song_id]
        return song_payload(song_id, song.title, song.artist, song.tags, self._plays.get(song_id, 0))

    @property
    def plays(self) -> np.ndarray:
        """Each row's ``plays`` field."""
        return np.array([self._plays.get(song_id, 0) for song_id in self._ids], dtype=np.int64)


@dataclass
class CollectionData:
    ids: np.ndarray
    vectors: np.ndarray
    payloads: SongPayloads
    #: named sparse vectors, one per point
    sparse: dict[str, list[Sparse]] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def probe(self) -> tuple[int, np.ndarray]:
        """The id and vector of the first of the most played songs: a query that must find it."""
        row = int(np.argmax(self.payloads.plays))
        return int(self.ids[row]), self.vectors[row].copy()

    def release_vectors(self) -> None:
        """Let go of the dense and sparse vectors (once written: building the index of a large
        collection is an ingest's peak, and nothing reads them again)."""
        self.vectors, self.sparse = self.vectors[:0], {}

    def digests(self, index: IndexSettings | None = None) -> dict[int, str]:
        """A digest of each point's vectors and of its payload ("vectors:payload"): what changed
        between versions.  ``index``: how the collection stores its vectors (float16, int8
        copies), which their digest says, so that a version storing them otherwise is written
        anew, not copied."""

        def digest(blob: bytes) -> str:
            return hashlib.blake2b(blob, digest_size=8).hexdigest()

        # float32 without int8 copies: the digests from before either was kept
        stored_as = (b"float16" if index and index.float16 else b"") + (b"int8" if index and index.quantization else b"")
        out = {}
        for row, song_id in enumerate(self.ids.tolist()):
            blob = stored_as + self.vectors[row].tobytes() + b"".join(  # indices as int64 whatever their dtype: digests stay comparable
                s[row].indices.astype(np.int64).tobytes() + s[row].values.tobytes() for _, s in sorted(self.sparse.items())
            )
            out[int(song_id)] = f"{digest(blob)}:{digest(json.dumps(self.payloads[row], sort_keys=True).encode())}"
        return out


#: rows computed at a time (songs encoded per call, Word2Vec vectors normalised): the temporaries
#: (several copies of a chunk, some in float64) stay a few hundred MB at any catalogue size,
#: instead of outgrowing the vectors
CHUNK_ROWS = 100_000

#: A co-play value is len(playlist) ** -LENGTH_EXPONENT * playlists(song) ** -POPULARITY_EXPONENT.
COPLAY_LENGTH_EXPONENT = 0.0
COPLAY_POPULARITY_EXPONENT = 0.5


def coplay_vectors(playlists: list[list[int]], song_ids: np.ndarray) -> list[Sparse]:
    """Each song's training playlists (dimension = playlist number), valued
    ``len(playlist) ** -a * playlists(song) ** -b``: the dot product of two songs
    sums their shared playlists, long playlists counting less (a), popular songs less (b).

    ``song_ids`` ascending.  Built from flat arrays of every distinct play, each let go of once
    used, with playlist numbers and rows as int32: a catalogue's plays several times over in int64
    would be the ingest's peak."""
    distinct = [np.unique(np.asarray(p, dtype=np.int64)) for p in playlists]
    counts = np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct))
    songs = np.concatenate(distinct) if distinct else np.zeros(0, np.int64)
    del distinct
    numbers = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    at = np.minimum(np.searchsorted(song_ids, songs), max(len(song_ids) - 1, 0))
    known = (song_ids[at] == songs) if len(song_ids) else np.zeros(len(songs), bool)
    del songs
    rows, numbers = at[known].astype(np.int32), numbers[known]
    del at, known
    by_row = np.argsort(rows, kind="stable")  # each song's playlists stay ascending
    rows, numbers = rows[by_row], numbers[by_row]
    del by_row
    bounds = np.searchsorted(rows, np.arange(len(song_ids) + 1))
    popularity = np.maximum(np.diff(bounds), 1).astype(np.float64) ** -COPLAY_POPULARITY_EXPONENT
    ties = np.array([tie_break(song) for song in song_ids.tolist()])
    values = (counts[numbers].astype(np.float64) ** -COPLAY_LENGTH_EXPONENT * popularity[rows] * ties[rows]).astype(np.float32)
    return [Sparse(numbers[a:b], values[a:b]) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def tie_break(song: int) -> float:
    """A factor just below 1, fixed per song: songs with equal co-play evidence (common
    among rarely played songs) then score apart by a millionth, in the same order on every
    backend and for every client, instead of in whatever order an engine meets them."""
    return 1.0 - 1e-6 * ((int(song) * 2654435761) % 2**32) / 2**32


def word_vectors(model, plays: Mapping[int, int], dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """(song ids ascending, stored Word2Vec vectors as ``dtype``) of every song in the model's
    vocabulary.

    Trained vectors share one direction (top neighbours at cosine 0.9999): the
    stored vector is the unit input vector minus the play-weighted mean of them
    all, so that cosines spread and say something.  Computed ``CHUNK_ROWS`` rows at a time
    into the output: beside the model, no whole-vocabulary float32 temporary.
    """
    ids = np.array([int(word) for word in model.wv.index_to_key], dtype=np.int64)
    order = np.argsort(ids)
    ids, trained = ids[order], model.wv.vectors
    weights = np.array([max(plays.get(int(i), 0), 0) for i in ids.tolist()], dtype=np.float64)

    def unit_rows(start: int) -> np.ndarray:
        rows = np.asarray(trained[order[start : start + CHUNK_ROWS]], dtype=np.float32)
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return rows

    starts = range(0, len(ids), CHUNK_ROWS)
    mean = np.zeros(trained.shape[1], dtype=np.float32)
    if weights.sum() > 0:
        mean = (sum(weights[s : s + CHUNK_ROWS] @ unit_rows(s) for s in starts) / weights.sum()).astype(np.float32)
    out = np.empty((len(ids), trained.shape[1]), dtype=dtype)
    for start in starts:
        out[start : start + CHUNK_ROWS] = unit_rows(start) - mean
    return ids, out


def w2v_collection(catalogue: Catalogue, playlists: list[list[int]], model, keep_model: bool = True) -> CollectionData:
    """songs_w2v's points: the songs the model knows, with their co-play vectors; their vectors held
    in the precision songs_w2v stores.  ``keep_model`` False releases the model
    (:func:`ingest.train.release_model`) once its vectors are copied out, before the co-play
    vectors are built: the two together would be the ingest's peak."""
    dtype = np.float16 if index_settings(W2V_ALIAS).float16 else np.float32
    word_ids, vectors = word_vectors(model, catalogue.plays, dtype)
    if not keep_model:
        release_model(model)
    return CollectionData(word_ids, vectors, SongPayloads(catalogue, word_ids), {COPLAY_VECTOR: coplay_vectors(playlists, word_ids)})


def meta_collection(catalogue: Catalogue, encoder, progress=None) -> CollectionData:
    """songs_meta's points: every song of the catalogue, with its metadata vector (held in the
    precision songs_meta stores: a catalogue's float32 vectors would be the upsert's peak)."""
    song_ids = np.array(sorted(catalogue.songs), dtype=np.int64)
    songs = [catalogue.songs[int(i)] for i in song_ids.tolist()]
    dtype = np.float16 if index_settings(META_ALIAS).float16 else np.float32
    return CollectionData(song_ids, metadata_vectors(songs, encoder, progress, dtype), SongPayloads(catalogue, song_ids))


def build_collections(
    catalogue: Catalogue, playlists: list[list[int]], model, encoder=None, progress=None, keep_model: bool = True
) -> dict[str, CollectionData]:
    """Both collections' points: songs_w2v, and songs_meta only with an ``encoder``."""
    collections = {W2V_ALIAS: w2v_collection(catalogue, playlists, model, keep_model)}
    if encoder is not None:
        collections[META_ALIAS] = meta_collection(catalogue, encoder, progress)
    return collections


def metadata_vectors(songs: list, encoder, progress=None, dtype=np.float32) -> np.ndarray:
    """songs_meta's vectors, ``CHUNK_ROWS`` songs at a time, into one array of ``dtype``."""
    out = np.empty((len(songs), encoder.dim), dtype=dtype)
    for start in range(0, len(songs), CHUNK_ROWS):
        chunk = songs[start : start + CHUNK_ROWS]
        out[start : start + len(chunk)] = encoder.encode([s.title for s in chunk], [s.artist for s in chunk], progress)
    return out

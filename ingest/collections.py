"""What ingest writes into the two collections, computed from a catalogue, its training
playlists and a trained model: payloads, Word2Vec vectors, co-play vectors, metadata vectors.

Ingest publishes these; the evaluation builds the same collections from its
training split, so that it measures what ``search`` serves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ingest.dataset import Catalogue
from search.contract import COPLAY_VECTOR, META_ALIAS, W2V_ALIAS, song_payload
from search.store import Sparse


@dataclass
class CollectionData:
    ids: np.ndarray
    vectors: np.ndarray
    payloads: list[dict]
    #: named sparse vectors, one per point
    sparse: dict[str, list[Sparse]] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def digests(self) -> dict[int, str]:
        """A digest of each point's vectors and of its payload ("vectors:payload"): what changed between versions."""

        def digest(blob: bytes) -> str:
            return hashlib.blake2b(blob, digest_size=8).hexdigest()

        vectors = np.asarray(self.vectors, dtype=np.float32)
        out = {}
        for row, song_id in enumerate(self.ids.tolist()):
            blob = vectors[row].tobytes() + b"".join(
                s[row].indices.tobytes() + s[row].values.tobytes() for _, s in sorted(self.sparse.items())
            )
            out[int(song_id)] = f"{digest(blob)}:{digest(json.dumps(self.payloads[row], sort_keys=True).encode())}"
        return out


#: A co-play value is len(playlist) ** -LENGTH_EXPONENT * playlists(song) ** -POPULARITY_EXPONENT.
COPLAY_LENGTH_EXPONENT = 0.0
COPLAY_POPULARITY_EXPONENT = 0.5


def coplay_vectors(playlists: list[list[int]], song_ids: np.ndarray) -> list[Sparse]:
    """Each song's training playlists (dimension = playlist number), valued
    ``len(playlist) ** -a * playlists(song) ** -b``: the dot product of two songs
    sums their shared playlists, long playlists counting less (a), popular songs less (b)."""
    distinct = [np.unique(np.asarray(p, dtype=np.int64)) for p in playlists]
    lengths = np.array([len(d) for d in distinct], dtype=np.float64)
    songs = np.concatenate(distinct) if distinct else np.zeros(0, np.int64)
    numbers = np.repeat(np.arange(len(distinct), dtype=np.int64), [len(d) for d in distinct])
    order = np.argsort(song_ids, kind="stable")
    at = np.minimum(np.searchsorted(song_ids, songs, sorter=order), max(len(song_ids) - 1, 0))
    known = (song_ids[order[at]] == songs) if len(song_ids) else np.zeros(len(songs), bool)
    rows, numbers = order[at[known]], numbers[known]
    by_row = np.lexsort((numbers, rows))  # each song's playlists, ascending
    rows, numbers = rows[by_row], numbers[by_row]
    bounds = np.searchsorted(rows, np.arange(len(song_ids) + 1))
    popularity = np.array([max(n, 1) ** -COPLAY_POPULARITY_EXPONENT for n in np.diff(bounds).tolist()])
    ties = np.array([tie_break(song) for song in song_ids.tolist()])
    values = (lengths[numbers] ** -COPLAY_LENGTH_EXPONENT * popularity[rows] * ties[rows]).astype(np.float32)
    return [Sparse(numbers[a:b], values[a:b]) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def tie_break(song: int) -> float:
    """A factor just below 1, fixed per song: songs with equal co-play evidence (common
    among rarely played songs) then score apart by a millionth, in the same order on every
    backend and for every client, instead of in whatever order an engine meets them."""
    return 1.0 - 1e-6 * ((int(song) * 2654435761) % 2**32) / 2**32


def word_vectors(model, plays: Mapping[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(song ids ascending, stored Word2Vec vectors) of every song in the model's vocabulary.

    Trained vectors share one direction (top neighbours at cosine 0.9999): the
    stored vector is the unit input vector minus the play-weighted mean of them
    all, so that cosines spread and say something.
    """
    ids = np.array([int(word) for word in model.wv.index_to_key], dtype=np.int64)
    order = np.argsort(ids)
    ids, unit = ids[order], np.asarray(model.wv.vectors, dtype=np.float32)[order]  # a copy, changed in place:
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)  # one matrix at a time in memory
    weights = np.array([max(plays.get(int(i), 0), 0) for i in ids.tolist()], dtype=np.float64)
    if weights.sum() > 0:
        unit -= (weights @ unit / weights.sum()).astype(np.float32)
    return ids, unit


def song_payloads(catalogue: Catalogue) -> dict[int, dict]:
    """Every catalogue song's payload, by song id."""
    return {
        int(i): song_payload(int(i), s.title, s.artist, s.tags, catalogue.plays.get(int(i), 0))
        for i, s in catalogue.songs.items()
    }


def w2v_collection(catalogue: Catalogue, playlists: list[list[int]], model, payloads: Mapping[int, dict]) -> CollectionData:
    """songs_w2v's points: the songs the model knows, with their co-play vectors."""
    word_ids, vectors = word_vectors(model, catalogue.plays)
    return CollectionData(word_ids, vectors, [payloads[int(i)] for i in word_ids.tolist()], {COPLAY_VECTOR: coplay_vectors(playlists, word_ids)})


def meta_collection(catalogue: Catalogue, encoder, payloads: Mapping[int, dict], progress=None) -> CollectionData:
    """songs_meta's points: every song of the catalogue, with its metadata vector."""
    song_ids = np.array(sorted(catalogue.songs), dtype=np.int64)
    songs = [catalogue.songs[int(i)] for i in song_ids.tolist()]
    return CollectionData(song_ids, metadata_vectors(songs, encoder, progress), [payloads[int(i)] for i in song_ids.tolist()])


def build_collections(catalogue: Catalogue, playlists: list[list[int]], model, encoder=None, progress=None) -> dict[str, CollectionData]:
    """Both collections' points: songs_w2v, and songs_meta only with an ``encoder``."""
    payloads = song_payloads(catalogue)
    collections = {W2V_ALIAS: w2v_collection(catalogue, playlists, model, payloads)}
    if encoder is not None:
        collections[META_ALIAS] = meta_collection(catalogue, encoder, payloads, progress)
    return collections


#: songs encoded per call: the encoder's temporaries (several copies of its output, some in
#: float64) stay a few hundred MB at any catalogue size, instead of outgrowing the vectors
ENCODE_CHUNK = 100_000


def metadata_vectors(songs: list, encoder, progress=None) -> np.ndarray:
    """songs_meta's vectors, ``ENCODE_CHUNK`` songs at a time, into one float32 array."""
    out = np.empty((len(songs), encoder.dim), dtype=np.float32)
    for start in range(0, len(songs), ENCODE_CHUNK):
        chunk = songs[start : start + ENCODE_CHUNK]
        out[start : start + len(chunk)] = encoder.encode([s.title for s in chunk], [s.artist for s in chunk], progress)
    return out

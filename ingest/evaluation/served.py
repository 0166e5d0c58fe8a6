"""The served answers of a split's model: its collections built in a real embedded store
exactly as ingest builds them, then asked through ``SongSearch``.

The collections hold the songs known to training (the pool every method answers
from); the catalogue indexes of :class:`~ingest.evaluation.split.EvalData` are
mapped to song ids and back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from ingest import publish as pub
from ingest.collections import build_collections
from ingest.dataset import Catalogue, Dataset, Song
from ingest.evaluation.split import EvalData
from search.api import Answer, SongSearch
from search.contract import Settings, physical_name
from search.store.edge import EdgeStore

VERSION = "eval"
#: the throwaway store's directory in the system temp dir, by process (the janitor removes those
#: of processes that died)
TEMP_PREFIX = "songsearch-eval-"


def pool_catalogue(dataset: Dataset, data: EvalData, tags: bool = True) -> Catalogue:
    """The songs known to ``data``'s training split, with their training plays (and tags)."""
    pool = data.ids[data.pool].tolist()
    songs = {int(i): dataset.songs[int(i)] for i in pool}
    if not tags:
        songs = {i: Song(song.title, song.artist) for i, song in songs.items()}
    return Catalogue(songs, Counter(dict(zip(pool, data.train_plays[data.pool].tolist()))))


class ServedModel:
    """A model trained on ``data``'s training split, published into a throwaway Qdrant Edge store.

    ``encoder`` None: songs_w2v only (the gate); else songs_meta too, for
    hybrid and metadata cold start.  ``filterable`` False leaves out what only filtered
    queries use, the payload indexes and the songs' tags (the gate asks none: its answers are
    the same, and reading each answer's payloads costs it less); ``keep_model`` False releases
    the model once its points are built, before they are written (the gate's peak memory).
    Use as a context manager.
    """

    def __init__(
        self, dataset: Dataset, data: EvalData, model, encoder=None, root: Path | None = None,
        filterable: bool = True, keep_model: bool = True,
    ):
        self.data = data
        self._root = Path(root) if root else Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))
        catalogue = pool_catalogue(dataset, data, tags=filterable)
        collections = build_collections(catalogue, data.train_sentences(), model, encoder, keep_model=keep_model)
        self.store = EdgeStore(self._root / "qdrant")
        for alias, collection in collections.items():
            pub.write_collection(self.store, physical_name(alias, VERSION), collection, payload_indexes=filterable, release=True)
        self.store.switch_aliases({alias: physical_name(alias, VERSION) for alias in collections})
        self.search = SongSearch(store=self.store, settings=Settings(home=self._root), encoder=encoder)

    def answers(self, songs: np.ndarray, k: int, ask: Callable[[SongSearch, int], Answer]) -> np.ndarray:
        """(queries x k) catalogue indexes answered by ``ask(search, song id)`` for each query song
        (a catalogue index); -1 pads short answers.  Each distinct song is asked once, on this
        thread: a Qdrant Edge query holds the GIL, so more threads only contend."""
        unique, inverse = np.unique(songs, return_inverse=True)
        out = np.full((len(unique), k), -1, dtype=np.int64)

        def answer(song: int) -> list[int]:
            return list(ask(self.search, int(self.data.ids[song])).ids[:k])

        for row, song in enumerate(unique.tolist()):
            ids = answer(song)
            out[row, : len(ids)] = np.searchsorted(self.data.ids, ids)
        return out[inverse]

    def close(self) -> None:
        self.search.close()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

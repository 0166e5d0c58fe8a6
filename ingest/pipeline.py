"""The ingest job: dataset -> Word2Vec -> metadata embeddings -> a new published version.

Data flows one way; each stage is timed for the summary.  Whatever fails,
the live version keeps serving: new collections are only published after
they are complete and checked, and a failed run removes what it wrote.
"""

from __future__ import annotations

import fcntl
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ingest import publish as pub
from ingest.dataset import Dataset, load_dataset
from ingest.train import W2VSettings, save_model, song_vectors, train_word2vec
from search.contract import META_ALIAS, W2V_ALIAS, Settings, SongSearchError, physical_name, song_payload
from search.encoder import MetadataEncoder, TitleCache
from search.store import Store, open_store


@dataclass
class IngestReport:
    version: str
    songs: int
    playlists: int
    vectors: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    dropped_versions: list[str] = field(default_factory=list)
    encoded_titles: int = 0


class _Stages:
    def __init__(self, seconds: dict[str, float]):
        self.seconds = seconds

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


@contextmanager
def ingest_lock(home: Path):
    """One ingest at a time per SONGSEARCH_HOME; a second one fails at once."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "ingest.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SongSearchError(f"another ingest is running on {home}") from None
        yield


def _bar(show: bool, desc: str, total: int | None = None, unit: str = "it"):
    return tqdm(total=total, desc=desc, unit=unit, disable=not show, file=sys.stderr, leave=False)


def build_collections(
    dataset: Dataset, word_ids: np.ndarray, word_vectors: np.ndarray, encoder: MetadataEncoder, show_progress: bool
) -> dict[str, pub.CollectionData]:
    plays = dataset.plays()
    song_ids = np.array(sorted(dataset.songs), dtype=np.int64)
    payload_of = {
        int(i): song_payload(int(i), s.title, s.artist, s.tags, plays.get(int(i), 0))
        for i, s in ((i, dataset.songs[int(i)]) for i in song_ids)
    }
    with _bar(show_progress, "encoding titles", unit="title") as bar:
        meta_vectors = encoder.encode(
            [dataset.songs[int(i)].title for i in song_ids], [dataset.songs[int(i)].artist for i in song_ids], bar
        )
    return {
        W2V_ALIAS: pub.CollectionData(word_ids, word_vectors, [payload_of[int(i)] for i in word_ids]),
        META_ALIAS: pub.CollectionData(song_ids, meta_vectors, [payload_of[int(i)] for i in song_ids]),
    }


def _prune_models(settings: Settings, store: Store) -> None:
    present = {v.name for v in pub.versions(store)}
    if not settings.models_dir.is_dir():
        return
    for directory in settings.models_dir.iterdir():
        if directory.is_dir() and directory.name not in present:
            shutil.rmtree(directory, ignore_errors=True)


def publish_model(
    dataset: Dataset,
    model,
    w2v: W2VSettings,
    store: Store,
    settings: Settings,
    encoder: MetadataEncoder,
    keep: int,
    version: str,
    report: IngestReport,
    show_progress: bool,
) -> IngestReport:
    """Everything after training: embeddings, new collections, checks, the alias switch."""
    stage = _Stages(report.seconds)
    try:
        save_model(model, w2v, dataset.fingerprint, settings.models_dir / version)
        word_ids, word_vectors = song_vectors(model)
        with stage("encode metadata"):
            collections = build_collections(dataset, word_ids, word_vectors, encoder, show_progress)
            if encoder.cache is not None:
                encoder.cache.save()
        for alias, data in collections.items():
            with stage(f"upsert {alias}"), _bar(show_progress, f"upserting {alias}", len(data.ids), "pt") as bar:
                pub.write_collection(store, physical_name(alias, version), data, bar)
        with stage("verify and publish"):
            report.dropped_versions = pub.publish(store, version, collections, keep)
    except BaseException:
        # the live version is untouched; remove what this run wrote
        pub.delete_unpublished(store, version)
        shutil.rmtree(settings.models_dir / version, ignore_errors=True)
        raise
    _prune_models(settings, store)
    report.vectors = {alias: len(data.ids) for alias, data in collections.items()}
    report.encoded_titles = encoder.encoded_titles
    return report


def run_ingest(
    data: str | None = None,
    w2v: W2VSettings | None = None,
    keep: int = 2,
    settings: Settings | None = None,
    store: Store | None = None,
    encoder: MetadataEncoder | None = None,
    show_progress: bool = True,
) -> IngestReport:
    """Full ingest: read, train, encode, upsert both collections, publish."""
    if keep < 1:
        raise SongSearchError("--keep must be at least 1")
    settings = settings or Settings.from_env()
    w2v = w2v or W2VSettings()
    report = IngestReport(version=pub.new_version_name(), songs=0, playlists=0, vectors={})
    stage = _Stages(report.seconds)
    with ingest_lock(settings.home):
        store = store or open_store(settings)
        encoder = encoder or MetadataEncoder(cache=TitleCache(settings.cache_dir))
        pub.remove_leftovers(store)
        with stage("read dataset"):
            dataset = load_dataset(data, settings.home / "datasets")
        report.songs, report.playlists, report.problems = len(dataset.songs), len(dataset.playlists), dataset.problems
        with stage("train word2vec"), _bar(show_progress, "training word2vec", w2v.epochs, "epoch") as bar:
            model = train_word2vec(dataset.playlists, w2v, bar)
        return publish_model(dataset, model, w2v, store, settings, encoder, keep, report.version, report, show_progress)

"""The ingest job: dataset -> Word2Vec -> metadata embeddings -> a new published version.

Data flows one way; each stage is timed for the summary.  Whatever fails,
the live version keeps serving: new collections are only published after
they are complete and checked, and a failed run removes what it wrote.
"""

from __future__ import annotations

import fcntl
import hashlib
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ingest import janitor
from ingest import publish as pub
from ingest.collections import CollectionData, meta_collection, w2v_collection
from ingest.dataset import Catalogue, Song, count_plays, load_dataset, parse_playlists, parse_songs, read_lines
from ingest.gate import GateProcess, GateVerdict
from ingest.model_dir import ModelDir
from ingest.train import W2VSettings, continue_training, train_word2vec
from search.contract import META_ALIAS, W2V_ALIAS, Layout, Settings, SongSearchError, index_settings, physical_name
from search.encoder import MetadataEncoder, TitleCache
from search.store import Store, open_store
from search.store.files import check_free


#: disk a version's model takes a song and a dimension (input and output vectors, float32), and
#: what the gate's throwaway songs_w2v takes a song, measured on yes_complete with room to spare
MODEL_BYTES_PER_DIMENSION = 10
GATE_BYTES_PER_SONG = 2000
MARGIN_BYTES = 16 << 20
#: the stage that waits for the quality gate (it runs from the start, in its own process)
GATE_STAGE = "quality gate (wait)"


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
    #: points written per collection (fewer than its vectors when derived from the live version)
    written: dict[str, int] = field(default_factory=dict)
    #: the quality gate's verdict (full ingests only)
    gate: GateVerdict | None = None
    #: how the version's collections are stored
    layout: Layout = field(default_factory=Layout)
    #: the process's peak resident memory (MiB) during each stage, where Linux tells it
    peak_rss_mib: dict[str, float] = field(default_factory=dict)


def _peak_rss_mib(reset: bool = False) -> float | None:
    """The process's peak resident memory (Linux's VmHWM), in MiB; ``reset`` starts a new peak
    from the current size.  None where /proc does not tell."""
    try:
        if reset:
            Path("/proc/self/clear_refs").write_text("5")
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        return None


class _Stages:
    def __init__(self, report: IngestReport):
        self.seconds, self.peaks = report.seconds, report.peak_rss_mib

    @contextmanager
    def __call__(self, name: str):
        start, measured = time.perf_counter(), _peak_rss_mib(reset=True) is not None
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            peak = _peak_rss_mib() if measured else None
            if peak is not None:
                self.peaks[name] = max(self.peaks.get(name, 0.0), peak)


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


def _live_digests(settings: Settings, store: Store, layout: Layout) -> tuple[str, dict] | None:
    """The live version and the point digests its ingest recorded, if both are here and the live
    collections are laid out as ``layout`` (a copy of them would keep theirs)."""
    live = pub.live_version(store)
    if live is None or ModelDir.of(settings, live).load_layout() != layout:
        return None
    digests = ModelDir.of(settings, live).load_digests()
    return (live, digests) if digests is not None else None


def publish_model(
    run: _Run, catalogue: Catalogue, playlists: list[list[int]], fingerprint: str, model, w2v: W2VSettings,
    gate: GateProcess | None = None, force: bool = False,
) -> IngestReport:
    """Everything after training: embeddings, new collections, checks, the alias switch.

    ``model`` is saved, then released once its vectors are copied out: it is of no use afterwards.

    ``gate`` (full ingests) is the quality gate running beside: its verdict is waited for once
    songs_w2v is written, and a refusal (unless ``force``) removes what was written.
    ``playlists`` is emptied once songs_w2v is built (saved by then): the next stages need its
    memory, tens of bytes a play."""
    report, settings, store, encoder = run.report, run.settings, run.store, run.encoder
    stage = run.stage
    version = report.version
    model_dir = ModelDir.of(settings, version)
    try:
        with stage("save model"):
            model_dir.save_model(model, w2v, fingerprint)
            model_dir.save_catalogue(catalogue)
            model_dir.save_playlists(playlists)
            model_dir.save_layout(report.layout)
        live = _live_digests(settings, store, report.layout)
        digests = {}

        def write(alias: str, data: CollectionData) -> None:
            """Write and check one collection; its points are not kept (the next one's need the memory)."""
            with stage(f"upsert {alias}"), run.bar(f"upserting {alias}", unit="pt") as bar:
                digests[alias], probe = data.digests(index_settings(alias, report.layout.quantization)), data.probe()
                base = (physical_name(alias, live[0]), live[1][alias]) if live and alias in live[1] else None
                name = physical_name(alias, version)
                report.written[alias] = pub.write_collection(store, name, data, digests[alias], base, bar, report.layout, release=True)
                pub.verify_collection(store, name, len(data.ids), probe)
                store.release_except(())  # read again only by searches, once published
            report.vectors[alias] = len(data.ids)

        # songs_w2v first: a background encoding of the titles (run_ingest) goes on meanwhile
        with stage("build songs_w2v"):
            w2v_data = w2v_collection(catalogue, playlists, model, keep_model=False)  # saved by now
            playlists.clear()
        write(W2V_ALIAS, w2v_data)
        del w2v_data
        if gate is not None:
            with stage(GATE_STAGE):
                report.gate, gate_peak = gate.result()
            report.peak_rss_mib[GATE_STAGE] = gate_peak  # the gate process's own: the two add up
            if not report.gate.passed and not force:
                raise SongSearchError(f"{report.gate.summary()}: nothing published (--force publishes anyway)")
            model_dir.save_quality(report.gate.to_dict())
        with stage("encode metadata"), run.bar("encoding titles", unit="title") as bar:
            meta_data = meta_collection(catalogue, encoder, bar)
            if encoder.cache is not None:  # written if it grew; its vectors let go of either way
                encoder.cache.save()
        write(META_ALIAS, meta_data)
        del meta_data
        model_dir.save_digests(digests)
        with stage("publish"):
            report.dropped_versions = pub.publish(store, version, run.keep)
    except BaseException:
        # unless the switch already happened (a failure while pruning), the live version
        # is untouched: remove what this run wrote
        if pub.live_version(store) != version:
            pub.delete_unpublished(store, version)
            model_dir.remove()
        raise
    janitor.sweep(settings, store)  # the dropped versions' model files
    report.encoded_titles = encoder.encoded_titles
    return report


@dataclass
class _Run:
    """One ingest holding the lock: where it writes, and its report."""

    settings: Settings
    store: Store
    encoder: MetadataEncoder
    keep: int
    show_progress: bool
    report: IngestReport = field(default_factory=lambda: IngestReport(pub.new_version_name(), 0, 0, {}))

    @property
    def stage(self) -> _Stages:
        return _Stages(self.report)

    def bar(self, desc: str, total: int | None = None, unit: str = "it"):
        return _bar(self.show_progress, desc, total, unit)

    def check_space(self, songs: int, vector_size: int, gate: bool) -> None:
        """Refuse at once, in one line, a version the disks cannot hold, before anything is
        written: the store's collections, the model files, the rewritten title cache and (with
        ``gate``) the gate's throwaway store in the temp directory (sizes measured on yes_complete)."""
        self.store.check_space(songs)
        cache = sum(p.stat().st_size for p in self.settings.cache_dir.glob("titles-*.npz")) if self.settings.cache_dir.is_dir() else 0
        self.settings.models_dir.mkdir(parents=True, exist_ok=True)
        check_free(self.settings.models_dir, songs * MODEL_BYTES_PER_DIMENSION * vector_size + cache + MARGIN_BYTES)
        if gate:
            check_free(Path(tempfile.gettempdir()), songs * GATE_BYTES_PER_SONG + MARGIN_BYTES)


@contextmanager
def _ingest_run(settings, store, encoder, keep: int, show_progress: bool, layout: Layout = Layout()):
    """Take the lock, open the store, and remove what a dead or failed run left behind."""
    if keep < 1:
        raise SongSearchError("--keep must be at least 1")
    settings = settings or Settings.from_env()
    with ingest_lock(settings.home):
        own_store = store is None
        store = store or open_store(settings)
        encoder = encoder or MetadataEncoder(cache=TitleCache(settings.cache_dir))
        try:
            if layout.distributed and not store.can_distribute:
                raise SongSearchError("--shards and --replicas need a Qdrant server (QDRANT_URL): the embedded store keeps a collection in one shard")
            janitor.sweep(settings, store)
            yield _Run(settings, store, encoder, keep, show_progress)
        finally:
            encoder.stop()
            if own_store:
                store.close()


def run_ingest(
    data: str | None = None,
    w2v: W2VSettings | None = None,
    keep: int = 2,
    settings: Settings | None = None,
    store: Store | None = None,
    encoder: MetadataEncoder | None = None,
    show_progress: bool = True,
    force: bool = False,
    layout: Layout = Layout(),
) -> IngestReport:
    """Full ingest: read, check quality, train, encode, upsert both collections, publish.

    The quality gate runs beside the writing: a model clearly worse than the live one (or
    than popularity) is refused, and what was written removed, before anything is published,
    unless ``force``.
    ``layout`` says how the new collections are stored (quantization; shards and replicas on a server).
    """
    w2v = w2v or W2VSettings()
    with _ingest_run(settings, store, encoder, keep, show_progress, layout) as run:
        run.report.layout = layout
        with run.stage("read dataset"):
            dataset = load_dataset(data, run.settings.home / "datasets")
        run.report.songs, run.report.playlists = len(dataset.songs), len(dataset.playlists)
        run.report.problems = dataset.problems
        run.check_space(len(dataset.songs), w2v.vector_size, gate=True)
        # The gate trains and measures its own model in its own process meanwhile, and the
        # titles are encoded beside both; nothing is published before the gate has passed.
        live = pub.live_version(run.store)
        live_metrics = ModelDir.of(run.settings, live).quality_metrics() if live else None
        gate = GateProcess(dataset, w2v, live_metrics)
        run.encoder.prefetch([song.title for song in dataset.songs.values()])
        try:
            with run.stage("train word2vec"), run.bar("training word2vec", w2v.epochs, "epoch") as bar:
                model = train_word2vec(dataset.playlists, w2v, bar)
            return publish_model(run, dataset.catalogue(), dataset.playlists, dataset.fingerprint, model, w2v, gate, force)
        finally:
            gate.stop()  # a failed ingest does not wait for it


def _read_update(playlists_file: Path, songs_file: Path | None, catalogue: Catalogue) -> tuple[list[list[int]], dict[int, Song], str]:
    """New playlists (no header lines) and new songs; every id must be known or come with --songs."""
    digest = hashlib.sha256()
    problems: list[str] = []
    new_songs = parse_songs(read_lines(songs_file, digest, problems), songs_file.name, problems) if songs_file else {}
    lines = read_lines(playlists_file, digest, problems)
    known = catalogue.songs.keys() | new_songs.keys()
    unknown = sorted({int(t) for line in lines for t in line.split() if t.isdigit()} - known)
    if unknown:
        shown = ", ".join(map(str, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
        hint = "add them to" if songs_file else "give their metadata with --songs FILE (song_hash.txt format)"
        raise SongSearchError(f"{playlists_file.name}: {len(unknown)} unknown song id(s) ({shown}): {hint}")
    playlists = parse_playlists(lines, playlists_file.name, 1, known, problems)
    if problems:
        raise SongSearchError(f"{problems[0]} ({len(problems)} problem(s) in the update; nothing published)")
    if not playlists:
        raise SongSearchError(f"{playlists_file}: no playlist with at least 2 songs")
    return playlists, new_songs, digest.hexdigest()


def run_update(
    playlists_file: str | Path,
    songs_file: str | Path | None = None,
    keep: int = 2,
    settings: Settings | None = None,
    store: Store | None = None,
    encoder: MetadataEncoder | None = None,
    show_progress: bool = True,
) -> IngestReport:
    """Continue training the live model on new playlists, then publish a new version (laid out as the live one)."""
    with _ingest_run(settings, store, encoder, keep, show_progress) as run:
        live = pub.live_version(run.store)
        if live is None:
            if pub.versions(run.store):  # aliases lost or damaged: the versions are still here
                raise SongSearchError("no version is live: `ingest rollback` points the aliases at the newest one on disk")
            raise SongSearchError("nothing is published yet: run a full `ingest --data DIR` first")
        live_dir = ModelDir.of(run.settings, live)
        run.report.layout = live_dir.load_layout()
        with run.stage("read update"):
            model, w2v, fingerprint = live_dir.load_model()
            catalogue = live_dir.load_catalogue()
            trained_on = live_dir.load_playlists()
            playlists, new_songs, update_digest = _read_update(
                Path(playlists_file), Path(songs_file) if songs_file else None, catalogue
            )
        catalogue.songs.update(new_songs)
        catalogue.plays.update(count_plays(playlists))
        run.check_space(len(catalogue.songs), model.vector_size, gate=False)
        run.report.songs, run.report.playlists = len(catalogue.songs), len(playlists)
        with run.stage("train word2vec"), run.bar("training word2vec", model.epochs, "epoch") as bar:
            continue_training(model, playlists, bar)
        fingerprint = hashlib.sha256((fingerprint + update_digest).encode()).hexdigest()[:16]
        report = publish_model(run, catalogue, trained_on + playlists, fingerprint, model, w2v)
        # same recipe, more data: the next full ingest is judged against the live numbers
        live_dir.copy_quality_to(ModelDir.of(run.settings, report.version))
        return report

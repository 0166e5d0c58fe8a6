"""Ingest after every retrain: versions behind aliases, rollback, failures, updates, idempotence."""

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from ingest import publish as pub
from ingest.cli import cli as ingest_cli
from ingest.collections import tie_break
from ingest.model_dir import ModelDir
from ingest.pipeline import run_update
from search.api import SongSearch
from search.contract import COPLAY_VECTOR, INDEXES, META_ALIAS, W2V_ALIAS, SongSearchError
from search.encoder import MetadataEncoder, TitleCache
from search.store import open_store
from search.store.edge import EdgeStore
from tests.conftest import TEST_W2V, fake_title_model, ingest_planted


def fake_encoder():
    return MetadataEncoder(title_model=fake_title_model)


def all_points(store, alias, ids):
    """Payloads, dense vectors and named sparse vectors of the points of those ids."""
    points = store.retrieve(alias, ids, with_vectors=True)
    return (
        {i: p.payload for i, p in points.items()},
        {i: p.vector.round(5).tolist() for i, p in points.items()},
        {i: {n: (v.indices.tolist(), v.values.tolist()) for n, v in p.sparse.items()} for i, p in points.items()},
    )


def answer(store, settings):
    return [(r.song_id, round(r.score, 5)) for r in SongSearch(store=store, settings=settings).similar(0, limit=5)]


def test_each_ingest_publishes_a_new_version_and_keeps_the_last_two(planted, home_settings, store):
    names = [ingest_planted(planted, home_settings, store).version for _ in range(3)]
    found = pub.versions(store)
    assert [v.name for v in found] == names[1:]
    assert [v.live for v in found] == [False, True]
    assert store.aliases() == {W2V_ALIAS: f"songs_w2v__{names[2]}", META_ALIAS: f"songs_meta__{names[2]}"}
    assert sorted(p.name for p in home_settings.models_dir.iterdir()) == names[1:]


def test_reingest_of_the_same_data_is_identical_and_copies_unchanged_metadata(planted, home_settings, store):
    first = ingest_planted(planted, home_settings, store)
    ids = list(range(48))
    before = {alias: all_points(store, alias, ids) for alias in (W2V_ALIAS, META_ALIAS)}
    second = ingest_planted(planted, home_settings, store)
    after = {alias: all_points(store, alias, ids) for alias in (W2V_ALIAS, META_ALIAS)}
    assert second.version != first.version
    assert after == before  # same data, same seed, one worker: same payloads, vectors and ids
    assert len(before[W2V_ALIAS][0]) == len(before[META_ALIAS][0]) == 48
    assert all(COPLAY_VECTOR in sparse for sparse in before[W2V_ALIAS][2].values())
    if isinstance(store, EdgeStore):  # the embedded store copies unchanged collections
        assert second.written == {W2V_ALIAS: 0, META_ALIAS: 0}
    else:
        assert second.written == {W2V_ALIAS: 48, META_ALIAS: 48}


def test_a_version_stored_in_float32_is_written_anew_in_float16_then_copied(planted, home_settings, monkeypatch):
    """songs_meta was stored in float32 before it was float16 (search.contract.INDEXES): the
    first ingest after the change writes it in float16, not a copy of the float32 one."""
    store = EdgeStore(home_settings.embedded_dir)
    monkeypatch.setitem(INDEXES, META_ALIAS, replace(INDEXES[META_ALIAS], float16=False))
    ingest_planted(planted, home_settings, store)
    monkeypatch.undo()
    assert INDEXES[META_ALIAS].float16

    def stored_in_float16() -> bool:
        vectors = [p.vector for p in store.retrieve(META_ALIAS, list(range(48)), with_vectors=True).values()]
        return all(np.array_equal(v, v.astype(np.float16).astype(np.float32)) for v in vectors)

    assert not stored_in_float16()
    assert ingest_planted(planted, home_settings, store).written[META_ALIAS] == 48
    assert stored_in_float16()
    assert ingest_planted(planted, home_settings, store).written[META_ALIAS] == 0
    assert stored_in_float16()
    store.close()


def test_a_version_without_int8_copies_of_songs_meta_is_written_anew_with_them_then_copied(planted, home_settings, monkeypatch):
    """songs_meta kept no int8 copies before its graph was built on them (search.contract.INDEXES):
    the first ingest after the change writes it with them, not a copy of the live one without."""
    store = EdgeStore(home_settings.embedded_dir)
    monkeypatch.setitem(INDEXES, META_ALIAS, replace(INDEXES[META_ALIAS], quantization=None))
    ingest_planted(planted, home_settings, store)
    monkeypatch.undo()
    assert store.quantization(META_ALIAS) is None
    assert ingest_planted(planted, home_settings, store).written[META_ALIAS] == 48
    assert store.quantization(META_ALIAS) == "int8"
    assert ingest_planted(planted, home_settings, store).written[META_ALIAS] == 0
    assert store.quantization(META_ALIAS) == "int8"
    store.close()


def test_rollback_serves_the_previous_version(planted, home_settings, store):
    ingest_planted(planted, home_settings, store)
    old = answer(store, home_settings)
    different = TEST_W2V.with_options(seed=99, vector_size=12)
    second = ingest_planted(planted, home_settings, store, w2v=different)
    assert answer(store, home_settings) != old
    target = pub.rollback(store)
    assert target < second.version and pub.live_version(store) == target
    assert answer(store, home_settings) == old
    with pytest.raises(SongSearchError, match="no older version"):
        pub.rollback(store)


def test_failed_upsert_leaves_the_live_version_serving_and_nothing_behind(planted, home_settings, store, monkeypatch):
    live = ingest_planted(planted, home_settings, store).version
    before = answer(store, home_settings)

    def failing_upsert(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "upsert", failing_upsert)
    with pytest.raises(OSError):
        ingest_planted(planted, home_settings, store, w2v=TEST_W2V.with_options(seed=5))
    assert [v.name for v in pub.versions(store)] == [live]
    assert answer(store, home_settings) == before
    assert [p.name for p in home_settings.models_dir.iterdir()] == [live]


KILLED_INGEST = """
import os, signal, sys
sys.path.insert(0, {root!r})
from search.store.edge import EdgeStore
from tests.conftest import TEST_W2V, PlantedData, ingest_planted
from search.contract import Settings
real = EdgeStore.upsert
home_store = Settings.from_env().embedded_dir
def upsert_then_die(self, name, *a, **kw):
    real(self, name, *a, **kw)
    if self.root == home_store:  # not the quality gate's throwaway store: the new version's collection
        os.kill(os.getpid(), signal.SIGKILL)
EdgeStore.upsert = upsert_then_die
# another seed, so that the new Word2Vec vectors must be written
ingest_planted(PlantedData({data!r}, {{}}, {{}}), Settings.from_env(), w2v=TEST_W2V.with_options(seed=21))
"""


def test_kill_9_during_upsert_keeps_the_live_version_and_the_next_ingest_cleans_up(planted, home_settings):
    live = ingest_planted(planted, home_settings).version
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = KILLED_INGEST.format(root=root, data=str(planted.directory))
    died = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), capture_output=True, text=True)
    assert died.returncode == -signal.SIGKILL, died.stderr
    with open_store(home_settings) as store:
        assert [(v.name, v.live, v.complete) for v in pub.versions(store)][0] == (live, True, True)
        assert len(pub.versions(store)) == 2  # the dead run's half-written version
        assert SongSearch(store=store, settings=home_settings).similar(0, limit=3)
    following = ingest_planted(planted, home_settings)
    with open_store(home_settings) as store:
        assert [v.name for v in pub.versions(store)] == [live, following.version]


SEARCH_LOOP = """
import json, sys, time
from search.api import SongSearch
from search.contract import SongSearchError
errors, empty, answered = [], 0, 0
songs = SongSearch()
deadline = time.time() + 120
while time.time() < deadline:
    try:
        if not songs.similar(5, limit=5):
            empty += 1
        answered += 1
    except SongSearchError as exc:
        errors.append(str(exc))
    if open(sys.argv[1]).read() == "stop":
        break
print(json.dumps({"errors": errors[:5], "n_errors": len(errors), "empty": empty, "answered": answered}))
"""


def test_a_concurrent_searcher_sees_no_error_across_ingest_and_rollback(planted, home_settings, tmp_path):
    ingest_planted(planted, home_settings)
    flag = tmp_path / "flag"
    flag.write_text("go")
    searcher = subprocess.Popen([sys.executable, "-c", SEARCH_LOOP, str(flag)], stdout=subprocess.PIPE, text=True)
    try:
        for seed in (11, 12, 13):
            ingest_planted(planted, home_settings, w2v=TEST_W2V.with_options(seed=seed))
        with open_store(home_settings) as store:
            pub.rollback(store)
    finally:
        flag.write_text("stop")
        out, _ = searcher.communicate(timeout=60)
    report = json.loads(out)
    assert report["answered"] > 0
    assert (report["n_errors"], report["empty"]) == (0, 0), report


def write_update(tmp_path, planted, new_song_id=48):
    """Twenty playlists of group 0 (metal) that now also play a brand-new song."""
    metal = sorted(planted.group(0))
    lines = [" ".join(map(str, metal[i % 6 : i % 6 + 6] + [new_song_id])) for i in range(20)]
    (tmp_path / "update.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "new_songs.txt").write_text(f"{new_song_id}\tmetal thunder song new\tIron Maiden\n")
    return tmp_path / "update.txt", tmp_path / "new_songs.txt"


def test_update_makes_a_new_song_searchable_with_sensible_neighbours(planted, home_settings, store, tmp_path):
    ingest_planted(planted, home_settings, store)
    playlists, songs = write_update(tmp_path, planted)
    report = run_update(playlists, songs, settings=home_settings, store=store, encoder=fake_encoder(), show_progress=False)
    assert report.vectors == {W2V_ALIAS: 49, META_ALIAS: 49}
    assert report.playlists == 20
    neighbours = SongSearch(store=store, settings=home_settings).similar(48, limit=5)
    assert {r.song_id for r in neighbours} <= planted.group(0)
    assert store.retrieve(W2V_ALIAS, [48])[48].payload["plays"] == 20
    assert len(pub.versions(store)) == 2


def test_update_changes_the_coplay_evidence_of_the_songs_it_touches(planted, home_settings, store, tmp_path):
    """New playlists put song A with song B, never played together before: afterwards the
    co-play evidence of A lists B, and A's stored co-play vector has the new playlists as
    new dimensions (numbered after the training playlists), valued as ingest values them."""
    a, b = 0, 13
    assert planted.group_of[a] != planted.group_of[b] and planted.coplays(a, b) == 0
    ingest_planted(planted, home_settings, store)
    songs = SongSearch(store=store, settings=home_settings)
    before = songs.similar(a, limit=47, evidence="coplay")
    assert b not in before.ids
    old = store.retrieve(W2V_ALIAS, [a], with_vectors=True)[a].sparse[COPLAY_VECTOR]
    trained = len(planted.playlists())
    assert sorted(old.indices.tolist()) == old.indices.tolist() and len(old) == planted.plays(a)
    assert max(old.indices.tolist()) < trained

    update = [[a, b, 24], [5, b, a], [b, 25, 26]]  # the last one does not play A
    (tmp_path / "update.txt").write_text("".join(" ".join(map(str, p)) + "\n" for p in update))
    report = run_update(tmp_path / "update.txt", settings=home_settings, store=store, encoder=fake_encoder(), show_progress=False)
    assert report.playlists == len(update)

    after = songs.similar(a, limit=47, evidence="coplay")
    found = {r.song_id: r for r in after}
    assert b in found and found[b].coplays == 2 and found[b].coplays >= 1
    assert found[b].sources == ("coplay",)
    new = store.retrieve(W2V_ALIAS, [a], with_vectors=True)[a].sparse[COPLAY_VECTOR]
    added = [trained + n for n, p in enumerate(update) if a in p]
    assert new.indices.tolist() == old.indices.tolist() + added  # the old playlists keep their numbers
    expected = (len(new) ** -0.5) * tie_break(a)
    assert new.values.tolist() == pytest.approx([expected] * len(new), rel=1e-6)
    assert store.retrieve(W2V_ALIAS, [a])[a].payload["plays"] == planted.plays(a) + len(added)
    untouched = store.retrieve(W2V_ALIAS, [47], with_vectors=True)[47].sparse[COPLAY_VECTOR]
    assert max(untouched.indices.tolist()) < trained  # a song no new playlist plays keeps its dimensions


@pytest.mark.parametrize("problem", ["unknown_ids", "empty", "corrupt_model", "disk_full"])
def test_bad_updates_are_one_line_errors_and_leave_the_live_version(planted, home_settings, tmp_path, problem, monkeypatch):
    live = ingest_planted(planted, home_settings).version
    playlists, songs = write_update(tmp_path, planted)
    args = ["--update", str(playlists), "--songs", str(songs), "--quiet"]
    expected = {
        "unknown_ids": "1 unknown song id(s) (48): give their metadata with --songs",
        "empty": "file is empty",
        "corrupt_model": "saved model in",
        "disk_full": "No space left on device",
    }[problem]
    if problem == "unknown_ids":
        args = ["--update", str(playlists), "--quiet"]
    elif problem == "empty":
        playlists.write_text("\n")
    elif problem == "corrupt_model":
        (home_settings.models_dir / live / "w2v.model").write_bytes(b"not a pickle")
    else:
        def full_disk(*a, **kw):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(ModelDir, "save_model", full_disk)
    result = CliRunner().invoke(ingest_cli, args, obj={"encoder_factory": lambda cache: MetadataEncoder(fake_title_model, cache)})
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and expected in lines[0], result.output
    with open_store(home_settings) as store:
        assert [(v.name, v.live) for v in pub.versions(store)] == [(live, True)]


def test_versions_and_rollback_commands(planted, home_settings):
    first = ingest_planted(planted, home_settings).version
    second = ingest_planted(planted, home_settings, w2v=TEST_W2V.with_options(seed=3)).version
    runner = CliRunner()
    listed = json.loads(runner.invoke(ingest_cli, ["versions", "--json"]).output)
    assert [(v["name"], v["live"]) for v in listed] == [(first, False), (second, True)]
    result = runner.invoke(ingest_cli, ["rollback"])
    assert result.exit_code == 0 and first in result.output
    table = runner.invoke(ingest_cli, ["versions"]).output
    assert f"{first}  live             keeps it" in table and f"{second}  newer than live  drops it" in table
    again = runner.invoke(ingest_cli, ["rollback"])
    assert again.exit_code == 1 and "no older version" in again.output


def test_the_quality_gate_refuses_a_clearly_worse_model_unless_forced(planted, home_settings):
    live = ingest_planted(planted, home_settings)
    assert live.gate.passed and (home_settings.models_dir / live.version / "quality.json").is_file()
    broken = TEST_W2V.with_options(vector_size=2, epochs=1, seed=3)
    with pytest.raises(SongSearchError, match="quality gate REFUSED.*nothing published"):
        ingest_planted(planted, home_settings, w2v=broken)
    with open_store(home_settings) as store:
        assert [(v.name, v.live) for v in pub.versions(store)] == [(live.version, True)]
    forced = ingest_planted(planted, home_settings, w2v=broken, force=True)
    assert not forced.gate.passed
    with open_store(home_settings) as store:
        assert pub.live_version(store) == forced.version


def test_titles_are_encoded_once_beside_the_gate_and_a_refused_ingest_stops_encoding(planted, home_settings):
    encoded = []

    def title_model(titles, advance=None):
        encoded.extend(titles)
        return fake_title_model(titles, advance)

    report = ingest_planted(planted, home_settings, encoder=MetadataEncoder(title_model, TitleCache(home_settings.cache_dir)))
    titles = {title for title, _ in planted.songs.values()}
    assert report.encoded_titles == len(titles) and sorted(encoded) == sorted(titles)
    again = ingest_planted(planted, home_settings, encoder=MetadataEncoder(title_model, TitleCache(home_settings.cache_dir)))
    assert again.encoded_titles == 0 and len(encoded) == len(titles)

    def endless_model(titles, advance=None):  # a slow encoder: 30 s for the lot
        for _ in range(600):
            time.sleep(0.05)
            advance(0)
        return fake_title_model(titles)

    threads = threading.active_count()
    start = time.perf_counter()
    with pytest.raises(SongSearchError, match="quality gate REFUSED"):
        ingest_planted(planted, home_settings, w2v=TEST_W2V.with_options(vector_size=2, epochs=1, seed=3),
                       encoder=MetadataEncoder(endless_model, TitleCache(home_settings.cache_dir / "other")))
    assert time.perf_counter() - start < 15 and threading.active_count() == threads


def test_the_title_cache_grows_across_runs_and_a_damaged_one_is_encoded_again(tmp_path):
    """A run adds the titles it encoded to the ones saved before (same vectors back); a cache
    damaged after it was opened costs an encoding, not an error or a wrong vector."""
    encoded = []

    def title_model(titles, advance=None):
        encoded.extend(titles)
        return fake_title_model(titles, advance)

    def encode(titles):
        return MetadataEncoder(title_model, TitleCache(tmp_path)).encode(titles, ["x"] * len(titles))

    def run(titles):
        encoder = MetadataEncoder(title_model, TitleCache(tmp_path))
        vectors = encoder.encode(titles, ["x"] * len(titles))
        encoder.cache.save()
        return vectors

    first = run(["red song", "blue song"])
    both = run(["blue song", "green song", "red song"])
    assert encoded == ["blue song", "red song", "green song"]  # each title once, sorted per run
    assert np.array_equal(both[[2, 0]], first)
    assert np.array_equal(encode(["green song", "red song"]), both[[1, 2]]) and len(encoded) == 3

    cache = TitleCache(tmp_path)
    cache.path.write_bytes(b"damaged")  # after opening: the titles seemed cached
    encoder = MetadataEncoder(title_model, cache)
    assert np.array_equal(encoder.encode(["red song"], ["x"]), first[:1]) and encoded[3:] == ["red song"]


def test_the_title_cache_keeps_half_precision_and_encodes_a_chunk_at_a_time(tmp_path, monkeypatch):
    """The cache holds float16 (as songs_meta stores), in memory as on disk, and the model's
    float32 output of a big encoding never exists for more than a chunk of titles."""
    monkeypatch.setattr("search.encoder.CACHE_CHUNK", 2)
    calls = []

    def title_model(titles, advance=None):
        calls.append(len(titles))
        return fake_title_model(titles, advance)

    titles = ["red song", "blue song", "green song", "grey song", "gold song"]
    encoder = MetadataEncoder(title_model, TitleCache(tmp_path))
    vectors = encoder.encode(titles, ["x"] * len(titles))
    assert calls == [2, 2, 1]
    exact = MetadataEncoder(fake_title_model).encode(titles, ["x"] * len(titles))
    assert np.all(np.sum(vectors * exact, axis=1) > 0.9999) and not np.array_equal(vectors, exact)
    encoder.cache.save()
    with np.load(TitleCache(tmp_path).path) as saved:
        assert saved["vectors"].dtype == np.float16
    assert np.array_equal(MetadataEncoder(title_model, TitleCache(tmp_path)).encode(titles, ["x"] * len(titles)), vectors)
    assert calls == [2, 2, 1]  # all from the cache, the same vectors as when they were encoded


def test_an_update_trains_on_every_play_of_its_playlists(planted, home_settings):
    """The corpus-sized down-sampling would drop most plays of a small update."""
    from ingest.train import continue_training

    live = ingest_planted(planted, home_settings).version
    model, _, _ = ModelDir(home_settings.models_dir / live).load_model()
    playlists = [[0, 1, 2, 3, 48], [4, 5, 6, 48], [0, 2, 4, 6, 48]] * 5
    trained, raw = continue_training(model, playlists)
    assert trained == raw == sum(map(len, playlists)) * model.epochs
    assert model.sample == TEST_W2V.sample


def test_models_key_songs_by_id_and_an_update_continues_a_model_keyed_by_strings(planted, home_settings):
    """Song ids are the vocabulary as they are (no string copy of the corpus); a model saved
    before, keyed by strings, still takes an update: its new songs are keyed as its old ones."""
    from gensim.models import Word2Vec

    from ingest.train import continue_training, train_word2vec

    playlists = [[0, 1, 2, 3], [4, 5, 6, 7], [0, 2, 4, 6]] * 5
    model = train_word2vec(playlists, TEST_W2V)
    assert sorted(model.wv.index_to_key) == list(range(8))
    old = Word2Vec(sentences=[[str(s) for s in p] for p in playlists], vector_size=4, min_count=1, workers=1, seed=1)
    continue_training(old, [[0, 1, 48], [48, 2, 3]])
    assert set(old.wv.index_to_key) == {str(s) for s in range(8)} | {"48"}


def test_a_failure_after_the_switch_keeps_the_live_model_files(planted, home_settings, store, monkeypatch):
    ingest_planted(planted, home_settings, store)

    def failing_prune(*args, **kwargs):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(pub, "prune", failing_prune)
    with pytest.raises(OSError):
        ingest_planted(planted, home_settings, store, w2v=TEST_W2V.with_options(seed=8))
    live = pub.live_version(store)
    assert (home_settings.models_dir / live / "w2v.model").is_file()
    assert SongSearch(store=store, settings=home_settings).similar(0, limit=3)


def test_lost_aliases_keep_the_versions_and_rollback_restores_the_newest(planted, home_settings):
    names = [ingest_planted(planted, home_settings).version for _ in range(2)]
    (home_settings.embedded_dir / "aliases.json").unlink()
    with open_store(home_settings) as store:
        assert pub.remove_incomplete(store) == []
        assert pub.rollback(store) == names[-1]
        assert SongSearch(store=store, settings=home_settings).similar(0, limit=3)


def test_a_long_lived_reader_lets_go_of_old_versions(planted, home_settings):
    ingest_planted(planted, home_settings)
    songs = SongSearch(settings=home_settings)
    songs.similar_hybrid(0, limit=3)
    ingest_planted(planted, home_settings, w2v=TEST_W2V.with_options(seed=4))
    songs.similar_hybrid(0, limit=3)
    assert set(songs.store._shards) == set(songs.store.aliases().values())
    songs.close()


class _WarmLog(EdgeStore):
    """A real embedded store that records which collections it was asked to warm."""

    def __init__(self, root):
        super().__init__(root)
        self.warmed: list[str] = []

    def warm(self, collection: str) -> None:
        super().warm(collection)
        self.warmed.append(collection)


def test_a_warm_reader_reads_each_version_once_when_it_goes_live(planted, home_settings):
    ingest_planted(planted, home_settings)
    store = _WarmLog(home_settings.home / "qdrant")
    songs = SongSearch(store=store, settings=home_settings, warm=True)
    first = sorted(store.aliases().values())
    songs.wait_warm(30)
    assert sorted(store.warmed) == first  # at open, before any question
    songs.similar(0, limit=3)
    songs.wait_warm(30)
    assert sorted(store.warmed) == first  # not again per question
    ingest_planted(planted, home_settings, w2v=TEST_W2V.with_options(seed=4))
    assert songs.similar(0, limit=3)
    songs.wait_warm(30)
    assert sorted(store.warmed[2:]) == sorted(store.aliases().values()) != first
    songs.close()

"""The scale benchmark's catalogue generator (benchmarks/grow.py) and ingest at scale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from ingest import collections
from ingest.dataset import read_dataset
from search.encoder import MetadataEncoder
from tests.conftest import fake_title_model

GROW = Path(__file__).resolve().parent.parent / "benchmarks" / "grow.py"


def grow(source: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GROW), str(source), str(out), *args], capture_output=True, text=True, timeout=120)


def test_a_grown_catalogue_reads_as_a_dataset_n_times_the_size(planted, tmp_path):
    done = grow(planted.directory, tmp_path / "x3", "--factor", "3")
    assert done.returncode == 0, done.stderr
    source, grown = read_dataset(planted.directory), read_dataset(tmp_path / "x3")
    n = len(source.songs)
    assert len(grown.songs) == 3 * n and len(grown.playlists) == 3 * len(source.playlists)
    assert not grown.problems
    assert sum(map(len, grown.playlists)) == 3 * sum(map(len, source.playlists))
    for song, twin in ((s, c * n + s) for c in (1, 2) for s in source.songs):
        assert grown.songs[twin].tags == source.songs[song].tags
        assert grown.songs[twin].title != source.songs[song].title  # new strings for the encoder
    # one copy maps an artist to one new artist: its songs stay together under the new name
    for artist in {s.artist for s in source.songs.values()}:
        assert len({grown.songs[n + s].artist for s, song in source.songs.items() if song.artist == artist}) == 1


def test_grown_playlists_keep_who_plays_with_whom_and_mix_the_copies(planted, tmp_path):
    assert grow(planted.directory, tmp_path / "x4", "--factor", "4", "--mix", "0.2").returncode == 0
    grown = read_dataset(tmp_path / "x4")
    n = len(planted.songs)
    for playlist in grown.playlists:  # every playlist replays one source playlist: one planted group
        assert len({planted.group_of[song % n] for song in playlist}) == 1
    copies = [{song // n for song in playlist} for playlist in grown.playlists]
    assert sum(len(c) > 1 for c in copies) > len(copies) / 2  # copies share neighbourhoods
    assert {c for cs in copies for c in cs} == {0, 1, 2, 3}


def test_growing_is_seeded(planted, tmp_path):
    for out, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert grow(planted.directory, tmp_path / out, "--factor", "2", "--seed", seed).returncode == 0
    files = {out: [(tmp_path / out / name).read_bytes() for name in ("song_hash.txt", "train.txt")] for out in "abc"}
    assert files["a"] == files["b"] and files["a"] != files["c"]


def test_bad_arguments_are_errors_not_tracebacks(planted, tmp_path):
    for args in (["--factor", "0"], ["--mix", "2"]):
        done = grow(planted.directory, tmp_path / "out", *args)
        assert done.returncode == 2 and "Traceback" not in done.stderr and "error:" in done.stderr
    done = grow(tmp_path / "nowhere", tmp_path / "out")
    assert done.returncode == 2 and "has no song_hash.txt" in done.stderr


def test_metadata_vectors_built_in_chunks_equal_one_encoding(planted, monkeypatch):
    songs = list(read_dataset(planted.directory).songs.values())
    whole = MetadataEncoder(title_model=fake_title_model).encode([s.title for s in songs], [s.artist for s in songs])
    monkeypatch.setattr(collections, "CHUNK_ROWS", 7)
    chunked = collections.metadata_vectors(songs, MetadataEncoder(title_model=fake_title_model))
    assert chunked.dtype == np.float32 and np.array_equal(chunked, whole)


def test_word_vectors_built_in_chunks_equal_the_whole_matrix_in_the_precision_stored(planted, monkeypatch):
    """songs_w2v's vectors are normalised and centred a chunk at a time, into the dtype songs_w2v
    stores: the same vectors as one whole-matrix computation, rounded once."""
    from ingest.train import train_word2vec
    from tests.conftest import TEST_W2V

    dataset = read_dataset(planted.directory)
    model, plays = train_word2vec(dataset.playlists, TEST_W2V), dataset.plays()
    ids, whole = collections.word_vectors(model, plays)
    trained = model.wv.vectors[np.argsort([int(k) for k in model.wv.index_to_key])]
    unit = trained / np.linalg.norm(trained, axis=1, keepdims=True)
    weights = np.array([plays[int(i)] for i in ids], dtype=np.float64)
    assert np.allclose(whole, unit - weights @ unit / weights.sum(), atol=1e-6)
    monkeypatch.setattr(collections, "CHUNK_ROWS", 7)
    chunked_ids, chunked = collections.word_vectors(model, plays, np.float16)
    assert np.array_equal(chunked_ids, ids) and chunked.dtype == np.float16
    assert np.array_equal(chunked, whole.astype(np.float16))


def test_ingest_lets_go_of_each_collections_points_before_its_index_is_built(planted, home_settings, monkeypatch):
    """Building the index of a big collection is an ingest's peak: the points written are not
    held beside it, and the collection is still checked and published."""
    from ingest import publish
    from tests.conftest import ingest_planted

    held_while_indexing = []
    real_write = publish.write_collection

    def write(store, name, data, *args, **kwargs):
        real_finish = store.finish_collection

        def finish(*a, **k):
            held_while_indexing.append((name, len(data.vectors), len(data.sparse)))
            return real_finish(*a, **k)

        monkeypatch.setattr(store, "finish_collection", finish)
        try:
            return real_write(store, name, data, *args, **kwargs)
        finally:
            monkeypatch.setattr(store, "finish_collection", real_finish)

    monkeypatch.setattr(publish, "write_collection", write)
    report = ingest_planted(planted, home_settings)
    assert [n.split("__")[0] for n, _, _ in held_while_indexing] == ["songs_w2v", "songs_meta"]
    assert all(vectors == sparse == 0 for _, vectors, sparse in held_while_indexing)
    assert report.vectors["songs_meta"] == len(planted.songs)


def test_the_scale_benchmark_tells_a_trees_anonymous_memory_from_its_mapped_file_pages(tmp_path, monkeypatch):
    """docs/scale.md's "of it anonymous": a child mapping a 256 MiB file and one allocating
    128 MiB, sampled together."""
    monkeypatch.syspath_prepend(str(GROW.parent))
    from process_tree import TreePeak

    mapped = tmp_path / "mapped.bin"
    mapped.write_bytes(b"\1" * (256 << 20))
    script = (
        "import mmap, sys, time\n"
        f"f = open({str(mapped)!r}, 'rb'); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n"
        "total = sum(m[i] for i in range(0, len(m), 4096))\n"
        "import subprocess\n"
        "child = subprocess.Popen([sys.executable, '-c', 'b = bytearray(128 << 20); import time; time.sleep(1.5)'])\n"
        "time.sleep(1.5); child.wait()\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    with TreePeak(process.pid) as peak:
        process.wait()
    assert 128 <= peak.anon_mib < 128 + 100  # the interpreters' own, a few tens of MiB
    assert peak.mib >= peak.anon_mib + 256  # the file's pages are resident, not anonymous

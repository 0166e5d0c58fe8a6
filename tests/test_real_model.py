"""The real MiniLM, end to end: ingest encodes on ONNX Runtime (a graph built once from the
packaged weights and cached), queries run the same model in numpy; both must give
sentence-transformers' vectors, and cold start must work on them."""

import os
import subprocess
import sys

import numpy as np
import pytest

import ingest.onnx_title as onnx_title
from search.api import SongSearch
from search.encoder import MetadataEncoder, TitleCache, minilm_title_model, numpy_title_model, onnx_title_model
from tests.conftest import ingest_planted

pytestmark = pytest.mark.slow

TITLES = [
    "Master Of Puppets", "Gucci Time (w/ Swizz Beatz)", "", " ", "Chutkaipan", "Ünïcödé – títle ✓", "word " * 300,
    "All I Do Is Win (w\\/ T-Pain, Ludacris, Rick Ross & Snoop Dogg)", "Miss Independent (She Got Her Own)",
    "Smells Like Teen Spirit", "Bohemian Rhapsody", "I", "99 Luftballons", "Été indien", "Straße der Lieder",
    "Désenchantée", "¿Dónde Están Corazón?", "Ελληνικά τραγούδια", "Песня о друге", "上を向いて歩こう", "강남스타일",
    "أغنية", "שיר", "🎵 Emoji Song 🎶", "Don't Stop Believin'", "Stairway To Heaven [Live At Madison Square Garden 1973]",
    "Hey Jude - Remastered 2015", "(I Can't Get No) Satisfaction", "Mr. Brightside", "Señorita", "Björk – Jóga",
    "Crème Brûlée", "Naïve", "tab\there", "R.E.S.P.E.C.T.", "Blue (Da Ba Dee)",
]
#: cosine of every title vector with sentence-transformers' (measured: 1 - cosine < 1e-6 for both)
MIN_COSINE = 0.99999


@pytest.fixture(scope="module")
def sentence_transformers_model():
    return minilm_title_model()


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx_model(onnx_cache):
    return onnx_title_model(onnx_cache)  # exports into onnx_cache


def test_numpy_and_onnx_minilm_equal_sentence_transformers(sentence_transformers_model, onnx_model):
    reference = sentence_transformers_model(TITLES)
    by_numpy = numpy_title_model()(TITLES)
    by_onnx = onnx_model(TITLES)
    assert by_numpy.shape == by_onnx.shape == reference.shape == (len(TITLES), 384)
    for ours in (by_numpy, by_onnx):
        assert np.all(np.sum(ours * reference, axis=1) >= MIN_COSINE)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.all(np.sum(by_onnx * by_numpy, axis=1) >= MIN_COSINE)
    # batching by length does not change a vector: one at a time gives the same
    np.testing.assert_allclose(np.vstack([onnx_model([t]) for t in TITLES[:8]]), by_onnx[:8], atol=1e-5)
    assert onnx_model([]).shape == (0, 384)


def test_ingest_encodes_big_batches_with_the_cached_onnx_model(tmp_path, monkeypatch, onnx_cache, onnx_model, sentence_transformers_model):
    monkeypatch.setattr("search.encoder.NUMPY_BATCH_LIMIT", 3)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    cached = onnx_title.model_path(onnx_cache)
    os.link(cached, onnx_title.model_path(cache_dir))  # exported already: must not export again

    def no_export(path):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_title, "export_model", no_export)
    encoder = MetadataEncoder(cache=TitleCache(cache_dir))
    vectors = encoder.encode(TITLES, ["Metallica"] * len(TITLES))
    assert encoder.encoded_titles == len(set(TITLES))
    reference = MetadataEncoder(title_model=sentence_transformers_model).encode(TITLES, ["Metallica"] * len(TITLES))
    assert np.all(np.sum(vectors * reference, axis=1) >= MIN_COSINE)


def test_export_is_atomic_keyed_by_version_and_redone_when_damaged(tmp_path, monkeypatch, onnx_cache, onnx_model):
    import onnx

    exported = onnx_title.model_path(onnx_cache)
    good_size = exported.stat().st_size
    assert [p.name for p in onnx_cache.iterdir()] == [exported.name]

    # a killed export leaves neither a model nor its temporary file
    def killed(model, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"half a model")
        raise KeyboardInterrupt

    killed_dir = tmp_path / "killed"
    with monkeypatch.context() as m:
        m.setattr(onnx, "save_model", killed)
        with pytest.raises(KeyboardInterrupt):
            onnx_title.load_session(killed_dir)
    assert list(killed_dir.iterdir()) == []

    # a damaged model (say a disk error) is exported again
    damaged_dir = tmp_path / "damaged"
    damaged_dir.mkdir()
    damaged = onnx_title.model_path(damaged_dir)
    damaged.write_bytes(exported.read_bytes()[: good_size // 2])
    (damaged_dir / f"{damaged.name}.abc123.tmp").write_bytes(b"left by a killed export long ago")
    os.utime(damaged_dir / f"{damaged.name}.abc123.tmp", (0, 0))
    old_version = damaged_dir / "minilm-000000000000.onnx"
    old_version.write_bytes(b"an older model's export")
    session = onnx_title.load_session(damaged_dir)
    assert session.get_outputs()[0].shape[-1] == 384
    assert [p.name for p in damaged_dir.iterdir()] == [damaged.name]  # old versions and stale temp files go
    assert damaged.stat().st_size == good_size

    # another model version or export format gets another file
    monkeypatch.setattr(onnx_title, "EXPORT_FORMAT", onnx_title.EXPORT_FORMAT + "+changed")
    assert onnx_title.model_path(onnx_cache) != exported


def test_exporting_the_onnx_model_imports_neither_torch_nor_sentence_transformers(tmp_path):
    script = (
        "import sys; from ingest.onnx_title import load_session; "
        f"session = load_session({str(tmp_path)!r}); "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.stdout.strip() == "[]"
    assert [p.suffix for p in tmp_path.iterdir()] == [".onnx"]


def test_real_model_cold_start_finds_the_artist_and_the_title(planted, home_settings, onnx_model):
    ingest_planted(planted, home_settings, encoder=MetadataEncoder(title_model=onnx_model))
    with SongSearch(settings=home_settings) as songs:  # the default query encoder: numpy MiniLM
        by_artist = songs.cold_start(title="a brand new song", artist="Johnny Cash", limit=3, weights={"w2v": 0})
        assert {r.artist for r in by_artist} == {"Johnny Cash"}
        by_title = songs.cold_start(title="jazz blue song 3", artist="Somebody New", limit=1, weights={"w2v": 0})
        assert by_title[0].title == "jazz blue song 3"

"""How a version's collections are stored: int8 quantization (both backends), shards and
replicas (a server only), recorded with the version and kept by ``ingest --update``.

qdrant-client's local mode keeps no shards and always searches exactly, so on the "server" the
shard settings are checked where they leave the store (the create_collection call); a real
cluster was not available where these tests were written.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from qdrant_client import QdrantClient

from ingest import publish as pub
from ingest.cli import cli as ingest_cli
from ingest.pipeline import run_update
from search.api import SongSearch
from search import contract
from search.contract import META_ALIAS, W2V_ALIAS, Layout, SongSearchError, index_settings
from search.store import Nearest, PayloadFilter, Search
from search.store.edge import EdgeStore
from search.store.server import ServerStore
from tests.conftest import ingest_planted
from tests.test_cli import FAKE_ENCODER, one_line_error
from tests.test_versions import fake_encoder, write_update

POINTS, DIM = 10_000, 64  # float16 songs_w2v vectors past the 1000 KB a segment holds before indexing
#: the Word2Vec settings of tests/conftest.py's TEST_W2V as ingest flags
TEST_FLAGS = ["--epochs", "30", "--vector-size", "16", "--window", "5", "--negative", "5", "--sample", "1e-3",
              "--ns-exponent", "0.75", "--seed", "7", "--workers", "1"]


def clustered_vectors(seed: int = 5) -> np.ndarray:
    """Points around 60 centres: near neighbours that int8 rounding could reorder."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(60, DIM))
    return (centres[rng.integers(0, 60, POINTS)] + 0.35 * rng.normal(size=(POINTS, DIM))).astype(np.float32)


def recall_at_10(store, name: str, vectors: np.ndarray, queries: int = 100) -> float:
    found = []
    for row in range(0, POINTS, POINTS // queries):
        request = Search((Nearest(vectors[row]),), 10, PayloadFilter().without_ids([row]))
        served = {h.song_id for h in store.search(name, request)}
        exact = {h.song_id for h in store.search(name, Search(request.lists, 10, request.filter, exact=True))}
        found.append(len(served & exact) / len(exact))
    return float(np.mean(found))


@pytest.mark.parametrize("alias", [W2V_ALIAS, META_ALIAS])
def test_int8_collections_report_it_and_answer_as_the_stored_vectors_do(store, alias):
    vectors = clustered_vectors()
    for version, layout in (("plain", Layout()), ("int8", Layout(quantization="int8"))):
        name = f"{alias}__{version}"
        store.create_collection(name, DIM, layout=layout)
        store.upsert(name, np.arange(POINTS), vectors, [{"song_id": i} for i in range(POINTS)])
        store.finish_collection(name)
    default = index_settings(alias).quantization  # both keep int8 copies without being asked
    assert store.quantization(f"{alias}__plain") == default
    assert store.quantization(f"{alias}__int8") == "int8"
    assert recall_at_10(store, f"{alias}__int8", vectors) >= 0.95
    plain = store.search(f"{alias}__plain", Search((Nearest(vectors[0]),), 10))
    quantized = store.search(f"{alias}__int8", Search((Nearest(vectors[0]),), 10))
    assert [h.song_id for h in quantized] == [h.song_id for h in plain]  # rescored: the stored vectors' scores
    assert np.allclose([h.score for h in quantized], [h.score for h in plain], atol=1e-3)
    if isinstance(store, EdgeStore):  # the int8 copies exist, the stored vectors are left on disk
        assert list((store.root / "collections" / f"{alias}__int8").rglob("quantized.data"))
        assert bool(list((store.root / "collections" / f"{alias}__plain").rglob("quantized.data"))) == (default is not None)


def test_a_collection_above_the_large_size_gets_a_better_graph_that_finds_what_an_exact_scan_does(store, monkeypatch):
    """songs_meta's graph is built with a wider beam beyond LARGE_COLLECTION_POINTS (its recall falls with size),
    and its answers agree with exact search; songs_w2v is scanned exactly at any size."""
    monkeypatch.setattr(contract, "LARGE_COLLECTION_POINTS", POINTS - 1)
    created = {}
    if isinstance(store, ServerStore):  # local mode keeps no index: what reaches the server is checked
        create = store.client.create_collection
        store.client.create_collection = lambda name, **kwargs: (created.update({name: (kwargs["hnsw_config"].m, kwargs["hnsw_config"].ef_construct)}), create(name, **kwargs))[1]
    vectors = clustered_vectors()
    sizes = {"songs_meta__small": POINTS - 1, "songs_meta__large": POINTS, "songs_w2v__large": POINTS}
    for name, points in sizes.items():
        store.create_collection(name, DIM, layout=Layout(), points=points)
        store.upsert(name, np.arange(POINTS), vectors, [{"song_id": i} for i in range(POINTS)])
        store.finish_collection(name)
        if isinstance(store, EdgeStore):
            hnsw = json.loads((store.root / "collections" / name / "edge_config.json").read_text())["hnsw_config"]
            created[name] = (hnsw["m"], hnsw["ef_construct"])
    small, wider = index_settings(META_ALIAS), contract.LARGE_INDEXES[META_ALIAS]["hnsw_ef_construct"]
    assert created == {"songs_meta__small": (small.hnsw_m, small.hnsw_ef_construct), "songs_meta__large": (small.hnsw_m, wider),
                       "songs_w2v__large": (0, index_settings(W2V_ALIAS).hnsw_ef_construct)}
    assert wider > small.hnsw_ef_construct
    assert recall_at_10(store, "songs_meta__large", vectors) >= 0.95


def test_an_int8_ingest_serves_and_an_update_keeps_int8(planted, home_settings, store, tmp_path):
    report = ingest_planted(planted, home_settings, store, layout=Layout(quantization="int8"))
    assert report.layout.quantization == "int8"
    assert {store.quantization(alias) for alias in (W2V_ALIAS, META_ALIAS)} == {"int8"}
    answer = SongSearch(store=store, settings=home_settings).similar(0, limit=5)
    assert {r.song_id for r in answer} <= planted.group(0)
    playlists, songs = write_update(tmp_path, planted)
    update = run_update(playlists, songs, settings=home_settings, store=store, encoder=fake_encoder(), show_progress=False)
    assert update.layout.quantization == "int8"
    assert pub.live_version(store) == update.version
    assert {store.quantization(alias) for alias in (W2V_ALIAS, META_ALIAS)} == {"int8"}


def test_a_reingest_without_int8_does_not_copy_the_int8_version(planted, home_settings, store):
    ingest_planted(planted, home_settings, store, layout=Layout(quantization="int8"))
    report = ingest_planted(planted, home_settings, store)
    assert report.written == report.vectors  # everything written afresh, nothing copied
    assert [store.quantization(alias) for alias in (W2V_ALIAS, META_ALIAS)] == [index_settings(a).quantization for a in (W2V_ALIAS, META_ALIAS)]


def test_shards_and_replicas_reach_the_server_when_collections_are_created(planted, home_settings):
    store = ServerStore(QdrantClient(":memory:"))
    created = {}
    create = store.client.create_collection

    def recording(name, **kwargs):
        created[name] = kwargs
        return create(name, **kwargs)

    store.client.create_collection = recording
    report = ingest_planted(planted, home_settings, store, layout=Layout(shards=3, replicas=2))
    assert len(created) == 2
    for name, kwargs in created.items():
        assert name.endswith(report.version)
        assert (kwargs["shard_number"], kwargs["replication_factor"], kwargs["write_consistency_factor"]) == (3, 2, 2)
    assert pub.live_version(store) == report.version  # local mode ignores shards; the version still serves


def test_the_cluster_defaults_stay_when_no_shards_are_asked_for(planted, home_settings):
    store = ServerStore(QdrantClient(":memory:"))
    created = []
    create = store.client.create_collection
    store.client.create_collection = lambda name, **kwargs: created.append(kwargs) or create(name, **kwargs)
    ingest_planted(planted, home_settings, store)
    assert [(k["shard_number"], k["replication_factor"], k["write_consistency_factor"]) for k in created] == [(None, None, None)] * 2


def test_shards_on_the_embedded_store_are_a_one_line_error(planted, home_settings):
    with pytest.raises(SongSearchError, match="need a Qdrant server"):
        ingest_planted(planted, home_settings, layout=Layout(replicas=2))
    result = CliRunner().invoke(ingest_cli, ["--data", str(planted.directory), "--quiet", "--shards", "2"], obj=FAKE_ENCODER)
    assert one_line_error(result, exit_code=1) and "QDRANT_URL" in result.output
    assert not pub.versions(EdgeStore(home_settings.embedded_dir))  # nothing written


@pytest.mark.parametrize("args", [["--quantization", "int4"], ["--shards", "0"], ["--replicas", "-1"],
                                  ["--update", "x.txt", "--quantization", "int8"]])
def test_bad_layout_flags_are_usage_errors(planted, home_settings, args):
    result = CliRunner().invoke(ingest_cli, ["--data", str(planted.directory), *args] if "--update" not in args else args)
    assert one_line_error(result, exit_code=2), result.output


def test_the_ingest_summary_shows_the_layout_and_the_peak_memory_of_each_stage(planted, home_settings):
    result = CliRunner().invoke(ingest_cli, ["--data", str(planted.directory), "--quiet", "--quantization", "int8", *TEST_FLAGS], obj=FAKE_ENCODER)
    assert result.exit_code == 0, result.output
    assert "layout: int8 quantization" in result.output
    header = next(line for line in result.output.splitlines() if line.startswith("stage"))
    assert header.split() == ["stage", "seconds", "peak", "RSS", "MiB"]
    total = next(line for line in result.output.splitlines() if line.startswith("total")).split()
    assert float(total[2]) > 10  # MiB: a Python process with numpy and gensim loaded


def test_layouts_are_checked_in_the_api_too():
    with pytest.raises(SongSearchError, match="quantization must be one of int8"):
        Layout(quantization="binary")
    with pytest.raises(SongSearchError, match="shards must be at least 1"):
        Layout(shards=0)
    assert Layout(replicas=3).write_consistency == 2 and Layout().write_consistency is None


"""ingest.evaluation: metrics by hand, the split, the baselines, served methods on planted data,
the publish gate, the report, and the `ingest evaluate` / `ingest tune` commands."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
import math

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import Word2Vec

from ingest.cli import cli as ingest_cli
from ingest.collections import SongPayloads
from ingest.dataset import Dataset, Song, read_dataset
from ingest.evaluation import metrics as me
from ingest.evaluation import report, tune
from ingest.evaluation.baselines import ItemItem, RP3Beta, popularity_answers
from ingest.evaluation.runner import evaluate
from ingest.evaluation.split import prepare, split_playlists
from ingest.evaluation.tags import is_generic_tag
from ingest.evaluation.served import VERSION, ServedModel, pool_catalogue
from ingest.gate import FLOOR_LIFT, GATE_MARGIN, GATE_METRIC, GateProcess, GateProtocol, gate_sample, gate_split, quality_gate
from ingest.train import train_word2vec
from search.contract import W2V_ALIAS, SongSearchError, physical_name
from ingest.model_dir import ModelDir
from search.encoder import MetadataEncoder
from search.query import DEFAULT_FUSION
from tests.conftest import GROUP_SIZE, TEST_W2V, fake_title_model, write_planted_dataset

# --------------------------------------------------------------------------- metrics by hand


def test_hit_rate_by_hand():
    answers = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    targets = [2, 6, 9]
    assert me.hit_rate(answers, targets, 1) == 0.0
    assert me.hit_rate(answers, targets, 2) == pytest.approx(1 / 3)  # only row 0 (2 at rank 2)
    assert me.hit_rate(answers, targets, 3) == pytest.approx(1.0)


def test_coplay_precision_by_hand():
    answers = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    truth = [{1, 3, 9}, {8}]
    # row 0: 1 and 3 of 4 -> 0.5; row 1: 8 of 4 -> 0.25
    assert me.coplay_precision(answers, truth, 4) == pytest.approx(0.375)
    # k = 2: row 0: 1 of {1, 2} -> 0.5; row 1: 0
    assert me.coplay_precision(answers, truth, 2) == pytest.approx(0.25)
    assert me.coplay_precision(np.array([[1, -1]]), [{1, 2}], 2) == pytest.approx(0.5)  # padding is a miss


def test_tag_coherence_by_hand():
    tags_of = {1: frozenset({"rock"}), 2: frozenset({"jazz"}), 3: frozenset({"rock", "pop"}), 4: frozenset()}
    answers = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 4]])
    query_tags = [frozenset({"rock"}), frozenset(), frozenset({"jazz", "pop"})]
    # row 0: 1 and 3 share rock -> 2/3; row 1 has no useful tag -> skipped; row 2: only 2 -> 1/3
    assert me.tag_coherence(answers, query_tags, tags_of.get, 3) == pytest.approx(0.5)
    as_list = [frozenset(), frozenset({"rock"}), frozenset(), frozenset({"rock"})]
    assert me.tag_coherence(np.array([[1, -1, 3]]), [frozenset({"rock"})], as_list, 3) == pytest.approx(2 / 3)
    assert math.isnan(me.tag_coherence(answers[:1], [frozenset()], as_list, 3))


def test_coverage_by_hand():
    answers = np.array([[1, 2], [2, 3], [-1, -1]])
    assert me.coverage(answers, 2, 10) == pytest.approx(0.3)
    assert me.coverage(answers, 1, 10) == pytest.approx(0.2)


@pytest.mark.parametrize("tag", ["favorites", "Seen Live", "80s", "80's", "1990s", "00s", "2009", "male vocalists", "female vocalist", "awesome"])
def test_generic_tags_are_left_out(tag):
    assert is_generic_tag(tag)


@pytest.mark.parametrize("tag", ["rock", "hip-hop", "jazz", "classic rock", "country", "soul"])
def test_genre_tags_stay(tag):
    assert not is_generic_tag(tag)


# --------------------------------------------------------------------------- split


def tiny_dataset(n_playlists=50, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    songs = {i: Song(f"song {i}", f"artist {i % 5}", ["rock"] if i % 2 else ["jazz", "favorites"]) for i in range(40)}
    playlists = [rng.choice(40, size=rng.integers(3, 8), replace=False).tolist() for _ in range(n_playlists)]
    return Dataset(songs, playlists, "tiny", "f" * 16)


def test_split_is_seeded_and_holds_out_whole_playlists():
    train, held = split_playlists(200, 0.1, seed=3)
    again_train, again_held = split_playlists(200, 0.1, seed=3)
    assert held.tolist() == again_held.tolist() and train.tolist() == again_train.tolist()
    assert len(held) == 20 and len(train) == 180
    assert set(train.tolist()).isdisjoint(held.tolist()) and set(train.tolist()) | set(held.tolist()) == set(range(200))
    assert split_playlists(200, 0.1, seed=4)[1].tolist() != held.tolist()
    with pytest.raises(ValueError):
        split_playlists(10, 1.0)


def test_prepare_queries_come_from_held_out_playlists():
    dataset = tiny_dataset()
    data = prepare(dataset, holdout=0.2, seed=5, queries=30, cold=0)
    _, held = split_playlists(len(dataset.playlists), 0.2, 5)
    assert [data.ids[p].tolist() for p in data.heldout] == [dataset.playlists[i] for i in held]  # whole playlists
    assert len(data.train) + len(data.heldout) == len(dataset.playlists)
    assert 0 < len(data.queries) <= 30
    for song, nxt, pl in zip(data.queries.song.tolist(), data.queries.next.tolist(), data.queries.playlist.tolist()):
        playlist = data.heldout[pl].tolist()
        assert any(playlist[j] == song and playlist[j + 1] == nxt for j in range(len(playlist) - 1))
        assert data.pool[song] and data.pool[nxt] and song != nxt
    assert data.tags[1] == frozenset({"rock"}) and data.tags[0] == frozenset({"jazz"})  # "favorites" dropped
    again = prepare(dataset, holdout=0.2, seed=5, queries=30, cold=0)
    assert again.queries.song.tolist() == data.queries.song.tolist()


def test_cold_songs_are_hidden_from_training(tmp_path):
    dataset = read_dataset(write_planted_dataset(tmp_path / "data").directory)
    data = prepare(dataset, holdout=0.2, seed=1, queries=100, cold=4)
    assert len(data.cold) == 4 and len(data.cold_queries) == 4
    assert set(np.concatenate(data.train).tolist()).isdisjoint(data.cold.tolist())
    assert not data.pool[data.cold].any()
    assert all(len(c) > 0 and data.pool[c].all() for c in data.cold_context)


# --------------------------------------------------------------------------- baselines by hand

#: Song 0 is played with 1 in three playlists, with 2 and 3 once; 4 and 5 only with each other.
HAND_PLAYLISTS = [np.array(p) for p in ([0, 1, 2], [0, 1, 3], [0, 1], [2, 3], [4, 5])]


@pytest.mark.parametrize("method", [ItemItem, RP3Beta])
def test_the_song_played_most_with_the_query_ranks_first(method):
    model = method(HAND_PLAYLISTS, 6)
    everything = np.ones(6, bool)
    top = model.top(np.array([0, 4, 0]), 3, everything)
    assert top[0, 0] == 1 and set(top[0, 1:].tolist()) == {2, 3}
    assert top[1, 0] == 5
    assert top[2].tolist() == top[0].tolist()  # the same query, the same answer
    assert 0 not in top[0].tolist() and 4 not in top[1].tolist()  # never the query itself
    not_one = everything.copy()
    not_one[1] = False
    assert 1 not in model.top(np.array([0]), 5, not_one)[0].tolist()


def test_item_item_cosine_by_hand():
    model = ItemItem(HAND_PLAYLISTS, 6)
    scores = model.scores_for_rows(model.xt[[0]])[0]
    # 0 is in 3 playlists, 1 in 3 (all shared), 2 in 2 (one shared)
    assert scores[1] == pytest.approx(3 / math.sqrt(3 * 3))
    assert scores[2] == pytest.approx(1 / math.sqrt(3 * 2))
    assert scores[5] == 0


def test_popularity_leaves_the_query_out():
    data = prepare(tiny_dataset(), holdout=0.2, seed=5, queries=30, cold=0)
    answers = popularity_answers(data, data.queries.song, 5)
    assert answers.shape == (len(data.queries), 5)
    for song, row in zip(data.queries.song.tolist(), answers.tolist()):
        assert song not in row
        assert data.train_plays[row].tolist() == sorted(data.train_plays[row].tolist(), reverse=True)


# --------------------------------------------------------------------------- served methods on planted data


@pytest.fixture(scope="module")
def planted_dataset(tmp_path_factory):
    return read_dataset(write_planted_dataset(tmp_path_factory.mktemp("planted")).directory)


@pytest.fixture(scope="module")
def evaluation(planted_dataset):
    settings = {"default": TEST_W2V, "seed": TEST_W2V.with_options(vector_size=8, epochs=5)}
    return evaluate(planted_dataset, settings, queries=200, cold=3, ks=(1, 5, 10), encoder=MetadataEncoder(title_model=fake_title_model))


def test_every_method_is_scored_on_planted_data(evaluation):
    by = {r.name: r for r in evaluation.warm}
    assert list(by) == [
        "popularity", "item-item cosine", "RP3beta", "RP3beta, tuned",
        "default", "default, Word2Vec only", "default, co-play only", "default, hybrid",
        "seed", "seed, Word2Vec only", "seed, co-play only",
    ]
    # playlists never cross groups: a group's other songs are the best answers
    for name in ("item-item cosine", "RP3beta", "default", "default, Word2Vec only", "default, co-play only"):
        assert by[name].at("coplay") > 2 * by["popularity"].at("coplay"), name
    assert [r.name for r in evaluation.cold] == ["popularity", "item-item (its neighbours' playlists)", "cold start, context", "cold start, title + artist"]
    assert evaluation.find("cold start, title + artist", "cold").at("tags") > evaluation.find("popularity", "cold").at("tags")
    index, vectors = evaluation.vectors["default"]
    assert len(index) == len(vectors) == int(evaluation.data["pool"]) and vectors.shape[1] == TEST_W2V.vector_size
    payload = report.json_payload(evaluation, 10)
    assert json.loads(json.dumps(payload, allow_nan=False))["warm"][0]["method"] == "popularity"


def test_playlist_continuation_and_shapes_on_planted_data(evaluation):
    """Planted playlists never cross groups: from a playlist's first three songs every method finds
    its group; capping one song per artist (two artists a group) must cost co-play and give artists."""
    by = {r.name: r for r in evaluation.continuation}
    assert list(by) == ["recommend", "context averaging", "item-item cosine"]
    for result in by.values():
        assert result.at("coplay") > 0.4 and result.at("hit") > 0.5, result.name
    shapes = {row["result"].name: row for row in evaluation.shapes}
    assert list(shapes) == ["default", "--per-artist 1", "--diversity 0.5"]
    default, capped = shapes["default"], shapes["--per-artist 1"]
    assert default["result"].at("coplay") == evaluation.find("default").at("coplay")  # the served default, same queries
    assert capped["artists"] == 8 > default["artists"]  # every artist of the planted data, once
    assert capped["result"].at("coplay") < default["result"].at("coplay")
    assert 1 <= shapes["--diversity 0.5"]["artists"] <= 8
    payload = json.loads(json.dumps(report.json_payload(evaluation, 10), allow_nan=False))
    assert [r["method"] for r in payload["continuation"]] == list(by) and payload["shapes"][1]["artists"] == 8


def test_item_item_finds_the_planted_groups(planted_dataset):
    data = prepare(planted_dataset, queries=200, cold=0)
    songs = np.arange(data.size)
    top = ItemItem(data.train, data.size).top(songs, GROUP_SIZE - 1, data.pool)
    for song in songs.tolist():
        group = {s for s in range(data.size) if s // GROUP_SIZE == data.ids[song] // GROUP_SIZE}  # planted ids: group * GROUP_SIZE + k
        assert set(data.ids[top[song]].tolist()) == {int(data.ids[s]) for s in group} - {int(data.ids[song])}


# --------------------------------------------------------------------------- the gate

SMALL = GateProtocol(queries=300)


def broken_model(playlists, settings):
    """What a broken training run might leave: one epoch, two dimensions."""
    return Word2Vec(sentences=[[str(s) for s in p] for p in playlists], vector_size=2, epochs=1, min_count=1, workers=1, seed=1)


@pytest.fixture(scope="module")
def good(planted_dataset):
    return quality_gate(planted_dataset, TEST_W2V, protocol=SMALL)


def test_gate_passes_a_good_model_and_records_comparable_metrics(planted_dataset, good, tmp_path):
    assert good.passed, good.reason
    assert good.value > 2 * good.floor and good.protocol["version"] == "gate-v2-served"
    ModelDir(tmp_path / "v1").save_quality(good.to_dict())
    live = ModelDir(tmp_path / "v1").quality_metrics()
    assert live == good.metrics
    assert quality_gate(planted_dataset, TEST_W2V, live_metrics=live, protocol=SMALL).passed  # the same model against itself
    refused = quality_gate(planted_dataset, TEST_W2V, live_metrics={**live, "coplay@10": good.value * 1.5}, protocol=SMALL)
    assert not refused.passed and "below the live" in refused.reason
    other = {**live, "coplay@10": good.value * 1.5, "protocol_version": "gate-v0"}
    assert quality_gate(planted_dataset, TEST_W2V, live_metrics=other, protocol=SMALL).passed  # another protocol: not compared


def test_gate_refuses_a_broken_model(planted_dataset, good):
    """The co-play evidence needs no training and keeps the default answer's coplay@10 (the
    verdict's ``value``) up whatever the model: the gate refuses a broken one on its Word2Vec
    evidence alone, with or without live metrics."""
    w2v = f"w2v_{GATE_METRIC}"
    alone = quality_gate(planted_dataset, TEST_W2V, protocol=SMALL, trainer=broken_model)
    assert not alone.passed and "Word2Vec alone" in alone.reason, alone.reason
    bad = quality_gate(planted_dataset, TEST_W2V, live_metrics=good.metrics, protocol=SMALL, trainer=broken_model)
    assert not bad.passed and "Word2Vec alone" in bad.reason, bad.reason
    assert bad.metrics[w2v] < good.metrics[w2v] * (1 - GATE_MARGIN)
    assert bad.metrics[w2v] <= bad.floor * (1 + FLOOR_LIFT) < good.metrics[w2v]


def test_a_dataset_of_more_playlists_than_the_gate_takes_is_measured_on_a_seeded_sample(planted_dataset, good):
    """The gate beside an ingest stays as big at any catalogue size; a sample scores otherwise than
    the whole, so its numbers are a protocol of their own, never compared with the whole's."""
    whole = len(planted_dataset.playlists)
    few = replace(SMALL, max_playlists=whole // 2)
    assert few.for_playlists(whole // 2) == few and SMALL.for_playlists(whole) == SMALL
    sampled = few.for_playlists(whole)
    sample = gate_sample(planted_dataset, sampled)
    assert len(sample.playlists) == whole // 2 and gate_sample(planted_dataset, sampled).playlists == sample.playlists
    assert all(p in planted_dataset.playlists for p in sample.playlists)
    assert set(sample.songs) == {song for p in sample.playlists for song in p} <= set(planted_dataset.songs)
    split = gate_split(planted_dataset, sampled)
    assert len(split.train) + len(split.heldout) == whole // 2 and len(split.ids) == len(sample.songs)
    verdict = quality_gate(planted_dataset, TEST_W2V, live_metrics=good.metrics, protocol=few)
    assert verdict.passed and verdict.protocol["version"] == sampled.version != good.protocol["version"]
    assert verdict.live_value is None and "another protocol" in verdict.reason
    again = quality_gate(planted_dataset, TEST_W2V, live_metrics=verdict.metrics, protocol=few)
    assert again.live_value == verdict.value and "vs live" in again.reason  # two sampled runs compare


def test_the_gates_store_answers_as_it_does_with_the_payload_indexes_and_the_tags(planted_dataset):
    """The gate leaves out the payload indexes and the songs' tags (only filters use them):
    adding both to its store changes no answer.  (Two builds of one store can differ where int8
    rounding meets a tie.)"""
    data = prepare(planted_dataset, queries=200, cold=0)
    model = train_word2vec(data.train_sentences(), TEST_W2V)
    songs = np.unique(data.queries.song)
    asks = {"fused": lambda search, song: search.similar(song, limit=10),
            "w2v": lambda search, song: search.similar(song, limit=10, evidence="w2v")}
    with ServedModel(planted_dataset, data, model, filterable=False) as gate:
        name = physical_name(W2V_ALIAS, VERSION)
        without = {ask: gate.answers(songs, 10, asks[ask]) for ask in asks}
        indexed = lambda: set(gate.store._shard(name).info().payload_schema)  # noqa: E731 - the engine's own account
        assert indexed() == set()
        ids = data.ids[data.pool]
        assert all(not p.payload["tags"] for p in gate.store.retrieve(name, ids.tolist()).values())
        full = SongPayloads(pool_catalogue(planted_dataset, data), ids)
        assert any(full[row]["tags"] for row in range(len(full)))
        gate.store.set_payloads(name, ids, list(full))
        gate.store.finish_collection(name, reindex=False)
        assert indexed() >= {"artist_key", "tags", "plays"}
        assert gate.store.retrieve(name, ids[:1].tolist())[int(ids[0])].payload == full[0]
        for ask in asks:
            assert np.array_equal(without[ask], gate.answers(songs, 10, asks[ask])), ask


def test_the_gate_process_gives_the_gates_verdict_and_its_errors_in_one_line(planted_dataset, good):
    verdict, peak_mib = GateProcess(planted_dataset, TEST_W2V, good.metrics).result()
    assert verdict.passed and verdict.live_value == good.value and "vs live" in verdict.reason
    assert verdict.metric == good.metric and verdict.protocol == asdict(GateProtocol()) and peak_mib > 50
    # what fails in the gate's process is raised here, in one line
    damaged = Dataset({1: Song("a", "b", [])}, [[1, None]], "damaged", "0")
    with pytest.raises(SongSearchError, match=r"^quality gate: KeyError: None$"):
        GateProcess(damaged, TEST_W2V, None).result()


# --------------------------------------------------------------------------- report and commands


def test_report_from_the_evaluation(evaluation, good, tmp_path):
    verdict = good
    tuning = {
        "split_seed": 11, "queries": 150, "budget_min": 1, "elapsed_min": 0.5, "max_train_s": 75, "tag_tolerance": 0.002,
        "scored_by": tune.SCORED_BY, "best": {"metrics": {"coplay": 0.5, "tags": 0.6, "hit": 0.1}},
        "trials": [{"step": "seed notebook", "train_seconds": 1.0, "metrics": {"coplay": 0.4, "tags": 0.6, "hit": 0.1}},
                   {"step": "epochs=60", "train_seconds": 300.0, "too_slow": True}],
    }
    text = report.write_report(evaluation, tmp_path / "quality.md", tuning, verdict).read_text()
    default, item = evaluation.find("default"), evaluation.find("item-item cosine")
    assert f"coplay@10 {default.at('coplay'):.3f}" in text and f"`item-item cosine` ({item.at('coplay'):.3f})" in text
    assert "| RP3beta |" in text and "| default, co-play only |" in text and "## Cold start" in text
    assert "## Playlist continuation" in text and "| recommend |" in text and "## Diversity" in text and "| --per-artist 1 |" in text
    assert "gate-v2-served" in text and verdict.reason in text and "| epochs=60 |" in text
    for gone in ("in-out", "out-out", "plays >= 3", "numpy kNN"):
        assert gone not in text
    assert (tmp_path / "img" / "metrics_vs_k.png").stat().st_size > 1000
    assert (tmp_path / "img" / "cold_start.png").exists() and (tmp_path / "img" / "song_map.png").exists()


def test_run_writes_the_report(tmp_path, home_settings):
    data = write_planted_dataset(tmp_path / "data").directory
    path = tmp_path / "docs" / "quality.md"
    result = report.run(str(data), queries=150, cold=3, encoder=MetadataEncoder(title_model=fake_title_model), report=path,
                        tuning=tmp_path / "missing.json", gate=False)
    assert list(result.settings) == ["default", "seed"]
    text = path.read_text()
    assert "## Hyperparameter search" not in text and "## Quality gate" not in text and "`seed`" in text


def test_cli_evaluate_json(tmp_path, home_settings):
    data = write_planted_dataset(tmp_path / "data").directory
    result = CliRunner().invoke(ingest_cli, ["evaluate", "--data", str(data), "--no-meta", "--queries", "150", "--cold", "3", "--preset", "tuned", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    names = [r["method"] for r in payload["warm"]]
    assert names == ["popularity", "item-item cosine", "RP3beta", "RP3beta, tuned", "default", "default, Word2Vec only", "default, co-play only"]
    assert payload["data"]["queries"] > 0 and payload["k"] == 10 and len(payload["cold"]) == 3
    assert payload["warm"][4]["metrics"]["coplay"]["10"] > payload["warm"][0]["metrics"]["coplay"]["10"]


def test_fusion_grid_starts_with_the_default_and_asks_nothing_twice():
    grid = tune.fusion_grid()
    assert grid[0] == DEFAULT_FUSION
    keys = [(f.method, f.depth(10), f.k if f.method == "rrf" else None, f.coplay_weight / f.w2v_weight if f.method == "rrf" else None) for f in grid]
    assert len(set(keys)) == len(keys)
    assert {f.method for f in grid} == {"rrf", "dbsf"} and all(f.coplay_weight == 1 for f in grid if f.method == "dbsf")
    assert len([f for f in grid if f.method == "rrf"]) == len(tune.RRF_KS) * len(tune.RATIOS) * len(tune.DEPTH_FACTORS)


def test_cli_tune_writes_every_trial_and_the_best(tmp_path, home_settings):
    data = write_planted_dataset(tmp_path / "data").directory
    out = tmp_path / "docs" / "fusion_tuning.json"
    result = CliRunner().invoke(ingest_cli, ["tune", "--data", str(data), "--queries", "150", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["split_seed"] == tune.TUNING_SEED and len(written["trials"]) == len(tune.fusion_grid())
    assert written["current"]["fusion"]["method"] == DEFAULT_FUSION.method and written["current"] == written["trials"][0]
    best = written["best"]["metrics"]
    assert best["coplay"] >= written["current"]["metrics"]["coplay"] and best["coplay"] > written["references"]["w2v"]["coplay"] * 0.5
    assert "best: EvidenceFusion(" in result.stdout and "current" in result.stdout


def test_cli_tune_refuses_the_report_split_and_stray_options(tmp_path, home_settings):
    runner = CliRunner()
    refused = runner.invoke(ingest_cli, ["tune", "--data", str(tmp_path), "--seed", "7"])
    assert refused.exit_code == 2 and "report's split" in refused.output
    stray = runner.invoke(ingest_cli, ["tune", "--data", str(tmp_path), "--budget-min", "1"])
    assert stray.exit_code == 2 and "--word2vec" in stray.output


def test_cli_tune_word2vec_within_its_budget(tmp_path, home_settings):
    data = write_planted_dataset(tmp_path / "data").directory
    out = tmp_path / "tuning.json"
    result = CliRunner().invoke(ingest_cli, ["tune", "--word2vec", "--data", str(data), "--queries", "100", "--out", str(out), "--budget-min", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert [t["step"] for t in written["trials"]] == ["seed notebook"] and written["scored_by"] == tune.SCORED_BY
    assert written["best"]["metrics"]["coplay"] > 0 and "seed notebook" in result.stdout
    again = CliRunner().invoke(ingest_cli, ["tune", "--word2vec", "--data", str(data), "--queries", "100", "--out", str(out), "--budget-min", "0", "--extend", "--quiet"])
    assert again.exit_code == 0, again.output


def test_seed_preset_is_the_notebook_and_sample_plays_scales():
    from ingest.train import DEFAULT_PRESET, PRESETS

    seed = PRESETS["seed"].training_args(1_000)
    assert {k: seed[k] for k in ("vector_size", "window", "negative", "min_count", "epochs", "sg", "sample", "ns_exponent")} == {
        "vector_size": 32, "window": 20, "negative": 50, "min_count": 1, "epochs": 5, "sg": 0, "sample": 1e-3, "ns_exponent": 0.75,
    }
    tuned = PRESETS[DEFAULT_PRESET]
    assert tuned.training_args(1_700_000)["sample"] == pytest.approx(1e-5)
    assert tuned.training_args(170_000)["sample"] == pytest.approx(1e-4)
    assert tuned.with_options(sample=1e-3).training_args(1_700_000)["sample"] == 1e-3
    assert list(report.labelled_settings(("seed", "tuned"))) == ["default", "seed"]

"""ingest.evaluate: metrics on hand-made cases, the split, the baselines, the gate, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import Word2Vec

from ingest import evaluate as ev
from ingest.cli import cli as ingest_cli
from ingest.dataset import Dataset, Song, read_dataset
from ingest.train import W2VSettings
from search.encoder import MetadataEncoder
from tests.conftest import GROUP_SIZE, TEST_W2V, fake_title_model

# --------------------------------------------------------------------------- metrics by hand


def test_hit_rate_by_hand():
    answers = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    targets = [2, 6, 9]
    assert ev.hit_rate(answers, targets, 1) == 0.0
    assert ev.hit_rate(answers, targets, 2) == pytest.approx(1 / 3)  # only row 0 (2 at rank 2)
    assert ev.hit_rate(answers, targets, 3) == pytest.approx(1.0)


def test_coplay_precision_by_hand():
    answers = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    truth = [{1, 3, 9}, {8}]
    # row 0: 1 and 3 of 4 -> 0.5; row 1: 8 of 4 -> 0.25
    assert ev.coplay_precision(answers, truth, 4) == pytest.approx(0.375)
    # k = 2: row 0: 1 of {1, 2} -> 0.5; row 1: 0
    assert ev.coplay_precision(answers, truth, 2) == pytest.approx(0.25)


def test_coplay_precision_counts_padding_as_a_miss():
    assert ev.coplay_precision(np.array([[1, -1]]), [{1, 2}], 2) == pytest.approx(0.5)


def test_tag_coherence_by_hand():
    tags_of = {1: frozenset({"rock"}), 2: frozenset({"jazz"}), 3: frozenset({"rock", "pop"}), 4: frozenset()}
    answers = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 4]])
    query_tags = [frozenset({"rock"}), frozenset(), frozenset({"jazz", "pop"})]
    # row 0: 1 and 3 share rock -> 2/3; row 1 has no useful tag -> skipped; row 2: only 2 -> 1/3
    assert ev.tag_coherence(answers, query_tags, tags_of.get, 3) == pytest.approx(0.5)
    assert ev.tag_coherence(np.array([[1, -1, 3]]), [frozenset({"rock"})], [frozenset(), frozenset({"rock"}), frozenset(), frozenset({"rock"})], 3) == pytest.approx(2 / 3)


def test_coverage_by_hand():
    answers = np.array([[1, 2], [2, 3], [-1, -1]])
    assert ev.coverage(answers, 2, 10) == pytest.approx(0.3)
    assert ev.coverage(answers, 1, 10) == pytest.approx(0.2)


@pytest.mark.parametrize("tag", ["favorites", "Seen Live", "80s", "80's", "1990s", "00s", "2009", "male vocalists", "female vocalist", "awesome"])
def test_generic_tags_are_left_out(tag):
    assert ev.is_generic_tag(tag)


@pytest.mark.parametrize("tag", ["rock", "hip-hop", "jazz", "classic rock", "country", "soul"])
def test_genre_tags_stay(tag):
    assert not ev.is_generic_tag(tag)


def test_top_k_by_hand():
    candidates = ev.normalise(np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], np.float32))
    allowed = np.array([True, True, True, False])
    top = ev.top_k(candidates[[0, 2]], candidates, 3, allowed, exclude=np.array([0, -1]))
    assert top[0].tolist() == [1, 2, -1]  # itself excluded, 3 not allowed: only two answers
    assert top[1].tolist() == [2, 1, 0]


# --------------------------------------------------------------------------- split


def tiny_dataset(n_playlists=50, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    songs = {i: Song(f"song {i}", f"artist {i % 5}", ["rock"] if i % 2 else ["jazz", "favorites"]) for i in range(40)}
    playlists = [rng.choice(40, size=rng.integers(3, 8), replace=False).tolist() for _ in range(n_playlists)]
    return Dataset(songs, playlists, "tiny", "f" * 16)


def test_split_is_seeded_and_holds_out_whole_playlists():
    train, held = ev.split_playlists(200, 0.1, seed=3)
    again_train, again_held = ev.split_playlists(200, 0.1, seed=3)
    assert held.tolist() == again_held.tolist() and train.tolist() == again_train.tolist()
    assert len(held) == 20 and len(train) == 180
    assert set(train.tolist()).isdisjoint(held.tolist()) and set(train.tolist()) | set(held.tolist()) == set(range(200))
    assert ev.split_playlists(200, 0.1, seed=4)[1].tolist() != held.tolist()


def test_prepare_queries_come_from_held_out_playlists():
    dataset = tiny_dataset()
    data = ev.prepare(dataset, holdout=0.2, seed=5, queries=30, cold=0)
    _, held = ev.split_playlists(len(dataset.playlists), 0.2, 5)
    # held-out playlists are the original playlists, whole
    assert [data.ids[p].tolist() for p in data.heldout] == [dataset.playlists[i] for i in held]
    assert len(data.train) + len(data.heldout) == len(dataset.playlists)
    assert 0 < len(data.queries) <= 30
    for song, nxt, pl in zip(data.queries.song, data.queries.next, data.queries.playlist):
        playlist = data.heldout[pl].tolist()
        i = playlist.index(song)
        assert playlist[i + 1] == nxt or any(playlist[j] == song and playlist[j + 1] == nxt for j in range(len(playlist) - 1))
        assert data.pool[song] and data.pool[nxt]
    assert data.tags[1] == frozenset({"rock"}) and data.tags[0] == frozenset({"jazz"})  # "favorites" dropped


def test_cold_songs_are_hidden_from_training(planted):
    dataset = read_dataset(planted.directory)
    data = ev.prepare(dataset, holdout=0.2, seed=1, queries=100, cold=4)
    assert len(data.cold) == 4 and len(data.cold_queries) == 4
    trained = set(np.concatenate(data.train).tolist())
    assert trained.isdisjoint(data.cold.tolist())
    assert all(len(c) > 0 for c in data.cold_context)


# --------------------------------------------------------------------------- baselines and methods


def test_item_item_finds_the_planted_groups(planted):
    dataset = read_dataset(planted.directory)
    data = ev.prepare(dataset, queries=200, cold=0)
    item_item = ev.ItemItem(data.train, data.size)
    songs = np.arange(data.size)
    top = item_item.top(songs, GROUP_SIZE - 1, data.pool)
    for song in songs.tolist():
        group = planted.group(int(data.ids[song]))
        assert set(data.ids[top[song]].tolist()) == group - {int(data.ids[song])}


def test_methods_rank_sensibly_on_planted_data(planted):
    dataset = read_dataset(planted.directory)
    result = ev.evaluate(dataset, {"w2v": TEST_W2V}, queries=300, cold=4, encoder=MetadataEncoder(title_model=fake_title_model))
    by = {r.name: r for r in result.warm}
    assert set(by) >= {"popularity", "item-item cosine", "metadata", "w2v", "hybrid (w2v + meta, RRF)"}
    # playlists never cross groups: a group's 11 other songs are the best answers
    assert by["item-item cosine"].at("coplay") > 2 * by["popularity"].at("coplay")
    assert by["w2v"].at("coplay") > 2 * by["popularity"].at("coplay")
    assert by["popularity"].at("coverage") <= 11 / result.data["pool"]  # the same top 11 for every query
    assert [r.name for r in result.cold][:3] == ["popularity", "item-item (its neighbours' playlists)", "w2v, context average"]
    assert result.find("w2v, context average", "cold").at("tags") > result.find("popularity", "cold").at("tags")


# --------------------------------------------------------------------------- the gate

SMALL = ev.GateProtocol(queries=300)


def random_model(playlists, settings):
    model = Word2Vec(sentences=[[str(s) for s in p] for p in playlists], vector_size=16, min_count=1, epochs=1, workers=1, seed=1)
    model.wv.vectors[:] = np.random.default_rng(0).normal(size=model.wv.vectors.shape)
    return model


def test_gate_passes_a_good_model_and_refuses_a_randomised_one(planted):
    dataset = read_dataset(planted.directory)
    good = ev.quality_gate(dataset, TEST_W2V, protocol=SMALL)
    assert good.passed, good.reason
    assert good.value > 2 * good.floor
    bad = ev.quality_gate(dataset, TEST_W2V, live_metrics=good.metrics, protocol=SMALL, trainer=random_model)
    assert not bad.passed
    assert bad.value < good.value * (1 - ev.GATE_MARGIN)


def test_gate_refuses_a_clearly_worse_model_than_the_live_one(planted, tmp_path):
    dataset = read_dataset(planted.directory)
    good = ev.quality_gate(dataset, TEST_W2V, protocol=SMALL)
    ev.record_metrics(tmp_path / "v1", good)
    live = ev.read_recorded_metrics(tmp_path / "v1")
    assert live == good.metrics
    weak = W2VSettings(vector_size=2, window=2, negative=5, epochs=1, seed=3, workers=1)
    verdict = ev.quality_gate(dataset, weak, live_metrics=live, protocol=SMALL)
    assert not verdict.passed, verdict.reason
    assert verdict.live_value == pytest.approx(good.value)
    # the same model against itself passes; against a much better live value it is refused on the margin
    assert ev.quality_gate(dataset, TEST_W2V, live_metrics=live, protocol=SMALL).passed
    inflated = {**live, "coplay@10": good.value * 1.5}
    refused = ev.quality_gate(dataset, TEST_W2V, live_metrics=inflated, protocol=SMALL)
    assert not refused.passed and "below the live" in refused.reason
    # numbers recorded under another protocol are not compared
    other = {**inflated, "protocol_version": "gate-v0"}
    assert ev.quality_gate(dataset, TEST_W2V, live_metrics=other, protocol=SMALL).passed


def test_read_recorded_metrics_tolerates_missing_files(tmp_path):
    assert ev.read_recorded_metrics(tmp_path / "nothing") is None
    assert ev.read_recorded_metrics(None) is None
    (tmp_path / ev.QUALITY_FILE).write_text("{broken")
    assert ev.read_recorded_metrics(tmp_path) is None


# --------------------------------------------------------------------------- CLI and report


def test_cli_evaluate_json(planted, home_settings):
    result = CliRunner().invoke(
        ingest_cli, ["evaluate", "--data", str(planted.directory), "--no-meta", "--queries", "200", "--cold", "3", "--preset", "seed", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    names = [r["method"] for r in payload["warm"]]
    assert names[:2] == ["popularity", "item-item cosine"] and "w2v seed" in names
    assert payload["data"]["queries"] > 0 and payload["k"] == 10


def test_report_is_written_with_plots(planted, tmp_path):
    dataset = read_dataset(planted.directory)
    settings = {"w2v default": TEST_W2V, "w2v seed": TEST_W2V.with_options(epochs=5)}
    result = ev.evaluate(dataset, settings, queries=200, cold=3, ks=(1, 5, 10), encoder=MetadataEncoder(title_model=fake_title_model),
                         min_plays=(3,), variants_for=("w2v default",), keep_vectors=True)
    path = ev.write_report(result, tmp_path / "quality.md")
    text = path.read_text()
    assert "| item-item cosine |" in text and "w2v default, plays >= 3" in text and "## Cold start" in text
    assert (tmp_path / "img" / "metrics_vs_k.png").stat().st_size > 1000
    assert (tmp_path / "img" / "cold_start.png").exists()


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

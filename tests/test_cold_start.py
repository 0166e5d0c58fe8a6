"""Cold start and hybrid search on the planted data, both backends."""

import json

import pytest
from click.testing import CliRunner

from search.api import SongSearch
from search.cli import cli as search_cli
from search.contract import SongSearchError
from search.encoder import MetadataEncoder
from tests.conftest import fake_title_model, ingest_planted


@pytest.fixture
def songs(ingested):
    s, planted = ingested
    return SongSearch(store=s.store, settings=s.settings, encoder=MetadataEncoder(title_model=fake_title_model)), planted


def test_context_of_one_group_answers_that_group_without_the_context(songs):
    s, planted = songs
    context = [24, 25, 26]
    results = s.cold_start(context=context, limit=6)
    ids = {r.song_id for r in results}
    assert ids <= planted.group(24) - set(context)
    assert all(r.sources == ("context",) for r in results)


def test_unknown_context_ids_are_skipped_and_reported(songs):
    s, planted = songs
    results = s.cold_start(context=[24, 9999], limit=3)
    assert {r.song_id for r in results} <= planted.group(24)
    assert s.warnings == ["skipped unknown context song id(s): 9999"]


def test_known_artist_brings_that_artists_songs_first(songs):
    s, planted = songs
    iron_maiden = planted.artist_songs("Iron Maiden")
    metadata_only = s.cold_start(title="metal thunder song 99", artist="iron maiden", limit=6, weights="w2v=0")
    assert {r.song_id for r in metadata_only} == iron_maiden
    fused = s.cold_start(title="metal thunder song 99", artist="iron maiden", limit=6)
    assert {r.song_id for r in fused[:3]} <= iron_maiden


def test_unseen_artist_still_answers_from_the_title(songs):
    s, planted = songs
    results = s.cold_start(title="jazz blue song", artist="A Brand New Trio", limit=5)
    assert {r.song_id for r in results} <= planted.group(24)


def test_metadata_only_song_gets_playlist_neighbours_through_the_bridge(songs):
    s, planted = songs
    results = s.cold_start(title="country road song", artist="Johnny Cash", limit=30)
    bridged = [r for r in results if "bridge" in r.sources][:8]
    assert len(bridged) == 8
    assert {r.song_id for r in bridged} <= planted.group(36)


def test_context_and_metadata_are_fused(songs):
    s, planted = songs
    results = s.cold_start(context=[0, 1], title="metal thunder song 50", artist="Metallica", limit=10)
    assert {src for r in results for src in r.sources} == {"context", "meta"}
    assert {r.song_id for r in results} <= planted.group(0) - {0, 1}


@pytest.mark.parametrize("method", ["rrf", "dbsf"])
def test_filters_hold_after_fusion(songs, method):
    s, planted = songs
    fused = s.cold_start(context=[0, 1], title="club dance", artist="Rihanna", only_artist="metallica", limit=20, fusion_method=method)
    assert fused and {r.artist for r in fused} == {"Metallica"}
    hybrid = s.similar(0, hybrid=True, artist="METALLICA", limit=20, fusion_method=method, weights="w2v=1,meta=0.5")
    assert hybrid and {r.artist for r in hybrid} == {"Metallica"}


def test_hybrid_similar_fuses_both_collections(songs):
    s, planted = songs
    results = s.similar(13, hybrid=True, limit=5)
    assert 13 not in {r.song_id for r in results}
    assert {r.song_id for r in results} <= planted.group(13)
    assert any("meta" in r.sources and "w2v" in r.sources for r in results)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(context=[]), "give --context"),
        (dict(title="  ", artist=""), "give --context"),
        (dict(context=[9998, 9999]), "none of the --context song ids"),
        (dict(context=[1], weights="w2v=abc"), "malformed --weights"),
        (dict(context=[1], fusion_method="max"), "unknown fusion"),
    ],
)
def test_cold_start_bad_input(songs, kwargs, message):
    s, _ = songs
    with pytest.raises(SongSearchError, match=message):
        s.cold_start(**kwargs)


@pytest.fixture
def cli_home(planted, home_settings):
    ingest_planted(planted, home_settings)
    return planted


def test_cli_cold_start_context_json_names_its_sources(cli_home):
    result = CliRunner().invoke(search_cli, ["cold-start", "--context", "24,25,9999", "--limit", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert "Warning: skipped unknown context song id(s): 9999" in result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 3 and all(r["sources"] == ["context"] for r in rows)
    assert {r["song_id"] for r in rows} <= cli_home.group(24)


def test_cli_hybrid_similar(cli_home):
    result = CliRunner().invoke(search_cli, ["similar", "--id", "2", "--hybrid", "--fusion", "dbsf", "--weights", "w2v=1,meta=0.5", "--json"])
    assert result.exit_code == 0, result.output
    assert {r["song_id"] for r in json.loads(result.output)} <= cli_home.group(2)


@pytest.mark.parametrize(
    "args, text",
    [
        (["cold-start"], "give --context"),
        (["cold-start", "--context", "1,x"], "comma-separated song ids"),
        (["cold-start", "--context", "9999"], "none of the --context song ids"),
        (["cold-start", "--context", "1", "--fusion", "max"], "'max' is not one of"),
        (["similar", "--id", "1", "--hybrid", "--weights", "meta=lots"], "malformed --weights"),
    ],
)
def test_cli_cold_start_bad_input_is_one_line(cli_home, args, text):
    result = CliRunner().invoke(search_cli, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert text in result.output

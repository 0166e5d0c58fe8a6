"""Cold start and hybrid search on the planted data, both backends."""

import json
import math

import pytest
from click.testing import CliRunner

from search.api import SongSearch
from search.cli import cli as search_cli
from search.contract import ArgumentError, SongSearchError
from search.encoder import MetadataEncoder
from tests.conftest import fake_title_model, ingest_planted, write_planted_dataset


@pytest.fixture
def songs(ingested_once):
    s, planted = ingested_once
    return SongSearch(store=s.store, settings=s.settings, encoder=MetadataEncoder(title_model=fake_title_model)), planted


def test_context_of_one_group_answers_that_group_without_the_context(songs):
    s, planted = songs
    context = [24, 25, 26]
    answer = s.cold_start(context=context, limit=6)
    assert len(answer) == 6 and set(answer.ids) <= planted.group(24) - set(context)
    assert answer.skipped == ()
    for r in answer:
        # the context's mean Word2Vec vector and its summed co-play vector, fused by Qdrant
        assert r.sources == ("context", "coplay") if r.coplays else r.sources == ("context",)


def test_context_results_count_playlists_shared_with_any_context_song(songs):
    s, planted = songs
    context = [24, 25, 26]
    for r in s.cold_start(context=context, limit=20):
        assert r.coplays == planted.coplays(context, r.song_id), r
        assert r.cosine is not None and -1.0 <= r.cosine <= 1.0 + 1e-6


def test_unknown_context_ids_are_skipped_and_reported(songs):
    s, planted = songs
    answer = s.cold_start(context=[24, 9999, 2**70], limit=3)
    assert set(answer.ids) <= planted.group(24) - {24}
    assert answer.skipped == ("unknown context song id(s): 9999, 1180591620717411303424",)


def test_known_artist_brings_that_artists_songs_first(songs):
    s, planted = songs
    iron_maiden = planted.artist_songs("Iron Maiden")
    metadata_only = s.cold_start(title="metal thunder song 99", artist="iron maiden", limit=6, weights={"w2v": 0})
    assert set(metadata_only.ids) == iron_maiden
    fused = s.cold_start(title="metal thunder song 99", artist="iron maiden", limit=6)
    assert set(fused.ids[:3]) <= iron_maiden


def test_a_side_weighted_zero_is_not_named_as_a_source(songs):
    """`--weights w2v=0`: the answer comes from the metadata alone, and says so."""
    s, _ = songs
    metadata_only = s.cold_start(title="metal thunder song 99", artist="iron maiden", limit=6, weights={"w2v": 0})
    assert {r.sources for r in metadata_only} == {("meta",)}


def test_unseen_artist_still_answers_from_the_title(songs):
    s, planted = songs
    answer = s.cold_start(title="jazz blue song", artist="A Brand New Trio", limit=5)
    assert set(answer.ids) <= planted.group(24)


def test_metadata_only_song_gets_playlist_neighbours_through_the_bridge(songs):
    s, planted = songs
    results = s.cold_start(title="country road song", artist="Johnny Cash", limit=30)
    bridged = [r for r in results if "bridge" in r.sources][:8]
    assert len(bridged) == 8
    assert {r.song_id for r in bridged} <= planted.group(36)
    # a bridge probe has no playlists: nothing to count, but a Word2Vec cosine
    assert all(r.coplays is None and r.cosine is not None for r in bridged)


def test_context_and_metadata_are_fused(songs):
    s, planted = songs
    answer = s.cold_start(context=[0, 1], title="metal thunder song 50", artist="Metallica", limit=10)
    assert {src for r in answer for src in r.sources} == {"context", "coplay", "meta"}
    assert set(answer.ids) <= planted.group(0) - {0, 1}


@pytest.mark.parametrize("method", ["rrf", "dbsf"])
def test_filters_hold_after_fusion(songs, method):
    s, planted = songs
    fused = s.cold_start(context=[0, 1], title="club dance", artist="Rihanna", only_artist="metallica", limit=20, method=method)
    assert fused and {r.artist for r in fused} == {"Metallica"}
    hybrid = s.similar_hybrid(0, artist="METALLICA", limit=20, method=method, weights={"w2v": 1, "meta": 0.5})
    assert hybrid and {r.artist for r in hybrid} == {"Metallica"} and 0 not in hybrid.ids


def test_hybrid_similar_fuses_both_collections(songs):
    s, planted = songs
    answer = s.similar_hybrid(13, limit=5)
    assert 13 not in answer.ids
    assert set(answer.ids) <= planted.group(13)
    assert any("meta" in r.sources and "w2v" in r.sources for r in answer)
    for r in answer:
        assert r.coplays == planted.coplays(13, r.song_id)


def test_hybrid_weights_shift_the_answer_towards_a_side(songs):
    s, planted = songs
    meta_only = s.similar_hybrid(13, limit=11, weights={"w2v": 0})
    assert {r.sources for r in meta_only} <= {("meta",), ("meta", "w2v"), ("meta", "w2v", "coplay")}
    # metadata alone: the artist's songs first (same title words in every song of the group)
    artist = planted.songs[13][1]
    assert set(meta_only.ids[:5]) <= planted.artist_songs(artist)
    w2v_only = s.similar_hybrid(13, limit=5, weights={"meta": 0})
    assert set(w2v_only.ids) <= planted.group(13)


@pytest.mark.parametrize(
    "kwargs, argument, message",
    [
        (dict(context=[]), "context", "give the songs the new song was played with"),
        (dict(title="  ", artist=""), "context", "give the songs the new song was played with"),
        (dict(context=[9998, 9999]), "context", "has no song known to the model"),
        (dict(context=["1.5"]), "context", "must be a song id"),
        (dict(context=["--"]), "context", "must hold a word"),
        (dict(context=[1], title="t", weights={"w2v": 0, "meta": 0}), "weights", "cannot all be 0"),
        (dict(context=[1], title="t", weights={"w2v": -1}), "weights", "must be between 0 and"),
        (dict(context=[1], title="t", weights={"meta": math.inf}), "weights", "must be between 0 and"),
        (dict(context=[1], title="t", weights={"x": 1}), "weights", "unknown side"),
        (dict(context=[1], method="max"), "method", "unknown fusion 'max'"),
        (dict(context=[1], limit=0), "limit", "must be at least 1"),
        (dict(context=[1], only_artist="  "), "only_artist", "is empty"),
    ],
)
def test_cold_start_bad_arguments_name_the_argument(songs, kwargs, argument, message):
    s, _ = songs
    with pytest.raises(ArgumentError, match=message) as raised:
        s.cold_start(**kwargs)
    assert raised.value.argument == argument


@pytest.mark.parametrize(
    "kwargs, argument",
    [(dict(method="max"), "method"), (dict(weights={"w2v": 0, "meta": 0}), "weights"), (dict(limit=0), "limit"), (dict(artist=""), "artist")],
)
def test_hybrid_bad_arguments_name_the_argument(songs, kwargs, argument):
    s, _ = songs
    with pytest.raises(ArgumentError) as raised:
        s.similar_hybrid(13, **kwargs)
    assert raised.value.argument == argument


def test_cold_start_unknown_only_artist_is_a_data_error(songs):
    s, _ = songs
    with pytest.raises(SongSearchError, match="not in the catalogue") as raised:
        s.cold_start(context=[1], only_artist="Nobody")
    assert not isinstance(raised.value, ArgumentError)


# -- a song in the catalogue but in no training playlist --

@pytest.fixture
def with_unplayed_song(tmp_path, store):
    """The planted data plus song 99, by an artist of its own, in song_hash.txt only."""
    planted = write_planted_dataset(tmp_path / "data")
    with open(planted.directory / "song_hash.txt", "a") as f:
        f.write("99 \tmetal thunder song 99\tSlayer\n")
    from search.contract import Settings

    settings = Settings(home=tmp_path / "home")
    ingest_planted(planted, settings, store)
    return SongSearch(store=store, settings=settings, encoder=MetadataEncoder(title_model=fake_title_model)), planted


def test_a_song_in_no_playlist(with_unplayed_song):
    s, planted = with_unplayed_song
    with pytest.raises(SongSearchError, match="in no playlist the model was trained on"):
        s.similar(99)
    with pytest.raises(SongSearchError, match="has no songs in songs_w2v"):
        s.similar(0, artist="slayer")
    # the hybrid reaches its playlist neighbours through the bridge
    answer = s.similar_hybrid(99, limit=10)
    assert 99 not in answer.ids and set(answer.ids) <= planted.group(0)
    assert any("bridge" in r.sources for r in answer)
    assert s.similar_hybrid(0, limit=3, artist="Slayer").ids == [99]


# -- the CLI --

@pytest.fixture
def cli_home(planted, home_settings):
    ingest_planted(planted, home_settings)
    return planted


def test_cli_cold_start_context_json_names_its_sources(cli_home):
    result = CliRunner().invoke(search_cli, ["cold-start", "--context", "24,25,9999", "--limit", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert "Warning: skipped unknown context song id(s): 9999" in result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 3 and all(r["sources"][0] == "context" for r in rows)
    assert {r["song_id"] for r in rows} <= cli_home.group(24)
    assert all(r["coplays"] == cli_home.coplays([24, 25], r["song_id"]) for r in rows)


def test_cli_cold_start_metadata_table(cli_home, monkeypatch):
    # query titles with the title model ingest used here
    monkeypatch.setattr("search.encoder.numpy_title_model", lambda: fake_title_model)
    result = CliRunner().invoke(search_cli, ["cold-start", "--title", "metal thunder song 99", "--artist", "Iron Maiden", "--limit", "4"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Songs for a new song titled 'metal thunder song 99', by 'Iron Maiden'"
    assert lines[1].split()[:2] == ["rank", "song"] and len(lines) == 1 + 2 + 4
    assert {int(line.split()[1]) for line in lines[3:]} <= cli_home.group(0)


def test_cli_hybrid_similar(cli_home):
    result = CliRunner().invoke(search_cli, ["similar", "--id", "2", "--hybrid", "--fusion", "dbsf", "--weights", "w2v=1,meta=0.5", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and {r["song_id"] for r in rows} <= cli_home.group(2) - {2}

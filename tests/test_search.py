"""`similar` through the Python API, on both backends (the `ingested` fixture is parametrised)."""

import pytest

from search.api import SongSearch
from search.contract import SongSearchError


def test_similar_returns_songs_of_the_query_songs_planted_group(ingested):
    songs, planted = ingested
    for query in (0, 13, 30, 47):
        results = songs.similar(query, limit=5)
        assert len(results) == 5
        assert {r.song_id for r in results} <= planted.group(query) - {query}


def test_similar_leaves_out_the_query_song_and_orders_by_score(ingested):
    songs, _ = ingested
    results = songs.similar(5, limit=20)
    assert 5 not in [r.song_id for r in results]
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)


def test_results_carry_title_and_artist(ingested):
    songs, planted = ingested
    top = songs.similar(0, limit=1)[0]
    assert (top.title, top.artist) == planted.songs[top.song_id]


def test_artist_filter_is_case_insensitive_and_keeps_only_that_artist(ingested):
    songs, planted = ingested
    results = songs.similar(0, limit=50, artist="  iron   MAIDEN ")
    assert results
    assert {r.song_id for r in results} == planted.artist_songs("Iron Maiden") - {0}


def test_artist_filter_across_groups_still_answers(ingested):
    songs, planted = ingested
    results = songs.similar(0, limit=3, artist="rihanna")
    assert [r.artist for r in results] == ["Rihanna"] * 3


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: s.similar(999), "unknown song id 999"),
        (lambda s: s.similar(0, artist="Nobody At All"), "not in the catalogue"),
        (lambda s: s.similar(0, artist="   "), "--artist is empty"),
        (lambda s: s.similar(0, limit=0), "--limit must be at least 1"),
    ],
)
def test_bad_input_is_a_songsearch_error(ingested, call, message):
    songs, _ = ingested
    with pytest.raises(SongSearchError, match=message):
        call(songs)


def test_search_before_any_ingest_says_to_run_ingest(store, home_settings):
    with pytest.raises(SongSearchError, match="ingest"):
        SongSearch(store=store, settings=home_settings).similar(1)

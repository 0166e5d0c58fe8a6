"""`similar` through the Python API, on both backends (the ingest fixtures are parametrised)."""

from dataclasses import replace

import numpy as np
import pytest

from search.api import Answer, SongSearch
from search.contract import W2V_ALIAS, ArgumentError, SongSearchError
from tests.conftest import GROUP_SIZE, TEST_W2V, ingest_planted

EVIDENCE = ("fused", "w2v", "coplay")


@pytest.mark.parametrize("evidence", EVIDENCE)
def test_similar_returns_songs_of_the_query_songs_planted_group(ingested_once, evidence):
    songs, planted = ingested_once
    for query in (0, 13, 30, 47):
        answer = songs.similar(query, limit=5, evidence=evidence)
        assert len(answer) == 5
        assert set(answer.ids) <= planted.group(query) - {query}, evidence


def test_the_default_answer_is_the_fused_one(ingested_once):
    songs, _ = ingested_once
    default, fused = songs.similar(13, limit=8), songs.similar(13, limit=8, evidence="fused")
    assert sorted(default.ids) == sorted(fused.ids)  # (ties: test_the_same_question_gets_the_same_answer)
    assert [r.score for r in default] == pytest.approx([r.score for r in fused])
    assert default.ids != songs.similar(13, limit=8, evidence="w2v").ids


def test_answer_is_a_sequence_of_results(ingested_once):
    songs, _ = ingested_once
    answer = songs.similar(0, limit=4)
    assert isinstance(answer, Answer)
    assert list(answer) == list(answer.results) and answer[0] == answer.results[0]
    assert answer.ids == [r.song_id for r in answer.results]
    assert answer.skipped == ()


@pytest.mark.parametrize("evidence", EVIDENCE)
def test_similar_leaves_out_the_query_song_and_orders_by_score(ingested_once, evidence):
    songs, _ = ingested_once
    results = songs.similar(5, limit=20, evidence=evidence)
    assert 5 not in results.ids
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)


def test_results_carry_title_artist_plays_and_tags(ingested_once):
    songs, planted = ingested_once
    for r in songs.similar(0, limit=GROUP_SIZE):
        assert (r.title, r.artist) == planted.songs[r.song_id]
        assert r.plays == planted.plays(r.song_id)
        # planted tags: every third song has none, the others their group's tag and "favorites"
        expected = () if r.song_id % 3 == 0 else (["metal", "pop", "jazz", "country"][planted.group_of[r.song_id]], "favorites")
        assert r.tags == expected


@pytest.mark.parametrize("evidence", EVIDENCE)
def test_results_carry_shared_playlists_and_cosine(ingested_once, evidence):
    """`coplays`: the training playlists the answer shares with the query song, counted from
    train.txt; `cosine`: of their Word2Vec vectors."""
    songs, planted = ingested_once
    query = 13
    answer = songs.similar(query, limit=30, evidence=evidence)
    stored = songs.store.retrieve(W2V_ALIAS, [query, *answer.ids], with_vectors=True)
    q = stored[query].vector
    for r in answer:
        assert r.coplays == planted.coplays(query, r.song_id), r
        v = stored[r.song_id].vector
        assert r.cosine == pytest.approx(float(v @ q / np.linalg.norm(v) / np.linalg.norm(q)), abs=1e-5)
    outside = [r for r in answer if r.song_id not in planted.group(query)]
    assert all(r.coplays == 0 for r in outside)
    if evidence == "w2v":
        # the Word2Vec answer is the nearest Word2Vec vectors: its cosines are its scores
        # (up to float16 storage: Qdrant scores the stored half-precision vectors)
        assert [r.cosine for r in answer] == pytest.approx([r.score for r in answer], abs=1e-3)


def test_results_say_which_evidence_found_them(ingested_once):
    songs, planted = ingested_once
    assert {r.sources for r in songs.similar(0, limit=5, evidence="w2v")} == {("w2v",)}
    assert {r.sources for r in songs.similar(0, limit=5, evidence="coplay")} == {("coplay",)}
    fused = songs.similar(0, limit=30)
    for r in fused:
        if r.coplays:
            assert r.sources == ("w2v", "coplay"), r
        else:  # shares no playlist: only the Word2Vec side can have found it
            assert r.sources == ("w2v",), r


def test_coplay_answer_ranks_by_playlist_cosine(ingested_once):
    """The co-play side scores shared playlists / sqrt(playlists of each): the cosine of
    playlist co-membership."""
    songs, planted = ingested_once
    query = 30
    answer = songs.similar(query, limit=GROUP_SIZE - 1, evidence="coplay")
    assert set(answer.ids) == planted.group(query) - {query}
    for r in answer:
        expected = planted.coplays(query, r.song_id) / np.sqrt(planted.plays(query) * planted.plays(r.song_id))
        assert r.score == pytest.approx(expected, abs=1e-5)


def test_artist_filter_is_case_insensitive_and_keeps_only_that_artist(ingested_once):
    songs, planted = ingested_once
    for evidence in EVIDENCE:
        results = songs.similar(0, limit=50, artist="  iron   MAIDEN ", evidence=evidence)
        assert set(results.ids) == planted.artist_songs("Iron Maiden") - {0}, evidence


def test_artist_filter_across_groups_still_answers(ingested_once):
    songs, _ = ingested_once
    # no Rihanna song shares a playlist with song 0: the Word2Vec side still answers
    results = songs.similar(0, limit=3, artist="rihanna")
    assert [r.artist for r in results] == ["Rihanna"] * 3
    assert all(r.coplays == 0 for r in results)
    assert songs.similar(0, limit=3, artist="rihanna", evidence="coplay").ids == []


@pytest.mark.parametrize(
    "call, argument, message",
    [
        (lambda s: s.similar(0, artist="   "), "artist", "artist is empty"),
        (lambda s: s.similar(0, limit=0), "limit", "limit must be at least 1"),
        (lambda s: s.similar(0, limit=-3), "limit", "limit must be at least 1"),
        (lambda s: s.similar(0, evidence="both"), "evidence", "unknown evidence 'both'"),
        (lambda s: s.similar("  !? "), "song", "must hold a word"),  # a name without words
        (lambda s: s.similar("2_172"), "song", "must be a song id"),
        (lambda s: s.similar("\uff11\uff13"), "song", "must be a song id"),  # full-width 13
        (lambda s: s.similar(True), "song", "must be a song id"),
    ],
)
def test_bad_arguments_name_the_argument(ingested_once, call, argument, message):
    songs, _ = ingested_once
    with pytest.raises(ArgumentError, match=message) as raised:
        call(songs)
    assert raised.value.argument == argument


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: s.similar(999), "unknown song id 999"),
        (lambda s: s.similar(-1), "unknown song id -1"),
        (lambda s: s.similar(2**64), "unknown song id"),
        (lambda s: s.similar(0, artist="Nobody At All"), "not in the catalogue"),
        (lambda s: s.similar("abc"), "no song matches 'abc'"),  # not a number: a name
    ],
)
def test_bad_data_is_a_songsearch_error(ingested_once, call, message):
    songs, _ = ingested_once
    with pytest.raises(SongSearchError, match=message) as raised:
        call(songs)
    assert not isinstance(raised.value, ArgumentError)


def test_song_ids_as_digit_strings_are_accepted(ingested_once):
    songs, _ = ingested_once
    by_string, by_int = songs.similar(" 13 ", limit=3), songs.similar(13, limit=3)
    # (as sets: the order of tied scores is another test's business)
    assert sorted(by_string.ids) == sorted(by_int.ids)
    assert [r.score for r in by_string] == pytest.approx([r.score for r in by_int])


def test_the_same_question_gets_the_same_answer(ingested_once):
    """Fused scores tie now and then (rank fusion: one song's ranks (2, 2) score as another's
    (1, 4) at weights 1 and 2); a repeated search must still give one answer, in one order.
    Every song is asked a few times, plainly and as a hybrid (which fuses the fused list again)."""
    songs, planted = ingested_once
    unstable = {}
    for query in sorted(planted.songs):
        for label, ask, times in (("similar", songs.similar, 12), ("hybrid", songs.similar_hybrid, 6)):
            answers = {tuple(ask(query, limit=10).ids) for _ in range(times)}
            if len(answers) > 1:
                unstable[f"{label} {query}"] = answers
    assert not unstable, f"{len(unstable)} questions answered differently when asked again: {unstable}"


def test_search_before_any_ingest_says_to_run_ingest(store, home_settings):
    with pytest.raises(SongSearchError, match="ingest"):
        SongSearch(store=store, settings=home_settings).similar(1)


def test_one_shot_helper_reads_the_configured_store(planted, home_settings):
    from search.api import similar

    ingest_planted(planted, home_settings)  # the embedded store under SONGSEARCH_HOME
    answer = similar(13, limit=4)
    assert len(answer) == 4 and set(answer.ids) <= planted.group(13)


# -- the co-play side finds planted groups that an untrained Word2Vec misses --

UNTRAINED_W2V = replace(TEST_W2V, epochs=1, vector_size=2)


@pytest.fixture
def untrained(planted, home_settings, store):
    """The planted data ingested with a Word2Vec that learned next to nothing (forced past the gate)."""
    ingest_planted(planted, home_settings, store, w2v=UNTRAINED_W2V, force=True)
    yield SongSearch(store=store, settings=home_settings), planted


def test_coplay_evidence_finds_the_groups_an_untrained_word2vec_misses(untrained):
    songs, planted = untrained
    limit = GROUP_SIZE - 1  # the query's whole group, nothing else
    found = {evidence: 0 for evidence in EVIDENCE}
    for query in range(0, len(planted.songs), 5):
        group = planted.group(query) - {query}
        for evidence in EVIDENCE:
            answer = songs.similar(query, limit=limit, evidence=evidence)
            found[evidence] += len(set(answer.ids) & group)
            if evidence != "w2v":
                assert set(answer.ids) == group, (evidence, query, answer.ids)
    queries = len(range(0, len(planted.songs), 5))
    assert found["coplay"] == found["fused"] == queries * limit
    assert found["w2v"] < 0.5 * found["coplay"], found  # about chance (11 of 47): 29 of 110

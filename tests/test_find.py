"""Finding songs by name, filters, recommend, tags, per-artist caps and diversity, on both backends
(tests/test_congruence.py checks that both give the same answers)."""

import pytest

from search.contract import ArgumentError, SongSearchError, fold_text
from search.find import Filters


@pytest.fixture
def songs(ingested_once):
    return ingested_once


def tags_of(planted, song_id):
    """conftest's tags: songs with id % 3 carry their group's tag and "favorites"."""
    return set() if song_id % 3 == 0 else {["metal", "pop", "jazz", "country"][planted.group_of[song_id]], "favorites"}


def test_fold_text_drops_case_accents_and_punctuation():
    assert fold_text("Mötley Crüe") == fold_text("motley crue") == "motley crue"
    assert fold_text("  Sigur Rós: Hoppípolla!! ") == "sigur ros hoppipolla"
    assert fold_text("Ørjan Æther Straße") == "orjan aether strasse"


def test_songs_finds_by_title_and_artist_best_first(songs):
    s, planted = songs
    answer = s.songs("metal thunder song 3")
    assert answer.ids[0] == 3 and len(answer) == 10
    assert answer.query == "Songs matching 'metal thunder song 3'"
    assert s.songs("MÉTAL thunder, Song 3!").ids == s.songs("metal thunder song 3").ids  # case, accents, punctuation
    assert s.songs("song 3 metallica").ids[0] == 3  # title and artist words together
    r = answer[0]
    assert (r.title, r.artist, r.plays, set(r.tags)) == (*planted.songs[3], planted.plays(3), tags_of(planted, 3))


def test_songs_ties_go_by_plays(songs):
    s, planted = songs
    answer = s.songs("metallica", limit=20)
    assert set(answer.ids) == planted.artist_songs("Metallica")
    assert [r.plays for r in answer] == sorted((r.plays for r in answer), reverse=True)


def test_songs_filters(songs):
    s, planted = songs
    answer = s.songs("song", artist="usher", limit=20)
    assert set(answer.ids) == planted.artist_songs("Usher")
    assert all("metal" in r.tags for r in s.songs("song", limit=48, filters=Filters(tags=["metal"])))
    with pytest.raises(ArgumentError, match="must hold a word") as raised:
        s.songs("  ?! ")
    assert raised.value.argument == "query"


def test_names_go_wherever_ids_go(songs):
    s, _ = songs
    by_name = s.similar("jazz blue song 5", limit=5)
    assert by_name.ids == s.similar(29, limit=5).ids
    assert by_name.query == "Songs like 29 jazz blue song 5, John Coltrane"
    assert s.similar("song 3", by="usher", limit=3).query.startswith("Songs like 15 club dance song 3, Usher")
    assert s.cold_start(context=["country road song 1", 37], limit=3).query.startswith("Songs for a new song heard with 37 country road song 1")
    with pytest.raises(SongSearchError, match="no song matches 'nothing like it'"):
        s.similar("nothing like it")
    with pytest.raises(SongSearchError, match="no song matches"):
        s.similar("song 3", by="Nobody")


def test_filters_hold_inside_qdrant(songs):
    s, planted = songs
    metal = s.similar(1, limit=7, filters=Filters(tags=["metal"]))
    # every metal-tagged song but the query: the filter is inside the query, not after it
    assert set(metal.ids) == {i for i in planted.group(1) if "metal" in tags_of(planted, i)} - {1}
    assert not s.similar(1, filters=Filters(tags=["metal", "jazz"])).ids
    excluded = s.similar(13, limit=20, filters=Filters(exclude_artists=["USHER"], min_plays=30, max_plays=60))
    assert excluded.ids and all(r.artist != "Usher" and 30 <= r.plays <= 60 for r in excluded)
    assert {r.artist for r in s.similar(0, limit=5, artist="metallica", filters=Filters(tags=["favorites"]))} == {"Metallica"}
    hybrid = s.similar_hybrid(13, limit=6, filters=Filters(tags=["pop"], exclude_artists=["rihanna"]))
    assert set(hybrid.ids) == {17, 19, 23}  # every other pop-tagged Usher song, and nothing else
    assert hybrid.query == "Songs like 13 club dance song 1, Usher (hybrid)"
    cold = s.cold_start(title="jazz blue", artist="Someone", limit=4, filters=Filters(max_plays=1000, tags=["jazz"]))
    assert len(cold) == 4 and all("jazz" in r.tags for r in cold)


@pytest.mark.parametrize(
    "filters, argument, message",
    [
        (Filters(tags=["metl"]), "tag", "'metl' is not a known tag: did you mean metal"),
        (Filters(tags=[" "]), "tag", "must be a tag name"),
        (Filters(exclude_artists=[""]), "exclude_artist", "must be an artist name"),
        (Filters(min_plays=-1), "min_plays", "must be 0 or more"),
        (Filters(max_plays=-2), "max_plays", "must be 0 or more"),
        (Filters(min_plays=10, max_plays=5), "max_plays", "must be at least min_plays"),
    ],
)
def test_bad_filters_name_the_argument(songs, filters, argument, message):
    s, _ = songs
    with pytest.raises(ArgumentError, match=message) as raised:
        s.similar(0, filters=filters)
    assert raised.value.argument == argument


def test_recommend_likes_and_dislikes(songs):
    s, planted = songs
    answer = s.recommend([0, 1], dislike=[13], limit=8)
    assert len(answer) == 8 and not {0, 1, 13} & set(answer.ids)
    assert set(answer.ids) <= planted.group(0)
    assert answer.query == "Songs for likes 0 metal thunder song 0, Iron Maiden; 1 metal thunder song 1, Metallica, not 13 club dance song 1, Usher"
    mixed = s.recommend([0, "club dance song 2"], limit=20)
    assert set(mixed.ids) & planted.group(0) and set(mixed.ids) & planted.group(14)
    skipped = s.recommend([0, 9999], limit=3)
    assert skipped.skipped == ("unknown or untrained song id(s): 9999",)
    with pytest.raises(ArgumentError, match="has no song known") as raised:
        s.recommend([9999])
    assert raised.value.argument == "like"


def test_per_artist_caps_and_still_fills_the_limit(songs):
    s, planted = songs
    capped = s.similar(0, limit=8, per_artist=1)
    assert len(capped) == 8 and len({r.artist for r in capped}) == 8  # the loop read past group 0's two artists
    two = s.recommend([24], limit=6, per_artist=2)
    assert len(two) == 6 and max(list(r.artist for r in two).count(a) for a in {r.artist for r in two}) <= 2
    # with diversity the cap holds on MMR's candidates, read deeper too until the limit fills
    for call in (lambda **k: s.similar(0, **k), lambda **k: s.recommend([24], dislike=[3], **k)):
        diverse = call(limit=8, per_artist=1, diversity=0.5)
        assert len(diverse) == 8 and len({r.artist for r in diverse}) == 8
    with pytest.raises(ArgumentError, match="at least 1") as raised:
        s.similar(0, per_artist=0)
    assert raised.value.argument == "per_artist"


def test_diversity_reranks_more_than_the_top(songs):
    s, _ = songs
    plain = s.similar(0, limit=5, evidence="w2v")
    assert s.similar(0, limit=5, evidence="w2v", diversity=0).ids == plain.ids
    diverse = s.similar(0, limit=5, evidence="w2v", diversity=1.0)
    assert len(diverse) == 5 and set(diverse.ids) != set(plain.ids)
    # the songs asked about stay out of a diverse answer, however much of the catalogue it reads
    for diversity in (0.0, 0.5, 1.0):
        assert 0 not in s.similar(0, limit=40, diversity=diversity).ids
        assert not {3, 7} & set(s.recommend([3], dislike=[7], limit=40, diversity=diversity).ids)
        assert not {1, 2} & set(s.cold_start(context=[1, 2], limit=40, diversity=diversity).ids)
    for bad in (-0.1, 1.5, True):
        with pytest.raises(ArgumentError, match="between 0 and 1"):
            s.similar(0, diversity=bad)


def test_tags_are_the_facets(songs):
    s, planted = songs
    counts = dict(s.tags(limit=10))
    assert counts["favorites"] == sum(1 for i in planted.songs if tags_of(planted, i))
    assert counts["metal"] == sum(1 for i in planted.songs if "metal" in tags_of(planted, i))
    assert s.tags(limit=10)[0][0] == "favorites"
    assert dict(s.tags(artist="Miles Davis")) == {"jazz": 4, "favorites": 4}


def test_a_store_without_the_name_index_is_one_clear_error(ingested):
    """A version ingested before `songs` existed has no full-text index: an error, not a traceback."""
    s, _ = ingested
    s._pin()
    store, meta = s.store, s._meta
    if hasattr(store, "client"):
        store.client.delete_payload_index(meta, "name")
    else:
        import qdrant_edge as qe

        store._shard(meta).update(qe.UpdateOperation.delete_field_index("name"))
    with pytest.raises(SongSearchError, match="text index") as raised:
        s.songs("metal thunder")
    assert "\n" not in str(raised.value)

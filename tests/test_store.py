"""One contract that every store backend passes (the `store` fixture runs each), and a
congruence check: the same operations on both backends give the same answers."""

import numpy as np
import pytest

from search.contract import SongSearchError, song_payload
from search.store import PayloadFilter
from tests.conftest import make_store

N, DIM = 300, 8


def points(seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    payloads = [song_payload(i, f"title {i}", ["Alpha", "Beta Band", "gamma"][i % 3], ["rock"] if i % 2 else [], i % 7) for i in range(N)]
    return np.arange(N), vectors, payloads


@pytest.fixture
def filled(store):
    ids, vectors, payloads = points()
    store.create_collection("songs_w2v__v1", DIM)
    store.upsert("songs_w2v__v1", ids, vectors, payloads)
    store.finish_collection("songs_w2v__v1")
    return store, vectors


def test_count_and_lookups(filled):
    store, vectors = filled
    assert store.count("songs_w2v__v1") == N
    assert store.count("songs_w2v__v1", PayloadFilter(artist_key="beta band")) == N // 3
    got = store.vectors("songs_w2v__v1", [5, 7, 10_000])
    assert set(got) == {5, 7}
    cos = got[5] @ vectors[5] / np.linalg.norm(got[5]) / np.linalg.norm(vectors[5])
    assert cos == pytest.approx(1.0, abs=1e-5)
    assert store.payloads("songs_w2v__v1", [4])[4] == song_payload(4, "title 4", "Beta Band", [], 4)


def test_query_ranks_by_cosine_and_honours_filters(filled):
    store, vectors = filled
    hits = store.query("songs_w2v__v1", vectors[10], 5)
    assert hits[0].song_id == 10 and hits[0].score == pytest.approx(1.0, abs=1e-4)
    flt = PayloadFilter(artist_key="gamma", min_plays=3).without_ids([2])
    hits = store.query("songs_w2v__v1", vectors[2], 20, flt)
    assert hits and all(h.payload["artist_key"] == "gamma" and h.payload["plays"] >= 3 and h.song_id != 2 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_aliases_switch_together_and_resolve(filled):
    store, vectors = filled
    store.create_collection("songs_meta__v1", DIM)
    store.switch_aliases({"songs_w2v": "songs_w2v__v1", "songs_meta": "songs_meta__v1"})
    assert store.aliases() == {"songs_w2v": "songs_w2v__v1", "songs_meta": "songs_meta__v1"}
    assert store.count("songs_w2v") == N
    assert store.query("songs_w2v", vectors[3], 1)[0].song_id == 3


def test_delete_and_list_collections(filled):
    store, _ = filled
    store.create_collection("songs_meta__v1", DIM)
    assert store.collections() == ["songs_meta__v1", "songs_w2v__v1"]
    store.delete_collection("songs_meta__v1")
    assert store.collections() == ["songs_w2v__v1"]


def test_missing_collection_is_a_songsearch_error(store):
    with pytest.raises(SongSearchError, match="ingest"):
        store.count("songs_w2v")


def test_creating_an_existing_collection_is_refused(filled):
    store, _ = filled
    with pytest.raises(SongSearchError, match="already exists"):
        store.create_collection("songs_w2v__v1", DIM)


def test_backends_are_congruent(tmp_path):
    ids, vectors, payloads = points(seed=3)
    answers = []
    for kind in ("edge", "server"):
        store = make_store(kind, tmp_path / kind)
        store.create_collection("c", DIM)
        store.upsert("c", ids, vectors, payloads)
        store.finish_collection("c")
        run = []
        for q in (0, 17, 150):
            for flt in (None, PayloadFilter(artist_key="alpha"), PayloadFilter(min_plays=5).without_ids([q])):
                run.append([(h.song_id, round(h.score, 4), h.payload["title"]) for h in store.query("c", vectors[q], 10, flt)])
        run.append(store.count("c", PayloadFilter(artist_key="beta band", min_plays=2)))
        answers.append(run)
        store.close()
    assert answers[0] == answers[1]


def test_set_payloads_replaces_payloads_and_keeps_vectors(filled):
    store, vectors = filled
    store.set_payloads("songs_w2v__v1", [1, 2], [song_payload(1, "new", "Zed", [], 9), song_payload(2, "other", "Zed", ["pop"], 1)])
    assert store.payloads("songs_w2v__v1", [1])[1] == song_payload(1, "new", "Zed", [], 9)
    assert store.count("songs_w2v__v1", PayloadFilter(artist_key="zed")) == 2
    assert store.query("songs_w2v__v1", vectors[2], 1)[0].song_id == 2


def test_copy_collection_where_the_backend_can(filled):
    store, vectors = filled
    if store.copy_collection("songs_w2v__v1", "songs_w2v__v2"):
        store.upsert("songs_w2v__v2", np.array([N]), vectors[:1], [song_payload(N, "t", "Alpha", [], 1)])
        assert (store.count("songs_w2v__v1"), store.count("songs_w2v__v2")) == (N, N + 1)
        assert store.query("songs_w2v__v2", vectors[7], 1)[0].song_id == 7
    else:  # the server backend rebuilds instead of copying
        assert store.collections() == ["songs_w2v__v1"]

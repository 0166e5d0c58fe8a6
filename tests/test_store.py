"""One contract that every store backend passes (the `store` fixture runs each), and a
congruence check in the style of qdrant-client's congruence tests: the same operations on
an EdgeStore and on a ServerStore over qdrant-client's local mode, compared after each one."""

from dataclasses import dataclass

import numpy as np
import pytest

from search.contract import COPLAY_VECTOR, SongSearchError, song_payload
from search.store import Diversify, Fusion, Nearest, PayloadFilter, Recommend, Search, Sparse
from tests.conftest import make_store

N, DIM, SPARSE_DIMS = 300, 8, 50
#: songs_w2v keeps its vectors in float16 (search.contract.INDEXES): scores to about 1e-3
F16 = 2e-3
ARTISTS = ["Alpha", "Beta Band", "gamma"]


def points(seed=0, n=N, start=0, random_values=False):
    """Songs with payloads, Word2Vec-like vectors and co-play vectors valued as ingest values
    them (1 / sqrt(playlists)); ``random_values``: co-play values without ties."""
    rng = np.random.default_rng(seed)
    ids = np.arange(start, start + n)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    payloads = [song_payload(i, f"title {i}", ARTISTS[i % 3], ["rock"] if i % 2 else [], i % 7) for i in ids.tolist()]
    sparse = []
    for i in ids.tolist():
        if i % 10 == 9:  # in no playlist: no co-play vector at all
            sparse.append(Sparse.of([], []))
            continue
        dims = np.sort(rng.choice(SPARSE_DIMS, size=rng.integers(1, 6), replace=False))
        values = rng.uniform(0.1, 1.0, size=len(dims)) if random_values else np.full(len(dims), 1 / np.sqrt(len(dims)))
        sparse.append(Sparse.of(dims, values))
    return ids, vectors, payloads, sparse


@pytest.fixture
def filled(store):
    ids, vectors, payloads, sparse = points()
    store.create_collection("songs_w2v__v1", DIM, sparse_vectors=(COPLAY_VECTOR,))
    store.upsert("songs_w2v__v1", ids, vectors, payloads, sparse={COPLAY_VECTOR: sparse})
    store.finish_collection("songs_w2v__v1")
    return store, vectors, sparse


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_count_and_retrieve(filled):
    store, vectors, sparse = filled
    assert store.count("songs_w2v__v1") == N
    assert store.count("songs_w2v__v1", PayloadFilter(artist_key="beta band")) == N // 3
    assert store.count("songs_w2v__v1", PayloadFilter(min_plays=6)) == len([i for i in range(N) if i % 7 >= 6])
    assert store.count("songs_w2v__v1", PayloadFilter().without_ids([1, 2, 10_000])) == N - 2
    got = store.retrieve("songs_w2v__v1", [5, 7, 9, 10_000], with_vectors=True)
    assert set(got) == {5, 7, 9}
    assert cosine(got[5].vector, vectors[5]) == pytest.approx(1.0, abs=1e-5)
    assert got[5].payload == song_payload(5, "title 5", "gamma", ["rock"], 5)
    assert np.array_equal(got[7].sparse[COPLAY_VECTOR].indices, sparse[7].indices)
    assert np.allclose(got[7].sparse[COPLAY_VECTOR].values, sparse[7].values)
    assert COPLAY_VECTOR not in got[9].sparse  # an empty co-play vector is not stored


def test_retrieve_without_vectors_gives_payloads_only(filled):
    store, _, _ = filled
    point = store.retrieve("songs_w2v__v1", [4])[4]
    assert point.payload == song_payload(4, "title 4", "Beta Band", [], 4)
    assert point.vector is None and not point.sparse
    assert store.retrieve("songs_w2v__v1", []) == {}


def test_scroll_ids_lists_every_point_ascending(filled):
    store, _, _ = filled
    assert store.scroll_ids("songs_w2v__v1") == list(range(N))


def test_dense_search_ranks_by_cosine_and_honours_filters(filled):
    store, vectors, _ = filled
    hits = store.search("songs_w2v__v1", Search((Nearest(vectors[10]),), 5))
    assert hits[0].song_id == 10 and hits[0].score == pytest.approx(1.0, abs=F16)
    assert [h.score for h in hits] == pytest.approx(sorted((cosine(vectors[h.song_id], vectors[10]) for h in hits), reverse=True), abs=F16)
    flt = PayloadFilter(artist_key="gamma", min_plays=3).without_ids([2])
    hits = store.search("songs_w2v__v1", Search((Nearest(vectors[2]),), 20, flt))
    assert hits and all(h.payload["artist_key"] == "gamma" and h.payload["plays"] >= 3 and h.song_id != 2 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    exact = store.search("songs_w2v__v1", Search((Nearest(vectors[2]),), 20, flt, exact=True))
    assert [h.song_id for h in exact] == [h.song_id for h in hits]


def test_sparse_search_scores_dot_products(filled):
    store, _, sparse = filled
    query = sparse[0]
    hits = store.search("songs_w2v__v1", Search((Nearest(query, COPLAY_VECTOR),), N, PayloadFilter().without_ids([0])))

    def dot(a, b):
        common = {int(i): float(v) for i, v in zip(a.indices, a.values)}
        return sum(common.get(int(i), 0.0) * float(v) for i, v in zip(b.indices, b.values))

    expected = {i: dot(query, s) for i, s in enumerate(sparse) if i != 0 and dot(query, s) > 0}
    assert {h.song_id for h in hits} == set(expected)  # only songs sharing a dimension
    for h in hits:
        assert h.score == pytest.approx(expected[h.song_id], abs=1e-6)


def test_fused_search_honours_the_filter_on_every_list(filled):
    store, vectors, sparse = filled
    flt = PayloadFilter(artist_key="alpha").without_ids([0])
    request = Search((Nearest(vectors[0]), Nearest(sparse[0], COPLAY_VECTOR)), 10, flt, Fusion("rrf", 60, (1.0, 2.0)), depth=30)
    hits = store.search("songs_w2v__v1", request)
    assert len(hits) == 10 and all(h.payload["artist_key"] == "alpha" and h.song_id != 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_recommend_among_scores_best_of_the_centres_nearest(filled):
    """Best score (the cosine to the nearest liked song, when no disliked one is nearer), over only
    the ``among`` songs nearest to the likes' mean; filters hold on the songs it scores."""
    store, vectors, _ = filled
    likes, dislikes = (vectors[3], vectors[40]), (vectors[77],)
    flt = PayloadFilter(min_plays=2).without_ids([3, 40, 77])
    centre = store.search("songs_w2v__v1", Search((Nearest(np.mean(np.stack(likes), axis=0)),), 25, flt))
    hits = store.search("songs_w2v__v1", Search((Recommend(likes, dislikes, among=25),), 10, flt))
    assert len(hits) == 10 and {h.song_id for h in hits} <= {h.song_id for h in centre}
    assert all(h.payload["plays"] >= 2 for h in hits)
    # Qdrant scales the best cosine monotonically (a sigmoid): the order is the best cosine's
    best = [max(cosine(vectors[h.song_id], like) for like in likes) for h in hits]
    assert all(b > cosine(vectors[h.song_id], dislikes[0]) for b, h in zip(best, hits))
    assert best == pytest.approx(sorted(best, reverse=True), abs=F16)
    everywhere = store.search("songs_w2v__v1", Search((Recommend(likes, dislikes),), 10, flt))
    assert {h.song_id for h in everywhere} != {h.song_id for h in hits}  # the restriction is real


def test_mmr_picks_among_the_filtered_candidates(filled):
    """MMR re-ranks the request's first candidates (filters and left-out songs held there)."""
    store, vectors, sparse = filled
    flt = PayloadFilter(artist_key="beta band").without_ids([4])
    plain = store.search("songs_w2v__v1", Search((Nearest(vectors[4]),), 12, flt))
    for lists, fusion, depth in (((Nearest(vectors[4]),), None, 0), ((Nearest(vectors[4]), Nearest(sparse[4], COPLAY_VECTOR)), Fusion("rrf", 60, (1.0, 2.0)), 40)):
        request = Search(lists, 6, flt, fusion, depth, diversify=Diversify(vectors[4], 1.0, 12))
        hits = store.search("songs_w2v__v1", request)
        candidates = store.search("songs_w2v__v1", Search(lists, 12, flt, fusion, depth))
        assert len(hits) == 6 and {h.song_id for h in hits} <= {h.song_id for h in candidates}
        assert all(h.payload["artist_key"] == "beta band" and h.song_id != 4 for h in hits)
    assert [h.song_id for h in store.search("songs_w2v__v1", Search((Nearest(vectors[4]),), 6, flt, diversify=Diversify(vectors[4], 0.0, 12)))] == [h.song_id for h in plain[:6]]


def test_retrieve_vectors_without_payloads(filled):
    store, vectors, sparse = filled
    point = store.retrieve("songs_w2v__v1", [7], with_vectors=True, with_payload=False)[7]
    assert not point.payload and cosine(point.vector, vectors[7]) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(point.sparse[COPLAY_VECTOR].indices, sparse[7].indices)


def test_aliases_switch_together_and_resolve(filled):
    store, vectors, _ = filled
    store.create_collection("songs_meta__v1", DIM)
    store.switch_aliases({"songs_w2v": "songs_w2v__v1", "songs_meta": "songs_meta__v1"})
    assert store.aliases() == {"songs_w2v": "songs_w2v__v1", "songs_meta": "songs_meta__v1"}
    assert store.count("songs_w2v") == N
    assert store.search("songs_w2v", Search((Nearest(vectors[3]),), 1))[0].song_id == 3
    assert set(store.retrieve("songs_w2v", [3, 4])) == {3, 4}
    assert store.scroll_ids("songs_w2v") == list(range(N))


def test_delete_and_list_collections(filled):
    store, _, _ = filled
    store.create_collection("songs_meta__v1", DIM)
    assert store.collections() == ["songs_meta__v1", "songs_w2v__v1"]
    store.delete_collection("songs_meta__v1")
    assert store.collections() == ["songs_w2v__v1"]


def test_missing_collection_is_a_songsearch_error(store):
    for read in (
        lambda: store.count("songs_w2v"),
        lambda: store.retrieve("songs_w2v", [1]),
        lambda: store.search("songs_w2v", Search((Nearest(np.ones(DIM)),), 1)),
        lambda: store.scroll_ids("songs_w2v"),
    ):
        with pytest.raises(SongSearchError, match="ingest"):
            read()


def test_creating_an_existing_collection_is_refused(filled):
    store, _, _ = filled
    with pytest.raises(SongSearchError, match="already exists"):
        store.create_collection("songs_w2v__v1", DIM)


def test_set_payloads_replaces_payloads_and_keeps_vectors(filled):
    store, vectors, sparse = filled
    store.set_payloads("songs_w2v__v1", [1, 2], [song_payload(1, "new", "Zed", [], 9), song_payload(2, "other", "Zed", ["pop"], 1)])
    got = store.retrieve("songs_w2v__v1", [1, 2], with_vectors=True)
    assert got[1].payload == song_payload(1, "new", "Zed", [], 9)
    assert cosine(got[2].vector, vectors[2]) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(got[2].sparse[COPLAY_VECTOR].indices, sparse[2].indices)
    assert store.count("songs_w2v__v1", PayloadFilter(artist_key="zed")) == 2
    assert store.search("songs_w2v__v1", Search((Nearest(vectors[2]),), 1))[0].song_id == 2


def test_copy_collection_where_the_backend_can(filled):
    store, vectors, sparse = filled
    if not store.can_copy:  # the server backend rebuilds instead of copying
        with pytest.raises(NotImplementedError):
            store.copy_collection("songs_w2v__v1", "songs_w2v__v2")
        assert store.collections() == ["songs_w2v__v1"]
        return
    store.copy_collection("songs_w2v__v1", "songs_w2v__v2")
    store.upsert("songs_w2v__v2", np.array([N]), vectors[:1], [song_payload(N, "t", "Alpha", [], 1)], sparse={COPLAY_VECTOR: sparse[:1]})
    assert (store.count("songs_w2v__v1"), store.count("songs_w2v__v2")) == (N, N + 1)
    assert store.search("songs_w2v__v2", Search((Nearest(vectors[7]),), 1))[0].song_id == 7
    copied = store.retrieve("songs_w2v__v2", [7, N], with_vectors=True)
    assert np.array_equal(copied[N].sparse[COPLAY_VECTOR].indices, sparse[0].indices)
    assert np.array_equal(copied[7].sparse[COPLAY_VECTOR].indices, sparse[7].indices)
    with pytest.raises(SongSearchError, match="already exists"):
        store.copy_collection("songs_w2v__v1", "songs_w2v__v2")


# -- congruence: the same operations on both backends, compared after each one --

FILTERS = [
    None,
    PayloadFilter(artist_key="alpha"),
    PayloadFilter(min_plays=5).without_ids([0, 17]),
    PayloadFilter(artist_key="beta band", min_plays=2),
    PayloadFilter(artist_key="nobody"),
]


@dataclass(frozen=True)
class Ranking:
    """One answer as the store gave it, compared up to ``tol`` (see assert_same_ranking)."""

    hits: tuple  # (song id, score, payload), best first
    limit: int
    tol: float


def assert_same_ranking(a: Ranking, b: Ranking, path: str):
    """The same songs with the same scores and payloads, best first, up to ``tol``.

    Ties (scores within ``tol``) have no defined order; and songs tied at the cut of a full
    answer may differ. ``tol`` covers float16 rounding: Edge stores songs_w2v's vectors in
    float16 (search.contract.INDEXES) and local mode, which ignores the datatype, in float32.
    """
    for r in (a, b):
        scores = [h[1] for h in r.hits]
        assert scores == sorted(scores, reverse=True), f"{path}: not best first"
    assert len(a.hits) == len(b.hits), f"{path}: {len(a.hits)} != {len(b.hits)} hits"
    mine, theirs = {h[0]: h for h in a.hits}, {h[0]: h for h in b.hits}
    for song_id in mine.keys() & theirs.keys():
        assert mine[song_id][1] == pytest.approx(theirs[song_id][1], abs=a.tol), f"{path}: score of {song_id}"
        assert mine[song_id][2] == theirs[song_id][2], f"{path}: payload of {song_id}"
    for r, only in ((a, mine.keys() - theirs.keys()), (b, theirs.keys() - mine.keys())):
        for song_id in only:  # only a tie at the cut may differ
            last = r.hits[-1][1]
            assert len(r.hits) == r.limit and abs(dict((h[0], h[1]) for h in r.hits)[song_id] - last) <= r.tol, (
                f"{path}: song {song_id} in one answer only: {a.hits} vs {b.hits}")


def observe(store, probe_vectors, probe_sparse):
    """Everything a reader can see: aliases, collections, counts with filters, ids, points
    (payloads, dense and sparse vectors) and answers to dense, sparse and fused queries."""
    seen = {"aliases": store.aliases(), "collections": store.collections()}
    for alias in sorted(seen["aliases"]):  # an alias reads its collection
        hits = store.search(alias, Search((Nearest(probe_vectors[0]),), 5))
        seen[alias] = (store.count(alias, FILTERS[1]), store.scroll_ids(alias),
                       Ranking(tuple((h.song_id, h.score, h.payload) for h in hits), 5, F16))
    for name in seen["collections"]:
        ids = store.scroll_ids(name)
        points = store.retrieve(name, ids + [10_000], with_vectors=True)
        view = {
            "counts": [store.count(name, f) for f in FILTERS],
            "ids": ids,
            "points": {
                i: (
                    p.payload,
                    None if p.vector is None else p.vector / np.linalg.norm(p.vector),
                    {n: (s.indices.tolist(), s.values.tolist()) for n, s in sorted(p.sparse.items())},
                )
                for i, p in sorted(points.items())
            },
            "answers": [],
        }
        has_sparse = any(p.sparse for p in points.values())
        for q, s in zip(probe_vectors, probe_sparse):
            for f in (FILTERS[0], FILTERS[2]):  # (local mode filters in Python: slow)
                requests = [(Search((Nearest(q),), 10, f), F16)]
                if has_sparse:
                    requests.append((Search((Nearest(s, COPLAY_VECTOR),), 10, f), 1e-6))  # float32 both
                    requests.append((Search((Nearest(q), Nearest(s, COPLAY_VECTOR)), 10, f, Fusion("rrf", 60, (1.0, 0.5)), depth=40), F16))
                    requests.append((Search((Nearest(q), Nearest(s, COPLAY_VECTOR)), 10, f, Fusion("dbsf"), depth=40), F16))
                for r, tol in requests:
                    view["answers"].append(Ranking(tuple((h.song_id, h.score, h.payload) for h in store.search(name, r)), r.limit, tol))
        seen[name] = view
    return seen


def assert_congruent(a, b, path="$"):
    """Equal, floats up to float16 precision: local mode stores songs_w2v's vectors in float32."""
    if isinstance(a, Ranking):
        assert_same_ranking(a, b, path)
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert np.allclose(a, b, atol=F16), path
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=F16), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a, key=str) == sorted(b, key=str), f"{path}: keys {sorted(a, key=str)} != {sorted(b, key=str)}"
        for key in a:
            assert_congruent(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_congruent(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def test_backends_are_congruent_after_every_operation(tmp_path):
    edge, server = make_store("edge", tmp_path / "edge"), make_store("server", tmp_path / "server")
    # random co-play values: a fused answer over a list with ties depends on how each backend
    # orders the ties (test_congruence compares whole answers over ingested co-play vectors)
    ids, vectors, payloads, sparse = points(seed=3, random_values=True)
    _, meta_vectors, _, _ = points(seed=4)
    ids2, vectors2, payloads2, sparse2 = points(seed=5, n=100, start=250, random_values=True)  # overlaps: overwrites 250..299
    probes = (vectors[[0, 150]], [sparse[0], sparse[150]])
    c1, m1, c2 = "songs_w2v__v1", "songs_meta__v1", "songs_w2v__v2"
    operations = [
        ("create w2v", lambda s: s.create_collection(c1, DIM, sparse_vectors=(COPLAY_VECTOR,))),
        ("upsert first half", lambda s: s.upsert(c1, ids[:150], vectors[:150], payloads[:150], sparse={COPLAY_VECTOR: sparse[:150]})),
        ("upsert second half", lambda s: s.upsert(c1, ids[150:], vectors[150:], payloads[150:], sparse={COPLAY_VECTOR: sparse[150:]})),
        ("overwrite and add points", lambda s: s.upsert(c1, ids2, vectors2, payloads2, sparse={COPLAY_VECTOR: sparse2})),
        ("set payloads", lambda s: s.set_payloads(c1, [1, 2], [song_payload(1, "new", "Zed", [], 9), song_payload(2, "x", "Alpha", ["pop"], 6)])),
        ("finish w2v", lambda s: s.finish_collection(c1)),
        ("create meta", lambda s: s.create_collection(m1, DIM)),
        ("fill meta", lambda s: (s.upsert(m1, ids, meta_vectors, payloads), s.finish_collection(m1))),
        ("switch both aliases", lambda s: s.switch_aliases({"songs_w2v": c1, "songs_meta": m1})),
        ("write v2", lambda s: (
            s.create_collection(c2, DIM, sparse_vectors=(COPLAY_VECTOR,)),
            s.upsert(c2, ids[:100], vectors[100:200], payloads[:100], sparse={COPLAY_VECTOR: sparse[100:200]}),
            s.finish_collection(c2, reindex=False),
        )),
        ("switch one alias", lambda s: s.switch_aliases({"songs_w2v": c2})),
        ("delete v1", lambda s: s.delete_collection(c1)),
    ]
    try:
        assert_congruent(observe(edge, *probes), observe(server, *probes), "before anything")
        for label, operation in operations:
            operation(edge)
            operation(server)
            assert_congruent(observe(edge, *probes), observe(server, *probes), label)
    finally:
        edge.close()
        server.close()

"""Client-side fusion (search.fusion, used across the two collections) gives the answers
Qdrant's own fusion gives (used inside songs_w2v): the same order and the same scores.

Each case prefetches two ranked lists from a tiny collection (a dense list and a sparse
one), fuses them with ``fusion.rrf`` / ``fusion.dbsf``, and compares the result with the
same two lists fused natively through ``Store.search(..., fusion=Fusion(...))``: Qdrant
Edge's ``Fusion.Rrf(k, weights)`` / ``Fusion.Dbsf()`` and qdrant-client local mode's
``RrfQuery`` / ``FusionQuery(DBSF)`` (the ``store`` fixture runs both backends).
"""

import numpy as np
import pytest

from search import fusion as fu
from search.contract import song_payload
from search.store import Fusion, Hit, Nearest, PayloadFilter, Search, Sparse

N, DIM, SPARSE_DIMS, DEPTH = 40, 6, 20, 25
TOL = 1e-6
#: Points whose scores are closer than this are a tie: Qdrant leaves their order undefined.
TIE = 1e-7


def _collection_points(seed=11):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    sparse = []
    for _ in range(N):
        dims = np.sort(rng.choice(SPARSE_DIMS, size=rng.integers(2, 7), replace=False))
        sparse.append(Sparse.of(dims, rng.uniform(0.1, 1.0, size=len(dims))))
    payloads = [song_payload(i, f"t{i}", "Alpha" if i % 2 else "Beta", [], i % 5) for i in range(N)]
    return np.arange(N), vectors, payloads, sparse


@pytest.fixture
def tiny(store):
    ids, vectors, payloads, sparse = _collection_points()
    store.create_collection("tiny", DIM, sparse_vectors=("coplay",))
    store.upsert("tiny", ids, vectors, payloads, sparse={"coplay": sparse})
    store.finish_collection("tiny")
    return store


def _queries(seed=5):
    rng = np.random.default_rng(seed)
    for _ in range(3):
        dims = np.sort(rng.choice(SPARSE_DIMS, size=6, replace=False))
        yield rng.normal(size=DIM).astype(np.float32), Sparse.of(dims, rng.uniform(0.1, 1.0, size=6))


FILTERS = [None, PayloadFilter(min_plays=1).without_ids([0, 3])]


def _two_lists(store, dense, sparse, flt):
    """The two lists Qdrant fuses in ``_native``: ids to leave out are dropped after the fusion
    (``Search.over_asked``), so the lists hold them, read that much deeper."""
    asked, _ = Search((Nearest(dense), Nearest(sparse, "coplay")), N, flt, Fusion(), DEPTH).over_asked()
    a = store.search("tiny", Search(asked.lists[:1], asked.depth, asked.filter))
    b = store.search("tiny", Search(asked.lists[1:], asked.depth, asked.filter))
    assert a and b
    return {"a": [(h.song_id, h.score) for h in a], "b": [(h.song_id, h.score) for h in b]}


def _left_out(fused: dict[int, float], flt) -> dict[int, float]:
    return {song: score for song, score in fused.items() if flt is None or song not in flt.exclude_ids}


def _native(store, dense, sparse, flt, fusion: Fusion) -> list[Hit]:
    request = Search((Nearest(dense), Nearest(sparse, "coplay")), N, flt, fusion, DEPTH)
    return store.search("tiny", request)


def _canonical(pairs):
    """Best first; within a tie (scores closer than TIE), by id: Qdrant does not order ties."""
    pairs = sorted(pairs, key=lambda p: -p[1])
    out, group = [], []
    for song_id, score in pairs:
        if group and abs(group[0][1] - score) > TIE:
            out += sorted(group)
            group = []
        group.append((song_id, score))
    return out + sorted(group)


def assert_same_answer(client: dict[int, float], native: list[Hit]):
    scores = [h.score for h in native]
    assert scores == sorted(scores, reverse=True), "Qdrant's fused answer is best first"
    assert {h.song_id for h in native} == set(client)
    for h in native:
        assert h.score == pytest.approx(client[h.song_id], abs=TOL), f"fused score of song {h.song_id}"
    mine = _canonical(client.items())
    theirs = _canonical([(h.song_id, h.score) for h in native])
    assert [i for i, _ in theirs] == [i for i, _ in mine]


@pytest.mark.parametrize("k, weights", [(60, None), (60, (1.0, 0.5)), (10, (2.0, 0.3)), (2, (0.7, 3.0))])
def test_client_rrf_is_qdrants_rrf(tiny, k, weights):
    for dense, sparse in _queries():
        for flt in FILTERS:
            lists = _two_lists(tiny, dense, sparse, flt)
            w = {"a": weights[0], "b": weights[1]} if weights else {}
            client = _left_out(fu.rrf(lists, w, k), flt)
            assert_same_answer(client, _native(tiny, dense, sparse, flt, Fusion("rrf", k, weights)))


def test_client_dbsf_is_qdrants_dbsf(tiny):
    for dense, sparse in _queries():
        for flt in FILTERS:
            lists = _two_lists(tiny, dense, sparse, flt)
            client = _left_out(fu.dbsf(lists, {}), flt)
            assert_same_answer(client, _native(tiny, dense, sparse, flt, Fusion("dbsf")))


def test_fuse_cuts_at_limit_and_breaks_ties_by_id(tiny):
    dense, sparse = next(_queries())
    lists = _two_lists(tiny, dense, sparse, None)
    full = fu.fuse(lists, "rrf", {}, N)
    assert fu.fuse(lists, "rrf", {}, 5) == full[:5]
    assert full == sorted(full, key=lambda p: (-p[1], p[0]))
    # two lists of the same length with the songs swapped: every song ties with its mirror
    tied = fu.fuse({"a": [(1, 0.9), (2, 0.8)], "b": [(2, 0.5), (1, 0.4)]}, "rrf", {}, 2)
    assert [s for s, _ in tied] == [1, 2] and tied[0][1] == pytest.approx(tied[1][1])


def test_a_zero_weight_leaves_a_list_out():
    lists = {"a": [(1, 0.9), (2, 0.8)], "b": [(3, 0.5), (2, 0.4)]}
    assert set(fu.rrf(lists, {"a": 1.0, "b": 0.0})) == {1, 2}
    assert fu.rrf(lists, {"a": 1.0, "b": 0.0}) == pytest.approx(fu.rrf({"a": lists["a"]}, {}))


def test_candidate_depth_keeps_outsiders_out_of_the_top():
    """A song outside both lists cut at candidates(limit) cannot outscore the limit-th song of
    one list alone, by Qdrant's formula (rank from 1: 1 / (k + rank - 1))."""
    for limit in (1, 10, 100):
        c = fu.candidates(limit)
        outsider = 2 / (fu.RRF_K + (c + 1) - 1)
        assert outsider < 1 / (fu.RRF_K + limit - 1)


def test_unknown_fusion_is_an_error():
    from search.contract import SongSearchError

    with pytest.raises(SongSearchError, match="unknown fusion 'max'"):
        fu.fuse({"a": [(1, 1.0)]}, "max", {}, 3)

"""Fusion arithmetic against values computed by hand."""

import pytest

from search.contract import SongSearchError
from search.fusion import candidates, dbsf, dbsf_normalise, fuse, parse_weights, rrf

A = [(1, 0.9), (2, 0.8), (3, 0.1)]
B = [(2, 0.5), (4, 0.4)]


def test_rrf_by_hand():
    fused = rrf({"a": A, "b": B}, {"a": 1.0, "b": 1.0})
    assert fused == pytest.approx({1: 1 / 61, 2: 1 / 62 + 1 / 61, 3: 1 / 63, 4: 1 / 62})


def test_rrf_weights_scale_each_list():
    fused = rrf({"a": A, "b": B}, {"a": 2.0, "b": 0.5})
    assert fused[2] == pytest.approx(2 / 62 + 0.5 / 61)


def test_dbsf_normalisation_by_hand():
    # list A: mean 0.6, sd 0.355903; limits 0.6 -/+ 3 sd = -0.467708 .. 1.667708
    assert dbsf_normalise([0.9, 0.8, 0.1]) == pytest.approx([0.640488, 0.593659, 0.265853], abs=2e-6)
    # list B: mean 0.45, sd 0.05; limits 0.3 .. 0.6
    assert dbsf_normalise([0.5, 0.4]) == pytest.approx([2 / 3, 1 / 3])
    assert dbsf_normalise([0.7, 0.7]) == [0.5, 0.5]


def test_dbsf_weighted_sum_by_hand():
    fused = dbsf({"a": A, "b": B}, {"a": 1.0, "b": 0.5})
    assert fused == pytest.approx({1: 0.640488, 2: 0.593659 + 0.5 * 2 / 3, 3: 0.265853, 4: 0.5 * 1 / 3}, abs=3e-6)


def test_fuse_orders_and_cuts():
    assert [s for s, _ in fuse({"a": A, "b": B}, "rrf", {}, 3)] == [2, 1, 4]
    assert [s for s, _ in fuse({"a": A, "b": B}, "dbsf", {"a": 1, "b": 0.5}, 2)] == [2, 1]


def test_candidate_depth_keeps_outsiders_out_of_the_top():
    limit = 10
    c = candidates(limit)
    # the best a song outside both candidate lists can score, against the limit-th of one list
    assert 2 / (60 + c + 1) < 1 / (60 + limit)


def test_unknown_fusion_is_an_error():
    with pytest.raises(SongSearchError, match="unknown fusion 'max'"):
        fuse({"a": A}, "max", {}, 3)


def test_parse_weights():
    assert parse_weights("w2v=1, meta=0.5", ["w2v", "meta"]) == {"w2v": 1.0, "meta": 0.5}
    assert parse_weights(None, ["w2v", "meta"]) == {"w2v": 1.0, "meta": 1.0}


@pytest.mark.parametrize("text", ["w2v", "w2v=x", "foo=1", "w2v=-1", "meta=nan"])
def test_malformed_weights(text):
    with pytest.raises(SongSearchError, match="malformed --weights"):
        parse_weights(text, ["w2v", "meta"])

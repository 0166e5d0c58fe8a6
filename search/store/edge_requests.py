"""How the store's requests (:class:`~search.store.Search`, filters, vectors) become Qdrant Edge
requests: the embedded backend's half of what search/store/server.py does for a server."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import qdrant_edge as qe

from search.contract import NAME_FIELD, IndexSettings
from search.store import Diversify, Nearest, PayloadFilter, Recommend, Search, Sparse, quantization_params


def edge_filter(flt: PayloadFilter | None):
    if flt is None:
        return None
    must = []
    if flt.artist_key is not None:
        must.append(qe.FieldCondition(key="artist_key", match=qe.MatchValue(flt.artist_key)))
    must.extend(qe.FieldCondition(key="tags", match=qe.MatchValue(tag)) for tag in flt.tags)
    if flt.name_words:
        must.append(qe.FieldCondition(key=NAME_FIELD, match=qe.MatchText(flt.name_words)))
    if flt.min_plays is not None or flt.max_plays is not None:
        low, high = (None if v is None else float(v) for v in (flt.min_plays, flt.max_plays))
        must.append(qe.FieldCondition(key="plays", range=qe.RangeFloat(gte=low, lte=high)))
    must_not = [qe.HasIdCondition(set(flt.exclude_ids))] if flt.exclude_ids else []
    if flt.exclude_artists:
        must_not.append(qe.FieldCondition(key="artist_key", match=qe.MatchAny(sorted(flt.exclude_artists))))
    if not must and not must_not:
        return None
    return qe.Filter(must=must or None, must_not=must_not or None)


def edge_vector(vector):
    if isinstance(vector, Sparse):
        return qe.SparseVector(vector.indices.tolist(), vector.values.tolist())
    return np.asarray(vector, dtype=np.float32).tolist()


def _edge_query(item):
    """A Nearest or a Recommend (best score) as an Edge query."""
    if isinstance(item, Nearest):
        return qe.Query.Nearest(edge_vector(item.vector), using=item.using)
    recommend = qe.RecommendQuery([edge_vector(v) for v in item.positives], [edge_vector(v) for v in item.negatives])
    return qe.Query.RecommendBestScore(recommend, using=item.using)


def _edge_list(item, flt, params) -> dict:
    """One ranked list's stage: the filter on the stage that scans (a filter on a stage over
    prefetched points is checked against every point), so a Recommend ``among`` its centre's
    nearest leaves it to that prefetch."""
    if isinstance(item, Recommend) and item.among:
        return dict(query=_edge_query(item), prefetches=[qe.Prefetch(limit=item.among, query=_edge_query(item.centre), filter=flt, params=params)])
    return dict(query=_edge_query(item), filter=flt, params=params)


def query_request(request: Search, index: IndexSettings, with_payload: bool | Sequence[str] = True) -> qe.QueryRequest:
    """One Qdrant Edge query for ``request`` (without MMR): a list, or the fusion of prefetched lists."""
    flt = edge_filter(request.filter)
    quantization = qe.QuantizationSearchParams(**quantization_params(index, request))
    params = qe.SearchParams(hnsw_ef=index.hnsw_ef, exact=request.exact, quantization=quantization)
    lists = [_edge_list(n, flt, params) for n in request.lists]
    if request.fusion is None:
        (stage,) = lists
    else:
        fusion = request.fusion
        fused = qe.Fusion.Rrf(k=fusion.k, weights=list(fusion.weights) if fusion.weights else None) if fusion.method == "rrf" else qe.Fusion.Dbsf()
        stage = dict(prefetches=[qe.Prefetch(limit=request.depth, **one) for one in lists], query=fused)
    return qe.QueryRequest(limit=request.limit, with_payload=with_payload if isinstance(with_payload, bool) else list(with_payload), **stage)


def mmr_request(mmr: Diversify, ids: Sequence[int], limit: int) -> qe.QueryRequest:
    """Qdrant's MMR over the points ``ids`` only, scored with the stored vectors."""
    return qe.QueryRequest(
        limit=limit, query=qe.Mmr(edge_vector(mmr.vector), 1.0 - mmr.diversity, len(ids)),
        filter=qe.Filter(must=[qe.HasIdCondition(set(ids))]), params=qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True)),
        with_payload=True,
    )

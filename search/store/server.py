"""Server backend: a Qdrant server (or cluster) through qdrant-client.

qdrant-client's in-memory local mode speaks the same API, so tests run this
very class against ``QdrantClient(":memory:")``.
"""

from __future__ import annotations

import functools
import warnings
from typing import Sequence

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from search.contract import INT8_QUANTILE, NAME_FIELD, Layout, index_settings, INTEGER_INDEXED_FIELDS, KEYWORD_INDEXED_FIELDS, TEXT_INDEXED_FIELDS, SongSearchError, StoreUnavailableError
from search.store import Diversify, Hit, Nearest, PayloadFilter, Point, Recommend, Search, Sparse, Store, error_line, left_out, point_batches, quantization_params

UPSERT_BATCH = 1000


def _client_filter(flt: PayloadFilter | None) -> qm.Filter | None:
    if flt is None:
        return None
    must = []
    if flt.artist_key is not None:
        must.append(qm.FieldCondition(key="artist_key", match=qm.MatchValue(value=flt.artist_key)))
    must.extend(qm.FieldCondition(key="tags", match=qm.MatchValue(value=tag)) for tag in flt.tags)
    if flt.name_words:
        must.append(qm.FieldCondition(key=NAME_FIELD, match=qm.MatchText(text=flt.name_words)))
    if flt.min_plays is not None or flt.max_plays is not None:
        must.append(qm.FieldCondition(key="plays", range=qm.Range(gte=flt.min_plays, lte=flt.max_plays)))
    must_not = [qm.HasIdCondition(has_id=sorted(flt.exclude_ids))] if flt.exclude_ids else []
    if flt.exclude_artists:
        must_not.append(qm.FieldCondition(key="artist_key", match=qm.MatchAny(any=sorted(flt.exclude_artists))))
    if not must and not must_not:
        return None
    return qm.Filter(must=must or None, must_not=must_not or None)


def _client_vector(vector):
    if isinstance(vector, Sparse):
        return qm.SparseVector(indices=vector.indices.tolist(), values=vector.values.tolist())
    return np.asarray(vector, dtype=np.float32).tolist()


def _client_query(item):
    """A Nearest (a vector) or a Recommend (best score) as a qdrant-client query."""
    if isinstance(item, Nearest):
        return _client_vector(item.vector)
    return qm.RecommendQuery(recommend=qm.RecommendInput(
        positive=[_client_vector(v) for v in item.positives], negative=[_client_vector(v) for v in item.negatives],
        strategy=qm.RecommendStrategy.BEST_SCORE,
    ))


def _client_list(item, flt, params, limit: int) -> qm.Prefetch:
    """One ranked list as a stage: the filter on the stage that scans (a filter on a stage over
    prefetched points is checked against every point), so a Recommend ``among`` its centre's
    nearest leaves it to that prefetch."""
    if isinstance(item, Recommend) and item.among:
        among = qm.Prefetch(query=_client_query(item.centre), using=item.using, limit=item.among, filter=flt, params=params)
        return qm.Prefetch(query=_client_query(item), using=item.using, limit=limit, prefetch=among)
    return qm.Prefetch(query=_client_query(item), using=item.using, limit=limit, filter=flt, params=params)


def _one_line_errors(method):
    """qdrant-client raises many kinds of errors; the user gets one line naming the operation."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except SongSearchError:
            raise
        except Exception as exc:  # noqa: BLE001 - transport, HTTP and local-mode errors alike
            detail = error_line(exc)
            if getattr(exc, "status_code", None) == 404 or "not found" in detail.lower():
                raise StoreUnavailableError(f"{detail} at {self.where}: run `ingest` first (`ingest rollback` if `ingest versions` lists versions)") from None
            status = getattr(exc, "status_code", None)
            unavailable = status is None or status >= 500  # no answer, or a server error: not the request's fault
            raise (StoreUnavailableError if unavailable else SongSearchError)(f"Qdrant {method.__name__} failed at {self.where}: {detail}") from None

    return wrapper


class ServerStore(Store):
    def __init__(self, client: QdrantClient, where: str = "in-memory Qdrant"):
        self.client = client
        self.where = where

    @classmethod
    def connect(cls, url: str, api_key: str | None, timeout_s: int) -> "ServerStore":
        client = QdrantClient(url=url, api_key=api_key, timeout=timeout_s)
        try:
            client.get_collections()
        except Exception as exc:  # noqa: BLE001
            reason = error_line(exc)
            raise StoreUnavailableError(f"cannot reach the Qdrant server at {url} (QDRANT_URL): {reason}") from None
        return cls(client, where=url)

    # -- writing --
    can_distribute = True

    @_one_line_errors
    def create_collection(self, name: str, dim: int, sparse_vectors=(), layout: Layout = Layout(), points: int = 0) -> None:
        if self.client.collection_exists(name):
            raise SongSearchError(f"collection {name} already exists")
        index = index_settings(name, layout.quantization, points)
        self.client.create_collection(
            name,
            # int8 copies in RAM; with --quantization the stored vectors stay on disk
            vectors_config=qm.VectorParams(
                size=dim, distance=qm.Distance.COSINE, datatype=qm.Datatype.FLOAT16 if index.float16 else None, on_disk=bool(layout.quantization) or index.cold_vectors or None,
            ),
            quantization_config=qm.ScalarQuantization(
                scalar=qm.ScalarQuantizationConfig(type=qm.ScalarType.INT8, quantile=INT8_QUANTILE, always_ram=True)
            ) if index.quantization == "int8" else None,
            # the quantization again, where every Qdrant (local mode too) keeps it for readers
            metadata={"quantization": index.quantization} if index.quantization else None,
            shard_number=layout.shards,
            replication_factor=layout.replicas,
            write_consistency_factor=layout.write_consistency,
            sparse_vectors_config={
                v: qm.SparseVectorParams(index=qm.SparseIndexParams(full_scan_threshold=index.sparse_full_scan_threshold)) for v in sparse_vectors
            } or None,
            hnsw_config=qm.HnswConfigDiff(
                m=index.hnsw_m, ef_construct=index.hnsw_ef_construct, full_scan_threshold=index.full_scan_threshold
            ),
            optimizers_config=qm.OptimizersConfigDiff(
                indexing_threshold=index.indexing_threshold_kb,
                deleted_threshold=index.deleted_threshold,
                vacuum_min_vector_number=index.vacuum_min_vector_number,
            ),
        )

    @_one_line_errors
    def upsert(self, name: str, ids, vectors: np.ndarray, payloads, sparse=None) -> None:
        for batch in point_batches(ids, vectors, payloads, sparse, UPSERT_BATCH, _client_vector):
            self.client.upsert(name, points=[qm.PointStruct(id=i, vector=v, payload=p) for i, v, p in batch], wait=True)

    @_one_line_errors
    def set_payloads(self, name: str, ids: Sequence[int], payloads: Sequence[dict]) -> None:
        operations = [
            qm.OverwritePayloadOperation(overwrite_payload=qm.SetPayload(payload=payload, points=[int(song_id)]))
            for song_id, payload in zip(ids, payloads)
        ]
        for start in range(0, len(operations), UPSERT_BATCH):
            self.client.batch_update_points(name, operations[start : start + UPSERT_BATCH], wait=True)

    @_one_line_errors
    def finish_collection(self, name: str, reindex: bool = True, payload_indexes: bool = True) -> None:
        # the server indexes in the background as it sees fit; payload indexes are ours to ask for
        if not payload_indexes:
            return
        text = qm.TextIndexParams(type=qm.TextIndexType.TEXT, tokenizer=qm.TokenizerType.WORD, lowercase=True, scoring=True)
        schema = {**{f: qm.PayloadSchemaType.KEYWORD for f in KEYWORD_INDEXED_FIELDS},
                  **{f: qm.PayloadSchemaType.INTEGER for f in INTEGER_INDEXED_FIELDS},
                  **{f: text for f in TEXT_INDEXED_FIELDS}}
        with warnings.catch_warnings():
            # local mode warns that indexes do nothing there; a server builds them
            warnings.simplefilter("ignore", UserWarning)
            for field, field_schema in schema.items():
                self.client.create_payload_index(name, field, field_schema=field_schema, wait=True)

    @_one_line_errors
    def delete_collection(self, name: str) -> None:
        self.client.delete_collection(name)

    @_one_line_errors
    def collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    @_one_line_errors
    def aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    @_one_line_errors
    def switch_aliases(self, mapping: dict[str, str]) -> None:
        existing = set(self.aliases())
        operations = []
        for alias, collection in mapping.items():
            if alias in existing:
                operations.append(qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=alias)))
            operations.append(
                qm.CreateAliasOperation(create_alias=qm.CreateAlias(collection_name=collection, alias_name=alias))
            )
        # one call: the server applies all alias changes atomically
        self.client.update_collection_aliases(change_aliases_operations=operations)

    # -- reading --
    @_one_line_errors
    def count(self, collection: str, flt: PayloadFilter | None = None) -> int:
        return self.client.count(collection, count_filter=_client_filter(flt), exact=True).count

    @_one_line_errors
    def exists(self, collection: str, flt: PayloadFilter) -> bool:
        points, _ = self.client.scroll(collection, scroll_filter=_client_filter(flt), limit=1, with_payload=False, with_vectors=False)
        return bool(points)

    @_one_line_errors
    def retrieve(self, collection: str, ids, with_vectors: bool = False, with_payload: bool = True) -> dict[int, Point]:
        records = self.client.retrieve(collection, [int(i) for i in ids], with_payload=with_payload, with_vectors=with_vectors)
        return {int(r.id): Point.from_record(r, with_vectors) for r in records}

    @_one_line_errors
    def scroll_ids(self, collection: str) -> list[int]:
        ids, offset = [], None
        while True:
            records, offset = self.client.scroll(collection, limit=10_000, offset=offset, with_payload=False, with_vectors=False)
            ids.extend(int(r.id) for r in records)
            if offset is None:
                return sorted(ids)

    @_one_line_errors
    def search_text(self, collection: str, field: str, text: str, limit: int, flt: PayloadFilter | None = None) -> list[Hit]:
        points = self.client.query_points(
            collection, query=qm.TextQuery(text=text), using=field, query_filter=_client_filter(flt), limit=limit, with_payload=True
        ).points
        return [Hit(int(p.id), float(p.score), p.payload) for p in points]

    @_one_line_errors
    def facet(self, collection: str, key: str, limit: int, flt: PayloadFilter | None = None) -> list[tuple[str, int]]:
        hits = self.client.facet(collection, key, facet_filter=_client_filter(flt), limit=limit, exact=True).hits
        return sorted(((h.value, int(h.count)) for h in hits), key=lambda vc: (-vc[1], vc[0]))

    @_one_line_errors
    def quantization(self, collection: str) -> str | None:
        return (self.client.get_collection(collection).config.metadata or {}).get("quantization")

    @_one_line_errors
    def _query(self, collection: str, request: Search, with_payload: bool | Sequence[str] = True) -> list[Hit]:
        limit = request.limit
        request, excluded = request.over_asked()
        flt = _client_filter(request.filter)
        index = index_settings(collection)
        quantization = qm.QuantizationSearchParams(**quantization_params(index, request))
        params = qm.SearchParams(hnsw_ef=index.hnsw_ef, exact=request.exact, quantization=quantization)
        if request.fusion is None:
            (item,) = request.lists
            stage = _client_list(item, flt, params, request.limit)
            query = dict(query=stage.query, using=stage.using, prefetch=stage.prefetch, query_filter=stage.filter, search_params=stage.params)
        else:
            fusion = request.fusion
            fused = (
                qm.RrfQuery(rrf=qm.Rrf(k=fusion.k, weights=list(fusion.weights) if fusion.weights else None))
                if fusion.method == "rrf"
                else qm.FusionQuery(fusion=qm.Fusion.DBSF)
            )
            query = dict(query=fused, prefetch=[_client_list(n, flt, params, request.depth) for n in request.lists])
        with warnings.catch_warnings():
            # local mode (tests) always searches exactly and says so; a server uses the params
            warnings.simplefilter("ignore", UserWarning)
            points = self.client.query_points(collection, limit=request.limit, with_payload=with_payload, **query).points
        return left_out([Hit(int(p.id), float(p.score), p.payload) for p in points], excluded, limit)

    @_one_line_errors
    def _mmr(self, collection: str, mmr: Diversify, ids: Sequence[int], limit: int) -> list[Hit]:
        points = self.client.query_points(
            collection, query=qm.NearestQuery(nearest=_client_vector(mmr.vector), mmr=qm.Mmr(diversity=mmr.diversity, candidates_limit=len(ids))),
            query_filter=qm.Filter(must=[qm.HasIdCondition(has_id=list(ids))]), limit=limit, with_payload=True,
            search_params=qm.SearchParams(exact=True, quantization=qm.QuantizationSearchParams(ignore=True)),
        ).points
        return [Hit(int(p.id), float(p.score), p.payload) for p in points]

    def close(self) -> None:
        self.client.close()

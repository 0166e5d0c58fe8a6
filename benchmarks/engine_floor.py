"""What one Qdrant Edge query on songs_w2v costs, by index and by filter: the floor under every
in-process `search` answer (issue 11's 3 ms target), measured on the live store.

    SONGSEARCH_HOME=... .venv/bin/python benchmarks/engine_floor.py [--queries 300]

First table: the live collection's Word2Vec and co-play vectors copied into throwaway shards,
one per index, each asked the first stage of a default `similar` (the fusion depth, rescored as
served): p50 of the Edge call alone and recall@10 / recall@depth against exact cosine (numpy,
float32); then the whole default `similar` request (the Word2Vec list fused with the co-play
list, as search/query.py asks it): p50 and recall@10 against the same request searched exactly.
Second table: how much cluster structure the vectors have (what any partitioned index would
need): k-means cells of the unit vectors, and the share of the true top 10 in the cells nearest
a song against the share of the catalogue those cells hold.
Third table: the live songs_w2v shard asked the same Nearest with each filter `search` sends.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import qdrant_edge as qe

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import machine_speed  # noqa: E402

from search import SongSearch  # noqa: E402
from search.clikit import markdown_table  # noqa: E402
from search import query as core  # noqa: E402
from search.contract import COPLAY_VECTOR, INT8_QUANTILE, W2V_ALIAS, index_settings  # noqa: E402
from search.query import DEFAULT_FUSION  # noqa: E402
from search.store import Nearest, PayloadFilter, Search, quantization_params  # noqa: E402
from search.store.edge_requests import edge_vector, query_request  # noqa: E402

BINARY = qe.BinaryQuantizationEncoding
INDEXES = {
    "int8 scan (served)": dict(quantization=qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=INT8_QUANTILE, memory=qe.Memory.Cold)),
    "binary 1 bit, int8 query, scan": dict(quantization=qe.BinaryQuantizationConfig(encoding=BINARY.OneBit, query_encoding=qe.BinaryQuantizationQueryEncoding.Scalar8Bits)),
    "binary 2 bits, int8 query, scan": dict(quantization=qe.BinaryQuantizationConfig(encoding=BINARY.TwoBits, query_encoding=qe.BinaryQuantizationQueryEncoding.Scalar8Bits)),
    "int8, HNSW m 16 ef_construct 100": dict(quantization=qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=INT8_QUANTILE), m=16, ef_construct=100),
    "int8, HNSW m 32 ef_construct 256": dict(quantization=qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=INT8_QUANTILE), m=32, ef_construct=256),
    "int8, HNSW m 64 ef_construct 512": dict(quantization=qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=INT8_QUANTILE), m=64, ef_construct=512),
}
HNSW_EFS = (128, 512, 1024)
#: k-means cells per catalogue, as a multiple of sqrt(songs), and the shares of cells probed
CELLS_PER_ROOT_SONG = (0.25, 1.0)
PROBED_SHARES = (1 / 32, 1 / 16, 1 / 8, 1 / 4)


def p50_ms(shard, requests) -> float:
    for request in requests[:10]:  # pages in what the shard maps
        shard.query(request)
    times = []
    for request in requests:
        start = time.perf_counter()
        shard.query(request)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def build(path: Path, ids: np.ndarray, vectors: np.ndarray, coplay: list, spec: dict) -> tuple[qe.EdgeShard, float]:
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=vectors.shape[1], distance=qe.Distance.Cosine, datatype=qe.VectorStorageDatatype.Float16),
        sparse_vectors={COPLAY_VECTOR: qe.EdgeSparseVectorParams(full_scan_threshold=index_settings(W2V_ALIAS).sparse_full_scan_threshold)},
        quantization_config=spec["quantization"], wal_enabled=False, max_search_threads=1,
        hnsw_config=qe.HnswIndexConfig(m=spec.get("m", 0), ef_construct=spec.get("ef_construct", 64), full_scan_threshold=1000),
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1000, default_segment_number=1),
    )
    shard = qe.EdgeShard.create(str(path), config)
    for start in range(0, len(ids), 2000):
        rows = range(start, min(start + 2000, len(ids)))
        named = [{"": vectors[r].tolist(), **({COPLAY_VECTOR: edge_vector(coplay[r])} if coplay[r] is not None else {})} for r in rows]
        shard.update(qe.UpdateOperation.upsert_points([qe.Point(int(ids[r]), v, {}) for r, v in zip(rows, named)]))
    began = time.perf_counter()
    shard.flush()
    shard.optimize()
    return shard, time.perf_counter() - began


def kmeans(unit: np.ndarray, cells: int, rng: np.random.Generator, rounds: int = 15) -> np.ndarray:
    """Unit centroids of ``cells`` cells, fitted on a sample of 50 songs a cell."""
    sample = unit[rng.choice(len(unit), min(len(unit), 50 * cells), replace=False)]
    centroids = sample[rng.choice(len(sample), cells, replace=False)].copy()
    for _ in range(rounds):
        nearest = np.argmax(sample @ centroids.T, axis=1)
        for cell in np.unique(nearest):
            centroids[cell] = sample[nearest == cell].mean(axis=0)
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    return centroids


def cell_table(ids: np.ndarray, unit: np.ndarray, rows: list[int], exact: dict[int, list[int]]) -> list[list[str]]:
    """How many of a song's true top 10 (``exact``: ids, ``ids`` ascending) lie in the cells
    nearest it, against the points those cells hold: what an inverted-file index (or shards
    split by vector) searching those cells could find."""
    rng = np.random.default_rng(5)
    table = []
    for per_root in CELLS_PER_ROOT_SONG:
        cells = max(8, int(per_root * np.sqrt(len(unit))))
        centroids = kmeans(unit, cells, rng)
        cell_of = np.concatenate([np.argmax(unit[s : s + 100_000] @ centroids.T, axis=1) for s in range(0, len(unit), 100_000)])
        sizes = np.bincount(cell_of, minlength=cells)
        nearest_cells = np.argsort(-(unit[rows] @ centroids.T), axis=1)
        for share in PROBED_SHARES:
            probed = max(1, int(round(cells * share)))
            held, found = [], []
            for row, order in zip(rows, nearest_cells):
                probe = order[:probed]
                held.append(sizes[probe].sum() / len(unit))
                found.append(np.isin(cell_of[np.searchsorted(ids, exact[row][:10])], probe).mean())
            table.append([f"{cells:,}", f"{probed:,}", f"{np.mean(held):.3f}", f"{np.mean(found):.3f}"])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--indexes", help="only the indexes whose names contain one of these comma-separated texts (e.g. \"HNSW m 16,HNSW m 64\"); the served scan always")
    args = parser.parse_args()
    wanted = [text.strip() for text in args.indexes.split(",")] if args.indexes else []
    indexes = {name: spec for number, (name, spec) in enumerate(INDEXES.items()) if number == 0 or not wanted or any(text in name for text in wanted)}
    python_ms, matvec_ms = machine_speed()
    print(f"machine speed: pure-Python loop {python_ms:.1f} ms, 75000 x 256 float32 matvec {matvec_ms:.1f} ms\n")
    songs = SongSearch()
    store, depth = songs.store, DEFAULT_FUSION.depth(10)
    ids = np.array(store.scroll_ids(W2V_ALIAS))
    points = {}
    for start in range(0, len(ids), 5000):
        points.update(store.retrieve(W2V_ALIAS, ids[start : start + 5000].tolist(), with_vectors=True))
    vectors = np.stack([points[int(i)].vector for i in ids]).astype(np.float32)
    coplay = [points[int(i)].sparse.get(COPLAY_VECTOR) for i in ids]
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    rows = random.Random(1).sample(range(len(ids)), min(args.queries, len(ids)))
    exact = {r: ids[np.argsort(-(unit @ unit[r]), kind="stable")[:depth]].tolist() for r in rows}
    served = qe.QuantizationSearchParams(**quantization_params(index_settings(W2V_ALIAS), Search((Nearest(vectors[0]),), depth)))
    # the default `similar` request, the query song asked for and dropped afterwards as search does
    similar = {r: core.w2v_request(core.probe_of(points[int(ids[r])]), 10, PayloadFilter().without_ids([int(ids[r])])).over_asked()[0] for r in rows}

    def answers(shard, request: Search, ef: int | None, exact_search: bool = False) -> list[int]:
        index = replace(index_settings(W2V_ALIAS), hnsw_ef=ef or index_settings(W2V_ALIAS).hnsw_ef)
        asked = query_request(replace(request, exact=exact_search), index, with_payload=False)
        return [int(p.id) for p in shard.query(asked)]

    table, exact_similar = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for number, (name, spec) in enumerate(indexes.items()):
            shard, seconds = build(Path(tmp) / str(number), ids, vectors, coplay, spec)
            if exact_similar is None:
                exact_similar = {r: [i for i in answers(shard, similar[r], None, True) if i != int(ids[r])][:10] for r in rows}
            for ef in HNSW_EFS if "m" in spec else (None,):
                requests = [qe.QueryRequest(limit=depth, query=qe.Query.Nearest(vectors[r].tolist()), params=qe.SearchParams(hnsw_ef=ef, quantization=served)) for r in rows]
                found = [[int(p.id) for p in shard.query(q)] for q in requests]
                at10 = np.mean([len(set(f[:10]) & set(exact[r][:10])) / 10 for f, r in zip(found, rows)])
                at_depth = np.mean([len(set(f) & set(exact[r])) / depth for f, r in zip(found, rows)])
                fused = {r: [i for i in answers(shard, similar[r], ef) if i != int(ids[r])][:10] for r in rows}
                fused_at10 = np.mean([len(set(fused[r]) & set(exact_similar[r])) / max(1, len(exact_similar[r])) for r in rows])
                fused_requests = [query_request(similar[r], replace(index_settings(W2V_ALIAS), hnsw_ef=ef or index_settings(W2V_ALIAS).hnsw_ef), with_payload=False) for r in rows]
                table.append([
                    name + (f", ef {ef}" if ef else ""), f"{seconds:.1f} s", f"{p50_ms(shard, requests):.2f} ms", f"{at10:.3f}", f"{at_depth:.3f}",
                    f"{p50_ms(shard, fused_requests):.2f} ms", f"{fused_at10:.3f}",
                ])
            shard.close()
    print(f"{len(ids):,} songs, {vectors.shape[1]} dims, first stage {depth} deep, {len(rows)} songs drawn uniformly\n")
    headers = ["index", "build", "p50 (Edge call)", "recall@10", f"recall@{depth}", "`similar` p50 (Edge call)", "`similar` recall@10"]
    print(markdown_table(headers, table) + "\n")

    print("cluster structure: k-means cells of the unit vectors (15 rounds on a sample), the cells nearest a song probed:\n")
    print(markdown_table(["cells", "cells probed", "share of the catalogue probed", "share of the true top 10 found"], cell_table(ids, unit, rows, exact)) + "\n")

    live = store._shard(W2V_ALIAS)
    payloads = {int(i): points[int(i)].payload for i in ids[rows]}
    filters = {
        "none": lambda p: None,
        "artist excluded (must_not)": lambda p: qe.Filter(must_not=[qe.FieldCondition(key="artist_key", match=qe.MatchAny([p["artist_key"]]))]),
        "artist excluded, plays at least 20": lambda p: qe.Filter(must=[qe.FieldCondition(key="plays", range=qe.RangeFloat(gte=20.0))], must_not=[qe.FieldCondition(key="artist_key", match=qe.MatchAny([p["artist_key"]]))]),
        "plays at least 20": lambda p: qe.Filter(must=[qe.FieldCondition(key="plays", range=qe.RangeFloat(gte=20.0))]),
        "tag rock": lambda p: qe.Filter(must=[qe.FieldCondition(key="tags", match=qe.MatchValue("rock"))]),
        "this song's id excluded (must_not)": lambda p: qe.Filter(must_not=[qe.HasIdCondition({p["song_id"]})]),
    }
    table = []
    for name, make in filters.items():
        requests = [qe.QueryRequest(limit=depth, query=qe.Query.Nearest(vectors[r].tolist()), filter=make(payloads[int(ids[r])]), params=qe.SearchParams(quantization=served)) for r in rows]
        table.append([name, f"{p50_ms(live, requests):.2f} ms"])
    print("live songs_w2v, the same first stage with each filter:\n")
    print(markdown_table(["filter", "p50 (Edge call)"], table))
    python_ms, matvec_ms = machine_speed()
    print(f"\nmachine speed at the end: pure-Python loop {python_ms:.1f} ms, matvec {matvec_ms:.1f} ms")


if __name__ == "__main__":
    main()

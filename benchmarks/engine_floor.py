"""What one Qdrant Edge query on songs_w2v costs, by index and by filter: the floor under every
in-process `search` answer (issue 11's 3 ms target), measured on the live store.

    SONGSEARCH_HOME=... .venv/bin/python benchmarks/engine_floor.py [--queries 300]

First table: the live collection's Word2Vec vectors copied into throwaway shards, one per
index, each asked the first stage of a default `similar` (the fusion depth, rescored as served):
p50 of the Edge call alone and recall@10 / recall@depth against exact cosine (numpy, float32).
Second table: the live songs_w2v shard asked the same Nearest with each filter `search` sends.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import qdrant_edge as qe

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import machine_speed  # noqa: E402

from search import SongSearch  # noqa: E402
from search.clikit import markdown_table  # noqa: E402
from search.contract import INT8_QUANTILE, W2V_ALIAS, index_settings  # noqa: E402
from search.query import DEFAULT_FUSION  # noqa: E402
from search.store import Search, Nearest, quantization_params  # noqa: E402

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


def p50_ms(shard, requests) -> float:
    for request in requests[:10]:  # pages in what the shard maps
        shard.query(request)
    times = []
    for request in requests:
        start = time.perf_counter()
        shard.query(request)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def build(path: Path, ids: np.ndarray, vectors: np.ndarray, spec: dict) -> tuple[qe.EdgeShard, float]:
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=vectors.shape[1], distance=qe.Distance.Cosine, datatype=qe.VectorStorageDatatype.Float16),
        quantization_config=spec["quantization"], wal_enabled=False, max_search_threads=1,
        hnsw_config=qe.HnswIndexConfig(m=spec.get("m", 0), ef_construct=spec.get("ef_construct", 64), full_scan_threshold=1000),
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1000, default_segment_number=1),
    )
    shard = qe.EdgeShard.create(str(path), config)
    for start in range(0, len(ids), 2000):
        shard.update(qe.UpdateOperation.upsert_points([qe.Point(int(i), v, {}) for i, v in zip(ids[start : start + 2000], vectors[start : start + 2000].tolist())]))
    began = time.perf_counter()
    shard.flush()
    shard.optimize()
    return shard, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--indexes", help="only the indexes whose names contain this text (e.g. \"HNSW m 16\"); the served scan always")
    args = parser.parse_args()
    indexes = {name: spec for number, (name, spec) in enumerate(INDEXES.items()) if number == 0 or not args.indexes or args.indexes in name}
    python_ms, matvec_ms = machine_speed()
    print(f"machine speed: pure-Python loop {python_ms:.1f} ms, 75000 x 256 float32 matvec {matvec_ms:.1f} ms\n")
    songs = SongSearch()
    store, depth = songs.store, DEFAULT_FUSION.depth(10)
    ids = np.array(store.scroll_ids(W2V_ALIAS))
    points = {}
    for start in range(0, len(ids), 5000):
        points.update(store.retrieve(W2V_ALIAS, ids[start : start + 5000].tolist(), with_vectors=True))
    vectors = np.stack([points[int(i)].vector for i in ids]).astype(np.float32)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    rows = random.Random(1).sample(range(len(ids)), min(args.queries, len(ids)))
    exact = {r: ids[np.argsort(-(unit @ unit[r]), kind="stable")[:depth]].tolist() for r in rows}
    served = qe.QuantizationSearchParams(**quantization_params(index_settings(W2V_ALIAS), Search((Nearest(vectors[0]),), depth)))

    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for number, (name, spec) in enumerate(indexes.items()):
            shard, seconds = build(Path(tmp) / str(number), ids, vectors, spec)
            for ef in HNSW_EFS if "m" in spec else (None,):
                requests = [qe.QueryRequest(limit=depth, query=qe.Query.Nearest(vectors[r].tolist()), params=qe.SearchParams(hnsw_ef=ef, quantization=served)) for r in rows]
                found = [[int(p.id) for p in shard.query(q)] for q in requests]
                at10 = np.mean([len(set(f[:10]) & set(exact[r][:10])) / 10 for f, r in zip(found, rows)])
                at_depth = np.mean([len(set(f) & set(exact[r])) / depth for f, r in zip(found, rows)])
                table.append([name + (f", ef {ef}" if ef else ""), f"{seconds:.1f} s", f"{p50_ms(shard, requests):.2f} ms", f"{at10:.3f}", f"{at_depth:.3f}"])
            shard.close()
    print(f"{len(ids):,} songs, {vectors.shape[1]} dims, first stage {depth} deep, {len(rows)} songs drawn uniformly\n")
    print(markdown_table(["index", "build", "p50 (Edge call)", "recall@10", f"recall@{depth}"], table) + "\n")

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

"""Embedded backend: Qdrant Edge shards under one directory, no server.

Layout::

    <root>/collections/<physical name>/   one Edge shard per collection
    <root>/aliases.json                   {"songs_w2v": "songs_w2v__<v>", ...}

Shards are created without a write-ahead log, which lets several processes
open the same shard for reading.  Ingest only ever writes *new* shards, and
publishes them by replacing ``aliases.json`` in one ``os.replace``: a reader
sees the old pair of collections or the new pair, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import numpy as np
import qdrant_edge as qe

from search.contract import INT8_QUANTILE, Layout, index_settings, INTEGER_INDEXED_FIELDS, KEYWORD_INDEXED_FIELDS, TEXT_INDEXED_FIELDS, AliasesDamagedError, SongSearchError, StoreUnavailableError, split_physical_name
from search.store import Diversify, Hit, Point, Search, Store, error_line, left_out, point_batches
from search.store.edge_requests import edge_filter, edge_vector, mmr_request, query_request
from search.store.files import COPYING, STALE_S, check_free, copy_tree, older_than, private_copy, read_ahead, read_through, space_to_open

UPSERT_BATCH = 2000
#: Temporary names this backend creates (the janitor removes them): a collection being deleted
#: (or copied: files.COPYING), an aliases.json being written, Qdrant Edge's atomic writes in a shard.
DELETING, ALIASES_TMP, ENGINE_TMP = ".deleting-", ".aliases.", ".atomicwrite"
#: Qdrant Edge 0.9 has no read-only open: loading a shard rewrites its config and status files
#: and maps its files for writing (same bytes, but possibly into sparse pages); with less free
#: space than this a load could die by SIGBUS, so it is refused with one line instead
MIN_FREE_TO_OPEN = 4 << 20
#: what both collections of a version take a song, measured on yes_complete (301 MB, 75k songs),
#: with room to spare
BYTES_PER_POINT = 5000
#: and what a small collection takes whatever its points (segments, indexes, preallocated pages)
BYTES_PER_COLLECTION = 1 << 20


@contextmanager
def _writing(name: str):
    """The engine's errors (a full disk among them) as one line naming the collection."""
    try:
        yield
    except SongSearchError:
        raise
    except Exception as exc:  # noqa: BLE001 - Edge raises plain Exceptions
        raise SongSearchError(f"Qdrant Edge could not write collection {name}: {error_line(exc)}") from None


#: Threads a shard searches with (kept in its config).  Edge's default, one per CPU, reads the
#: segments in parallel: a published shard is one big segment and a small one, so a query gains
#: nothing, and `search serve`'s worker processes each woke a pool per query (tens of thousands
#: of context switches a second under load).  Parallelism comes from processes and threads asking.
SEARCH_THREADS = 1


class EdgeStore(Store):
    def __init__(self, root: Path):
        self.root = Path(root)
        self._collections_dir = self.root / "collections"
        self._aliases_file = self.root / "aliases.json"
        self._shards: dict[str, qe.EdgeShard] = {}
        #: one opening of a shard at a time (a served store answers on several threads)
        self._opening = threading.Lock()
        self._aliases: dict[str, str] = {}
        self._aliases_stamp: tuple | None = None

    # -- aliases --
    def aliases(self) -> dict[str, str]:
        try:
            st = self._aliases_file.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._aliases_stamp:  # re-read only when ingest has published
            self._aliases = self._read_aliases()
            self._aliases_stamp = stamp
        return dict(self._aliases)

    def _read_aliases(self) -> dict[str, str]:
        """aliases.json, checked: the one place that reads it.  Anything but an object of names
        (alias -> collection) is damaged, and `ingest rollback` rewrites it from the versions here."""
        try:
            aliases = json.loads(self._aliases_file.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError:
            aliases = None  # not JSON (or not UTF-8)
        if not (isinstance(aliases, dict) and all(isinstance(v, str) and v and "/" not in v and not v.startswith(".") for v in aliases.values())):
            raise AliasesDamagedError(f"{self._aliases_file} is damaged (not an object of alias names): `ingest rollback` rewrites it")
        return aliases

    def switch_aliases(self, mapping: dict[str, str]) -> None:
        for name in mapping.values():
            if not (self._collections_dir / name).is_dir():
                raise SongSearchError(f"cannot point an alias at missing collection {name}")
        try:
            merged = {**self._read_aliases(), **mapping}
        except AliasesDamagedError:
            merged = dict(mapping)  # rewriting a damaged file is how it is repaired
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=ALIASES_TMP, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(merged, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._aliases_file)

    def release_except(self, names) -> None:
        """Close cached shards other than ``names``: a long-lived reader must not keep
        every past version mapped (their files would never be freed)."""
        for name in set(self._shards) - set(names):
            self._shards.pop(name).close()

    def _resolve(self, collection: str) -> str:
        if split_physical_name(collection):  # a physical name needs no aliases.json (a writer's)
            return collection
        return self.aliases().get(collection, collection)

    def _missing(self, collection: str, name: str) -> str:
        """Why ``collection`` cannot be read, and the one command that fixes it."""
        where = f"{collection!r} (collection {name})" if name != collection else repr(collection)
        if self.collections():
            return f"{where} is not in {self.root}: `ingest rollback` points the aliases at a version on disk (`ingest versions` lists them)"
        return f"{where} is not in {self.root}: nothing is published, run `ingest` first"

    def _shard(self, collection: str) -> qe.EdgeShard:
        name = self._resolve(collection)
        shard = self._shards.get(name)
        if shard is None:
            with self._opening:
                shard = self._shards.get(name)
                if shard is None:
                    path = self._collections_dir / name
                    if not path.is_dir():
                        raise StoreUnavailableError(self._missing(collection, name))
                    shard = self._shards[name] = self._open(name, path)
        return shard

    def _open(self, name: str, path: Path) -> qe.EdgeShard:
        """Load a published shard.  The engine writes into a shard it loads (see MIN_FREE_TO_OPEN),
        so a home it cannot write (a read-only mount shared between containers) is served from a
        private copy."""
        if not os.access(path, os.W_OK):
            path = self._private_copy(name, path)
        check_free(path, MIN_FREE_TO_OPEN + space_to_open(path))
        read_ahead(path)
        try:
            return qe.EdgeShard.load(str(path))
        except Exception as exc:  # noqa: BLE001 - Edge raises plain Exceptions
            raise StoreUnavailableError(f"cannot open collection {name} in {self.root}: {error_line(exc)}") from None

    def _private_copy(self, name: str, path: Path) -> Path:
        """A copy of a published (never rewritten) shard, made once per home, version and user in
        the temp directory; copies of versions no longer here are removed."""
        base = Path(tempfile.gettempdir()) / f"songsearch-readonly-{os.getuid()}" / hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:16]
        return private_copy(path, base / name, set(self.collections()), MIN_FREE_TO_OPEN)

    # -- writing --
    def create_collection(self, name: str, dim: int, sparse_vectors=(), layout: Layout = Layout(), points: int = 0) -> None:
        path = self._collections_dir / name
        if path.exists():
            raise SongSearchError(f"collection {name} already exists")
        index = index_settings(name, layout.quantization, points)
        datatype = qe.VectorStorageDatatype.Float16 if index.float16 else None
        # int8 copies Cold: read ahead by readers (read_ahead), not paged in at every load;
        # with --quantization the stored vectors stay on disk too (read only to rescore)
        int8 = qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=INT8_QUANTILE, memory=qe.Memory.Cold) if index.quantization == "int8" else None
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine, datatype=datatype, memory=qe.Memory.Cold if layout.quantization or index.cold_vectors else None),
            quantization_config=int8,
            sparse_vectors={v: qe.EdgeSparseVectorParams(full_scan_threshold=index.sparse_full_scan_threshold) for v in sparse_vectors} or None,
            wal_enabled=False,
            hnsw_config=qe.HnswIndexConfig(
                m=index.hnsw_m, ef_construct=index.hnsw_ef_construct, full_scan_threshold=index.full_scan_threshold
            ),
            max_search_threads=SEARCH_THREADS,
            optimizers=qe.EdgeOptimizersConfig(
                indexing_threshold=index.indexing_threshold_kb,
                default_segment_number=1,
                deleted_threshold=index.deleted_threshold,
                vacuum_min_vector_number=index.vacuum_min_vector_number,
            ),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        with _writing(name):
            self._shards[name] = qe.EdgeShard.create(str(path), config)

    def upsert(self, name: str, ids, vectors: np.ndarray, payloads, sparse=None) -> None:
        shard = self._shard(name)
        with _writing(name):
            for batch in point_batches(ids, vectors, payloads, sparse, UPSERT_BATCH, edge_vector):
                shard.update(qe.UpdateOperation.upsert_points([qe.Point(i, v, p) for i, v, p in batch]))

    can_copy = True

    def copy_collection(self, source: str, target: str) -> None:
        """A file copy of a published shard (never written again, so the copy is consistent)."""
        destination = self._collections_dir / target
        if destination.exists():
            raise SongSearchError(f"collection {target} already exists")
        partial = destination.with_name(f"{COPYING}{target}")
        try:
            copy_tree(self._collections_dir / self._resolve(source), partial)
            os.replace(partial, destination)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)  # a full disk must not stay full
            raise

    def set_payloads(self, name: str, ids: Sequence[int], payloads: Sequence[dict]) -> None:
        shard = self._shard(name)
        with _writing(name):
            for song_id, payload in zip(ids, payloads):
                shard.update(qe.UpdateOperation.overwrite_payload([int(song_id)], payload))

    def finish_collection(self, name: str, reindex: bool = True, payload_indexes: bool = True) -> None:
        with _writing(name):
            self._finish(self._shard(name), reindex, payload_indexes)
            # Loading a shard rewrites its config and replays its journals the first time (later
            # loads write the same bytes back): done here, no search changes a published shard
            self._shards.pop(name).close()
            self._shards[name] = qe.EdgeShard.load(str(self._collections_dir / name))

    def _finish(self, shard: qe.EdgeShard, reindex: bool, payload_indexes: bool) -> None:
        if reindex:  # a small delta stays in a plain segment: exact search over it is cheap
            shard.flush()
            shard.optimize()
        if not payload_indexes:
            shard.flush()
            return
        # payload indexes built after the optimizer, once, on the segment it made (before it,
        # they were built on the plain segment and again by the optimizer); no payload-aware
        # HNSW links: an artist has few songs, which the payload index scans exactly, and the
        # extra graphs tripled the indexing time.  Cold: memory-mapped as written, where an index
        # held in RAM is rebuilt from its files at every load, by every `search` process, for
        # filters most of them never use; but artist_key's, which a scan consults at every point
        # it reads when an artist is excluded (must_not), twice as slow from the map
        cold = qe.Memory.Cold
        for field in KEYWORD_INDEXED_FIELDS:
            schema = qe.KeywordIndexParams(enable_hnsw=False, memory=None if field == "artist_key" else cold)
            shard.update(qe.UpdateOperation.create_field_index(field, schema))
        for field in INTEGER_INDEXED_FIELDS:
            schema = qe.IntegerIndexParams(lookup=False, range=True, enable_hnsw=False, memory=cold)
            shard.update(qe.UpdateOperation.create_field_index(field, schema))
        for field in TEXT_INDEXED_FIELDS:
            schema = qe.TextIndexParams(tokenizer=qe.TokenizerType.Word, lowercase=True, scoring=True, enable_hnsw=False, memory=cold)
            shard.update(qe.UpdateOperation.create_field_index(field, schema))
        shard.flush()

    def delete_collection(self, name: str) -> None:
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        path = self._collections_dir / name
        if path.exists():
            # rename first so that a half-deleted shard never sits under a valid name
            trash = path.with_name(f"{DELETING}{name}-{os.getpid()}")
            os.replace(path, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def check_space(self, points: int) -> None:
        """The engine writes through memory maps: on a full disk that is a SIGBUS, not an error."""
        self.root.mkdir(parents=True, exist_ok=True)
        check_free(self.root, points * BYTES_PER_POINT + 2 * BYTES_PER_COLLECTION + MIN_FREE_TO_OPEN)

    def temporaries(self) -> list[Path]:
        found = list(self.root.glob(f"{ALIASES_TMP}*.tmp"))
        if self._collections_dir.is_dir():
            found += [p for p in self._collections_dir.iterdir() if p.name.startswith((DELETING, COPYING))]
            # os.walk, not glob: a search renames its engine temporaries away while this looks
            for directory, subdirs, files in os.walk(self._collections_dir):
                found += [p for p in map(Path(directory).joinpath, subdirs + files)
                          if p.name.startswith(ENGINE_TMP) and older_than(p, STALE_S)]
        return found

    def collections(self) -> list[str]:
        if not self._collections_dir.is_dir():
            return []
        return sorted(p.name for p in self._collections_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    # -- reading --
    def count(self, collection: str, flt: PayloadFilter | None = None) -> int:
        return self._shard(collection).count(qe.CountRequest(filter=edge_filter(flt), exact=True))

    def exists(self, collection: str, flt: PayloadFilter) -> bool:
        request = qe.ScrollRequest(limit=1, filter=edge_filter(flt), with_payload=False, with_vector=False)
        return bool(self._shard(collection).scroll(request)[0])

    def retrieve(self, collection: str, ids, with_vectors: bool = False, with_payload: bool = True) -> dict[int, Point]:
        records = self._shard(collection).retrieve([int(i) for i in ids], with_payload=with_payload, with_vector=with_vectors)
        return {int(r.id): Point.from_record(r, with_vectors) for r in records}

    def scroll_ids(self, collection: str) -> list[int]:
        shard, ids, offset = self._shard(collection), [], None
        while True:
            points, offset = shard.scroll(qe.ScrollRequest(offset=offset, limit=10_000, with_payload=False, with_vector=False))
            ids.extend(int(p.id) for p in points)
            if offset is None:
                return sorted(ids)

    def warm(self, collection: str) -> None:
        """Every file of the shard, but stored vectors it keeps on disk by design: read as files,
        without the GIL, so that the answers given meanwhile do not wait."""
        name = self._resolve(collection)
        cold = index_settings(name).cold_vectors
        files = sorted(p for p in (self._collections_dir / name).rglob("*") if not (cold and p.parent.name == "vector_storage" and p.name == "matrix.dat"))
        read_through(files)

    def search_text(self, collection: str, field: str, text: str, limit: int, flt: PayloadFilter | None = None) -> list[Hit]:
        request = qe.QueryRequest(limit=limit, query=qe.TextQuery(field, text), filter=edge_filter(flt), with_payload=True)
        shard = self._shard(collection)
        try:
            points = shard.query(request)
        except Exception as exc:  # noqa: BLE001 - Edge raises plain Exceptions
            if "text index" not in str(exc):
                raise
            raise SongSearchError(f"{collection} has no full-text index on {field!r}: it predates finding songs by name, run `ingest` again") from None
        return [Hit(int(p.id), float(p.score), p.payload) for p in points]

    def facet(self, collection: str, key: str, limit: int, flt: PayloadFilter | None = None) -> list[tuple[str, int]]:
        hits = self._shard(collection).facet(qe.FacetRequest(key, limit=limit, exact=True, filter=edge_filter(flt))).hits
        return sorted(((h.value, int(h.count)) for h in hits), key=lambda vc: (-vc[1], vc[0]))

    def quantization(self, collection: str) -> str | None:
        """From the shard's own configuration file (``edge_config.json``, written by Edge)."""
        path = self._collections_dir / self._resolve(collection) / "edge_config.json"
        try:
            config = json.loads(path.read_text()).get("quantization_config") or {}
        except FileNotFoundError:
            raise StoreUnavailableError(f"collection {collection!r} is not in {self.root}: run `ingest` first") from None
        return (config.get("scalar") or {}).get("type")

    def _query(self, collection: str, request: Search, with_payload: bool | Sequence[str] = True) -> list[Hit]:
        limit = request.limit
        request, excluded = request.over_asked()
        points = self._shard(collection).query(query_request(request, index_settings(collection), with_payload))
        return left_out([Hit(int(p.id), float(p.score), p.payload) for p in points], excluded, limit)

    def _mmr(self, collection: str, mmr: Diversify, ids: Sequence[int], limit: int) -> list[Hit]:
        return [Hit(int(p.id), float(p.score), p.payload) for p in self._shard(collection).query(mmr_request(mmr, ids, limit))]

    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()

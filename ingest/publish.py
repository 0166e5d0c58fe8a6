"""Versioned collections behind the public aliases.

Every ingest writes a new pair of physical collections
(``songs_w2v__<version>``, ``songs_meta__<version>``), checks them, and only
then points both aliases at them in one atomic switch.  Versions sort by
name (a UTC timestamp), so a version newer than the live one that is not live
is what a dead or refused ingest left behind; older ones are kept for
rollback, ``keep`` in all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from ingest.collections import CollectionData
from search.contract import ALIASES, W2V_ALIAS, Layout, SongSearchError, physical_name, split_physical_name
from search.store import Nearest, Search, Store

PROBE_DEPTH = 10
#: Derive a version from the live one when at most this share of points changed;
#: beyond it a fresh, fully indexed collection is cheaper to query.
MAX_DELTA_SHARE = 0.3


@dataclass(frozen=True)
class Version:
    name: str
    live: bool
    complete: bool


def new_version_name() -> str:
    now = time.time()
    return time.strftime("%Y%m%dt%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}"


def _upsert(store: Store, name: str, data: CollectionData, rows: Sequence[int], progress, batch: int = 5000) -> None:
    if progress is not None:
        progress.reset(total=len(rows))
    for start in range(0, len(rows), batch):
        chunk = list(rows[start : start + batch])
        sparse = {vector: [rows_of[i] for i in chunk] for vector, rows_of in data.sparse.items()}
        store.upsert(name, data.ids[chunk], data.vectors[chunk], [data.payloads[i] for i in chunk], sparse)
        if progress is not None:
            progress.update(len(chunk))


def write_collection(
    store: Store,
    name: str,
    data: CollectionData,
    digests: dict[int, str],
    base: tuple[str, dict[int, str]] | None = None,
    progress=None,
    layout: Layout = Layout(),
) -> int:
    """Write ``data`` as collection ``name``; returns how many points were written.

    A new collection is created with ``layout``; with ``base`` (a live collection of the same
    layout, and its point digests), a backend that can
    copy collections starts from a copy when few points changed, and writes
    only new or moved vectors and changed payloads: a re-ingest with unchanged
    metadata writes nothing, an update only what its playlists touched.
    """
    if base is not None:
        base_name, base_digests = base
        upserts, payload_only = [], []
        for row, song_id in enumerate(data.ids):
            old = base_digests.get(int(song_id))
            if old is None or old.split(":")[0] != digests[int(song_id)].split(":")[0]:
                upserts.append(row)  # a new point, or a moved vector
            elif old != digests[int(song_id)]:
                payload_only.append(row)
        moved = len(upserts) - len(set(map(int, data.ids[upserts])) - set(base_digests))
        removed = set(base_digests) - set(digests)
        if store.can_copy and not removed and len(upserts) + len(payload_only) <= MAX_DELTA_SHARE * len(data.ids):
            store.copy_collection(base_name, name)
            if payload_only:  # updated in place: the vector index stays as it is
                store.set_payloads(name, data.ids[payload_only], [data.payloads[r] for r in payload_only])
            _upsert(store, name, data, upserts, progress)
            # A moved vector leaves its old node deleted in the copied HNSW graph; the songs
            # an update moves are the popular ones, the graph's hubs, and searches missed
            # whole regions until the segment was rebuilt (vacuumed) without them.
            store.finish_collection(name, reindex=bool(moved))
            return len(upserts) + len(payload_only)
    store.create_collection(name, data.dim, sorted(data.sparse), layout)
    _upsert(store, name, data, range(len(data.ids)), progress)
    if progress is not None:
        progress.set_description(f"indexing {name}")
    store.finish_collection(name)
    return len(data.ids)


def verify_collection(store: Store, name: str, data: CollectionData) -> None:
    """Point count matches and a probe query finds its own point: else nothing is published.

    The probe is the most played song: a barely trained long-tail song may
    legitimately sit where the HNSW graph does not reach it.
    """
    count = store.count(name)
    if count != len(data.ids):
        raise SongSearchError(f"{name} holds {count} points, expected {len(data.ids)}: not published")
    probe = max(range(len(data.ids)), key=lambda row: (data.payloads[row].get("plays", 0), -row))
    probe_id = int(data.ids[probe])
    hits = store.search(name, Search((Nearest(data.vectors[probe]),), PROBE_DEPTH))
    if probe_id not in {h.song_id for h in hits}:
        raise SongSearchError(f"{name}: probe query for song {probe_id} does not find it: not published")


def versions(store: Store) -> list[Version]:
    """All versions present, oldest first."""
    by_version: dict[str, set[str]] = {}
    for name in store.collections():
        parsed = split_physical_name(name)
        if parsed:
            by_version.setdefault(parsed[1], set()).add(parsed[0])
    live = live_version(store)
    return [
        Version(name=v, live=(v == live), complete=(by_version[v] == set(ALIASES)))
        for v in sorted(by_version)
    ]


def live_version(store: Store) -> str | None:
    target = store.aliases().get(W2V_ALIAS)
    parsed = split_physical_name(target) if target else None
    return parsed[1] if parsed else None


def switch_to(store: Store, version: str) -> None:
    store.switch_aliases({alias: physical_name(alias, version) for alias in ALIASES})


def _drop_version(store: Store, version: str) -> None:
    existing = set(store.collections())
    for alias in ALIASES:
        if physical_name(alias, version) in existing:
            store.delete_collection(physical_name(alias, version))


def remove_leftovers(store: Store) -> list[str]:
    """Drop versions a dead or refused ingest left: incomplete ones, and complete ones newer than live.

    With no live version (aliases lost), complete versions are kept: `ingest rollback` can
    point the aliases at the newest again.
    """
    live = live_version(store)
    dropped = []
    for v in versions(store):
        if not v.live and (not v.complete or (live is not None and v.name > live)):
            _drop_version(store, v.name)
            dropped.append(v.name)
    return dropped


def prune(store: Store, keep: int) -> list[str]:
    """Keep the live version and the newest older ones, ``keep`` in all."""
    live = live_version(store)
    published = [v.name for v in versions(store) if v.complete and live is not None and v.name <= live]
    doomed = published[: max(0, len(published) - max(1, keep))]
    for name in doomed:
        _drop_version(store, name)
    return doomed


def publish(store: Store, version: str, collections: dict[str, CollectionData], keep: int) -> list[str]:
    for alias, data in collections.items():
        verify_collection(store, physical_name(alias, version), data)
    switch_to(store, version)
    return prune(store, keep)


def rollback(store: Store) -> str:
    """Point the aliases at the newest complete version older than the live one."""
    live = live_version(store)
    complete = [v.name for v in versions(store) if v.complete]
    if live is None:
        if not complete:
            raise SongSearchError("nothing is published yet: run `ingest` first")
        switch_to(store, complete[-1])  # the aliases were lost: serve the newest complete version
        return complete[-1]
    older = [name for name in complete if name < live]
    if not older:
        raise SongSearchError(f"no older version to roll back to (live: {live}); `ingest versions` lists them")
    switch_to(store, older[-1])
    return older[-1]


def delete_unpublished(store: Store, version: str) -> None:
    """Clean up after a failed ingest of ``version`` (which did not go live)."""
    _drop_version(store, version)

"""Versioned collections behind the public aliases.

Every ingest writes a new pair of physical collections
(``songs_w2v__<version>``, ``songs_meta__<version>``), checks them, and only
then points both aliases at them in one atomic switch.  Versions sort by
name (a UTC timestamp); :func:`retained` is the retention policy (what an
ingest keeps for rollback, ``keep`` in all, and what it drops and names).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ingest.collections import CollectionData
from search.contract import ALIASES, W2V_ALIAS, AliasesDamagedError, Layout, SongSearchError, physical_name, split_physical_name
from search.store import Nearest, Search, Store

PROBE_DEPTH = 10
#: Derive a version from the live one when at most this share of points changed;
#: beyond it a fresh, fully indexed collection is cheaper to query.
MAX_DELTA_SHARE = 0.3


@dataclass(frozen=True)
class Version:
    name: str
    #: the aliases point at it, and both its collections are there
    live: bool
    complete: bool
    #: ``live``, ``kept`` (older than live: a rollback target), ``newer than live`` (rolled back
    #: from, or left complete by a killed ingest) or ``incomplete`` (a failed or killed ingest's)
    state: str = ""
    #: whether the next ingest (with the ``keep`` asked for) removes it
    dropped_next: bool = False


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
    digests: dict[int, str] | None = None,
    base: tuple[str, dict[int, str]] | None = None,
    progress=None,
    layout: Layout = Layout(),
    payload_indexes: bool = True,
    release: bool = False,
) -> int:
    """Write ``data`` as collection ``name``; returns how many points were written.

    A new collection is created with ``layout``; with ``base`` (a live collection of the same
    layout, and its point digests) and ``data``'s ``digests``, a backend that can
    copy collections starts from a copy when few points changed, and writes
    only new or moved vectors and changed payloads: a re-ingest with unchanged
    metadata writes nothing, an update only what its playlists touched.  Without
    ``payload_indexes`` a new collection answers no faster when filtered (the gate asks no filter).
    ``release``: ``data`` lets go of its vectors once they are sent, before the index is built.
    """
    if base is not None and digests is not None:
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
            if release:
                data.release_vectors()
            # A moved vector leaves its old node deleted in the copied HNSW graph; the songs
            # an update moves are the popular ones, the graph's hubs, and searches missed
            # whole regions until the segment was rebuilt (vacuumed) without them.
            store.finish_collection(name, reindex=bool(moved))
            return len(upserts) + len(payload_only)
    store.create_collection(name, data.dim, sorted(data.sparse), layout, len(data.ids))
    _upsert(store, name, data, range(len(data.ids)), progress)
    if release:
        data.release_vectors()
    if progress is not None:
        progress.set_description(f"indexing {name}")
    store.finish_collection(name, payload_indexes=payload_indexes)
    return len(data.ids)


def verify_collection(store: Store, name: str, points: int, probe: tuple[int, np.ndarray]) -> None:
    """The collection holds ``points`` points and a query with the ``probe`` point's vector
    (:meth:`CollectionData.probe`) finds it: else nothing is published.

    The probe is the most played song: a barely trained long-tail song may
    legitimately sit where the HNSW graph does not reach it.
    """
    count = store.count(name)
    if count != points:
        raise SongSearchError(f"{name} holds {count} points, expected {points}: not published")
    probe_id, vector = probe
    hits = store.search(name, Search((Nearest(vector),), PROBE_DEPTH))
    if probe_id not in {h.song_id for h in hits}:
        raise SongSearchError(f"{name}: probe query for song {probe_id} does not find it: not published")


def versions(store: Store, keep: int | None = None) -> list[Version]:
    """All versions present, oldest first; with ``keep``, marked with what the next ingest drops."""
    by_version: dict[str, set[str]] = {}
    for name in store.collections():
        parsed = split_physical_name(name)
        if parsed:
            by_version.setdefault(parsed[1], set()).add(parsed[0])
    complete = {v for v, aliases in by_version.items() if aliases == set(ALIASES)}
    live = live_version(store)
    live = live if live in complete else None  # aliases at a missing collection serve nothing
    kept = set(retained(sorted(complete), live, keep)) if keep is not None else set(by_version)
    return [
        Version(name=v, live=(v == live), complete=(v in complete), state=_state(v, live, v in complete), dropped_next=v not in kept)
        for v in sorted(by_version)
    ]


def _state(version: str, live: str | None, complete: bool) -> str:
    if not complete:
        return "incomplete"
    if version == live:
        return "live"
    return "newer than live" if live is not None and version > live else "kept"


def retained(complete: list[str], previous: str | None, keep: int, new: str | None = None) -> list[str]:
    """The retention policy, in one place: what an ingest publishing ``new`` keeps, ``keep`` in all.

    First the new version, then the version live before it (the rollback target), then the
    complete versions older than that one, newest first.  Versions newer than the previous live
    one (rolled back from, or left complete by a killed ingest) are the first to go, then the
    oldest.  With ``new`` None: what the next ingest will keep of the versions here now.
    """
    if previous is not None:
        candidates = [previous] + sorted((v for v in complete if v < previous), reverse=True)
    else:  # the aliases were lost: the newest ones
        candidates = sorted((v for v in complete if v != new), reverse=True)
    return ([new] if new else []) + candidates[: max(0, keep - 1)]


def aliases_problem(store: Store) -> str | None:
    """Why the aliases cannot be read (damaged), or None."""
    try:
        store.aliases()
    except AliasesDamagedError as exc:
        return str(exc)
    return None


def live_version(store: Store) -> str | None:
    """The version the aliases point at; None when nothing is published or aliases.json is
    damaged (for a writer, a damaged file is one to rewrite, not a reason to stop)."""
    try:
        target = store.aliases().get(W2V_ALIAS)
    except AliasesDamagedError:
        return None
    parsed = split_physical_name(target) if target else None
    return parsed[1] if parsed else None


def switch_to(store: Store, version: str) -> None:
    store.switch_aliases({alias: physical_name(alias, version) for alias in ALIASES})


def _drop_version(store: Store, version: str) -> None:
    existing = set(store.collections())
    for alias in ALIASES:
        if physical_name(alias, version) in existing:
            store.delete_collection(physical_name(alias, version))


def remove_incomplete(store: Store) -> list[str]:
    """Drop versions a failed or killed ingest left incomplete (never served, never listed as kept).

    Complete versions stay until an ingest publishes and names what its retention drops.
    """
    dropped = [v.name for v in versions(store) if not v.complete]
    for name in dropped:
        _drop_version(store, name)
    return dropped


def prune(store: Store, keep: int, previous: str | None, new: str) -> list[str]:
    """Drop what the retention policy does not keep, now that ``new`` is live (see :func:`retained`)."""
    found = versions(store)
    kept = set(retained([v.name for v in found if v.complete], previous, keep, new))
    doomed = [v.name for v in found if v.name not in kept]
    for name in doomed:
        _drop_version(store, name)
    return doomed


def publish(store: Store, version: str, keep: int) -> list[str]:
    """Switch to ``version`` (its collections written and verified), prune; returns every version dropped."""
    previous = next((v.name for v in versions(store) if v.live), None)  # only a version that serves
    switch_to(store, version)
    return prune(store, keep, previous, version)


def rollback(store: Store) -> str:
    """Point the aliases at the newest complete version older than the live one; when the aliases
    are missing, damaged or point at a missing collection, at the newest complete version."""
    found = versions(store)
    complete = [v.name for v in found if v.complete]
    live = next((v.name for v in found if v.live), None)
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

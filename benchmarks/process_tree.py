"""The peak resident memory of a process and all its descendants together (an ingest and its
quality-gate process run side by side, so their peaks add up), sampled from /proc on Linux, and
a memory cgroup to run a process tree under a limit."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

SAMPLE_SECONDS = 0.05


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for task in tasks:
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return found


def _rss_mib(pid: int) -> tuple[float, float]:
    """(RSS, its anonymous and shared-memory part) of ``pid`` in MiB: the rest of RSS is pages of
    memory-mapped files, page cache the kernel takes back under pressure."""
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssShmem"):
                fields[name] = int(value.split()[0]) / 1024
    except (OSError, ValueError):
        pass
    return fields.get("VmRSS", 0.0), fields.get("RssAnon", 0.0) + fields.get("RssShmem", 0.0)


def tree_rss_mib(pid: int) -> tuple[float, float]:
    """The summed (RSS, anonymous RSS) in MiB of ``pid`` and its descendants now; 0 where /proc
    cannot tell."""
    pids, seen = [pid], 0
    while seen < len(pids):
        pids += _children(pids[seen])
        seen += 1
    both = [_rss_mib(p) for p in pids]
    return sum(r for r, _ in both), sum(a for _, a in both)


class TreePeak:
    """``with TreePeak(pid) as peak: ...`` samples the tree until the block ends; ``peak.mib``
    (RSS) and ``peak.anon_mib`` (its anonymous part), each its own peak."""

    def __init__(self, pid: int):
        self.pid, self.mib, self.anon_mib = pid, 0.0, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(SAMPLE_SECONDS):
            rss, anon = tree_rss_mib(self.pid)
            self.mib, self.anon_mib = max(self.mib, rss), max(self.anon_mib, anon)

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


MEMORY_CGROUPS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory"))  # cgroup v2, v1


@contextlib.contextmanager
def memory_cgroup(limit_bytes: int):
    """A new memory cgroup limited to ``limit_bytes`` (page cache included, which the kernel
    reclaims to stay under it; no swap here), removed afterwards.  Yields (the file a process
    writes its pid into to join, a function returning the group's peak usage in bytes).
    Needs root and a cgroup file system; SystemExit if there is none."""
    name = f"songsearch-scale-{os.getpid()}"
    for root in MEMORY_CGROUPS:
        v2 = (root / "cgroup.controllers").is_file()
        if v2 and "memory" not in (root / "cgroup.controllers").read_text().split():
            continue
        if not v2 and not (root / "memory.limit_in_bytes").is_file():
            continue
        group = root / name
        try:
            group.mkdir()
        except OSError as exc:
            raise SystemExit(f"cannot make a memory cgroup in {root}: {exc.strerror} (needs root)") from None
        try:
            (group / ("memory.max" if v2 else "memory.limit_in_bytes")).write_text(str(limit_bytes))
            peak_file = group / ("memory.peak" if v2 else "memory.max_usage_in_bytes")
            yield group / "cgroup.procs", lambda: int(peak_file.read_text().split()[0])
        finally:
            group.rmdir()
        return
    raise SystemExit("no memory cgroup to run under a limit (--memory-limit): no cgroup file system with the memory controller")

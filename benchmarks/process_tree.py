"""The peak resident memory of a process and all its descendants together (an ingest and its
quality-gate process run side by side, so their peaks add up), sampled from /proc on Linux."""

from __future__ import annotations

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


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def tree_rss_mib(pid: int) -> float:
    """The summed RSS (MiB) of ``pid`` and its descendants now; 0 where /proc cannot tell."""
    pids, seen = [pid], 0
    while seen < len(pids):
        pids += _children(pids[seen])
        seen += 1
    return sum(map(_rss_mib, pids))


class TreePeak:
    """``with TreePeak(pid) as peak: ...`` samples the tree until the block ends; ``peak.mib``."""

    def __init__(self, pid: int):
        self.pid, self.mib = pid, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(SAMPLE_SECONDS):
            self.mib = max(self.mib, tree_rss_mib(self.pid))

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

"""Files of the embedded store: sparse copies, real disk use, free space, reading ahead."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time
from pathlib import Path

from search.contract import StoreUnavailableError

COPY_CHUNK = 1 << 20
#: the temporary name of a directory being copied (the ingest janitor removes killed copies)
COPYING = ".copying-"
#: a temporary younger than this may belong to a process at work on it right now
STALE_S = 300


def older_than(path: Path, seconds: float) -> bool:
    """False for a path that is gone (the process that made it may just have renamed it)."""
    try:
        return path.lstat().st_mtime < time.time() - seconds
    except FileNotFoundError:
        return False


def private_copy(source: Path, target: Path, keep: set[str], reserve: int) -> Path:
    """``target``, a copy of ``source`` made once (concurrent makers race harmlessly); the other
    entries of its directory not named in ``keep`` are removed, save copies in the making."""
    if target.is_dir():
        return target
    base = target.parent
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():
        if old.name not in keep and (not old.name.startswith(COPYING) or older_than(old, STALE_S)):
            shutil.rmtree(old, ignore_errors=True)
    check_free(base, disk_usage(source) + reserve)
    partial = base / f"{COPYING}{target.name}-{os.getpid()}"
    try:
        copy_tree(source, partial)
        os.replace(partial, target)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        if not target.is_dir():  # else another process made the copy first
            raise
    return target


def check_free(path: Path, need: int) -> None:
    """One line instead of a write that would fail (or, into a memory map, kill by SIGBUS)."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    if free < need:
        raise StoreUnavailableError(f"not enough space for {path}: {free >> 20} MB free on its file system, about {(need >> 20) + 1} MB needed: free some space")


def file_system_type(path: Path) -> str:
    """The type of the file system holding ``path`` (``ext4``, ``tmpfs``...), from /proc/self/mounts."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return ""
    target, best, kind = os.path.realpath(path), "", ""
    for line in mounts:
        fields = line.split()
        point = fields[1].replace("\\040", " ") if len(fields) > 2 else ""
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def space_to_open(shard: Path) -> int:
    """Space Qdrant Edge may take when it opens ``shard``: nothing on a disk, but on a tmpfs
    reading a hole of a shared memory map allocates it, so the holes of its sparse files fill."""
    if file_system_type(shard) != "tmpfs":
        return 0
    return sum(max(0, st.st_size - st.st_blocks * 512) for st in _file_stats(shard))


def _file_stats(directory: Path):
    for path in directory.rglob("*"):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            yield st


def disk_usage(path: Path) -> int:
    """Bytes a directory really takes (its sparse files' holes take none)."""
    return sum(st.st_blocks * 512 for st in _file_stats(path))


def copy_tree(source: Path, target: Path) -> None:
    """Copy a shard directory, keeping its files sparse (Qdrant preallocates its memory maps as
    holes: a dense copy takes many times the space); the first error raises as it is."""
    for directory, _, files in os.walk(source):
        into = target / Path(directory).relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            _copy_sparse(Path(directory) / name, into / name)


def _copy_sparse(source: Path, target: Path) -> None:
    with open(source, "rb") as fin, open(target, "wb") as fout:
        size, offset = os.fstat(fin.fileno()).st_size, 0
        while offset < size:
            try:
                start = os.lseek(fin.fileno(), offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole is left
                    break
                raise
            end = os.lseek(fin.fileno(), start, os.SEEK_HOLE)
            for at in range(start, end, COPY_CHUNK):
                os.pwrite(fout.fileno(), os.pread(fin.fileno(), min(COPY_CHUNK, end - at), at), at)
            offset = end
        fout.truncate(size)


def read_through(paths) -> None:
    """Read each file once, in order, into the page cache."""
    for path in paths:
        if path.is_file():
            with open(path, "rb") as f:
                while f.read(1 << 22):
                    pass


def read_ahead(shard_dir: Path) -> None:
    """Read a shard's int8 vector copies, and the stored vectors their searches rescore, once
    and in order before loading it.  Qdrant maps both for random access, so the first searches
    would otherwise fault them in page by page from disk: far slower than one sequential read
    where the page cache has let them go."""
    for quantized in shard_dir.glob("segments/*/vector_storage/quantized.data"):
        read_through((quantized, quantized.with_name("matrix.dat")))

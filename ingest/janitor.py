"""The janitor: every temporary name the project creates, in one place.

It runs under the ingest lock at the start of every ingest and rollback, and
again after a publish, so that nothing a killed, failed or disk-full run left
behind survives the next ingest:

* the store's own temporaries (embedded: collections being copied or
  deleted, an aliases.json being written, Qdrant Edge's ``.atomicwrite*``),
  and versions a failed ingest left incomplete;
* model directories of versions no longer in the store (a killed ingest's
  partial one, a dropped version's);
* the title cache's ``*.tmp.npz``, half-downloaded dataset files (``*.part``);
* the publish gate's throwaway stores in the system temp directory, of
  processes that are gone.

The ONNX export cleans its own temporaries (``ingest/onnx_title.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ingest import publish as pub
from ingest.evaluation.served import TEMP_PREFIX as GATE_TEMP_PREFIX
from search.contract import Settings
from search.store import Store


def sweep(settings: Settings, store: Store) -> list[str]:
    """Remove every leftover; returns the incomplete versions dropped."""
    _remove(store.temporaries())
    dropped = pub.remove_incomplete(store)
    present = {v.name for v in pub.versions(store)}
    _remove(p for p in _children(settings.models_dir) if p.name not in present)
    _remove(settings.cache_dir.glob("*.tmp.npz") if settings.cache_dir.is_dir() else ())
    _remove((settings.home / "datasets").glob("*/*.part") if (settings.home / "datasets").is_dir() else ())
    _remove(p for p in Path(tempfile.gettempdir()).glob(f"{GATE_TEMP_PREFIX}*") if not _alive(p.name[len(GATE_TEMP_PREFIX):].partition("-")[0]))
    return dropped


def _children(directory: Path):
    return directory.iterdir() if directory.is_dir() else ()


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return True  # not one of ours by name: leave it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(paths) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

"""kill -9 at each stage of an ingest (issue 10): the live version keeps serving, and the next
ingest succeeds and leaves nothing the killed one created.  (Killed while upserting:
tests/test_versions.py.)"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ingest import publish as pub
from search.api import SongSearch
from search.contract import Settings
from search.store import open_store
from search.store.files import copy_tree
from tests.conftest import ingest_into, ingest_planted

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: where each stage is killed: code run in the ingest's process before it starts
STAGES = {
    # songs_w2v is written; the gate, in its own process, builds its throwaway store in the
    # system temp directory: it dies with the ingest
    "quality gate": "import ingest.gate as m\nm.GateProcess.result = lambda self: (time.sleep(1), die())",
    "save model": "import ingest.model_dir as m\nm.ModelDir.save_catalogue = die",
    "encode metadata": "import ingest.pipeline as m\nm.meta_collection = die",
    # the same data again: the embedded store copies the live collections
    "copy collection": "import search.store.files as m\nreal, calls = m._copy_sparse, []\n"
                       "def copy(*a):\n    calls.append(1)\n    die() if len(calls) == 5 else real(*a)\nm._copy_sparse = copy",
    "switch aliases": "real = os.replace\n"
                      "def replace(src, dst):\n    die() if str(dst).endswith('aliases.json') else real(src, dst)\nos.replace = replace",
    "drop old versions": "import shutil\nreal = shutil.rmtree\n"
                         "def rmtree(path, *a, **k):\n    die() if Path(path).name.startswith('.deleting-') else real(path, *a, **k)\nshutil.rmtree = rmtree",
}

SCRIPT = """
import os, signal, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from search.contract import Settings
from tests.conftest import PlantedData, ingest_planted

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

{patch}
ingest_planted(PlantedData(Path({data!r}), {{}}, {{}}), Settings.from_env(), keep=1)
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return ingest_into(tmp_path_factory.mktemp("kill"))


def leftovers(settings: Settings, pid: int) -> list[str]:
    """Everything a run creates that is not a published version's: incomplete versions, temporaries,
    partial or orphan model files."""
    with open_store(settings) as store:
        present = {v.name for v in pub.versions(store)}
        found = [f"incomplete version {v.name}" for v in pub.versions(store) if not v.complete]
    found += [str(p) for p in settings.embedded_dir.rglob(".*")]
    found += [str(p) for p in settings.models_dir.iterdir() if p.name not in present]
    found += [str(p) for p in Path(tempfile.gettempdir()).glob(f"songsearch-eval-{pid}-*")]
    return found + [f"a quality gate process left running: {' '.join(c)}" for c in gate_processes()]


def gate_processes() -> list[list[str]]:
    """Command lines of quality gate processes not this test's."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            parent = int(status.read_text().split("PPid:")[1].split()[0])
            command = (status.parent / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent != os.getpid() and any("gate_process()" in part for part in command):
            found.append(command)
    return found


@pytest.mark.parametrize("stage", list(STAGES))
def test_kill_9_at_each_stage_keeps_a_live_version_and_the_next_ingest_leaves_nothing(template, tmp_path, monkeypatch, stage):
    source, planted, live = template
    copy_tree(source, tmp_path / "home")
    monkeypatch.setenv("SONGSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QDRANT_URL", raising=False)
    settings = Settings.from_env()
    script = SCRIPT.format(root=ROOT, data=str(planted.directory), patch=STAGES[stage])
    killed = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy(), stderr=subprocess.PIPE, text=True)
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, err
    deadline = time.monotonic() + 10  # the gate's process gets its SIGKILL as its parent dies
    while gate_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gate_processes() == []
    with open_store(settings) as store:
        serving = pub.live_version(store)
        assert serving == live or stage == "drop old versions"  # dropping comes after the switch
        assert SongSearch(store=store, settings=settings).similar(0, limit=3)
    assert leftovers(settings, killed.pid)  # each stage leaves something behind
    following = ingest_planted(planted, settings)
    assert leftovers(settings, killed.pid) == []
    with open_store(settings) as store:
        assert pub.live_version(store) == following.version

"""The fault suite: what a hostile but fair user breaks (issue 10), kept fixed.

Bad arguments and environments, damaged files, retention across rollbacks, leftovers of
killed runs, full disks, read-only homes and broken servers.  Every failure is one line and
a non-zero exit, the live version keeps serving, and the next ingest leaves nothing behind.
docs/reliability.md lists what each test keeps.
"""

import errno
import hashlib
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import http.server
from pathlib import Path

import pytest

from ingest.cli import _print_summary, cli as ingest_cli
from search.cli import cli as search_cli
from search.contract import Settings
from search.store.files import copy_tree
from tests.conftest import TEST_W2V, ingest_into, ingest_planted
from tests.test_cli import FAKE_ENCODER, one_line_error

#: TEST_W2V as `ingest` options
TEST_OPTIONS = ["--epochs", "30", "--vector-size", "16", "--window", "5", "--negative", "5", "--sample", "1e-3",
                "--ns-exponent", "0.75", "--seed", "7", "--workers", "1"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One ingested home, copied (sparse) by the tests that damage theirs."""
    return ingest_into(tmp_path_factory.mktemp("faults"))


@pytest.fixture
def home(template, tmp_path, monkeypatch):
    """A fresh copy of the ingested home as SONGSEARCH_HOME: (settings, planted, live version)."""
    source, planted, version = template
    copy_tree(source, tmp_path / "home")
    monkeypatch.setenv("SONGSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QDRANT_URL", raising=False)
    return Settings.from_env(), planted, version


def versions_json(runner, *args) -> dict:
    result = runner.invoke(ingest_cli, ["versions", "--json", *args])
    assert result.exit_code == 0, result.output
    return {v["name"]: v for v in json.loads(result.stdout)}


def serves(runner) -> bool:
    return runner.invoke(search_cli, ["similar", "--id", "0", "--limit", "3"]).exit_code == 0


# -- 1. retention: nothing the user was told is kept disappears without a line --

def test_a_version_rolled_back_from_is_shown_dropped_next_and_named_when_dropped(runner, home, capsys):
    settings, planted, first = home
    second = ingest_planted(planted, settings, w2v=TEST_W2V.with_options(seed=3)).version
    assert runner.invoke(ingest_cli, ["rollback"]).exit_code == 0
    listed = versions_json(runner)
    assert (listed[first]["state"], listed[first]["dropped_next"]) == ("live", False)
    assert (listed[second]["state"], listed[second]["dropped_next"]) == ("newer than live", True)
    third = ingest_planted(planted, settings, w2v=TEST_W2V.with_options(seed=4), keep=3)
    assert third.dropped_versions == [second]  # the first to go, even within --keep 3
    _print_summary(third)
    assert f"dropped old versions: {second}" in capsys.readouterr().out
    assert runner.invoke(ingest_cli, ["rollback"]).output.strip().endswith(first)  # back to what was live before


def test_versions_shows_what_the_next_ingest_drops_with_its_keep(runner, home):
    settings, planted, first = home
    second = ingest_planted(planted, settings, w2v=TEST_W2V.with_options(seed=3)).version
    assert [v["dropped_next"] for v in versions_json(runner).values()] == [True, False]
    assert [v["dropped_next"] for v in versions_json(runner, "--keep", "3").values()] == [False, False]
    third = ingest_planted(planted, settings, w2v=TEST_W2V.with_options(seed=4))
    assert third.dropped_versions == [first] and list(versions_json(runner)) == [second, third.version]


# -- 7. aliases.json: one reader, one line, repaired by `ingest rollback`, never blocking `ingest` --

@pytest.mark.parametrize("content", [b'{"songs_w2v": ', b"[1, 2]", b'"songs_w2v"', b'{"songs_w2v": 5}', b"\xff\xfe{}", b'{"songs_w2v": "../x"}'])
def test_a_damaged_aliases_file_is_one_line_and_ingest_rollback_repairs_it(runner, home, content):
    settings, planted, live = home
    (settings.embedded_dir / "aliases.json").write_bytes(content)
    for args in (["similar", "--id", "0"], ["tags"]):
        result = runner.invoke(search_cli, args)
        assert one_line_error(result, exit_code=1) and "`ingest rollback` rewrites it" in result.output, result.output
    listed = runner.invoke(ingest_cli, ["versions"])
    assert listed.exit_code == 0 and "damaged" in listed.stderr and live in listed.stdout
    repaired = runner.invoke(ingest_cli, ["rollback"])
    assert repaired.exit_code == 0 and live in repaired.output and serves(runner)


def test_ingest_is_not_blocked_by_a_damaged_aliases_file(runner, home):
    settings, planted, live = home
    (settings.embedded_dir / "aliases.json").write_bytes(b"[]")
    report = ingest_planted(planted, settings)
    assert serves(runner) and set(versions_json(runner)) == {live, report.version}


@pytest.mark.parametrize("damage", ["empty_object", "missing_file", "live_collection_gone"])
def test_a_missing_live_version_points_at_the_command_that_fixes_it(runner, home, damage):
    settings, planted, live = home
    aliases = settings.embedded_dir / "aliases.json"
    if damage == "empty_object":
        aliases.write_text("{}")
    elif damage == "missing_file":
        aliases.unlink()
    else:
        newest = ingest_planted(planted, settings, w2v=TEST_W2V.with_options(seed=3)).version
        copy_gone = settings.embedded_dir / "collections" / f"songs_meta__{newest}"
        os.rename(copy_gone, copy_gone.with_name("elsewhere"))
        listed = versions_json(runner)
        assert not listed[newest]["live"] and listed[newest]["state"] == "incomplete"
    result = runner.invoke(search_cli, ["similar", "--id", "0", "--hybrid"])
    assert one_line_error(result, exit_code=1) and "`ingest rollback`" in result.output, result.output
    assert runner.invoke(ingest_cli, ["rollback"]).exit_code == 0 and serves(runner)


def test_an_unpublished_complete_leftover_is_not_called_kept(runner, home):
    settings, _, live = home
    collections = settings.embedded_dir / "collections"
    for alias in ("songs_w2v", "songs_meta"):  # what an ingest killed just before its switch leaves
        copy_tree(collections / f"{alias}__{live}", collections / f"{alias}__99999999t000000000")
    listed = versions_json(runner)["99999999t000000000"]
    assert (listed["state"], listed["live"], listed["dropped_next"]) == ("newer than live", False, True)


# -- 8. one janitor: nothing the project creates survives the next ingest or rollback --

def plant_leftovers(settings: Settings, live: str) -> list[Path]:
    root, collections = settings.embedded_dir, settings.embedded_dir / "collections"
    old = time.time() - 3600
    paths = [root / ".aliases.x1.tmp", collections / ".copying-songs_w2v__1", collections / ".deleting-songs_w2v__2-1",
             collections / f"songs_w2v__{live}" / ".atomicwriteAbC", settings.models_dir / "19990101t000000000",
             settings.cache_dir / "titles-x.npz.tmp.npz", settings.home / "datasets" / "abc" / "train.part",
             Path("/tmp") / "songsearch-eval-999999999-x", collections / "songs_meta__19990101t000000000"]
    for path in paths:
        if path.suffix in (".tmp", ".npz", ".part"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
        else:
            (path / "sub").mkdir(parents=True, exist_ok=True)
        os.utime(path, (old, old))
    return paths


@pytest.mark.parametrize("command", ["ingest", "rollback"])
def test_the_janitor_removes_every_leftover_at_the_next_ingest_or_rollback(runner, home, command):
    settings, planted, live = home
    if command == "rollback":
        ingest_planted(planted, settings, w2v=TEST_W2V.with_options(seed=3))
    leftovers = plant_leftovers(settings, live)
    fresh = settings.embedded_dir / "collections" / f"songs_w2v__{live}" / ".atomicwriteNew"
    fresh.write_bytes(b"a search loading the shard right now")
    if command == "ingest":
        ingest_planted(planted, settings)
    else:
        assert runner.invoke(ingest_cli, ["rollback"]).exit_code == 0
    assert [p for p in leftovers if p.exists()] == []
    assert fresh.exists()
    assert sorted(p.name for p in settings.models_dir.iterdir()) == sorted(versions_json(runner))


# -- 5. full disks --

def test_a_disk_full_while_copying_a_collection_is_one_short_line_and_leaves_nothing(runner, home, monkeypatch):
    settings, planted, live = home

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr("search.store.files.os.pwrite", full)
        result = runner.invoke(ingest_cli, ["--data", str(planted.directory), "--quiet", *TEST_OPTIONS], obj=FAKE_ENCODER)
    assert one_line_error(result, exit_code=1) and "No space left on device" in result.output and len(result.output) < 300, result.output
    assert serves(runner) and list(versions_json(runner)) == [live]
    assert not [p for p in (settings.embedded_dir / "collections").iterdir() if p.name.startswith(".")]


def mount_small_disk(path: Path, megabytes: int) -> None:
    """An ext4 file system of ``megabytes`` in a loop device (not a tmpfs: there, reading a hole
    of a memory map takes memory, which is another test)."""
    image = path.with_suffix(".img")
    path.mkdir(parents=True, exist_ok=True)
    with open(image, "wb") as f:
        f.truncate(megabytes << 20)
    for command in (["mkfs.ext4", "-q", "-F", str(image)], ["mount", "-o", "loop", str(image), str(path)]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a small file system here ({done.stderr.strip() or command[0]}): the injected ENOSPC tests stand in")


def fill(path: Path, leave_mb: int) -> Path:
    st = os.statvfs(path)
    filler = path / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - (leave_mb << 20)))
    return filler


def test_a_real_small_disk_refuses_in_one_line_keeps_serving_and_recovers(runner, template, tmp_path, monkeypatch):
    source, planted, live = template
    disk = tmp_path / "disk"
    mount_small_disk(disk, 64)
    try:
        copy_tree(source, disk / "home")
        monkeypatch.setenv("SONGSEARCH_HOME", str(disk / "home"))
        monkeypatch.delenv("QDRANT_URL", raising=False)
        settings = Settings.from_env()
        filler = fill(disk, leave_mb=8)
        orphan = settings.embedded_dir / "collections" / ".copying-songs_w2v__1"  # a killed copy's
        orphan.mkdir()
        (orphan / "chunk").write_bytes(b"\1" * (6 << 20))
        refused = runner.invoke(ingest_cli, ["--data", str(planted.directory), "--quiet"])
        assert one_line_error(refused, exit_code=1) and "not enough space" in refused.output, refused.output
        assert not orphan.exists() and serves(runner)  # the janitor ran first; the live version serves
        filler.unlink()
        filler = fill(disk, leave_mb=1)
        full = runner.invoke(search_cli, ["similar", "--id", "0", "--hybrid"])
        assert one_line_error(full, exit_code=1) and "not enough space" in full.output, full.output
        filler.unlink()
        report = ingest_planted(planted, settings)  # with the space back, no cleanup by hand
        assert serves(runner) and list(versions_json(runner)) == [live, report.version]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# -- 6. searches do not change published shards; a read-only home serves searches --

def contents(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.rglob("*") if p.is_file()}


def test_searches_leave_the_published_shards_as_ingest_wrote_them(runner, home):
    settings, _, _ = home
    before = contents(settings.embedded_dir)
    for args in (["similar", "--id", "0", "--hybrid"], ["cold-start", "--title", "metal song", "--artist", "Metallica"],
                 ["songs", "thunder"], ["tags"], ["recommend", "--like", "0,1", "--dislike", "13"]):
        assert runner.invoke(search_cli, args).exit_code == 0
    assert contents(settings.embedded_dir) == before


def test_a_read_only_home_serves_searches(runner, template, tmp_path, monkeypatch):
    source, _, _ = template
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the private copy goes
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.setenv("SONGSEARCH_HOME", str(source))
    expected = runner.invoke(search_cli, ["similar", "--id", "0", "--hybrid", "--json"])
    readonly = tmp_path / "ro"
    readonly.mkdir()
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(readonly)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here ({mounted.stderr.strip() or 'not root'})")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(readonly)], check=True)
        with pytest.raises(OSError):
            (readonly / "probe").write_text("x")
        monkeypatch.setenv("SONGSEARCH_HOME", str(readonly))
        for _ in range(2):  # the first search makes the private copy, the second reuses it
            answer = runner.invoke(search_cli, ["similar", "--id", "0", "--hybrid", "--json"])
            assert answer.exit_code == 0 and answer.stdout == expected.stdout, answer.output
        assert list(tmp_path.glob("songsearch-readonly-*/*/songs_w2v__*"))
        assert runner.invoke(search_cli, ["songs", "metal thunder"]).exit_code == 0
    finally:
        subprocess.run(["umount", "-l", str(readonly)], check=False)


# -- 9. servers that refuse, hang, fail or answer garbage --

class _Broken(http.server.BaseHTTPRequestHandler):
    status, body = 500, b"internal error"

    def do_GET(self):
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_PUT = do_GET

    def log_message(self, *args):
        pass


def _serve(handler) -> tuple[str, callable]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server.shutdown


@pytest.mark.parametrize("server", ["refuses", "hangs", "answers_500", "answers_garbage"])
def test_a_broken_server_is_one_line(runner, monkeypatch, server):
    stop = lambda: None  # noqa: E731
    if server == "refuses":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens
    elif server == "hangs":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts connections, never answers
        url, stop = f"http://127.0.0.1:{listener.getsockname()[1]}", listener.close
    else:
        handler = type("H", (_Broken,), {"status": 500, "body": b"oops"} if server == "answers_500" else {"status": 200, "body": b"\x00garbage{"})
        url, stop = _serve(handler)
    monkeypatch.setenv("QDRANT_URL", url)
    monkeypatch.setenv("QDRANT_TIMEOUT", "1")
    try:
        started = time.monotonic()
        for args in (["similar", "--id", "0"], ["tags"]):
            result = runner.invoke(search_cli, args)
            assert one_line_error(result, exit_code=1), result.output
        assert runner.invoke(ingest_cli, ["versions"]).exit_code == 1
        assert time.monotonic() - started < 30
    finally:
        stop()

"""`search serve` as a process: ready quickly, on 127.0.0.1, and its page in headless Chromium
(Debian's chromium and chromium-driver; skipped with the reason where they are missing)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests import browser
from tests.conftest import ingest_planted


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def planted_home(tmp_path_factory):
    """Planted data ingested into an embedded store: its SONGSEARCH_HOME."""
    root = tmp_path_factory.mktemp("serve")
    from search.contract import Settings
    from tests.conftest import write_planted_dataset

    ingest_planted(write_planted_dataset(root / "data"), Settings(home=root / "home"))
    return root / "home"


@pytest.fixture(scope="module")
def server(planted_home):
    """The planted home served by `search serve` (with an API key)."""
    port = free_port()
    env = {**os.environ, "SONGSEARCH_HOME": str(planted_home), "SONGSEARCH_API_KEY": "s3cret"}
    env.pop("QDRANT_URL", None)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "search", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base, ready = f"http://127.0.0.1:{port}", None
    while time.perf_counter() - started < 30 and process.poll() is None:
        try:
            if get(base + "/health", {"X-API-Key": "s3cret"})[0] == 200:
                ready = time.perf_counter() - started
                break
        except OSError:
            time.sleep(0.05)
    try:
        assert ready is not None, process.stderr.read() if process.poll() is not None else "not ready in 30 s"
        yield base, ready
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_answers_soon_after_start(server):
    base, ready = server
    print(f"ready in {ready:.2f} s")
    assert ready < 10  # the target is 2 s on an idle machine; CI machines are shared
    status, body = get(base + "/similar?id=3&limit=3", {"X-API-Key": "s3cret"})
    assert status == 200 and len(body["results"]) == 3
    assert get(base + "/similar?id=3")[0] == 401


def test_the_page_finds_a_song_and_shows_its_neighbours(server):
    reason = browser.missing()
    if reason:
        pytest.skip(f"browser test needs Debian's chromium: {reason}")
    base, _ = server
    driver = browser.chromium()
    try:
        driver.get(base + "/")
        driver.execute_script("sessionStorage.setItem('songsearch-key', 's3cret')")
        ms, titles = browser.show_neighbours(driver, base, "metal thunder song 3")
        cold_start = browser.new_song(driver, title="jazz blue", artist="Miles Davis")
    finally:
        driver.quit()
    print(f"neighbours {ms:.0f} ms after the click")
    assert len(titles) == 10 and all(t.startswith("metal thunder") for t in titles), titles
    assert ms < 3000  # the target is 300 ms
    heading, cold_titles = cold_start
    assert heading.startswith("Songs for a new song titled 'jazz blue', by 'Miles Davis'")
    assert cold_titles and all(t.startswith("jazz blue") for t in cold_titles[:5]), cold_titles


def _children(pid: int) -> list[int]:
    return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]


def _workers(pid: int) -> list[int]:
    """The worker processes of a `search serve --workers N` (not multiprocessing's resource tracker)."""
    return [c for c in _children(pid) if b"resource_tracker" not in open(f"/proc/{c}/cmdline", "rb").read()]


def _established(pid: int, port: int) -> int:
    """How many connections to ``port`` process ``pid`` holds open (its sockets in /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01" and fields[9] in inodes:
            count += 1
    return count


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_share_the_connections_and_a_dead_one_is_replaced(planted_home):
    import http.client

    env = {**os.environ, "SONGSEARCH_HOME": str(planted_home)}
    env.pop("QDRANT_URL", None)
    env.pop("SONGSEARCH_API_KEY", None)
    port = free_port()
    command = [sys.executable, "-m", "search", "serve", "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60

    def wait_for(condition, what: str) -> None:
        while not condition():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    try:
        wait_for(lambda: len(_workers(process.pid)) == 2 and _answers(port), "not up in 60 s")
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(16)]
        for c in connections:  # a burst of connections, as clients starting together make
            c.connect()
        held = {}

        def even() -> bool:
            """One more request on every connection (reopened where a worker closed it)."""
            for c in connections:
                c.request("GET", "/similar?id=3&limit=3")
                assert c.getresponse().read()
            held.update((w, _established(w, port)) for w in _workers(process.pid))
            return sorted(held.values()) == [8, 8]

        # not all on the first to accept, and however the kernel split them, a worker over its
        # share closes connections until the split is even
        wait_for(even, f"the connections stayed split {held}")
        for c in connections:
            c.close()
        first = _workers(process.pid)
        os.kill(first[0], 9)
        wait_for(lambda: first[0] not in _workers(process.pid) and len(_workers(process.pid)) == 2 and _answers(port),
                 "the dead worker was not replaced")
        workers = _workers(process.pid)
        taken = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert taken.returncode != 0 and "Traceback" not in taken.stderr
    assert taken.stderr.strip().splitlines()[-1].startswith(f"Error: cannot listen on 127.0.0.1:{port}"), taken.stderr
    assert process.returncode == 0 and not any(os.path.exists(f"/proc/{w}") for w in workers)


def _answers(port: int) -> bool:
    try:
        return get(f"http://127.0.0.1:{port}/similar?id=3&limit=3")[0] == 200
    except OSError:
        return False

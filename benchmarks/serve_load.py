"""Load on a running `search serve`: concurrent clients asking `similar` for random songs.

    search serve &                                       # the store to measure (embedded, or QDRANT_URL)
    python benchmarks/serve_load.py --clients 16 --seconds 30 \\
        --publish "ingest --update new_playlists.txt --songs new_songs.txt"

Not a test. Only 127.0.0.1 (or localhost), bounded in clients, seconds and requests. The song ids
are read from the live songs_w2v (the same SONGSEARCH_HOME / QDRANT_URL as the server). With
--publish the command starts --publish-after seconds in (an ingest that publishes a new version
while the load runs), and the load goes on until it has finished (at most 120 s); /health is polled twice a second to report when the version changed.
Prints requests/s, p50 and p99 latency, errors (not 200) and empty answers (200, no songs).

Closed loop by default: each client asks again as soon as it has its answer, so the latency is
clients / throughput (Little's law) whatever the server does.  With --rate R the clients together
offer R requests/s, each on its own fixed schedule (open loop), and a latency counts from when the
request was due, so that a server falling behind shows in p99 instead of slowing the load down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import subprocess
import sys
import time
from urllib.parse import urlsplit

MAX_CLIENTS, MAX_SECONDS, MAX_REQUESTS, MAX_RATE = 64, 120, 200_000, 5_000
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def request(reader, writer, host: str, path: str, key: str | None) -> tuple[int, bytes, bool]:
    """One keep-alive HTTP/1.1 GET: (status, body, whether the server closes the connection)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{f'X-API-Key: {key}' + chr(13) + chr(10) if key else ''}\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    lines = [line.lower() for line in head.split(b"\r\n")]
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length:"))
    return status, await reader.readexactly(length), b"connection: close" in lines


class Tally:
    def __init__(self, deadline: float):
        self.deadline = deadline  # moved on while --publish runs, up to MAX_SECONDS
        self.latencies: list[float] = []
        self.errors = self.empty = 0
        self.first_errors: list[str] = []
        self.versions: list[tuple[float, str]] = []


async def client(url, ids, key, tally: Tally, limit: int, interval: float | None = None) -> None:
    """Ask, then ask again at once or (``interval`` seconds) when the next request is due."""
    host, port = url.hostname, url.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    due = time.perf_counter() + (random.uniform(0, interval) if interval else 0.0)
    try:
        while time.perf_counter() < tally.deadline and len(tally.latencies) + tally.errors < MAX_REQUESTS:
            if interval:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                start, due = due, due + interval
            else:
                start = time.perf_counter()
            try:
                status, body, closing = await request(reader, writer, url.netloc, f"/similar?id={random.choice(ids)}&limit={limit}", key)
            except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration) as exc:
                tally.errors += 1
                tally.first_errors.append(f"connection: {exc!r}")
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            tally.latencies.append(time.perf_counter() - start)
            if closing:  # as HTTP clients do: the next request on a new connection
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            if status != 200:
                tally.errors += 1
                if len(tally.first_errors) < 5:
                    tally.first_errors.append(f"{status}: {body[:200].decode(errors='replace')}")
            elif not json.loads(body)["results"]:
                tally.empty += 1
    finally:
        writer.close()


async def watch_versions(url, key, tally: Tally, started: float) -> None:
    reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
    try:
        while time.perf_counter() < tally.deadline:
            status, body, closing = await request(reader, writer, url.netloc, "/health", key)
            if closing:
                writer.close()
                reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
            version = json.loads(body)["aliases"]["songs_w2v"]["version"] if status == 200 else f"status {status}"
            if not tally.versions or tally.versions[-1][1] != version:
                tally.versions.append((time.perf_counter() - started, version))
            await asyncio.sleep(0.5)
    finally:
        writer.close()


def song_ids(sample: int) -> list[int]:
    """Ids of songs_w2v, read from the configured store (as the server reads it)."""
    from search.contract import W2V_ALIAS
    from search.store import open_store

    with open_store() as store:
        ids = store.scroll_ids(W2V_ALIAS)
    return random.Random(7).sample(ids, min(sample, len(ids)))


async def run(args) -> Tally:
    url = urlsplit(args.url)
    key = os.environ.get("SONGSEARCH_API_KEY") or None
    ids = song_ids(10_000)
    started = time.perf_counter()
    tally = Tally(started + args.seconds)
    publisher = None

    async def publish_during_load():
        """Start --publish, and keep the load on until it has finished (at most MAX_SECONDS in all)."""
        nonlocal publisher
        await asyncio.sleep(args.publish_after)
        publisher = subprocess.Popen(shlex.split(args.publish), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while publisher.poll() is None and time.perf_counter() < started + MAX_SECONDS:
            tally.deadline = max(tally.deadline, time.perf_counter() + 2)
            await asyncio.sleep(0.2)

    interval = args.clients / args.rate if args.rate else None
    tasks = [client(url, ids, key, tally, args.limit, interval) for _ in range(args.clients)]
    tasks.append(watch_versions(url, key, tally, started))
    if args.publish:
        tasks.append(publish_during_load())
    await asyncio.gather(*tasks)
    tally.seconds = time.perf_counter() - started
    if publisher is not None:
        if publisher.poll() is None:
            print("note: the --publish command was still running at the end; waiting for it", file=sys.stderr)
        code = publisher.wait()
        if code:
            print(f"the --publish command failed ({code}): {publisher.stderr.read().strip()[-300:]}", file=sys.stderr)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--rate", type=float, help="requests/s offered by all clients together (open loop); default: closed loop")
    parser.add_argument("--publish", help="a command that publishes a new version (e.g. an ingest), started during the load")
    parser.add_argument("--publish-after", type=float, default=5.0, help="seconds into the load to start --publish")
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in LOOPBACK:
        parser.error("only a server on 127.0.0.1 / localhost")
    if not (1 <= args.clients <= MAX_CLIENTS and 0 < args.seconds <= MAX_SECONDS):
        parser.error(f"--clients 1..{MAX_CLIENTS}, --seconds up to {MAX_SECONDS}")
    if args.rate is not None and not 0 < args.rate <= MAX_RATE:
        parser.error(f"--rate above 0, at most {MAX_RATE}")
    try:  # the load's own work shares the server's cores: the lighter event loop when installed
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        tally = runner.run(run(args))
    lat = sorted(tally.latencies)
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
    load = f"open loop, {args.rate:g} requests/s offered" if args.rate else "closed loop"
    print(f"{args.clients} clients, {load}, {tally.seconds:.1f} s, GET /similar?id=<random>&limit={args.limit}")
    print(f"requests/s {len(lat) / tally.seconds:.0f}   p50 {pct(0.50):.1f} ms   p99 {pct(0.99):.1f} ms   "
          f"requests {len(lat)}   errors {tally.errors}   empty answers {tally.empty}")
    for at, version in tally.versions:
        print(f"  live version at {at:5.1f} s: {version}")
    for line in tally.first_errors[:5]:
        print(f"  error: {line}")


if __name__ == "__main__":
    main()

"""`search serve --workers N`: N processes on one port, each with a listening socket of its own
(SO_REUSEPORT), so that the kernel spreads new connections over them.

uvicorn's own workers share one socket, and whichever is idle accepts a burst of keep-alive
connections alone: it then answers most of the load for as long as they last while the other
processes wait.  The kernel's spread is random all the same (16 connections split 11 to 5 one
time in five), and a keep-alive connection stays where it landed: so the workers count their
open connections in an array they share, and one holding more than its share answers a request
with ``Connection: close``, after which the client's next connection lands anew.  Here a dead
worker is started again, as uvicorn's supervisor does; one that fails at once (an error at
start) stops them all with its error.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time

import click

#: a worker that exits with an error sooner than this after its start failed to start: do not start it again
START_S = 3.0
#: a worker over its share of connections closes at most one per this many seconds (the client
#: reconnects and the counts settle before the next)
REBALANCE_S = 0.05


class ConnectionShare:
    """This worker's open connections, in its slot of ``counts`` (an array all workers share,
    each writing its own slot only)."""

    def __init__(self, counts, index: int):
        self.counts, self.index, self.last_close = counts, index, 0.0
        counts[index] = 0  # a replaced worker's connections died with it

    def opened(self) -> None:
        self.counts[self.index] += 1

    def closed(self) -> None:
        self.counts[self.index] -= 1

    def should_close(self) -> bool:
        """Whether to close a connection now: this worker holds more than an even share of all."""
        workers, total = len(self.counts), sum(self.counts)
        if self.counts[self.index] <= -(-total // workers):
            return False
        now = time.monotonic()
        if now - self.last_close < REBALANCE_S:
            return False
        self.last_close = now
        return True


def counting_protocol(base: type, share: ConnectionShare) -> type:
    """uvicorn's HTTP protocol ``base``, counting the connections it serves in ``share``."""

    class Counted(base):
        def connection_made(self, transport):
            share.opened()
            super().connection_made(transport)

        def connection_lost(self, exc):
            share.closed()
            super().connection_lost(exc)

    return Counted


class CloseOverShare:
    """ASGI middleware: ``Connection: close`` on a response while the worker holds more than its share."""

    def __init__(self, app, share: ConnectionShare):
        self.app, self.share = app, share

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.share.should_close():
            return await self.app(scope, receive, send)

        async def closing(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        return await self.app(scope, receive, closing)


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, shared: bool = True) -> socket.socket:
    """A socket listening on ``host:port``; ``shared``: one of the workers' (SO_REUSEPORT)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    return sock


def _worker(options: dict, index: int, counts) -> None:
    import uvicorn
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    share = ConnectionShare(counts, index)
    make_app = import_from_string(options["app"])
    protocol = counting_protocol(import_from_string(HTTP_PROTOCOLS["auto"]), share)
    sock = listening_socket(options["host"], options["port"])
    config = uvicorn.Config(**{**options, "app": lambda: CloseOverShare(make_app(), share)}, http=protocol)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(options: dict, workers: int) -> None:
    """Run ``workers`` uvicorn servers with ``options`` (uvicorn.Config's) until SIGINT or SIGTERM."""
    try:  # a port taken (by anyone: unshared, another server's workers too) is one line, now
        listening_socket(options["host"], options["port"], shared=False).close()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}") from None
    spawn = multiprocessing.get_context("spawn")
    counts = spawn.Array("i", workers, lock=False)
    stopping = False

    def start(index: int) -> tuple:
        process = spawn.Process(target=_worker, args=(options, index, counts), daemon=False)
        process.start()
        return process, time.monotonic()

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    running = [start(i) for i in range(workers)]
    try:
        while not stopping:
            time.sleep(0.2)
            for i, (process, started) in enumerate(running):
                if process.is_alive() or stopping:
                    continue
                if process.exitcode > 0 and time.monotonic() - started < START_S:  # an error, not a signal
                    raise click.ClickException(f"a worker stopped at start (exit code {process.exitcode}): see its error above")
                running[i] = start(i)
    finally:
        for process, _ in running:
            if process.is_alive():
                process.terminate()  # uvicorn's graceful shutdown
        for process, _ in running:
            process.join(10)
            if process.is_alive():
                process.kill()
        for s, handler in previous.items():
            signal.signal(s, handler)

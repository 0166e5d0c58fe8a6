"""`search serve --workers N`: N processes on one port, each with a listening socket of its own
(SO_REUSEPORT), so that the kernel spreads new connections over them.

uvicorn's own workers share one socket, and whichever is idle accepts a burst of keep-alive
connections alone: it then answers most of the load for as long as they last while the other
processes wait.  Here a dead worker is started again, as uvicorn's supervisor does; one that fails
at once (an error at start) stops them all with its error.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time

import click

#: a worker that exits with an error sooner than this after its start failed to start: do not start it again
START_S = 3.0


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


def _worker(options: dict) -> None:
    import uvicorn

    sock = listening_socket(options["host"], options["port"])
    uvicorn.Server(uvicorn.Config(**options)).run(sockets=[sock])


def run_workers(options: dict, workers: int) -> None:
    """Run ``workers`` uvicorn servers with ``options`` (uvicorn.Config's) until SIGINT or SIGTERM."""
    try:  # a port taken (by anyone: unshared, another server's workers too) is one line, now
        listening_socket(options["host"], options["port"], shared=False).close()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}") from None
    spawn = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> tuple:
        process = spawn.Process(target=_worker, args=(options,), daemon=False)
        process.start()
        return process, time.monotonic()

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    running = [start() for _ in range(workers)]
    try:
        while not stopping:
            time.sleep(0.2)
            for i, (process, started) in enumerate(running):
                if process.is_alive() or stopping:
                    continue
                if process.exitcode > 0 and time.monotonic() - started < START_S:  # an error, not a signal
                    raise click.ClickException(f"a worker stopped at start (exit code {process.exitcode}): see its error above")
                running[i] = start()
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

"""Listeners, the accept loop and graceful shutdown.

``serve`` runs until ``shutdown.begin()``: then it stops accepting, lets in-flight requests and
streams finish for ``limits.shutdown_grace`` seconds, and cancels whatever is still running.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable

import trio

from relay.http.connection import App, Shutdown, serve_connection
from relay.http.heap import HeapTrimmer
from relay.http.limits import Limits
from relay.http.pending import PendingHeads

log = logging.getLogger("relay.http")

#: Seconds before the shutdown grace runs out at which streams still running end themselves, with an error
#: event in their client's dialect (a stream cut by the hard stop could say nothing).
LAST_WORDS = 1.0
_ACCEPT_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` to (host, port); raises ValueError naming the problem."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535, got {port!r}")
    return host, int(port)


def bind_socket(host: str, port: int, *, reuse_port: bool, listen: bool, backlog: int) -> socket.socket:
    """A bound (and, if asked, listening) TCP socket; with reuse_port several processes share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def make_listener(sock: socket.socket) -> trio.SocketListener:
    sock.setblocking(False)
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


async def serve(
    app: App,
    listeners: list[trio.SocketListener],
    limits: Limits,
    shutdown: Shutdown,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with trio.CancelScope() as hard_stop:
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as accepting:
                pending = PendingHeads(limits.max_pending_per_address)
                heap = HeapTrimmer()
                accepting.start_soon(heap.run)  # the heap given back after large requests (relay.http.heap)
                for listener in listeners:
                    accepting.start_soon(_accept_loop, listener, app, limits, shutdown, connections, pending, heap)
                task_status.started()
                await shutdown.event.wait()
                accepting.cancel_scope.cancel()
            for listener in listeners:
                await listener.aclose()
            hard_stop.deadline = trio.current_time() + limits.shutdown_grace
            shutdown.drain_by(hard_stop.deadline - min(LAST_WORDS, limits.shutdown_grace / 2))
    if hard_stop.cancelled_caught:
        log.warning("shutdown grace of %ss ran out; remaining connections cancelled", limits.shutdown_grace)


async def _accept_loop(
    listener: trio.SocketListener,
    app: App,
    limits: Limits,
    shutdown: Shutdown,
    nursery: trio.Nursery,
    pending: PendingHeads,
    heap: HeapTrimmer,
) -> None:
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:
            if exc.errno in _ACCEPT_ERRORS:
                log.error("accept failed (%s); pausing 100 ms", exc)
                await trio.sleep(0.1)
                continue
            raise
        nursery.start_soon(serve_connection, stream, app, limits, shutdown, pending, heap)


async def run(app: App, sock: socket.socket, limits: Limits, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve on a listening socket until SIGTERM or SIGINT; a second signal cancels at once."""
    shutdown = Shutdown()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, signals, shutdown, nursery.cancel_scope)
            await nursery.start(serve, app, [make_listener(sock)], limits, shutdown)
            if on_ready is not None:
                on_ready(address_of(sock))
            await shutdown.event.wait()
            nursery.cancel_scope.deadline = trio.current_time() + limits.shutdown_grace + 1
            await _wait_served(nursery)


async def _wait_served(nursery: trio.Nursery) -> None:
    # serve() returns once its connections are done; then only the signal watcher is left.
    while len(nursery.child_tasks) > 1:
        await trio.sleep(0.05)
    nursery.cancel_scope.cancel()


async def _watch_signals(signals: AsyncIterator[int], shutdown: Shutdown, everything: trio.CancelScope) -> None:
    async for signum in signals:
        if shutdown.begun:
            log.warning("second signal: stopping now")
            everything.cancel()
            return
        log.info("%s: no longer accepting; finishing in-flight requests", signal.Signals(signum).name)
        shutdown.begin()


def address_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

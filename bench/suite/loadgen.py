"""The suite's load generator: its own process, ``python -m bench.suite.loadgen`` with the spec's JSON on stdin
(a 400 KB request does not fit in one argument); prints one JSON line.

Modes (``spec["mode"]``):

``rounds``  concurrency 1, blocking sockets, one keep-alive connection per target; round by round every target
            gets one request, in the order ``spec["order"]`` gives (bench.suite.stats.interleaving). Per
            request: the whole answer's time and, for streams, the time to the first token and the gaps between
            tokens (bench.suite.wire).
``load``    ``concurrency`` keep-alive connections on asyncio (Protocol callbacks, no task per request), each
            sending its next request when the previous answer is in, for ``warmup`` then ``duration`` seconds;
            only answers completed inside the window count. ``stalled`` more connections each send one streamed
            request and never read (a receive buffer of 4 KiB): the slow-client lane.

Every mode reads the CPU of ``spec["pids"]`` (and of itself, ``loadgen``) over its measured part, so that the
suite can tell when the load generator or the mock, not the target, was the bottleneck.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench import cpu
from bench.suite.dialects import DIALECT
from bench.suite.wire import ProtocolError, Response

_MAX_CONSECUTIVE_ERRORS = 50
_NEVER = 1 << 62
_MS = 1e6


class BlockingClient:
    """One keep-alive connection to one target; reconnects (outside any timing) when the server closes it."""

    def __init__(self, target: dict[str, Any]) -> None:
        self.address = (target["host"], target["port"])
        self.request = target["request"].encode("latin-1")
        self.stream = bool(target["stream"])
        self.token = DIALECT[target["dialect"]].token
        self.sock: socket.socket | None = None
        self.errors = 0
        self.statuses: dict[str, int] = {}

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def roundtrip(self) -> tuple[Response, int, int] | None:
        """One request: the response, and perf_counter_ns when it was sent and when it was whole; None on an
        error."""
        response = Response(self.token, self.stream)
        started = ended = 0
        try:
            if self.sock is None:
                self.sock = socket.create_connection(self.address, timeout=30)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = self.sock
            started = time.perf_counter_ns()
            sock.sendall(self.request)
            while True:
                data = sock.recv(262144)
                now = time.perf_counter_ns()
                if not data:
                    if response.eof(now):
                        ended = now
                        self.close()
                        break
                    raise ConnectionError("server closed the connection mid-answer")
                if response.feed(data, now):
                    ended = now
                    break
        except (OSError, ProtocolError) as exc:
            self.errors += 1
            self.statuses[type(exc).__name__] = self.statuses.get(type(exc).__name__, 0) + 1
            self.close()
            return None
        if response.close:
            self.close()
        if not response.ok:
            self.errors += 1
            key = str(response.status) if response.status != 200 else "no tokens"
            self.statuses[key] = self.statuses.get(key, 0) + 1
            return None
        return response, started, ended


def rounds(spec: dict[str, Any]) -> dict[str, Any]:
    """Mode ``rounds``: every target once per round, in the given order; warm-up rounds are not kept."""
    clients = {t["name"]: BlockingClient(t) for t in spec["targets"]}
    samples: dict[str, dict[str, list[float]]] = {n: {"total": [], "ttft": [], "gaps": []} for n in clients}
    pids = {**spec.get("pids", {}), "loadgen": os.getpid()}
    warmup = spec["warmup"]
    consecutive = 0
    before = cpu.Snapshot(pids)
    for i, order in enumerate(spec["order"]):
        if i == warmup:
            before = cpu.Snapshot(pids)
        for name in order:
            answer = clients[name].roundtrip()
            if answer is None:
                consecutive += 1
                if consecutive > _MAX_CONSECUTIVE_ERRORS:
                    raise RuntimeError(f"{name}: {consecutive} errors in a row: {clients[name].statuses}")
                continue
            consecutive = 0
            if i < warmup:
                continue
            response, started, ended = answer
            kept = samples[name]
            kept["total"].append((ended - started) / _MS)
            if response.stream:
                times = response.token_ns
                kept["ttft"].append((times[0] - started) / _MS)
                kept["gaps"] += [(b - a) / _MS for a, b in itertools.pairwise(times)]
    after = cpu.Snapshot(pids)
    for client in clients.values():
        client.close()
    return {
        "paths": {
            name: {**samples[name], "errors": clients[name].errors, "error_kinds": clients[name].statuses}
            for name in clients
        },
        "cpu": cpu.usage(before, after),
    }


# ---- concurrency N: asyncio callbacks -------------------------------------------------------------------


class Window:
    """Counters shared by the connections; only answers completed in [start_ns, end_ns) count."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream
        self.running = True
        self.start_ns = _NEVER
        self.end_ns = _NEVER
        self.completed = 0
        self.errors = 0
        self.statuses: dict[str, int] = {}
        self.latency: list[float] = []
        self.ttft: list[float] = []
        self.gaps: list[float] = []
        #: The connections open now (each knows whether it waits for an answer).
        self.connections: set[LoadConnection] = set()

    def error(self, kind: str) -> None:
        self.errors += 1
        self.statuses[kind] = self.statuses.get(kind, 0) + 1

    def answered(self, response: Response, started: int, now: int) -> None:
        if not response.ok:
            self.error(str(response.status) if response.status != 200 else "no tokens")
            return
        if not self.start_ns <= now < self.end_ns:
            return
        self.completed += 1
        self.latency.append((now - started) / _MS)
        if response.stream:
            times = response.token_ns
            self.ttft.append((times[0] - started) / _MS)
            self.gaps.extend((b - a) / _MS for a, b in itertools.pairwise(times))


class LoadConnection(asyncio.Protocol):
    """Sends its next request from ``data_received`` the moment an answer is complete."""

    def __init__(self, window: Window, target: dict[str, Any], closed: asyncio.Future[None]) -> None:
        self.window = window
        self.request = target["request"].encode("latin-1")
        self.token = DIALECT[target["dialect"]].token
        self.closed = closed
        self.transport: asyncio.Transport | None = None
        self.response = Response(self.token, window.stream)
        self.in_flight = False
        self.started = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.window.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.response = Response(self.token, self.window.stream)
        self.in_flight = True
        self.started = time.perf_counter_ns()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        now = time.perf_counter_ns()
        try:
            done = self.response.feed(data, now)
        except ProtocolError:
            self.window.error("protocol")
            self.in_flight = False
            self.transport.close()
            return
        if not done:
            return
        self.in_flight = False
        self.window.answered(self.response, self.started, now)
        if self.response.close or not self.window.running:
            self.transport.close()
        else:
            self._send()

    def eof_received(self) -> bool | None:
        if self.in_flight and self.response.eof(time.perf_counter_ns()):
            self.in_flight = False
            self.window.answered(self.response, self.started, time.perf_counter_ns())
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.window.connections.discard(self)
        if self.in_flight and self.window.running:
            self.window.error("connection lost")
        if not self.closed.done():
            self.closed.set_result(None)


async def _slot(window: Window, target: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    while window.running:
        closed: asyncio.Future[None] = loop.create_future()
        try:
            await loop.create_connection(
                lambda closed=closed: LoadConnection(window, target, closed), target["host"], target["port"]
            )
        except OSError:
            window.error("connect")
            await asyncio.sleep(0.05)
            continue
        await closed


def _stalled(target: dict[str, Any], request_text: str, count: int) -> list[socket.socket]:
    """``count`` connections that each send one streamed request (``request_text``) and then never read."""
    request = request_text.encode("latin-1")
    out: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((target["host"], target["port"]))
        sock.sendall(request)
        out.append(sock)
    return out


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    target = spec["target"]
    pids = {**spec.get("pids", {}), "loadgen": os.getpid()}
    stalled = _stalled(target, spec.get("stalled_request") or target["request"], spec.get("stalled", 0))
    window = Window(bool(target["stream"]))
    slots = [asyncio.create_task(_slot(window, target)) for _ in range(spec["concurrency"])]
    await asyncio.sleep(spec["warmup"])
    before = cpu.Snapshot(pids)
    window.start_ns = time.perf_counter_ns()
    await asyncio.sleep(spec["duration"])
    window.end_ns = time.perf_counter_ns()
    after = cpu.Snapshot(pids)
    in_flight = sum(1 for connection in window.connections if connection.in_flight)
    window.running = False
    _, pending = await asyncio.wait(slots, timeout=30)
    for task in pending:
        task.cancel()
    for sock in stalled:
        sock.close()
    wall = (window.end_ns - window.start_ns) / 1e9
    return {
        "concurrency": spec["concurrency"],
        "stalled": len(stalled),
        "duration_s": round(wall, 3),
        "completed": window.completed,
        "rps": round(window.completed / wall, 1),
        "errors": window.errors,
        #: Connections still waiting for an answer 30 s after the window closed (then abandoned).
        "abandoned": len(pending),
        "in_flight_at_end": in_flight,
        "error_kinds": window.statuses,
        "latency": window.latency,
        "ttft": window.ttft,
        "gaps": window.gaps,
        "cpu": cpu.usage(before, after),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0] if args else sys.stdin.read())
    result = asyncio.run(_load(spec)) if spec["mode"] == "load" else rounds(spec)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

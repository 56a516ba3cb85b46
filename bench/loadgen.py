"""The load generator: its own process, ``python -m bench.loadgen SPEC_JSON``; prints one JSON line.

Modes (``spec["mode"]``):

``latency``     concurrency 1, blocking sockets, one keep-alive connection per target; the targets
                alternate request by request (A B, B A, A B, ...) so machine noise hits both alike.
``ttft``        the same with ``"stream": true`` requests: time from sending to the first received
                ``data:`` event that carries content, and to the end of the stream.
``throughput``  ``concurrency`` keep-alive connections on asyncio (callbacks on a Protocol, no task per
                request), each sending its next request as soon as the previous answer is in, for
                ``warmup`` then ``duration`` seconds; only answers completed inside the measured
                window count. Reads the CPU time of the given pids over the same window.

Requests are precomputed bytes; answers are read with ``bench.http1.ResponseReader``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench import cpu
from bench.http1 import ProtocolError, ResponseReader
from bench.stats import paired_difference_ms, summary_ms

_NEVER = 1 << 62
_MAX_CONSECUTIVE_ERRORS = 50


# ---- concurrency 1: blocking sockets -------------------------------------------------------------------


class BlockingClient:
    """One keep-alive connection; reconnects (outside any timing) when the server closes it."""

    def __init__(self, host: str, port: int, request: bytes, *, find_content: bool = False) -> None:
        self.address = (host, port)
        self.request = request
        self.find_content = find_content
        self.reader = ResponseReader()
        self.sock: socket.socket | None = None
        self.errors = 0
        self.reconnects = 0

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def roundtrip(self) -> tuple[int, int] | None:
        """(ns to the whole answer, ns to the first content event or -1); None on an error."""
        reader = self.reader
        reader.reset()
        first = -1
        try:
            sock = self.sock or self._connect()
            started = time.perf_counter_ns()
            sock.sendall(self.request)
            while True:
                data = sock.recv(65536)
                now = time.perf_counter_ns()
                if not data:
                    raise ConnectionError("server closed the connection mid-answer")
                done = reader.feed(data)
                if self.find_content and first < 0 and reader.head_end >= 0 and reader.find_content():
                    first = now - started
                if done:
                    break
        except (OSError, ProtocolError):
            self.errors += 1
            self.close()
            return None
        if reader.close:
            self.reconnects += 1
            self.close()
        if not reader.ok or (self.find_content and first < 0):
            self.errors += 1
            return None
        return now - started, first


def interleaved(spec: dict[str, Any]) -> dict[str, Any]:
    """Modes ``latency`` and ``ttft``: the targets alternate, A B then B A, for warmup + requests rounds."""
    stream = spec["mode"] == "ttft"
    names = [t["name"] for t in spec["targets"]]
    clients = {
        t["name"]: BlockingClient(t["host"], t["port"], t["request"].encode("latin-1"), find_content=stream)
        for t in spec["targets"]
    }
    total: dict[str, list[int]] = {n: [] for n in names}
    first: dict[str, list[int]] = {n: [] for n in names}
    consecutive = 0
    rounds = spec["warmup"] + spec["requests"]
    pids = {**spec.get("pids", {}), "loadgen": os.getpid()}
    before = cpu.Snapshot(pids)
    for i in range(rounds):
        if i == spec["warmup"]:
            before = cpu.Snapshot(pids)
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            sample = clients[name].roundtrip()
            if sample is None:
                consecutive += 1
                if consecutive > _MAX_CONSECUTIVE_ERRORS:
                    raise RuntimeError(f"{name}: {consecutive} errors in a row")
                continue
            consecutive = 0
            if i >= spec["warmup"]:
                total[name].append(sample[0])
                first[name].append(sample[1])
    after = cpu.Snapshot(pids)
    for client in clients.values():
        client.close()
    out: dict[str, Any] = {"paths": {}, "cpu": cpu.usage(before, after)}
    for name in names:
        client = clients[name]
        entry: dict[str, Any] = {"errors": client.errors, "reconnects": client.reconnects}
        if stream:
            entry["ttft_ms"] = summary_ms(first[name])
            entry["stream_ms"] = summary_ms(total[name])
        else:
            entry["latency_ms"] = summary_ms(total[name])
        out["paths"][name] = entry
    if len(names) >= 2:
        samples = first if stream else total
        out["paired_difference_ms"] = paired_difference_ms(samples[names[0]], samples[names[1]])
    return out


# ---- concurrency N: asyncio callbacks -------------------------------------------------------------------


class Window:
    """Counters shared by the connections; only answers completed in [start_ns, end_ns) count."""

    def __init__(self) -> None:
        self.running = True
        self.start_ns = _NEVER
        self.end_ns = _NEVER
        self.completed = 0
        self.errors = 0
        self.bad_status: dict[int, int] = {}
        self.reconnects = 0
        self.latencies: list[int] = []

    def answered(self, reader: ResponseReader, latency: int, now: int) -> None:
        if not reader.ok:
            self.errors += 1
            self.bad_status[reader.status] = self.bad_status.get(reader.status, 0) + 1
            return
        if self.start_ns <= now < self.end_ns:
            self.completed += 1
            self.latencies.append(latency)


class LoadConnection(asyncio.Protocol):
    """Sends its next request from ``data_received`` the moment an answer is complete."""

    def __init__(self, window: Window, request: bytes, closed: asyncio.Future[None]) -> None:
        self.window = window
        self.request = request
        self.closed = closed
        self.reader = ResponseReader()
        self.transport: asyncio.Transport | None = None
        self.in_flight = False
        self.started = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.reader.reset()
        self.in_flight = True
        self.started = time.perf_counter_ns()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            done = self.reader.feed(data)
        except ProtocolError:
            self.window.errors += 1
            self.in_flight = False
            self.transport.close()
            return
        if not done:
            return
        now = time.perf_counter_ns()
        self.in_flight = False
        self.window.answered(self.reader, now - self.started, now)
        if self.reader.close:
            self.window.reconnects += 1
            self.transport.close()
        elif self.window.running:
            self._send()
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight:
            self.window.errors += 1
        if not self.closed.done():
            self.closed.set_result(None)


async def _slot(window: Window, host: str, port: int, request: bytes) -> None:
    loop = asyncio.get_running_loop()
    while window.running:
        closed: asyncio.Future[None] = loop.create_future()
        try:
            await loop.create_connection(functools.partial(LoadConnection, window, request, closed), host, port)
        except OSError:
            window.errors += 1
            await asyncio.sleep(0.05)
            continue
        await closed


async def _throughput(spec: dict[str, Any]) -> dict[str, Any]:
    target = spec["targets"][0]
    request = target["request"].encode("latin-1")
    pids = {**spec.get("pids", {}), "loadgen": os.getpid()}
    window = Window()
    slots = [
        asyncio.create_task(_slot(window, target["host"], target["port"], request)) for _ in range(spec["concurrency"])
    ]
    await asyncio.sleep(spec["warmup"])
    before = cpu.Snapshot(pids)
    window.start_ns = time.perf_counter_ns()
    await asyncio.sleep(spec["duration"])
    window.end_ns = time.perf_counter_ns()
    after = cpu.Snapshot(pids)
    window.running = False
    _, pending = await asyncio.wait(slots, timeout=10)
    for task in pending:
        task.cancel()
    wall = (window.end_ns - window.start_ns) / 1e9
    return {
        "target": target["name"],
        "concurrency": spec["concurrency"],
        "duration_s": round(wall, 3),
        "completed": window.completed,
        "rps": round(window.completed / wall, 1),
        "errors": window.errors + len(pending),
        "bad_status": {str(k): v for k, v in window.bad_status.items()},
        "reconnects": window.reconnects,
        "latency_ms": summary_ms(window.latencies),
        "cpu": cpu.usage(before, after),
    }


def throughput(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_throughput(spec))


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0])
    mode = spec["mode"]
    result = throughput(spec) if mode == "throughput" else interleaved(spec)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

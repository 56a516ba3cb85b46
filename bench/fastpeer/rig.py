"""The Node rig's processes, driven from Python: the mock upstream's command line and one run of the client.

bench.fanout measures Relay with them when ``node`` is installed (``--rig node``): the Python mock and trio
client cost tens of microseconds per frame and, sharing one core, cap a 1,024-stream fan-out at a fraction of
its pace whatever Relay does. mock.mjs and client.mjs (beside this file) say how they stay cheap.

The client prints ``mark start`` / ``mark end`` the moment the window of every stream running opens and closes;
``run_client`` samples Relay's CPU (``sample``) as each line arrives, so the CPU accounting stays bench/cpu.py's
whichever rig counted the frames.
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import BenchError, affinity

FASTPEER = Path(__file__).resolve().parent
MOCK = FASTPEER / "mock.mjs"
CLIENT = FASTPEER / "client.mjs"
INSTALL_HINT = "node not found: apt-get install nodejs (Node 20 or later) for the fast rig"
#: Connections per loopback source address: below Relay's ``max_pending_per_address`` (256), which closes a
#: connection from an address that already has that many still sending their heads, as 1,024 connections
#: opened at once from one address would have.
PER_SOURCE = 128


def node() -> str | None:
    """The ``node`` executable, None when it is not installed."""
    return shutil.which("node")


def mock_argv(port: int = 0) -> list[str]:
    """``node mock.mjs``: prints ``fastpeer mock: listening on HOST:PORT`` as bench.procs.Server expects."""
    executable = node()
    if executable is None:
        raise BenchError(INSTALL_HINT)
    return [executable, str(MOCK), "--host", "127.0.0.1", "--port", str(port)]


def sources_for(streams: int) -> int:
    """Loopback source addresses for ``streams`` connections opened at once (127.0.0.1 .. 127.0.0.K)."""
    return max(1, min(250, math.ceil(streams / PER_SOURCE)))


@dataclass
class ClientRun:
    """What client.mjs reported, and Relay's CPU sampled at its marks."""

    #: Per stream: status, frames, first frame (ms after its own request), last frame (ms after the first
    #: request), ended (its end marker seen), error ("" when none).
    rows: list[list[Any]]
    window_frames: int
    window_s: float
    missed: bool
    span_s: float
    frames: int
    #: The client's own CPU (user + system seconds, its whole life).
    cpu_s: float
    #: ``{"start"|"end": (time.perf_counter(), sample())}`` at the window's edges.
    marks: dict[str, tuple[float, float | None]] = field(default_factory=dict)


def run_client(
    port: int,
    request: bytes,
    streams: int,
    *,
    ramp: float,
    done: str,
    work: Path,
    cpus: set[int] | None,
    sample: Callable[[], float | None],
    timeout: float,
) -> ClientRun:
    """client.mjs: ``streams`` copies of ``request`` to 127.0.0.1:``port``, opened over ``ramp`` seconds, each
    ending at ``done``; pinned to ``cpus``. Raises BenchError when it does not report."""
    executable = node()
    if executable is None:
        raise BenchError(INSTALL_HINT)
    request_file = work / f"request-{port}-{streams}.http"
    request_file.write_bytes(request)
    argv = [executable, str(CLIENT), "--port", str(port), "--request", str(request_file)]
    argv += ["--streams", str(streams), "--ramp", str(ramp), "--done", done]
    argv += ["--sources", str(sources_for(streams)), "--timeout", str(timeout)]
    log = work / f"client-{port}.log"
    marks: dict[str, tuple[float, float | None]] = {}
    with open(log, "wb") as errors:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, preexec_fn=affinity(cpus)
        )
    assert proc.stdout is not None
    document: dict[str, Any] | None = None
    try:
        for line in _lines(proc.stdout.fileno(), time.monotonic() + timeout + 30):
            if line.startswith(b"mark "):
                what = line[5:].decode("ascii")
                if what in ("start", "end"):
                    marks[what] = (time.perf_counter(), sample())
            elif line.startswith(b"{"):
                document = json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
    if document is None:
        tail = log.read_text(encoding="utf-8", errors="replace")[-1500:]
        raise BenchError(f"the node client did not report (status {proc.returncode}): {tail}")
    window = document["window"]
    return ClientRun(
        rows=document["streams"],
        window_frames=window["frames"],
        window_s=window["seconds"],
        missed=window["missed"],
        span_s=document["span_s"],
        frames=document["frames"],
        cpu_s=document["cpu_s"],
        marks=marks,
    )


def _lines(fd: int, deadline: float) -> Iterator[bytes]:
    """The lines read from ``fd`` until it closes or ``deadline`` (time.monotonic) passes, as they come."""
    pending = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return
        data = os.read(fd, 1 << 16)
        if not data:
            if pending:
                yield pending
            return
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line

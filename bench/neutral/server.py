"""The neutral mock's process: the C mock (cmock.c, where gcc builds it) or the node one (mock.mjs), the same answers
byte for byte; its address, its CPU and its own counts of what it answered."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cpu import process_seconds
from bench.neutral import cbuild
from bench.procs import BenchError, Server

MOCK = Path(__file__).resolve().parent / "mock.mjs"
INSTALL_HINT = "node not found: apt-get install nodejs (Node 20 or later) runs the neutral mock"
#: The seed of the jittered cadence (bench-jitter): the same gaps in every run.
SEED = 15
#: Which mock runs: ``node`` (the default), ``c`` (fails when it cannot be built), or ``auto`` (c where gcc is, else
#: node). The C mock is not the default: it is 2 to 3 times cheaper per paced frame than node, but not the 10 times
#: below Relay that issue 15 asks for (bench/README.md, "The neutral mock"), so it is asked for, not assumed.
MOCKS = ("node", "c", "auto")


@dataclass
class NeutralMock:
    """A running neutral mock: ``address`` is ``127.0.0.1:PORT``."""

    address: str
    pid: int
    #: ``c`` or ``node``, and why (``auto`` falling back to node says what the C mock lacked).
    kind: str = "node"
    note: str = ""

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds the mock has used so far (0.0 when /proc cannot tell)."""
        return process_seconds(self.pid) or 0.0

    def stats(self) -> dict[str, Any]:
        """What it answered so far: ``requests`` (generation requests), ``streams``, ``frames`` (SSE events
        written in streams), ``bytes`` and ``dialects`` (generation requests per dialect)."""
        with urllib.request.urlopen(f"{self.base_url}/_neutral/stats", timeout=10) as answer:
            counts: dict[str, Any] = json.loads(answer.read())
        return counts


def argv(port: int = 0, seed: int = SEED) -> list[str]:
    executable = shutil.which("node")
    if executable is None:
        raise BenchError(INSTALL_HINT)
    return [executable, str(MOCK), "--host", "127.0.0.1", "--port", str(port), "--seed", str(seed)]


def choose(mock: str, cache: Path, seed: int = SEED) -> tuple[list[str], str, str]:
    """(argv, kind, note) of the mock to run: ``mock`` one of MOCKS; the C mock built under ``cache``."""
    if mock not in MOCKS:
        raise BenchError(f"unknown mock {mock!r}: one of {', '.join(MOCKS)}")
    if mock != "node":
        reason = cbuild.unavailable()
        if reason is None:
            built = cbuild.build(cache, seed)
            return [str(built.binary), "--table", str(built.table), "--host", "127.0.0.1", "--port", "0"], "c", ""
        if mock == "c":
            raise BenchError(f"the C mock cannot run: {reason}")
        return argv(0, seed), "node", f"node mock: {reason}"
    return argv(0, seed), "node", ""


@contextmanager
def neutral_mock(
    workdir: Path, *, cpus: set[int] | None = None, seed: int = SEED, mock: str = "node", cache: Path | None = None
) -> Iterator[NeutralMock]:
    """The neutral mock running (pinned to ``cpus`` when given, its log in ``workdir``) for the block's
    duration; stopped at its end. ``mock``: one of MOCKS; the C mock is built under ``cache`` (None: in
    ``workdir``, built afresh). Raises BenchError when the mock asked for cannot run or does not start."""
    workdir.mkdir(parents=True, exist_ok=True)
    command, kind, note = choose(mock, cache if cache is not None else workdir, seed)
    server = Server("neutral-mock", command, cpus, workdir)
    server.start()
    try:
        yield NeutralMock(f"{server.host}:{server.port}", server.pid, kind, note)
    finally:
        server.stop()

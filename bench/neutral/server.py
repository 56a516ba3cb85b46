"""The neutral mock's process: started with node, its address, its CPU and its own counts of what it answered."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.cpu import process_seconds
from bench.procs import BenchError, Server

MOCK = Path(__file__).resolve().parent / "mock.mjs"
INSTALL_HINT = "node not found: apt-get install nodejs (Node 20 or later) runs the neutral mock"
#: The seed of the jittered cadence (bench-jitter): the same gaps in every run.
SEED = 15


@dataclass
class NeutralMock:
    """A running neutral mock: ``address`` is ``127.0.0.1:PORT``."""

    address: str
    pid: int

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

    def stats(self) -> dict[str, int]:
        """What it answered so far: ``requests`` (generation requests), ``streams``, ``frames`` (SSE events
        written in streams) and ``bytes``."""
        with urllib.request.urlopen(f"{self.base_url}/_neutral/stats", timeout=10) as answer:
            counts: dict[str, int] = json.loads(answer.read())
        return counts


def argv(port: int = 0, seed: int = SEED) -> list[str]:
    executable = shutil.which("node")
    if executable is None:
        raise BenchError(INSTALL_HINT)
    return [executable, str(MOCK), "--host", "127.0.0.1", "--port", str(port), "--seed", str(seed)]


@contextmanager
def neutral_mock(workdir: Path, *, cpus: set[int] | None = None, seed: int = SEED) -> Iterator[NeutralMock]:
    """The neutral mock running (pinned to ``cpus`` when given, its log in ``workdir``) for the block's
    duration; stopped at its end. Raises BenchError when node is missing or it does not start."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = Server("neutral-mock", argv(0, seed), cpus, workdir)
    server.start()
    try:
        yield NeutralMock(f"{server.host}:{server.port}", server.pid)
    finally:
        server.stop()

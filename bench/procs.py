"""The benchmark's processes: start one pinned to its cores, wait for its listening line, stop it."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 15.0


class BenchError(Exception):
    """The benchmark itself failed (a process did not start, the load generator crashed)."""


def pinning_plan(enabled: bool) -> dict[str, set[int] | None]:
    """Which cores each role runs on: Relay alone on one core, the rest on the other(s)."""
    cpus = sorted(os.sched_getaffinity(0))
    roles = ("relay", "mock", "loadgen", "canned", "profiler")
    if not enabled or len(cpus) < 2:
        return dict.fromkeys(roles)
    relay, mock = {cpus[1]}, {cpus[0]}
    loadgen = {cpus[2]} if len(cpus) >= 3 else {cpus[0]}
    # The canned server stands in for Relay in the ceiling check, so it takes Relay's core.
    return {"relay": relay, "mock": mock, "loadgen": loadgen, "canned": relay, "profiler": loadgen}


def describe_pinning(plan: dict[str, set[int] | None]) -> str:
    if all(v is None for v in plan.values()):
        return "no pinning (the scheduler places every process)"
    parts = [f"{role} -> cpu {','.join(map(str, sorted(cpus)))}" for role, cpus in plan.items() if cpus is not None]
    return "; ".join(parts)


def affinity(cpus: set[int] | None) -> Callable[[], None] | None:
    return partial(os.sched_setaffinity, 0, cpus) if cpus else None


class Server:
    """A server process that prints ``... listening on HOST:PORT`` on stdout once it accepts."""

    def __init__(self, name: str, argv: Sequence[str], cpus: set[int] | None, log_dir: Path, cwd: Path = ROOT) -> None:
        self.name = name
        self.cwd = cwd
        self.argv = list(argv)
        self.cpus = cpus
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = ""
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> Server:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                bufsize=0,
                preexec_fn=affinity(self.cpus),
            )
        line = self._read_line(timeout)
        if "listening on" not in line:
            self.kill()
            raise BenchError(f"{self.name} did not start: {line!r}\n{self.log_tail()}")
        address = line.split("listening on", 1)[1].split()[0]
        host, _, port = address.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        return self

    def _read_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout
        data = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select([out], [], [], remaining)
            if not ready:
                break
            chunk = os.read(out.fileno(), 4096)
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", "replace").strip()

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def logged_errors(self) -> int:
        """Tracebacks and ERROR lines the process wrote to its log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return 0
        return sum(1 for line in text.splitlines() if " ERROR " in line or line.startswith("Traceback"))


def run_loadgen(
    spec: dict[str, Any], cpus: set[int] | None, timeout: float, module: str = "bench.loadgen"
) -> dict[str, Any]:
    """``python -m MODULE SPEC`` (the load generator, or bench.gateway's counting one) pinned to ``cpus``;
    its JSON answer."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", module, json.dumps(spec)],
            capture_output=True,
            cwd=ROOT,
            timeout=timeout,
            preexec_fn=affinity(cpus),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"load generator ({spec['mode']}) ran over {timeout:.0f}s") from exc
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace")[-2000:]
        raise BenchError(f"load generator ({spec['mode']}) failed with status {done.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result

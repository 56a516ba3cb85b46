"""Peers' processes: started on a free port and polled until they answer HTTP (they print no listening line of
bench/procs.py's kind), then stopped like every other server of the benchmark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.procs import STOP_TIMEOUT, BenchError, Server, affinity


def free_port() -> int:
    """A port free on 127.0.0.1 now (the kernel's pick; a peer binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_http(port: int) -> bool:
    """Whether something on 127.0.0.1:``port`` answers ``GET /`` with an HTTP status line (any status)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


class PolledServer(Server):
    """A server started on ``port`` (already in its argv) and ready once it answers HTTP there."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        cpus: set[int] | None,
        log_dir: Path,
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(name, argv, cpus, log_dir, cwd=cwd)
        self.env = {**os.environ, **(env or {})}
        self.host, self.port = "127.0.0.1", port

    def start(self, timeout: float = 120.0) -> PolledServer:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env=self.env,
                preexec_fn=affinity(self.cpus),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with status {self.proc.returncode}:\n{self.log_tail()}")
            if answers_http(self.port):
                return self
            time.sleep(0.25)
        self.kill()
        raise BenchError(f"{self.name} did not answer on port {self.port} within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM to its whole process group (a peer's workers too), SIGKILL to it after STOP_TIMEOUT."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)  # workers that outlived their parent
        return proc.returncode

    def kill(self) -> None:
        proc = self.proc
        if proc is not None:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def errors_of(output: str, limit: int = 1500) -> str:
    """What an installer said went wrong: its ``ERROR`` lines (pip) or ``npm error`` lines when it printed
    some, else the end of its output."""
    lines = [line for line in output.splitlines() if line.startswith(("ERROR", "npm error", "npm ERR!"))]
    return ("\n".join(lines) or output)[-limit:]

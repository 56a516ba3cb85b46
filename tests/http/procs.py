"""Helpers for tests that run ``relay serve`` as a real process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

from tests.conftest import BASE_CONFIG, process


def write_config(directory: Path, limits: str = "shutdown_grace = 5.0") -> str:
    path = directory / "relay.toml"
    path.write_text(BASE_CONFIG + f"\n[limits]\n{limits}\n")
    return str(path)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


async def exit_code(proc: subprocess.Popen[str], timeout: float) -> int:
    """Wait for the process without blocking Trio; it is killed (and the test fails) after ``timeout``."""
    try:
        return await trio.to_thread.run_sync(lambda: proc.wait(timeout=timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"process did not exit within {timeout}s") from None


async def refused_within(host: str, port: int, seconds: float) -> bool:
    """Whether new connections are refused at some point within ``seconds``."""
    with trio.move_on_after(seconds):
        while True:
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError:
                return True
            await stream.aclose()
            await trio.sleep(0.02)
    return False


@contextmanager
def session_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Like ``tests.conftest.process``, in a session of its own: ``os.killpg(proc.pid, …)`` is a
    terminal's Ctrl-C, reaching every process of the group and none of the test's."""
    with process(*args, new_session=True) as started:
        yield started

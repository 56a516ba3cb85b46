"""``relay reload``: have a running ``relay serve`` read relay.toml again, and the pid file that finds it.

``relay serve`` writes its process id to ``--pid-file`` (or ``[server] pid_file``) and removes the file at its end;
with ``--workers N`` that is the supervisor's, which passes SIGHUP on to every worker. ``relay reload`` checks the
file first (as ``relay check-config``: a file with problems is reported and no signal sent), then sends SIGHUP to
the process the pid file names. The server logs whether it applied the file (docs/configuration.md, "Live reload").
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from relay.config import ConfigError, load

__all__ = ["add_parser", "pid_file", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    reload = commands.add_parser(
        "reload", help="have the running server read relay.toml again (SIGHUP to the process of its pid file)"
    )
    reload.add_argument("--config", default=default_config, help="path of relay.toml (default: %(default)s)")
    reload.add_argument("--pid-file", help="the server's pid file (default: [server] pid_file of relay.toml)")


@contextmanager
def pid_file(path: str) -> Iterator[None]:
    """This process's id in ``path`` for the body (nothing when ``path`` is empty); the file removed at the end."""
    if not path:
        yield
        return
    written = Path(path)
    written.write_text(f"{os.getpid()}\n", encoding="ascii")
    try:
        yield
    finally:
        written.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{args.config}: {problem}", file=sys.stderr)
        print(f"relay reload: {args.config} has problems: nothing sent (the server keeps its configuration)")
        return 2
    path = args.pid_file or config.server.pid_file
    if not path:
        print("relay reload: no pid file: give --pid-file, or set [server] pid_file in relay.toml", file=sys.stderr)
        return 2
    try:
        pid = int(Path(path).read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        print(f"relay reload: cannot read a process id from {path}: {exc}", file=sys.stderr)
        return 1
    if not _is_relay(pid):
        print(f"relay reload: process {pid} (from {path}) is not a running relay", file=sys.stderr)
        return 1
    os.kill(pid, signal.SIGHUP)
    print(f"relay reload: sent SIGHUP to {pid}; its log says whether {args.config} was applied")
    return 0


def _is_relay(pid: int) -> bool:
    """Whether ``pid`` runs Relay (a stale pid file may name a process that has nothing to do with it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():  # no /proc (not Linux): the process exists, trust the pid file
        return True
    try:
        return b"relay" in cmdline.read_bytes()
    except OSError:
        return False

"""``relay serve --workers N``: N worker processes sharing one port through SO_REUSEPORT.

The supervisor holds the port bound (not listening, so the kernel sends it no connections) and
runs each worker as ``relay serve --reuse-port`` in its own process group; a worker that dies is
started again after a short pause. SIGTERM or SIGINT is passed on to every worker, once, and each
then shuts down gracefully; SIGHUP is passed on to every worker each time, and each reads relay.toml
again. The supervisor announces itself ready once every worker has said it listens; on Linux a worker
whose supervisor dies (even by SIGKILL) gets SIGTERM, so none is orphaned.

The supervisor also makes a temporary folder for prometheus-client's multiprocess mode, hands it to the workers
as ``PROMETHEUS_MULTIPROC_DIR`` (so a scrape of ``/metrics`` answered by any worker counts them all), marks a
dead worker's live gauges gone, and removes the folder at its end (relay/metrics.py).
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

from prometheus_client.multiprocess import mark_process_dead

from relay.metrics import MULTIPROC_ENV

log = logging.getLogger("relay.workers")

_RESTART_PAUSE = 1.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies; SIGHUP ignored until the worker takes it (a
    reload passed on while the worker starts must not end it)."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def supervise(worker_argv: Sequence[str], count: int, grace: float, on_ready: Callable[[], None]) -> int:
    metrics_dir = tempfile.mkdtemp(prefix="relay-metrics-")
    try:
        return _supervise(worker_argv, count, grace, on_ready, metrics_dir)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(
    worker_argv: Sequence[str], count: int, grace: float, on_ready: Callable[[], None], metrics_dir: str
) -> int:
    stopping: int | None = None
    env = {**os.environ, MULTIPROC_ENV: metrics_dir}
    signalled: set[int] = set()

    def pass_on(signum: int) -> None:
        for proc in procs:
            if proc.poll() is None and proc.pid not in signalled:
                signalled.add(proc.pid)
                proc.send_signal(signum)

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = signum
        pass_on(signum)

    def reload(_signum: int, _frame: object) -> None:
        # Every time (not once, as a stop): each worker reads relay.toml again (relay/gateway/live.py).
        for proc in procs:
            if proc.poll() is None and proc.pid not in signalled:
                proc.send_signal(signal.SIGHUP)

    def start() -> subprocess.Popen[bytes]:
        # Its own process group: a terminal's Ctrl-C reaches the supervisor only, which passes it on
        # once. (A worker that got it twice, from the terminal and from here, would stop at once.)
        return subprocess.Popen(
            [sys.executable, "-m", "relay", *worker_argv],
            process_group=0,
            stdout=subprocess.PIPE,
            preexec_fn=_die_with_parent,
            env=env,
        )

    procs: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    for _ in range(count):
        procs.append(start())
    for proc in procs:
        assert proc.stdout is not None
        if b"listening on" not in proc.stdout.readline():
            log.error("worker %d did not start", proc.pid)
    if stopping is None:
        on_ready()
    while stopping is None:
        time.sleep(0.2)
        for i, proc in enumerate(procs):
            code = proc.poll()
            if code is not None and stopping is None:
                log.error("worker %d exited with %d; starting it again", proc.pid, code)
                mark_process_dead(proc.pid, metrics_dir)
                time.sleep(_RESTART_PAUSE)
                procs[i] = start()
    pass_on(stopping)  # workers started while the signal arrived
    deadline = time.monotonic() + grace + 5
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return 0

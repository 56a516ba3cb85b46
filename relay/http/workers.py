"""``relay serve --workers N``: N worker processes sharing one port through SO_REUSEPORT.

The supervisor holds the port bound (not listening, so the kernel sends it no connections) and
runs each worker as ``relay serve --worker-of PID``; a worker that dies is started again after a
short pause. SIGTERM or SIGINT is passed on to every worker, which then shuts down gracefully.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

log = logging.getLogger("relay.workers")

_RESTART_PAUSE = 1.0


def supervise(worker_argv: Sequence[str], count: int, grace: float) -> int:
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "relay", *worker_argv])

    procs = [start() for _ in range(count)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        time.sleep(0.2)
        for i, proc in enumerate(procs):
            code = proc.poll()
            if code is not None and not stopping:
                log.error("worker %d exited with %d; starting it again", proc.pid, code)
                time.sleep(_RESTART_PAUSE)
                procs[i] = start()
    deadline = time.monotonic() + grace + 5
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return 0

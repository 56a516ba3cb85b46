"""The machine's load when a run starts: a busy machine makes every figure of the run noisy.

The benchmark's own processes are not running yet, so the 1-minute load average is other people's work
(or a run that just finished). Above ``BUSY_PER_CORE`` per core the run goes on but says so.
"""

from __future__ import annotations

import os
from typing import Any

#: Load average per core above which the machine is called busy.
BUSY_PER_CORE = 0.5


def load_at_start() -> dict[str, Any]:
    """The 1, 5 and 15-minute load averages, the usable cores, and whether the machine is busy."""
    cores = len(os.sched_getaffinity(0))
    one, five, fifteen = os.getloadavg()
    return {
        "load_1m": round(one, 2),
        "load_5m": round(five, 2),
        "load_15m": round(fifteen, 2),
        "cores": cores,
        "busy": is_busy(one, cores),
    }


def is_busy(load: float, cores: int) -> bool:
    return load > BUSY_PER_CORE * max(cores, 1)


def load_lines(load: dict[str, Any]) -> list[str]:
    """The line every report starts with, and the warning when the machine was busy."""
    lines = [
        f"load average at start: {load['load_1m']:.2f} {load['load_5m']:.2f} {load['load_15m']:.2f} "
        f"({load['cores']} cores)"
    ]
    if load["busy"]:
        lines.append(
            f"WARNING: the machine was busy at start (load {load['load_1m']:.2f} > {BUSY_PER_CORE:g} per core): "
            "the figures are noisy; rerun on a quiet machine before quoting them."
        )
    return lines

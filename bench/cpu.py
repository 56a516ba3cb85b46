"""CPU accounting from Linux /proc: per process, and for the whole machine (to spot foreign load).

Every figure is in cores: CPU seconds divided by wall seconds (1.0 = one core busy all along).
Off Linux every reading is None and the figures are left out.
"""

from __future__ import annotations

import os
import time

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a process so far, None when unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def tree_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a process and of every live descendant, None when ``pid`` is unreadable.

    ``relay serve --workers N`` is a supervisor whose N workers do the work: its own figure is about 0. The
    kernel here has no ``/proc/PID/task/TID/children``, so the descendants are found by each process's parent
    id in ``/proc/*/stat`` (a scan of a few hundred small files, done at the edges of a window only).
    """
    own = process_seconds(pid)
    if own is None:
        return None
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        parent = int(stat[stat.rfind(b")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    total, todo = own, list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        seconds = process_seconds(child)
        total += seconds or 0.0
        todo += children.get(child, ())
    return total


def machine_seconds() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine so far, all cores summed."""
    try:
        with open("/proc/stat", "rb") as f:
            line = f.readline()
    except OSError:
        return None
    values = [int(v) for v in line.split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = values[:7]
    steal = values[7] if len(values) > 7 else 0
    return (user + nice + system + irq + softirq) / _TICK, steal / _TICK


class Snapshot:
    """CPU seconds of some processes (each with its descendants: a Relay's workers) and of the machine."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.wall = time.perf_counter()
        self.processes = {name: tree_seconds(pid) for name, pid in pids.items()}
        self.machine = machine_seconds()


def usage(before: Snapshot, after: Snapshot, extra: dict[str, float] | None = None) -> dict[str, float]:
    """Cores used between two snapshots: each process, the machine, steal, and ``other`` (not ours).

    ``extra`` adds CPU seconds of processes measured another way (a load generator that has exited).
    """
    wall = after.wall - before.wall
    if wall <= 0:
        return {}
    out: dict[str, float] = {}
    ours = 0.0
    for name, start in before.processes.items():
        end = after.processes.get(name)
        if start is not None and end is not None:
            out[name] = round((end - start) / wall, 3)
            ours += end - start
    for name, seconds in (extra or {}).items():
        out[name] = round(seconds / wall, 3)
        ours += seconds
    if before.machine is not None and after.machine is not None:
        busy = after.machine[0] - before.machine[0]
        out["machine"] = round(busy / wall, 3)
        out["steal"] = round((after.machine[1] - before.machine[1]) / wall, 3)
        out["other"] = round(max(0.0, busy - ours) / wall, 3)
    return out

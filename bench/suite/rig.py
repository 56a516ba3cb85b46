"""What every lane shares: the targets as endpoints, the pinning plan, the load generator's runs, the bottleneck
flags, and the progress bar.

The lanes see the targets (bench.targets.Target) through their ``name``, ``kind``, ``base_url``, ``dialect``,
``pids``, ``configured``, their verified routes (``pairs()``) and the requests they build (``request()``); and the
neutral mock (bench.neutral) through its ``address`` and ``pid``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.neutral import NeutralMock, wire
from bench.procs import ROOT, BenchError, affinity
from bench.targets import Target

#: A single-threaded process (the load generator, the node fan-out client, the neutral mock) is called the
#: bottleneck of a lane when it used this share of its one core or more over the measured window.
SATURATED = 0.85
#: The machine is called saturated when all its cores together were this busy.
MACHINE_SATURATED = 0.95


#: What the lanes are given: the targets up and verified, and the neutral mock.
TargetLike = Target
MockLike = NeutralMock


@dataclass(frozen=True)
class Endpoint:
    """One target spoken to in one dialect (through one of its routes): where to send, and its request bytes."""

    name: str
    host: str
    port: int
    dialect: str
    #: (shape, stream, prompt or None) -> the whole request's bytes.
    build: Callable[[str, bool, str | None], bytes]

    def request(self, shape: str, *, stream: bool, prompt: str | None = None) -> str:
        """The request's bytes as a latin-1 string (what the load generator's JSON spec carries)."""
        return self.build(shape, stream, prompt).decode("latin-1")

    def spec(self, label: str, shape: str, *, stream: bool, prompt: str | None = None) -> dict[str, Any]:
        return {
            "name": label,
            "host": self.host,
            "port": self.port,
            "dialect": self.dialect,
            "stream": stream,
            "request": self.request(shape, stream=stream, prompt=prompt),
        }

    def renamed(self, name: str) -> Endpoint:
        return Endpoint(name, self.host, self.port, self.dialect, self.build)


def endpoint(target: TargetLike, dialect: str | None = None, upstream: str | None = None) -> Endpoint:
    """``target`` spoken to in ``dialect`` (its own by default) through its route to ``upstream`` (by default the
    same dialect, else its first): bench.targets' ``Target.request`` builds the bytes (each route's model, headers
    and Gemini path). A target without routes gets the dialect's plain request with its ``model`` (``bench-fixed``
    standing for the shape)."""
    url = urlsplit(target.base_url)
    client = dialect or target.dialect
    if target.routes:

        def build(shape: str, stream: bool, prompt: str | None) -> bytes:
            extra = {"message": prompt} if prompt is not None else {}
            return target.request(shape, stream=stream, client=client, upstream=upstream, **extra)

    else:
        build = _plain(target.base_url, target.api_key, target.model, client)
    return Endpoint(target.name, url.hostname or "127.0.0.1", url.port or 80, client, build)


def _plain(base_url: str, key: str, model: str, dialect: str) -> Callable[[str, bool, str | None], bytes]:
    """Requests of ``dialect`` to ``base_url`` for ``model`` (``bench-fixed`` standing for the shape)."""

    def build(shape: str, stream: bool, prompt: str | None) -> bytes:
        named = model.replace("bench-fixed", f"bench-{shape}")
        extra = {"message": prompt} if prompt is not None else {}
        return wire.request(base_url, dialect, named, stream=stream, key=key, **extra)

    return build


def mock_endpoint(mock: MockLike, dialect: str) -> Endpoint:
    """The neutral mock itself in ``dialect`` (the ``direct`` path every "added" figure is measured against)."""
    host, _, port = mock.address.rpartition(":")
    return Endpoint(
        "direct", host, int(port), dialect, _plain(f"http://{mock.address}", "bench", "bench-fixed", dialect)
    )


# ---- pinning -----------------------------------------------------------------------------------------


def pinning(enabled: bool, cpus: Iterable[int] | None = None) -> dict[str, set[int] | None]:
    """Cores per role: the rig (mock, load generator, this process) apart from the targets when cores allow.

    2 cores: the rig on the first, the targets on the second. 3: the mock, the load generator, the targets one
    each. 4 or more: the mock and the load generator one each, the targets every other core.
    """
    every = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
    if not enabled or len(every) < 2:
        return {"mock": None, "loadgen": None, "targets": None}
    if len(every) == 2:
        return {"mock": {every[0]}, "loadgen": {every[0]}, "targets": {every[1]}}
    return {"mock": {every[0]}, "loadgen": {every[1]}, "targets": set(every[2:])}


def describe(plan: dict[str, set[int] | None]) -> str:
    if all(v is None for v in plan.values()):
        return "no pinning (the scheduler places every process)"
    return "; ".join(f"{role} -> cpu {','.join(map(str, sorted(c)))}" for role, c in plan.items() if c is not None)


def pin_tree(pid: int, cpus: set[int] | None) -> None:
    """Every thread of ``pid`` and of its descendants onto ``cpus`` (a target already running, and its workers)."""
    if not cpus:
        return
    for proc in [pid, *descendants(pid)]:
        try:
            tasks = os.listdir(f"/proc/{proc}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                os.sched_setaffinity(int(task), cpus)
            except OSError:
                pass


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        children.setdefault(int(stat[stat.rfind(b")") + 2 :].split()[1]), []).append(int(entry.name))
    out, todo = [], list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children.get(child, ())
    return out


def rss_bytes(pids: Iterable[int]) -> int:
    """Resident memory of ``pids`` and their descendants (bytes; 0 for what is unreadable)."""
    total = 0
    for pid in pids:
        for proc in [pid, *descendants(pid)]:
            try:
                with open(f"/proc/{proc}/statm", "rb") as f:
                    total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, ValueError, IndexError):
                continue
    return total


# ---- the load generator ------------------------------------------------------------------------------


def run_loadgen(spec: dict[str, Any], cpus: set[int] | None, timeout: float) -> dict[str, Any]:
    """``python -m bench.suite.loadgen`` with ``spec`` on stdin, pinned to ``cpus``; its JSON answer."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.suite.loadgen"],
            input=json.dumps(spec).encode(),
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


def target_pids(pids: list[int]) -> dict[str, int]:
    """A target's processes keyed for bench.cpu.Snapshot (``target``, ``target.1``, ...)."""
    return {("target" if i == 0 else f"target.{i}"): pid for i, pid in enumerate(pids)}


def target_cores(usage: dict[str, float]) -> float:
    return round(sum(v for k, v in usage.items() if k == "target" or k.startswith("target.")), 3)


# ---- bottleneck flags --------------------------------------------------------------------------------


def flags(lane: str, target: str, usage: dict[str, float], plan: dict[str, set[int] | None] | None = None) -> list[str]:
    """The measured reasons a lane's figure for ``target`` is not the target's own (``usage``: bench.cpu.usage's
    cores per process over the lane's window): the load generator or the mock near its one core (each is
    single-threaded), the two of them near the core(s) they share when ``plan`` pins them together, or the whole
    machine busy; and foreign load (noise)."""
    out: list[str] = []
    for role, what in (("loadgen", "the load generator"), ("mock", "the mock")):
        used = usage.get(role)
        if used is not None and used >= SATURATED:
            out.append(f"{lane} [{target}]: {what} used {used:.2f} of its core: it, not the target, was the bottleneck")
    shared = plan.get("mock") if plan and plan.get("mock") == plan.get("loadgen") else None
    if shared and not out:
        rig = (usage.get("loadgen") or 0.0) + (usage.get("mock") or 0.0)
        if rig >= SATURATED * len(shared):
            out.append(
                f"{lane} [{target}]: the mock and the load generator used {rig:.2f} of the {len(shared)} core(s) they"
                " share: the rig, not the target, was the bottleneck"
            )
    cores = os.cpu_count() or 1
    machine = usage.get("machine")
    if machine is not None and machine >= MACHINE_SATURATED * cores:
        out.append(f"{lane} [{target}]: the machine was saturated ({machine:.2f} of {cores} cores busy)")
    other = usage.get("other")
    if other is not None and other >= 0.25:
        out.append(f"{lane} [{target}]: processes outside the benchmark used {other:.2f} cores: noisy figures")
    return out


# ---- progress ----------------------------------------------------------------------------------------


class Progress:
    """A progress bar over the run's steps (tqdm on a terminal; nothing otherwise)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True, disable=None)

    def step(self, what: str) -> None:
        if self.bar is not None:
            self.bar.set_description(what[:40])
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class Settings:
    """How big each lane is (``--quick`` or full) and where it runs."""

    quick: bool
    #: Seconds of each measured load window (the sweep, the slow-client lane).
    seconds: float
    warmup_s: float
    #: Rounds (requests per target) of the concurrency-1 lanes.
    rounds: int
    stream_rounds: int
    convert_rounds: int
    long_rounds: int
    warmup_rounds: int
    sweep: tuple[int, ...]
    fanout: tuple[int, ...]
    #: The stream shape of the stream, fan-out and slow-client lanes.
    shape: str
    long_prompt_bytes: int
    slow_readers: int
    slow_stalled: int
    plan: dict[str, set[int] | None]
    work: Path
    progress: bool = True
    timeout: float = 300.0


def settings_for(quick: bool, seconds: float | None, work: Path, plan: dict[str, set[int] | None]) -> Settings:
    if quick:
        return Settings(
            quick=True,
            seconds=seconds or 1.0,
            warmup_s=min(0.3, seconds or 0.3),
            rounds=300,
            stream_rounds=8,
            convert_rounds=20,
            long_rounds=10,
            warmup_rounds=20,
            sweep=(1, 16, 64, 256),
            fanout=(64, 256),
            shape="fixed",
            long_prompt_bytes=400_000,
            slow_readers=8,
            slow_stalled=64,
            plan=plan,
            work=work,
        )
    return Settings(
        quick=False,
        seconds=seconds or 5.0,
        warmup_s=1.0,
        rounds=3000,
        stream_rounds=50,
        convert_rounds=200,
        long_rounds=100,
        warmup_rounds=300,
        sweep=(1, 4, 16, 64, 128, 256),
        fanout=(64, 256, 1024, 4096),
        shape="fixed",
        long_prompt_bytes=400_000,
        slow_readers=16,
        slow_stalled=256,
        plan=plan,
        work=work,
    )


Step = Callable[[str], None]

"""The fan-out lane: 64 → 4,096 streams of the run's shape opened at once through each target, counted by
bench/fastpeer's node client (a few µs of CPU per frame, so that the client is not what caps the figure).

Per target and number of streams: frames delivered per second and as a share of the ideal (every stream at the
shape's pace: ``SHAPE_SECONDS``), time to first frame p99, streams that failed, the target's RSS growth per open
stream (its processes' peak resident memory during the run, sampled every 20 ms, minus before), the target's CPU
per frame, and the client's and the mock's CPU (the bottleneck flags). Figures are over the whole run, from the
first request sent to the last frame received (bench.fanout's ``span``): at thousands of streams on a few cores
the moment with every stream running may not exist.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.cpu import tree_seconds
from bench.fastpeer.rig import node, run_client
from bench.procs import BenchError
from bench.stats import percentile
from bench.suite.dialects import DIALECT
from bench.suite.lanes_c1 import baselines, measured
from bench.suite.rig import Endpoint, MockLike, Settings, Step, TargetLike, endpoint, flags, rss_bytes
from bench.suite.stats import interleaving

#: How long a stream of each shape lasts when served at its pace (bench/neutral/shapes.mjs): ``fixed`` is 64 tokens
#: 10 ms apart, ``tools`` 16 pieces 10 ms apart, ``reasoning`` 64 pieces 10 ms apart. ``jitter``'s seeded gaps are
#: not copied here: its pace is measured, one stream alone on the direct path (``ideal_seconds``).
SHAPE_SECONDS = {"fixed": 0.64, "tools": 0.16, "reasoning": 0.64}


class PeakRss:
    """Samples the RSS of some processes every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, pids: list[int], interval: float = 0.02) -> None:
        self.pids = pids
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pids))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu(pids: list[int]) -> float:
    return sum(tree_seconds(pid) or 0.0 for pid in pids)


def one(
    ep: Endpoint, streams: int, pids: list[int], mock: MockLike, settings: Settings, ideal_s: float
) -> dict[str, Any]:
    """One fan-out run of ``streams`` streams against one target (its processes ``pids``)."""
    rss_before = rss_bytes(pids)
    cpu_before, mock_before, wall_before = _cpu(pids), tree_seconds(mock.pid) or 0.0, time.perf_counter()
    with PeakRss(pids) as peak:
        run = run_client(
            ep.port,
            ep.request(settings.shape, stream=True).encode("latin-1"),
            streams,
            ramp=0.0,
            done=DIALECT[ep.dialect].done,
            work=settings.work,
            cpus=settings.plan["loadgen"],
            sample=lambda: None,
            timeout=min(settings.timeout, 120.0),
        )
    wall = time.perf_counter() - wall_before
    target_cpu = _cpu(pids) - cpu_before
    mock_cpu = (tree_seconds(mock.pid) or 0.0) - mock_before
    ok = [r for r in run.rows if r[0] == 200 and r[4] and not r[5]]
    first = sorted(r[2] for r in run.rows if r[2] is not None)
    per_stream = max((r[1] for r in ok), default=0)
    rate = run.frames / run.span_s if run.span_s > 0 else 0.0
    ideal_rate = streams * per_stream / ideal_s if ideal_s > 0 else 0.0
    usage = {
        "loadgen": round(run.cpu_s / wall, 3) if wall > 0 else 0.0,
        "mock": round(mock_cpu / wall, 3) if wall > 0 else 0.0,
        "target": round(target_cpu / wall, 3) if wall > 0 else 0.0,
    }
    open_streams = sum(1 for r in run.rows if r[0] == 200)
    return {
        "streams": streams,
        "frames": run.frames,
        "span_s": round(run.span_s, 3),
        "frames_per_s": round(rate, 1),
        "of_ideal": round(rate / ideal_rate, 3) if ideal_rate else None,
        "ttft_p50_ms": round(percentile(first, 50), 2) if first else None,
        "ttft_p99_ms": round(percentile(first, 99), 2) if first else None,
        "errors": streams - len(ok),
        "rss_before_mib": round(rss_before / 2**20, 1),
        "rss_peak_mib": round(peak.peak / 2**20, 1),
        "rss_per_stream_kib": round((peak.peak - rss_before) / 1024 / open_streams, 2) if open_streams else None,
        "cpu_us_per_frame": round(target_cpu / run.frames * 1e6, 2) if run.frames else None,
        "cpu": usage,
    }


def ideal_seconds(settings: Settings, direct: Endpoint) -> float:
    """How long one stream of the run's shape lasts at its pace: ``SHAPE_SECONDS``, or one stream alone on the
    direct path, timed by the same client (``jitter``, ``instant``)."""
    if settings.shape in SHAPE_SECONDS:
        return SHAPE_SECONDS[settings.shape]
    run = run_client(
        direct.port,
        direct.request(settings.shape, stream=True).encode("latin-1"),
        1,
        ramp=0.0,
        done=DIALECT[direct.dialect].done,
        work=settings.work,
        cpus=settings.plan["loadgen"],
        sample=lambda: None,
        timeout=60.0,
    )
    return run.span_s


def fanout(targets: list[TargetLike], mock: MockLike, settings: Settings, step: Step) -> dict[str, Any]:
    if node() is None:
        return {"lane": "fanout", "results": {}, "flags": [], "skipped": {"*": "node is not installed"}}
    chosen = measured(targets)
    base = baselines(targets, mock, {t.dialect for t in chosen} or {"openai_chat"})
    paths = [(b.name, b, [mock.pid]) for b in base.values()]
    paths += [(t.name, endpoint(t), list(t.pids)) for t in chosen]
    by_label = {p[0]: p for p in paths}
    labels = list(by_label)
    results: dict[str, dict[str, Any]] = {label: {} for label in labels}
    lane_flags: list[str] = []
    skipped: dict[str, str] = {}
    ideal_s = ideal_seconds(settings, paths[0][1])
    for level, order in zip(settings.fanout, interleaving(labels, len(settings.fanout)), strict=True):
        for label in order:
            _, ep, pids = by_label[label]
            try:
                row = one(ep, level, pids, mock, settings, ideal_s)
            except BenchError as exc:
                skipped[f"{label} {level}"] = str(exc)[:300]
                step(f"fanout {label} {level}")
                continue
            step(f"fanout {label} {level}")
            results[label][str(level)] = row
            lane_flags += flags(f"fanout {level}", label, row["cpu"], settings.plan)
    return {
        "lane": "fanout",
        "shape": settings.shape,
        "ideal_stream_s": ideal_s,
        "levels": list(settings.fanout),
        "results": results,
        "flags": lane_flags,
        "skipped": skipped,
    }

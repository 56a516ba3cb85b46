"""The lanes under load, one target at a time, the targets' turns rotating at every step so that drift is shared.

``sweep``  plain answers (shape ``instant``) at each concurrency of ``settings.sweep`` (1 → 256): req/s, latency
           p50/p99, errors, the target's CPU per request, and the load generator's and the mock's CPU (the
           bottleneck flags).
``slow``   ``slow_readers`` clients reading streams of shape ``instant`` back to back, first alone, then beside
           ``slow_stalled`` clients that each open a stream of the run's shape and never read it: the readers'
           TTFT p50/p99 both ways, and the difference.
"""

from __future__ import annotations

from typing import Any

from bench.suite.lanes_c1 import baselines, measured
from bench.suite.rig import (
    Endpoint,
    MockLike,
    Settings,
    Step,
    TargetLike,
    endpoint,
    flags,
    run_loadgen,
    target_cores,
    target_pids,
)
from bench.suite.stats import interleaving, sketch, summary


def _paths(targets: list[TargetLike], mock: MockLike) -> list[tuple[str, Endpoint, list[int]]]:
    """(label, endpoint, pids) of the direct path and of every target, each in its own dialect. The direct path's
    processes are the mock's, counted once, as ``mock``."""
    chosen = measured(targets)
    base = baselines(targets, mock, {t.dialect for t in chosen} or {"openai_chat"})
    out: list[tuple[str, Endpoint, list[int]]] = [(b.name, b, []) for b in base.values()]
    return out + [(t.name, endpoint(t), [p for p in t.pids if p != mock.pid]) for t in chosen]


def _usage_figures(raw: dict[str, Any], pids: list[int]) -> dict[str, Any]:
    """The target's CPU (the mock's on the direct path, which has no processes of its own) and the rig's."""
    use = raw["cpu"]
    cores = target_cores(use) if pids else use.get("mock", 0.0)
    completed = raw["completed"]
    wall = raw["duration_s"]
    return {
        "target_cores": cores,
        "loadgen_cores": use.get("loadgen"),
        "mock_cores": use.get("mock"),
        "target_cpu_us_per_request": round(cores * wall / completed * 1e6, 1) if completed else None,
    }


def _none(lane: str, label: str, raw: dict[str, Any], settings: Settings) -> list[str]:
    """A window in which no answer completed: the figure is a queue, not a rate."""
    if raw["completed"]:
        return []
    return [
        f"{lane} [{label}]: no answer completed within the {settings.seconds:g} s window "
        f"({raw['in_flight_at_end']} still waiting, {raw['errors']} errors): a longer --seconds may tell more"
    ]


def sweep(targets: list[TargetLike], mock: MockLike, settings: Settings, step: Step) -> dict[str, Any]:
    paths = _paths(targets, mock)
    labels = [p[0] for p in paths]
    by_label = {p[0]: p for p in paths}
    results: dict[str, dict[str, Any]] = {label: {} for label in labels}
    lane_flags: list[str] = []
    for level, order in zip(settings.sweep, interleaving(labels, len(settings.sweep)), strict=True):
        for label in order:
            _, ep, pids = by_label[label]
            spec = {
                "mode": "load",
                "target": ep.spec(label, "instant", stream=False),
                "concurrency": level,
                "warmup": settings.warmup_s,
                "duration": settings.seconds,
                "pids": {"mock": mock.pid, **target_pids(pids)},
            }
            raw = run_loadgen(spec, settings.plan["loadgen"], settings.timeout)
            step(f"sweep {label} c={level}")
            results[label][str(level)] = {
                "rps": raw["rps"],
                "completed": raw["completed"],
                "errors": raw["errors"],
                "error_kinds": raw["error_kinds"],
                "in_flight_at_end": raw["in_flight_at_end"],
                "latency": summary(raw["latency"]),
                "latency_sketch": sketch(raw["latency"], 201),
                "cpu": raw["cpu"],
                **_usage_figures(raw, pids),
            }
            lane_flags += flags(f"sweep c={level}", label, raw["cpu"], settings.plan) + _none(
                f"sweep c={level}", label, raw, settings
            )
    return {
        "lane": "sweep",
        "shape": "instant",
        "levels": list(settings.sweep),
        "results": results,
        "flags": lane_flags,
    }


def slow(targets: list[TargetLike], mock: MockLike, settings: Settings, step: Step) -> dict[str, Any]:
    paths = _paths(targets, mock)
    runs = [(label, stalled) for label, _, _ in paths for stalled in (0, settings.slow_stalled)]
    by_label = {p[0]: p for p in paths}
    results: dict[str, dict[str, Any]] = {p[0]: {} for p in paths}
    lane_flags: list[str] = []
    order = interleaving([f"{label}\0{stalled}" for label, stalled in runs], 1)[0]
    for key in order:
        label, stalled_text = key.split("\0")
        stalled = int(stalled_text)
        _, ep, pids = by_label[label]
        target = ep.spec(label, "instant", stream=True)
        stalled_request = ep.request(settings.shape, stream=True)
        spec = {
            "mode": "load",
            "target": target,
            "stalled_request": stalled_request,
            "stalled": stalled,
            "concurrency": settings.slow_readers,
            "warmup": settings.warmup_s,
            "duration": settings.seconds,
            "pids": {"mock": mock.pid, **target_pids(pids)},
        }
        raw = run_loadgen(spec, settings.plan["loadgen"], settings.timeout)
        step(f"slow {label} stalled={stalled}")
        results[label]["with" if stalled else "alone"] = {
            "stalled": stalled,
            "readers": settings.slow_readers,
            "completed": raw["completed"],
            "errors": raw["errors"],
            "error_kinds": raw["error_kinds"],
            "in_flight_at_end": raw["in_flight_at_end"],
            "ttft": summary(raw["ttft"]),
            "ttft_sketch": sketch(raw["ttft"], 201),
            "cpu": raw["cpu"],
            **_usage_figures(raw, pids),
        }
        lane_flags += flags(f"slow stalled={stalled}", label, raw["cpu"], settings.plan) + _none(
            f"slow stalled={stalled}", label, raw, settings
        )
    for row in results.values():
        if "alone" in row and "with" in row:
            a, w = row["alone"]["ttft"], row["with"]["ttft"]
            row["ttft_change"] = {k: round(w[k] - a[k], 4) for k in ("p50", "p99") if k in a and k in w}
    return {
        "lane": "slow",
        "shape": "instant",
        "stalled_shape": settings.shape,
        "results": results,
        "flags": lane_flags,
    }

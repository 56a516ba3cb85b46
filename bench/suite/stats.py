"""The suite's statistics: summaries with p99.9, "added" figures, CDFs, the quantile sketch kept in the JSON, and
the interleaving order of the rounds.

Samples are milliseconds (floats). Percentiles are bench.stats' (linear interpolation between order statistics),
so the suite and the older lanes agree on what "p99" means.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from bench.stats import percentile

#: The percentiles every summary carries (the key is the name in the JSON and the tables).
PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50), ("p90", 90), ("p99", 99), ("p99_9", 99.9))
#: Points of the quantile sketch kept per sample set: the 0th, 0.1th, ..., 100th percentile.
SKETCH_POINTS = 1001


def summary(samples: Sequence[float]) -> dict[str, float]:
    """n, mean, p50, p90, p99, p99.9 and max of ``samples`` (ms), rounded to 0.1 µs; ``{"n": 0}`` when empty."""
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    out: dict[str, float] = {"n": len(ordered), "mean": round(math.fsum(ordered) / len(ordered), 4)}
    for key, q in PERCENTILES:
        out[key] = round(percentile(ordered, q), 4)
    out["max"] = round(ordered[-1], 4)
    return out


def added(target: dict[str, float], baseline: dict[str, float]) -> dict[str, float]:
    """What ``target`` adds to ``baseline`` at each percentile and the mean (target - baseline, ms)."""
    out: dict[str, float] = {}
    for key in ("mean", *(k for k, _ in PERCENTILES)):
        if key in target and key in baseline:
            out[key] = round(target[key] - baseline[key], 4)
    return out


def sketch(samples: Sequence[float], points: int = SKETCH_POINTS) -> list[float]:
    """``points`` evenly spaced quantiles of ``samples`` (min to max): the distribution, small enough for the JSON.

    The report draws its CDFs and histograms from this sketch (each point stands for 1/(points-1) of the samples),
    so a run of a million samples and one of a thousand cost the same to store and plot.
    """
    ordered = sorted(samples)
    if not ordered:
        return []
    if len(ordered) <= points:
        return [round(v, 4) for v in ordered]
    return [round(percentile(ordered, 100 * i / (points - 1)), 4) for i in range(points)]


def cdf(sketched: Sequence[float]) -> tuple[list[float], list[float]]:
    """(values, cumulative fraction) of a sorted sample set or sketch: the empirical CDF's steps."""
    n = len(sketched)
    if n == 0:
        return [], []
    if n == 1:
        return [sketched[0]], [1.0]
    return list(sketched), [i / (n - 1) for i in range(n)]


def interleaving(names: Sequence[str], rounds: int) -> list[list[str]]:
    """The order the targets are measured in, round by round, so that drift hits all of them alike.

    Round ``r`` is the list rotated by ``r`` (a Latin square over each block of ``len(names)`` rounds: every
    target takes every position equally often), reversed in every other block (so each target follows each other
    one as often as it precedes it). With two targets this is A B, B A, B A, A B, ...
    """
    n = len(names)
    if n == 0:
        return [[] for _ in range(rounds)]
    out: list[list[str]] = []
    for r in range(rounds):
        shift = r % n
        order = list(names[shift:]) + list(names[:shift])
        if (r // n) % 2 == 1:
            order.reverse()
        out.append(order)
    return out


def gaps(times: Sequence[float]) -> list[float]:
    """Differences between successive arrival times (ms): the inter-token gaps of one stream."""
    return [round(b - a, 4) for a, b in itertools.pairwise(times)]

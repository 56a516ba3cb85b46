"""Percentiles and summaries of latency samples (nanoseconds in, milliseconds out)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted samples, linearly interpolated."""
    if not ordered:
        return math.nan
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(samples_ns: Sequence[int]) -> dict[str, float | int]:
    """Count, mean, p50, p90, p99, p99.9 and max of nanosecond samples, in milliseconds."""
    ordered = sorted(samples_ns)
    if not ordered:
        return {"n": 0}
    ms = 1e6
    return {
        "n": len(ordered),
        "mean": round(sum(ordered) / len(ordered) / ms, 4),
        "p50": round(percentile(ordered, 50) / ms, 4),
        "p90": round(percentile(ordered, 90) / ms, 4),
        "p99": round(percentile(ordered, 99) / ms, 4),
        "p99_9": round(percentile(ordered, 99.9) / ms, 4),
        "max": round(ordered[-1] / ms, 4),
    }


def paired_difference_ms(a_ns: Sequence[int], b_ns: Sequence[int]) -> dict[str, float | int]:
    """Percentiles of ``a[i] - b[i]`` over interleaved pairs (same moment, both paths), in milliseconds."""
    diffs = sorted(a - b for a, b in zip(a_ns, b_ns, strict=False))
    if not diffs:
        return {"n": 0}
    ms = 1e6
    return {
        "n": len(diffs),
        "p50": round(percentile(diffs, 50) / ms, 4),
        "p99": round(percentile(diffs, 99) / ms, 4),
    }

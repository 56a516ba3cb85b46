"""The request log as a time series for the dashboard's overview (``GET /admin/v1/stats``): per time bucket the
requests, errors, spend, and latency and time-to-first-token percentiles.

The window's rows are read (four numbers each) and bucketed here, the same on SQLite and PostgreSQL; the API
bounds the window to ``MAX_BUCKETS`` buckets. Percentiles are nearest-rank, as the channels' (channel_health).
"""

from __future__ import annotations

from typing import Any

from relay.admin.channel_health import percentile
from relay.store.base import Tx

__all__ = ["MAX_BUCKETS", "series"]

#: The most buckets one answer has.
MAX_BUCKETS = 1000


def series(tx: Tx, since: float, until: float, bucket: int) -> list[dict[str, Any]]:
    """One entry per ``bucket`` seconds from ``since`` (included) to ``until`` (excluded), empty ones too."""
    rows = tx.execute(
        "SELECT time, latency_ms, ttft_ms, status, error_kind, cost_micros FROM request_log"
        " WHERE time >= ? AND time < ?",
        (since, until),
    )
    count = max(1, -int(-(until - since) // bucket))
    latencies: list[list[float]] = [[] for _ in range(count)]
    ttfts: list[list[float]] = [[] for _ in range(count)]
    errors, spend = [0] * count, [0] * count
    for moment, latency, ttft, status, error_kind, cost in rows:
        index = min(count - 1, int((float(moment) - since) // bucket))
        latencies[index].append(float(latency))
        if ttft is not None:
            ttfts[index].append(float(ttft))
        errors[index] += int(status) >= 400 or error_kind is not None
        spend[index] += int(cost)
    data = []
    for index in range(count):
        lat, first = sorted(latencies[index]), sorted(ttfts[index])
        data.append(
            {
                "start": since + index * bucket,
                "requests": len(lat),
                "errors": errors[index],
                "cost_micros": spend[index],
                "latency_ms_p50": percentile(lat, 0.50),
                "latency_ms_p95": percentile(lat, 0.95),
                "latency_ms_p99": percentile(lat, 0.99),
                "ttft_ms_p50": percentile(first, 0.50),
                "ttft_ms_p95": percentile(first, 0.95),
            }
        )
    return data

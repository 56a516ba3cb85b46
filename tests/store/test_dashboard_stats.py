"""The dashboard overview's time series (relay.admin.stats) on every backend: buckets, empty ones, errors, spend
and nearest-rank percentiles from the request log."""

from __future__ import annotations

import pytest

from relay.admin import stats
from relay.store import Store
from relay.store import records as rec
from tests.store.test_records import NOV_23, log


@pytest.fixture
async def migrated(store: Store) -> Store:
    await store.migrate()
    return store


async def test_buckets_of_the_request_log(migrated: Store) -> None:
    start = NOV_23
    logs = [
        # First minute: 10 requests, latencies 10..100 ms, one 500 and one refused before any upstream.
        *(
            log(f"a{i}", time=start + i, latency_ms=10.0 * (i + 1), ttft_ms=float(i + 1), cost_micros=100)
            for i in range(8)
        ),
        log("a8", time=start + 30, latency_ms=90.0, ttft_ms=None, status=500, error_kind="upstream", cost_micros=0),
        log("a9", time=start + 59.5, latency_ms=100.0, ttft_ms=None, status=200, error_kind="client_gone"),
        # The third minute: one; the second has none. Outside the window: one before, one at until.
        log("c0", time=start + 150, latency_ms=7.0, ttft_ms=2.0, cost_micros=5),
        log("before", time=start - 0.5),
        log("at-until", time=start + 180),
    ]
    await migrated.transaction(lambda tx: rec.write_logs(tx, logs))
    data = await migrated.transaction(lambda tx: stats.series(tx, start, start + 180, 60))
    assert [b["start"] for b in data] == [start, start + 60, start + 120]
    first, second, third = data
    assert (first["requests"], first["errors"], first["cost_micros"]) == (10, 2, 800 + 1234)
    assert (first["latency_ms_p50"], first["latency_ms_p95"], first["latency_ms_p99"]) == (50.0, 100.0, 100.0)
    assert (first["ttft_ms_p50"], first["ttft_ms_p95"]) == (4.0, 8.0)
    assert second == {
        "start": start + 60,
        "requests": 0,
        "errors": 0,
        "cost_micros": 0,
        "latency_ms_p50": None,
        "latency_ms_p95": None,
        "latency_ms_p99": None,
        "ttft_ms_p50": None,
        "ttft_ms_p95": None,
    }
    assert (third["requests"], third["cost_micros"], third["latency_ms_p99"], third["ttft_ms_p95"]) == (1, 5, 7.0, 2.0)


async def test_a_window_not_a_whole_number_of_buckets(migrated: Store) -> None:
    await migrated.transaction(lambda tx: rec.write_logs(tx, [log("late", time=NOV_23 + 95)]))
    data = await migrated.transaction(lambda tx: stats.series(tx, NOV_23, NOV_23 + 100, 60))
    assert [(b["start"], b["requests"]) for b in data] == [(NOV_23, 0), (NOV_23 + 60, 1)]

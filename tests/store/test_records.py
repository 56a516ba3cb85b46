"""The request log and the daily totals, on every backend: batches, retried batches, UTC days, readers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from relay.store import Store
from relay.store import records as rec
from relay.store.records import DailyTotal, LogRecord

NOV_23 = 1795392000.0  # 2026-11-23T00:00:00Z


def log(request_id: str, **fields: Any) -> LogRecord:
    base: dict[str, Any] = {
        "time": NOV_23 + 3600,
        "request_id": request_id,
        "key_name": "alice",
        "dialect": "openai",
        "route": "/v1/chat/completions",
        "requested_model": "fast",
        "upstream_model": "mock-1",
        "channel": "mock",
        "attempts": (("flaky", "503"), ("mock", "ok")),
        "status": 200,
        "error_kind": None,
        "stream": True,
        "latency_ms": 12.5,
        "ttft_ms": 3.25,
        "input_tokens": 10,
        "output_tokens": 20,
        "cached_tokens": 4,
        "reasoning_tokens": 2,
        "cost_micros": 1234,
        "client_addr": "127.0.0.1:5000",
    }
    return LogRecord(**{**base, **fields})


async def run(store: Store, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await store.transaction(lambda tx: fn(tx, *args, **kwargs))


@pytest.fixture
async def migrated(store: Store) -> Store:
    await store.migrate()
    return store


async def test_records_come_back_as_they_went_in(migrated: Store) -> None:
    full = log("r1")
    bare = log(
        "r2",
        time=NOV_23 + 7200,
        key_name=None,
        requested_model=None,
        upstream_model=None,
        channel=None,
        attempts=(),
        status=401,
        error_kind="authentication",
        stream=False,
        ttft_ms=None,
        input_tokens=0,
        output_tokens=0,
        cached_tokens=0,
        reasoning_tokens=0,
        cost_micros=0,
        client_addr=None,
    )
    assert await run(migrated, rec.write_logs, [full, bare]) == 2
    assert await run(migrated, rec.read_logs) == [full, bare]
    assert await run(migrated, rec.read_logs, since=NOV_23 + 5000) == [bare]
    assert await run(migrated, rec.read_logs, limit=1) == [full]
    assert await run(migrated, rec.read_logs, key_name="alice") == [full]
    assert await migrated.execute("SELECT attempts FROM request_log WHERE request_id = 'r1'") == [
        ('[{"channel": "flaky", "outcome": "503"}, {"channel": "mock", "outcome": "ok"}]',)
    ]
    assert await run(migrated, rec.write_logs, []) == 0


async def test_a_batch_written_again_is_not_logged_or_counted_twice(migrated: Store) -> None:
    batch = [log(f"r{i}") for i in range(3)]
    assert await run(migrated, rec.write_logs, batch) == 3
    assert await run(migrated, rec.write_logs, [*batch, log("r3")]) == 1  # a retry, with one new record
    assert await run(migrated, rec.write_logs, [log("r4"), log("r4", status=500)]) == 1  # the first of an id wins
    assert [r.request_id for r in await run(migrated, rec.read_logs)] == ["r0", "r1", "r2", "r3", "r4"]
    assert (await run(migrated, rec.read_logs))[-1].status == 200
    [total] = await run(migrated, rec.daily)
    assert (total.requests, total.input_tokens, total.cost_micros) == (5, 50, 5 * 1234)


async def test_daily_totals_by_utc_day_key_model_and_channel(migrated: Store) -> None:
    batch = [
        log("a1"),
        log("a2", status=429, error_kind="rate_limit", input_tokens=0, output_tokens=0, cost_micros=0),
        log("a3", time=NOV_23 - 1),  # 23:59:59 the day before, UTC
        log("b1", key_name="bob", channel=None, requested_model=None, status=502),
        log("c1", requested_model="slow"),
    ]
    await run(migrated, rec.write_logs, batch)
    await run(migrated, rec.write_logs, [log("a4", cost_micros=1)])  # a second batch adds to the same row
    assert await run(migrated, rec.daily) == [
        DailyTotal("2026-11-22", "alice", "fast", "mock", 1, 0, 10, 20, 4, 2, 1234),
        DailyTotal("2026-11-23", "alice", "fast", "mock", 3, 1, 20, 40, 12, 6, 1235),
        DailyTotal("2026-11-23", "alice", "slow", "mock", 1, 0, 10, 20, 4, 2, 1234),
        DailyTotal("2026-11-23", "bob", "", "", 1, 1, 10, 20, 4, 2, 1234),
    ]
    assert [t.key_name for t in await run(migrated, rec.daily, "2026-11-23", "bob")] == ["bob"]
    assert len(await run(migrated, rec.daily, day="2026-11-23")) == 3
    assert await run(migrated, rec.daily, day="2026-11-24") == []


async def test_a_large_batch_in_chunks(migrated: Store) -> None:
    batch = [log(f"r{i:04d}", time=NOV_23 + i) for i in range(rec.CHUNK * 2 + 7)]
    assert await run(migrated, rec.write_logs, batch) == len(batch)
    assert await run(migrated, rec.read_logs, limit=10_000) == batch
    [total] = await run(migrated, rec.daily)
    assert total.requests == len(batch)


def test_day_of_is_utc() -> None:
    assert rec.day_of(NOV_23) == "2026-11-23"
    assert rec.day_of(NOV_23 - 0.001) == "2026-11-22"


def test_log_record_is_the_request_log_row() -> None:
    columns = [f.name for f in attrs.fields(LogRecord)]
    assert columns[:3] == ["time", "request_id", "key_name"] and len(columns) == 28
    assert columns[-8:] == [
        "end_kind",
        "error_detail",
        "images",
        "image_size",
        "seconds",
        "characters",
        "request_units",
        "parent_id",
    ]

"""The units beside tokens (images, seconds, characters, requests billed) in the request log and the daily
totals, on every backend: written by both writers (per row on SQLite, ``unnest`` on PostgreSQL), read back,
summed by day, and present in a store migrated from the version before them."""

from __future__ import annotations

import pytest

from relay.store import Store, migrations
from relay.store import records as rec
from relay.store.base import Tx
from relay.store.records import DailyTotal, LogRecord
from tests.store.test_records import NOV_23, log, run


@pytest.fixture
async def migrated(store: Store) -> Store:
    await store.migrate()
    return store


#: How a batch is written: in a plain transaction, or as the recorder writes it (PostgreSQL: pipelined, the
#: ``unnest`` writer; SQLite: the per-row writer either way).
WRITERS = pytest.mark.parametrize("pipelined", [False, True], ids=["plain", "recorder"])


async def write(store: Store, batch: list[LogRecord], pipelined: bool) -> int:
    transaction = store.transaction_background if pipelined else store.transaction
    return await transaction(lambda tx: rec.write_logs(tx, batch))


@WRITERS
async def test_units_come_back_as_they_went_in(migrated: Store, pipelined: bool) -> None:
    image = log("img", route="/v1/images/generations", images=3, image_size="1024x1024/hd", cost_micros=240_000)
    speech = log("tts", route="/v1/audio/speech", characters=1234, cost_micros=18_510)
    heard = log("stt", route="/v1/audio/transcriptions", seconds=12.75, cost_micros=1275)
    ranked = log("rr", route="/v1/rerank", request_units=1, cost_micros=2000)
    assert await write(migrated, [image, speech, heard, ranked], pipelined) == 4
    assert await run(migrated, rec.read_logs) == [image, speech, heard, ranked]
    rows = await migrated.execute(
        "SELECT request_id, images, image_size, seconds, characters, request_units FROM request_log ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("img", 3, "1024x1024/hd", 0, 0, 0),
        ("tts", 0, None, 0, 1234, 0),
        ("stt", 0, None, 12.75, 0, 0),
        ("rr", 0, None, 0, 0, 1),
    ]


@WRITERS
async def test_daily_totals_sum_the_units(migrated: Store, pipelined: bool) -> None:
    first = [
        log("a", images=2, image_size="1024x1024", seconds=1.5),
        log("b", images=1, characters=40, request_units=1),
        log("c", time=NOV_23 - 1, images=5),  # the day before (UTC)
    ]
    await write(migrated, first, pipelined)
    await write(migrated, [*first, log("d", seconds=0.25, request_units=2)], pipelined)  # a retry adds only "d"
    assert await run(migrated, rec.daily) == [
        DailyTotal("2026-11-22", "alice", "fast", "mock", 1, 0, 10, 20, 4, 2, 1234, 5, 0.0, 0, 0),
        DailyTotal("2026-11-23", "alice", "fast", "mock", 3, 0, 30, 60, 12, 6, 3 * 1234, 3, 1.75, 40, 3),
    ]


async def test_a_store_of_the_version_before_gets_the_unit_columns(store: Store) -> None:
    """Rows logged before version 7 read back with no units; totals of the day go on adding to them."""
    before = [m for m in migrations.MIGRATIONS if m[0] < 7]

    def apply_before(tx: Tx) -> None:
        assert migrations.current_version(tx) == 0
        for version, sqlite_sql, postgres_sql in before:
            for statement in migrations.statements(sqlite_sql if tx.backend == "sqlite" else postgres_sql):
                tx.execute(statement)
            tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, 0.0))

    await store.transaction(apply_before)
    await store.execute(
        "INSERT INTO request_log (time, request_id, dialect, route, status, latency_ms) VALUES (?, ?, ?, ?, ?, ?)",
        (NOV_23, "old", "openai", "/v1/chat/completions", 200, 1.0),
    )
    await store.execute(
        "INSERT INTO daily_totals (day, key_name, model, channel, requests) VALUES (?, ?, ?, ?, ?)",
        ("2026-11-23", "alice", "fast", "mock", 7),
    )
    assert await store.migrate() == migrations.LATEST
    [old] = await run(store, rec.read_logs)
    assert (old.images, old.image_size, old.seconds, old.characters, old.request_units) == (0, None, 0, 0, 0)
    await run(store, rec.write_logs, [log("new", images=4, seconds=2.5)])
    [total] = await run(store, rec.daily)
    assert (total.requests, total.images, total.seconds, total.characters, total.request_units) == (8, 4, 2.5, 0, 0)

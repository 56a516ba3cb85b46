"""The same suite on every backend: migrations, concurrency of migrate(), the schema and its constraints."""

from __future__ import annotations

import time

import pytest
import trio

from relay.store import IntegrityError, Store, StoreError, Tx, open_store
from relay.store.migrations import LATEST, MIGRATIONS, TABLES


async def versions(store: Store) -> list[int]:
    return [row[0] for row in await store.execute("SELECT version FROM schema_version ORDER BY version")]


async def add_key(store: Store, name: str = "alice", quota: int | None = 1_000_000) -> None:
    await store.execute(
        "INSERT INTO keys (name, secret_digest, quota_micros, created_at) VALUES (?, ?, ?, ?)",
        (name, f"digest-{name}", quota, time.time()),
    )


async def test_migrate_creates_every_table(store: Store) -> None:
    assert await store.schema_version() == 0
    assert await store.migrate() == LATEST
    assert await store.schema_version() == LATEST
    assert await versions(store) == [v for v, _, _ in MIGRATIONS]
    for table in TABLES:
        assert await store.execute(f"SELECT COUNT(*) FROM {table}") == [(0,)]


async def test_migrate_twice_is_a_no_op(store: Store, store_url: str) -> None:
    await store.migrate()
    await add_key(store)
    applied = await store.execute("SELECT version, applied_at FROM schema_version")
    assert await store.migrate() == LATEST
    async with open_store(store_url) as again:  # a restart
        assert await again.migrate() == LATEST
    assert await store.execute("SELECT version, applied_at FROM schema_version") == applied
    assert await store.execute("SELECT name FROM keys") == [("alice",)]


async def test_concurrent_migrate_from_two_stores(store_url: str) -> None:
    results: list[int] = []
    async with open_store(store_url) as a, open_store(store_url) as b:

        async def migrate(s: Store) -> None:
            results.append(await s.migrate())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(migrate, a)
            nursery.start_soon(migrate, b)
        assert results == [LATEST, LATEST]
        assert await versions(a) == [v for v, _, _ in MIGRATIONS]
        assert await b.execute("SELECT COUNT(*) FROM schema_version WHERE version = 1") == [(1,)]


async def test_schema_newer_than_relay_is_refused(store: Store) -> None:
    await store.migrate()
    await store.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (LATEST + 1, 0.0))
    with pytest.raises(StoreError, match="newer than this Relay"):
        await store.migrate()


async def test_ledger_refuses_a_second_row_of_one_kind_for_a_request(store: Store) -> None:
    await store.migrate()
    await add_key(store)
    row = "INSERT INTO quota_ledger (key_name, request_id, kind, amount_micros, created_at) VALUES (?, ?, ?, ?, ?)"
    await store.execute(row, ("alice", "req-1", "hold", 500, time.time()))
    await store.execute(row, ("alice", "req-1", "settle", 300, time.time()))
    with pytest.raises(IntegrityError):
        await store.execute(row, ("alice", "req-1", "hold", 500, time.time()))
    with pytest.raises(IntegrityError):
        await store.execute(row, ("alice", "req-2", "refund", 1, time.time()))  # not a kind
    with pytest.raises(IntegrityError):
        await store.execute(row, ("alice", "req-3", "hold", -1, time.time()))
    assert await store.execute("SELECT kind, amount_micros FROM quota_ledger ORDER BY id") == [
        ("hold", 500),
        ("settle", 300),
    ]


async def test_keys_constraints_and_defaults(store: Store) -> None:
    await store.migrate()
    await store.execute(
        "INSERT INTO keys (name, secret_digest, quota_micros, expires_at, models, rpm, tpm, channel_group,"
        " ip_allow, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("bob", "d-bob", None, 2e9, '["gpt-*"]', 60, 100_000, "paid", '["10.0.0.0/8"]', 1.5),
    )
    rows = await store.execute("SELECT quota_micros, models, rpm, channel_group, ip_allow, disabled FROM keys")
    assert rows == [(None, '["gpt-*"]', 60, "paid", '["10.0.0.0/8"]', False)]
    with pytest.raises(IntegrityError):
        await add_key(store, "bob")  # duplicate name
    with pytest.raises(IntegrityError):
        await store.execute(
            "INSERT INTO keys (name, secret_digest, created_at) VALUES (?, ?, ?)", ("carol", "d-bob", 1.0)
        )
    with pytest.raises(IntegrityError):  # a balance never goes below zero
        await store.execute("UPDATE keys SET quota_micros = ? WHERE name = ?", (-1, "bob"))


async def test_request_log_holds_every_field(store: Store) -> None:
    await store.migrate()
    fields = {
        "time": 1700000000.25,
        "request_id": "req-9",
        "key_name": "alice",
        "dialect": "openai_chat",
        "route": "/v1/chat/completions",
        "requested_model": "fast",
        "upstream_model": "mock-1",
        "channel": "mock",
        "attempts": '[{"channel": "a", "outcome": "503"}, {"channel": "mock", "outcome": "ok"}]',
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
        "client_addr": "127.0.0.1",
    }
    names = ", ".join(fields)
    await store.execute(
        f"INSERT INTO request_log ({names}) VALUES ({', '.join('?' * len(fields))})", tuple(fields.values())
    )
    [row] = await store.execute(f"SELECT {names} FROM request_log")
    assert dict(zip(fields, row, strict=True)) == fields
    with pytest.raises(IntegrityError):  # a batch written twice is not logged twice
        await store.execute(
            f"INSERT INTO request_log ({names}) VALUES ({', '.join('?' * len(fields))})", tuple(fields.values())
        )


async def test_daily_totals_one_row_per_day_key_model_channel(store: Store) -> None:
    await store.migrate()
    upsert = (
        "INSERT INTO daily_totals (day, key_name, model, channel, requests, input_tokens, cost_micros)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, key_name, model, channel) DO UPDATE SET"
        " requests = daily_totals.requests + excluded.requests,"
        " input_tokens = daily_totals.input_tokens + excluded.input_tokens,"
        " cost_micros = daily_totals.cost_micros + excluded.cost_micros"
    )
    for _ in range(3):
        await store.execute(upsert, ("2026-11-23", "alice", "mock-1", "mock", 1, 10, 7))
    await store.execute(upsert, ("2026-11-23", "alice", "mock-1", "other", 1, 10, 7))
    rows = await store.execute("SELECT channel, requests, input_tokens, cost_micros FROM daily_totals ORDER BY channel")
    assert rows == [("mock", 3, 30, 21), ("other", 1, 10, 7)]
    with pytest.raises(IntegrityError):
        await store.execute(
            "INSERT INTO daily_totals (day, key_name, model, channel) VALUES (?, ?, ?, ?)",
            ("2026-11-23", "alice", "mock-1", "mock"),
        )


async def test_a_failing_transaction_leaves_nothing(store: Store) -> None:
    await store.migrate()

    def half_then_fail(tx: Tx) -> None:
        tx.execute("INSERT INTO keys (name, secret_digest, created_at) VALUES (?, ?, ?)", ("dave", "d-dave", 1.0))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await store.transaction(half_then_fail)
    assert await store.execute("SELECT COUNT(*) FROM keys") == [(0,)]


async def test_a_closed_store_says_so(store_url: str) -> None:
    store = open_store(store_url)
    await store.migrate()
    await store.aclose()
    await store.aclose()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        await store.migrate()

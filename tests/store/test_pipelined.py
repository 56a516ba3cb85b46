"""The recorder's batch in one pipelined transaction (``Store.transaction_background``): the same rows as a plain
transaction on every backend, and on PostgreSQL one round trip for its reads and one for its writes and commit."""

from __future__ import annotations

from typing import Any

import pytest

from relay.store import Store, Tx, leases, records
from relay.store import keys as stored
from relay.store.keys import KeyRecord
from relay.store.leases import Take
from relay.store.settlements import LeaseSettle, settle
from tests.store.test_records import NOV_23, log


@pytest.fixture
async def migrated(store: Store) -> Store:
    await store.migrate()
    await store.transaction(lambda tx: stored.create(tx, KeyRecord("alice", b"\x01" * 32, 1_000_000, created_at=1.0)))
    return store


def batch(lease_id: str | None, start: int, count: int) -> tuple[list[LeaseSettle], list[records.LogRecord]]:
    settles = [
        LeaseSettle("alice", lease_id, f"r{i}", 1_000, 10 * (i % 3), tokens=5, tpm_counted=True, now=NOV_23)
        for i in range(start, start + count)
    ]
    logs = [log(f"r{i}", cost_micros=10 * (i % 3), time=NOV_23 + i) for i in range(start, start + count)]
    return settles, logs


async def test_a_pipelined_batch_writes_what_a_plain_one_does(migrated: Store) -> None:
    grant = await migrated.transaction(lambda tx: leases.take(tx, Take("alice", "p", None, 50_000, now=NOV_23)))
    settles, logs = batch(grant.lease_id, 0, 30)

    def write(tx: Tx) -> list[int]:
        charged = settle(tx, settles)
        records.write_logs(tx, logs)
        return charged

    assert await migrated.transaction_background(write) == [s.charge for s in settles]
    assert await migrated.transaction_background(write) == [s.charge for s in settles]  # retried: nothing twice
    charged = sum(s.charge for s in settles)
    [(balance,)] = await migrated.execute("SELECT quota_micros FROM keys WHERE name = 'alice'")
    assert balance == 1_000_000 - charged
    assert await migrated.transaction(lambda tx: leases.reserved(tx, "alice")) == 50_000 - charged
    kinds = await migrated.execute("SELECT request_id, kind FROM quota_ledger WHERE kind <> 'topup' ORDER BY id")
    assert kinds[:4] == [("r0", "hold"), ("r0", "release"), ("r1", "hold"), ("r1", "settle")]
    assert len(kinds) == 60
    assert [r.request_id for r in await migrated.transaction(lambda tx: records.read_logs(tx))] == [
        f"r{i}" for i in range(30)
    ]
    [total] = await migrated.transaction(lambda tx: records.daily(tx))
    assert (total.day, total.requests, total.cost_micros) == ("2026-11-23", 30, charged)
    assert await migrated.execute("SELECT SUM(tokens) FROM rate_windows") == [(5 * 30 * 2,)]  # retried: counted again


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)  # round trips: SQLite has none
async def test_postgres_sends_a_batch_in_two_round_trips(migrated: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import relay.store.postgres as postgres

    syncs: list[int] = []

    class Counted(Tx):
        def __init__(self, cursor: Any, backend: str, sync: Any = None) -> None:
            def counted() -> None:
                syncs.append(1)
                sync()

            super().__init__(cursor, backend, counted if sync is not None else None)

    monkeypatch.setattr(postgres, "Tx", Counted)
    grant = await migrated.transaction(lambda tx: leases.take(tx, Take("alice", "p", None, 50_000, now=NOV_23)))
    settles, logs = batch(grant.lease_id, 0, 200)

    def write(tx: Tx) -> int:
        settle(tx, settles)
        return records.write_logs(tx, logs)

    assert await migrated.transaction_background(write) == 200
    # One read (the keys locked, with their leases); the ledger rows, balances, leases, token windows, the log
    # and the daily totals go with the commit.
    assert len(syncs) == 1
    assert await migrated.execute("SELECT COUNT(*) FROM request_log") == [(200,)]

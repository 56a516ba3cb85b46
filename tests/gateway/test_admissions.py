"""Admissions of concurrent requests share one store transaction, each with the outcome it would have alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from relay.gateway.admissions import Admissions
from relay.store import StoreError, ledger, open_store
from relay.store import keys as stored


async def _store_with_key(tmp_path: Path, quota_micros: int):  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{tmp_path}/relay.db")
    await store.migrate()
    key = stored.KeyRecord(name="k", digest=stored.digest("sk-test-key-1"), quota_micros=quota_micros, created_at=0.0)
    await store.transaction(lambda tx: stored.create(tx, key))
    return store


async def test_concurrent_admissions_share_a_transaction_and_never_overspend(tmp_path: Path) -> None:
    store = await _store_with_key(tmp_path, quota_micros=10_000)
    admissions = Admissions(store)
    admissions.serving = lambda: 20
    outcomes: dict[int, ledger.Admission] = {}

    async def one(i: int) -> None:
        outcomes[i] = await admissions.admit(lambda tx: ledger.admit(tx, "k", f"r{i}", 1_000, None, None, 1.0))

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(one, i)
    assert sum(a.ok for a in outcomes.values()) == 10  # 10 holds of 1,000 exhaust 10,000, in arrival order
    assert {a.reason for a in outcomes.values() if not a.ok} == {"quota"}
    assert admissions.admitted == 20 and admissions.batches < 20  # grouped
    [(balance,)] = await store.transaction(lambda tx: tx.execute("SELECT quota_micros FROM keys WHERE name = 'k'"))
    assert balance == 0
    await store.aclose()


async def test_alone_a_request_does_not_wait_for_company(tmp_path: Path) -> None:
    store = await _store_with_key(tmp_path, quota_micros=10_000)
    admissions = Admissions(store)  # serving: 1
    admission = await admissions.admit(lambda tx: ledger.admit(tx, "k", "r", 1_000, None, None, 1.0))
    assert admission.ok and admissions.batches == 1
    await store.aclose()


async def test_a_store_failure_fails_each_admission_of_the_batch(tmp_path: Path) -> None:
    store = await _store_with_key(tmp_path, quota_micros=10_000)
    admissions = Admissions(store)
    admissions.serving = lambda: 3

    async def down(fn):  # type: ignore[no-untyped-def]
        raise StoreError("the store is down (test)")

    store.transaction_now = down  # type: ignore[method-assign]
    errors: list[BaseException] = []

    async def one(i: int) -> None:
        with pytest.raises(StoreError) as raised:
            await admissions.admit(lambda tx: ledger.admit(tx, "k", f"r{i}", 1_000, None, None, 1.0))
        errors.append(raised.value)

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(one, i)
    assert len(errors) == 3
    del store.transaction_now
    await store.aclose()


async def test_a_cancelled_request_still_gets_its_admission_settled_by_its_batch(tmp_path: Path) -> None:
    store = await _store_with_key(tmp_path, quota_micros=10_000)
    admissions = Admissions(store)
    admissions.serving = lambda: 2
    got: list[ledger.Admission] = []

    async def one() -> None:
        got.append(await admissions.admit(lambda tx: ledger.admit(tx, "k", "r1", 1_000, None, None, 1.0)))

    with trio.CancelScope() as scope:
        scope.cancel()  # cancelled before it starts: the shielded wait still returns the outcome
        await one()
    assert got and got[0].ok  # the caller knows its hold was taken (and settles or releases it)
    await store.aclose()

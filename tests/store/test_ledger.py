"""The quota ledger and the store's rate limits, on every backend: holds, settlements, refusals, races
between tasks, stores and OS processes, and sliding minute windows."""

from __future__ import annotations

import json
import random
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from relay.store import Store, ledger, open_store
from relay.store import keys as stored
from relay.store.keys import KeyNotFound, KeyRecord
from relay.store.ledger import Admission, Settle

ROOT = Path(__file__).resolve().parents[2]


async def run(store: Store, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await store.transaction(lambda tx: fn(tx, *args, **kwargs))


async def add_key(store: Store, name: str = "alice", quota: int | None = 1_000, **fields: Any) -> None:
    record = KeyRecord(name, stored.digest(f"sk-relay-{name}"), quota, created_at=1.0, **fields)
    await run(store, stored.create, record)


async def admit(store: Store, request_id: str, hold: int | None, **kw: Any) -> Admission:
    key, rpm, tpm, now = kw.pop("key", "alice"), kw.pop("rpm", None), kw.pop("tpm", None), kw.pop("now", 600.0)
    return await run(store, ledger.admit, key, request_id, hold, rpm, tpm, now, **kw)


async def settle(store: Store, request_id: str, held: int | None, cost: int, **kw: Any) -> int:
    s = Settle(
        kw.get("key", "alice"), request_id, held, cost, kw.get("tokens", 0), kw.get("tpm", False), kw.get("now", 601.0)
    )
    [charged] = await run(store, ledger.settle_all, [s])
    return charged


async def rows(store: Store, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return await store.execute(sql, params)


async def check_ledger(store: Store, name: str = "alice") -> int:
    """The ledger explains the balance; no request settled twice or without a hold; the balance."""
    balance = await run(store, ledger.balance, name)
    sums = {}
    for kind in ("topup", "settle", "hold"):
        sql = "SELECT COALESCE(SUM(amount_micros), 0) FROM quota_ledger WHERE key_name = ? AND kind = ?"
        sums[kind] = (await rows(store, sql, name, kind))[0][0]
    topups, settled, holds = sums["topup"], sums["settle"], sums["hold"]
    assert balance == topups - settled - await run(store, ledger.open_holds, name)
    assert balance >= 0
    orphans = await rows(
        store,
        "SELECT request_id FROM quota_ledger d WHERE kind IN ('settle', 'release') AND NOT EXISTS"
        " (SELECT 1 FROM quota_ledger h WHERE h.request_id = d.request_id AND h.kind = 'hold')",
    )
    twice = await rows(
        store,
        "SELECT request_id FROM quota_ledger WHERE kind IN ('settle', 'release')"
        " GROUP BY request_id HAVING COUNT(*) > 1",
    )
    assert (orphans, twice) == ([], [])
    assert holds >= 0
    return balance


@pytest.fixture
async def migrated(store: Store) -> Store:
    await store.migrate()
    return store


async def test_hold_then_settle(migrated: Store) -> None:
    await add_key(migrated, quota=1_000)
    assert await admit(migrated, "r1", 300) == Admission(True, "ok", balance=700)
    assert await run(migrated, ledger.open_holds, "alice") == 300
    assert await check_ledger(migrated) == 700
    assert await settle(migrated, "r1", 300, 120) == 120
    assert await run(migrated, ledger.balance, "alice") == 880
    assert await run(migrated, ledger.open_holds, "alice") == 0
    assert await rows(
        migrated, "SELECT kind, amount_micros, created_at FROM quota_ledger WHERE request_id = 'r1' ORDER BY id"
    ) == [
        ("hold", 300, 600.0),
        ("settle", 120, 601.0),
    ]
    await check_ledger(migrated)


async def test_a_request_that_cost_nothing_is_released(migrated: Store) -> None:
    await add_key(migrated, quota=1_000)
    await admit(migrated, "r1", 400)
    assert await settle(migrated, "r1", 400, 0) == 0
    assert await run(migrated, ledger.balance, "alice") == 1_000
    assert await rows(migrated, "SELECT kind, amount_micros FROM quota_ledger WHERE request_id = 'r1' ORDER BY id") == [
        ("hold", 400),
        ("release", 400),
    ]


async def test_settling_twice_changes_nothing(migrated: Store) -> None:
    await add_key(migrated, quota=1_000)
    await admit(migrated, "r1", 300)
    await admit(migrated, "r2", 300)
    assert await settle(migrated, "r1", 300, 100) == 100
    assert await settle(migrated, "r1", 300, 100) == 100  # reports the first charge
    assert await settle(migrated, "r1", 300, 0) == 100  # a release after a settle: nothing either
    assert await settle(migrated, "r2", 300, 0) == 0
    assert await settle(migrated, "r2", 300, 250) == 0  # a settle after a release: nothing
    # Both in one batch, twice.
    twice = [Settle("alice", "r1", 300, 100, 0, False, 5.0)] * 2
    assert await run(migrated, ledger.settle_all, twice) == [100, 100]
    assert await run(migrated, ledger.balance, "alice") == 900
    assert await rows(migrated, "SELECT COUNT(*) FROM quota_ledger") == [(5,)]
    await check_ledger(migrated)


async def test_a_cost_above_the_hold_stops_at_a_zero_balance(migrated: Store) -> None:
    await add_key(migrated, quota=1_000)
    await admit(migrated, "r1", 600)
    assert await settle(migrated, "r1", 600, 700) == 700  # 100 more than held: the balance covers it
    assert await run(migrated, ledger.balance, "alice") == 300
    await admit(migrated, "r2", 100)
    assert await settle(migrated, "r2", 100, 5_000) == 300  # held 100 + the 200 left; the rest is a shortfall
    assert await run(migrated, ledger.balance, "alice") == 0
    assert await check_ledger(migrated) == 0


async def test_not_enough_quota_is_refused_and_writes_nothing(migrated: Store) -> None:
    await add_key(migrated, quota=1_000, rpm=10)
    assert await admit(migrated, "r1", 1_000, rpm=10) == Admission(True, "ok", balance=0)
    assert await admit(migrated, "r2", 1, rpm=10) == Admission(False, "quota", balance=0)
    assert await admit(migrated, "r3", 0, rpm=10) == Admission(True, "ok", balance=0)  # a free request still goes
    assert await rows(migrated, "SELECT request_id FROM quota_ledger WHERE kind = 'hold' ORDER BY id") == [
        ("r1",),
        ("r3",),
    ]
    assert await rows(migrated, "SELECT requests FROM rate_windows") == [(2,)]  # the refused one is not counted


async def test_unknown_and_unlimited_keys(migrated: Store) -> None:
    assert await admit(migrated, "r1", 5, key="ghost") == Admission(False, "unknown_key")
    with pytest.raises(KeyNotFound):
        await run(migrated, ledger.balance, "ghost")
    await add_key(migrated, "free", quota=None)
    # A hold asked for a key that turned out unlimited: nothing is held, and the balance says why.
    assert await admit(migrated, "r2", 5, key="free") == Admission(True, "ok", balance=None)
    assert await settle(migrated, "r2", 5, 40, key="free") == 40
    assert await admit(migrated, "r3", None, key="free") == Admission(True, "ok", balance=None)
    assert await settle(migrated, "r3", None, 40, key="free") == 40
    assert await rows(migrated, "SELECT COUNT(*) FROM quota_ledger") == [(0,)]
    assert await run(migrated, ledger.balance, "free") is None
    # A key deleted while its request ran: the settlement finds nothing to charge.
    await add_key(migrated, "gone", quota=100)
    await admit(migrated, "r4", 50, key="gone")
    await run(migrated, stored.delete, "gone")
    assert await settle(migrated, "r4", 50, 10, key="gone") == 0
    assert await rows(migrated, "SELECT COUNT(*) FROM quota_ledger") == [(0,)]


async def test_a_request_id_is_held_once(migrated: Store) -> None:
    from relay.store import IntegrityError

    await add_key(migrated, quota=1_000)
    await admit(migrated, "r1", 10)
    with pytest.raises(IntegrityError):
        await admit(migrated, "r1", 10)
    assert await run(migrated, ledger.balance, "alice") == 990  # the second hold was rolled back


async def test_two_admissions_racing_for_the_last_credit_never_both_win(store_url: str, migrated: Store) -> None:
    async with open_store(store_url) as other:
        for round_ in range(10):
            name = f"k{round_}"
            await add_key(migrated, name, quota=100)
            results: list[bool] = []

            async def take(s: Store, request_id: str, name: str = name, results: list[bool] = results) -> None:
                results.append((await admit(s, request_id, 100, key=name)).ok)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(take, migrated, f"{name}-a")
                nursery.start_soon(take, other, f"{name}-b")
            assert sorted(results) == [False, True]
            assert await run(migrated, ledger.balance, name) == 0


HAMMER = textwrap.dedent(
    """
    import json, random, sys, time
    from pathlib import Path
    import trio
    from relay.store import open_store
    from relay.store.ledger import Settle, admit, settle_all

    url, tag, count, seed, gate = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])

    async def main():
        out = {}
        async with open_store(url) as store:
            await store.execute("SELECT 1")
            Path(f"{gate}.{tag}").touch()
            while not gate.exists():
                await trio.sleep(0.005)

            async def worker(w):
                rng = random.Random(seed * 100 + w)
                for i in range(count):
                    rid, hold, cost, now = f"{tag}-{w}-{i}", rng.randint(1, 3000), rng.randint(0, 4000), time.time()
                    a = await store.transaction(lambda tx: admit(tx, "shared", rid, hold, None, None, now))
                    if a.ok:
                        s = Settle("shared", rid, hold, cost, 0, False, now)
                        [out[rid]] = await store.transaction(lambda tx: settle_all(tx, [s]))
                    else:
                        out[rid] = None

            async with trio.open_nursery() as nursery:
                for w in range(4):
                    nursery.start_soon(worker, w)
        print(json.dumps(out))

    trio.run(main)
    """
)


async def test_hammered_from_tasks_and_processes_the_ledger_is_exact(
    store_url: str, migrated: Store, tmp_path: Path
) -> None:
    grant = 700_000
    await add_key(migrated, "shared", quota=grant)
    gate = tmp_path / "go"
    charged: dict[str, int | None] = {}
    outputs: list[bytes] = []

    async def process(tag: str, seed: int) -> None:
        argv = [sys.executable, "-c", HAMMER, store_url, tag, "40", str(seed), str(gate)]
        result = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
        assert result.returncode == 0, result.stderr.decode()
        outputs.append(result.stdout)

    async def task(t: int) -> None:
        rng = random.Random(t)
        for i in range(6):
            rid, hold, cost = f"task-{t}-{i}", rng.randint(1, 3000), rng.randint(0, 4000)
            now = time.time()
            if (await admit(migrated, rid, hold, key="shared", now=now)).ok:
                charged[rid] = await settle(migrated, rid, hold, cost, key="shared", now=now)
            else:
                charged[rid] = None

    async with trio.open_nursery() as nursery:
        nursery.start_soon(process, "pa", 1)
        nursery.start_soon(process, "pb", 2)
        with trio.fail_after(30):
            while not ((tmp_path / "go.pa").exists() and (tmp_path / "go.pb").exists()):
                await trio.sleep(0.01)
        gate.touch()
        for t in range(50):
            nursery.start_soon(task, t)
    for output in outputs:
        charged.update(json.loads(output))
    assert len(charged) == 2 * 4 * 40 + 50 * 6
    admitted = {rid: c for rid, c in charged.items() if c is not None}
    refused = {rid for rid, c in charged.items() if c is None}
    assert admitted and refused  # the grant ran out along the way

    balance = await check_ledger(migrated, "shared")
    assert balance == grant - sum(admitted.values())
    assert await run(migrated, ledger.open_holds, "shared") == 0
    ledger_rows = await rows(migrated, "SELECT request_id, kind, amount_micros FROM quota_ledger WHERE kind <> 'topup'")
    held = {rid for rid, kind, _ in ledger_rows if kind == "hold"}
    settled = {rid: amount for rid, kind, amount in ledger_rows if kind == "settle"}
    released = {rid for rid, kind, _ in ledger_rows if kind == "release"}
    assert held == set(admitted) and held.isdisjoint(refused)  # refused requests wrote nothing
    assert len(ledger_rows) == 2 * len(admitted)  # one hold and one settle or release each: none twice
    assert settled == {rid: c for rid, c in admitted.items() if rid not in released}
    assert all(admitted[rid] == 0 for rid in released)


# ---- rate limits ---------------------------------------------------------------------------------


async def test_rpm_refusal_says_when_to_retry(migrated: Store) -> None:
    await add_key(migrated, quota=None, rpm=2)
    assert (await admit(migrated, "r1", None, rpm=2, now=600.0)).ok
    assert (await admit(migrated, "r2", None, rpm=2, now=610.0)).ok
    assert await admit(migrated, "r3", None, rpm=2, now=615.5) == Admission(False, "rpm", 45.0)
    assert await admit(migrated, "r4", None, rpm=2, now=659.9) == Admission(False, "rpm", 1.0)
    assert await rows(migrated, "SELECT minute, requests FROM rate_windows") == [(10, 2)]
    # count_rate=False (the limits are counted elsewhere): no check, no count.
    assert (await admit(migrated, "r5", None, rpm=2, now=616.0, count_rate=False)).ok
    assert await rows(migrated, "SELECT minute, requests FROM rate_windows") == [(10, 2)]


async def test_the_window_slides(migrated: Store) -> None:
    await add_key(migrated, quota=None, rpm=2)
    for i in range(2):
        assert (await admit(migrated, f"a{i}", None, rpm=2, now=600.0 + i)).ok
    # 15 s into the next minute, 3/4 of the previous one still counts: 1.5 + 1 > 2.
    assert (await admit(migrated, "b0", None, rpm=2, now=675.0)).reason == "rpm"
    # Halfway through it, half of it counts: 1 + 1 <= 2, then 1 + 1 + 1 > 2.
    assert (await admit(migrated, "b1", None, rpm=2, now=690.0)).ok
    assert await admit(migrated, "b2", None, rpm=2, now=691.0) == Admission(False, "rpm", 29.0)
    # Two minutes on, the old minutes are gone from the store.
    assert (await admit(migrated, "c0", None, rpm=2, now=800.0)).ok
    assert await rows(migrated, "SELECT minute, requests FROM rate_windows") == [(13, 1)]


async def test_tpm_counts_the_tokens_of_settled_requests(migrated: Store) -> None:
    await add_key(migrated, quota=10_000, tpm=100)
    assert (await admit(migrated, "r1", 50, tpm=100, now=600.0)).ok
    assert (await admit(migrated, "r2", 50, tpm=100, now=600.0)).ok  # tokens count once they are known
    await settle(migrated, "r1", 50, 20, tokens=60, tpm=True, now=601.0)
    assert (await admit(migrated, "r3", 50, tpm=100, now=602.0)).ok  # 60 < 100
    await settle(migrated, "r2", 50, 20, tokens=40, tpm=True, now=603.0)
    refused = await admit(migrated, "r4", 50, tpm=100, now=604.0)
    assert refused == Admission(False, "tpm", 56.0, balance=9_910)  # 100 >= 100; the hold was not taken
    await settle(migrated, "r3", 50, 20, tokens=999, tpm=False, now=605.0)  # not counted here
    assert await rows(migrated, "SELECT minute, requests, tokens FROM rate_windows") == [(10, 3, 100)]
    # The next minute, halfway: 50 of the 100 still count.
    assert (await admit(migrated, "r5", 50, tpm=100, now=690.0)).ok
    assert await run(migrated, ledger.balance, "alice") == 9_940 - 50
    await check_ledger(migrated)


async def test_rates_from_many_tasks_never_exceed_rpm(store_url: str, migrated: Store) -> None:
    await add_key(migrated, quota=None, rpm=25)
    async with open_store(store_url) as other:
        outcomes: list[bool] = []

        async def one(s: Store, i: int) -> None:
            outcomes.append((await admit(s, f"r{i}", None, rpm=25, now=600.5)).ok)

        async with trio.open_nursery() as nursery:
            for i in range(60):
                nursery.start_soon(one, migrated if i % 2 else other, i)
    assert outcomes.count(True) == 25
    assert await rows(migrated, "SELECT requests FROM rate_windows") == [(25,)]


def test_estimate_and_retry_after() -> None:
    assert ledger.estimate(10, 3, 600.0) == 13
    assert ledger.estimate(10, 3, 645.0) == pytest.approx(5.5)
    assert ledger.retry_after(600.0) == 60
    assert ledger.retry_after(659.99) == 1
    assert ledger.retry_after(630.2) == 30

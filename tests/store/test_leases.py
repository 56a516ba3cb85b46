"""Quota leases in the store (``relay.store.leases``), on every backend: a lease reserves without moving the
balance, never more than no other lease reserves; settlements write each request's hold and settle rows
together and shrink the reservation by what the balance lost; expired leases are reclaimed; rate-limit slots
follow the sliding-minute rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from relay.store import Store, leases
from relay.store import keys as stored
from relay.store.keys import KeyRecord
from relay.store.leases import Grant, Take
from relay.store.settlements import LeaseSettle, settle

NOW = 6_000_000.0  # the start of a minute (100 000)


async def run(store: Store, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await store.transaction(lambda tx: fn(tx, *args, **kwargs))


@pytest.fixture
async def migrated(store: Store) -> Store:
    await store.migrate()
    return store


async def add_key(store: Store, name: str = "alice", quota: int | None = 10_000, **fields: Any) -> None:
    await run(store, stored.create, KeyRecord(name, stored.digest(f"sk-relay-{name}"), quota, created_at=1.0, **fields))


async def take(store: Store, owner: str, lease_id: str | None, need: int | None, **kw: Any) -> Grant:
    kw.setdefault("now", NOW)
    return await run(store, leases.take, Take("alice", owner, lease_id, need, **kw))


async def balance(store: Store, name: str = "alice") -> int:
    return int((await store.execute("SELECT quota_micros FROM keys WHERE name = ?", (name,)))[0][0])


async def reserved(store: Store, name: str = "alice") -> int:
    return int(await run(store, leases.reserved, name))


async def ledger_rows(store: Store) -> list[tuple[str, str, int]]:
    return [
        (str(r[0]), str(r[1]), int(r[2]))
        for r in await store.execute(
            "SELECT request_id, kind, amount_micros FROM quota_ledger WHERE kind <> 'topup' ORDER BY id"
        )
    ]


async def test_a_lease_reserves_without_moving_the_balance_and_never_more_than_is_free(migrated: Store) -> None:
    await add_key(migrated, quota=10_000)
    first = await take(migrated, "p1", None, 4_000)
    assert (first.reason, first.micros, first.available) == ("ok", 4_000, 6_000)
    assert await balance(migrated) == 10_000 and await reserved(migrated) == 4_000
    # Another process: its need is more than no lease reserves: refused with what is free, nothing written.
    refused = await take(migrated, "p2", None, 6_001)
    assert (refused.reason, refused.available, refused.lease_id) == ("quota", 6_000, None)
    assert await reserved(migrated) == 4_000
    # The same lease grows; a surplus is granted up to a share of what remains free.
    more = await take(migrated, "p1", first.lease_id, 1_000, surplus_micros=100_000)
    assert more.lease_id == first.lease_id
    assert more.micros == 1_000 + int(5_000 * leases.SURPLUS_SHARE)
    assert await reserved(migrated) == 4_000 + more.micros


async def test_a_small_balance_is_leased_a_request_at_a_time_and_recalled_when_short(migrated: Store) -> None:
    await add_key(migrated, quota=1_000)
    first = await take(migrated, "p0", None, 300, surplus_micros=10_000)
    second = await take(migrated, "p1", None, 300, surplus_micros=10_000)
    # Each surplus is at most a quarter of what is left after the need: 300 + 175, then 300 + 56.
    assert (first.micros, second.micros) == (475, 356)
    # A third process needs 300, only 169 are free: refused, and the others are asked to give back.
    third = await take(migrated, "p2", None, 300, surplus_micros=10_000, recall=True)
    assert (third.reason, third.available, third.recalled) == ("quota", 169, True)
    assert await run(migrated, leases.renew, "p0", NOW, 30.0) == {first.lease_id: True}
    # p0 and p1 give back what they have free (their own requests hold 300 each): the third fits.
    await run(migrated, leases.shrink, first.lease_id, 175)
    await run(migrated, leases.shrink, second.lease_id, 56)
    assert await run(migrated, leases.renew, "p0", NOW, 30.0) == {first.lease_id: False}
    again = await take(migrated, "p2", None, 300, surplus_micros=10_000, recall=True)
    assert (again.reason, again.micros, again.available) == ("ok", 325, 75)
    # While a recalled lease has not given back, the key is contended: nobody takes a surplus.
    assert (await take(migrated, "p3", None, 101, recall=True)).recalled
    small = await take(migrated, "p4", None, 50, surplus_micros=10_000)
    assert (small.reason, small.micros) == ("ok", 50)
    await run(migrated, leases.shrink, again.lease_id, 25)
    # Every micro-credit is now held by a request: the rest, 25 + 25, is exactly what a single process would see.
    last = await take(migrated, "p3", None, 51, recall=True)
    assert (last.reason, last.available) == ("quota", 50)
    assert await balance(migrated) == 1_000


async def test_settlement_writes_hold_and_settle_together_and_shrinks_the_reservation(migrated: Store) -> None:
    await add_key(migrated, quota=10_000)
    grant = await take(migrated, "p1", None, 5_000)
    lid = grant.lease_id
    batch = [
        LeaseSettle("alice", lid, "r1", 2_000, 700, now=NOW),
        LeaseSettle("alice", lid, "r2", 2_000, 0, now=NOW),
        LeaseSettle("alice", lid, "r3", 1_000, 1_000, now=NOW),
    ]
    assert await run(migrated, settle, batch) == [700, 0, 1_000]
    assert await ledger_rows(migrated) == [
        ("r1", "hold", 2_000),
        ("r1", "settle", 700),
        ("r2", "hold", 2_000),
        ("r2", "release", 2_000),
        ("r3", "hold", 1_000),
        ("r3", "settle", 1_000),
    ]
    assert await balance(migrated) == 10_000 - 1_700
    assert await reserved(migrated) == 5_000 - 1_700  # the balance no lease reserves did not move
    # The batch written again (a retry after a failure the commit survived) changes nothing.
    await run(migrated, settle, batch)
    assert len(await ledger_rows(migrated)) == 6
    assert await balance(migrated) == 8_300 and await reserved(migrated) == 3_300


async def test_an_expired_lease_is_reclaimed_and_its_unsettled_rest_returns(migrated: Store) -> None:
    await add_key(migrated, quota=10_000)
    crashed = await take(migrated, "crashed", None, 6_000, ttl=30.0)
    await run(migrated, settle, [LeaseSettle("alice", crashed.lease_id, "done", 1_000, 400, now=NOW)])
    # Within its ttl, another process gets only what the crashed one does not reserve.
    assert (await take(migrated, "p2", None, 5_000, now=NOW + 10)).reason == "quota"
    # Past it, the lease is reclaimed by the next take of the key: its unsettled 5 600 are free again.
    later = await take(migrated, "p2", None, 9_000, now=NOW + 31)
    assert later.reason == "ok" and later.available == 10_000 - 400 - 9_000
    rows = await migrated.execute("SELECT owner FROM quota_leases")
    assert rows == [("p2",)]
    assert await balance(migrated) == 10_000 - 400  # exactly what was settled, nothing for what was in flight
    # A settlement of the crashed lease arriving late (a process that stalled) takes no more than is free.
    [charged] = await run(migrated, settle, [LeaseSettle("alice", crashed.lease_id, "late", 2_000, 2_000)])
    assert charged == 600
    assert await balance(migrated) - await reserved(migrated) == 0  # never over-spent


async def test_renew_keeps_a_lease_and_reap_reclaims_the_others(migrated: Store) -> None:
    await add_key(migrated, quota=10_000)
    kept = await take(migrated, "p1", None, 1_000, ttl=5.0)
    gone = await take(migrated, "p2", None, 1_000, ttl=5.0)
    assert await run(migrated, leases.renew, "p1", NOW + 4, 5.0) == {kept.lease_id: False}
    assert await run(migrated, leases.reap, NOW + 6) == 1
    assert await run(migrated, leases.renew, "p2", NOW + 6, 5.0) == {}  # p2 learns its lease is gone
    assert gone.lease_id != kept.lease_id and await reserved(migrated) == 1_000


async def test_shrink_and_release_give_the_reservation_back(migrated: Store) -> None:
    await add_key(migrated, quota=10_000)
    grant = await take(migrated, "p1", None, 4_000)
    await run(migrated, leases.shrink, grant.lease_id, 3_000)
    assert await reserved(migrated) == 1_000
    await run(migrated, leases.shrink, grant.lease_id, 5_000)  # more than it has: refused, nothing changes
    assert await reserved(migrated) == 1_000
    assert await run(migrated, leases.release_owner, "p1") == 1
    assert await reserved(migrated) == 0 and await balance(migrated) == 10_000


async def test_an_unlimited_key_needs_no_lease_and_an_unknown_one_is_refused(migrated: Store) -> None:
    await add_key(migrated, quota=None)
    grant = await take(migrated, "p1", None, 500)
    assert (grant.reason, grant.unlimited, grant.lease_id) == ("ok", True, None)
    assert (await run(migrated, leases.take, Take("nobody", "p1", None, 1, now=NOW))).reason == "unknown_key"


async def test_rpm_slots_follow_the_sliding_minute_and_unused_ones_go_back(migrated: Store) -> None:
    await add_key(migrated, quota=None, rpm=10)
    first = await take(migrated, "p1", None, None, rated=True, rpm=10, need_slots=1, surplus_slots=100)
    assert first.slots == 1 + int(9 * leases.SURPLUS_SHARE)  # 3
    second = await take(migrated, "p2", None, None, rated=True, rpm=10, need_slots=1, surplus_slots=100)
    assert first.slots + second.slots <= 10
    counted = await migrated.execute("SELECT requests FROM rate_windows")
    assert counted == [(first.slots + second.slots,)]
    # Take the rest one at a time: the minute admits exactly rpm requests across processes.
    taken = first.slots + second.slots
    while (g := await take(migrated, "p2", None, None, rated=True, rpm=10, need_slots=1)).reason == "ok":
        taken += g.slots
    assert taken == 10 and g.reason == "rpm" and g.retry_after == 60
    # The next minute: p1 gives back the slots it did not use; its previous minute weighs less.
    nxt = await take(
        migrated, "p1", first.lease_id, None, rated=True, rpm=10, need_slots=1, give_back=(100_000, 2), now=NOW + 90
    )
    assert nxt.requests == (8, 1)  # 10 - 2 given back; half of them still in the sliding minute: room 5 - 1
    assert nxt.reason == "ok"


async def test_tpm_refuses_once_the_minute_is_used_up(migrated: Store) -> None:
    await add_key(migrated, quota=None, tpm=100)
    used = LeaseSettle("alice", None, "r1", None, 0, tokens=100, tpm_counted=True, now=NOW)
    await run(migrated, settle, [used])
    refused = await take(migrated, "p1", None, None, rated=True, tpm=100, need_slots=1, now=NOW + 1)
    assert (refused.reason, refused.tokens) == ("tpm", (0, 100))


async def test_deleting_a_key_deletes_its_leases(migrated: Store) -> None:
    await add_key(migrated, quota=10_000)
    await take(migrated, "p1", None, 1_000)
    assert await run(migrated, stored.delete, "alice")
    assert await migrated.execute("SELECT COUNT(*) FROM quota_leases") == [(0,)]

"""Admission against quota leases (``relay.gateway.leases``) on a real store, every backend: several processes
(each a ``Leases`` with its recorder, on a store of its own) never over-spend a key, the ledger explains the
balance at every quiet moment, a crashed process's lease is reclaimed exactly, leases go back at shutdown, on
idle and when the keys change, small balances work a request at a time, and a served Relay admits its
requests without a store call each."""

from __future__ import annotations

import json
import random
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from relay.config import StoreConfig, loads
from relay.gateway import leases as leases_module
from relay.gateway.leases import Leases, Refused
from relay.gateway.recorder import Recorder
from relay.store import Store, Tx, open_store
from relay.store import keys as stored
from relay.store import leases as stored_leases
from relay.store.keys import KeyRecord
from tests.conftest import KEY, serve_relay
from tests.gateway_e2e.conftest import chat, key_entry, mock_channel, relay_toml

ROOT = Path(__file__).resolve().parents[2]


@attrs.define
class Process:
    """What one Relay process keeps of the quota: its leases and its recorder, on a store of its own."""

    store: Store
    leases: Leases
    recorder: Recorder

    async def request(self, key: KeyRecord, request_id: str, hold: int, cost: int, pause: float = 0.0) -> int | None:
        """Admit, wait, end: what it was charged (None: refused for quota)."""
        try:
            ticket = await self.leases.admit(key, hold, False, time.time())
        except Refused as refused:
            assert refused.admission.reason == "quota"
            return None
        await trio.sleep(pause)
        settle = self.leases.finish(ticket, key.name, request_id, cost, 0, False, time.time())
        self.recorder.settle_leased(settle)
        return settle.charge


@asynccontextmanager
async def process(url: str) -> AsyncIterator[Process]:
    """A process's quota machinery, running; at the end, what it recorded is written and its leases returned."""
    async with open_store(url) as store:
        leases = Leases(store)
        recorder = Recorder(store, StoreConfig(url=url, log_interval=0.05), written=leases.written)
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run)
            await nursery.start(leases.run)
            try:
                yield Process(store, leases, recorder)
            finally:
                nursery.cancel_scope.cancel()
        assert await recorder.flush(10)
        await leases.release_all()


async def make_key(url: str, quota: int | None, name: str = "shared", **fields: Any) -> KeyRecord:
    record = KeyRecord(name, stored.digest(f"sk-relay-{name}"), quota, created_at=1.0, **fields)
    async with open_store(url) as store:
        await store.migrate()
        await store.transaction(lambda tx: stored.create(tx, record))
    return record


@attrs.frozen
class Books:
    balance: int
    granted: int
    settled: int
    reserved: int
    holds: int
    closes: int


async def books(url: str, name: str = "shared") -> Books:
    """The key's balance and ledger sums, and what its leases reserve."""

    def read(tx: Tx) -> Books:
        [(balance,)] = tx.execute("SELECT quota_micros FROM keys WHERE name = ?", (name,))
        sums = dict.fromkeys(("topup", "hold", "settle", "release"), (0, 0))
        for kind, count, total in tx.execute(
            "SELECT kind, COUNT(*), COALESCE(SUM(amount_micros), 0) FROM quota_ledger WHERE key_name = ? GROUP BY kind",
            (name,),
        ):
            sums[kind] = (int(count), int(total))
        return Books(
            int(balance),
            sums["topup"][1],
            sums["settle"][1],
            stored_leases.reserved(tx, name),
            sums["hold"][0],
            sums["settle"][0] + sums["release"][0],
        )

    async with open_store(url) as store:
        return await store.transaction(read)


async def test_two_processes_never_over_spend_and_the_ledger_explains_the_balance(store_url: str) -> None:
    grant = 200_000
    key = await make_key(store_url, grant)
    charged: dict[str, int | None] = {}
    quiet_checks: list[Books] = []

    async def client(p: Process, tag: str, seed: int) -> None:
        rng = random.Random(seed)
        for i in range(25):
            rid = f"{tag}-{i}"
            charged[rid] = await p.request(key, rid, rng.randint(100, 3_000), rng.randint(0, 3_500), rng.random() / 100)

    async with process(store_url) as a, process(store_url) as b:
        async with trio.open_nursery() as nursery:
            for t in range(8):
                nursery.start_soon(client, a, f"a{t}", t)
                nursery.start_soon(client, b, f"b{t}", 100 + t)
        await a.recorder.flush(10)
        await b.recorder.flush(10)
        quiet_checks.append(await books(store_url))  # a quiet moment, the leases still held
    final = await books(store_url)
    spent = sum(c for c in charged.values() if c is not None)
    admitted = sum(c is not None for c in charged.values())
    assert any(c is None for c in charged.values()), "the key was meant to run out"
    for seen in [*quiet_checks, final]:
        assert seen.balance == seen.granted - seen.settled == grant - spent >= 0
        assert seen.holds == seen.closes == admitted
        assert 0 <= seen.reserved <= seen.balance  # never over-spent: the leases reserve only what is there
    assert final.reserved == 0  # returned at shutdown


CRASHER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import trio
    from relay.config import StoreConfig
    from relay.gateway.leases import Leases
    from relay.gateway.recorder import Recorder
    from relay.store import open_store
    from relay.store import keys as stored

    url = sys.argv[1]

    async def main():
        store = open_store(url)
        key = await store.transaction(lambda tx: stored.get(tx, "shared"))
        leases = Leases(store)
        leases.ttl = 5.0
        recorder = Recorder(store, StoreConfig(url=url), written=leases.written)
        tickets = [await leases.admit(key, 1_000, False, time.time()) for _ in range(20)]
        for i, ticket in enumerate(tickets[:10]):  # ten end and are written; ten are in flight at the crash
            recorder.settle_leased(leases.finish(ticket, "shared", f"crash-{i}", 300, 0, False, time.time()))
        assert await recorder.write_once()
        lease = tickets[0].lease
        print(json.dumps({"lease": lease.lease_id, "amount": lease.amount}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    trio.run(main)
    """
)


async def test_a_crash_within_a_lease_is_reconciled_exactly_when_it_expires(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leases_module, "RECALL_WAIT", 0.0)  # the crashed process will never give back
    grant = 100_000
    key = await make_key(store_url, grant)
    result = await trio.run_process(
        [sys.executable, "-c", CRASHER, store_url], capture_stdout=True, capture_stderr=True, check=False, cwd=ROOT
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    crashed = json.loads(result.stdout)
    at_crash = await books(store_url)
    # Ten requests settled (300 each), ten in flight: the lease still reserves what they held and its rest.
    assert at_crash.balance == grant - 3_000 and at_crash.holds == at_crash.closes == 10
    assert at_crash.reserved == crashed["amount"] - 3_000 >= 10 * 1_000
    async with open_store(store_url) as store:
        [(expires_at,)] = await store.execute("SELECT expires_at FROM quota_leases")
    # Within its ttl another process cannot have that part; after it, the lease is reclaimed by the next take.
    async with process(store_url) as p:
        with pytest.raises(Refused) as refused:
            await p.leases.admit(key, grant - 3_000, False, min(time.time(), expires_at - 0.5))
        assert refused.value.admission.balance == grant - 3_000 - at_crash.reserved
        await trio.sleep(max(0.0, expires_at - time.time()) + 0.05)
        assert await p.request(key, "after", grant - 3_000, 0) == 0  # the whole rest of the balance is free again
    after = await books(store_url)
    # Exact: the ten settled requests cost what they cost; the ten in flight cost nothing and left no open hold.
    assert (after.balance, after.reserved, after.holds, after.closes) == (grant - 3_000, 0, 11, 11)


async def test_leases_return_on_shutdown_and_when_idle(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    key = await make_key(store_url, 1_000_000)
    async with process(store_url) as p:
        for i in range(30):
            await p.request(key, f"r{i}", 1_000, 10)
        assert (await books(store_url)).reserved > 0
    assert (await books(store_url)).reserved == 0  # shutdown: every lease deleted
    async with process(store_url) as p:
        await p.request(key, "idle", 1_000, 10)
        await p.recorder.flush(10)
        while any(state.refilling is not None for state in p.leases._keys.values()):
            await trio.sleep(0.01)  # a top-up ahead of need may be under way
        assert (await books(store_url)).reserved > 0
        await p.leases.tick(time.time() + leases_module.IDLE + 1)
        assert (await books(store_url)).reserved == 0  # idle: given back (and the lease deleted)
        async with open_store(store_url) as store:
            assert await store.execute("SELECT COUNT(*) FROM quota_leases") == [(0,)]


async def test_a_small_balance_works_a_request_at_a_time_with_the_right_refusal(store_url: str) -> None:
    key = await make_key(store_url, 1_000)
    async with process(store_url) as p:
        tickets = [await p.leases.admit(key, 300, False, time.time()) for _ in range(3)]
        with pytest.raises(Refused) as refused:
            await p.leases.admit(key, 300, False, time.time())
        assert (refused.value.admission.reason, refused.value.admission.balance) == ("quota", 100)
        for i, ticket in enumerate(tickets):
            p.recorder.settle_leased(p.leases.finish(ticket, "shared", f"s{i}", 250, 0, False, time.time()))
        # What the three did not spend is free again at once, in this process.
        assert await p.request(key, "fourth", 250, 250) == 250
    after = await books(store_url)
    assert (after.balance, after.reserved) == (0, 0)


async def test_a_topup_or_a_disabled_key_gives_the_free_part_back(store_url: str) -> None:
    key = await make_key(store_url, 1_000_000)
    async with process(store_url) as p:
        for i in range(30):
            await p.request(key, f"r{i}", 1_000, 10)
        ticket = await p.leases.admit(key, 1_000, False, time.time())  # in flight across the change
        await p.recorder.flush(10)
        assert (await books(store_url)).reserved > 1_000
        async with open_store(store_url) as store:
            await store.transaction(lambda tx: stored.topup(tx, "shared", 5_000, "topup-1", time.time()))
        p.leases.keys_changed()  # what KeyCache does when the key version moved
        await p.leases.tick(time.time())
        assert (await books(store_url)).reserved == 1_000  # only what the request in flight holds
        p.recorder.settle_leased(p.leases.finish(ticket, "shared", "inflight", 400, 0, False, time.time()))
        await p.recorder.flush(10)
        assert (await books(store_url)).reserved == 600
    final = await books(store_url)
    assert final.balance == final.granted - final.settled == 1_005_000 - 30 * 10 - 400


async def test_a_refusal_recalls_other_processes_free_parts(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leases_module, "TICK", 0.1)
    monkeypatch.setattr(leases_module, "RECALL_WAIT", 0.3)
    key = await make_key(store_url, 100_000)
    async with process(store_url) as a, process(store_url) as b:
        for i in range(40):  # a builds up demand: its lease takes a surplus
            await a.request(key, f"a{i}", 2_000, 1)
        await a.recorder.flush(10)
        reserved = (await books(store_url)).reserved
        assert reserved > 2_000
        balance = (await books(store_url)).balance
        # b needs more than a leaves free: it asks a to give back, waits, and is admitted.
        need = balance - reserved + 1_000
        assert await b.request(key, "b", need, need) == need


async def test_a_served_relay_admits_without_a_store_call_per_request(tmp_path: Path) -> None:
    config = loads(
        relay_toml(
            f"sqlite:///{tmp_path}/relay.db", channels=mock_channel("mock"), keys=key_entry("test", KEY, quota=100)
        )
    )
    async with serve_relay(config) as relay:
        store = relay.app.gateway.store  # type: ignore[attr-defined]
        calls = 0
        original = store.transaction_now

        async def counted(fn: Any) -> Any:
            nonlocal calls
            calls += 1
            return await original(fn)

        store.transaction_now = counted
        for _ in range(40):
            assert (await chat(relay.url, "hi", max_tokens=10)).status == 200
        del store.transaction_now
    # Per-request admission made one store transaction per request; leases a few in all (their first
    # requests, then top-ups ahead of need).
    assert calls <= 10, calls


async def test_the_key_cache_tells_the_leases_when_the_keys_changed(store_url: str) -> None:
    from relay.gateway.auth import KeyCache

    await make_key(store_url, 1_000)
    async with open_store(store_url) as store:
        cache = KeyCache(store, refresh=60)
        changes: list[int] = []
        cache.changed = lambda: changes.append(1)
        await cache.reload(force=True)  # the first load is no change
        await cache.reload()  # nothing moved
        assert changes == []
        await store.transaction(lambda tx: stored.topup(tx, "shared", 500, "topup-1", time.time()))
        await cache.reload()
        assert changes == [1]


def test_keys_show_names_what_leases_reserve(tmp_path: Path) -> None:
    from tests.test_keys_cli import cli, in_store, write_config

    config = write_config(tmp_path, "sqlite:///relay.db")
    assert cli(config, "create", "alice", "--quota", "2").status == 0
    take = stored_leases.Take("alice", "p1", None, 250_000, now=time.time())
    in_store(config, lambda tx: stored_leases.take(tx, take))
    shown = cli(config, "show", "alice")
    fields = dict(line.split(None, 1) for line in shown.out.splitlines() if line.startswith("leased"))
    assert fields["leased"].startswith("0.25 credits")
    detail = json.loads(cli(config, "show", "alice", "--json").out)
    assert (detail["balance_micros"], detail["leased_micros"]) == (2_000_000, 250_000)

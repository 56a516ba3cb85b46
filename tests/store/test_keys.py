"""Keys in the store, on every backend: records, changes, top-ups, keys_version, and relay.toml's keys."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from relay.config import KeyConfig
from relay.config_checks import key_problems, parse_expiry
from relay.store import IntegrityError, Store, Tx, ledger, migrations
from relay.store import keys as stored
from relay.store.keys import KeyNotFound, KeyRecord, KeyRefused, SyncReport


async def run(store: Store, fn: Callable[..., Any], *args: Any) -> Any:
    return await store.transaction(lambda tx: fn(tx, *args))


def record(name: str = "alice", **fields: Any) -> KeyRecord:
    return KeyRecord(name=name, digest=stored.digest(f"sk-relay-{name}-secret"), created_at=1000.0, **fields)


def config(name: str = "dev", key: str | None = None, **fields: Any) -> KeyConfig:
    return KeyConfig(name=name, key=key or f"sk-relay-{name}-secret", **fields)


@pytest.fixture
async def migrated(store: Store) -> Store:
    await store.migrate()
    return store


async def ledger_rows(store: Store, name: str) -> list[tuple[str, int]]:
    return await store.execute("SELECT kind, amount_micros FROM quota_ledger WHERE key_name = ? ORDER BY id", (name,))


async def test_a_record_comes_back_as_it_went_in(migrated: Store) -> None:
    full = record(
        "full",
        quota_micros=12_500_000,
        expires_at=2e9,
        models=("gpt-*", "mock-1"),
        rpm=60,
        tpm=100_000,
        group="paid",
        ips=("10.0.0.0/8", "::1"),
        disabled=True,
    )
    plain = record("plain")
    assert await run(migrated, stored.version) == 0
    await run(migrated, stored.create, full)
    await run(migrated, stored.create, plain)
    assert await run(migrated, stored.version) == 2
    assert await run(migrated, stored.load_all) == [full, plain]
    assert await run(migrated, stored.get, "plain") == plain
    assert await run(migrated, stored.get, "nobody") is None
    # Only the digest, in hex; "all models" and "anywhere" are NULL.
    assert await migrated.execute("SELECT secret_digest, models, ip_allow, source FROM keys WHERE name = 'plain'") == [
        (plain.digest.hex(), None, None, "cli")
    ]
    # The quota is granted in the ledger, so the ledger explains the balance.
    assert await ledger_rows(migrated, "full") == [("topup", 12_500_000)]
    assert await ledger_rows(migrated, "plain") == []


async def test_duplicate_names_and_secrets_are_refused(migrated: Store) -> None:
    await run(migrated, stored.create, record("alice"))
    with pytest.raises(IntegrityError, match="'alice' already exists"):
        await run(migrated, stored.create, record("alice", quota_micros=5))
    with pytest.raises(IntegrityError):
        await run(migrated, stored.create, attrs.evolve(record("bob"), digest=record("alice").digest))
    assert [r.name for r in await run(migrated, stored.load_all)] == ["alice"]
    assert await run(migrated, stored.version) == 1  # the refused ones moved nothing


async def test_disable_enable_and_delete(migrated: Store) -> None:
    await run(migrated, stored.create, record("alice", quota_micros=100, rpm=5))
    assert await run(migrated, stored.set_disabled, "alice", True) is True
    assert (await run(migrated, stored.get, "alice")).disabled is True
    assert (await run(migrated, stored.get, "alice")).status(time.time()) == "disabled"
    assert await run(migrated, stored.set_disabled, "alice", False) is True
    assert (await run(migrated, stored.get, "alice")).disabled is False
    assert await run(migrated, stored.set_disabled, "nobody", True) is False
    assert await run(migrated, stored.version) == 3

    assert (await run(migrated, ledger.admit, "alice", "r1", 10, 5, None, 600.0)).ok
    assert await run(migrated, stored.delete, "alice") is True
    assert await run(migrated, stored.get, "alice") is None
    for table in ("quota_ledger", "rate_windows"):  # its ledger and windows go with it
        assert await migrated.execute(f"SELECT COUNT(*) FROM {table}") == [(0,)]
    assert await run(migrated, stored.delete, "alice") is False
    assert await run(migrated, stored.version) == 4


async def test_status_expired() -> None:
    assert record(expires_at=100.0).status(99.0) == "active"
    assert record(expires_at=100.0).status(100.0) == "expired"
    assert record(expires_at=100.0, disabled=True).status(200.0) == "disabled"


async def test_topup(migrated: Store) -> None:
    await run(migrated, stored.create, record("alice", quota_micros=1_000))
    await run(migrated, stored.create, record("free"))
    before = await run(migrated, stored.version)
    assert await run(migrated, stored.topup, "alice", 500, "t-1", 5.0) == 1_500
    assert await run(migrated, stored.topup, "alice", 500, "t-1", 6.0) == 1_500  # the same top-up again
    assert await run(migrated, stored.topup, "alice", 1, "t-2", 7.0) == 1_501
    assert await run(migrated, ledger.balance, "alice") == 1_501
    assert await ledger_rows(migrated, "alice") == [("topup", 1_000), ("topup", 500), ("topup", 1)]
    assert await run(migrated, stored.version) == before + 2
    with pytest.raises(KeyNotFound, match="no key named 'bob'"):
        await run(migrated, stored.topup, "bob", 5, "t-3", 8.0)
    with pytest.raises(KeyRefused, match="unlimited"):
        await run(migrated, stored.topup, "free", 5, "t-4", 8.0)
    with pytest.raises(KeyRefused, match="more than 0"):
        await run(migrated, stored.topup, "alice", 0, "t-5", 8.0)
    assert await run(migrated, ledger.balance, "free") is None


async def test_sync_config_creates_updates_and_deletes(migrated: Store) -> None:
    first = [config("dev", quota=2.5, rpm=10), config("ops"), config("old", quota=1.0)]
    report = await run(migrated, stored.sync_config, first, 100.0)
    assert report == SyncReport(created=("dev", "old", "ops"))
    dev = await run(migrated, stored.get, "dev")
    assert dev == KeyRecord(
        "dev", stored.digest("sk-relay-dev-secret"), 2_500_000, rpm=10, source="config", created_at=100.0
    )
    version = await run(migrated, stored.version)

    # A restart with the same relay.toml changes nothing, not even the version.
    assert await run(migrated, stored.sync_config, first, 200.0) == SyncReport()
    assert await run(migrated, stored.version) == version

    # Spend some of dev's balance, disable ops at run time; then relay.toml changes.
    assert (await run(migrated, ledger.admit, "dev", "r1", 500_000, None, None, 150.0)).ok
    await run(migrated, ledger.settle_all, [ledger.Settle("dev", "r1", 500_000, 400_000, 0, False, 151.0)])
    await run(migrated, stored.set_disabled, "ops", True)
    second = [
        config(
            "dev",
            key="sk-relay-dev-rotated",
            quota=99.0,  # a new quota does not reset the balance
            rpm=20,
            tpm=1000,
            models=("gpt-*",),
            group="vip",
            ips=("10.0.0.0/8",),
            expires="2030-01-01",
        ),
        config("ops", quota=3.0),  # unlimited -> limited: the balance becomes the quota
        config("new"),
    ]
    report = await run(migrated, stored.sync_config, second, 300.0)
    assert report == SyncReport(created=("new",), updated=("dev", "ops"), deleted=("old",))
    dev = await run(migrated, stored.get, "dev")
    assert dev == KeyRecord(
        "dev",
        stored.digest("sk-relay-dev-rotated"),
        2_100_000,
        expires_at=parse_expiry("2030-01-01"),
        models=("gpt-*",),
        rpm=20,
        tpm=1000,
        group="vip",
        ips=("10.0.0.0/8",),
        source="config",
        created_at=100.0,
    )
    ops = await run(migrated, stored.get, "ops")
    assert (ops.quota_micros, ops.disabled) == (3_000_000, True)  # still disabled: relay.toml says nothing of it
    assert await run(migrated, stored.get, "old") is None
    assert await run(migrated, stored.version) > version
    assert await migrated.execute("SELECT updated_at FROM keys WHERE name = 'dev'") == [(300.0,)]

    # limited -> unlimited: the balance goes.
    await run(
        migrated, stored.sync_config, [config("dev", key="sk-relay-dev-rotated"), config("ops", quota=3.0)], 400.0
    )
    assert (await run(migrated, stored.get, "dev")).quota_micros is None
    assert [r.name for r in await run(migrated, stored.load_all)] == ["dev", "ops"]


async def test_sync_config_moves_secrets_between_keys(migrated: Store) -> None:
    await run(migrated, stored.sync_config, [config("a", key="sk-relay-one"), config("b", key="sk-relay-two")], 1.0)
    await run(migrated, stored.sync_config, [config("a", key="sk-relay-two"), config("b", key="sk-relay-one")], 2.0)
    by_name = {r.name: r.digest for r in await run(migrated, stored.load_all)}
    assert by_name == {"a": stored.digest("sk-relay-two"), "b": stored.digest("sk-relay-one")}
    # And from a removed key to a new one.
    await run(migrated, stored.sync_config, [config("c", key="sk-relay-one")], 3.0)
    assert [(r.name, r.digest) for r in await run(migrated, stored.load_all)] == [("c", stored.digest("sk-relay-one"))]


async def test_sync_config_refuses_a_clash_with_a_cli_key(migrated: Store) -> None:
    await run(migrated, stored.create, record("alice", quota_micros=7))
    with pytest.raises(KeyRefused, match=r"'alice' is declared in relay\.toml.*relay keys create"):
        await run(migrated, stored.sync_config, [config("alice")], 1.0)
    with pytest.raises(KeyRefused, match="has the secret of key 'alice'"):
        await run(migrated, stored.sync_config, [config("bob", key="sk-relay-alice-secret")], 1.0)
    assert [r.name for r in await run(migrated, stored.load_all)] == ["alice"]
    # A cli key is never deleted by a sync, and a relay.toml key is never deleted by `relay keys delete`.
    await run(migrated, stored.sync_config, [config("dev")], 2.0)
    assert [r.name for r in await run(migrated, stored.load_all)] == ["alice", "dev"]
    with pytest.raises(KeyRefused, match=r"declared in relay\.toml; remove it there"):
        await run(migrated, stored.delete, "dev")


def test_new_secret() -> None:
    secrets = {stored.new_secret() for _ in range(200)}
    assert len(secrets) == 200
    for secret in secrets:
        assert re.fullmatch(r"sk-relay-[A-Za-z0-9_-]{40}", secret)
        assert key_problems({"key": secret}, "k") == []


@pytest.mark.parametrize(
    ("credits", "micros"),
    [(1, 1_000_000), (2.5, 2_500_000), ("0.000001", 1), (0.1, 100_000), ("12.3456789", 12_345_679), (0, 0)],
)
def test_credits_and_micros(credits: float | str, micros: int) -> None:
    assert stored.micros(credits) == micros


def test_credits_shown_with_up_to_six_decimals() -> None:
    assert [stored.credits(m) for m in (0, 1, 2_500_000, 12_345_678, -1_500_000, 3_000_000)] == [
        "0",
        "0.000001",
        "2.5",
        "12.345678",
        "-1.5",
        "3",
    ]
    with pytest.raises(ValueError, match="number of credits"):
        stored.micros("ten")
    with pytest.raises(ValueError, match="number of credits"):
        stored.micros("nan")


async def test_v1_keys_migrate_to_v2(store: Store) -> None:
    def v1_only(tx: Tx) -> None:
        migrations.current_version(tx)
        for statement in migrations.statements(migrations.MIGRATIONS[0][1 if tx.backend == "sqlite" else 2]):
            tx.execute(statement)
        tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (1, 0)")
        tx.execute(
            "INSERT INTO keys (name, secret_digest, quota_micros, created_at) VALUES (?, ?, ?, ?)",
            ("old", stored.digest("sk-relay-old").hex(), 5, 42.0),
        )

    await store.transaction(v1_only)
    assert await store.migrate() == migrations.LATEST
    assert await run(store, stored.load_all) == [
        KeyRecord("old", stored.digest("sk-relay-old"), 5, source="cli", created_at=42.0)
    ]
    assert await store.execute("SELECT updated_at FROM keys") == [(42.0,)]

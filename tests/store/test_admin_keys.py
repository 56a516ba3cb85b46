"""Admin keys in the store, on every backend: the table (digests only, roles, names unique, admin_keys_version)
and the admin API's copy of them (relay.admin.auth.AdminKeys): reloaded when the version moves, disabled keys
refused, relay.toml's keys winning a name clash and following a reloaded relay.toml."""

from __future__ import annotations

import pytest

from relay.admin.auth import AdminKeys, Caller
from relay.config import AdminKeyConfig
from relay.errors import RelayError
from relay.store import IntegrityError, Store
from relay.store import admin_keys as stored
from relay.store.admin_keys import AdminKeyRecord
from relay.store.keys import digest

ROOT = AdminKeyConfig("root", "sk-admin-root-0123456789abcdef")


async def made(store: Store, name: str, role: str = "admin") -> str:
    secret = stored.new_secret()
    record = AdminKeyRecord(name, digest(secret), role, created_at=1000.0)
    await store.transaction(lambda tx: stored.create(tx, record))
    return secret


def refused(keys: AdminKeys, secret: str) -> str | None:
    """The code of the 401 ``keys`` answers ``secret`` with (the test fails if it accepts it)."""
    with pytest.raises(RelayError) as raised:
        keys.caller(secret)
    assert raised.value.status == 401
    return raised.value.code


async def test_the_table(store: Store) -> None:
    await store.migrate()
    assert await store.transaction(stored.version) == 0
    secret = await made(store, "ops", "viewer")
    await made(store, "auto")
    [auto, ops] = await store.transaction(stored.load_all)
    assert (ops.name, ops.role, ops.disabled, ops.digest) == ("ops", "viewer", False, digest(secret))
    assert auto.name == "auto" and await store.transaction(stored.version) == 2
    rows = await store.execute("SELECT secret_digest FROM admin_keys WHERE name = 'ops'")
    assert rows == [(digest(secret).hex(),)]  # the digest, never the secret
    with pytest.raises(IntegrityError):
        await made(store, "ops")
    with pytest.raises(ValueError, match="role"):
        await made(store, "boss", "owner")
    assert await store.transaction(lambda tx: stored.set_disabled(tx, "ops", True, 2000.0))
    assert (await store.transaction(stored.load_all))[1].disabled
    assert not await store.transaction(lambda tx: stored.set_disabled(tx, "ghost", True, 2000.0))
    assert await store.transaction(lambda tx: stored.delete(tx, "ops"))
    assert not await store.transaction(lambda tx: stored.delete(tx, "ops"))
    assert [r.name for r in await store.transaction(stored.load_all)] == ["auto"]
    assert await store.transaction(stored.version) == 4  # failed changes do not move it


async def test_the_copy_follows_the_store(store: Store) -> None:
    await store.migrate()
    keys = AdminKeys((ROOT,), store)
    await keys.reload()
    assert keys.caller(ROOT.key) == Caller("root", "admin")
    secret = await made(store, "ops", "viewer")
    assert refused(keys, secret) == "invalid_admin_key"  # not read yet
    await keys.reload()
    assert keys.caller(secret) == Caller("ops", "viewer", "store")
    await store.transaction(lambda tx: stored.set_disabled(tx, "ops", True, 2000.0))
    await keys.reload()
    assert refused(keys, secret) == "admin_key_disabled"
    await store.transaction(lambda tx: stored.delete(tx, "ops"))
    await keys.reload()
    assert refused(keys, secret) == "invalid_admin_key"
    assert keys.caller(ROOT.key).name == "root"


async def test_relay_toml_wins_a_name_clash_and_follows_a_reload(store: Store) -> None:
    await store.migrate()
    stored_root = await made(store, "root")
    other = await made(store, "other")
    keys = AdminKeys((ROOT,), store)
    await keys.reload()
    assert refused(keys, stored_root) == "invalid_admin_key"  # relay.toml declares "root": the store's is ignored
    assert keys.caller(other).name == "other"
    renamed = AdminKeyConfig("toml-root", ROOT.key, "viewer")
    keys.configure((renamed,))  # relay.toml read again (SIGHUP)
    assert keys.caller(ROOT.key) == Caller("toml-root", "viewer")
    assert keys.caller(stored_root) == Caller("root", "admin", "store")  # no clash any more
    assert keys.caller(other).name == "other"

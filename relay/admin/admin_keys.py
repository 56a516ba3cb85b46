"""The operations on the admin keys kept in the store, for ``relay admin-keys`` (relay/admin_keys_cli.py).

Admin keys come from two sources: relay.toml's ``[[admin_keys]]`` (secrets in the file, digested in memory) and
the store's ``admin_keys`` table (made here; only digests stored). A store admin key may not take the name of a
relay.toml one. Each operation returns plain data or raises ``BadArguments`` or ``Refused`` (relay.admin.keys')
or a ``StoreError``.
"""

from __future__ import annotations

import time

from relay.admin.keys import NAME, BadArguments, Refused
from relay.config import Config
from relay.store import IntegrityError, Store
from relay.store import admin_keys as stored
from relay.store.admin_keys import ROLES, AdminKeyRecord
from relay.store.keys import digest

__all__ = ["create", "delete", "list_admin_keys", "new_record", "set_disabled"]


def new_record(name: str, role: str, config: Config) -> tuple[AdminKeyRecord, str]:
    """The record of a new admin key and its secret; BadArguments or Refused when it cannot be made."""
    if not NAME.fullmatch(name):
        raise BadArguments(f"name {name!r}: use 1 to 64 letters, digits and . _ : @ - (a letter or digit first)")
    if role not in ROLES:
        raise BadArguments(f"--role: must be one of {', '.join(ROLES)}, got {role!r}")
    if any(key.name == name for key in config.admin_keys):
        raise Refused(f"admin key {name!r} is declared in relay.toml ([[admin_keys]]); pick another name")
    secret = stored.new_secret()
    return AdminKeyRecord(name, digest(secret), role, created_at=time.time()), secret


async def create(store: Store, record: AdminKeyRecord) -> None:
    """Store a new admin key; Refused when its name is taken."""
    try:
        await store.transaction(lambda tx: stored.create(tx, record))
    except IntegrityError as error:
        raise Refused(str(error)) from None


async def list_admin_keys(store: Store) -> list[AdminKeyRecord]:
    """Every admin key of the store, by name."""
    return await store.transaction(stored.load_all)


async def set_disabled(store: Store, name: str, disabled: bool) -> None:
    """Disable or enable a store admin key; Refused when there is no such key."""
    if not await store.transaction(lambda tx: stored.set_disabled(tx, name, disabled, time.time())):
        raise Refused(f"no admin key named {name!r} in the store")


async def delete(store: Store, name: str) -> None:
    """Delete a store admin key; Refused when there is no such key."""
    if not await store.transaction(lambda tx: stored.delete(tx, name)):
        raise Refused(f"no admin key named {name!r} in the store")

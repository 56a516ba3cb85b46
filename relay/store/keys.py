"""Relay-issued keys in the store: read, created, changed, topped up, and kept in step with relay.toml.

A key comes from relay.toml (``source = 'config'``, put in the store by ``sync_config`` at every start) or
from ``relay keys create`` (``source = 'cli'``). Only the SHA-256 digest of a secret is stored. Every change
moves ``keys_version`` in ``meta``, so the processes that keep a copy of the keys know to read them again.

Every function here is synchronous and takes the ``Tx`` of one store transaction:
``await store.transaction(lambda tx: keys.create(tx, record))``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from relay.config import KeyConfig
from relay.config_checks import parse_expiry
from relay.store.base import Row, Tx
from relay.store.errors import IntegrityError, StoreError

__all__ = [
    "MICROS",
    "KeyNotFound",
    "KeyRecord",
    "KeyRefused",
    "SyncReport",
    "Tx",
    "create",
    "credits",
    "delete",
    "digest",
    "from_config",
    "get",
    "load_all",
    "micros",
    "new_secret",
    "rotate",
    "set_disabled",
    "sync_config",
    "topup",
    "update",
    "version",
]

#: Micro-credits in one credit: every amount in the store is an integer number of them.
MICROS = 1_000_000

#: pg_advisory_xact_lock key of ``sync_config``: two processes starting at once sync one after the other.
PG_SYNC_LOCK = 0x52454C4159_02  # "RELAY", 2


class KeyRefused(StoreError):
    """The store refuses a change to a key; the message names the key and says why."""


class KeyNotFound(KeyRefused):
    """No key of that name."""


@attrs.frozen
class KeyRecord:
    name: str
    #: SHA-256 of the secret (the ``secret_digest`` column holds it in hex).
    digest: bytes
    #: The balance in micro-credits; None: unlimited.
    quota_micros: int | None = None
    #: Unix seconds; None: never.
    expires_at: float | None = None
    models: tuple[str, ...] = ("*",)
    rpm: int | None = None
    tpm: int | None = None
    group: str = "default"
    #: CIDRs the key may be used from; empty: anywhere.
    ips: tuple[str, ...] = ()
    disabled: bool = False
    #: ``config`` (declared in relay.toml) or ``cli`` (``relay keys create``).
    source: str = "cli"
    created_at: float = 0.0

    def status(self, now: float) -> str:
        """``disabled``, ``expired`` or ``active``."""
        if self.disabled:
            return "disabled"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


@attrs.frozen
class SyncReport:
    """What ``sync_config`` changed, by key name."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


# ---- money and secrets -------------------------------------------------------------------------------


def micros(amount: float | str | Decimal) -> int:
    """``amount`` credits in micro-credits (rounded to the nearest); ValueError if it is not a number."""
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValueError(f"expected a number of credits, got {amount!r}") from None
    if not value.is_finite():
        raise ValueError(f"expected a number of credits, got {amount!r}")
    return int((value * MICROS).to_integral_value())


def credits(amount_micros: int) -> str:
    """``amount_micros`` as credits, with up to 6 decimals and no trailing zeros: ``12.5``, ``0.000001``."""
    sign = "-" if amount_micros < 0 else ""
    whole, fraction = divmod(abs(amount_micros), MICROS)
    return f"{sign}{whole}.{fraction:06d}".rstrip("0").rstrip(".")


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_secret() -> str:
    """A fresh secret: ``sk-relay-`` and 40 URL-safe random characters (never a ``#``)."""
    return "sk-relay-" + secrets.token_urlsafe(30)


def from_config(config: KeyConfig, now: float) -> KeyRecord:
    """The record a relay.toml key starts as: its balance is its whole quota."""
    return KeyRecord(
        name=config.name,
        digest=digest(config.key),
        quota_micros=None if config.quota is None else micros(config.quota),
        expires_at=None if config.expires is None else parse_expiry(config.expires),
        models=tuple(config.models),
        rpm=config.rpm,
        tpm=config.tpm,
        group=config.group,
        ips=tuple(config.ips),
        source="config",
        created_at=now,
    )


# ---- reading -------------------------------------------------------------------------------------


_COLUMNS = (
    "name, secret_digest, quota_micros, expires_at, models, rpm, tpm, channel_group, ip_allow, disabled,"
    " source, created_at"
)


def _record(row: Row) -> KeyRecord:
    name, hex_digest, quota, expires, models, rpm, tpm, group, ips, disabled, source, created = row
    return KeyRecord(
        name=name,
        digest=bytes.fromhex(hex_digest),
        quota_micros=quota,
        expires_at=expires,
        models=tuple(json.loads(models)) if models is not None else ("*",),
        rpm=rpm,
        tpm=tpm,
        group=group if group is not None else "default",
        ips=tuple(json.loads(ips)) if ips is not None else (),
        disabled=bool(disabled),
        source=source,
        created_at=created,
    )


def _columns(record: KeyRecord) -> dict[str, Any]:
    """The columns a record sets (the balance apart)."""
    return {
        "secret_digest": record.digest.hex(),
        "expires_at": record.expires_at,
        "models": None if record.models == ("*",) else json.dumps(list(record.models)),
        "rpm": record.rpm,
        "tpm": record.tpm,
        "channel_group": record.group,
        "ip_allow": json.dumps(list(record.ips)) if record.ips else None,
    }


def load_all(tx: Tx) -> list[KeyRecord]:
    """Every key (disabled and expired ones too), by name."""
    return [_record(row) for row in tx.execute(f"SELECT {_COLUMNS} FROM keys ORDER BY name")]


def get(tx: Tx, name: str) -> KeyRecord | None:
    rows = tx.execute(f"SELECT {_COLUMNS} FROM keys WHERE name = ?", (name,))
    return _record(rows[0]) if rows else None


def version(tx: Tx) -> int:
    """``keys_version``: it moves whenever a key changes (0 before the first change)."""
    rows = tx.execute("SELECT value FROM meta WHERE name = 'keys_version'")
    return int(rows[0][0]) if rows else 0


def _bump(tx: Tx) -> None:
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('keys_version', 1)"
        " ON CONFLICT (name) DO UPDATE SET value = meta.value + 1"
    )


# ---- changing ------------------------------------------------------------------------------------


def _grant(tx: Tx, name: str, amount: int, request_id: str, now: float) -> None:
    """Credit added to a balance, in the ledger (a ``topup`` row; the first one of a key is its grant)."""
    tx.execute(
        "INSERT INTO quota_ledger (key_name, request_id, kind, amount_micros, created_at) VALUES (?, ?, 'topup', ?, ?)",
        (name, request_id, amount, now),
    )


def create(tx: Tx, record: KeyRecord) -> None:
    """Add ``record`` (its balance starts at ``quota_micros``, granted in the ledger).

    IntegrityError when a key of that name, or with that secret, exists.
    """
    if tx.execute("SELECT 1 FROM keys WHERE name = ?", (record.name,)):
        raise IntegrityError(f"a key named {record.name!r} already exists")
    _insert(tx, record)
    _bump(tx)


def _insert(tx: Tx, record: KeyRecord) -> None:
    if record.source not in ("config", "cli"):
        raise ValueError(f"a key's source is 'config' or 'cli', not {record.source!r}")
    columns = {
        "name": record.name,
        **_columns(record),
        "quota_micros": record.quota_micros,
        "disabled": record.disabled,
        "source": record.source,
        "created_at": record.created_at,
        "updated_at": record.created_at,
    }
    tx.execute(
        f"INSERT INTO keys ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", tuple(columns.values())
    )
    if record.quota_micros:
        _grant(tx, record.name, record.quota_micros, f"grant-{uuid.uuid4().hex}", record.created_at)


def set_disabled(tx: Tx, name: str, disabled: bool, now: float | None = None) -> bool:
    """Disable or enable a key; False when there is no such key."""
    rows = tx.execute(
        "UPDATE keys SET disabled = ?, updated_at = COALESCE(?, updated_at) WHERE name = ? RETURNING name",
        (disabled, now, name),
    )
    if rows:
        _bump(tx)
    return bool(rows)


def _remove(tx: Tx, name: str) -> None:
    """The key, its rate windows and its ledger (the request log and the daily totals keep its history)."""
    tx.execute("DELETE FROM keys WHERE name = ?", (name,))
    tx.execute("DELETE FROM rate_windows WHERE key_name = ?", (name,))
    tx.execute("DELETE FROM quota_ledger WHERE key_name = ?", (name,))
    tx.execute("DELETE FROM quota_leases WHERE key_name = ?", (name,))  # its leases reserve nothing now


def delete(tx: Tx, name: str) -> bool:
    """Delete a key made with ``relay keys`` (and its ledger); False when there is no such key.

    KeyRefused for a key declared in relay.toml: it would come back at the next start.
    """
    rows = tx.execute("SELECT source FROM keys WHERE name = ?", (name,))
    if not rows:
        return False
    if rows[0][0] == "config":
        raise KeyRefused(f"key {name!r} is declared in relay.toml; remove it there")
    _remove(tx, name)
    _bump(tx)
    return True


def topup(tx: Tx, name: str, amount_micros: int, request_id: str, now: float) -> int:
    """Add ``amount_micros`` to the key's balance; the new balance.

    Idempotent: a second top-up with the same ``request_id`` adds nothing. KeyNotFound for an unknown key,
    KeyRefused for an unlimited one or an amount that is not positive.
    """
    if amount_micros <= 0:
        raise KeyRefused(f"key {name!r}: a top-up adds more than 0 credits, got {credits(amount_micros)}")
    rows = tx.execute("SELECT quota_micros FROM keys WHERE name = ?" + _for_update(tx), (name,))
    if not rows:
        raise KeyNotFound(f"no key named {name!r}")
    if rows[0][0] is None:
        raise KeyRefused(f"key {name!r} has no quota (unlimited): there is nothing to top up")
    added = tx.execute(
        "INSERT INTO quota_ledger (key_name, request_id, kind, amount_micros, created_at) VALUES (?, ?, 'topup', ?, ?)"
        " ON CONFLICT (request_id, kind) DO NOTHING RETURNING id",
        (name, request_id, amount_micros, now),
    )
    if not added:
        return int(rows[0][0])
    [(balance,)] = tx.execute(
        "UPDATE keys SET quota_micros = quota_micros + ?, updated_at = ? WHERE name = ? RETURNING quota_micros",
        (amount_micros, now, name),
    )
    _bump(tx)
    return int(balance)


def _made_here(tx: Tx, name: str, what: str) -> KeyRecord:
    """The key ``name``, locked for the rest of the transaction; KeyNotFound, or KeyRefused (``what`` cannot be
    done) for a key of relay.toml: ``sync_config`` gives it the file's fields and secret again at every start."""
    rows = tx.execute(f"SELECT {_COLUMNS} FROM keys WHERE name = ?" + _for_update(tx), (name,))
    if not rows:
        raise KeyNotFound(f"no key named {name!r}")
    record = _record(rows[0])
    if record.source == "config":
        raise KeyRefused(f"key {name!r} is declared in relay.toml: {what} it there (Relay re-reads it at every start)")
    return record


def update(tx: Tx, name: str, change: Callable[[KeyRecord], KeyRecord], now: float) -> KeyRecord:
    """Change a key made with ``relay keys`` to ``change(key)``; the key as it is now.

    Every field may change but the name, the secret and the balance, which changes only between unlimited and
    limited, as ``sync_config`` changes it (limited → unlimited: NULL; unlimited → limited: the new quota, granted
    in the ledger). KeyNotFound for an unknown key, KeyRefused for a key of relay.toml; what ``change`` raises
    rolls the transaction back.
    """
    old = _made_here(tx, name, "change")
    new = attrs.evolve(change(old), name=old.name, digest=old.digest, disabled=old.disabled, source=old.source)
    _update(tx, old, new, now)
    _bump(tx)
    return new


def rotate(tx: Tx, name: str, new_digest: bytes, now: float) -> KeyRecord:
    """Give a key made with ``relay keys`` a new secret (its digest); the old one stops working (no overlap).

    The name stays, so its balance, ledger, rate windows, leases and logged history stay with it. KeyNotFound,
    KeyRefused for a key of relay.toml; IntegrityError when another key has that secret.
    """
    old = _made_here(tx, name, "rotate")
    tx.execute("UPDATE keys SET secret_digest = ?, updated_at = ? WHERE name = ?", (new_digest.hex(), now, name))
    _bump(tx)
    return attrs.evolve(old, digest=new_digest)


def _for_update(tx: Tx) -> str:
    """Row lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the one write lock."""
    return " FOR UPDATE" if tx.backend == "postgresql" else ""


# ---- relay.toml ----------------------------------------------------------------------------------


def sync_config(tx: Tx, configs: Sequence[KeyConfig], now: float) -> SyncReport:
    """Make the store's relay.toml keys those of ``configs``.

    A new key starts with its quota as balance. A known one takes every field from relay.toml but its
    balance, which changes only between unlimited and limited (limited → unlimited: NULL; unlimited →
    limited: the quota). Keys no longer in relay.toml are deleted. Whether a key is disabled is left alone
    (``relay keys disable`` works on relay.toml keys too). KeyRefused when a relay.toml key has the name or
    the secret of a key made with ``relay keys``.
    """
    if tx.backend == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(?)", (PG_SYNC_LOCK,))
    stored = {r.name: r for r in load_all(tx)}
    wanted = {c.name: from_config(c, now) for c in configs}
    by_digest = {r.digest: r for r in stored.values()}
    for record in wanted.values():
        old = stored.get(record.name)
        if old is not None and old.source != "config":
            raise KeyRefused(
                f"key {record.name!r} is declared in relay.toml, but a key of that name was made with"
                f" `relay keys create`: rename the one in relay.toml, or `relay keys delete {record.name}`"
            )
        other = by_digest.get(record.digest)
        if other is not None and other.name != record.name and other.source != "config":
            raise KeyRefused(
                f"key {record.name!r} in relay.toml has the secret of key {other.name!r}, made with"
                " `relay keys create`: give it another secret"
            )
    deleted = sorted(name for name, r in stored.items() if r.source == "config" and name not in wanted)
    for name in deleted:
        _remove(tx, name)
    updates = {name: r for name, r in wanted.items() if name in stored and _changed(stored[name], r)}
    # A secret may move from one relay.toml key to another: clear the changed ones first (the column is unique).
    for name in sorted(updates):
        if updates[name].digest != stored[name].digest:
            tx.execute("UPDATE keys SET secret_digest = ? WHERE name = ?", (f"moving:{name}", name))
    for name in sorted(updates):
        _update(tx, stored[name], updates[name], now)
    created = sorted(name for name in wanted if name not in stored)
    for name in created:
        _insert(tx, wanted[name])
    if deleted or updates or created:
        _bump(tx)
    return SyncReport(tuple(created), tuple(sorted(updates)), tuple(deleted))


def _changed(old: KeyRecord, new: KeyRecord) -> bool:
    return _columns(old) != _columns(new) or (old.quota_micros is None) != (new.quota_micros is None)


def _update(tx: Tx, old: KeyRecord, new: KeyRecord, now: float) -> None:
    columns = _columns(new)
    sets = ", ".join(f"{column} = ?" for column in columns)
    tx.execute(f"UPDATE keys SET {sets}, updated_at = ? WHERE name = ?", (*columns.values(), now, new.name))
    if new.quota_micros is None and old.quota_micros is not None:
        tx.execute("UPDATE keys SET quota_micros = NULL WHERE name = ?", (new.name,))
    elif new.quota_micros is not None and old.quota_micros is None:
        tx.execute("UPDATE keys SET quota_micros = ? WHERE name = ?", (new.quota_micros, new.name))
        if new.quota_micros:
            _grant(tx, new.name, new.quota_micros, f"grant-{uuid.uuid4().hex}", now)

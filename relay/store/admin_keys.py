"""Admin keys kept in the store (``relay admin-keys create``), beside those declared in relay.toml.

Only the SHA-256 digest of a secret is stored, with the key's name, role (``admin`` or ``viewer``) and whether it
is disabled. Every change moves ``admin_keys_version`` in ``meta`` (not ``keys_version``: a change to an admin key
need not make every process read the relay keys again), so the processes that keep a copy know to read them again.

Every function here is synchronous and takes the ``Tx`` of one store transaction, as ``relay.store.keys`` does.
"""

from __future__ import annotations

import secrets

import attrs

from relay.store.base import Row, Tx
from relay.store.errors import IntegrityError

__all__ = [
    "ROLES",
    "AdminKeyRecord",
    "create",
    "delete",
    "load_all",
    "new_secret",
    "set_disabled",
    "version",
]

#: The roles an admin key may have: ``admin`` may do everything, ``viewer`` only read (GET).
ROLES = ("admin", "viewer")


@attrs.frozen
class AdminKeyRecord:
    name: str
    #: SHA-256 of the secret (the ``secret_digest`` column holds it in hex).
    digest: bytes
    role: str = "admin"
    disabled: bool = False
    created_at: float = 0.0


def new_secret() -> str:
    """A fresh admin secret: ``sk-admin-`` and 40 URL-safe random characters (never a relay key's prefix)."""
    return "sk-admin-" + secrets.token_urlsafe(30)


def _record(row: Row) -> AdminKeyRecord:
    name, hex_digest, role, disabled, created = row
    return AdminKeyRecord(name, bytes.fromhex(hex_digest), role, bool(disabled), created)


def load_all(tx: Tx) -> list[AdminKeyRecord]:
    """Every admin key of the store (disabled ones too), by name."""
    rows = tx.execute("SELECT name, secret_digest, role, disabled, created_at FROM admin_keys ORDER BY name")
    return [_record(row) for row in rows]


def version(tx: Tx) -> int:
    """``admin_keys_version``: it moves whenever an admin key of the store changes (0 before the first change)."""
    rows = tx.execute("SELECT value FROM meta WHERE name = 'admin_keys_version'")
    return int(rows[0][0]) if rows else 0


def _bump(tx: Tx) -> None:
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('admin_keys_version', 1)"
        " ON CONFLICT (name) DO UPDATE SET value = meta.value + 1"
    )


def create(tx: Tx, record: AdminKeyRecord) -> None:
    """Add ``record``; IntegrityError when an admin key of that name (or with that secret) exists."""
    if record.role not in ROLES:
        raise ValueError(f"an admin key's role is one of {ROLES}, not {record.role!r}")
    if tx.execute("SELECT 1 FROM admin_keys WHERE name = ?", (record.name,)):
        raise IntegrityError(f"an admin key named {record.name!r} already exists")
    tx.execute(
        "INSERT INTO admin_keys (name, secret_digest, role, disabled, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (record.name, record.digest.hex(), record.role, record.disabled, record.created_at, record.created_at),
    )
    _bump(tx)


def set_disabled(tx: Tx, name: str, disabled: bool, now: float) -> bool:
    """Disable or enable an admin key; False when there is no such key."""
    rows = tx.execute(
        "UPDATE admin_keys SET disabled = ?, updated_at = ? WHERE name = ? RETURNING name", (disabled, now, name)
    )
    if rows:
        _bump(tx)
    return bool(rows)


def delete(tx: Tx, name: str) -> bool:
    """Delete an admin key; False when there is no such key."""
    rows = tx.execute("DELETE FROM admin_keys WHERE name = ? RETURNING name", (name,))
    if rows:
        _bump(tx)
    return bool(rows)

"""Channels kept in the store (admin API, docs/admin.md), and the run-time state of relay.toml's channels.

A store channel is a ``[[channels]]`` table kept as JSON text exactly as it was given (``${VAR}`` references stay
references: they are resolved when a process builds the channel, so a secret need not be stored), with an enabled
flag and its times. relay.toml's channels are read-only here but for one thing: a row of ``channel_states`` says
one is disabled (or enabled again) at run time. Every change moves ``channels_version`` in ``meta``; each process
compares it every ``[store] key_refresh`` seconds and rebuilds its channels when it moved (relay/gateway/live.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from relay.store.errors import IntegrityError
from relay.store.tx import Tx

__all__ = [
    "StoredChannel",
    "create",
    "delete",
    "get",
    "load",
    "set_enabled",
    "set_state",
    "states",
    "update",
    "version",
]


@attrs.frozen
class StoredChannel:
    name: str
    #: The ``[[channels]]`` table as given (its ``name`` included), ``${VAR}`` references unresolved.
    table: Mapping[str, Any]
    enabled: bool
    created_at: float
    updated_at: float


_COLUMNS = "name, config, enabled, created_at, updated_at"


def _row(row: tuple[Any, ...]) -> StoredChannel:
    name, config, enabled, created_at, updated_at = row
    return StoredChannel(str(name), orjson.loads(config), bool(enabled), float(created_at), float(updated_at))


def version(tx: Tx) -> int:
    """``channels_version``: it moves whenever a store channel or a channel's state changes (0 before the first)."""
    rows = tx.execute("SELECT value FROM meta WHERE name = 'channels_version'")
    return int(rows[0][0]) if rows else 0


def _bump(tx: Tx) -> None:
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('channels_version', 1)"
        " ON CONFLICT (name) DO UPDATE SET value = meta.value + 1"
    )


def load(tx: Tx) -> tuple[int, list[StoredChannel], dict[str, bool]]:
    """The version, every store channel (by name) and every state row of a relay.toml channel, in one read."""
    found = [_row(row) for row in tx.execute(f"SELECT {_COLUMNS} FROM store_channels ORDER BY name")]
    return version(tx), found, states(tx)


def get(tx: Tx, name: str) -> StoredChannel | None:
    rows = tx.execute(f"SELECT {_COLUMNS} FROM store_channels WHERE name = ?", (name,))
    return _row(rows[0]) if rows else None


def states(tx: Tx) -> dict[str, bool]:
    """relay.toml channels' run-time states: name -> enabled (a channel without a row is enabled)."""
    return {str(name): bool(enabled) for name, enabled in tx.execute("SELECT name, enabled FROM channel_states")}


def create(tx: Tx, table: Mapping[str, Any], now: float) -> StoredChannel:
    """Add a store channel (enabled); IntegrityError when one of that name exists."""
    name = str(table["name"])
    if tx.execute("SELECT 1 FROM store_channels WHERE name = ?", (name,)):
        raise IntegrityError(f"a channel named {name!r} already exists")
    tx.execute(
        f"INSERT INTO store_channels ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
        (name, orjson.dumps(dict(table)).decode(), True, now, now),
    )
    _bump(tx)
    return StoredChannel(name, dict(table), True, now, now)


def update(tx: Tx, name: str, table: Mapping[str, Any], now: float) -> bool:
    """Replace a store channel's table (its enabled flag kept); False when there is no such channel."""
    rows = tx.execute(
        "UPDATE store_channels SET config = ?, updated_at = ? WHERE name = ? RETURNING name",
        (orjson.dumps(dict(table)).decode(), now, name),
    )
    if rows:
        _bump(tx)
    return bool(rows)


def delete(tx: Tx, name: str) -> bool:
    """Delete a store channel; False when there is no such channel."""
    rows = tx.execute("DELETE FROM store_channels WHERE name = ? RETURNING name", (name,))
    if rows:
        _bump(tx)
    return bool(rows)


def set_enabled(tx: Tx, name: str, enabled: bool, now: float) -> bool:
    """Enable or disable a store channel; False when there is no such channel."""
    rows = tx.execute(
        "UPDATE store_channels SET enabled = ?, updated_at = ? WHERE name = ? RETURNING name", (enabled, now, name)
    )
    if rows:
        _bump(tx)
    return bool(rows)


def set_state(tx: Tx, name: str, enabled: bool, now: float) -> None:
    """Enable or disable a relay.toml channel at run time (a ``channel_states`` row; the caller checked the name)."""
    tx.execute(
        "INSERT INTO channel_states (name, enabled, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
        (name, enabled, now),
    )
    _bump(tx)

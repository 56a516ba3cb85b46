"""The Responses API's state in the store: responses Relay keeps, and where an upstream keeps the others.

``stored_responses`` holds a response Relay answered by converting (the channel keeps no state): its owner (a
key's name), its input items (those of the chain it continued first), instructions, output items, usage and the
whole Response object the client got. ``response_affinity`` holds, for a response an OpenAI Responses upstream
keeps, the channel that keeps it and its owner. A response id belongs to the key that created it: every read
here takes the key's name, and another key's row is not found.

Retention: a row older than ``cutoff`` (``time.time() - retention_days * 86400``; None: kept until deleted) is
never read; ``prune`` deletes such rows (``relay.endpoints.kept_responses`` calls it now and then, after a save).

Every function is synchronous and takes the ``Tx`` of one store transaction:
``await store.transaction(lambda tx: responses.load(tx, id, key, cutoff))``.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from relay.store.base import Row, Tx

__all__ = [
    "Affinity",
    "StoredResponse",
    "cutoff_for",
    "delete",
    "find",
    "known",
    "load",
    "prune",
    "save",
    "save_affinity",
]

_DAY = 86_400.0


@attrs.frozen
class StoredResponse:
    """A response Relay keeps (JSON fields already decoded)."""

    id: str
    key_name: str
    channel: str
    model: str
    created_at: float
    status: str
    previous_response_id: str | None
    #: The request's ``instructions`` (a string, a list of items, or None): kept, never carried to a follow-up.
    instructions: Any
    #: The input items: the chain's (input then output of the response continued), then the request's own.
    input_items: list[Any]
    output_items: list[Any]
    usage: dict[str, Any] | None
    #: The Response object as the client got it.
    response: dict[str, Any]
    #: The stream's events as the client got them (a background response's), for a replay; None: not kept.
    events: list[Any] | None = None


@attrs.frozen
class Affinity:
    """A response an OpenAI Responses upstream keeps: the channel that has it."""

    id: str
    key_name: str
    channel: str
    created_at: float


def cutoff_for(retention_days: float, now: float) -> float | None:
    """The oldest ``created_at`` still served (None: every row, ``retention_days`` 0)."""
    return None if retention_days <= 0 else now - retention_days * _DAY


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def save(tx: Tx, record: StoredResponse) -> bool:
    """Keep ``record``; a row of the same id and owner is replaced. False (nothing written) when the id is
    another key's: an id is never handed from one key to another."""
    if _owned_by_other(tx, "stored_responses", record.id, record.key_name):
        return False
    columns = {
        "id": record.id,
        "key_name": record.key_name,
        "channel": record.channel,
        "model": record.model,
        "created_at": record.created_at,
        "status": record.status,
        "previous_response_id": record.previous_response_id,
        "instructions": None if record.instructions is None else _dumps(record.instructions),
        "input_items": _dumps(record.input_items),
        "output_items": _dumps(record.output_items),
        "usage": None if record.usage is None else _dumps(record.usage),
        "response": _dumps(record.response),
        "events": None if record.events is None else _dumps(record.events),
    }
    updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name not in ("id", "key_name"))
    tx.execute(
        f"INSERT INTO stored_responses ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT (id) DO UPDATE SET {updates}",
        tuple(columns.values()),
    )
    return True


def save_affinity(tx: Tx, affinity: Affinity) -> bool:
    """Note the channel keeping a response; False (nothing written) when the id is another key's."""
    if _owned_by_other(tx, "response_affinity", affinity.id, affinity.key_name):
        return False
    tx.execute(
        "INSERT INTO response_affinity (id, key_name, channel, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET channel = excluded.channel, created_at = excluded.created_at",
        (affinity.id, affinity.key_name, affinity.channel, affinity.created_at),
    )
    return True


def _owned_by_other(tx: Tx, table: str, id: str, key_name: str) -> bool:
    rows = tx.execute(f"SELECT key_name FROM {table} WHERE id = ?", (id,))
    return bool(rows) and rows[0][0] != key_name


_COLUMNS = (
    "id, key_name, channel, model, created_at, status, previous_response_id, instructions, input_items,"
    " output_items, usage, response, events"
)


def _record(row: Row) -> StoredResponse:
    id, key_name, channel, model, created, status, previous, instructions, inputs, outputs, usage, response, events = (
        row
    )
    return StoredResponse(
        id=id,
        key_name=key_name,
        channel=channel,
        model=model,
        created_at=created,
        status=status,
        previous_response_id=previous,
        instructions=None if instructions is None else json.loads(instructions),
        input_items=json.loads(inputs),
        output_items=json.loads(outputs),
        usage=None if usage is None else json.loads(usage),
        response=json.loads(response),
        events=None if events is None else json.loads(events),
    )


def _fresh(cutoff: float | None) -> tuple[str, tuple[float, ...]]:
    return ("", ()) if cutoff is None else (" AND created_at >= ?", (cutoff,))


def load(tx: Tx, id: str, key_name: str, cutoff: float | None) -> StoredResponse | None:
    """The response ``id`` Relay keeps for ``key_name``, unless it expired; None otherwise."""
    clause, args = _fresh(cutoff)
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM stored_responses WHERE id = ? AND key_name = ?{clause}", (id, key_name, *args)
    )
    return _record(rows[0]) if rows else None


def find(tx: Tx, id: str, key_name: str, cutoff: float | None) -> StoredResponse | Affinity | None:
    """What ``key_name`` may use of the response ``id``: the response Relay keeps, the channel that keeps it, or
    None (unknown, expired, or another key's)."""
    stored = load(tx, id, key_name, cutoff)
    if stored is not None:
        return stored
    clause, args = _fresh(cutoff)
    rows = tx.execute(
        f"SELECT id, key_name, channel, created_at FROM response_affinity WHERE id = ? AND key_name = ?{clause}",
        (id, key_name, *args),
    )
    return Affinity(*rows[0]) if rows else None


def known(tx: Tx, id: str) -> bool:
    """Whether any key has the response ``id`` (expired rows included)."""
    return bool(
        tx.execute("SELECT 1 FROM stored_responses WHERE id = ?", (id,))
        or tx.execute("SELECT 1 FROM response_affinity WHERE id = ?", (id,))
    )


def delete(tx: Tx, id: str, key_name: str) -> bool:
    """Forget the response ``id`` of ``key_name`` (what Relay keeps and its affinity); False when it had none."""
    kept = tx.execute("DELETE FROM stored_responses WHERE id = ? AND key_name = ? RETURNING id", (id, key_name))
    noted = tx.execute("DELETE FROM response_affinity WHERE id = ? AND key_name = ? RETURNING id", (id, key_name))
    return bool(kept or noted)


def prune(tx: Tx, cutoff: float) -> int:
    """Delete every row created before ``cutoff``; how many went."""
    gone = tx.execute("DELETE FROM stored_responses WHERE created_at < ? RETURNING id", (cutoff,))
    noted = tx.execute("DELETE FROM response_affinity WHERE created_at < ? RETURNING id", (cutoff,))
    return len(gone) + len(noted)

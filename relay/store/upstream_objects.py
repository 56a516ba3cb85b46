"""Objects an upstream keeps for a key: OpenAI files and batches, Anthropic message batches (``upstream_objects``).

Each row says who owns the object (a key's name: every read here takes it, and another key's row is not
found), which channel has it (later calls about it go there: "affinity"), its model (a batch's, for its price),
the object it came from (a batch's output file names its batch), the object as Relay last saw it (for the
listings, which Relay answers from here) and when its usage was settled (a batch's output is charged once).

Every function is synchronous and takes the ``Tx`` of one store transaction:
``await store.transaction(lambda tx: upstream_objects.find(tx, id, "file", key_name))``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import attrs

from relay.store.base import Row, Tx

__all__ = [
    "Kind",
    "UpstreamObject",
    "claim_settlement",
    "delete",
    "find",
    "listing",
    "release_settlement",
    "save",
]

Kind = Literal["file", "batch", "message_batch"]


@attrs.frozen
class UpstreamObject:
    id: str
    kind: str
    key_name: str
    channel: str
    created_at: float
    #: The object as the upstream last described it (a FileObject, a Batch, a MessageBatch).
    object: dict[str, Any]
    model: str | None = None
    #: The object this one came from: a batch's output or error file names its batch.
    parent: str | None = None
    settled_at: float | None = None


_COLUMNS = "id, kind, key_name, channel, created_at, model, parent, object, settled_at"


def _record(row: Row) -> UpstreamObject:
    id, kind, key_name, channel, created, model, parent, obj, settled = row
    return UpstreamObject(
        id=id,
        kind=kind,
        key_name=key_name,
        channel=channel,
        created_at=float(created),
        object=json.loads(obj),
        model=model,
        parent=parent,
        settled_at=None if settled is None else float(settled),
    )


def save(tx: Tx, record: UpstreamObject) -> bool:
    """Keep ``record`` (a row of the same id and owner gets its object, model and parent replaced; its channel,
    creation time and settlement stay). False, nothing written, when the id is another key's or another kind's."""
    rows = tx.execute("SELECT key_name, kind FROM upstream_objects WHERE id = ?", (record.id,))
    if rows and (rows[0][0] != record.key_name or rows[0][1] != record.kind):
        return False
    tx.execute(
        f"INSERT INTO upstream_objects ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET object = excluded.object,"
        " model = COALESCE(excluded.model, upstream_objects.model),"
        " parent = COALESCE(excluded.parent, upstream_objects.parent)",
        (
            record.id,
            record.kind,
            record.key_name,
            record.channel,
            record.created_at,
            record.model,
            record.parent,
            json.dumps(record.object, ensure_ascii=False, separators=(",", ":")),
            record.settled_at,
        ),
    )
    return True


def find(tx: Tx, id: str, kind: Kind, key_name: str) -> UpstreamObject | None:
    """The object ``id`` of ``kind`` that ``key_name`` owns; None when unknown or another key's."""
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM upstream_objects WHERE id = ? AND kind = ? AND key_name = ?", (id, kind, key_name)
    )
    return _record(rows[0]) if rows else None


def listing(tx: Tx, kind: Kind, key_name: str, *, newest_first: bool = True) -> list[UpstreamObject]:
    """Every object of ``kind`` that ``key_name`` owns, by creation time (then id)."""
    order = "DESC" if newest_first else "ASC"
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM upstream_objects WHERE key_name = ? AND kind = ?"
        f" ORDER BY created_at {order}, id {order}",
        (key_name, kind),
    )
    return [_record(row) for row in rows]


def delete(tx: Tx, id: str, kind: Kind, key_name: str) -> bool:
    """Forget the object ``id`` of ``key_name``; False when it had none."""
    return bool(
        tx.execute(
            "DELETE FROM upstream_objects WHERE id = ? AND kind = ? AND key_name = ? RETURNING id", (id, kind, key_name)
        )
    )


def claim_settlement(tx: Tx, id: str, key_name: str, now: float) -> bool:
    """Mark ``id`` settled at ``now``; True only for the one caller that found it unsettled (so that its usage
    is charged once, whatever the number of downloads, processes or machines)."""
    return bool(
        tx.execute(
            "UPDATE upstream_objects SET settled_at = ? WHERE id = ? AND key_name = ? AND settled_at IS NULL"
            " RETURNING id",
            (now, id, key_name),
        )
    )


def release_settlement(tx: Tx, id: str, key_name: str) -> None:
    """Undo ``claim_settlement`` (the charge could not be taken): the next download settles."""
    tx.execute("UPDATE upstream_objects SET settled_at = NULL WHERE id = ? AND key_name = ?", (id, key_name))

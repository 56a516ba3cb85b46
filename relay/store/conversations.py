"""The Conversations API's state in the store: conversations Relay keeps for every channel, and their items.

``conversations`` holds one row per conversation: its owner (a key's name), its metadata, when it was made and
last changed, and the position the next item takes. ``conversation_items`` holds its items in order, each with
its id. A conversation belongs to the key that created it: every read here takes the key's name, and another
key's conversation is not found.

Retention: a conversation not changed since ``cutoff`` (``relay.store.responses.cutoff_for``; None: kept until
deleted) is never read; ``prune`` deletes it with its items. Appending items (a response continuing it) counts
as a change.

Every function is synchronous and takes the ``Tx`` of one store transaction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import attrs

from relay.store.base import Tx

__all__ = [
    "Conversation",
    "append",
    "create",
    "delete",
    "delete_item",
    "item",
    "items",
    "load",
    "new_item_id",
    "prune",
    "set_metadata",
]

#: The id prefix of an item Relay names, by its type (anything else: ``item_``).
_PREFIXES = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "custom_tool_call": "ctc_",
    "custom_tool_call_output": "ctco_",
    "reasoning": "rs_",
}


@attrs.frozen
class Conversation:
    """A conversation Relay keeps (its metadata decoded)."""

    id: str
    key_name: str
    created_at: float
    updated_at: float
    metadata: dict[str, str]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def new_item_id(item: dict[str, Any]) -> str:
    """A fresh id for ``item``, prefixed as OpenAI's of its type."""
    kind = item.get("type", "message")
    return _PREFIXES.get(kind if isinstance(kind, str) else "", "item_") + os.urandom(24).hex()


def create(tx: Tx, conversation: Conversation, initial: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep ``conversation`` (a new id) with its first items; the items as kept (each with an id)."""
    tx.execute(
        "INSERT INTO conversations (id, key_name, created_at, updated_at, metadata) VALUES (?, ?, ?, ?, ?)",
        (
            conversation.id,
            conversation.key_name,
            conversation.created_at,
            conversation.updated_at,
            _dumps(conversation.metadata),
        ),
    )
    added = append(tx, conversation.id, conversation.key_name, initial, conversation.updated_at, None)
    assert added is not None
    return added


def _fresh(cutoff: float | None) -> tuple[str, tuple[float, ...]]:
    return ("", ()) if cutoff is None else (" AND updated_at >= ?", (cutoff,))


def load(tx: Tx, id: str, key_name: str, cutoff: float | None) -> Conversation | None:
    """The conversation ``id`` of ``key_name``, unless it expired; None otherwise."""
    clause, args = _fresh(cutoff)
    rows = tx.execute(
        f"SELECT id, key_name, created_at, updated_at, metadata FROM conversations WHERE id = ? AND key_name = ?"
        f"{clause}",
        (id, key_name, *args),
    )
    if not rows:
        return None
    id, key_name, created, updated, metadata = rows[0]
    return Conversation(id, key_name, created, updated, json.loads(metadata))


def set_metadata(
    tx: Tx, id: str, key_name: str, metadata: dict[str, str], now: float, cutoff: float | None
) -> Conversation | None:
    """Replace the metadata of the conversation; the conversation as it is now, None when ``key_name`` has none."""
    clause, args = _fresh(cutoff)
    rows = tx.execute(
        f"UPDATE conversations SET metadata = ?, updated_at = ? WHERE id = ? AND key_name = ?{clause} RETURNING id",
        (_dumps(metadata), now, id, key_name, *args),
    )
    return load(tx, id, key_name, None) if rows else None


def append(
    tx: Tx, id: str, key_name: str, new: Sequence[dict[str, Any]], now: float, cutoff: float | None
) -> list[dict[str, Any]] | None:
    """Add ``new`` at the end of the conversation; the items as kept, None when ``key_name`` has no such
    conversation. An item keeps its ``id`` unless it has none or the conversation already holds that id: then
    it gets a fresh one (``new_item_id``). The conversation's row is locked while its positions are taken."""
    clause, args = _fresh(cutoff)
    rows = tx.execute(
        f"UPDATE conversations SET next_position = next_position + ?, updated_at = ?"
        f" WHERE id = ? AND key_name = ?{clause} RETURNING next_position",
        (len(new), now, id, key_name, *args),
    )
    if not rows:
        return None
    first = int(rows[0][0]) - len(new)
    taken = {row[0] for row in tx.execute("SELECT id FROM conversation_items WHERE conversation_id = ?", (id,))}
    kept: list[dict[str, Any]] = []
    for offset, entry in enumerate(new):
        item_id = entry.get("id")
        if not isinstance(item_id, str) or not item_id or item_id in taken:
            item_id = new_item_id(entry)
        taken.add(item_id)
        entry = {**entry, "id": item_id}
        tx.execute(
            "INSERT INTO conversation_items (conversation_id, position, id, item) VALUES (?, ?, ?, ?)",
            (id, first + offset, item_id, _dumps(entry)),
        )
        kept.append(entry)
    return kept


def items(tx: Tx, id: str) -> list[dict[str, Any]]:
    """Every item of the conversation ``id``, oldest first (call it after ``load`` checked the owner)."""
    rows = tx.execute("SELECT item FROM conversation_items WHERE conversation_id = ? ORDER BY position", (id,))
    return [json.loads(row[0]) for row in rows]


def item(tx: Tx, id: str, item_id: str) -> dict[str, Any] | None:
    """The item ``item_id`` of the conversation ``id`` (after ``load`` checked the owner); None when it has none."""
    rows = tx.execute("SELECT item FROM conversation_items WHERE conversation_id = ? AND id = ?", (id, item_id))
    return json.loads(rows[0][0]) if rows else None


def delete_item(tx: Tx, id: str, item_id: str, now: float) -> bool:
    """Remove the item ``item_id`` of the conversation ``id`` (after ``load`` checked the owner); False when it had
    none."""
    gone = tx.execute("DELETE FROM conversation_items WHERE conversation_id = ? AND id = ? RETURNING id", (id, item_id))
    if gone:
        tx.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, id))
    return bool(gone)


def delete(tx: Tx, id: str, key_name: str) -> bool:
    """Forget the conversation ``id`` of ``key_name`` and its items; False when it had none."""
    gone = tx.execute("DELETE FROM conversations WHERE id = ? AND key_name = ? RETURNING id", (id, key_name))
    if gone:
        tx.execute("DELETE FROM conversation_items WHERE conversation_id = ?", (id,))
    return bool(gone)


def prune(tx: Tx, cutoff: float) -> int:
    """Delete every conversation not changed since ``cutoff``, with its items; how many went."""
    gone = tx.execute("DELETE FROM conversations WHERE updated_at < ? RETURNING id", (cutoff,))
    for (id,) in gone:
        tx.execute("DELETE FROM conversation_items WHERE conversation_id = ?", (id,))
    return len(gone)

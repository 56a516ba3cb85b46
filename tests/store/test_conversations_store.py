"""The Conversations API's state in the store, on every backend: conversations, their items, owners, retention."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from relay.store import Store
from relay.store import conversations as store
from relay.store.conversations import Conversation

DAY = 86_400.0


async def run(db: Store, fn: Callable[..., Any], *args: Any) -> Any:
    return await db.transaction(lambda tx: fn(tx, *args))


def conversation(id: str = "conv_1", key: str = "alice", at: float = 1_000_000.0) -> Conversation:
    return Conversation(id, key, at, at, {"topic": "météo ☃"})


def message(text: str, id: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    if id is not None:
        item["id"] = id
    return item


@pytest.fixture
async def migrated(store: Store) -> Store:
    await store.migrate()
    return store


async def test_a_conversation_and_its_items_come_back_in_order(migrated: Store) -> None:
    first = await run(migrated, store.create, conversation(), [message("a", "msg_a"), message("b")])
    assert first[0]["id"] == "msg_a" and first[1]["id"].startswith("msg_") and len(first[1]["id"]) == 52
    assert await run(migrated, store.load, "conv_1", "alice", None) == conversation()
    more = await run(migrated, store.append, "conv_1", "alice", [message("c"), message("d", "msg_a")], 2e6, None)
    assert more[1]["id"] != "msg_a"  # an id the conversation holds already: a fresh one
    listed = await run(migrated, store.items, "conv_1")
    assert [item["content"][0]["text"] for item in listed] == ["a", "b", "c", "d"]
    assert [item["id"] for item in listed] == [*(i["id"] for i in first), *(i["id"] for i in more)]
    assert await run(migrated, store.item, "conv_1", "msg_a") == first[0]
    loaded = await run(migrated, store.load, "conv_1", "alice", None)
    assert loaded.updated_at == 2e6 and loaded.created_at == 1e6


async def test_another_key_sees_nothing_and_changes_nothing(migrated: Store) -> None:
    await run(migrated, store.create, conversation(), [message("a", "msg_a")])
    assert await run(migrated, store.load, "conv_1", "bob", None) is None
    assert await run(migrated, store.append, "conv_1", "bob", [message("x")], 2e6, None) is None
    assert await run(migrated, store.set_metadata, "conv_1", "bob", {"a": "b"}, 2e6, None) is None
    assert await run(migrated, store.delete, "conv_1", "bob") is False
    assert len(await run(migrated, store.items, "conv_1")) == 1
    assert (await run(migrated, store.load, "conv_1", "alice", None)).metadata == {"topic": "météo ☃"}


async def test_metadata_items_and_the_conversation_are_removed(migrated: Store) -> None:
    await run(migrated, store.create, conversation(), [message("a", "msg_a"), message("b", "msg_b")])
    updated = await run(migrated, store.set_metadata, "conv_1", "alice", {"k": "v"}, 3e6, None)
    assert updated.metadata == {"k": "v"} and updated.updated_at == 3e6
    assert await run(migrated, store.delete_item, "conv_1", "msg_a", 4e6) is True
    assert await run(migrated, store.delete_item, "conv_1", "msg_a", 4e6) is False
    assert [item["id"] for item in await run(migrated, store.items, "conv_1")] == ["msg_b"]
    assert await run(migrated, store.delete, "conv_1", "alice") is True
    assert await run(migrated, store.load, "conv_1", "alice", None) is None
    assert await run(migrated, store.items, "conv_1") == []


async def test_retention_counts_from_the_last_change(migrated: Store) -> None:
    await run(migrated, store.create, conversation("conv_old", at=0.0), [message("a")])
    await run(migrated, store.create, conversation("conv_used", at=0.0), [message("a")])
    await run(migrated, store.append, "conv_used", "alice", [message("b")], 40 * DAY, None)
    cutoff = 40 * DAY - 30 * DAY
    assert await run(migrated, store.load, "conv_old", "alice", cutoff) is None
    assert await run(migrated, store.append, "conv_old", "alice", [message("c")], 40 * DAY, cutoff) is None
    assert await run(migrated, store.load, "conv_used", "alice", cutoff) is not None
    assert await run(migrated, store.prune, cutoff) == 1
    assert await run(migrated, store.items, "conv_old") == []
    assert len(await run(migrated, store.items, "conv_used")) == 2

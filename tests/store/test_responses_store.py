"""The Responses API's state in the store, on every backend: kept responses, affinities, owners, retention."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from relay.store import Store
from relay.store import responses as kept
from relay.store.responses import Affinity, StoredResponse

DAY = 86_400.0


async def run(store: Store, fn: Callable[..., Any], *args: Any) -> Any:
    return await store.transaction(lambda tx: fn(tx, *args))


def stored(id: str = "resp_1", key: str = "alice", created: float = 1_000_000.0, **fields: Any) -> StoredResponse:
    base: dict[str, Any] = {
        "id": id,
        "key_name": key,
        "channel": "claude",
        "model": "claude-1",
        "created_at": created,
        "status": "completed",
        "previous_response_id": None,
        "instructions": "Be brief — très.",
        "input_items": [{"role": "user", "content": "Hello ☃"}],
        "output_items": [{"type": "message", "id": "msg_1", "role": "assistant", "content": []}],
        "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
        "response": {"id": id, "object": "response", "output": [], "nested": {"a": [1, 2.5, None, True]}},
    }
    base.update(fields)
    return StoredResponse(**base)


@pytest.fixture
async def migrated(store: Store) -> Store:
    await store.migrate()
    return store


async def test_a_stored_response_comes_back_as_it_went_in(migrated: Store) -> None:
    record = stored(previous_response_id="resp_0", instructions=[{"role": "developer", "content": "x"}], usage=None)
    assert await run(migrated, kept.save, record) is True
    assert await run(migrated, kept.load, "resp_1", "alice", None) == record
    assert await run(migrated, kept.find, "resp_1", "alice", None) == record
    assert await run(migrated, kept.known, "resp_1") is True
    assert await run(migrated, kept.known, "resp_2") is False


async def test_the_owner_replaces_its_response_and_another_key_cannot(migrated: Store) -> None:
    await run(migrated, kept.save, stored(status="incomplete"))
    await run(migrated, kept.save, stored(status="completed", model="claude-2"))
    again = await run(migrated, kept.load, "resp_1", "alice", None)
    assert (again.status, again.model) == ("completed", "claude-2")
    assert await run(migrated, kept.save, stored(key="bob", model="stolen")) is False
    assert await run(migrated, kept.load, "resp_1", "bob", None) is None
    assert await run(migrated, kept.find, "resp_1", "bob", None) is None
    assert (await run(migrated, kept.load, "resp_1", "alice", None)).model == "claude-2"


async def test_affinity_is_found_for_its_owner_only(migrated: Store) -> None:
    note = Affinity("resp_up", "alice", "resp-channel", 5.0)
    assert await run(migrated, kept.save_affinity, note) is True
    assert await run(migrated, kept.find, "resp_up", "alice", None) == note
    assert await run(migrated, kept.find, "resp_up", "bob", None) is None
    assert await run(migrated, kept.save_affinity, Affinity("resp_up", "bob", "other", 6.0)) is False
    assert await run(migrated, kept.known, "resp_up") is True


async def test_delete_takes_the_owners_rows_only(migrated: Store) -> None:
    await run(migrated, kept.save, stored())
    await run(migrated, kept.save_affinity, Affinity("resp_up", "alice", "resp", 5.0))
    assert await run(migrated, kept.delete, "resp_1", "bob") is False
    assert await run(migrated, kept.delete, "resp_1", "alice") is True
    assert await run(migrated, kept.delete, "resp_1", "alice") is False
    assert await run(migrated, kept.delete, "resp_up", "alice") is True
    assert await run(migrated, kept.known, "resp_1") is False
    assert await run(migrated, kept.known, "resp_up") is False


async def test_expired_rows_are_not_served_and_prune_deletes_them(migrated: Store) -> None:
    now = 10 * DAY
    retention = 0.5  # days: a tiny retention
    await run(migrated, kept.save, stored("resp_old", created=now - DAY))
    await run(migrated, kept.save, stored("resp_new", created=now - 60))
    await run(migrated, kept.save_affinity, Affinity("resp_up_old", "alice", "resp", now - DAY))
    await run(migrated, kept.save_affinity, Affinity("resp_up_new", "alice", "resp", now - 60))
    cutoff = kept.cutoff_for(retention, now)
    assert cutoff == now - DAY / 2
    assert await run(migrated, kept.load, "resp_old", "alice", cutoff) is None
    assert await run(migrated, kept.find, "resp_up_old", "alice", cutoff) is None
    assert (await run(migrated, kept.load, "resp_new", "alice", cutoff)).id == "resp_new"
    assert (await run(migrated, kept.find, "resp_up_new", "alice", cutoff)).channel == "resp"
    assert await run(migrated, kept.known, "resp_old") is True  # expired, not yet pruned: still nobody else's
    assert await run(migrated, kept.prune, cutoff) == 2
    assert await run(migrated, kept.known, "resp_old") is False
    assert await run(migrated, kept.known, "resp_up_old") is False
    assert await run(migrated, kept.prune, cutoff) == 0
    assert (await run(migrated, kept.load, "resp_new", "alice", None)).id == "resp_new"


def test_retention_zero_keeps_forever() -> None:
    assert kept.cutoff_for(0, 1e9) is None
    assert kept.cutoff_for(30, 1e9) == 1e9 - 30 * DAY

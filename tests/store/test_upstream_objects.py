"""The store's record of objects upstreams keep for keys (files, batches), on every backend: ownership, listing
order, refresh without losing the channel or settlement, and a settlement claimed once."""

from __future__ import annotations

from typing import Any

import trio

from relay.store import Store, upstream_objects
from relay.store.upstream_objects import UpstreamObject


def _obj(id: str, key: str = "alice", kind: str = "file", created: float = 1.0, **fields: Any) -> UpstreamObject:
    return UpstreamObject(
        id, kind, key, fields.pop("channel", "oai"), created, {"id": id, **fields.pop("object", {})}, **fields
    )


async def test_owner_only_and_listing_order(store: Store) -> None:
    await store.migrate()
    for record in (_obj("file-1", created=1.0), _obj("file-2", created=2.0), _obj("batch-1", kind="batch")):
        assert await store.transaction(lambda tx, r=record: upstream_objects.save(tx, r))
    assert not await store.transaction(lambda tx: upstream_objects.save(tx, _obj("file-1", key="bob")))
    assert await store.transaction(lambda tx: upstream_objects.find(tx, "file-1", "file", "bob")) is None
    assert await store.transaction(lambda tx: upstream_objects.find(tx, "file-1", "batch", "alice")) is None
    found = await store.transaction(lambda tx: upstream_objects.find(tx, "file-1", "file", "alice"))
    assert found is not None and found.channel == "oai" and found.object == {"id": "file-1"}
    newest = await store.transaction(lambda tx: upstream_objects.listing(tx, "file", "alice"))
    assert [o.id for o in newest] == ["file-2", "file-1"]
    oldest = await store.transaction(lambda tx: upstream_objects.listing(tx, "file", "alice", newest_first=False))
    assert [o.id for o in oldest] == ["file-1", "file-2"]
    assert await store.transaction(lambda tx: upstream_objects.listing(tx, "file", "bob")) == []
    assert not await store.transaction(lambda tx: upstream_objects.delete(tx, "file-1", "file", "bob"))
    assert await store.transaction(lambda tx: upstream_objects.delete(tx, "file-1", "file", "alice"))
    assert await store.transaction(lambda tx: upstream_objects.find(tx, "file-1", "file", "alice")) is None


async def test_refresh_keeps_channel_model_parent_and_settlement(store: Store) -> None:
    await store.migrate()
    first = _obj("file-out", channel="oai", model="gpt-x", parent="batch-1", object={"status": "uploaded"})
    await store.transaction(lambda tx: upstream_objects.save(tx, first))
    assert await store.transaction(lambda tx: upstream_objects.claim_settlement(tx, "file-out", "alice", 5.0))
    fresh = _obj("file-out", channel="elsewhere", created=9.0, object={"status": "processed"})
    await store.transaction(lambda tx: upstream_objects.save(tx, fresh))
    found = await store.transaction(lambda tx: upstream_objects.find(tx, "file-out", "file", "alice"))
    assert found is not None
    assert (found.channel, found.model, found.parent, found.settled_at) == ("oai", "gpt-x", "batch-1", 5.0)
    assert found.object == {"id": "file-out", "status": "processed"}


async def test_settlement_claimed_once_among_racers(store: Store) -> None:
    await store.migrate()
    await store.transaction(lambda tx: upstream_objects.save(tx, _obj("file-out", parent="batch-1")))
    assert not await store.transaction(lambda tx: upstream_objects.claim_settlement(tx, "file-out", "bob", 1.0))
    wins: list[bool] = []

    async def claim() -> None:
        wins.append(await store.transaction(lambda tx: upstream_objects.claim_settlement(tx, "file-out", "alice", 2.0)))

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(claim)
    assert sorted(wins) == [False] * 7 + [True]
    await store.transaction(lambda tx: upstream_objects.release_settlement(tx, "file-out", "alice"))
    assert await store.transaction(lambda tx: upstream_objects.claim_settlement(tx, "file-out", "alice", 3.0))

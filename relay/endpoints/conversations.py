"""The Conversations API: ``/v1/conversations`` and its items, kept by Relay for every channel.

``POST /v1/conversations`` (``items``, ``metadata``), ``GET``, ``POST`` (new ``metadata``) and ``DELETE
/v1/conversations/{conversation_id}``, ``GET`` (paged: ``limit``, ``order``, ``after``) and ``POST
…/{conversation_id}/items``, ``GET`` and ``DELETE …/items/{item_id}``; also without ``/v1``. A conversation
belongs to the key that created it: for any other key every route is a 404, as for an unknown id. Relay keeps
every conversation itself, whatever channel later answers in it (``relay.store.conversations``); no upstream is
called here. ``conversation`` on ``POST /v1/responses`` reads and extends them
(``relay.endpoints.conversation_responses``).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects.common import load_object
from relay.dialects.openai.responses.listing import page
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.store import Tx
from relay.store import conversations as store

from .conversation_items import checked, cutoff, metadata, not_found, run
from .forward import tally
from .relayed import JSON

if TYPE_CHECKING:
    from relay.app import Relay


async def _key(relay: Relay, request: Request) -> str:
    key, _ = await relay.gateway.keys.authenticate(request)
    tally(request).key = key
    return key.name


def _shown(conversation: store.Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "object": "conversation",
        "created_at": int(conversation.created_at),
        "metadata": conversation.metadata,
    }


def _answer(obj: Any) -> Response:
    return Response(200, orjson.dumps(obj), JSON)


def _listed(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": False,
    }


async def create(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key_name = await _key(relay, request)
    payload = load_object(request.body) if request.body.strip() else {}
    items = checked(payload.get("items"), required=False)
    now = time.time()
    conversation = store.Conversation(
        "conv_" + os.urandom(24).hex(), key_name, now, now, metadata(payload.get("metadata"))
    )
    await run(relay, lambda tx: store.create(tx, conversation, items))
    return _answer(_shown(conversation))


async def _load(relay: Relay, key_name: str, conversation_id: str) -> store.Conversation:
    limit = cutoff(relay)
    found = await run(relay, lambda tx: store.load(tx, conversation_id, key_name, limit))
    if found is None:
        raise not_found(conversation_id)
    return found


async def retrieve(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key_name = await _key(relay, request)
    return _answer(_shown(await _load(relay, key_name, request.params["conversation_id"])))


async def update(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key_name = await _key(relay, request)
    conversation_id = request.params["conversation_id"]
    payload = load_object(request.body)
    if "metadata" not in payload:
        raise RelayError(400, "invalid_request", "'metadata' is required", param="metadata", code="missing_required")
    pairs = metadata(payload["metadata"])
    now, limit = time.time(), cutoff(relay)
    updated = await run(relay, lambda tx: store.set_metadata(tx, conversation_id, key_name, pairs, now, limit))
    if updated is None:
        raise not_found(conversation_id)
    return _answer(_shown(updated))


async def delete(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key_name = await _key(relay, request)
    conversation_id = request.params["conversation_id"]
    await _load(relay, key_name, conversation_id)  # an expired one is not found, as for the other routes
    if not await run(relay, lambda tx: store.delete(tx, conversation_id, key_name)):
        raise not_found(conversation_id)
    return _answer({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


async def list_items(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key_name = await _key(relay, request)
    conversation_id = request.params["conversation_id"]
    limit = cutoff(relay)

    def read(tx: Tx) -> list[dict[str, Any]] | None:
        if store.load(tx, conversation_id, key_name, limit) is None:
            return None
        return store.items(tx, conversation_id)

    items = await run(relay, read)
    if items is None:
        raise not_found(conversation_id)
    query = request.query_params()
    if "after" in query and query["after"] not in {item["id"] for item in items}:
        raise RelayError(
            400,
            "invalid_request",
            f"'after': no item with id '{query['after']}' in this conversation",
            param="after",
            code="invalid_value",
        )
    return _answer(page(items, query))


async def add_items(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key_name = await _key(relay, request)
    conversation_id = request.params["conversation_id"]
    items = checked(load_object(request.body).get("items"), required=True)
    now, limit = time.time(), cutoff(relay)
    added = await run(relay, lambda tx: store.append(tx, conversation_id, key_name, items, now, limit))
    if added is None:
        raise not_found(conversation_id)
    return _answer(_listed(added))


def _item_not_found(item_id: str) -> RelayError:
    return RelayError(404, "not_found", f"Item with id '{item_id}' not found.", param="item_id", code="not_found")


async def get_item(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key_name = await _key(relay, request)
    conversation_id, item_id = request.params["conversation_id"], request.params["item_id"]
    limit = cutoff(relay)

    def read(tx: Tx) -> tuple[bool, dict[str, Any] | None]:
        if store.load(tx, conversation_id, key_name, limit) is None:
            return False, None
        return True, store.item(tx, conversation_id, item_id)

    found, item = await run(relay, read)
    if not found:
        raise not_found(conversation_id)
    if item is None:
        raise _item_not_found(item_id)
    return _answer(item)


async def delete_item(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key_name = await _key(relay, request)
    conversation_id, item_id = request.params["conversation_id"], request.params["item_id"]
    now, limit = time.time(), cutoff(relay)

    def remove(tx: Tx) -> tuple[store.Conversation | None, bool]:
        conversation = store.load(tx, conversation_id, key_name, limit)
        if conversation is None:
            return None, False
        return conversation, store.delete_item(tx, conversation_id, item_id, now)

    conversation, removed = await run(relay, remove)
    if conversation is None:
        raise not_found(conversation_id)
    if not removed:
        raise _item_not_found(item_id)
    return _answer(_shown(conversation))


#: ``relay.routes`` includes these, with and without ``/v1``.
ROUTES: tuple[Route, ...] = tuple(
    route
    for prefix in ("/v1", "")
    for route in (
        Route("POST", prefix + "/conversations", create),
        Route("GET", prefix + "/conversations/{conversation_id}", retrieve),
        Route("POST", prefix + "/conversations/{conversation_id}", update),
        Route("DELETE", prefix + "/conversations/{conversation_id}", delete),
        Route("GET", prefix + "/conversations/{conversation_id}/items", list_items),
        Route("POST", prefix + "/conversations/{conversation_id}/items", add_items),
        Route("GET", prefix + "/conversations/{conversation_id}/items/{item_id}", get_item),
        Route("DELETE", prefix + "/conversations/{conversation_id}/items/{item_id}", delete_item),
    )
)

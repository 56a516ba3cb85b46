"""Conversation items as the Conversations API takes and shows them: checked, normalised, listed.

Shared by the Conversations routes (``relay.endpoints.conversations``) and ``conversation`` on ``POST
/v1/responses`` (``relay.endpoints.conversation_responses``). Relay keeps every conversation itself, for every
channel (``relay.store.conversations``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypeVar

from relay.dialects.openai.responses.listing import listed
from relay.errors import RelayError
from relay.store import StoreError, Tx
from relay.store import conversations as store
from relay.store import responses as kept

if TYPE_CHECKING:
    from collections.abc import Callable

    from relay.app import Relay

T = TypeVar("T")

#: Items one call may add, as OpenAI.
MAX_ITEMS = 20
#: Metadata limits, as OpenAI: pairs, key length, value length.
MAX_PAIRS, MAX_KEY, MAX_VALUE = 16, 64, 512


def not_found(conversation_id: str, param: str | None = None) -> RelayError:
    return RelayError(
        404, "not_found", f"Conversation with id '{conversation_id}' not found.", param=param, code="not_found"
    )


def cutoff(relay: Relay) -> float | None:
    """The oldest ``updated_at`` still served (``[responses] retention_days``)."""
    return kept.cutoff_for(relay.config.responses.retention_days, time.time())


async def run(relay: Relay, work: Callable[[Tx], T]) -> T:
    """``work`` in one store transaction; a 503 when the store is unavailable."""
    try:
        return await relay.gateway.store.transaction(work)
    except StoreError:
        raise RelayError(
            503, "upstream", "the conversation store is unavailable; try again shortly", code="store_unavailable"
        ) from None


def metadata(raw: Any) -> dict[str, str]:
    """A conversation's ``metadata`` (null: none); a 400 unless it is at most 16 string pairs as OpenAI's."""
    if raw is None:
        return {}
    bad = (
        not isinstance(raw, dict)
        or len(raw) > MAX_PAIRS
        or any(not isinstance(k, str) or len(k) > MAX_KEY for k in raw)
        or any(not isinstance(v, str) or len(v) > MAX_VALUE for v in raw.values())
    )
    if bad:
        raise RelayError(
            400,
            "invalid_request",
            f"'metadata' must be an object of at most {MAX_PAIRS} pairs, keys strings of at most {MAX_KEY} "
            f"characters, values strings of at most {MAX_VALUE}",
            param="metadata",
            code="invalid_value",
        )
    return dict(raw)


def checked(raw: Any, *, required: bool) -> list[dict[str, Any]]:
    """The ``items`` of a request, normalised (``shown``); a 400 naming what is wrong."""
    if raw is None and not required:
        return []
    if not isinstance(raw, list) or (required and not raw):
        raise RelayError(400, "invalid_request", "'items' must be a non-empty array of items", param="items")
    if len(raw) > MAX_ITEMS:
        raise RelayError(
            400, "invalid_request", f"'items' holds {len(raw)} items; at most {MAX_ITEMS} at a time", param="items"
        )
    for n, item in enumerate(raw):
        if not isinstance(item, dict) or not (isinstance(item.get("type"), str) or "role" in item):
            raise RelayError(
                400, "invalid_request", f"'items[{n}]' must be an item object with a 'type'", param=f"items[{n}]"
            )
        if item.get("type", "message") == "message" and (
            item.get("role") not in ("user", "assistant", "system", "developer")
            or not isinstance(item.get("content"), str | list)
        ):
            raise RelayError(
                400,
                "invalid_request",
                f"'items[{n}]': a message needs a 'role' (user, assistant, system or developer) and a 'content'",
                param=f"items[{n}]",
            )
    return shown(raw)


def shown(items: list[Any]) -> list[dict[str, Any]]:
    """``items`` as the API shows them (a message with its ``type``, ``status`` and content parts), each with an
    id (its own, else a fresh one)."""
    named = [
        {**item, "id": item["id"] if isinstance(item.get("id"), str) and item["id"] else store.new_item_id(item)}
        for item in items
        if isinstance(item, dict)
    ]
    return listed("", named)


def as_input(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A conversation's items as the input of a response continuing it: messages without the ``id`` and ``status``
    Relay gave them; reasoning items with no ``encrypted_content`` left out (only the upstream that made them
    could read them by id)."""
    sent: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "reasoning" and not item.get("encrypted_content"):
            continue
        if kind == "message":
            item = {k: v for k, v in item.items() if k not in ("id", "status")}
        sent.append(item)
    return sent

"""``conversation`` on ``POST /v1/responses``, on every channel: Relay keeps the conversation and resolves it.

``resolve`` reads the field before the request is routed (a string id or ``{"id": …}``): the conversation's items
(``conversation_items.as_input``) go before the request's own ``input`` and the field is dropped, so every channel
gets the whole conversation, OpenAI Responses channels included (they are sent no ``conversation``).
``previous_response_id`` with it is a 400, as OpenAI; another key's conversation, or an unknown or expired one,
a 404 naming ``conversation``.

``record`` runs once the answer is complete (status ``completed`` or ``incomplete``, whole, streamed or in the
background): it appends the request's own input items, then the answer's output items, to the conversation.
A failed answer, or a stream cut short, adds nothing.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import attrs

from relay.dialects.openai.responses.listing import as_items
from relay.errors import RelayError
from relay.store import StoreError, Tx
from relay.store import conversations as store

from .conversation_items import as_input, cutoff, not_found, run, shown

if TYPE_CHECKING:
    from relay.app import Relay

log = logging.getLogger("relay.responses")

#: The statuses of an answer whose items join the conversation.
RECORDED = ("completed", "incomplete")


@attrs.define
class Link:
    """The conversation a response answers in, and the request's own input items (added after the answer)."""

    id: str
    own: list[Any]


async def resolve(relay: Relay, key_name: str, payload: dict[str, Any]) -> tuple[dict[str, Any], Link | None]:
    """``payload`` with its conversation's items put first and the field dropped, and the link to record the
    answer in (None, and ``payload`` itself, when it names no conversation)."""
    raw = payload.get("conversation")
    if raw is None:
        return payload, None
    conversation_id = raw.get("id") if isinstance(raw, dict) else raw
    if not isinstance(conversation_id, str) or not conversation_id:
        raise RelayError(
            400,
            "invalid_request",
            "'conversation' must be a conversation id or an object with its 'id'",
            param="conversation",
        )
    if payload.get("previous_response_id") is not None:
        raise RelayError(
            400,
            "invalid_request",
            "Mutually exclusive parameters: Ensure you are only providing one of: 'previous_response_id' or "
            "'conversation'.",
            param="conversation",
            code="mutually_exclusive_parameters",
        )
    own = as_items(payload.get("input"))
    limit = cutoff(relay)

    def read(tx: Tx) -> list[dict[str, Any]] | None:
        if store.load(tx, conversation_id, key_name, limit) is None:
            return None
        return store.items(tx, conversation_id)

    items = await run(relay, read)
    if items is None:
        raise not_found(conversation_id, "conversation")
    resolved = {k: v for k, v in payload.items() if k != "conversation"}
    resolved["input"] = [*as_input(items), *own]
    return resolved, Link(conversation_id, own)


async def record(relay: Relay, key_name: str, link: Link, response: dict[str, Any]) -> None:
    """Add the request's input items and ``response``'s output items to the conversation, when it completed."""
    if response.get("status") not in RECORDED:
        return
    items = shown([*link.own, *(response.get("output") or [])])
    now = time.time()
    try:
        added = await relay.gateway.store.transaction(lambda tx: store.append(tx, link.id, key_name, items, now, None))
    except StoreError as error:
        log.warning("conversation %s not extended (store unavailable): %s", link.id, error)
        return
    if added is None:
        log.warning("conversation %s not extended: it was deleted while the response ran", link.id)


def echoed(response: dict[str, Any], link: Link) -> dict[str, Any]:
    """``response`` naming its conversation, as OpenAI's does."""
    return {**response, "conversation": {"id": link.id}}

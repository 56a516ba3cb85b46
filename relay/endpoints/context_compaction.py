"""``context_management`` on ``POST /v1/responses`` where Relay converts the request (every channel but OpenAI
Responses, which takes the field as it is).

The field is a list of entries; the only type is ``compaction``, with ``compact_threshold`` (input tokens;
``DEFAULT_THRESHOLD`` when absent). When Relay's estimate of the input's tokens (``estimate.input_tokens``) is
above the threshold, the history is compacted first by the channel's own model, as ``POST /v1/responses/compact``
does (``compact_responses.summarise``), and the request is sent with the compacted items in its place. The
history is every input item before the last user message; that message and what follows it (the turn being
answered, its tool calls and results) are sent as they are. The compacted items are the history's user messages
and the summary (a user message, as ``compact_responses.expand`` makes it). At or below the threshold, or with no
history before the last user message, nothing changes. Either way the field is not sent on.

Anthropic channels get the same: Anthropic's own compaction (``compact_20260112``) answers with a ``compaction``
content block that the next request must send back, which a Responses client on a converted path cannot (see
docs/apis/responses_state.md).
"""

from __future__ import annotations

from typing import Any

import attrs

from relay.dialects import estimate, ir
from relay.dialects.common import dumps_kept
from relay.dialects.openai.responses import codec as openai_responses
from relay.dialects.openai.responses.listing import as_items
from relay.errors import RelayError
from relay.http.messages import Request, Response
from relay.upstream.channels import Channel

from .call import Call
from .compact_responses import expand, summarise

FIELD = "context_management"
#: The threshold of an entry that gives none (input tokens), as Anthropic's compaction default.
DEFAULT_THRESHOLD = 150_000


def _bad(message: str, param: str = FIELD) -> RelayError:
    return RelayError(400, "invalid_request", message, param=param, code="invalid_value")


def threshold(payload: dict[str, Any] | None) -> int | None:
    """The compaction threshold the request asks for (the lowest of its entries); None when it asks none. A 400
    naming what is wrong in the field."""
    raw = payload.get(FIELD) if payload is not None else None
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _bad(f"'{FIELD}' must be an array of entries")
    found: int | None = None
    for n, entry in enumerate(raw):
        if not isinstance(entry, dict) or entry.get("type") != "compaction":
            raise _bad(f"'{FIELD}[{n}].type' must be 'compaction'", f"{FIELD}[{n}].type")
        value = entry.get("compact_threshold")
        if value is None:
            value = DEFAULT_THRESHOLD
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _bad(
                f"'{FIELD}[{n}].compact_threshold' must be a positive integer", f"{FIELD}[{n}].compact_threshold"
            )
        found = value if found is None else min(found, value)
    return found


def _split(items: list[Any]) -> tuple[list[Any], list[Any]]:
    """The history (before the last user message) and the turn (that message and what follows it)."""
    for n in range(len(items) - 1, -1, -1):
        item = items[n]
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            return items[:n], items[n:]
    return [], items


async def compacted(
    request: Request, call: Call, channel: Channel, target: ir.Dialect, upstream_model: str, api_key: str
) -> tuple[Call, ir.Usage | None] | Response:
    """``call`` (asking ``context_management``) as it is to be sent to the converted ``channel``: the field gone,
    the history compacted when the input is above the threshold; with the usage of the summary call (None when
    none was made), or the upstream's error as a Response."""
    assert call.payload is not None
    limit = threshold(call.payload)
    assert limit is not None
    payload = {k: v for k, v in call.payload.items() if k != FIELD}
    usage: ir.Usage | None = None
    req = openai_responses.decode_request(dumps_kept(expand(payload)))
    if estimate.input_tokens(req) > limit:
        history, turn = _split(as_items(payload.get("input")))
        if history:
            done = await summarise(request, channel, target, call.model, upstream_model, api_key, history)
            if isinstance(done, Response):
                return done
            answer, usage = done
            payload["input"] = [*expand({"input": answer["output"]})["input"], *turn]
    payload = expand(payload)
    return attrs.evolve(call, body=dumps_kept(payload), payload=payload), usage


def added(first: ir.Usage | None, then: ir.Usage | None) -> ir.Usage | None:
    """The usage of the summary call and of the generation, charged together."""
    if first is None or then is None:
        return then if first is None else first
    return attrs.evolve(
        then,
        input_tokens=first.input_tokens + then.input_tokens,
        output_tokens=first.output_tokens + then.output_tokens,
        cached_tokens=first.cached_tokens + then.cached_tokens,
        cache_write_tokens=first.cache_write_tokens + then.cache_write_tokens,
        reasoning_tokens=first.reasoning_tokens + then.reasoning_tokens,
    )

"""``POST /v1/responses/compact``: a conversation made shorter, in OpenAI's ``response.compaction`` shape.

On an OpenAI Responses channel the request passes through (the upstream compacts). On any other channel Relay
compacts with the channel's own model: it sends the conversation (the request's ``input``) with ``PROMPT`` as
instructions and one last user message asking for the summary, converted as any Responses request is, and
answers ``{"id": "cmp_…", "object": "response.compaction", "created_at", "output", "usage"}``: every user
message of the input (as message items), then one ``compaction`` item whose ``encrypted_content`` is
``PREFIX`` and the summary in base64 (Relay's, readable by Relay alone, not encrypted). The call is charged
as a generation (its usage). A later ``POST /v1/responses`` whose ``input`` holds such an item gets it
replaced by a user message with the summary (``expand``), on every channel, OpenAI's included.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects import ir
from relay.dialects.codecs import CODECS
from relay.dialects.common import load_object
from relay.dialects.convert import convert_response
from relay.dialects.openai.responses import codec as openai_responses
from relay.dialects.openai.responses.listing import as_items
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.upstream.channels import Channel

from .forward import fetch, forward
from .relayed import JSON

if TYPE_CHECKING:
    from relay.app import Relay

#: The instructions of the summary call.
PROMPT = (
    "You compact conversations. Write a summary of the conversation so far that lets it continue without the "
    "earlier turns: the user's goals and constraints, decisions made, facts and names established, tool calls "
    "and their results that still matter, and what was about to happen next. Be concise and complete. Write "
    "only the summary."
)
ASK = "Summarise the conversation so far, as the instructions say."
#: What starts the ``encrypted_content`` of a compaction item Relay wrote.
PREFIX = "relay-compaction-v1:"
#: The text before the summary in the message that replaces a compaction item.
SUMMARY_HEAD = "Summary of the earlier conversation:\n"


def expand(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with each compaction item Relay wrote in its ``input`` replaced by the summary, as a user
    message; the same object when it holds none."""
    raw = payload.get("input")
    if not isinstance(raw, list) or not any(_summary(item) is not None for item in raw):
        return payload
    items = []
    for item in raw:
        summary = _summary(item)
        if summary is None:
            items.append(item)
        else:
            items.append({"type": "message", "role": "user", "content": SUMMARY_HEAD + summary})
    return {**payload, "input": items}


def _summary(item: Any) -> str | None:
    if not isinstance(item, dict) or item.get("type") != "compaction":
        return None
    content = item.get("encrypted_content")
    if not isinstance(content, str) or not content.startswith(PREFIX):
        return None
    try:
        return base64.b64decode(content[len(PREFIX) :], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise RelayError(400, "invalid_request", "a compaction item of Relay's is damaged", param="input") from None


async def compact(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    payload = load_object(request.body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise RelayError(400, "invalid_request", "'model' must be a non-empty string", param="model")
    items = as_items(payload.get("input"))

    async def attempt(channel: Channel, upstream_model: str, api_key: str) -> Response | None:
        target = channel.dialect_for("openai_responses")
        codec = openai_responses
        if target == "openai_responses":
            body = orjson.dumps({**payload, "model": upstream_model})
            data = await fetch(request, channel, api_key, "/responses/compact", body, source=codec, client=codec)
            if isinstance(data, Response):
                return data
            reader = codec.UsageReader()
            reader.feed(data)
            request.usage = reader.usage
            return Response(200, data, JSON)
        if payload.get("previous_response_id") is not None:
            raise RelayError(
                400,
                "invalid_request",
                "'previous_response_id' on compact works only with OpenAI Responses models; send the items as input",
                param="previous_response_id",
            )
        compacted = await summarise(request, channel, target, model, upstream_model, api_key, items)
        if isinstance(compacted, Response):
            return compacted
        request.usage = compacted[1]
        return Response(200, orjson.dumps(compacted[0]), JSON)

    return await forward(relay, request, out, model, attempt, body=request.body, payload=payload)


async def summarise(
    request: Request,
    channel: Channel,
    target: ir.Dialect,
    model: str,
    upstream_model: str,
    api_key: str,
    items: list[Any],
) -> tuple[dict[str, Any], ir.Usage | None] | Response:
    """``items`` compacted by ``channel``'s own model (a converted channel speaking ``target``): OpenAI's
    ``CompactedResponse`` and the usage of the summary call, or the upstream's error as a Response."""
    codec = openai_responses
    ask = {"model": model, "instructions": PROMPT, "input": [*expand({"input": items})["input"], _user(ASK)]}
    req = codec.decode_request(orjson.dumps(ask))
    codec.require_convertible(req)
    upstream = CODECS[target]
    path = channel.path(target, upstream_model, False)
    data = await fetch(
        request, channel, api_key, path, upstream.encode_request(req, upstream_model), source=upstream, client=codec
    )
    if isinstance(data, Response):
        return data
    now = int(time.time())
    answer, response = convert_response(data, upstream, codec, req, now)
    summary = "".join(
        part.get("text", "")
        for item in orjson.loads(answer).get("output") or ()
        if isinstance(item, dict) and item.get("type") == "message"
        for part in item.get("content") or ()
        if isinstance(part, dict) and part.get("type") == "output_text"
    )
    return _compacted(items, summary, answer, now), response.usage


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


def _compacted(items: list[Any], summary: str, answer: bytes, now: int) -> dict[str, Any]:
    """OpenAI's ``CompactedResponse``: the input's user messages, then the compaction item."""
    users = []
    for item in items:
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            content = item.get("content")
            if isinstance(content, str):
                content = [{"type": "input_text", "text": content}]
            users.append({"type": "message", "role": "user", "status": "completed", "content": content, "id": ""})
    digest = hashlib.sha256(answer).hexdigest()[:48]
    for n, user in enumerate(users):
        user["id"] = f"msg_{digest[:40]}{n:08d}"
    usage = orjson.loads(answer).get("usage")
    encoded = base64.b64encode(summary.encode()).decode()
    compaction = {"type": "compaction", "id": f"cmp_{digest}", "encrypted_content": PREFIX + encoded}
    return {
        "id": f"cmp_{digest}",
        "object": "response.compaction",
        "created_at": now,
        "output": [*users, compaction],
        "usage": usage,
    }

"""Anthropic Messages responses and errors: Message bodies, content blocks, count_tokens answers, errors.

Sans-IO: an upstream's Message body to ``ir.Response`` and back, ``{"input_tokens": N}`` both ways, Relay's
errors in Anthropic's shape and an upstream's error answer as a ``RelayError``, and the passthrough helpers
(``rename_model``, ``UsageReader``). Re-exported by ``anthropic``. docs/conversions/anthropic.md has the tables
below in full.

Choices made on the users' behalf:

- Responses to an Anthropic client: the id gets ``msg_``; reasoning of other providers is shown as thinking
  whose ``signature`` is Relay's envelope of their proof (``envelope``), and another provider's proof of a tool
  call is an empty thinking block right before it (only when the client turned thinking on); tool arguments
  that are not a JSON
  object are a 502, unless the answer was cut by length (then that call is dropped, ``stop_reason:
  max_tokens``). Web searches (``ir.WebSearch``) and citations are not shown: their blocks need the
  ``encrypted_content`` only Anthropic makes.
- Upstream ``web_search`` server tool calls and results are read as ``ir.WebSearch`` parts and text
  ``web_search_result_location`` citations as ``Text.citations`` (Responses clients are shown both); other
  server-tool blocks and citations are dropped.
- Usage: Anthropic's ``input_tokens`` excludes the cache; the IR's includes ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens``.
- Errors: ``{"type": "error", "error": {"type", "message"}}`` by Anthropic's status table (413 is
  ``request_too_large``, which the SDK's ``ErrorResponse`` type does not list).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from relay.dialects import envelope, ir
from relay.dialects.anthropic.stream import (
    citations,
    error_frame,
    error_payload,
    finish_reason,
    stop_reason,
    thinking_asked,
    tool_id,
    usage_from_wire,
    usage_to_wire,
    web_search_result,
)
from relay.dialects.common import (
    arguments_object,
    bad_upstream,
    count_response,
    dumps,
    error_object,
    error_text,
    load_object,
    prefixed,
    renamed,
    upstream_error,
)
from relay.errors import RelayError
from relay.http.messages import Headers

__all__ = [
    "UsageReader",
    "decode_count_response",
    "decode_error",
    "decode_response",
    "encode_count_response",
    "encode_error",
    "encode_response",
    "encode_stream_error",
    "rename_model",
]

# ---- errors ------------------------------------------------------------------------------------------


def encode_error(error: RelayError, *, request_id: str | None = None) -> tuple[int, Headers, bytes]:
    """Relay's error as an Anthropic error answer (the SDK's ``ErrorResponse``; ``request_id`` when given)."""
    headers = ((b"content-type", b"application/json"), *error.headers)
    payload = error_payload(error.status, error.message, error.code, request_id, param=error.param)
    return error.status, headers, orjson.dumps(payload)


def encode_stream_error(error: RelayError, *, request_id: str | None = None) -> bytes:
    """The last frame of a stream that failed after it started: ``event: error``, on which the SDK raises."""
    return error_frame(error.status, error.message, error.code, request_id)


def decode_error(status: int, body: bytes) -> RelayError:
    """An upstream's error answer: its status and message kept, its error type as ``code``."""
    error = error_object(body)
    if error is not None:
        code = error.get("type") if isinstance(error.get("type"), str) else None
        return upstream_error(status, error["message"], code)
    return upstream_error(status, error_text(body))


# ---- passthrough helpers -----------------------------------------------------------------------------


def rename_model(data: bytes, public: str, upstream: str) -> bytes:
    """A Message body or a ``message_start`` event's data with its ``model`` set to the ``public`` name.

    Every other event (and any data without a ``"model"`` key) comes back as the same object, unparsed.
    """
    if public == upstream:
        return data
    return renamed(data, public, _message)


def _message(payload: dict[str, Any]) -> Any:
    kind = payload.get("type")
    return payload.get("message") if kind == "message_start" else payload if kind == "message" else None


class UsageReader:
    """Usage sniffed on the passthrough path: ``feed`` each event's data, or a whole Message body.

    ``message_start`` gives the input, ``message_delta`` the cumulative output (and newer APIs the input
    again); data without a ``"usage"`` key is not parsed. ``usage`` follows the IR convention.
    """

    __slots__ = ("_wire",)

    def __init__(self) -> None:
        self._wire: dict[str, Any] = {}

    def feed(self, data: bytes) -> None:
        if b'"usage"' not in data:
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(payload, dict):
            return
        kind = payload.get("type")
        if kind == "message_start":
            message = payload.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
        elif kind in ("message_delta", "message"):
            usage = payload.get("usage")
        else:
            return
        if isinstance(usage, dict):
            self._wire.update((k, v) for k, v in usage.items() if v is not None)

    @property
    def usage(self) -> ir.Usage | None:
        return usage_from_wire(self._wire) if self._wire else None


# ---- response ----------------------------------------------------------------------------------------


def decode_response(body: bytes) -> ir.Response:
    """An upstream's Message body → ``ir.Response``; a 502 when it is not one."""
    payload = load_object(body, upstream=True)
    content = payload.get("content")
    if not isinstance(content, list):
        raise bad_upstream("the upstream's message has no content array")
    searches = _search_queries(content)
    parts = [p for b in content if (p := _decode_output_block(b, searches)) is not None]
    has_calls = any(isinstance(p, ir.ToolCall) for p in parts)
    usage = payload.get("usage")
    id, model, sequence = payload.get("id"), payload.get("model"), payload.get("stop_sequence")
    return ir.Response(
        id=id if isinstance(id, str) else "",
        model=model if isinstance(model, str) else "",
        parts=tuple(parts),
        finish_reason=finish_reason(payload.get("stop_reason"), has_calls),
        usage=usage_from_wire(usage) if isinstance(usage, dict) else None,
        stop_sequence=sequence if isinstance(sequence, str) and sequence else None,
    )


def _text_field(block: Mapping[str, Any], key: str) -> str:
    value = block.get(key, "")
    if not isinstance(value, str):
        raise bad_upstream(f"the upstream's {block.get('type')} block has a {key} that is not a string")
    return value


def _search_queries(content: list[Any]) -> dict[str, str]:
    """The query of each ``web_search`` server tool call, by its id."""
    queries = {}
    for block in content:
        if isinstance(block, dict) and block.get("type") == "server_tool_use" and block.get("name") == "web_search":
            query = block.get("input", {}).get("query") if isinstance(block.get("input"), dict) else None
            if isinstance(block.get("id"), str) and isinstance(query, str):
                queries[block["id"]] = query
    return queries


def _decode_output_block(
    block: Any, searches: Mapping[str, str]
) -> ir.Reasoning | ir.Text | ir.ToolCall | ir.WebSearch | None:
    """One output block; server-tool blocks but web search results (no IR slot) give None."""
    if not isinstance(block, dict):
        raise bad_upstream("the upstream's message has a content block that is not an object")
    kind = block.get("type")
    if kind == "text":
        return ir.Text(_text_field(block, "text"), citations(block.get("citations")))
    if kind == "web_search_tool_result":
        return web_search_result(block, searches)
    if kind == "thinking":
        signature = _text_field(block, "signature") or None
        return ir.Reasoning(text=_text_field(block, "thinking"), signature=signature, dialect="anthropic")
    if kind == "redacted_thinking":
        return ir.Reasoning(redacted=_text_field(block, "data"), dialect="anthropic")
    if kind == "tool_use":
        arguments = block.get("input")
        if arguments is not None and not isinstance(arguments, dict):
            raise bad_upstream("the upstream's tool_use block has an input that is not an object")
        return ir.ToolCall(
            id=_text_field(block, "id"), name=_text_field(block, "name"), arguments=dumps(arguments or {})
        )
    return None


def encode_response(resp: ir.Response, req: ir.Request) -> bytes:
    """``ir.Response`` → a Message body for an Anthropic client (``req.model`` is the model it names)."""
    id = prefixed(resp.id, "msg_")
    content = [
        b
        for i, p in enumerate(resp.parts)
        for b in (_call_proof(p, id, i) if thinking_asked(req) else [])
        + [b for b in (_encode_output_block(p, id, i, resp.finish_reason),) if b is not None]
    ]
    has_calls = any(b["type"] == "tool_use" for b in content)
    reason = stop_reason(resp.finish_reason, has_calls, resp.stop_sequence)
    return orjson.dumps(
        {
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": req.model,
            "content": content,
            "stop_reason": reason,
            "stop_sequence": resp.stop_sequence if reason == "stop_sequence" else None,
            "usage": usage_to_wire(resp.usage),
        }
    )


def _encode_output_block(
    part: ir.Reasoning | ir.Text | ir.ToolCall | ir.WebSearch, id: str, index: int, finish: ir.FinishReason
) -> dict[str, Any] | None:
    if isinstance(part, ir.WebSearch):
        return None  # another provider's search: its results carry no encrypted_content an Anthropic client needs
    if isinstance(part, ir.Text):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ir.ToolCall):
        arguments = arguments_object(part.arguments)
        if arguments is None:
            if finish == "length":
                return None  # cut by max_tokens: no call to report
            raise bad_upstream(f"the upstream's tool call {part.name!r} has arguments that are not a JSON object")
        return {"type": "tool_use", "id": tool_id(part.id, id, index), "name": part.name, "input": arguments}
    if part.dialect != "anthropic":  # another provider's: its proof wrapped in the signature (Relay's envelope)
        wrapped = envelope.reasoning_envelope(part, "anthropic")
        if not part.text and wrapped is None:
            return None
        return {"type": "thinking", "thinking": part.text, "signature": wrapped or ""}
    if part.redacted is not None:
        return {"type": "redacted_thinking", "data": part.redacted}
    if not part.text and not part.signature:
        return None
    return {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}


def _call_proof(part: Any, id: str, index: int) -> list[dict[str, Any]]:
    """Another provider's proof of a tool call (Gemini's thoughtSignature): an empty thinking block before it.

    Only to a client that asked for thinking: Anthropic sends no thinking block to any other (and a proof
    of a call made without reasoning, a Responses ``fc_`` id, is worth nothing then).
    """
    if not isinstance(part, ir.ToolCall) or arguments_object(part.arguments) is None:
        return []  # (a call cut by max_tokens is not reported, nor its proof)
    wrapped = envelope.call_envelope(part.signature, part.signature_dialect, tool_id(part.id, id, index), "anthropic")
    return [{"type": "thinking", "thinking": "", "signature": wrapped}] if wrapped else []


# ---- count_tokens answers ----------------------------------------------------------------------------


def decode_count_response(body: bytes) -> int:
    """``{"input_tokens": N}`` → N; a 502 for anything else."""
    return count_response(body, "count_tokens")


def encode_count_response(count: int) -> bytes:
    return orjson.dumps({"input_tokens": count})

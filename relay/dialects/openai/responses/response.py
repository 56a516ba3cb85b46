"""OpenAI Responses answers: Response bodies and their output items, ids, usage, input-token counts and errors.

Sans-IO, to and from the IR; the stream codec (``openai.responses.stream``) builds on the output items, Response
objects and error events made here. Errors take the OpenAI shape ``{"error": {"message", "type", "param",
"code"}}``.

Choices made on users' behalf (docs/conversions/openai_responses.md has the table):

- A response's id gets the ``resp_`` prefix; item ids are derived from it (``msg_``, ``rs_``, ``fc_``) unless the
  upstream's own ids can be kept. ``created_at`` is the IR's ``created``. An answer cut by length or a content
  filter (``status: incomplete``) marks the message it ends with ``incomplete`` too, as OpenAI does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from relay.dialects import envelope, ir
from relay.dialects.common import (
    bad_upstream,
    count_response,
    derived_id,
    error_object,
    error_text,
    load_object,
    prefixed,
    renamed,
    token_count,
    upstream_error,
)
from relay.dialects.openai.chat.codec import error_payload
from relay.dialects.openai.responses.items import DIALECT, _call_item_id, _reasoning, reasoning_item
from relay.dialects.openai.responses.request import (
    _merge_reasoning,
    encode_choice,
    encode_format,
    encode_reasoning,
    encode_tool,
)
from relay.dialects.openai.responses.tools import annotations, client_call, search_id, search_item
from relay.dialects.tool_names import origins
from relay.errors import RelayError, kind_for_status
from relay.http.messages import Headers

# ---- errors ------------------------------------------------------------------------------------------


def encode_error(error: RelayError) -> tuple[int, Headers, bytes]:
    headers = ((b"content-type", b"application/json"), *error.headers)
    return error.status, headers, orjson.dumps(error_payload(error))


def status_for_code(code: Any) -> int:
    """The HTTP status an upstream's mid-stream error code stands for (502 when it says nothing better)."""
    if not isinstance(code, str):
        return 502
    if "rate_limit" in code or code in ("too_many_requests", "insufficient_quota"):
        return 429
    if code.startswith("invalid") or code == "context_length_exceeded" or "image" in code:
        return 400
    return 504 if "timeout" in code else 502


def error_event(status: int, message: str, code: str | None, sequence_number: int) -> dict[str, Any]:
    """The ``error`` stream event: its documented top-level fields, and the nested ``error`` OpenAI sends
    (the Python SDK raises ``APIError`` on the nested one)."""
    nested = error_payload(RelayError(status, kind_for_status(status), message, code=code))["error"]
    return {
        "type": "error",
        "sequence_number": sequence_number,
        "code": code,
        "message": message,
        "param": None,
        "error": nested,
    }


def encode_stream_error(error: RelayError, *, sequence_number: int = 0) -> bytes:
    """The last frame of a stream that failed after it started (the SDK raises on it).

    On the passthrough path the upstream's sequence numbers are not counted: ``sequence_number`` is the
    caller's, 0 when it does not know better.
    """
    payload = error_event(error.status, error.message, error.code, sequence_number)
    payload["param"] = error.param
    payload["error"]["param"] = error.param
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"


def decode_error(status: int, body: bytes) -> RelayError:
    """An upstream's error answer, its status kept; the message and code read from the OpenAI shape."""
    error = error_object(body)
    if error is not None:
        code = error.get("code")
        if not isinstance(code, str):
            code = error.get("type") if isinstance(error.get("type"), str) else None
        return upstream_error(status, error["message"], code)
    return upstream_error(status, error_text(body))


# ---- input tokens ------------------------------------------------------------------------------------


def decode_count_response(body: bytes) -> int:
    """``{"input_tokens": N}`` → N; a 502 for anything else."""
    return count_response(body, "input token count")


def encode_count_response(count: int) -> bytes:
    return orjson.dumps({"object": "response.input_tokens", "input_tokens": count})


# ---- usage -------------------------------------------------------------------------------------------


def usage_from_wire(raw: Any) -> ir.Usage | None:
    if not isinstance(raw, dict):
        return None
    inputs = raw.get("input_tokens_details")
    return ir.Usage(
        input_tokens=token_count(raw, "input_tokens"),
        output_tokens=token_count(raw, "output_tokens"),
        cached_tokens=token_count(inputs, "cached_tokens"),
        cache_write_tokens=token_count(inputs, "cache_write_tokens"),
        reasoning_tokens=token_count(raw.get("output_tokens_details"), "reasoning_tokens"),
    )


def usage_to_wire(usage: ir.Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


_TERMINAL = ("response.completed", "response.incomplete", "response.failed")
_LIFECYCLE_WITH_USAGE = tuple(kind.encode() for kind in _TERMINAL)


class UsageReader:
    """Usage sniffed on the passthrough path: ``feed`` each stream event's data, or a whole body."""

    def __init__(self) -> None:
        self.usage: ir.Usage | None = None

    def feed(self, data: bytes | None) -> None:
        if not data or b'"usage"' not in data:
            return  # deltas never carry usage: no parsing on the way
        if data.startswith(b'{"type"') and not any(kind in data[:40] for kind in _LIFECYCLE_WITH_USAGE):
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(payload, dict):
            return
        response = payload.get("response") if payload.get("type") in _TERMINAL else payload
        if isinstance(response, dict):
            usage = usage_from_wire(response.get("usage"))
            if usage is not None:
                self.usage = usage


def rename_model(data: bytes, public_model: str, upstream_model: str) -> bytes:
    """A body or stream event's data with the upstream's model name replaced by the public one.

    Lifecycle events carry it in ``response.model``; a whole Response at the top.
    """
    if public_model == upstream_model:
        return data
    return renamed(data, public_model, lambda p: p["response"] if isinstance(p.get("response"), dict) else p)


# ---- response ----------------------------------------------------------------------------------------


def response_id(id: str) -> str:
    return prefixed(id, "resp_")


def _finish(status: Any, reason: Any, called: bool) -> ir.FinishReason:
    if status == "incomplete":
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if called else "stop"


def failure(response: Mapping[str, Any]) -> RelayError:
    """The error a failed Response stands for, its status read from its code."""
    error = response.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else "the upstream response failed"
    return upstream_error(status_for_code(code), message, code)


def decode_output_item(item: Any) -> ir.Reasoning | ir.Text | ir.ToolCall | list[ir.Text] | None:
    """One output item; built-in tool items (no IR slot) give None."""
    if not isinstance(item, dict):
        raise bad_upstream("the upstream answered an output item that is not an object")
    kind = item.get("type")
    if kind == "message":
        texts = []
        for part in item.get("content") or ():
            if isinstance(part, dict) and part.get("type") in ("output_text", "refusal"):
                text = part.get("text" if part["type"] == "output_text" else "refusal")
                if isinstance(text, str) and text:
                    texts.append(ir.Text(text))
        return texts
    if kind == "function_call":
        if not isinstance(item.get("name"), str):
            raise bad_upstream("the upstream answered a function call without a name")
        item_id = item.get("id") if isinstance(item.get("id"), str) else None
        return ir.ToolCall(
            id=str(item.get("call_id") or ""),
            name=item["name"],
            arguments=item.get("arguments") or "{}",
            signature=item_id,
            signature_dialect=DIALECT if item_id else None,
        )
    if kind == "reasoning":
        try:
            return _reasoning(item, "output")
        except RelayError:
            raise bad_upstream("the upstream answered a malformed reasoning item") from None
    return None


def decode_response(body: bytes) -> ir.Response:
    """An upstream's Response body → ``ir.Response``; a failed response is its error, a malformed one a 502."""
    payload = load_object(body, upstream=True)
    output = payload.get("output")
    if not isinstance(output, list):
        raise bad_upstream("the upstream answered a response without an output list")
    status = payload.get("status", "completed")
    if status == "failed":
        raise failure(payload)
    if status not in ("completed", "incomplete"):
        raise bad_upstream(f"the upstream answered a response with status {status!r}")
    parts: list[ir.Reasoning | ir.Text | ir.ToolCall] = []
    for item in output:
        decoded = decode_output_item(item)
        if isinstance(decoded, list):
            parts.extend(decoded)
        elif decoded is not None:
            parts.append(decoded)
    details = payload.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    created = payload.get("created_at")
    return ir.Response(
        id=str(payload.get("id") or ""),
        model=str(payload.get("model") or ""),
        parts=tuple(parts),
        finish_reason=_finish(status, reason, any(isinstance(p, ir.ToolCall) for p in parts)),
        usage=usage_from_wire(payload.get("usage")),
        created=int(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else 0,
    )


def status_of(reason: ir.FinishReason) -> tuple[str, dict[str, str] | None]:
    """A finish reason → the Response ``status`` and ``incomplete_details``."""
    if reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _output_text(text: str | ir.Text) -> dict[str, Any]:
    if isinstance(text, str):
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    notes = annotations(text, text.citations)
    return {"type": "output_text", "text": text.text, "annotations": notes, "logprobs": []}


def message_item(item_id: str, texts: Sequence[str | ir.Text], status: str = "completed") -> dict[str, Any]:
    content = [_output_text(t) for t in texts]
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def call_item(call_id: str, item_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def call_ids(seed: str, index: int, call_id: str, own_item_id: str | None) -> tuple[str, str]:
    """A call's ``call_id`` (its own, else derived) and item id (the upstream's ``fc_…``, else derived)."""
    return call_id or derived_id(seed, index, "call_"), own_item_id or derived_id(seed, index, "fc_")


def reasoning_id(seed: str, index: int, dialect: ir.Dialect | None, own_id: str | None) -> str:
    if dialect == DIALECT and own_id:
        return own_id
    return derived_id(seed, index, "rs_")


def proof_item(call: ir.ToolCall, seed: str, index: int) -> dict[str, Any] | None:
    """The reasoning item (at output ``index``) that carries another dialect's proof of ``call``, wrapped."""
    if call.signature_dialect == DIALECT or not call.signature:
        return None
    call_id, _ = call_ids(seed, index + 1, call.id, None)
    wrapped = envelope.call_envelope(call.signature, call.signature_dialect, call_id, DIALECT)
    return reasoning_item(ir.Reasoning(), derived_id(seed, index, "rs_"), wrapped) if wrapped else None


def output_items(
    parts: Iterable[ir.Reasoning | ir.Text | ir.ToolCall | ir.WebSearch],
    seed: str,
    last_status: str = "completed",
    origins: Mapping[str, ir.ToolOrigin] | None = None,
) -> list[dict[str, Any]]:
    """A response's parts → output items; consecutive texts share one message.

    ``last_status`` is the status of a message that ends the output (``incomplete`` when the answer was cut,
    as OpenAI marks the message it was writing). ``origins`` (``tool_names.origins``) names calls of flattened
    tools back the client's way.
    """
    items: list[dict[str, Any]] = []
    texts: list[ir.Text] | None = None  # the texts of the message being built
    for part in parts:
        if isinstance(part, ir.Text):
            if not part.text:
                continue
            if texts is None:
                texts = []
                items.append({"_texts": texts})
            texts.append(part)
            continue
        texts = None
        index = len(items)
        if isinstance(part, ir.ToolCall):
            proof = proof_item(part, seed, index)
            if proof is not None:  # another provider's proof of the call: a reasoning item right before it
                items.append(proof)
                index += 1
            call_id, item_id = call_ids(seed, index, part.id, _call_item_id(part))
            origin = origins.get(part.name) if origins else None
            items.append(client_call(call_id, item_id, part.name, part.arguments, origin))
        elif isinstance(part, ir.WebSearch):
            items.append(search_item(part, search_id(part, seed, index)))
        else:
            wrapped = envelope.reasoning_envelope(part, DIALECT, with_text=True)
            if wrapped or (part.redacted is None and (part.text or (part.signature and part.dialect == DIALECT))):
                items.append(reasoning_item(part, reasoning_id(seed, index, part.dialect, part.id), wrapped))
    last = len(items) - 1
    return [
        message_item(derived_id(seed, i, "msg_"), item["_texts"], last_status if i == last else "completed")
        if "_texts" in item
        else item
        for i, item in enumerate(items)
    ]


def response_echo(req: ir.Request) -> dict[str, Any]:
    """The request fields a Response repeats (the SDK's ``Response`` requires some of them)."""
    extra = req.extra
    raw_text = extra.get("text")
    text = dict(raw_text) if isinstance(raw_text, dict) else {}
    text["format"] = encode_format(req.output) if req.output is not None else {"type": "text"}
    reasoning = {"effort": None, "summary": None}
    if req.reasoning is not None:
        reasoning.update(_merge_reasoning(extra.get("reasoning"), encode_reasoning(req.reasoning)))
    tools = extra.get("tools")
    if tools is None:
        tools = [encode_tool(t, same_dialect=True) for t in req.tools]
    choice = extra.get("tool_choice")
    if choice is None:
        choice = encode_choice(req.tool_choice) if req.tool_choice is not None else "auto"
    echo: dict[str, Any] = {
        "instructions": "\n\n".join(t.text for t in req.system) if req.system else None,
        "max_output_tokens": req.max_tokens,
        "metadata": extra.get("metadata") or {},
        "parallel_tool_calls": True if req.parallel_tool_calls is None else req.parallel_tool_calls,
        "previous_response_id": extra.get("previous_response_id"),
        "reasoning": reasoning,
        "temperature": 1.0 if req.temperature is None else req.temperature,
        "text": text,
        "tool_choice": choice,
        "tools": tools,
        "top_p": 1.0 if req.top_p is None else req.top_p,
        "truncation": extra.get("truncation") or "disabled",
    }
    for name in ("user", "store", "service_tier", "top_logprobs", "max_tool_calls", "safety_identifier"):
        if extra.get(name) is not None:
            echo[name] = extra[name]
    return echo


def response_object(
    id: str,
    model: str,
    created: int,
    echo: Mapping[str, Any],
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: ir.Usage | None = None,
    incomplete: dict[str, str] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole Response object (the lifecycle events of a stream carry one too)."""
    return {
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        **echo,
        "usage": usage_to_wire(usage) if usage is not None else None,
    }


def encode_response(resp: ir.Response, req: ir.Request) -> bytes:
    """``ir.Response`` → a Response body for the client that sent ``req`` (its ``model`` is the one shown)."""
    id = response_id(resp.id)
    status, incomplete = status_of(resp.finish_reason)
    output = output_items(resp.parts, id, status, origins(req))
    return orjson.dumps(
        response_object(
            id,
            req.model,
            resp.created,
            response_echo(req),
            status=status,
            output=output,
            usage=resp.usage,
            incomplete=incomplete,
        )
    )

"""OpenAI Chat Completions answers: responses, usage, finish reasons and errors, to and from the IR (sans-IO).

Also the passthrough helpers for answers sent on unchanged (``rename_model``, ``UsageReader``) and what
``openai.chat.stream`` shares with this module (``finish_reason``, usage, ``error_fields``). Re-exported by
``openai_chat``. Choices made on the users' behalf (docs/conversions/openai_chat.md):

- Only choice 0 is read: ``n`` > 1 is refused when a request is decoded, so no other choice comes.
- ``refusal`` text is read as text (the distinction is lost); ``annotations``, ``logprobs``, ``audio``
  and ``service_tier`` of an upstream answer are not kept.
- Finish reason: ``tool_calls`` whenever calls were emitted and the reason was ``stop`` (or none);
  ``length`` and ``content_filter`` are kept as they are (a call cut by ``length`` is never reported
  as ``tool_calls``); ``tool_calls`` with no call becomes ``stop``; unknown values become ``stop``.
- Reasoning is read from ``reasoning_content`` (DeepSeek, vLLM) or ``reasoning`` (OpenRouter) and
  written as ``reasoning_content``; other dialects' reasoning and proofs also as ``reasoning_details``
  (``openai.chat.reasoning``).
- Usage: ``prompt_tokens_details.cached_tokens`` (DeepSeek's ``prompt_cache_hit_tokens`` when absent),
  ``cache_write_tokens`` and ``completion_tokens_details.reasoning_tokens`` are read and written.
- Tool calls without an id (some OpenAI-compatible servers) get ``common.derived_id(answer id, n, "call_")``.
- Upstream errors keep their status, message, ``param`` and ``code`` (the ``type`` when there is no code).
"""

from __future__ import annotations

from typing import Any

import orjson

from relay.dialects import ir
from relay.dialects.common import (
    bad_upstream,
    derived_id,
    error_text,
    load_object,
    prefixed,
    renamed,
    token_count,
    upstream_error,
)
from relay.dialects.openai.chat.reasoning import encode_details
from relay.errors import ErrorKind, RelayError
from relay.http.messages import Headers

COMPLETION_PREFIX = "chatcmpl-"

# ---- errors ------------------------------------------------------------------------------------------

_TYPES: dict[ErrorKind, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "quota": "insufficient_quota",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "method_not_allowed": "invalid_request_error",
    "request_timeout": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "upstream": "upstream_error",
    "timeout": "timeout_error",
    "overloaded": "server_error",
    "not_implemented": "invalid_request_error",
    "internal": "server_error",
}


def error_payload(error: RelayError) -> dict[str, Any]:
    return {"error": {"message": error.message, "type": _TYPES[error.kind], "param": error.param, "code": error.code}}


def encode_error(error: RelayError) -> tuple[int, Headers, bytes]:
    headers = ((b"content-type", b"application/json"), *error.headers)
    return error.status, headers, orjson.dumps(error_payload(error))


def encode_stream_error(error: RelayError) -> bytes:
    """The last frame of a stream that failed after it started; the SDK raises on it."""
    return b"data: " + orjson.dumps(error_payload(error)) + b"\n\n"


def error_fields(error: Any) -> tuple[str | None, str | None, str | None]:
    """(message, code, param) of an ``error`` object of the OpenAI shape, or of Gemini's (``status``)."""
    if isinstance(error, str):
        return error, None, None
    if not isinstance(error, dict):
        return None, None, None
    message = error.get("message")
    code = next((error[k] for k in ("code", "status", "type") if isinstance(error.get(k), str)), None)
    param = error.get("param")
    return (message if isinstance(message, str) else None), code, (param if isinstance(param, str) else None)


def decode_error(status: int, body: bytes) -> RelayError:
    """An upstream's error answer → ``RelayError``: its status (502 if not an error), message, code and param."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload:  # some servers wrap the error object in an array
        payload = payload[0]
    message, code, param = error_fields(payload.get("error")) if isinstance(payload, dict) else (None, None, None)
    error = upstream_error(status, message or error_text(body), code)
    error.param = param
    return error


# ---- passthrough helpers: answers sent on unchanged ----------------------------------------------------


def rename_model(body: bytes, public_model: str, upstream_model: str) -> bytes:
    """A response body or stream chunk with the upstream's model name replaced by the public one."""
    if public_model == upstream_model:
        return body
    return renamed(body, public_model, lambda payload: payload)


# ---- usage and finish reasons ------------------------------------------------------------------------

_FINISH: dict[str, ir.FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def finish_reason(raw: Any, called: bool) -> ir.FinishReason:
    """A finish reason made consistent with whether tool calls were emitted (``length`` stays ``length``)."""
    reason = _FINISH.get(raw, "stop") if isinstance(raw, str) else "stop"
    if called and reason == "stop":
        return "tool_calls"
    if not called and reason == "tool_calls":
        return "stop"
    return reason


def decode_usage(raw: Any) -> ir.Usage | None:
    """A ``usage`` object → ``ir.Usage`` (None when there is none)."""
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens_details")
    return ir.Usage(
        input_tokens=token_count(raw, "prompt_tokens"),
        output_tokens=token_count(raw, "completion_tokens"),
        cached_tokens=token_count(prompt, "cached_tokens") or token_count(raw, "prompt_cache_hit_tokens"),
        cache_write_tokens=token_count(prompt, "cache_write_tokens"),
        reasoning_tokens=token_count(raw.get("completion_tokens_details"), "reasoning_tokens"),
    )


def encode_usage(usage: ir.Usage) -> dict[str, Any]:
    prompt: dict[str, int] = {"cached_tokens": usage.cached_tokens}
    if usage.cache_write_tokens:
        prompt["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": prompt,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


class UsageReader:
    """Usage sniffed on the passthrough path: ``feed`` each stream event's data, or a whole body.

    Data without a ``"usage"`` key, or whose usage is null, costs a scan or two and no parse.
    The last usage that is not null wins.
    """

    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage: ir.Usage | None = None

    def feed(self, data: bytes) -> None:
        if b'"usage"' not in data:
            return
        # A key is followed by a colon (a string value "usage" never is; escaped quotes never match).
        keys = data.count(b'"usage":')
        if keys == 0 and b'"usage" ' not in data:
            return
        if keys and keys == data.count(b'"usage":null') + data.count(b'"usage": null'):
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        usage = decode_usage(payload.get("usage")) if isinstance(payload, dict) else None
        if usage is not None:
            self.usage = usage


def include_usage(req: ir.Request) -> bool:
    """Whether a client's streaming request asked for the usage chunk (``stream_options.include_usage``)."""
    options = req.extra.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


# ---- non-streaming responses -------------------------------------------------------------------------


def _reasoning_text(source: dict[str, Any]) -> str | None:
    for key in ("reasoning_content", "reasoning"):
        value = source.get(key)
        if isinstance(value, str):
            return value
    return None


def _decode_calls(raw: Any, answer_id: str) -> list[ir.ToolCall]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_upstream("the upstream answered a message whose tool_calls is not an array")
    calls = []
    for n, call in enumerate(raw):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_upstream(f"the upstream answered a malformed tool call (tool_calls[{n}])")
        call_id = call.get("id")
        arguments = function.get("arguments")
        calls.append(
            ir.ToolCall(
                id=call_id if isinstance(call_id, str) and call_id else derived_id(answer_id, n, "call_"),
                name=function["name"],
                arguments=arguments if isinstance(arguments, str) and arguments else "{}",
            )
        )
    return calls


def decode_response(body: bytes) -> ir.Response:
    """An upstream's ``chat.completion`` body → ``ir.Response``; a 502 when it is not one."""
    payload = load_object(body, upstream=True)
    if "error" in payload and "choices" not in payload:
        raise decode_error(502, body)
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise bad_upstream("the upstream answered a chat completion without choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise bad_upstream("the upstream answered a chat completion without a message")
    answer_id = payload.get("id") if isinstance(payload.get("id"), str) else ""
    parts: list[ir.Reasoning | ir.Text | ir.ToolCall] = []
    reasoning = _reasoning_text(message)
    if reasoning:
        parts.append(ir.Reasoning(reasoning, dialect="openai_chat"))
    for key in ("content", "refusal"):
        if isinstance(message.get(key), str) and message[key]:
            parts.append(ir.Text(message[key]))
    calls = _decode_calls(message.get("tool_calls"), answer_id)
    parts.extend(calls)
    created = payload.get("created")
    return ir.Response(
        id=answer_id,
        model=str(payload.get("model") or ""),
        parts=tuple(parts),
        finish_reason=finish_reason(choice.get("finish_reason"), bool(calls)),
        usage=decode_usage(payload.get("usage")),
        created=created if isinstance(created, int) and not isinstance(created, bool) else 0,
    )


def encode_response(resp: ir.Response, req: ir.Request) -> bytes:
    """``ir.Response`` → a ``chat.completion`` body for the client's request ``req`` (its model name)."""
    text = "".join(p.text for p in resp.parts if isinstance(p, ir.Text))
    calls = [
        {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
        for p in resp.parts
        if isinstance(p, ir.ToolCall)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    reasoning = "".join(p.text for p in resp.parts if isinstance(p, ir.Reasoning))
    if reasoning:
        message["reasoning_content"] = reasoning
    details = encode_details(resp.parts)  # each reasoning block, other providers' proofs wrapped
    if details:
        message["reasoning_details"] = details
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason(resp.finish_reason, bool(calls)),
    }
    payload: dict[str, Any] = {
        "id": prefixed(resp.id, COMPLETION_PREFIX),
        "object": "chat.completion",
        "created": resp.created,
        "model": req.model,
        "system_fingerprint": None,
        "choices": [choice],
    }
    if resp.usage is not None:
        payload["usage"] = encode_usage(resp.usage)
    return orjson.dumps(payload)

"""Anthropic Messages on the mock's wire: ``POST /v1/messages`` (whole or streamed), ``…/count_tokens``,
and the Anthropic model list.

Content comes as a ``thinking`` block (its ``signature`` an HMAC of its text, see ``signing``) when
thinking is enabled or adaptive, then a ``text`` block or one ``tool_use`` block per call
(``toolu_…``). Usage reports input without the cached part, ``cache_read_input_tokens`` for
``mock:cached=N``, and output tokens including thinking. A stream is ``message_start``, one ``ping``,
each block's start/deltas/stop (thinking deltas then one ``signature_delta``; a tool's
``input_json_delta`` fragments after an empty first one, as Anthropic sends), ``message_delta`` with
the stop reason and cumulative usage, ``message_stop``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from relay.config import MockOptions
from relay.mock import model, signing
from relay.mock.model import JSON_OBJECT, Answer, Prompt, Reply, Tool, split
from relay.mock.strict_anthropic import problem

__all__ = ["count_tokens", "error", "message", "model_info", "model_list", "problem", "prompt", "respond", "stream"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def error(status: int, message: str) -> Answer:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return model.json_answer(status, {"type": "error", "error": {"type": kind, "message": message}})


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text" and isinstance(b["text"], str)
        )
    return ""


def _results(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def _message_text(content: Any) -> str:
    parts = [_text(content), *(model.result_text(r.get("content") or "") for r in _results(content))]
    return " ".join(p for p in parts if p)


def _kind(message: dict[str, Any]) -> str:
    role = message.get("role")
    return "user" if role == "user" else "instruction" if role == "system" else "other"


def prompt(payload: dict[str, Any]) -> Prompt:
    """The neutral view of a Messages body (``system`` messages in place count as instructions)."""
    messages = [m for m in payload.get("messages") or () if isinstance(m, dict)]
    users = [m for m in messages if m.get("role") == "user" and _text(m.get("content"))]
    spoken = [m for m in messages if m.get("role") != "system"]
    last = spoken[-1] if spoken else {}
    results = _results(last.get("content")) if last.get("role") == "user" else []
    system = payload.get("system")
    texts = [_text(system)] if system else []
    texts += [_message_text(m.get("content")) for m in messages]
    tools = tuple(
        Tool(t["name"], t["input_schema"] if isinstance(t.get("input_schema"), dict) else {})
        for t in payload.get("tools") or ()
        if isinstance(t, dict) and t.get("type") in (None, "custom") and isinstance(t.get("name"), str)
    )
    choice = payload.get("tool_choice") if isinstance(payload.get("tool_choice"), dict) else {}
    kind = {"any": "required", "none": "none", "tool": "named"}.get(choice.get("type"), "auto")
    thinking = payload.get("thinking") if isinstance(payload.get("thinking"), dict) else {}
    stops = payload.get("stop_sequences")
    return Prompt(
        text=_text(users[-1]["content"]) if users else "",
        turn=model.last_turn((_kind(m), _text(m.get("content"))) for m in messages),
        tools=tools,
        tool_choice=kind,  # type: ignore[arg-type]
        tool_name=choice.get("name") if kind == "named" else None,
        tool_result=" ".join(model.result_text(r.get("content") or "") for r in results) if results else None,
        tool_results=model.results_since_text(
            (m.get("role") == "user" and bool(_text(m.get("content"))), len(_results(m.get("content"))))
            for m in messages
        ),
        parallel=choice.get("disable_parallel_tool_use") is not True,
        max_tokens=payload.get("max_tokens") if isinstance(payload.get("max_tokens"), int) else None,
        reasoning=thinking.get("type") in ("enabled", "adaptive"),
        output_schema=_schema(payload),
        stop=tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else (),
        prompt_tokens=model.count(texts),
        seed=model.digest(payload),
    )


def _schema(payload: dict[str, Any]) -> dict[str, Any] | None:
    config = payload.get("output_config")
    form = config.get("format") if isinstance(config, dict) else None
    form = form or payload.get("output_format")
    if not isinstance(form, dict):
        return None
    schema = form.get("schema")
    return schema if isinstance(schema, dict) else JSON_OBJECT


# ---- the message -----------------------------------------------------------------------------------


def _tool_id(call_id: str) -> str:
    return "toolu_" + call_id.removeprefix("call_")


def _usage(r: Reply) -> dict[str, Any]:
    return {
        "input_tokens": r.prompt_tokens - r.cached_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": r.cached_tokens,
        "output_tokens": r.completion_tokens,
        "service_tier": "standard",
    }


def _blocks(r: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if r.reasoning:
        blocks.append(
            {"type": "thinking", "thinking": r.reasoning, "signature": signing.thinking_signature(r.reasoning)}
        )
    if r.text:
        blocks.append({"type": "text", "text": r.text, "citations": None})
    for call in r.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": _tool_id(call.id), "name": call.name, "input": orjson.loads(call.arguments)}
        )
    return blocks


def _head(r: Reply, model_name: str) -> dict[str, Any]:
    return {"id": f"msg_{r.id}", "type": "message", "role": "assistant", "model": model_name}


def message(r: Reply, model_name: str) -> bytes:
    return orjson.dumps(
        {
            **_head(r, model_name),
            "content": _blocks(r),
            "stop_reason": "stop_sequence" if r.stop_sequence else _STOP[r.finish_reason],
            "stop_sequence": r.stop_sequence,
            "usage": _usage(r),
        }
    )


# ---- the stream ------------------------------------------------------------------------------------


def _event(kind: str, body: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **body}) + b"\n\n"


def stream(r: Reply, model_name: str) -> list[bytes]:
    """Every SSE frame of the streamed answer."""
    start = {**_usage(r), "output_tokens": 1}
    head = {**_head(r, model_name), "content": [], "stop_reason": None, "stop_sequence": None, "usage": start}
    frames = [_event("message_start", {"message": head}), _event("ping", {})]
    for index, block in enumerate(_blocks(r)):
        frames += _block_events(index, block, r.chunks)
    usage = _usage(r)
    del usage["service_tier"]
    stop = "stop_sequence" if r.stop_sequence else _STOP[r.finish_reason]
    frames.append(
        _event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": r.stop_sequence}, "usage": usage})
    )
    frames.append(_event("message_stop", {}))
    return frames


def _block_events(index: int, block: dict[str, Any], chunks: int) -> list[bytes]:
    kind = block["type"]
    if kind == "thinking":
        opening: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": p} for p in split(block["thinking"], chunks)]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "text":
        opening = {"type": "text", "text": "", "citations": None}
        deltas = [{"type": "text_delta", "text": p} for p in split(block["text"], chunks)]
    else:
        opening = {**block, "input": {}}
        arguments = orjson.dumps(block["input"]).decode()
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *split(arguments, chunks)]]
    events = [_event("content_block_start", {"index": index, "content_block": opening})]
    events += [_event("content_block_delta", {"index": index, "delta": d}) for d in deltas]
    events.append(_event("content_block_stop", {"index": index}))
    return events


# ---- answers ---------------------------------------------------------------------------------------


def respond(payload: Any, options: MockOptions, betas: str = "") -> Answer:
    """The answer to ``POST /v1/messages``; ``betas`` is the ``anthropic-beta`` header's value."""
    refused = problem(payload, betas=betas)
    if refused is not None:
        return error(400, refused)
    r = model.answer(prompt(payload), options)
    status = r.directives.status
    if status:
        return Answer(status, error(status, f"mock upstream error {status}").body, model.JSON_HEADERS, r)
    if payload.get("stream"):
        return Answer(200, tuple(stream(r, payload["model"])), model.SSE_HEADERS, r)
    return Answer(200, message(r, payload["model"]), model.JSON_HEADERS, r)


def count_tokens(payload: Any, betas: str = "") -> Answer:
    """``POST /v1/messages/count_tokens``: the input tokens the request would use."""
    refused = problem(payload, counting=True, betas=betas)
    if refused is not None:
        return error(400, refused)
    return model.json_answer(200, {"input_tokens": prompt(payload).prompt_tokens})


def _info(name: str) -> dict[str, Any]:
    return {
        "type": "model",
        "id": name,
        "display_name": name,
        "created_at": "2023-11-14T22:13:20Z",
        "lifecycle": "active",
    }


def model_list(models: Sequence[str]) -> bytes:
    data = [_info(m) for m in models]
    return orjson.dumps(
        {
            "data": data,
            "has_more": False,
            "first_id": models[0] if models else None,
            "last_id": models[-1] if models else None,
        }
    )


def model_info(name: str) -> bytes:
    return orjson.dumps(_info(name))

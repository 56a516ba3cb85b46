"""OpenAI Chat Completions on the mock's wire: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Reasoning goes out as ``reasoning_content`` (in the message, or in deltas before the text), as
DeepSeek, vLLM and most relays send it; usage carries ``cached_tokens`` and ``reasoning_tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from relay.config import MockOptions
from relay.mock import model
from relay.mock.model import CREATED, JSON_OBJECT, Answer, Prompt, Reply, Tool, split
from relay.mock.strict_chat import problem

__all__ = [
    "chat_chunks",
    "chat_completion",
    "error",
    "error_body",
    "model_list",
    "problem",
    "prompt",
    "reply",
    "respond",
    "usage",
    "wants_usage",
]


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


_INSTRUCTIONS = ("system", "developer")


def _kind(message: dict[str, Any]) -> str:
    role = message.get("role")
    return "user" if role == "user" else "instruction" if role in _INSTRUCTIONS else "other"


def prompt(payload: dict[str, Any]) -> Prompt:
    """The neutral view of a Chat Completions body (custom tools are taken but never called)."""
    messages = [m for m in payload.get("messages", []) if isinstance(m, dict)]
    last_user = next((text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    said = [m for m in messages if m.get("role") not in _INSTRUCTIONS]
    answered_tool = bool(said) and said[-1].get("role") == "tool"
    tools = tuple(
        Tool(f["name"], f.get("parameters") if isinstance(f.get("parameters"), dict) else {})
        for t in payload.get("tools") or []
        if isinstance(t, dict) and isinstance(f := t.get("function"), dict) and isinstance(f.get("name"), str)
    )
    choice = payload.get("tool_choice")
    named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools")
        choice = allowed.get("mode") if isinstance(allowed, dict) else None
    limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
    stop = payload.get("stop")
    return Prompt(
        text=last_user,
        turn=model.last_turn((_kind(m), text_of(m.get("content"))) for m in messages),
        tools=tools,
        tool_choice="named" if named else choice if choice in ("none", "required") else "auto",
        tool_name=named,
        tool_result=text_of(said[-1].get("content")) if answered_tool else None,
        tool_results=model.results_since_text(
            (m.get("role") == "user" and bool(text_of(m.get("content"))), int(m.get("role") == "tool"))
            for m in messages
        ),
        parallel=payload.get("parallel_tool_calls") is not False,
        max_tokens=limit if isinstance(limit, int) else None,
        reasoning=payload.get("reasoning_effort") not in (None, "none"),
        output_schema=_schema(payload.get("response_format")),
        stop=(stop,) if isinstance(stop, str) else tuple(s for s in stop or () if isinstance(s, str)),
        prompt_tokens=model.count(text_of(m.get("content")) for m in messages),
        seed=model.digest(payload),
    )


def _schema(form: Any) -> dict[str, Any] | None:
    if not isinstance(form, dict):
        return None
    if form.get("type") == "json_object":
        return JSON_OBJECT
    if form.get("type") == "json_schema":
        spec = form.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return schema if isinstance(schema, dict) else {}
    return None


def reply(payload: dict[str, Any], options: MockOptions) -> Reply:
    """The mock's answer to a Chat Completions request body."""
    return model.answer(prompt(payload), options)


def usage(r: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "total_tokens": r.prompt_tokens + r.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": r.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": r.reasoning_tokens},
    }


def chat_completion(r: Reply, model_name: str) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": r.text or None, "refusal": None}
    if r.reasoning:
        message["reasoning_content"] = r.reasoning
    if r.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in r.tool_calls
        ]
    return orjson.dumps(
        {
            "id": f"chatcmpl-{r.id}",
            "object": "chat.completion",
            "created": CREATED,
            "model": model_name,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": r.finish_reason}],
            "usage": usage(r),
            "system_fingerprint": "fp_mock",
        }
    )


def chat_chunks(r: Reply, model_name: str, include_usage: bool) -> list[bytes]:
    """Every SSE frame of the streamed answer, ``data: [DONE]`` included."""
    head = {
        "id": f"chatcmpl-{r.id}",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model_name,
        "system_fingerprint": "fp_mock",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(body) + b"\n\n"

    frames = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({"reasoning_content": piece}) for piece in split(r.reasoning, r.chunks)]
    frames += [chunk({"content": piece}) for piece in split(r.text, r.chunks)]
    for index, call in enumerate(r.tool_calls):
        opening = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        frames.append(chunk({"tool_calls": [opening]}))
        frames += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in split(call.arguments, r.chunks)
        ]
    frames.append(chunk({}, r.finish_reason))
    if include_usage:
        frames.append(b"data: " + orjson.dumps({**head, "choices": [], "usage": usage(r)}) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames


def wants_usage(payload: dict[str, Any]) -> bool:
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def error(
    status: int, message: str, param: str | None = None, kind: str = "invalid_request_error", code: str | None = None
) -> Answer:
    """An error in the OpenAI shape (Chat Completions and Responses share it)."""
    return model.json_answer(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})


def error_body(status: int) -> bytes:
    """The body ``mock:status=NNN`` answers with."""
    return orjson.dumps(
        {
            "error": {
                "message": f"mock upstream error {status}",
                "type": "mock_error",
                "param": None,
                "code": str(status),
            }
        }
    )


def respond(payload: Any, options: MockOptions) -> Answer:
    """The whole answer to a Chat Completions body: a refusal, a ``mock:status`` error, a body or a stream."""
    refused = problem(payload)
    if refused is not None:
        param, message = refused
        return error(400, message, param)
    r = reply(payload, options)
    if r.directives.status:
        return Answer(r.directives.status, error_body(r.directives.status), model.JSON_HEADERS, r)
    if not payload.get("stream"):
        return Answer(200, chat_completion(r, payload["model"]), model.JSON_HEADERS, r)
    return Answer(200, tuple(chat_chunks(r, payload["model"], wants_usage(payload))), model.SSE_HEADERS, r)


def model_list(models: Sequence[str]) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": CREATED, "owned_by": "relay-mock"} for m in models],
        }
    )


def model_info(name: str) -> bytes:
    return orjson.dumps({"id": name, "object": "model", "created": CREATED, "owned_by": "relay-mock"})

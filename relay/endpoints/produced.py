"""What an upstream stream has produced so far, read from each parsed event: the bytes of its text,
reasoning and tool calls (names and arguments), for charging a stream that does not reach its end.

One function per dialect takes one event's parsed JSON and returns its bytes of output; a stream keeps
only their running sum, so its state does not grow with its length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from relay.dialects import ir


def _text(value: object) -> int:
    return len(value.encode()) if isinstance(value, str) else 0


def openai_chat(chunk: dict[str, Any]) -> int:
    size = 0
    choices = chunk.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        size += _text(delta.get("content")) + _text(delta.get("reasoning_content")) + _text(delta.get("reasoning"))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                size += _text(function.get("name")) + _text(function.get("arguments"))
    return size


def openai_responses(event: dict[str, Any]) -> int:
    kind = event.get("type")
    if not isinstance(kind, str):
        return 0
    if kind.endswith(".delta"):
        return _text(event.get("delta"))
    if kind == "response.output_item.added":
        item = event.get("item")
        return _text(item.get("name")) if isinstance(item, dict) else 0
    return 0


def anthropic(event: dict[str, Any]) -> int:
    kind = event.get("type")
    if kind == "content_block_delta":
        delta = event.get("delta")
        if isinstance(delta, dict):
            return _text(delta.get("text")) + _text(delta.get("thinking")) + _text(delta.get("partial_json"))
    elif kind == "content_block_start":
        block = event.get("content_block")
        if isinstance(block, dict) and block.get("type") in ("tool_use", "server_tool_use"):
            return _text(block.get("name"))
    return 0


def gemini(chunk: dict[str, Any]) -> int:
    size = 0
    candidates = chunk.get("candidates")
    for candidate in candidates if isinstance(candidates, list) else ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict):
                continue
            size += _text(part.get("text"))
            call = part.get("functionCall")
            if isinstance(call, dict):
                size += _text(call.get("name")) + len(orjson.dumps(call.get("args") or {}))
    return size


BY_DIALECT: dict[ir.Dialect, Callable[[dict[str, Any]], int]] = {
    "openai_chat": openai_chat,
    "openai_responses": openai_responses,
    "anthropic": anthropic,
    "gemini": gemini,
}

"""How a client asks for each dialect the neutral mock speaks, and how it tells a stream's first token.

The benchmark's load generators send precomputed bytes: ``request`` builds the whole HTTP/1.1 request (head and
body) of one dialect for a target (its base URL, key and extra headers), ``first_token`` says whether one SSE
event carries the first piece of the answer (text, reasoning or tool-call arguments) in that dialect, whoever
re-serialized it on the way (a proxy may reorder keys or add fields, so the event is parsed, not grepped).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

#: The four generation dialects, by the names relay.dialects.codecs uses.
DIALECTS = ("openai_chat", "openai_responses", "anthropic", "gemini")
#: The stream shapes the mock serves, each as model ``bench-<shape>`` (bench/neutral/shapes.mjs).
SHAPES = ("instant", "fixed", "jitter", "tools", "reasoning")
MESSAGE = "Hello from the benchmark."
ANTHROPIC_VERSION = "2023-06-01"
_TOOL = {
    "name": "get_weather",
    "description": "The weather forecast for a place.",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
            "include": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["location"],
    },
}


def model_for(shape: str) -> str:
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r} (known: {', '.join(SHAPES)})")
    return f"bench-{shape}"


def path(dialect: str, model: str, stream: bool, gemini_prefix: str = "/v1beta") -> str:
    """The request path (below the host, ``/v1`` included) of ``dialect``; Gemini's under ``gemini_prefix``."""
    if dialect == "openai_chat":
        return "/v1/chat/completions"
    if dialect == "openai_responses":
        return "/v1/responses"
    if dialect == "anthropic":
        return "/v1/messages"
    if dialect == "gemini":
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{gemini_prefix}/models/{model}:{action}"
    raise ValueError(f"unknown dialect {dialect!r} (known: {', '.join(DIALECTS)})")


def body(dialect: str, model: str, stream: bool, message: str = MESSAGE, *, tools: bool = False) -> dict[str, Any]:
    """A minimal request of ``dialect``: one user message; a tool offered when ``tools``."""
    if dialect == "openai_chat":
        out: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": message}]}
        if tools:
            out["tools"] = [{"type": "function", "function": _TOOL}]
    elif dialect == "openai_responses":
        out = {"model": model, "input": message}
        if tools:
            out["tools"] = [{"type": "function", **_TOOL}]
    elif dialect == "anthropic":
        out = {"model": model, "max_tokens": 1024, "messages": [{"role": "user", "content": message}]}
        if tools:
            schema = _TOOL["parameters"]
            out["tools"] = [{"name": _TOOL["name"], "description": _TOOL["description"], "input_schema": schema}]
    elif dialect == "gemini":
        out = {"contents": [{"role": "user", "parts": [{"text": message}]}]}
        if tools:
            out["tools"] = [{"functionDeclarations": [_TOOL]}]
        return out
    else:
        raise ValueError(f"unknown dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    if stream:
        out["stream"] = True
    return out


def auth_headers(dialect: str, key: str) -> dict[str, str]:
    """The dialect's own way of sending the key (what its official SDK sends)."""
    if dialect == "anthropic":
        return {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    if dialect == "gemini":
        return {"x-goog-api-key": key}
    return {"authorization": f"Bearer {key}"}


def request(
    base_url: str,
    dialect: str,
    model: str,
    *,
    stream: bool,
    key: str,
    headers: Mapping[str, str] | None = None,
    message: str = MESSAGE,
    payload: dict[str, Any] | None = None,
    gemini_prefix: str = "/v1beta",
) -> bytes:
    """The whole bytes of one request of ``dialect`` to ``base_url`` (``http://host:port``, maybe with a path
    prefix), ``payload`` instead of ``body(...)`` when given."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{base_url!r}: the load generators speak plain http://host:port only")
    data = orjson.dumps(payload if payload is not None else body(dialect, model, stream, message))
    host = parts.netloc
    lines = [f"POST {parts.path.rstrip('/')}{path(dialect, model, stream, gemini_prefix)} HTTP/1.1", f"Host: {host}"]
    every = {**auth_headers(dialect, key), **(headers or {})}
    lines += [f"{name}: {value}" for name, value in every.items()]
    lines += ["Content-Type: application/json", "Accept: */*", f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def _data(event: bytes) -> Any:
    lines = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    text = b"\n".join(lines)
    if text == b"[DONE]":
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def first_token(dialect: str, event: bytes) -> bool:
    """Whether one SSE event (its bytes, CRLF or LF framed) carries a piece of the answer: text, reasoning or a
    tool call's arguments (the role chunk, ``message_start``, ``response.created`` and the like do not)."""
    data = _data(event.replace(b"\r\n", b"\n"))
    if not isinstance(data, dict):
        return False
    if dialect == "openai_chat":
        for choice in data.get("choices") or ():
            delta = choice.get("delta") or {} if isinstance(choice, dict) else {}
            if delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning"):
                return True
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict) and (call.get("function") or {}).get("arguments"):
                    return True
        return False
    if dialect == "openai_responses":
        kind = data.get("type")
        return isinstance(kind, str) and kind.endswith(".delta") and bool(data.get("delta"))
    if dialect == "anthropic":
        delta = data.get("delta") if data.get("type") == "content_block_delta" else None
        return isinstance(delta, dict) and any(delta.get(k) for k in ("text", "thinking", "partial_json"))
    if dialect == "gemini":
        for candidate in data.get("candidates") or ():
            for part in (candidate.get("content") or {}).get("parts") or ():
                if isinstance(part, dict) and (part.get("text") or part.get("functionCall")):
                    return True
        return False
    raise ValueError(f"unknown dialect {dialect!r}")


def events(body: bytes) -> list[bytes]:
    """The SSE events of a (de-chunked) stream body, CRLF or LF framed."""
    text = body.replace(b"\r\n", b"\n")
    return [e for e in text.split(b"\n\n") if e.strip()]

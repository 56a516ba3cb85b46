"""The four client dialects on the wire: each one's request bytes, which of its stream events carry a token, and the
marker its stream ends with.

The load generators send precomputed bytes and classify SSE events by a byte pattern (tolerant of the spaces a
proxy's JSON encoder may add), never by parsing JSON, so that the client's cost per frame stays small and the
same for every target.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

DIALECTS = ("openai_chat", "openai_responses", "anthropic", "gemini")
#: The prompt of every request but the long-prompt lane's.
PROMPT = "Hello from the benchmark."


def _chat_body(model: str, prompt: str, stream: bool) -> dict[str, object]:
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return body


def _responses_body(model: str, prompt: str, stream: bool) -> dict[str, object]:
    body: dict[str, object] = {"model": model, "input": prompt}
    if stream:
        body["stream"] = True
    return body


def _anthropic_body(model: str, prompt: str, stream: bool) -> dict[str, object]:
    body: dict[str, object] = {"model": model, "max_tokens": 1024, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return body


def _gemini_body(model: str, prompt: str, stream: bool) -> dict[str, object]:
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}


@dataclass(frozen=True)
class Dialect:
    name: str
    #: The request path for (model, stream).
    path: Callable[[str, bool], str]
    #: The headers carrying the key.
    auth: Callable[[str], dict[str, str]]
    body: Callable[[str, str, bool], dict[str, object]]
    #: Matches an SSE event (its bytes) that carries a token: text, tool-call arguments or reasoning.
    token: re.Pattern[bytes]
    #: The bytes of the stream's last event (the fan-out client ends a stream there).
    done: str


DIALECT: dict[str, Dialect] = {
    "openai_chat": Dialect(
        "openai_chat",
        lambda model, stream: "/v1/chat/completions",
        lambda key: {"Authorization": f"Bearer {key}"},
        _chat_body,
        re.compile(rb'"(?:content|arguments|reasoning_content|reasoning)"\s*:\s*"[^"]'),
        "[DONE]",
    ),
    "openai_responses": Dialect(
        "openai_responses",
        lambda model, stream: "/v1/responses",
        lambda key: {"Authorization": f"Bearer {key}"},
        _responses_body,
        re.compile(rb'"type"\s*:\s*"response\.[a-z_.]*\.delta"'),
        "response.completed",
    ),
    "anthropic": Dialect(
        "anthropic",
        lambda model, stream: "/v1/messages",
        lambda key: {"x-api-key": key, "anthropic-version": "2023-06-01"},
        _anthropic_body,
        re.compile(rb'"type"\s*:\s*"content_block_delta"'),
        "message_stop",
    ),
    "gemini": Dialect(
        "gemini",
        lambda model, stream: (
            f"/v1beta/models/{model}:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
        ),
        lambda key: {"x-goog-api-key": key},
        _gemini_body,
        re.compile(rb'"(?:text|functionCall|thought)"'),
        "finishReason",
    ),
}


def request_bytes(
    dialect: str,
    host: str,
    key: str,
    model: str,
    *,
    stream: bool,
    prompt: str = PROMPT,
    headers: Mapping[str, str] | None = None,
    prefix: str = "",
) -> bytes:
    """One whole HTTP/1.1 request (head and body) in ``dialect`` to ``host`` (``HOST:PORT``).

    ``prefix`` is a path before the dialect's own (a target whose base URL has a path); ``headers`` are the
    target's own extra headers (a peer's routing headers).
    """
    spec = DIALECT[dialect]
    body = orjson.dumps(spec.body(model, prompt, stream))
    lines = [f"POST {prefix}{spec.path(model, stream)} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in {**spec.auth(key), **(headers or {})}.items()]
    lines += ["Content-Type: application/json", "Accept: */*", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def long_prompt(size: int) -> str:
    """A prompt of about ``size`` bytes of varied words (the long-prompt lane's 400 KB body)."""
    words = ("relay", "token", "stream", "latency", "upstream", "gateway", "bench", "prompt")
    out: list[str] = []
    total = 0
    i = 0
    while total < size:
        word = f"{words[i % len(words)]}{i % 997}"
        out.append(word)
        total += len(word) + 1
        i += 1
    return " ".join(out)

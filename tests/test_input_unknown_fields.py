"""Nothing is dropped silently on a converted path: a request field the channel's API has no equivalent for is a
400 in the client's dialect naming it, while fields with no effect on the answer (``user``, ``metadata``…) and
fields at the value that asks for nothing (``n: 1``) are served; the passthrough forwards every field unchanged.

Through Relay on a loopback socket, with mock channels speaking each API (docs/conversions/README.md).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from relay.config import loads
from tests.conftest import KEY, serve_relay

CONFIG = f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "sqlite://:memory:"

[[channels]]
name = "chat"
type = "mock"
models = ["chat-1"]

[[channels]]
name = "claude"
type = "mock"
models = ["claude-1"]
[channels.mock]
dialect = "anthropic"

[[channels]]
name = "gemini"
type = "mock"
models = ["gemini-1"]
[channels.mock]
dialect = "gemini"

[[keys]]
name = "test"
key = "{KEY}"
"""
HEADERS = {"authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}
USER = [{"role": "user", "content": "hello"}]


def anthropic(model: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return "/v1/messages", {"model": model, "max_tokens": 64, "messages": USER, **fields}


def responses(model: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return "/v1/responses", {"model": model, "input": "hello", **fields}


def chat(model: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return "/v1/chat/completions", {"model": model, "messages": USER, **fields}


def gemini(model: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return f"/v1beta/models/{model}:generateContent", {"contents": [{"parts": [{"text": "hello"}]}], **fields}


def named(status: int, body: dict[str, Any], field: str) -> bool:
    """Whether an answer is a 400 whose error names ``field`` (as ``param`` where the dialect has one)."""
    error = body.get("error", {})
    return status == 400 and f"'{field}'" in error.get("message", "") and error.get("param", field) == field


@pytest.fixture
async def relay() -> Any:
    async with serve_relay(loads(CONFIG)) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        yield client


REFUSED = [
    (anthropic("chat-1", n=2), "n"),
    (anthropic("gemini-1", stop=["x"]), "stop"),
    (anthropic("chat-1", response_format={"type": "json_object"}), "response_format"),
    (anthropic("chat-1", mcp_servers=[{"type": "url", "url": "https://mcp.example", "name": "x"}]), "mcp_servers"),
    (responses("claude-1", frobnicate=True), "frobnicate"),
    (responses("claude-1", top_logprobs=3), "top_logprobs"),
    (chat("claude-1", seed=7), "seed"),
    (chat("gemini-1", presence_penalty=0.5), "presence_penalty"),
    (chat("claude-1", logit_bias={"50256": -100}), "logit_bias"),
    (gemini("claude-1", cachedContent="cachedContents/1"), "cachedContent"),
    (gemini("chat-1", generationConfig={"seed": 3}), "generationConfig.seed"),
    (gemini("chat-1", generation_config={"response_modalities": ["AUDIO"]}), "generationConfig.response_modalities"),
]


@pytest.mark.parametrize(("request_", "field"), REFUSED, ids=[f"{r[0][0]}-{r[1]}" for r in REFUSED])
async def test_a_field_the_conversion_would_drop_is_a_400_naming_it(
    relay: httpx.AsyncClient, request_: tuple[str, dict[str, Any]], field: str
) -> None:
    path, body = request_
    answer = await relay.post(path, json=body, headers=HEADERS)
    assert named(answer.status_code, answer.json(), field), answer.text


SERVED = [
    anthropic("chat-1", metadata={"user_id": "u-1"}, service_tier="auto", mcp_servers=[]),
    # Claude Code's edits, applied by Relay for a non-Anthropic channel (relay/dialects/context_edits.py)
    anthropic("gemini-1", context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}),
    responses("claude-1", store=True, metadata={"a": "b"}, user="u-1", include=["reasoning.encrypted_content"]),
    responses("gemini-1", truncation="auto", service_tier="default", prompt_cache_key="k", top_logprobs=0),
    # compaction past a threshold, done by Relay on a converted channel (relay/endpoints/context_compaction.py)
    responses("gemini-1", context_management=[{"type": "compaction"}]),
    chat("claude-1", user="u-1", metadata={"a": "b"}, store=False, n=1, logprobs=False, presence_penalty=0),
    chat("gemini-1", stream_options={"include_usage": True}, stream=True, service_tier="auto"),
    gemini("chat-1", safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]),
    gemini("claude-1", labels={"team": "a"}, generationConfig={"frequencyPenalty": 0, "responseModalities": ["TEXT"]}),
    # A Chat client's web search runs as Anthropic's server tool, and as Gemini's google_search
    chat("claude-1", web_search_options={}),
    chat("gemini-1", web_search_options={"user_location": {"type": "approximate", "approximate": {"city": "Oslo"}}}),
    # Google's own tools: a search runs as Anthropic's, the others are dropped (tests/test_hosted_tools.py)
    gemini("claude-1", tools=[{"googleSearch": {}}, {"codeExecution": {}}]),
    # Passthrough: the channel speaks the client's API, and gets every field as it was sent.
    anthropic("claude-1", metadata={"user_id": "u-1"}, top_k=3),
    chat("chat-1", seed=7, n=1, presence_penalty=0.5),
    gemini("gemini-1", generationConfig={"seed": 3}),
]


@pytest.mark.parametrize("request_", SERVED, ids=[f"{r[0]}-{r[1].get('model', 'gemini')}" for r in SERVED])
async def test_fields_without_effect_and_passthrough_fields_are_served(
    relay: httpx.AsyncClient, request_: tuple[str, dict[str, Any]]
) -> None:
    path, body = request_
    answer = await relay.post(path, json=body, headers=HEADERS)
    assert answer.status_code == 200, answer.text

"""The gateway's refusals as the official SDKs see them: 402 (quota) and 429 (rate limit, with retry-after), each
raised by the OpenAI, Anthropic and google-genai SDKs as their own error types."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import openai
import pytest
import trio
from google import genai
from google.genai import errors, types

from relay.config import loads
from tests.conftest import Served, serve_relay
from tests.gateway_e2e.conftest import key_entry, logs, mock_channel, relay_toml

POOR = "sk-relay-poor-key"
LIMITED = "sk-relay-limited-key"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def relay(sqlite_url: str) -> AsyncIterator[Served]:
    keys = key_entry("poor", POOR, quota=0.001) + key_entry("limited", LIMITED, rpm=1)
    async with serve_relay(loads(relay_toml(sqlite_url, channels=mock_channel("mock"), keys=keys))) as served:
        yield served


def clients(relay: Served, key: str) -> tuple[openai.OpenAI, anthropic.Anthropic, genai.Client]:
    options = types.HttpOptions(base_url=relay.url, api_version="v1beta", timeout=10_000)
    return (
        openai.OpenAI(base_url=f"{relay.url}/v1", api_key=key, max_retries=0),
        anthropic.Anthropic(base_url=relay.url, api_key=key, max_retries=0),
        genai.Client(api_key=key, vertexai=False, http_options=options),
    )


def raised(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except Exception as error:
        return error
    raise AssertionError("no error raised")


def calls(relay: Served, key: str) -> list[BaseException]:
    """The same small request through each SDK; the error each raised (the clients closed afterwards)."""
    chat, claude, gemini = clients(relay, key)
    try:
        return [
            raised(lambda: chat.chat.completions.create(model="mock-1", messages=HI, max_tokens=10)),
            raised(lambda: claude.messages.create(model="mock-1", messages=HI, max_tokens=10)),
            raised(lambda: gemini.models.generate_content(model="mock-1", contents="hi")),
        ]
    finally:
        chat.close()
        claude.close()
        gemini.close()


async def test_quota_refusals_raise_each_sdks_own_error(relay: Served, sqlite_url: str) -> None:
    chat, claude, gemini = await trio.to_thread.run_sync(calls, relay, POOR)
    assert isinstance(chat, openai.APIStatusError) and chat.status_code == 402
    assert (chat.type, chat.code) == ("insufficient_quota", "insufficient_quota")
    assert isinstance(claude, anthropic.APIStatusError) and claude.status_code == 402
    assert claude.body["error"]["type"] == "billing_error"  # type: ignore[index]
    assert isinstance(gemini, errors.ClientError) and (gemini.code, gemini.status) == (402, "FAILED_PRECONDITION")
    assert [r.status for r in await logs(sqlite_url, 3)] == [402, 402, 402]


async def test_rate_limit_refusals_raise_each_sdks_own_error_with_retry_after(relay: Served) -> None:
    chat, _, _ = clients(relay, LIMITED)
    with chat:
        first = await trio.to_thread.run_sync(lambda: chat.chat.completions.create(model="mock-1", messages=HI))
    assert first.choices[0].message.content == "Echo: hi"  # the one request of this minute
    refused_chat, refused_claude, refused_gemini = await trio.to_thread.run_sync(calls, relay, LIMITED)
    assert isinstance(refused_chat, openai.RateLimitError) and refused_chat.code == "rate_limit_exceeded"
    assert isinstance(refused_claude, anthropic.RateLimitError)
    assert refused_claude.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    for error in (refused_chat, refused_claude):
        assert 1 <= int(error.response.headers["retry-after"]) <= 60  # type: ignore[attr-defined]
    assert isinstance(refused_gemini, errors.ClientError)
    assert (refused_gemini.code, refused_gemini.status) == (429, "RESOURCE_EXHAUSTED")

"""Mid-conversation ``{"role": "system"}`` messages from the anthropic SDK (as Claude Code sends them, with the
``anthropic-beta: mid-conversation-system-…`` header), through Relay to a channel of every dialect.

The upstream is the mock model behind a recorder on a loopback socket, so each test reads the body Relay sent:
Chat gets a ``system`` message in place, Responses a ``developer`` message in place, Gemini a user turn marked
``<system>…</system>`` in place, and an Anthropic channel the client's bytes unchanged with the beta header
(docs/conversions/README.md). Before this, every converted path answered 400 "'messages[1].role' must be 'user'
or 'assistant'".
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
import trio

from relay.config import loads
from relay.dialects.anthropic import request as anthropic_request
from relay.http.messages import Request, Response, StreamResponse
from relay.mock.server import MockUpstream
from relay.upstream.channels import forwarded
from tests.conftest import KEY, Served, serve_app, serve_relay
from tests.helpers import Upstream, raw_request, upstream_relay_toml

BETA = "mid-conversation-system-2026-04-07"
INSTRUCTION = "From now on, answer in French."
#: What an Anthropic upstream answers (the mock's own Anthropic dialect may refuse the system role).
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-1",
    "content": [{"type": "text", "text": "Echo: ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 5, "output_tokens": 3},
}
CONVERSATION: list[Any] = [
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": "Hi!"},
    {"role": "system", "content": INSTRUCTION},
    {"role": "user", "content": "how are you?"},
]


class Recorder:
    """The mock upstream, recording each request; Anthropic's ``/v1/messages`` gets a fixed Message."""

    def __init__(self) -> None:
        self.mock = MockUpstream()
        self.upstream = Upstream(self.handle)

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        if request.path == "/v1/messages":
            return Response.json(200, MESSAGE)
        if request.path == "/v1/messages/count_tokens":
            return Response.json(200, {"input_tokens": 7})
        return await self.mock.handle(request, stream)

    def body(self) -> dict[str, Any]:
        (request,) = self.upstream.requests
        return json.loads(request.body)


@pytest.fixture
async def served() -> AsyncIterator[tuple[Served, Recorder]]:
    recorder = Recorder()
    async with serve_app(recorder.upstream) as up, serve_relay(loads(upstream_relay_toml(up.url))) as relay:
        yield relay, recorder


async def create(relay: Served, model: str) -> Any:
    def call() -> Any:
        with anthropic.Anthropic(api_key=KEY, base_url=relay.url, max_retries=0, timeout=10) as client:
            return client.beta.messages.create(
                model=model, max_tokens=64, system="Be brief.", messages=CONVERSATION, betas=[BETA]
            )

    return await trio.to_thread.run_sync(call)


async def test_chat_upstream_gets_a_system_message_in_place(served):
    relay, recorder = served
    message = await create(relay, "chat-1")
    assert message.content[0].text.startswith("Echo: ")
    assert [(m["role"], m["content"]) for m in recorder.body()["messages"]] == [
        ("system", "Be brief."),
        ("user", "hello"),
        ("assistant", "Hi!"),
        ("system", INSTRUCTION),
        ("user", "how are you?"),
    ]


async def test_responses_upstream_gets_a_developer_message_in_place(served):
    relay, recorder = served
    message = await create(relay, "resp-1")
    assert message.content[0].text.startswith("Echo: ")
    body = recorder.body()
    assert body["instructions"] == "Be brief."
    assert [(item["role"], item["content"]) for item in body["input"]] == [
        ("user", "hello"),
        ("assistant", "Hi!"),
        ("developer", INSTRUCTION),
        ("user", "how are you?"),
    ]


async def test_gemini_upstream_gets_a_marked_user_turn_in_place(served):
    relay, recorder = served
    message = await create(relay, "gemini-1")
    assert message.content[0].text.startswith("Echo: ")
    body = recorder.body()
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}  # the system prompt stays apart
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "hello"}]},
        {"role": "model", "parts": [{"text": "Hi!"}]},
        {"role": "user", "parts": [{"text": f"<system>\n{INSTRUCTION}\n</system>"}, {"text": "how are you?"}]},
    ]


async def test_anthropic_upstream_gets_the_bytes_and_the_beta_header(served):
    relay, recorder = served
    message = await create(relay, "claude-1")
    assert message.content[0].text == "Echo: ok"
    (request,) = recorder.upstream.requests
    assert json.loads(request.body)["messages"] == CONVERSATION  # passed through, system message and all
    assert request.header(b"anthropic-beta") == BETA
    assert request.header(b"x-api-key") == "sk-upstream"  # the channel's key, never the client's


@pytest.mark.parametrize("model", ["claude-1", "gemini-1"])
async def test_count_tokens_with_a_system_message(served, model):
    relay, recorder = served

    def call() -> Any:
        with anthropic.Anthropic(api_key=KEY, base_url=relay.url, max_retries=0, timeout=10) as client:
            return client.beta.messages.count_tokens(model=model, messages=CONVERSATION, betas=[BETA])

    counted = await trio.to_thread.run_sync(call)
    assert counted.input_tokens > 0
    (request,) = recorder.upstream.requests
    if model == "claude-1":  # passed through, with the beta header
        assert json.loads(request.body)["messages"] == CONVERSATION
        assert BETA in (request.header(b"anthropic-beta") or "").split(",")  # the SDK adds its counting beta
    else:  # converted: the instruction counted in its place
        last = json.loads(request.body)["contents"][-1]
        assert last["parts"][0] == {"text": f"<system>\n{INSTRUCTION}\n</system>"}
        assert request.header(b"anthropic-beta") is None


async def test_a_role_relay_cannot_convert_is_refused_in_anthropics_words(served):
    relay, recorder = served

    def call() -> Any:
        with anthropic.Anthropic(api_key=KEY, base_url=relay.url, max_retries=0, timeout=10) as client:
            messages: Any = [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]
            return client.messages.create(model="gemini-1", max_tokens=64, messages=messages)

    with pytest.raises(anthropic.BadRequestError) as refused:
        await trio.to_thread.run_sync(call)
    error = refused.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith('messages.1: Unexpected role "tool". The input message role must be')
    assert "input message role" in str(refused.value)
    assert recorder.upstream.requests == []


def test_only_anthropics_betas_go_upstream_and_never_an_oauth_one() -> None:
    headers = [
        (b"anthropic-beta", b"claude-code-20250219, oauth-2025-04-20,per-turn-control-2026-07-01"),
        (b"anthropic-beta", b"oauth-2025-04-20"),
        (b"x-api-key", b"relay-key"),
        (b"authorization", b"Bearer relay-key"),
    ]
    assert forwarded(headers, "anthropic") == (("anthropic-beta", "claude-code-20250219,per-turn-control-2026-07-01"),)
    assert forwarded(headers, "openai_chat") == ()


@pytest.mark.parametrize(
    ("reasoning", "tools", "beta"), [("high", True, True), ("high", False, False), (None, True, False)]
)
async def test_a_converted_agent_loop_that_thinks_gets_anthropics_interleaved_thinking_beta(
    served: tuple[Served, Recorder], reasoning: str | None, tools: bool, beta: bool
) -> None:
    relay, recorder = served
    body: dict[str, Any] = {"model": "claude-1", "messages": [{"role": "user", "content": "mock:text hello"}]}
    if reasoning:
        body["reasoning_effort"] = reasoning
    if tools:
        body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    answer = await raw_request(
        relay.url,
        "POST",
        "/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
        body=json.dumps(body).encode(),
    )
    assert answer.status == 200, answer.body
    (request,) = recorder.upstream.requests
    assert request.header(b"anthropic-beta") == (anthropic_request.INTERLEAVED_THINKING if beta else None)

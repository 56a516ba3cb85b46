"""Hosted tools of a Responses client on converted paths, through Relay on loopback sockets with the openai SDK.

The upstream records each request and answers as Anthropic and Gemini do when they searched the web
(``server_tool_use`` + ``web_search_tool_result`` + cited text; ``groundingMetadata``). Checked: what each
upstream receives (Anthropic's ``web_search_20250305`` server tool, Gemini's ``google_search``), the tools
Relay dropped (the ``x-relay-dropped-tools`` header, streams included, and the request log), the searches and
citations given back as ``web_search_call`` items and ``url_citation`` annotations, and the 400 for a tool
choice that forces a tool the upstream cannot run. Before this, every such request was a 400 ("'tools[0]' works
only with OpenAI Responses models"). Anthropic's server tools and Gemini's own tools, sent by their clients,
follow the same policy (they were a 400 too).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import trio
from openai import OpenAI
from openai.types.responses import Response

from relay.config import loads
from relay.http.messages import Request, StreamResponse
from relay.http.messages import Response as HttpResponse
from tests.conftest import KEY, Served, serve_app, serve_relay
from tests.gateway_e2e.conftest import logs
from tests.helpers import DIALECT_CHANNELS, Upstream, upstream_relay_toml
from tests.search_answers import ANTHROPIC_SEARCH, ANTHROPIC_SEARCH_STREAM, GROUNDED

FUNCTION = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
SEARCH = {"type": "web_search", "user_location": {"type": "approximate", "country": "NO"}}
SSE = ((b"content-type", b"text/event-stream"),)


async def answer(request: Request, stream: StreamResponse) -> HttpResponse | None:
    """Anthropic's and Gemini's answers after a web search, whole or streamed."""
    if request.path == "/v1/messages":
        if json.loads(request.body).get("stream"):
            return HttpResponse(200, ANTHROPIC_SEARCH_STREAM, SSE)
        return HttpResponse.json(200, ANTHROPIC_SEARCH)
    if request.path.endswith(":streamGenerateContent"):
        first = {**GROUNDED, "candidates": [{"content": {"role": "model", "parts": [{"text": "Trio "}]}}]}
        return HttpResponse(
            200, b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in (first, GROUNDED)), SSE
        )
    return HttpResponse.json(200, GROUNDED)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Served, Upstream, str]]:
    upstream = Upstream(answer)
    store = f"sqlite:///{tmp_path}/relay.db"
    async with (
        serve_app(upstream) as up,
        serve_relay(loads(upstream_relay_toml(up.url, store=store, channels=DIALECT_CHANNELS[2:]))) as relay,
    ):
        yield relay, upstream, store


async def create(relay: Served, *, stream: bool, **fields: Any) -> tuple[Response, dict[str, str]]:
    """The openai SDK's answer (a stream's final Response) and the response headers."""

    def call() -> tuple[Response, dict[str, str]]:
        with OpenAI(api_key=KEY, base_url=f"{relay.url}/v1", max_retries=0, timeout=10) as client:
            raw = client.responses.with_raw_response.create(input="What is Trio?", stream=stream, **fields)
            if not stream:
                return raw.parse(), dict(raw.headers)
            events = list(raw.parse())
            assert events[-1].type == "response.completed"
            return events[-1].response, dict(raw.headers)

    return await trio.to_thread.run_sync(call)


def sent(upstream: Upstream) -> dict[str, Any]:
    return json.loads(upstream.requests[-1].body)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_anthropic_runs_the_search_and_its_results_come_back(served, stream):
    relay, upstream, store = served
    tools = [SEARCH, FUNCTION, {"type": "file_search", "vector_store_ids": ["vs_1"]}]
    response, headers = await create(relay, stream=stream, model="claude-1", tools=tools, max_tool_calls=3)
    assert headers["x-relay-dropped-tools"] == "file_search"
    assert sent(upstream)["tools"] == [
        {"name": "lookup", "input_schema": {"type": "object", "properties": {}}},
        {
            "type": "web_search_20250305",
            "name": "web_search",
            "max_uses": 3,
            "user_location": {"type": "approximate", "country": "NO"},
        },
    ]
    search, message = response.output
    assert search.type == "web_search_call" and search.status == "completed"
    assert search.action.query == "relay" if stream else search.action.query == "relay trio"
    assert [s.url for s in search.action.sources] == ["https://a.example/1", "https://b.example/2"]
    notes = [note for part in message.content for note in part.annotations]
    assert [(n.type, n.url, n.title) for n in notes] == [("url_citation", "https://a.example/1", "A")]
    assert response.output_text.endswith("Trio is a library.")
    (row,) = await logs(store, 1)
    assert row.status == 200 and row.error_detail == (
        "tools not sent to the anthropic upstream (no equivalent there): file_search"
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_gemini_grounds_a_search_only_request(served, stream):
    relay, upstream, _ = served
    response, headers = await create(relay, stream=stream, model="gemini-1", tools=[SEARCH])
    assert "x-relay-dropped-tools" not in headers
    assert sent(upstream)["tools"] == [{"google_search": {}}]
    kinds = [item.type for item in response.output]
    assert kinds == (["message", "web_search_call"] if stream else ["web_search_call", "message"])
    search = next(item for item in response.output if item.type == "web_search_call")
    assert search.action.queries == ["python trio"]


async def test_gemini_drops_search_beside_functions(served):
    relay, upstream, _ = served
    _, headers = await create(relay, stream=True, model="gemini-1", tools=[SEARCH, FUNCTION])
    assert headers["x-relay-dropped-tools"] == "web_search"
    declaration = {"name": "lookup", "parametersJsonSchema": FUNCTION["parameters"]}
    assert sent(upstream)["tools"] == [{"functionDeclarations": [declaration]}]


@pytest.mark.parametrize("model", ["claude-1", "gemini-1"])
async def test_forcing_a_tool_the_upstream_cannot_run_is_a_400_naming_it(served, model):
    relay, upstream, _ = served
    with pytest.raises(openai.BadRequestError) as info:
        await create(
            relay,
            stream=False,
            model=model,
            tools=[{"type": "image_generation"}],
            tool_choice={"type": "image_generation"},
        )
    error = info.value.body
    assert isinstance(error, dict) and error["param"] == "tool_choice" and "'image_generation'" in error["message"]
    assert upstream.requests == []


# ---- Anthropic's and Gemini's own tools, from their clients ------------------------------------------------


async def test_an_anthropic_clients_web_search_runs_on_gemini_and_code_execution_is_dropped(served):
    relay, upstream, _ = served
    tools = [
        {"type": "web_search_20250305", "name": "web_search"},
        {"type": "code_execution_20250522", "name": "code_execution"},
    ]

    def call() -> tuple[Any, dict[str, str]]:
        with anthropic.Anthropic(api_key=KEY, base_url=relay.url, max_retries=0, timeout=10) as client:
            raw = client.messages.with_raw_response.create(
                model="gemini-1", max_tokens=64, messages=[{"role": "user", "content": "What is Trio?"}], tools=tools
            )
            return raw.parse(), dict(raw.headers)

    message, headers = await trio.to_thread.run_sync(call)
    assert headers["x-relay-dropped-tools"] == "code_execution_20250522"
    assert sent(upstream)["tools"] == [{"google_search": {}}]
    assert [(b.type, b.text) for b in message.content] == [("text", "Trio is a library.")]


async def test_a_gemini_clients_google_search_runs_on_anthropic(served):
    relay, upstream, _ = served
    body = {"contents": [{"role": "user", "parts": [{"text": "What is Trio?"}]}], "tools": [{"googleSearch": {}}]}
    async with httpx.AsyncClient(base_url=relay.url, timeout=10) as client:
        answer = await client.post(
            "/v1beta/models/claude-1:generateContent", json=body, headers={"x-goog-api-key": KEY}
        )
    assert answer.status_code == 200, answer.text
    assert "x-relay-dropped-tools" not in answer.headers
    assert sent(upstream)["tools"] == [{"type": "web_search_20250305", "name": "web_search"}]
    parts = answer.json()["candidates"][0]["content"]["parts"]
    assert "".join(p["text"] for p in parts) == "Here is what I found: Trio is a library."


@pytest.mark.parametrize(
    ("model", "tools"),
    [
        (
            "claude-1",
            [
                {
                    "type": "web_search_20250305",
                    "name": "web_search",
                    "user_location": {"type": "approximate", "city": "Oslo"},
                }
            ],
        ),
        ("gemini-1", [{"google_search": {}}]),
    ],
)
async def test_a_chat_clients_web_search_options_run_as_the_upstreams_search(served, model, tools):
    relay, upstream, _ = served

    def call() -> tuple[Any, dict[str, str]]:
        with OpenAI(api_key=KEY, base_url=f"{relay.url}/v1", max_retries=0, timeout=10) as client:
            raw = client.chat.completions.with_raw_response.create(
                model=model,
                messages=[{"role": "user", "content": "What is Trio?"}],
                web_search_options={"user_location": {"type": "approximate", "approximate": {"city": "Oslo"}}},
            )
            return raw.parse(), dict(raw.headers)

    completion, headers = await trio.to_thread.run_sync(call)
    assert "x-relay-dropped-tools" not in headers
    assert sent(upstream)["tools"] == tools
    assert "Trio is a library." in completion.choices[0].message.content

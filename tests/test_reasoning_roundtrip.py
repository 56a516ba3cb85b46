"""Reasoning state survives agent loops on every converted pair (docs/conversions/README.md, "Reasoning state").

Each client dialect's official SDK runs a tool loop with reasoning asked for, through Relay, against the
built-in strict mock on each upstream dialect: four turns (a call, its result, a new question and a call, its
result), each sending back what the previous answers gave, the way that SDK's users do (Chat: the message,
``reasoning_details`` included; Responses: ``input += output``; Anthropic: the content as returned; Gemini:
the candidate's content). The mock refuses a proof it made that comes back altered (an Anthropic thinking
signature, a Gemini thoughtSignature, Responses ``encrypted_content``), and every upstream request is
captured: each proof an upstream answer carried must be in the next request to that upstream, native.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import attrs
import openai
import orjson
import pytest
import trio
from google import genai
from google.genai import types
from openai.lib.streaming.chat import ChatCompletionStreamState

from relay.config import loads
from relay.http.messages import Headers, Request, Response, StreamResponse
from relay.mock import signing
from relay.mock.server import MockUpstream
from tests.conftest import KEY, serve_app, serve_relay
from tests.helpers import upstream_relay_toml

MODELS = {"chat-1": "openai_chat", "resp-1": "openai_responses", "claude-1": "anthropic", "gemini-1": "gemini"}
CLIENTS = ("openai_chat", "openai_responses", "anthropic", "gemini")
PAIRS = [(client, model) for client in CLIENTS for model, dialect in MODELS.items() if dialect != client]
QUESTIONS = ("Oslo", "And Rome?")
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


@attrs.define
class Exchange:
    """One upstream call the mock got: its path, request body and answer bytes (a stream's frames joined)."""

    path: str
    body: bytes
    answer: bytes = b""


class _Tee:
    """The mock's stream response, its frames kept."""

    def __init__(self, stream: StreamResponse, exchange: Exchange) -> None:
        self._stream = stream
        self._exchange = exchange

    async def start(self, status: int, headers: Headers) -> None:
        await self._stream.start(status, headers)

    async def send(self, data: bytes) -> None:
        self._exchange.answer += data
        await self._stream.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class Capturing:
    """The strict mock upstream, every exchange kept."""

    def __init__(self) -> None:
        self.mock = MockUpstream(models=tuple(MODELS))
        self.exchanges: list[Exchange] = []

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        exchange = Exchange(request.path, request.body)
        self.exchanges.append(exchange)
        answer = await self.mock.handle(request, _Tee(stream, exchange))  # type: ignore[arg-type]
        if answer is not None:
            exchange.answer = answer.body if isinstance(answer.body, bytes) else b""
        return answer

    def error(self, status: int, message: str, path: str | None, *, code: str | None = None) -> Response:
        return self.mock.error(status, message, path, code=code)


@attrs.define
class Rig:
    url: str
    upstream: Capturing


@asynccontextmanager
async def serving() -> AsyncIterator[Rig]:
    """Relay in front of the capturing mock, its four channels one per upstream dialect."""
    upstream = Capturing()
    async with serve_app(upstream) as served, serve_relay(loads(upstream_relay_toml(served.url))) as relay:
        yield Rig(relay.url, upstream)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with serving() as served:
        yield served


# ---- the loops, as each SDK's users write them -----------------------------------------------------------------


def chat_answer(client: openai.OpenAI, model: str, messages: list[Any], tools: list[Any], stream: bool) -> Any:
    """One answer's message as an openai SDK user keeps it (streamed: assembled by the SDK's own state)."""
    args = {"model": model, "messages": messages, "tools": tools, "reasoning_effort": "low"}
    if not stream:
        return client.chat.completions.create(**args).choices[0].message
    state = ChatCompletionStreamState()
    for chunk in client.chat.completions.create(**args, stream=True):
        state.handle_chunk(chunk)
    return state.get_final_completion().choices[0].message


def chat_loop(url: str, model: str, stream: bool) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    messages: list[Any] = []

    def turn() -> Any:
        return chat_answer(client, model, messages, tools, stream)

    with client:
        for question in QUESTIONS:
            messages.append({"role": "user", "content": question})
            message = turn()
            messages.append(message.model_dump(exclude_none=True))
            (call,) = message.tool_calls
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
            answer = turn()
            assert answer.content == "Tool said: sunny"
            messages.append(answer.model_dump(exclude_none=True))


def responses_loop(url: str, model: str, stream: bool) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": False}]
    items: list[Any] = []

    def turn() -> list[dict[str, Any]]:
        args = {
            "model": model,
            "input": items,
            "tools": tools,
            "reasoning": {"effort": "low", "summary": "auto"},
            "include": ["reasoning.encrypted_content"],
            "store": False,
        }
        if not stream:
            output = client.responses.create(**args).output
            return [item.model_dump(exclude_none=True) for item in output]
        done = []  # as Codex keeps them: each finished output item
        for event in client.responses.create(**args, stream=True):
            if event.type == "response.output_item.done":
                done.append(event.item.model_dump(exclude_none=True))
        return done

    with client:
        for question in QUESTIONS:
            items.append({"role": "user", "content": question})
            output = turn()
            items += output
            (call,) = [item for item in output if item["type"] == "function_call"]
            items.append({"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"})
            output = turn()
            items += output
            texts = [c["text"] for item in output if item["type"] == "message" for c in item["content"]]
            assert texts == ["Tool said: sunny"]


def anthropic_loop(url: str, model: str, stream: bool) -> None:
    client = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
    tools = [{"name": "get_weather", "input_schema": WEATHER}]
    messages: list[Any] = []

    def turn() -> Any:
        args = {
            "model": model,
            "max_tokens": 4096,
            "messages": messages,
            "tools": tools,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        }
        if not stream:
            return client.messages.create(**args)
        with client.messages.stream(**args) as events:
            return events.get_final_message()

    with client:
        for question in QUESTIONS:
            messages.append({"role": "user", "content": question})
            message = turn()
            messages.append({"role": "assistant", "content": message.content})
            (call,) = [block for block in message.content if block.type == "tool_use"]
            messages.append(
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}
            )
            answer = turn()
            assert [block.text for block in answer.content if block.type == "text"] == ["Tool said: sunny"]
            messages.append({"role": "assistant", "content": answer.content})


def gemini_answer(
    client: genai.Client, model: str, contents: list[types.Content], config: types.GenerateContentConfig, stream: bool
) -> types.Content:
    """One answer as a google-genai user keeps it: its content (streamed: every chunk's parts, in order)."""
    if not stream:
        content = client.models.generate_content(model=model, contents=contents, config=config).candidates[0].content
        assert content is not None
        return content
    parts: list[types.Part] = []
    for chunk in client.models.generate_content_stream(model=model, contents=contents, config=config):
        parts += chunk.candidates[0].content.parts or [] if chunk.candidates[0].content else []
    return types.Content(role="model", parts=parts)


def gemini_loop(url: str, model: str, stream: bool, *, show: bool = True) -> None:
    options = types.HttpOptions(base_url=url, api_version="v1beta", timeout=10_000)
    client = genai.Client(api_key=KEY, vertexai=False, http_options=options)
    thinking = (
        types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
        if show
        else types.ThinkingConfig(thinking_budget=1024)
    )
    tool = types.Tool(
        function_declarations=[types.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER)]
    )
    config = types.GenerateContentConfig(tools=[tool], thinking_config=thinking)
    contents: list[types.Content] = []

    with client:
        for question in QUESTIONS:
            contents.append(types.Content(role="user", parts=[types.Part(text=question)]))
            content = gemini_answer(client, model, contents, config, stream)
            contents.append(content)
            (call,) = [part.function_call for part in content.parts or [] if part.function_call]
            result = types.FunctionResponse(id=call.id, name=call.name, response={"result": "sunny"})
            contents.append(types.Content(role="user", parts=[types.Part(function_response=result)]))
            answer = gemini_answer(client, model, contents, config, stream)
            assert "".join(p.text or "" for p in answer.parts or [] if not p.thought) == "Tool said: sunny"
            contents.append(answer)


LOOPS: dict[str, Callable[[str, str, bool], None]] = {
    "openai_chat": chat_loop,
    "openai_responses": responses_loop,
    "anthropic": anthropic_loop,
    "gemini": gemini_loop,
}

# ---- what the upstream must get back -----------------------------------------------------------------------------

#: Where each upstream dialect puts its proofs in an answer and in a request (JSON as the mock and Relay write it).
PROOF_PATTERNS = {
    "anthropic": [rb'"signature":"([^"]+)"', rb'"data":"([^"]+)"'],
    "gemini": [rb'"thoughtSignature":"([^"]+)"'],
    "openai_responses": [rb'"encrypted_content":"([^"]+)"', rb'"id":"((?:rs|fc)_[^"]+)"'],
}


def proofs(dialect: str, data: bytes) -> set[bytes]:
    return {m for pattern in PROOF_PATTERNS.get(dialect, ()) for m in re.findall(pattern, data)}


def assert_proofs_came_back(upstream: Capturing, dialect: str) -> None:
    exchanges = [e for e in upstream.exchanges if e.answer]
    assert len(exchanges) == 4, [e.path for e in exchanges]
    made = 0
    for before, after in itertools.pairwise(exchanges):
        assert b"UkxZ" not in after.body  # never Relay's envelope: only the provider's own values
        sent = proofs(dialect, before.answer)
        made += len(sent)
        missing = sent - proofs(dialect, orjson.dumps(orjson.loads(after.body)))
        assert not missing, (missing, after.body)
    assert made or dialect == "openai_chat"  # reasoning was asked: the upstream made proofs
    _check_native(dialect, orjson.loads(exchanges[-1].body))


def _check_native(dialect: str, body: dict[str, Any]) -> None:
    """The last request's history, read as the provider reads it: every proof there verifies, none is missing."""
    if dialect == "anthropic":
        turns = [m for m in body["messages"] if m["role"] == "assistant"]
        assert len(turns) == 3
        for turn in turns:  # each opens with its thinking, signed by the mock
            first = turn["content"][0]
            assert first["type"] == "thinking" and signing.thinking_signature_ok(first["thinking"], first["signature"])
        assert body["thinking"]["type"] == "enabled"  # kept on: the last turn opens with its signed thinking
    elif dialect == "gemini":
        calls = [p for c in body["contents"] for p in c["parts"] if "functionCall" in p]
        assert len(calls) == 2
        for part in calls:
            assert part["thoughtSignature"] not in signing.GEMINI_SKIP
            assert signing.call_signature_ok(
                part["functionCall"]["name"], part["functionCall"]["args"], part["thoughtSignature"]
            )
    elif dialect == "openai_responses":
        items = body["input"]
        calls = [i for i, item in enumerate(items) if item.get("type") == "function_call"]
        assert len(calls) == 2
        for i in calls:  # each call with its own fc_ id, after its reasoning item, whose encrypted content verifies
            assert items[i]["id"].startswith("fc_")
            reasoning = items[i - 1]
            assert reasoning["type"] == "reasoning" and reasoning["id"].startswith("rs_")
            assert signing.decrypted_reasoning(reasoning["encrypted_content"]) is not None
    else:
        turns = [m for m in body["messages"] if m["role"] == "assistant"]
        assert len(turns) == 3
        assert all(m["reasoning_content"].startswith("Thinking about: ") for m in turns)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("client", "model"), PAIRS, ids=[f"{c}-{m}" for c, m in PAIRS])
async def test_a_tool_loop_gives_each_upstream_its_proofs_back(rig: Rig, client: str, model: str, stream: bool) -> None:
    await trio.to_thread.run_sync(LOOPS[client], rig.url, model, stream)
    assert_proofs_came_back(rig.upstream, MODELS[model])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_gemini_client_without_thoughts_still_gives_anthropic_its_thinking(rig: Rig, stream: bool) -> None:
    """A Gemini client that does not show thoughts never sees Anthropic's thinking text: the envelope carries it."""
    await trio.to_thread.run_sync(lambda: gemini_loop(rig.url, "claude-1", stream, show=False))
    assert_proofs_came_back(rig.upstream, "anthropic")

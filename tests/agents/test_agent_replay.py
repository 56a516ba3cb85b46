"""The requests Codex CLI and Claude Code really send (``fixtures/``, recorded by ``run_real_clients.sh``),
replayed through Relay to a mock channel of each of the four upstream dialects, the key pinned to it.

Every fixture on every channel: a 200, and an answer the client's own SDK reads (streams through the SDK's
``Stream`` and its accumulator, every event validated against the SDK's types), that says what the mock says to
that request: ``Tool said: …`` after a tool result, ``Echo: …`` to ``mock:text``, a call of the tool that
``mock:tool=NAME`` names (with the ``mock:args`` input) otherwise. A follow-up recorded on one channel carries
that channel's state (reasoning, signatures) wrapped by Relay; replayed to another channel it must still succeed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pydantic
import pytest
from anthropic.lib.streaming import MessageStream
from anthropic.types import Message, MessageTokensCount, RawMessageStreamEvent
from openai.lib.streaming.responses import ResponseStream
from openai.types.responses import Response, ResponseStreamEvent

from tests.agents.recordings import FIXTURES, Fixture, load_fixtures
from tests.conftest import KEY, process

CHANNELS = ("chat", "responses", "anthropic", "gemini")
CONFIG = f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "sqlite://:memory:"

[[channels]]
name = "chat"
type = "mock"
api = "chat"
models = ["*"]

[[channels]]
name = "responses"
type = "mock"
api = "responses"
models = ["*"]

[[channels]]
name = "anthropic"
type = "mock"
models = ["*"]
[channels.mock]
dialect = "anthropic"

[[channels]]
name = "gemini"
type = "mock"
models = ["*"]
[channels.mock]
dialect = "gemini"

[[keys]]
name = "agents"
key = "{KEY}"
"""
FIXTURE_LIST = load_fixtures()
RESPONSE_EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
MESSAGE_EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)
_TOOL_OUTPUTS = ("function_call_output", "custom_tool_call_output")


@pytest.fixture(scope="module")
def relay_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("agents") / "relay.toml"
    path.write_text(CONFIG)
    with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
        yield f"http://{address}"


# ---- what the mock must answer, read from the request ----------------------------------------------------------


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [part.get("text", "") for part in content or [] if isinstance(part, dict)]


def user_texts(fixture: Fixture) -> list[str]:
    """Every text the user wrote, in order (Responses input messages, Anthropic user text blocks)."""
    body = fixture.body
    if "input" in body:
        items = [body["input"]] if isinstance(body["input"], str) else body["input"]
        texts: list[str] = []
        for item in items:
            if isinstance(item, str):
                texts.append(item)
            elif item.get("type", "message") == "message" and item.get("role") == "user":
                texts += _texts(item.get("content"))
        return texts
    return [text for m in body.get("messages", []) if m["role"] == "user" for text in _texts(m["content"])]


def ends_in_tool_result(fixture: Fixture) -> bool:
    """Whether the conversation's last turn is a tool's result rather than something the user wrote."""
    body = fixture.body
    if "input" in body:
        items = [] if isinstance(body["input"], str) else body["input"]
        kinds = [
            "output" if item.get("type") in _TOOL_OUTPUTS else "user"
            for item in items
            if item.get("type") in _TOOL_OUTPUTS
            or (item.get("type", "message") == "message" and item["role"] == "user")
        ]
        return bool(kinds) and kinds[-1] == "output"
    users = [m for m in body.get("messages", []) if m["role"] == "user"]
    last = users[-1]["content"] if users else ""
    return isinstance(last, list) and any(block.get("type") == "tool_result" for block in last)


def directive_tool(fixture: Fixture) -> tuple[str, Any] | None:
    """The tool ``mock:tool=NAME`` names in the user's last directive-bearing text, and its ``mock:args`` value."""
    for text in reversed(user_texts(fixture)):
        found = re.search(r"mock:tool=([\w.-]+)", text)
        if found is None:
            continue
        args: Any = None
        start = text.find("mock:args=")
        if start >= 0:
            args, _ = json.JSONDecoder().raw_decode(text, start + len("mock:args="))
        return found.group(1), args
    return None


def expected(fixture: Fixture) -> tuple[str, Any]:
    """``("text", prefix)`` or ``("call", (name, args))``: what the answer to ``fixture`` must be."""
    if ends_in_tool_result(fixture):
        return "text", "Tool said:"
    tool = directive_tool(fixture)
    if tool is not None:
        return "call", tool
    return "text", "Echo:"


# ---- reading the answer as the client's SDK does -----------------------------------------------------------------


def sse_payloads(body: bytes) -> list[dict[str, Any]]:
    payloads = []
    for block in re.split(rb"\r?\n\r?\n", body):
        data = [line[5:].strip() for line in block.splitlines() if line.startswith(b"data:")]
        if data and data != [b"[DONE]"]:
            payloads.append(json.loads(b"\n".join(data)))
    return payloads


def _sdk_response(response: httpx.Response) -> httpx2.Response:
    """The answer as the SDK's own HTTP layer would have handed it to the SDK."""
    request = httpx2.Request(response.request.method, str(response.request.url))
    return httpx2.Response(
        response.status_code, headers=list(response.headers.items()), content=response.content, request=request
    )


def read_responses_answer(url: str, response: httpx.Response, streamed: bool) -> Response:
    if not streamed:
        return Response.model_validate(response.json())
    for payload in sse_payloads(response.content):
        RESPONSE_EVENTS.validate_python(payload)
    with openai.OpenAI(api_key="unused", base_url=url) as client:
        raw = openai.Stream(cast_to=ResponseStreamEvent, response=_sdk_response(response), client=client)
        stream = ResponseStream(raw_stream=raw, text_format=openai.omit, input_tools=openai.omit, starting_after=None)
        final = stream.get_final_response()
    return Response.model_validate(final.to_dict())


def read_anthropic_answer(url: str, response: httpx.Response, streamed: bool) -> Message:
    if not streamed:
        return Message.model_validate(response.json())
    for payload in sse_payloads(response.content):
        if payload.get("type") != "ping":  # the SDK skips pings; its event union has no type for them
            MESSAGE_EVENTS.validate_python(payload)
    with anthropic.Anthropic(api_key="unused", base_url=url) as client:
        raw = anthropic.Stream(cast_to=RawMessageStreamEvent, response=_sdk_response(response), client=client)
        final = MessageStream(raw, anthropic.NOT_GIVEN).get_final_message()
    return Message.model_validate(final.to_dict())


def offered_tools(fixture: Fixture) -> set[str]:
    """The names of every tool the request offers: top level, in ``additional_tools`` items, in namespaces."""
    tools = list(fixture.body.get("tools") or [])
    for item in fixture.body.get("input") or []:
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            tools += item.get("tools") or []
    names: set[str] = set()
    while tools:
        tool = tools.pop()
        if tool.get("type") == "namespace":
            tools += tool.get("tools") or []
        if "name" in tool:
            names.add(tool["name"])
    return names


def check_responses(fixture: Fixture, answer: Response) -> None:
    assert answer.status == "completed", answer.status
    kind, want = expected(fixture)
    calls = [item for item in answer.output if item.type in ("function_call", "custom_tool_call")]
    if kind == "text":
        assert not calls, calls
        assert answer.output_text.startswith(want), answer.output_text[:300]
        return
    name, args = want
    assert len(calls) == 1, answer.output
    (call,) = calls
    assert call.name == name and name in offered_tools(fixture), call
    if call.type == "custom_tool_call":  # a freeform tool's input: the ``input`` of ``mock:args``
        assert call.input == args["input"]
    else:
        assert json.loads(call.arguments) == args


def check_anthropic(fixture: Fixture, answer: Message) -> None:
    kind, want = expected(fixture)
    calls = [block for block in answer.content if block.type == "tool_use"]
    if kind == "text":
        assert not calls and answer.stop_reason == "end_turn", answer
        text = "".join(block.text for block in answer.content if block.type == "text")
        assert text.startswith(want), text[:300]
        return
    name, args = want
    assert answer.stop_reason == "tool_use" and len(calls) == 1, answer
    assert calls[0].name == name and name in offered_tools(fixture)
    assert calls[0].input == args


def replay(url: str, fixture: Fixture, channel: str) -> httpx.Response:
    headers = {**fixture.headers, "content-type": "application/json"}
    credential = f"{KEY}#{channel}"
    headers[fixture.auth_header] = f"Bearer {credential}" if fixture.auth_header == "authorization" else credential
    content = json.dumps(fixture.body).encode()
    return httpx.request(fixture.method, url + fixture.path, headers=headers, content=content, timeout=30)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("fixture", FIXTURE_LIST, ids=[fixture.name for fixture in FIXTURE_LIST])
def test_replay(relay_url: str, fixture: Fixture, channel: str) -> None:
    response = replay(relay_url, fixture, channel)
    assert response.status_code == 200, response.text[:2000]
    path = fixture.path.split("?")[0]
    if path.endswith("/responses"):
        check_responses(fixture, read_responses_answer(relay_url, response, fixture.streamed))
    elif path.endswith("/messages"):
        check_anthropic(fixture, read_anthropic_answer(relay_url, response, fixture.streamed))
    elif path.endswith("/count_tokens"):
        assert MessageTokensCount.model_validate(response.json()).input_tokens > 0
    else:
        pytest.fail(f"no check for {fixture.method} {fixture.path}: add one")


# ---- the fixture set itself ----------------------------------------------------------------------------------------


def test_fixtures_cover_every_run() -> None:
    """Each CLI, channel and case recorded, each shell run with its follow-up carrying the tool's result: a refresh
    made while runs failed would lose those."""
    runs = {(f.client, f.channel, f.case) for f in FIXTURE_LIST}
    want = {
        (client, channel, case) for client in ("codex", "claude") for channel in CHANNELS for case in ("plain", "shell")
    }
    assert want <= runs, sorted(want - runs)
    followed = {(f.client, f.channel) for f in FIXTURE_LIST if f.case == "shell" and ends_in_tool_result(f)}
    want_followed = {(client, channel) for client in ("codex", "claude") for channel in CHANNELS}
    assert want_followed <= followed, sorted(want_followed - followed)


def test_fixtures_hold_no_credential() -> None:
    assert FIXTURE_LIST, f"no fixtures in {FIXTURES}: run tests/agents/run_real_clients.sh --refresh-fixtures"
    for path in Path(FIXTURES).glob("*.json"):
        text = path.read_text()
        assert "sk-relay-" not in text, path.name
        data = json.loads(text)
        assert not {"authorization", "x-api-key", "x-goog-api-key"} & set(data["headers"]), path.name
        assert data["auth_header"], path.name

"""The anthropic SDK through Relay, to each upstream dialect."""

from __future__ import annotations

import re
from collections.abc import Iterator

import anthropic
import pytest
from anthropic import Anthropic
from anthropic.types import Message, TextBlock, ThinkingBlock, ToolUseBlock, Usage

from tests.conftest import KEY

from .conftest import FORBIDDEN, MODELS, UNKNOWN

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["city", "unit"],
    },
}
THINKING = {"type": "enabled", "budget_tokens": 1024}


@pytest.fixture(scope="module")
def client(relay_url: str) -> Iterator[Anthropic]:
    with Anthropic(api_key=KEY, base_url=relay_url, max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def prefixed(relay_url: str) -> Iterator[Anthropic]:
    """A client whose base URL is Relay's ``/claude`` prefix."""
    with Anthropic(api_key=KEY, base_url=f"{relay_url}/claude", max_retries=0, timeout=10) as client:
        yield client


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def assert_usage(usage: Usage) -> None:
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert (usage.cache_read_input_tokens or 0) >= 0 and (usage.cache_creation_input_tokens or 0) >= 0


def test_create(client, model):
    message = client.messages.create(model=model, max_tokens=256, system="Be brief.", messages=user("hello sdk"))
    assert isinstance(message, Message)
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == model
    (block,) = message.content
    assert isinstance(block, TextBlock)
    assert block.text == "Echo: hello sdk"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert_usage(message.usage)


def test_create_with_max_tokens_stops_for_max_tokens(client, model):
    # 16: the least OpenAI Responses accepts (max_output_tokens).
    message = client.messages.create(model=model, max_tokens=16, messages=user("a" * 100))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 16
    (block,) = message.content
    assert block.text == ("Echo: " + "a" * 100)[:64]  # 16 tokens of four characters


def test_create_with_tools(client, model):
    message = client.messages.create(model=model, max_tokens=256, messages=user("Paris"), tools=[WEATHER])
    assert message.stop_reason == "tool_use"
    (block,) = [b for b in message.content if b.type != "text"]
    assert isinstance(block, ToolUseBlock)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", block.id)  # what Anthropic accepts back in tool_result
    if model == "claude-1":
        assert block.id.startswith("toolu_")
    assert block.name == "get_weather"
    assert block.input == {"city": "Paris", "unit": "celsius", "days": 1}
    assert all(b.text for b in message.content if isinstance(b, TextBlock))  # never an empty text block
    assert_usage(message.usage)
    # The tool's result goes back in the next user turn; the model answers with text.
    answer = client.messages.create(
        model=model,
        max_tokens=256,
        tools=[WEATHER],
        messages=[
            *user("Paris"),
            {"role": "assistant", "content": message.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny, 21 C"}],
            },
        ],
    )
    assert answer.stop_reason == "end_turn"
    assert [b.text for b in answer.content] == ["Tool said: sunny, 21 C"]


def test_named_tool_choice(client, model):
    time_tool = {
        "name": "get_time",
        "description": "The local time in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    message = client.messages.create(
        model=model,
        max_tokens=256,
        messages=user("Tokyo"),
        tools=[WEATHER, time_tool],
        tool_choice={"type": "tool", "name": "get_time"},
    )
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert (block.name, block.input) == ("get_time", {"city": "Tokyo"})


def test_stream_text(client, model):
    with client.messages.stream(model=model, max_tokens=256, messages=user("stream me")) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1 and "".join(pieces) == "Echo: stream me"
    assert isinstance(final, Message)
    assert final.model == model
    assert [b.text for b in final.content] == ["Echo: stream me"]
    assert final.stop_reason == "end_turn"
    assert_usage(final.usage)
    # The same request unstreamed counts the same tokens.
    whole = client.messages.create(model=model, max_tokens=256, messages=user("stream me"))
    counted = (whole.usage.input_tokens, whole.usage.output_tokens)
    assert counted == (final.usage.input_tokens, final.usage.output_tokens)


def test_stream_raw_events(client, model):
    events = list(client.messages.create(model=model, max_tokens=256, messages=user("raw"), stream=True))
    events = [e for e in events if e.type != "ping"]
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert types[1] == "content_block_start"
    assert types.count("content_block_start") == types.count("content_block_stop") == 1
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens > 0
    if model == "claude-1":
        assert events[0].message.usage.input_tokens > 0
    else:  # other upstreams count the input at the end: message_delta carries it
        assert delta.usage.input_tokens > 0


def test_stream_tool_input_json(client, model):
    with client.messages.stream(model=model, max_tokens=256, messages=user("Oslo"), tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    partial = [e for e in events if e.type == "input_json"]
    assert partial, "no input_json events"
    assert "".join(e.partial_json for e in partial).replace(" ", "") != ""
    assert partial[-1].snapshot == {"city": "Oslo", "unit": "celsius", "days": 1}
    assert final.stop_reason == "tool_use"
    (block,) = [b for b in final.content if b.type == "tool_use"]
    assert block.input == {"city": "Oslo", "unit": "celsius", "days": 1}
    starts = [e for e in events if e.type == "content_block_start"]
    assert [e.index for e in starts] == list(range(len(starts)))  # dense indices, in order
    assert_usage(final.usage)


def test_thinking_round_trip(client, model):
    first = client.messages.create(model=model, max_tokens=2048, thinking=THINKING, messages=user("think"))
    assert first.stop_reason == "end_turn"
    assert [b.type for b in first.content] == ["thinking", "text"]
    thought, text = first.content
    assert isinstance(thought, ThinkingBlock)
    assert thought.thinking
    assert isinstance(thought.signature, str)
    if model == "claude-1":
        assert thought.signature  # the provider's proof, passed through
    assert text.text == "Echo: think"
    assert_usage(first.usage)
    # The assistant's content goes back as it came, thinking and signature included.
    history = [*user("think"), {"role": "assistant", "content": first.content}, *user("again")]
    second = client.messages.create(model=model, max_tokens=2048, thinking=THINKING, messages=history)
    assert second.content[-1].text == "Echo: again"
    assert second.usage.input_tokens > first.usage.input_tokens


def test_thinking_signature_altered_is_refused_by_anthropic(client):
    first = client.messages.create(model="claude-1", max_tokens=2048, thinking=THINKING, messages=user("think"))
    thought, text = first.content
    forged = {"type": "thinking", "thinking": thought.thinking, "signature": thought.signature[:-2] + "xx"}
    history = [*user("think"), {"role": "assistant", "content": [forged, text]}, *user("again")]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="claude-1", max_tokens=2048, thinking=THINKING, messages=history)


def test_thinking_streamed(client, model):
    with client.messages.stream(model=model, max_tokens=2048, thinking=THINKING, messages=user("think")) as stream:
        events = list(stream)
        final = stream.get_final_message()
    thinking = "".join(e.thinking for e in events if e.type == "thinking")
    assert thinking and thinking == final.content[0].thinking
    signatures = [e.signature for e in events if e.type == "signature"]
    if model == "claude-1":
        assert signatures == [final.content[0].signature] and signatures[0]
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[1].text == "Echo: think"


def test_count_tokens(client, model):
    short = client.messages.count_tokens(model=model, messages=user("hi"))
    long = client.messages.count_tokens(model=model, system="Be brief.", messages=user("hi " * 200), tools=[WEATHER])
    assert short.input_tokens > 0
    assert long.input_tokens > short.input_tokens


def test_models_list(client, model):
    page = client.models.list(limit=2)
    assert [m.id for m in page.data] == list(MODELS[:2])
    assert page.has_more is True
    models = list(client.models.list(limit=2))  # the SDK follows after_id to the last page
    assert [m.id for m in models] == list(MODELS)
    assert all(m.type == "model" and m.display_name for m in models)
    info = client.models.retrieve(model)
    assert (info.id, info.type) == (model, "model")


def test_claude_prefix(prefixed, model):
    message = prefixed.messages.create(model=model, max_tokens=256, messages=user("prefixed"))
    assert [b.text for b in message.content] == ["Echo: prefixed"]
    assert message.stop_reason == "end_turn"
    with prefixed.messages.stream(model=model, max_tokens=256, messages=user("prefixed")) as stream:
        assert "".join(stream.text_stream) == "Echo: prefixed"
    assert prefixed.messages.count_tokens(model=model, messages=user("prefixed")).input_tokens > 0
    assert [m.id for m in prefixed.models.list()] == list(MODELS)


def test_errors(client, relay_url, model):
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=model, max_tokens=256, messages=user("mock:status=429"))
    assert limited.value.status_code == 429
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model=UNKNOWN, max_tokens=256, messages=user("x"))
    assert missing.value.body["type"] == "error"
    assert missing.value.body["error"]["type"] == "not_found_error"
    assert UNKNOWN in missing.value.message
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.create(model=FORBIDDEN, max_tokens=256, messages=user("x"))
    with Anthropic(api_key="sk-not-a-relay-key", base_url=relay_url, max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as denied:
            bad.messages.create(model=model, max_tokens=256, messages=user("x"))
        with pytest.raises(anthropic.AuthenticationError):
            bad.models.list()
    assert denied.value.body["error"]["type"] == "authentication_error"


def test_thinking_with_a_tool_loop(client, model):
    """Thinking on through a tool call and its result: the thinking block goes back first, signature intact."""
    first = client.messages.create(
        model=model, max_tokens=2048, thinking=THINKING, tools=[WEATHER], messages=user("Oslo")
    )
    assert first.stop_reason == "tool_use"
    # the thinking, and another provider's proof of the call (a Gemini thoughtSignature, an fc_ id) in a thinking
    # block of its own right before it (docs/conversions/README.md, "Reasoning state")
    expected = ["thinking", "thinking", "tool_use"] if model in ("resp-1", "gemini-1") else ["thinking", "tool_use"]
    assert [b.type for b in first.content] == expected
    call = first.content[-1]
    history = [
        *user("Oslo"),
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21 C"}]},
    ]
    answer = client.messages.create(model=model, max_tokens=2048, thinking=THINKING, tools=[WEATHER], messages=history)
    assert answer.stop_reason == "end_turn"
    assert answer.content[-1].text == "Tool said: sunny, 21 C"

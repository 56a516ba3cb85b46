"""The openai SDK's Chat Completions client through Relay, to each upstream dialect."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pydantic
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.conftest import KEY

from .conftest import FORBIDDEN, UNKNOWN

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The local time in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "utc": {"type": "boolean"}},
            "required": ["city"],
        },
    },
}


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.fixture(scope="module")
def client(relay_url: str) -> Iterator[OpenAI]:
    with OpenAI(api_key=KEY, base_url=f"{relay_url}/v1", max_retries=0, timeout=10) as client:
        yield client


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def assert_usage(usage: openai.types.CompletionUsage | None) -> None:
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_create(client, model):
    completion = client.chat.completions.create(model=model, messages=user("hello sdk"))
    assert isinstance(completion, ChatCompletion)
    assert completion.object == "chat.completion"
    assert completion.model == model
    assert completion.id.startswith("chatcmpl-")
    (choice,) = completion.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello sdk"
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    assert_usage(completion.usage)


def test_create_with_tools(client, model):
    completion = client.chat.completions.create(model=model, messages=user("Paris"), tools=[WEATHER])
    (choice,) = completion.choices
    assert choice.finish_reason == "tool_calls"
    assert not choice.message.content
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius", "days": 1}
    assert_usage(completion.usage)


def test_stream_with_usage(client, model):
    stream = client.chat.completions.create(
        model=model, messages=user("stream me"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert {c.model for c in chunks} == {model}
    assert len({c.id for c in chunks}) == 1
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in with_choices if c.choices[0].delta.content]
    assert "".join(deltas) == "Echo: stream me"
    assert len(deltas) > 1  # streamed, not sent whole at the end
    finishes = [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert_usage(last.usage)
    assert all(c.usage is None for c in chunks[:-1])
    # The same request unstreamed counts the same tokens.
    whole = client.chat.completions.create(model=model, messages=user("stream me"))
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (
        last.usage.prompt_tokens,
        last.usage.completion_tokens,
    )


def test_stream_with_a_tool(client, model):
    stream = client.chat.completions.create(
        model=model, messages=user("Oslo"), tools=[WEATHER], stream=True, stream_options={"include_usage": True}
    )
    ids, names, arguments, finishes, usage = set(), set(), "", [], None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
            for call in choice.delta.tool_calls or []:
                assert call.index == 0
                if call.id:
                    ids.add(call.id)
                if call.function and call.function.name:
                    names.add(call.function.name)
                arguments += (call.function and call.function.arguments) or ""
    assert len(ids) == 1
    assert names == {"get_weather"}
    assert json.loads(arguments) == {"city": "Oslo", "unit": "celsius", "days": 1}
    assert finishes == ["tool_calls"]
    assert_usage(usage)


def test_parse_into_a_pydantic_model(client, model):
    completion = client.chat.completions.parse(model=model, messages=user("Lyon"), response_format=City)
    (choice,) = completion.choices
    assert choice.finish_reason == "stop"
    parsed = choice.message.parsed
    assert isinstance(parsed, City)
    assert parsed == City.model_validate_json(choice.message.content)
    assert parsed.population == 1
    assert "Lyon" in parsed.name
    assert_usage(completion.usage)


def test_stream_helper(client, model):
    with client.chat.completions.stream(
        model=model, messages=user("helper"), stream_options={"include_usage": True}
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    deltas = [event.delta for event in events if event.type == "content.delta"]
    assert "".join(deltas) == "Echo: helper"
    assert [event.content for event in events if event.type == "content.done"] == ["Echo: helper"]
    (choice,) = final.choices
    assert choice.message.content == "Echo: helper"
    assert choice.finish_reason == "stop"
    assert final.model == model
    assert_usage(final.usage)


def test_stream_helper_with_a_tool(client, model):
    with client.chat.completions.stream(model=model, messages=user("Rome"), tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    (done,) = [event for event in events if event.type == "tool_calls.function.arguments.done"]
    assert done.name == "get_weather"
    assert json.loads(done.arguments) == {"city": "Rome", "unit": "celsius", "days": 1}
    (choice,) = final.choices
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert json.loads(call.function.arguments)["city"] == "Rome"


def test_named_tool_choice(client, model):
    completion = client.chat.completions.create(
        model=model,
        messages=user("Tokyo"),
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    (choice,) = completion.choices
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_time"
    assert json.loads(call.function.arguments) == {"city": "Tokyo", "utc": True}


def test_tool_choice_none_answers_with_text(client, model):
    completion = client.chat.completions.create(
        model=model, messages=user("no tools"), tools=[WEATHER], tool_choice="none"
    )
    (choice,) = completion.choices
    assert choice.finish_reason == "stop"
    assert choice.message.content == "Echo: no tools"
    assert not choice.message.tool_calls


def test_multi_turn_with_a_tool_result(client, model):
    first = client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "You are terse."}, *user("Oslo")],
        tools=[WEATHER],
    )
    (call,) = first.choices[0].message.tool_calls
    messages = [
        {"role": "system", "content": "You are terse."},
        *user("Oslo"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
    ]
    answer = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    (choice,) = answer.choices
    assert choice.message.content == "Tool said: sunny, 21 C"
    assert choice.finish_reason == "stop"
    assert_usage(answer.usage)
    assert answer.usage.prompt_tokens > first.usage.prompt_tokens  # the history counts


def test_reasoning_effort(client, model):
    completion = client.chat.completions.create(model=model, messages=user("think"), reasoning_effort="low")
    (choice,) = completion.choices
    assert choice.message.content == "Echo: think"
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert_usage(usage)
    if model != "claude-1":  # Anthropic reports no reasoning tokens of their own
        assert 0 < usage.completion_tokens_details.reasoning_tokens < usage.completion_tokens
    if model in ("chat-1", "claude-1"):  # these upstreams return reasoning text without being asked
        reasoning = (choice.message.model_extra or {}).get("reasoning_content")
        assert isinstance(reasoning, str) and reasoning


def test_upstream_error_keeps_its_class(client, model):
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=model, messages=user("mock:status=429"))
    assert caught.value.status_code == 429
    with pytest.raises(openai.InternalServerError) as caught_stream:
        client.chat.completions.create(model=model, messages=user("mock:status=503"), stream=True)
    assert caught_stream.value.status_code == 503


def test_model_errors(client, model):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model=UNKNOWN, messages=user("x"))
    assert caught.value.code == "model_not_found"
    assert UNKNOWN in caught.value.message
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(model=FORBIDDEN, messages=user("x"))
    assert denied.value.status_code == 403
    assert client.models.retrieve(model).id == model
    assert [m.id for m in client.models.list()] == ["chat-1", "resp-1", "claude-1", "gemini-1"]


def test_reasoning_with_a_tool_loop(client, model):
    """Reasoning on through a tool call and its result: whatever proof the upstream needs must come back."""
    first = client.chat.completions.create(model=model, messages=user("Oslo"), tools=[WEATHER], reasoning_effort="low")
    message = first.choices[0].message
    (call,) = message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls"
    history = [
        *user("Oslo"),
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
    ]
    answer = client.chat.completions.create(model=model, messages=history, tools=[WEATHER], reasoning_effort="low")
    assert answer.choices[0].message.content == "Tool said: sunny, 21 C"
    assert answer.choices[0].finish_reason == "stop"

"""The openai SDK's Responses client through Relay, to each upstream dialect."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pydantic
import pytest
from openai import OpenAI
from openai.types.responses import (
    Response,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseReasoningItem,
    ResponseUsage,
)

from tests.conftest import KEY

from .conftest import UNKNOWN

WEATHER = {
    "type": "function",
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
    "strict": False,
}
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
CALL_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.fixture(scope="module")
def client(relay_url: str) -> Iterator[OpenAI]:
    with OpenAI(api_key=KEY, base_url=f"{relay_url}/v1", max_retries=0, timeout=10) as client:
        yield client


def assert_usage(usage: ResponseUsage | None) -> None:
    assert usage is not None
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.output_tokens_details.reasoning_tokens <= usage.output_tokens
    assert usage.input_tokens_details.cached_tokens <= usage.input_tokens


def squeeze(types: list[str]) -> list[str]:
    """Event types with runs of one type (deltas) counted once."""
    return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]


def test_create(client, model):
    response = client.responses.create(model=model, input="hello sdk", instructions="Be brief.")
    assert isinstance(response, Response)
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.model == model
    assert response.status == "completed"
    assert response.output_text == "Echo: hello sdk"
    (message,) = response.output
    assert isinstance(message, ResponseOutputMessage)
    assert message.id.startswith("msg_")
    assert message.role == "assistant" and message.status == "completed"
    (part,) = message.content
    assert (part.type, part.text) == ("output_text", "Echo: hello sdk")
    assert_usage(response.usage)


def test_create_with_tools(client, model):
    response = client.responses.create(model=model, input=[{"role": "user", "content": "Paris"}], tools=[WEATHER])
    assert response.status == "completed"
    (call,) = response.output
    assert isinstance(call, ResponseFunctionToolCall)
    assert call.type == "function_call"
    assert call.id.startswith("fc_")
    assert call.call_id
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris", "unit": "celsius", "days": 1}
    assert response.output_text == ""
    assert_usage(response.usage)


def test_stream(client, model):
    events = list(client.responses.create(model=model, input="stream me", stream=True))
    assert squeeze([e.type for e in events]) == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "Echo: stream me"
    created, final = events[0].response, events[-1].response
    assert created.status == "in_progress" and created.output == []
    assert final.id == created.id and final.id.startswith("resp_")
    assert final.status == "completed"
    assert final.output_text == "Echo: stream me"
    assert_usage(final.usage)
    added = next(e for e in events if e.type == "response.output_item.added")
    done = next(e for e in events if e.type == "response.output_item.done")
    assert added.item.id == done.item.id == final.output[0].id
    assert (added.item.status, done.item.status) == ("in_progress", "completed")
    # The same request unstreamed counts the same tokens.
    whole = client.responses.create(model=model, input="stream me")
    counted = (whole.usage.input_tokens, whole.usage.output_tokens)
    assert counted == (final.usage.input_tokens, final.usage.output_tokens)


def test_stream_with_a_tool(client, model):
    events = list(client.responses.create(model=model, input="Oslo", tools=[WEATHER], stream=True))
    assert squeeze([e.type for e in events]) == CALL_EVENTS
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(deltas) == json.loads(done.arguments) == {"city": "Oslo", "unit": "celsius", "days": 1}
    (call,) = events[-1].response.output
    assert call.name == "get_weather" and call.arguments == done.arguments
    assert_usage(events[-1].response.usage)


def test_parse_into_a_pydantic_model(client, model):
    response = client.responses.parse(model=model, input="Lyon", text_format=City)
    assert response.status == "completed"
    parsed = response.output_parsed
    assert isinstance(parsed, City)
    assert parsed == City.model_validate_json(response.output_text)
    assert parsed.population == 1
    assert "Lyon" in parsed.name
    assert_usage(response.usage)


def test_stream_helper(client, model):
    with client.responses.stream(model=model, input="helper") as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Echo: helper"
    assert events[-1].type == "response.completed"
    assert final.output_text == "Echo: helper"
    assert final.status == "completed"
    assert_usage(final.usage)


def test_stream_helper_parses(client, model):
    with client.responses.stream(model=model, input="Nice", text_format=City) as stream:
        final = stream.get_final_response()
    assert final.output_parsed == City(name=final.output_parsed.name, population=1)


def test_function_call_output_turn(client, model):
    first = client.responses.create(model=model, input=[{"role": "user", "content": "Oslo"}], tools=[WEATHER])
    (call,) = first.output
    history = [
        {"role": "user", "content": "Oslo"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"},
    ]
    answer = client.responses.create(model=model, input=history, tools=[WEATHER])
    assert answer.status == "completed"
    assert answer.output_text == "Tool said: sunny, 21 C"
    assert [item.type for item in answer.output] == ["message"]
    assert_usage(answer.usage)
    assert answer.usage.input_tokens > first.usage.input_tokens


def test_reasoning_with_summary(client, model):
    reasoning = {"effort": "low", "summary": "auto"}
    response = client.responses.create(model=model, input="think", reasoning=reasoning)
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["reasoning", "message"]
    thought = response.output[0]
    assert isinstance(thought, ResponseReasoningItem)
    assert thought.id.startswith("rs_")
    assert thought.summary and all(s.type == "summary_text" and s.text for s in thought.summary)
    assert response.output_text == "Echo: think"
    assert_usage(response.usage)
    if model != "claude-1":  # Anthropic reports no reasoning tokens of their own
        assert response.usage.output_tokens_details.reasoning_tokens > 0
    # Streamed: the summary arrives as its own events, before the text.
    with client.responses.stream(model=model, input="think", reasoning=reasoning) as stream:
        types = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.reasoning_summary_text.delta" in types
    assert types.index("response.reasoning_summary_text.done") < types.index("response.output_text.delta")
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == thought.summary[0].text


def test_errors(client, model):
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=model, input="mock:status=429")
    assert caught.value.status_code == 429
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model=UNKNOWN, input="x")
    assert missing.value.code == "model_not_found"


def test_reasoning_round_trip_with_encrypted_content(client, model):
    """Reasoning items go back as they came (with ``encrypted_content``), through a tool call and its result."""
    reasoning = {"effort": "low", "summary": "auto"}
    include = ["reasoning.encrypted_content"]
    first = client.responses.create(model=model, input="Oslo", tools=[WEATHER], reasoning=reasoning, include=include)
    # on a Gemini channel, the call's thoughtSignature rides in a reasoning item of its own, right before it
    expected = ["reasoning", "reasoning", "function_call"] if model == "gemini-1" else ["reasoning", "function_call"]
    assert [item.type for item in first.output] == expected
    thought, call = first.output[0], first.output[-1]
    if model == "resp-1":
        assert thought.encrypted_content  # the provider's proof, passed through
    history = [
        {"role": "user", "content": "Oslo"},
        *(item.model_dump(exclude_none=True) for item in first.output),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"},
    ]
    answer = client.responses.create(model=model, input=history, tools=[WEATHER], reasoning=reasoning, include=include)
    assert answer.output_text == "Tool said: sunny, 21 C"
    assert answer.status == "completed"

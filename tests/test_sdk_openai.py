"""The official openai SDK through ``relay serve`` (a subprocess) to ``relay mock-upstream`` (another one)."""

import json
from collections.abc import Iterator

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.conftest import KEY, openai_channel_toml, process
from tests.helpers import MOCK_ARGS

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
TIMEOUTS = "[channels.timeouts]\nidle = 0.5\nfirst_byte = 2\n"
NARROW = "sk-relay-narrow-key"
NARROW_KEY = f'[[keys]]\nname = "narrow"\nkey = "{NARROW}"\nmodels = ["fast"]\n'


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    """Relay's ``/v1`` URL: ``relay serve`` in front of ``relay mock-upstream``, both subprocesses."""
    with process(*MOCK_ARGS) as (_, upstream):
        path = tmp_path_factory.mktemp("sdk") / "relay.toml"
        toml = openai_channel_toml(f"http://{upstream}", extra=TIMEOUTS, key_models='["*"]') + NARROW_KEY
        path.write_text(toml)
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}/v1"


@pytest.fixture
def client(base_url) -> Iterator[OpenAI]:
    with OpenAI(api_key=KEY, base_url=base_url, max_retries=0, timeout=5) as client:
        yield client


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_create(client):
    completion = client.chat.completions.create(model="fast", messages=user("hello sdk"))
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    assert completion.model == "fast"
    assert completion.id.startswith("chatcmpl-")
    (choice,) = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello sdk"
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage.completion_tokens > 0 and usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_create_with_max_tokens_stops_for_length(client):
    completion = client.chat.completions.create(model="mock-1", messages=user("a" * 200), max_tokens=5)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 5


def test_stream_with_usage(client):
    stream = client.chat.completions.create(
        model="fast", messages=user("stream me"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert {c.model for c in chunks} == {"fast"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream me"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_tool_call(client):
    completion = client.chat.completions.create(model="mock-1", messages=user("Paris"), tools=[WEATHER])
    (choice,) = completion.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius", "days": 1}
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_tool_call_streamed_and_answered(client):
    stream = client.chat.completions.create(
        model="mock-1",
        messages=user("Oslo"),
        tools=[WEATHER],
        stream=True,
        stream_options={"include_usage": True},
    )
    ids, names, arguments, finish, usage = set(), set(), "", None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                assert call.index == 0
                if call.id:
                    ids.add(call.id)
                if call.function.name:
                    names.add(call.function.name)
                arguments += call.function.arguments or ""
    (call_id,) = ids
    assert names == {"get_weather"}
    assert json.loads(arguments) == {"city": "Oslo", "unit": "celsius", "days": 1}
    assert finish == "tool_calls"
    assert usage.completion_tokens > 0
    # The tool's result goes back; the model answers with text.
    messages = [
        *user("Oslo"),
        {
            "role": "assistant",
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21 C"},
    ]
    answer = client.chat.completions.create(model="mock-1", messages=messages, tools=[WEATHER])
    assert answer.choices[0].message.content == "Tool said: sunny, 21 C"
    assert answer.choices[0].finish_reason == "stop"


def test_stream_helper(client):
    with client.chat.completions.stream(model="fast", messages=user("helper")) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "Echo: helper"
    assert len(deltas) > 1
    assert final.choices[0].message.content == "Echo: helper"
    assert final.model == "fast"


def test_stream_helper_with_a_tool(client):
    with client.chat.completions.stream(model="mock-1", messages=user("Rome"), tools=[WEATHER]) as stream:
        done = [event for event in stream if event.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    (event,) = done
    assert event.name == "get_weather"
    assert json.loads(event.arguments)["city"] == "Rome"
    assert final.choices[0].finish_reason == "tool_calls"


def test_models(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["fast", "gpt-4o-mini"]  # the test key may use mock-* too, but patterns are not listed
    model = client.models.retrieve("fast")
    assert (model.id, model.object) == ("fast", "model")


def test_bad_key_is_authentication_error(base_url):
    with OpenAI(api_key="sk-not-a-relay-key", base_url=base_url, max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(model="fast", messages=user("x"))
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_unknown_model_is_not_found_error(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9", messages=user("x"))
    assert caught.value.code == "model_not_found"
    assert "gpt-9" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-9")


def test_model_outside_the_allow_list_is_permission_denied(base_url):
    with OpenAI(api_key=NARROW, base_url=base_url, max_retries=0) as narrow:
        assert narrow.chat.completions.create(model="fast", messages=user("x")).model == "fast"
        with pytest.raises(openai.PermissionDeniedError) as caught:
            narrow.chat.completions.create(model="mock-1", messages=user("x"))
        assert [m.id for m in narrow.models.list()] == ["fast"]
    assert caught.value.code == "model_not_allowed"


def test_upstream_errors_raise_the_matching_class(client):
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="mock-1", messages=user("mock:status=429"))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="mock-1", messages=user("mock:status=503"), stream=True)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="mock-1", messages=user("x"), max_tokens=0)
    assert caught.value.param == "max_tokens"


def test_mid_stream_failure_raises_in_the_sdk(client):
    stream = client.chat.completions.create(model="mock-1", messages=user("mock:stall_after=2"), stream=True)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 2
    assert "sent nothing for 0.5s" in caught.value.message


async def test_async_client(base_url):
    async with AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0, timeout=5) as client:
        completion = await client.chat.completions.create(model="fast", messages=user("async"))
        assert completion.choices[0].message.content == "Echo: async"
        stream = await client.chat.completions.create(model="fast", messages=user("async stream"), stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "Echo: async stream"
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="gpt-9", messages=user("x"))

"""The deterministic mock model: echo, tool calls from the schema, tool results, length, usage, directives."""

import json
import math

import httpx
import pytest
import trio

from relay.config import MockOptions
from relay.mock import model
from relay.mock import wire_chat as chat
from relay.mock.server import answer, play

OPTIONS = MockOptions(chunks=4)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
                "lat": {"type": "number"},
                "exact": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "nullable": {"type": ["null", "integer"]},
                "kind": {"const": "forecast"},
                "where": {"type": "object", "properties": {"zip": {"type": "string"}}},
            },
        },
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def request(text: str = "hello", **extra) -> dict:
    return {"model": "mock-1", "messages": [{"role": "user", "content": text}], **extra}


def stream_chunks(payload: dict, options: MockOptions = OPTIONS) -> list[dict]:
    reply = chat.reply(payload, options)
    frames = chat.chat_chunks(reply, payload["model"], chat.wants_usage(payload))
    assert frames[-1] == b"data: [DONE]\n\n"
    assert all(f.startswith(b"data: ") and f.endswith(b"\n\n") for f in frames)
    return [json.loads(f[6:]) for f in frames[:-1]]


# ---- determinism and echo ------------------------------------------------------------------------


def test_same_request_same_bytes():
    for payload in (request("same"), request("same", tools=[WEATHER]), request("same", max_tokens=2)):
        first = chat.reply(payload, OPTIONS)
        again = chat.reply(json.loads(json.dumps(payload)), OPTIONS)
        assert first == again
        assert chat.chat_completion(first, "mock-1") == chat.chat_completion(again, "mock-1")
        assert chat.chat_chunks(first, "mock-1", True) == chat.chat_chunks(again, "mock-1", True)


def test_another_request_another_id():
    assert chat.reply(request("one"), OPTIONS).id != chat.reply(request("two"), OPTIONS).id
    assert chat.reply(request("one"), OPTIONS).id != chat.reply(request("one", temperature=0), OPTIONS).id


def test_echo_of_the_last_user_message():
    payload = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "image_url"}, {"text": "two"}]},
        ],
    }
    reply = chat.reply(payload, OPTIONS)
    assert reply.text == "Echo: part one two"
    assert reply.finish_reason == "stop" and reply.tool_calls == ()
    body = json.loads(chat.chat_completion(reply, "alias"))
    assert body["model"] == "alias"
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Echo: part one two", "refusal": None}


def test_no_user_message_gets_a_greeting():
    reply = chat.reply({"model": "m", "messages": [{"role": "system", "content": "x"}]}, OPTIONS)
    assert reply.text == "Hello from the mock model."


# ---- tools ---------------------------------------------------------------------------------------


def test_tool_call_arguments_follow_the_schema():
    reply = chat.reply(request("Paris", tools=[WEATHER]), OPTIONS)
    assert reply.finish_reason == "tool_calls" and reply.text == ""
    (call,) = reply.tool_calls
    assert call.name == "get_weather"
    assert call.id.startswith("call_")
    assert json.loads(call.arguments) == {
        "city": "Paris",
        "unit": "celsius",
        "days": 1,
        "lat": 1.5,
        "exact": True,
        "tags": ["Paris"],
        "nullable": 1,
        "kind": "forecast",
        "where": {"zip": "Paris"},
    }
    body = json.loads(chat.chat_completion(reply, "m"))
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": call.arguments}}
    ]
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_choice():
    assert chat.reply(request(tools=[WEATHER, CLOCK]), OPTIONS).tool_calls[0].name == "get_weather"
    named = {"type": "function", "function": {"name": "get_time"}}
    (call,) = chat.reply(request(tools=[WEATHER, CLOCK], tool_choice=named), OPTIONS).tool_calls
    assert (call.name, call.arguments) == ("get_time", "{}")
    none = chat.reply(request("hi", tools=[WEATHER], tool_choice="none"), OPTIONS)
    assert none.tool_calls == () and none.text == "Echo: hi"


def test_parallel_calls_every_tool_with_distinct_ids():
    reply = chat.reply(request("mock:parallel", tools=[WEATHER, CLOCK]), OPTIONS)
    assert [c.name for c in reply.tool_calls] == ["get_weather", "get_time"]
    assert len({c.id for c in reply.tool_calls}) == 2


def test_tool_call_stream_opens_then_continues_with_arguments_only():
    chunks = stream_chunks(request("Paris", tools=[WEATHER, CLOCK], stream=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]]
    opening, *rest = calls
    assert opening == {
        "index": 0,
        "id": opening["id"],
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert rest and all(set(c) == {"index", "function"} and set(c["function"]) == {"arguments"} for c in rest)
    arguments = "".join(c["function"]["arguments"] for c in rest)
    assert json.loads(arguments)["city"] == "Paris"
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}


def test_tool_result_gets_text():
    payload = {
        "model": "m",
        "tools": [WEATHER],
        "messages": [
            {"role": "user", "content": "Paris?"},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "x"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
    }
    reply = chat.reply(payload, OPTIONS)
    assert reply.tool_calls == ()
    assert (reply.text, reply.finish_reason) == ("Tool said: sunny", "stop")


def test_odd_schemas_still_give_json():
    odd = {"type": "object", "properties": {"a": {"properties": [1]}, "b": {"enum": 5}, "c": {"type": {}}}}
    tool = {"type": "function", "function": {"name": "f", "parameters": odd}}
    (call,) = chat.reply(request("q", tools=[tool]), OPTIONS).tool_calls
    assert json.loads(call.arguments) == {"a": {}, "b": "q", "c": "q"}


# ---- length and usage ----------------------------------------------------------------------------


def test_max_tokens_cuts_with_finish_reason_length():
    reply = chat.reply(request("x" * 100, max_tokens=3), OPTIONS)
    assert reply.finish_reason == "length"
    assert reply.completion_tokens == 3
    assert reply.text == ("Echo: " + "x" * 100)[:12]
    assert chat.reply(request("x" * 100, max_completion_tokens=2, max_tokens=50), OPTIONS).completion_tokens == 2
    roomy = chat.reply(request("short", max_tokens=100), OPTIONS)
    assert roomy.finish_reason == "stop" and roomy.text == "Echo: short"


def test_usage_sums():
    payload = {
        "model": "m",
        "messages": [{"role": "system", "content": "abcdefgh"}, {"role": "user", "content": "hello world"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    reply = chat.reply(payload, OPTIONS)
    assert reply.prompt_tokens == (2 + 3) + (math.ceil(11 / 4) + 3)
    assert reply.completion_tokens == math.ceil(len("Echo: hello world") / 4)
    usage = chat.usage(reply)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    chunks = stream_chunks(payload)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == usage
    assert json.loads(chat.chat_completion(reply, "m"))["usage"] == usage
    assert "usage" not in chunks[0]
    assert "usage" not in stream_chunks({**payload, "stream_options": None})[-1]


def test_stream_pieces_join_to_the_text_in_the_asked_number_of_chunks():
    chunks = stream_chunks(request("twelve chars", stream=True))
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert len(pieces) == OPTIONS.chunks
    assert "".join(pieces) == "Echo: twelve chars"
    assert all(pieces)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len(stream_chunks(request("mock:chunks=7 and some more text", stream=True))) == 1 + 7 + 1


def test_split():
    assert model.split("abcdefg", 3) == ["abc", "de", "fg"]
    assert model.split("ab", 5) == ["a", "b"]
    assert model.split("", 3) == []


# ---- directives ----------------------------------------------------------------------------------


def test_directives_parsing():
    d = model.parse_directives(
        "mock:chunks=3 mock:delay_ms=20 mock:first_byte_ms=5 mock:status=429 "
        "mock:stall_after=2 mock:drop_after=4 mock:parallel"
    )
    assert d == model.Directives(
        chunks=3, delay_ms=20, first_byte_ms=5, status=429, stall_after=2, drop_after=4, parallel=True
    )
    assert model.parse_directives("no directives here") == model.Directives()
    assert model.parse_directives("mock:nonsense=3 mock:chunks mock:status=200 mock:status=99") == model.Directives()
    assert model.parse_directives("mock:delay_ms=99999999999999999999").delay_ms == model.MAX_DIRECTIVE
    assert model.parse_directives("mock:chunks=2 mock:chunks=5").chunks == 5


def test_directives_steer_the_reply_over_the_options():
    options = MockOptions(chunks=8, chunk_delay=0.5, first_byte_delay=0.25)
    default = chat.reply(request("x"), options)
    assert (default.chunks, default.chunk_delay, default.first_byte_delay) == (8, 0.5, 0.25)
    steered = chat.reply(request("mock:chunks=2 mock:delay_ms=10 mock:first_byte_ms=0"), options)
    assert (steered.chunks, steered.chunk_delay, steered.first_byte_delay) == (2, 0.01, 0.0)


def test_directives_come_from_the_last_user_message_only():
    payload = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "mock:status=500"},
            {"role": "assistant", "content": "mock:status=500"},
            {"role": "user", "content": "fine"},
        ],
    }
    assert chat.reply(payload, OPTIONS).directives.status is None


async def test_status_directive_answers_an_error():
    status, _, body = await answer(request("mock:status=503"), OPTIONS)
    assert status == 503
    assert json.loads(body)["error"]["message"] == "mock upstream error 503"


async def test_play_drops_and_stalls():
    frames = [b"a", b"b", b"c", b"d"]
    reply = chat.reply(request("mock:drop_after=2"), OPTIONS)
    assert [f async for f in play(reply, frames)] == [b"a", b"b"]
    reply = chat.reply(request("mock:stall_after=3"), OPTIONS)
    got = []
    with trio.move_on_after(0.2) as scope:
        async for frame in play(reply, frames):
            got.append(frame)
    assert scope.cancelled_caught and got == [b"a", b"b", b"c"]


# ---- what a real upstream would refuse -----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ([], None),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (request(tools={"a": 1}), "tools"),
        (request(tools=[{"type": "function"}]), "tools[0].function"),
        (request(tools=[{"function": {"name": "f", "parameters": "x"}}]), "tools[0].function.parameters"),
        (request(tool_choice="sometimes"), "tool_choice"),
        (request(max_tokens=0), "max_tokens"),
        (request(max_completion_tokens=True), "max_completion_tokens"),
        (request(stream="yes"), "stream"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0]"),
        ({"model": "m", "messages": []}, "messages"),
    ],
)
async def test_requests_a_real_upstream_refuses_get_400(payload, param):
    assert chat.problem(payload)[0] == param
    status, _, body = await answer(payload, OPTIONS)
    assert status == 400
    assert json.loads(body)["error"]["param"] == param


def test_a_good_request_has_no_problem():
    assert chat.problem(request("x", tools=[WEATHER], tool_choice="auto", max_tokens=5, stream=None)) is None


def test_bare_mock_upstream_streams(mock_upstream):
    payload = request("stream", stream=True)
    r = httpx.post(f"{mock_upstream}/v1/chat/completions", json=payload, timeout=5)
    assert r.status_code == 200, r.text
    assert r.text.endswith("data: [DONE]\n\n")

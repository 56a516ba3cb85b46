"""OpenAI Chat Completions answers: responses, streams, usage sniffing and upstream errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from relay.dialects import envelope, ir
from relay.dialects.common import derived_id
from relay.dialects.openai.chat.codec import (
    StreamDecoder,
    StreamEncoder,
    UsageReader,
    decode_error,
    decode_response,
    encode_response,
)
from relay.errors import RelayError

CLIENT = ir.Request(model="public-model", system=(), messages=())
CLIENT_USAGE = ir.Request(
    model="public-model", system=(), messages=(), extra={"stream_options": {"include_usage": True}}
)
USAGE_WIRE = {
    "prompt_tokens": 100,
    "completion_tokens": 30,
    "total_tokens": 130,
    "prompt_tokens_details": {"cached_tokens": 40},
    "completion_tokens_details": {"reasoning_tokens": 10},
}
USAGE = ir.Usage(input_tokens=100, output_tokens=30, cached_tokens=40, reasoning_tokens=10)


def completion(message: dict[str, Any], finish: str | None = "stop", **fields: Any) -> bytes:
    payload = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-up",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        **fields,
    }
    return orjson.dumps(payload)


def malformed(body: bytes) -> RelayError:
    with pytest.raises(RelayError) as caught:
        decode_response(body)
    assert caught.value.status == 502
    return caught.value


# ---- decode_response -----------------------------------------------------------------------------------


def test_decode_a_response_with_reasoning_text_calls_and_usage():
    resp = decode_response(
        completion(
            {
                "content": "Let me check.",
                "reasoning_content": "think",
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                    {"type": "function", "function": {"name": "g", "arguments": ""}},
                ],
            },
            "tool_calls",
            usage=USAGE_WIRE,
        )
    )
    assert resp == ir.Response(
        id="chatcmpl-abc",
        model="gpt-up",
        parts=(
            ir.Reasoning("think", dialect="openai_chat"),
            ir.Text("Let me check."),
            ir.ToolCall("call_1", "f", '{"a":1}'),
            ir.ToolCall(derived_id("chatcmpl-abc", 1, "call_"), "g", "{}"),
        ),
        finish_reason="tool_calls",
        usage=USAGE,
        created=1700000000,
    )


@pytest.mark.parametrize(
    ("finish", "calls", "expected"),
    [
        ("stop", True, "tool_calls"),
        (None, True, "tool_calls"),
        ("tool_calls", False, "stop"),
        ("length", True, "length"),  # cut arguments are never reported as tool calls
        ("content_filter", False, "content_filter"),
        ("function_call", True, "tool_calls"),
        ("weird", False, "stop"),
    ],
)
def test_finish_reason_follows_the_calls(finish, calls, expected):
    tool_calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}] if calls else None
    assert decode_response(completion({"content": "x", "tool_calls": tool_calls}, finish)).finish_reason == expected


def test_refusal_openrouter_reasoning_and_deepseek_cache():
    resp = decode_response(
        completion(
            {"content": None, "refusal": "I can't.", "reasoning": "hmm"},
            usage={"prompt_tokens": 9, "completion_tokens": 2, "prompt_cache_hit_tokens": 4},
        )
    )
    assert resp.parts == (ir.Reasoning("hmm", dialect="openai_chat"), ir.Text("I can't."))
    assert resp.usage == ir.Usage(input_tokens=9, output_tokens=2, cached_tokens=4)


def test_cache_writes_are_read_and_written():
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": {"cache_write_tokens": 5}}
    resp = decode_response(completion({"content": "x"}, usage=usage))
    assert resp.usage == ir.Usage(input_tokens=9, output_tokens=2, cache_write_tokens=5)
    wire = orjson.loads(encode_response(resp, CLIENT))["usage"]
    assert wire["prompt_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 5}


@pytest.mark.parametrize(
    "raw",
    [
        b"<html>bad gateway</html>",
        b"[]",
        b'{"id":"x","choices":[]}',
        b'{"id":"x","choices":["a"]}',
        b'{"id":"x","choices":[{"index":0,"finish_reason":"stop"}]}',
        completion({"content": None, "tool_calls": {"id": "c"}}),
        completion({"content": None, "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}),
    ],
)
def test_a_malformed_upstream_body_is_a_502(raw):
    malformed(raw)


def test_an_error_body_with_a_200_keeps_its_message():
    error = malformed(b'{"error":{"message":"model overloaded","type":"server_error","code":"overloaded"}}')
    assert (error.message, error.code) == ("model overloaded", "overloaded")


# ---- encode_response -----------------------------------------------------------------------------------


def test_encode_a_response_the_sdk_parses():
    resp = ir.Response(
        id="msg_01XYZ",
        model="claude-up",
        parts=(
            ir.Reasoning("plan", signature="sig", dialect="anthropic"),
            ir.Text("Hello "),
            ir.Text("world"),
            ir.ToolCall("toolu_1", "f", '{"x":"é"}'),
        ),
        finish_reason="tool_calls",
        usage=USAGE,
        created=1700000001,
    )
    data = encode_response(resp, CLIENT)
    assert orjson.loads(data) == {
        "id": "chatcmpl-01XYZ",
        "object": "chat.completion",
        "created": 1700000001,
        "model": "public-model",
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello world",
                    "refusal": None,
                    "tool_calls": [
                        {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"x":"é"}'}}
                    ],
                    "reasoning_content": "plan",
                    "reasoning_details": [  # Anthropic's signature, wrapped (docs/conversions/openai_chat.md)
                        {
                            "type": "reasoning.text",
                            "text": "plan",
                            "format": "relay-v1",
                            "index": 0,
                            "signature": envelope.wrap(envelope.Proof("anthropic", "reasoning", "sig")),
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": USAGE_WIRE,
    }
    parsed = ChatCompletion.model_validate_json(data)
    assert parsed.choices[0].message.tool_calls[0].function.arguments == '{"x":"é"}'
    assert parsed.usage.prompt_tokens_details.cached_tokens == 40
    assert parsed.usage.completion_tokens_details.reasoning_tokens == 10


def test_only_tool_calls_give_null_content_and_stop_becomes_tool_calls():
    resp = ir.Response(id="r", model="m", parts=(ir.ToolCall("c", "f", "{}"),), finish_reason="stop")
    payload = orjson.loads(encode_response(resp, CLIENT))
    assert payload["choices"][0]["message"]["content"] is None
    assert payload["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in payload and "reasoning_content" not in payload["choices"][0]["message"]
    ChatCompletion.model_validate(payload)
    empty = orjson.loads(encode_response(ir.Response(id="", model="m", parts=(), finish_reason="length"), CLIENT))
    assert (empty["id"], empty["choices"][0]["message"]["content"]) == ("chatcmpl-0", "")


def test_response_identity_round_trip():
    body = completion(
        {
            "content": "hi",
            "reasoning_content": "r",
            "tool_calls": [
                {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"b":2,"a":1}'}}
            ],
        },
        "tool_calls",
        usage=USAGE_WIRE,
    )
    resp = decode_response(body)
    again = decode_response(encode_response(resp, ir.Request(model="gpt-up", system=(), messages=())))
    assert again == resp


# ---- stream decoder ------------------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return {"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1700000002, "model": "gpt-up",
            "choices": choices, **fields}  # fmt: skip


def sse(*frames: dict[str, Any] | bytes) -> bytes:
    return b"".join(b"data: " + (f if isinstance(f, bytes) else orjson.dumps(f)) + b"\n\n" for f in frames)


UPSTREAM = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning_content": "Thinking ☃"}),
    chunk({"reasoning_content": " more"}),
    chunk({"content": "Héllo"}),
    chunk({"content": " 🌍"}),
    chunk(
        {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}]}
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":"'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'naïve"}'}}]}),
    chunk(
        {"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}
    ),
    chunk({}, "tool_calls"),
    chunk(None, usage=USAGE_WIRE),
    b"[DONE]",
)

UPSTREAM_EVENTS: list[ir.Event] = [
    ir.Start("chatcmpl-s1", "gpt-up", 1700000002),
    ir.ReasoningStart(0, dialect="openai_chat"),
    ir.ReasoningDelta(0, "Thinking ☃"),
    ir.ReasoningDelta(0, " more"),
    ir.BlockEnd(0),
    ir.TextStart(1),
    ir.TextDelta(1, "Héllo"),
    ir.TextDelta(1, " 🌍"),
    ir.BlockEnd(1),
    ir.ToolCallStart(2, "call_a", "f"),
    ir.ToolCallDelta(2, '{"q":"'),
    ir.ToolCallDelta(2, 'naïve"}'),
    ir.BlockEnd(2),
    ir.ToolCallStart(3, "call_b", "g"),
    ir.ToolCallDelta(3, "{}"),
    ir.BlockEnd(3),
    ir.Finish("tool_calls", usage=USAGE),
]


def decode_all(data: bytes, step: int | None = None) -> list[ir.Event]:
    decoder = StreamDecoder()
    events: list[ir.Event] = []
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.close()


def test_decode_a_stream():
    assert decode_all(UPSTREAM) == UPSTREAM_EVENTS


def test_decode_a_stream_split_at_every_byte():
    assert decode_all(UPSTREAM, step=1) == UPSTREAM_EVENTS


def test_decode_a_stream_split_once_anywhere():
    for cut in range(1, len(UPSTREAM)):
        decoder = StreamDecoder()
        events = decoder.feed(UPSTREAM[:cut]) + decoder.feed(UPSTREAM[cut:]) + decoder.close()
        assert events == UPSTREAM_EVENTS, cut


def test_events_come_out_as_soon_as_their_chunk_arrives():
    decoder = StreamDecoder()
    first = sse(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi"}))
    assert decoder.feed(first) == [
        ir.Start("chatcmpl-s1", "gpt-up", 1700000002),
        ir.TextStart(0),
        ir.TextDelta(0, "Hi"),
    ]
    partial = sse(chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a'}}]}))
    assert decoder.feed(partial) == [ir.BlockEnd(0), ir.ToolCallStart(1, "c", "f"), ir.ToolCallDelta(1, '{"a')]


@pytest.mark.parametrize(
    "data",
    [
        UPSTREAM[: UPSTREAM.index(b"data: [DONE]")],
        UPSTREAM[: UPSTREAM.index("naïve".encode()) + 3],
        sse(chunk({"content": "x"}))[:-1],
    ],
)
def test_a_stream_without_done_is_truncated(data):
    events = decode_all(data)
    assert events[-1] == ir.StreamError(502, "the upstream stream ended before data: [DONE]", code="upstream_truncated")
    assert not any(isinstance(e, ir.Finish) for e in events)


def test_done_without_its_blank_line_is_accepted():
    events = decode_all(UPSTREAM[:-2])
    assert events == UPSTREAM_EVENTS


def test_an_empty_stream_is_an_error():
    assert decode_all(b"data: [DONE]\n\n") == [
        ir.StreamError(502, "the upstream stream ended with no chunk", "upstream_empty")
    ]
    assert decode_all(b"")[-1].code == "upstream_truncated"


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            {"error": {"message": "Rate limited", "type": "rate_limit_error", "param": None, "code": "rate_limit"}},
            ir.StreamError(429, "Rate limited", "rate_limit"),
        ),
        (
            {"error": {"message": "boom", "type": "server_error", "code": None}},
            ir.StreamError(500, "boom", "server_error"),
        ),
        ({"error": {"message": "x", "code": 503}}, ir.StreamError(503, "x", None)),
        ({"error": "plain"}, ir.StreamError(502, "plain", None)),
        ({"error": None}, ir.StreamError(502, "the upstream stream failed", None)),
    ],
)
def test_a_mid_stream_error_frame_ends_the_stream(frame, expected):
    data = sse(chunk({"content": "partial"}), frame, chunk({"content": "ignored"}), b"[DONE]")
    events = decode_all(data)
    assert events[-2:] == [ir.BlockEnd(1 - 1), expected]
    assert ir.TextDelta(0, "ignored") not in events


@pytest.mark.parametrize("bad", [b"{not json", b"[1,2]", b'"text"'])
def test_a_malformed_chunk_ends_the_stream(bad):
    events = decode_all(sse(chunk({"content": "a"}), bad, chunk({"content": "b"}), b"[DONE]"))
    assert events[-1].status == 502 and events[-1].code == "upstream_malformed"
    assert ir.TextDelta(0, "b") not in events


def test_interleaved_parallel_arguments_end_the_stream():
    data = sse(
        chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        b"[DONE]",
    )
    events = decode_all(data)
    assert events[-1] == ir.StreamError(
        502, "the upstream interleaved the arguments of parallel tool calls", "upstream_interleaved"
    )
    # an empty fragment for a closed call is harmless
    ok = sse(
        chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ""}}]}),
        b"[DONE]",
    )
    assert decode_all(ok)[-1] == ir.Finish("tool_calls")


def test_tool_calls_without_index_or_id():
    data = sse(
        chunk({"tool_calls": [{"function": {"name": "f", "arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"function": {"arguments": "1}"}}]}),
        chunk({"tool_calls": [{"id": "call_2", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        b"[DONE]",
    )
    assert decode_all(data)[1:] == [
        ir.ToolCallStart(0, derived_id("chatcmpl-s1", 0, "call_"), "f"),
        ir.ToolCallDelta(0, '{"a":'),
        ir.ToolCallDelta(0, "1}"),
        ir.BlockEnd(0),
        ir.ToolCallStart(1, "call_2", "g"),
        ir.ToolCallDelta(1, "{}"),
        ir.BlockEnd(1),
        ir.Finish("tool_calls"),
    ]


def test_first_finish_reason_wins_and_usage_on_every_chunk():
    usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    data = sse(
        chunk({"content": "a"}, usage=None),
        chunk({"content": "b"}, "length", usage=usage),
        chunk({}, "stop", usage={**usage, "completion_tokens": 2}),
        chunk(None, usage=None),
        b"[DONE]",
    )
    assert decode_all(data)[-1] == ir.Finish("length", usage=ir.Usage(input_tokens=5, output_tokens=2))


def test_length_with_calls_is_length_and_content_with_finish_in_one_chunk():
    data = sse(
        chunk({"content": "done"}, "stop"),
        b"[DONE]",
    )
    assert decode_all(data) == [
        ir.Start("chatcmpl-s1", "gpt-up", 1700000002),
        ir.TextStart(0),
        ir.TextDelta(0, "done"),
        ir.BlockEnd(0),
        ir.Finish("stop"),
    ]
    cut = sse(
        chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x'}}]}, "length"),
        b"[DONE]",
    )
    assert decode_all(cut)[-1] == ir.Finish("length")


def test_comments_other_choices_and_frames_after_done_are_ignored():
    other = {**chunk({"content": "other"}), "choices": [{"index": 1, "delta": {"content": "other"}}]}
    data = b": keep-alive\n\n" + sse(chunk({"content": "a"}), other, b"[DONE]", chunk({"content": "late"}))
    assert decode_all(data) == [
        ir.Start("chatcmpl-s1", "gpt-up", 1700000002),
        ir.TextStart(0),
        ir.TextDelta(0, "a"),
        ir.BlockEnd(0),
        ir.Finish("stop"),
    ]


# ---- stream encoder ------------------------------------------------------------------------------------


def frames(data: bytes) -> list[bytes]:
    assert data.endswith(b"\n\n")
    parts = data[:-2].split(b"\n\n")
    assert all(p.startswith(b"data: ") for p in parts)
    return [p[6:] for p in parts]


def encode_all(events: list[ir.Event], req: ir.Request = CLIENT_USAGE) -> bytes:
    encoder = StreamEncoder(req)
    return b"".join(encoder.encode(e) for e in events) + encoder.finish()


def chunks_of(data: bytes) -> list[dict[str, Any]]:
    out = frames(data)
    assert out[-1] == b"[DONE]"
    return [orjson.loads(f) for f in out[:-1]]


def test_encode_a_stream_the_sdk_parses():
    chunks = chunks_of(encode_all(UPSTREAM_EVENTS))
    for payload in chunks:
        ChatCompletionChunk.model_validate(payload)
        assert (payload["id"], payload["model"], payload["created"]) == ("chatcmpl-s1", "public-model", 1700000002)
    deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "Thinking ☃"},
        {"reasoning_content": " more"},
        {"content": "Héllo"},
        {"content": " 🌍"},
        {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"q":"'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": 'naïve"}'}}]},
        {"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": ""}}]},
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
        {},
        None,
    ]
    assert [c["choices"][0]["finish_reason"] if c["choices"] else None for c in chunks][-2:] == ["tool_calls", None]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == USAGE_WIRE


def test_the_sdk_accumulates_the_encoded_stream():
    state = ChatCompletionStreamState()
    for payload in chunks_of(encode_all(UPSTREAM_EVENTS)):
        state.handle_chunk(ChatCompletionChunk.model_validate(payload))
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Héllo 🌍"
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls] == [
        ("call_a", "f", '{"q":"naïve"}'),
        ("call_b", "g", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage.prompt_tokens_details.cached_tokens == 40


def test_without_include_usage_there_is_no_usage_chunk_nor_usage_field():
    chunks = chunks_of(encode_all(UPSTREAM_EVENTS, CLIENT))
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_each_event_is_encoded_at_once():
    encoder = StreamEncoder(CLIENT_USAGE)
    assert frames(encoder.encode(ir.Start("msg_1", "up", 5)))[0].startswith(b'{"id":"chatcmpl-1",')
    assert encoder.encode(ir.TextStart(0)) == b""
    assert b'"content":"a"' in encoder.encode(ir.TextDelta(0, "a"))
    assert encoder.encode(ir.TextDelta(0, "")) == b""
    assert encoder.encode(ir.BlockEnd(0)) == b""
    done = encoder.encode(ir.Finish("stop"))
    assert done.endswith(b"data: [DONE]\n\n")
    assert chunks_of(done)[-1]["usage"]["total_tokens"] == 0  # asked for, unknown: zeros
    assert encoder.finish() == b""
    assert encoder.encode(ir.TextDelta(0, "late")) == b""


def test_parallel_calls_get_indexes_in_block_order_and_finish_consistently():
    events: list[ir.Event] = [ir.Start("x", "m")]
    for n, block in enumerate((3, 5, 8)):
        events += [ir.ToolCallStart(block, f"c{n}", "f"), ir.ToolCallDelta(block, "{}"), ir.BlockEnd(block)]
    chunks = chunks_of(encode_all([*events, ir.Finish("stop")], CLIENT))
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]]
    assert [c["index"] for c in calls] == [0, 0, 1, 1, 2, 2]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    cut = chunks_of(encode_all([*events, ir.Finish("length")], CLIENT))
    assert cut[-1]["choices"][0]["finish_reason"] == "length"
    no_calls = chunks_of(encode_all([ir.Start("x", "m"), ir.Finish("tool_calls")], CLIENT))
    assert no_calls[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_stream_error_is_the_last_frame():
    data = encode_all(
        [ir.Start("x", "m"), ir.TextDelta(0, "a"), ir.StreamError(529, "Overloaded", "overloaded"), ir.Finish("stop")]
    )
    last = frames(data)[-1]
    assert b"[DONE]" not in data
    assert orjson.loads(last) == {
        "error": {"message": "Overloaded", "type": "upstream_error", "param": None, "code": "overloaded"}
    }
    assert encode_all([ir.StreamError(429, "slow", None)]) == (
        b'data: {"error":{"message":"slow","type":"rate_limit_error","param":null,"code":null}}\n\n'
    )


def test_a_stream_that_neither_finished_nor_failed_ends_with_an_error_frame():
    data = encode_all([ir.Start("x", "m"), ir.TextDelta(0, "a")])
    assert b"[DONE]" not in data
    assert orjson.loads(frames(data)[-1])["error"]["code"] == "upstream_truncated"


def test_events_before_start_still_make_a_valid_stream_and_signatures_go_wrapped():
    data = encode_all(
        [ir.ReasoningStart(0, dialect="anthropic"), ir.ReasoningSignature(0, "sig"), ir.Finish("stop")], CLIENT
    )
    chunks = chunks_of(data)
    assert chunks[0]["id"] == "chatcmpl-0" and b'"sig"' not in data
    wrapped = envelope.wrap(envelope.Proof("anthropic", "reasoning", "sig"))
    entry = {"type": "reasoning.text", "text": "", "format": "relay-v1", "index": 0, "signature": wrapped}
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"reasoning_details": [entry]},
        {},
    ]


def test_encode_then_decode_gives_the_events_back():
    again = decode_all(encode_all(UPSTREAM_EVENTS))
    assert again == [ir.Start("chatcmpl-s1", "public-model", 1700000002), *UPSTREAM_EVENTS[1:]]
    assert encode_all(UPSTREAM_EVENTS) == encode_all(UPSTREAM_EVENTS)


# ---- usage sniffing ------------------------------------------------------------------------------------


def test_usage_reader_keeps_the_last_usage_that_is_not_null():
    reader = UsageReader()
    reader.feed(orjson.dumps(chunk({"content": 'the "usage" word'})))
    reader.feed(orjson.dumps(chunk({"content": "a"}, usage=None)))
    assert reader.usage is None
    reader.feed(orjson.dumps(chunk(None, usage=USAGE_WIRE)))
    assert reader.usage == USAGE
    reader.feed(orjson.dumps(chunk(None, usage=None)))
    reader.feed(b"[DONE]")
    reader.feed(b'{"usage": broken')
    assert reader.usage == USAGE
    reader.feed(completion({"content": "x"}, usage={"prompt_tokens": 1, "completion_tokens": 2}))
    assert reader.usage == ir.Usage(input_tokens=1, output_tokens=2)


def test_usage_reader_does_not_parse_data_without_usage(monkeypatch):
    import relay.dialects.openai.chat.response as module

    def explode(_: bytes) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(module.orjson, "loads", explode)
    reader = UsageReader()
    reader.feed(orjson.dumps(chunk({"content": "usage"})))
    reader.feed(b'{"id":"x","choices":[],"usage":null}')
    reader.feed(b'{"id":"x","choices":[], "usage": null}')
    reader.feed(orjson.dumps(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"usage":1}'}}]})))
    with pytest.raises(AssertionError):
        reader.feed(b'{"usage":{"prompt_tokens":1}}')


# ---- upstream errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            b'{"error":{"message":"Invalid value","type":"invalid_request_error","param":"messages[0]","code":"bad"}}',
            (400, "invalid_request", "Invalid value", "bad", "messages[0]"),
        ),
        (
            429,
            b'{"error":{"message":"quota","type":"insufficient_quota","param":null,"code":null}}',
            (429, "rate_limit", "quota", "insufficient_quota", None),
        ),
        (
            404,
            b'{"error":{"code":404,"message":"not found","status":"NOT_FOUND"}}',
            (404, "not_found", "not found", "NOT_FOUND", None),
        ),
        (503, b'[{"error":{"message":"busy"}}]', (503, "upstream", "busy", None, None)),
        (500, b'{"error":"oops"}', (500, "internal", "oops", None, None)),
        (502, b"<html>Bad Gateway</html>", (502, "upstream", "<html>Bad Gateway</html>", None, None)),
        (401, b"", (401, "authentication", "(empty body)", None, None)),
        (302, b'{"error":{"message":"moved"}}', (502, "upstream", "moved", None, None)),
    ],
)
def test_decode_error_keeps_status_message_code_and_param(status, body, expected):
    error = decode_error(status, body)
    assert (error.status, error.kind, error.message, error.code, error.param) == expected


# ---- the one-frame fast path ------------------------------------------------------------------------------

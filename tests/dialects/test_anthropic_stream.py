"""The Anthropic Messages stream codec: SSE bytes → IR events (decoder) and IR events → SSE bytes (encoder).

Encoder output is checked with the anthropic SDK: every event parses as ``RawMessageStreamEvent``, the SDK's
own accumulator (``accumulate_event``) builds the final Message from it, and the SDK client, reading our bytes
over a mock transport, streams them to the same final message (or raises on our error frames).
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import orjson
import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent

from relay.dialects import envelope, ir
from relay.dialects.anthropic import codec
from relay.dialects.anthropic.codec import StreamDecoder, StreamEncoder
from relay.http import sse

EVENTS = pydantic.TypeAdapter(RawMessageStreamEvent)


def frame(name: str, data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else orjson.dumps(data).decode()
    return f"event: {name}\ndata: {payload}\n\n".encode()


def delta(index: int, delta: dict[str, Any]) -> bytes:
    return frame("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def block_start(index: int, block: dict[str, Any]) -> bytes:
    return frame("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def block_stop(index: int) -> bytes:
    return frame("content_block_stop", {"type": "content_block_stop", "index": index})


START_USAGE = {
    "input_tokens": 25,
    "cache_creation_input_tokens": 10,
    "cache_read_input_tokens": 100,
    "output_tokens": 1,
}
MESSAGE_START = frame(
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_01XYZ",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": START_USAGE,
        },
    },
)
SIGNATURE = "EqQBCkYIBxgCKkB+/=="
FRAMES = [
    MESSAGE_START,
    b'event: ping\ndata: {"type": "ping"}\n\n',
    block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    delta(0, {"type": "thinking_delta", "thinking": "Let me think"}),
    delta(0, {"type": "signature_delta", "signature": SIGNATURE}),
    block_stop(0),
    block_start(1, {"type": "redacted_thinking", "data": "EmwKAhgB"}),
    block_stop(1),
    block_start(2, {"type": "text", "text": ""}),
    delta(2, {"type": "text_delta", "text": "Héllo 🌍"}),
    delta(
        2,
        {
            "type": "citations_delta",
            "citation": {
                "type": "char_location",
                "cited_text": "x",
                "document_index": 0,
                "document_title": None,
                "start_char_index": 0,
                "end_char_index": 1,
            },
        },
    ),
    b'event: ping\ndata: {"type": "ping"}\n\n',
    delta(2, {"type": "text_delta", "text": " world"}),
    block_stop(2),
    block_start(3, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
    delta(3, {"type": "input_json_delta", "partial_json": '{"query": "x"}'}),
    block_stop(3),
    block_start(4, {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {}}),
    delta(4, {"type": "input_json_delta", "partial_json": ""}),
    delta(4, {"type": "input_json_delta", "partial_json": '{"city": "Par'}),
    delta(4, {"type": "input_json_delta", "partial_json": 'ís", "days": 2}'}),
    block_stop(4),
    block_start(5, {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}}),
    block_stop(5),
    frame(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 89, "output_tokens_details": {"thinking_tokens": 12}},
        },
    ),
    frame("message_stop", {"type": "message_stop"}),
]
STREAM = b"".join(FRAMES)

FINAL_USAGE = ir.Usage(
    input_tokens=135, output_tokens=89, cached_tokens=100, cache_write_tokens=10, reasoning_tokens=12
)
EXPECTED: list[ir.Event] = [
    ir.Start("msg_01XYZ", "claude-sonnet-4-5-20250929", usage=ir.Usage(135, 1, 100, 10)),
    ir.ReasoningStart(0, dialect="anthropic"),
    ir.ReasoningDelta(0, "Let me think"),
    ir.ReasoningSignature(0, SIGNATURE),
    ir.BlockEnd(0),
    ir.ReasoningStart(1, dialect="anthropic", redacted="EmwKAhgB"),
    ir.BlockEnd(1),
    ir.TextStart(2),
    ir.TextDelta(2, "Héllo 🌍"),
    ir.TextDelta(2, " world"),
    ir.BlockEnd(2),
    ir.ToolCallStart(3, "toolu_01A", "get_weather"),
    ir.ToolCallDelta(3, '{"city": "Par'),
    ir.ToolCallDelta(3, 'ís", "days": 2}'),
    ir.BlockEnd(3),
    ir.ToolCallStart(4, "toolu_01B", "get_time"),
    ir.ToolCallDelta(4, "{}"),
    ir.BlockEnd(4),
    ir.Finish("tool_calls", usage=FINAL_USAGE),
]


def decode(*chunks: bytes) -> list[ir.Event]:
    decoder = StreamDecoder()
    events: list[ir.Event] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.close()


# ---- decoder ---------------------------------------------------------------------------------------------------


def test_decode_stream():
    assert decode(STREAM) == EXPECTED


def test_decode_crlf_and_frames_without_event_lines():
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert decode(crlf) == EXPECTED
    no_names = b"".join(line for line in STREAM.splitlines(keepends=True) if not line.startswith(b"event:"))
    assert decode(no_names) == EXPECTED


def test_decode_every_event_at_once():
    """Each frame's events come out when that frame is fed: nothing is held back (tool arguments included)."""
    decoder = StreamDecoder()
    got = [decoder.feed(f) for f in FRAMES]
    assert got[0] == EXPECTED[:1]
    assert got[FRAMES.index(delta(4, {"type": "input_json_delta", "partial_json": '{"city": "Par'}))] == [
        ir.ToolCallDelta(3, '{"city": "Par')
    ]
    assert got[FRAMES.index(delta(0, {"type": "signature_delta", "signature": SIGNATURE}))] == [
        ir.ReasoningSignature(0, SIGNATURE)
    ]
    assert [e for events in got for e in events] == EXPECTED
    assert decoder.close() == []


def test_decode_split_at_every_byte():
    for cut in range(1, len(STREAM)):
        assert decode(STREAM[:cut], STREAM[cut:]) == EXPECTED, cut


def test_decode_byte_by_byte():
    assert decode(*(STREAM[i : i + 1] for i in range(len(STREAM)))) == EXPECTED


def test_truncated_stream():
    for end in (len(MESSAGE_START), len(STREAM) - len(FRAMES[-1]), len(STREAM) - 5):
        events = decode(STREAM[:end])
        assert events[-1] == ir.StreamError(
            502, "the upstream stream ended before message_stop", code="upstream_truncated"
        )
        assert not any(isinstance(e, ir.Finish) for e in events)
    assert decode(b"") == [
        ir.StreamError(502, "the upstream stream ended before message_stop", code="upstream_truncated")
    ]


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("overloaded_error", 529),
        ("api_error", 500),
        ("rate_limit_error", 429),
        ("timeout_error", 504),
        ("invalid_request_error", 400),
        ("something_new", 502),
    ],
)
def test_error_event(kind, status):
    error = frame("error", {"type": "error", "error": {"type": kind, "message": "Overloaded"}})
    events = decode(MESSAGE_START, block_start(0, {"type": "text", "text": ""}), error, FRAMES[-1])
    assert events[-1] == ir.StreamError(status, "Overloaded", code=kind)
    assert len(events) == 3  # nothing after the error, and no truncation error at close


def test_malformed_events():
    (error,) = decode(b"event: message_start\ndata: {not json\n\n", STREAM)
    assert error == ir.StreamError(502, error.message, code="upstream_malformed")
    events = decode(MESSAGE_START, delta(7, {"type": "text_delta", "text": "lost"}), FRAMES[-1])
    assert events[-1].code == "upstream_malformed" and "7" in events[-1].message  # type: ignore[union-attr]
    events = decode(MESSAGE_START, frame("content_block_start", {"type": "content_block_start"}))
    assert events[-1].code == "upstream_malformed"  # type: ignore[union-attr]


def test_lenient_decoding():
    """No message_start, unclosed blocks, text in content_block_start, unknown events: still converted."""
    stream = [
        block_start(0, {"type": "text", "text": "Hi"}),
        frame("future_event", {"type": "future_event"}),
        block_start(1, {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}),
        frame(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 3},
            },
        ),
        frame("message_stop", {"type": "message_stop"}),
    ]
    assert decode(*stream) == [
        ir.Start("", ""),
        ir.TextStart(0),
        ir.TextDelta(0, "Hi"),
        ir.BlockEnd(0),
        ir.ToolCallStart(1, "t", "f"),
        ir.ToolCallDelta(1, '{"a":1}'),
        ir.BlockEnd(1),
        ir.Finish("tool_calls", usage=ir.Usage(output_tokens=3)),
    ]


@pytest.mark.parametrize(
    ("stop_reason", "calls", "finish"),
    [
        ("end_turn", False, "stop"),
        ("tool_use", False, "stop"),
        ("end_turn", True, "tool_calls"),
        ("max_tokens", True, "length"),
        ("refusal", False, "content_filter"),
        ("pause_turn", False, "stop"),
        (None, False, "stop"),
    ],
)
def test_decode_finish_reasons(stop_reason, calls, finish):
    blocks = [block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}), block_stop(0)] if calls else []
    end = frame(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": "END"},
            "usage": {"output_tokens": 4},
        },
    )
    events = decode(MESSAGE_START, *blocks, end, FRAMES[-1])
    assert events[-1] == ir.Finish(finish, usage=ir.Usage(135, 4, 100, 10), stop_sequence="END")


# ---- encoder ---------------------------------------------------------------------------------------------------


def parse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    parser = sse.Parser()
    frames = parser.feed(data)
    assert parser.close() == b""
    return [(f.name.decode(), orjson.loads(f.data)) for f in frames if f.name is not None and f.data is not None]


def sdk_final(data: bytes) -> Message:
    """Every event validated as the SDK's RawMessageStreamEvent, then accumulated by the SDK into a Message."""
    snapshot = None
    buffers: dict[int, bytes] = {}
    for name, payload in parse(data):
        assert name == payload["type"]
        if name == "ping":
            continue  # the SDK skips pings
        event = EVENTS.validate_python(payload)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
    assert snapshot is not None
    return Message.model_validate(snapshot.model_dump())


def sdk_stream(data: bytes) -> Message:
    """The anthropic SDK client reading ``data`` as a streamed answer, to its final message."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})

    client = anthropic.Anthropic(
        api_key="k",
        base_url="http://relay.test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )
    with client.messages.stream(model="public", max_tokens=5, messages=[{"role": "user", "content": "x"}]) as stream:
        return Message.model_validate(stream.get_final_message().model_dump())


def encode(events: list[ir.Event], model: str = "public", reasoning: ir.ReasoningConfig | None = None) -> list[bytes]:
    encoder = StreamEncoder(ir.Request(model=model, system=(), messages=(), reasoning=reasoning))
    return [encoder.encode(e) for e in events] + [encoder.finish()]


def test_encode_round_trip_of_an_anthropic_stream():
    frames = encode(EXPECTED)
    data = b"".join(frames)
    message = sdk_final(data)
    original = sdk_final(STREAM)
    assert message.model == "public" and original.model == "claude-sonnet-4-5-20250929"
    expected = original.model_dump()
    expected["model"] = "public"
    del expected["content"][3]  # the server_tool_use block has no IR slot
    assert expected["content"][2]["citations"]
    expected["content"][2]["citations"] = None  # nor have citations
    assert message.model_dump() == expected
    assert message.content[3].input == {"city": "París", "days": 2}  # type: ignore[union-attr]
    assert message.usage.input_tokens == 25 and message.usage.cache_read_input_tokens == 100
    assert message.usage.output_tokens == 89 and message.stop_reason == "tool_use"
    assert sdk_stream(data) == message
    assert decode(data) == [
        e if not isinstance(e, ir.Start) else ir.Start("msg_01XYZ", "public", usage=e.usage) for e in EXPECTED
    ]
    assert frames[-1] == b""  # finish() after Finish owes nothing


def test_encode_exact_bytes():
    events = [
        ir.Start("chatcmpl-42", "gpt-x", created=7),
        ir.TextStart(0),
        ir.TextDelta(0, 'Hi "there"\n'),
        ir.BlockEnd(0),
        ir.Finish("stop", usage=ir.Usage(input_tokens=10, output_tokens=3, cached_tokens=4)),
    ]
    assert b"".join(encode(events)) == (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_42","type":"message",'
        b'"role":"assistant","model":"public","content":[],"stop_reason":null,"stop_sequence":null,"usage":'
        b'{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":'
        b'{"type":"text","text":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":'
        b'{"type":"text_delta","text":"Hi \\"there\\"\\n"}}\n\n'
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
        b'"stop_sequence":null},"usage":{"input_tokens":6,"output_tokens":3,"cache_creation_input_tokens":0,'
        b'"cache_read_input_tokens":4}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )


def test_encode_from_another_dialect():
    """Dense indices, no empty text blocks, foreign reasoning shown with its proof wrapped (never in the clear)."""
    events: list[ir.Event] = [
        ir.Start("resp_9", "gpt-5", usage=ir.Usage(input_tokens=50, cached_tokens=20)),
        ir.ReasoningStart(0, dialect="gemini"),
        ir.ReasoningDelta(0, "thinking "),
        ir.ReasoningSignature(0, "GEMINI_SIG"),
        ir.ReasoningDelta(0, "more"),
        ir.BlockEnd(0),
        ir.ReasoningStart(1, dialect="openai_responses", redacted="ENCRYPTED"),
        ir.BlockEnd(1),
        ir.ReasoningStart(2, dialect="openai_responses", id="rs_1"),
        ir.ReasoningSignature(2, "ENC2"),
        ir.BlockEnd(2),
        ir.TextStart(3),
        ir.TextDelta(3, ""),
        ir.BlockEnd(3),
        ir.TextStart(5),
        ir.TextDelta(5, "Answer"),
        ir.ToolCallStart(6, "", "f", signature="GSIG", signature_dialect="gemini"),
        ir.ToolCallDelta(6, ""),
        ir.ToolCallDelta(6, '{"a":'),
        ir.ToolCallDelta(6, "[1,2]}"),
        ir.BlockEnd(6),
        ir.ToolCallStart(7, "call_2", "g"),
        ir.BlockEnd(7),
        ir.Finish("tool_calls", usage=ir.Usage(input_tokens=50, output_tokens=9, cached_tokens=20)),
    ]
    data = b"".join(encode(events, reasoning=ir.ReasoningConfig(budget_tokens=1024, include=True)))
    for secret in (b"GEMINI_SIG", b"ENCRYPTED", b"ENC2", b"GSIG"):
        assert secret not in data
    parsed = parse(data)
    starts = [p["index"] for n, p in parsed if n == "content_block_start"]
    stops = [p["index"] for n, p in parsed if n == "content_block_stop"]
    assert starts == stops == [0, 1, 2, 3, 4, 5, 6]
    message = sdk_final(data)
    assert message.id == "msg_9"
    blocks = [b.model_dump(exclude_none=True) for b in message.content]
    for block in blocks:
        if block["type"] == "thinking":
            block["signature"] = envelope.unwrap(block["signature"])
    call_id = codec.tool_id("", "msg_9", 6)
    assert blocks == [
        {
            "type": "thinking",
            "thinking": "thinking more",
            "signature": envelope.Proof("gemini", "reasoning", "GEMINI_SIG"),
        },
        {
            "type": "thinking",
            "thinking": "",
            "signature": envelope.Proof("openai_responses", "reasoning", redacted="ENCRYPTED"),
        },
        {
            "type": "thinking",
            "thinking": "",
            "signature": envelope.Proof("openai_responses", "reasoning", "ENC2", id="rs_1"),
        },
        {"type": "text", "text": "Answer"},
        {"type": "thinking", "thinking": "", "signature": envelope.Proof("gemini", "call", "GSIG", call=call_id)},
        {"type": "tool_use", "id": call_id, "name": "f", "input": {"a": [1, 2]}},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {}},
    ]
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.output_tokens) == (
        30,
        20,
        9,
    )
    assert sdk_stream(data) == message
    # a client that did not turn thinking on gets no thinking block for a call's proof
    unasked = sdk_final(b"".join(encode(events)))
    assert [b.type for b in unasked.content][-2:] == ["tool_use", "tool_use"]


def test_encode_anthropic_reasoning_keeps_signature_and_redacted():
    events: list[ir.Event] = [
        ir.Start("msg_1", "claude"),
        ir.ReasoningStart(0, dialect="anthropic"),
        ir.ReasoningSignature(0, SIGNATURE),  # display: omitted, a signature and no text
        ir.BlockEnd(0),
        ir.ReasoningStart(1, dialect="anthropic", redacted="EmwK"),
        ir.BlockEnd(1),
        ir.Finish("stop"),
    ]
    message = sdk_final(b"".join(encode(events)))
    assert [b.model_dump(exclude_none=True) for b in message.content] == [
        {"type": "thinking", "thinking": "", "signature": SIGNATURE},
        {"type": "redacted_thinking", "data": "EmwK"},
    ]


def test_encode_start_usage_and_finish_without_input():
    events: list[ir.Event] = [
        ir.Start(
            "msg_1", "claude", usage=ir.Usage(input_tokens=30, output_tokens=1, cached_tokens=10, cache_write_tokens=5)
        ),
        ir.TextStart(0),
        ir.TextDelta(0, "x"),
        ir.Finish("length", usage=ir.Usage(output_tokens=7, reasoning_tokens=2)),
    ]
    data = b"".join(encode(events))
    parsed = dict(parse(data))
    assert parsed["message_start"]["message"]["usage"] == {
        "input_tokens": 15,
        "output_tokens": 1,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 10,
    }
    assert parsed["message_delta"]["usage"] == {"output_tokens": 7, "output_tokens_details": {"thinking_tokens": 2}}
    message = sdk_final(data)
    assert (message.usage.input_tokens, message.usage.output_tokens, message.stop_reason) == (15, 7, "max_tokens")


@pytest.mark.parametrize(
    ("finish", "calls", "sequence", "stop_reason", "stop_sequence"),
    [
        ("stop", False, None, "end_turn", None),
        ("stop", False, "END", "stop_sequence", "END"),
        ("tool_calls", False, None, "end_turn", None),
        ("stop", True, None, "tool_use", None),
        ("length", True, None, "max_tokens", None),
        ("content_filter", False, None, "refusal", None),
    ],
)
def test_encode_stop_reasons(finish, calls, sequence, stop_reason, stop_sequence):
    blocks: list[ir.Event] = [ir.ToolCallStart(0, "t", "f"), ir.ToolCallDelta(0, "{}"), ir.BlockEnd(0)] if calls else []
    data = b"".join(encode([ir.Start("m", "m"), *blocks, ir.Finish(finish, stop_sequence=sequence)]))
    message = sdk_final(data)
    assert (message.stop_reason, message.stop_sequence) == (stop_reason, stop_sequence)


def test_encode_stream_error_and_truncation():
    events: list[ir.Event] = [
        ir.Start("msg_1", "claude"),
        ir.TextStart(0),
        ir.TextDelta(0, "partial"),
        ir.StreamError(529, "Overloaded", code="overloaded_error"),
        ir.TextDelta(0, "after"),
    ]
    frames = encode(events)
    assert (
        frames[3]
        == b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    assert frames[4:] == [b"", b""]
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk_stream(b"".join(frames))
    assert "Overloaded" in str(info.value)

    frames = encode([ir.Start("msg_1", "claude"), ir.TextStart(0), ir.TextDelta(0, "cut")])
    (name, payload) = parse(frames[-1])[0]
    assert name == "error" and payload["error"]["type"] == "api_error"
    assert b"".join(encode([ir.StreamError(429, "slow", code="rate_limit_exceeded")])) == (
        b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"slow"}}\n\n'
    )


def test_encode_without_start_and_without_block_starts():
    events: list[ir.Event] = [ir.TextDelta(0, "a"), ir.ReasoningDelta(1, "b"), ir.TextDelta(2, "c"), ir.Finish("stop")]
    message = sdk_final(b"".join(encode(events)))
    assert message.id == "msg_0"
    assert [b.type for b in message.content] == ["text", "thinking", "text"]


def test_encoder_is_deterministic_and_decode_encode_is_stable():
    first = b"".join(encode(EXPECTED))
    assert first == b"".join(encode(EXPECTED))
    again = b"".join(encode(decode(first)))
    assert again == first


def test_a_frame_completing_a_pending_one_goes_through_the_parser() -> None:
    frame = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    rest = b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    decoder = StreamDecoder()
    decoder.feed(b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"x"}}\n\n')
    decoder.feed(b'event: content_block_start\ndata: {"type":"content_block_start","index":0,')
    decoder.feed(b'"content_block":{"type":"text","text":""}}\n\n' + frame)
    assert decoder.feed(rest) == [ir.TextDelta(0, "Hi")]

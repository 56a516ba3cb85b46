"""OpenAI Responses streams: decoding an upstream's SSE to IR events, encoding IR events for a client."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import orjson
import pydantic
import pytest
from openai.types.responses import ResponseStreamEvent

from relay.dialects import envelope, ir
from relay.dialects.common import derived_id
from relay.dialects.openai.responses import codec as R
from relay.dialects.openai.responses.stream import StreamDecoder, StreamEncoder
from relay.http.sse import Parser

EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)
RID = "resp_68b0a1"
BASE = {
    "id": RID,
    "object": "response",
    "created_at": 1756400000,
    "model": "gpt-5-2025-08-07",
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "metadata": {},
    "temperature": 1.0,
    "top_p": 1.0,
}
USAGE = {
    "input_tokens": 120,
    "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 0},
    "output_tokens": 60,
    "output_tokens_details": {"reasoning_tokens": 20},
    "total_tokens": 180,
}


def frames(events: list[dict[str, Any]]) -> bytes:
    """Upstream SSE bytes, numbered as OpenAI numbers them; each event is first checked against the SDK."""
    out = []
    for n, event in enumerate(events):
        event = {**event, "sequence_number": n}
        EVENTS.validate_python(event)
        out.append(b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n")
    return b"".join(out)


def lifecycle(kind: str, status: str, output: list[Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "response": {**BASE, "status": status, "output": output or [], **fields}}


MESSAGE = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}
DONE_MESSAGE = {
    **MESSAGE,
    "status": "completed",
    "content": [{"type": "output_text", "text": "Héllo 🌍!", "annotations": [], "logprobs": []}],
}
CALL = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_1",
    "name": "weather",
    "arguments": "",
    "status": "in_progress",
}
DONE_CALL = {**CALL, "arguments": '{"city":"Zürich"}', "status": "completed"}
REASONING = {"type": "reasoning", "id": "rs_1", "summary": []}
DONE_REASONING = {
    **REASONING,
    "summary": [{"type": "summary_text", "text": "**A**"}, {"type": "summary_text", "text": "B"}],
    "encrypted_content": "gAAAAB+/==",
}
TEXT = {"item_id": "msg_1", "output_index": 1, "content_index": 0}
SUMMARY = {"item_id": "rs_1", "output_index": 0}


def openai_stream(terminal: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A stream as OpenAI sends it: reasoning (two summary parts), text, a function call, completed."""
    part0 = {"type": "summary_text", "text": ""}
    events = [
        lifecycle("response.created", "in_progress"),
        lifecycle("response.in_progress", "in_progress"),
        {"type": "response.output_item.added", "output_index": 0, "item": REASONING},
        {"type": "response.reasoning_summary_part.added", **SUMMARY, "summary_index": 0, "part": part0},
        {"type": "response.reasoning_summary_text.delta", **SUMMARY, "summary_index": 0, "delta": "**A**"},
        {"type": "response.reasoning_summary_text.done", **SUMMARY, "summary_index": 0, "text": "**A**"},
        {
            "type": "response.reasoning_summary_part.done",
            **SUMMARY,
            "summary_index": 0,
            "part": {**part0, "text": "**A**"},
        },
        {"type": "response.reasoning_summary_part.added", **SUMMARY, "summary_index": 1, "part": part0},
        {"type": "response.reasoning_summary_text.delta", **SUMMARY, "summary_index": 1, "delta": "B"},
        {"type": "response.reasoning_summary_text.done", **SUMMARY, "summary_index": 1, "text": "B"},
        {"type": "response.reasoning_summary_part.done", **SUMMARY, "summary_index": 1, "part": {**part0, "text": "B"}},
        {"type": "response.output_item.done", "output_index": 0, "item": DONE_REASONING},
        {"type": "response.output_item.added", "output_index": 1, "item": MESSAGE},
        {
            "type": "response.content_part.added",
            **TEXT,
            "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
        },
        {"type": "response.output_text.delta", **TEXT, "delta": "Héllo", "logprobs": []},
        {"type": "response.output_text.delta", **TEXT, "delta": " 🌍!", "logprobs": []},
        {"type": "response.output_text.done", **TEXT, "text": "Héllo 🌍!", "logprobs": []},
        {"type": "response.content_part.done", **TEXT, "part": DONE_MESSAGE["content"][0]},
        {"type": "response.output_item.done", "output_index": 1, "item": DONE_MESSAGE},
        {"type": "response.output_item.added", "output_index": 2, "item": CALL},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2, "delta": '{"city":'},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2, "delta": '"Zürich"}'},
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc_1",
            "output_index": 2,
            "arguments": '{"city":"Zürich"}',
        },
        {"type": "response.output_item.done", "output_index": 2, "item": DONE_CALL},
    ]
    output = [DONE_REASONING, DONE_MESSAGE, DONE_CALL]
    events.append(terminal or lifecycle("response.completed", "completed", output, usage=USAGE))
    return events


EXPECTED = [
    ir.Start(RID, "gpt-5-2025-08-07", created=1756400000),
    ir.ReasoningStart(0, dialect="openai_responses", id="rs_1"),
    ir.ReasoningDelta(0, "**A**"),
    ir.ReasoningDelta(0, "\n\n"),
    ir.ReasoningDelta(0, "B"),
    ir.ReasoningSignature(0, "gAAAAB+/=="),
    ir.BlockEnd(0),
    ir.TextStart(1),
    ir.TextDelta(1, "Héllo"),
    ir.TextDelta(1, " 🌍!"),
    ir.BlockEnd(1),
    ir.ToolCallStart(2, "call_1", "weather", signature="fc_1", signature_dialect="openai_responses"),
    ir.ToolCallDelta(2, '{"city":'),
    ir.ToolCallDelta(2, '"Zürich"}'),
    ir.BlockEnd(2),
    ir.Finish("tool_calls", ir.Usage(120, 60, cached_tokens=100, reasoning_tokens=20)),
]


def decode_all(data: bytes) -> list[ir.Event]:
    decoder = StreamDecoder()
    return decoder.feed(data) + decoder.close()


def merged(events: list[ir.Event]) -> list[ir.Event]:
    """Consecutive deltas of one block joined (how a stream is split must not change what it says)."""
    out: list[ir.Event] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, ir.TextDelta) and isinstance(last, ir.TextDelta) and last.index == event.index:
            out[-1] = ir.TextDelta(event.index, last.text + event.text)
        elif isinstance(event, ir.ToolCallDelta) and isinstance(last, ir.ToolCallDelta) and last.index == event.index:
            out[-1] = ir.ToolCallDelta(event.index, last.arguments + event.arguments)
        elif isinstance(event, ir.ReasoningDelta) and isinstance(last, ir.ReasoningDelta) and last.index == event.index:
            out[-1] = ir.ReasoningDelta(event.index, last.text + event.text)
        else:
            out.append(event)
    return out


# ---- decoder --------------------------------------------------------------------------------------------


def test_decode_openai_stream() -> None:
    assert decode_all(frames(openai_stream())) == EXPECTED


def test_decode_split_at_every_byte() -> None:
    data = frames(openai_stream())
    for cut in range(1, len(data)):
        decoder = StreamDecoder()
        events = decoder.feed(data[:cut]) + decoder.feed(data[cut:]) + decoder.close()
        assert events == EXPECTED, cut


def test_decode_byte_by_byte_with_crlf() -> None:
    data = frames(openai_stream()).replace(b"\n", b"\r\n")
    decoder = StreamDecoder()
    events: list[ir.Event] = []
    for i in range(len(data)):
        events += decoder.feed(data[i : i + 1])
    assert events + decoder.close() == EXPECTED


def test_events_come_out_as_soon_as_their_frame_is_whole() -> None:
    data = frames(openai_stream())
    decoder = StreamDecoder()
    head, _, _ = data.partition(b'"delta":" \xf0\x9f\x8c\x8d!"')
    events = decoder.feed(head)
    assert events[-1] == ir.TextDelta(1, "Héllo")


@pytest.mark.parametrize("cut", [0, 1, 5, 12, 20, 24])
def test_truncated_stream(cut: int) -> None:
    events = openai_stream()[:cut]
    out = decode_all(frames(events) + b"event: response.output_text.delta\ndata: {")
    assert out[-1] == ir.StreamError(502, "upstream stream ended before response.completed", code="upstream_truncated")
    assert not any(isinstance(e, ir.Finish) for e in out)


def test_close_after_the_terminal_event_and_events_after_it_are_ignored() -> None:
    decoder = StreamDecoder()
    data = frames(openai_stream())
    events = decoder.feed(data)
    assert decoder.feed(b'event: error\ndata: {"type":"error","message":"late"}\n\n') == []
    assert decoder.close() == []
    assert events == EXPECTED


@pytest.mark.parametrize(
    ("details", "reason"),
    [({"reason": "max_output_tokens"}, "length"), ({"reason": "content_filter"}, "content_filter"), (None, "length")],
)
def test_incomplete_streams(details: Any, reason: str) -> None:
    terminal = lifecycle("response.incomplete", "incomplete", [], incomplete_details=details, usage=USAGE)
    events = decode_all(frames(openai_stream(terminal)))
    assert events[-1] == ir.Finish(reason, EXPECTED[-1].usage)  # type: ignore[arg-type, union-attr]


def test_arguments_cut_by_length_are_not_tool_calls() -> None:
    events = [
        lifecycle("response.created", "in_progress"),
        {"type": "response.output_item.added", "output_index": 0, "item": CALL},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 0, "delta": '{"ci'},
        lifecycle("response.incomplete", "incomplete", [], incomplete_details={"reason": "max_output_tokens"}),
    ]
    out = decode_all(frames(events))
    assert out[-2:] == [ir.BlockEnd(0), ir.Finish("length")]


@pytest.mark.parametrize(
    ("code", "status"), [("rate_limit_exceeded", 429), ("server_error", 502), ("invalid_prompt", 400)]
)
def test_failed_response(code: str, status: int) -> None:
    terminal = lifecycle("response.failed", "failed", error={"code": code, "message": "it broke"})
    out = decode_all(frames(openai_stream(terminal)))
    assert out[-1] == ir.StreamError(status, "it broke", code=code)
    assert not any(isinstance(e, ir.Finish) for e in out)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"type": "error", "code": "server_error", "message": "boom", "param": None},
            ir.StreamError(502, "boom", code="server_error"),
        ),
        (
            {"type": "error", "error": {"type": "too_many_requests", "code": "too_many_requests", "message": "slow"}},
            ir.StreamError(429, "slow", code="too_many_requests"),
        ),
        ({"type": "error", "message": "plain"}, ir.StreamError(502, "plain")),
        (
            {"type": "error", "error": {"type": "timeout_error", "code": None, "message": "late"}},
            ir.StreamError(504, "late", code="timeout_error"),
        ),
    ],
)
def test_error_events(payload: dict[str, Any], expected: ir.StreamError) -> None:
    data = frames(openai_stream()[:14])[:-1] + b"\nevent: error\ndata: " + orjson.dumps(payload) + b"\n\n"
    out = decode_all(data)
    assert out[-1] == expected
    assert out.count(expected) == 1


def test_error_before_anything_else() -> None:
    out = decode_all(b'event: error\ndata: {"type":"error","code":"rate_limit_exceeded","message":"m"}\n\n')
    assert out == [ir.StreamError(429, "m", code="rate_limit_exceeded")]


@pytest.mark.parametrize("data", [b"data: {nope\n\n", b"data: [1]\n\n"])
def test_invalid_json(data: bytes) -> None:
    out = decode_all(frames(openai_stream()[:3]) + data + frames(openai_stream()[3:]))
    assert out[-1] == ir.StreamError(
        502, "upstream sent a stream event that is not a JSON object", code="upstream_invalid"
    )


def test_done_events_only() -> None:
    """An upstream that sends no deltas: the done events and finished items carry the text and arguments."""
    text = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    args = {"item_id": "fc_1", "output_index": 1}
    late_call = {**DONE_CALL, "id": "fc_2", "call_id": "c2", "arguments": ""}
    events = [
        lifecycle("response.created", "in_progress"),
        {"type": "response.output_item.added", "output_index": 0, "item": MESSAGE},
        {"type": "response.output_text.done", **text, "text": "hi", "logprobs": []},
        {"type": "response.output_item.done", "output_index": 0, "item": DONE_MESSAGE},
        {"type": "response.output_item.added", "output_index": 1, "item": CALL},
        {"type": "response.function_call_arguments.done", **args, "arguments": "{}"},
        {"type": "response.output_item.done", "output_index": 1, "item": DONE_CALL},
        {"type": "response.output_item.done", "output_index": 2, "item": DONE_REASONING},
        {"type": "response.output_item.done", "output_index": 3, "item": late_call},
        lifecycle("response.completed", "completed", usage=None),
    ]
    assert decode_all(frames(events)) == [
        ir.Start(RID, "gpt-5-2025-08-07", created=1756400000),
        ir.TextStart(0),
        ir.TextDelta(0, "hi"),
        ir.BlockEnd(0),
        ir.ToolCallStart(1, "call_1", "weather", "fc_1", "openai_responses"),
        ir.ToolCallDelta(1, "{}"),
        ir.BlockEnd(1),
        ir.ReasoningStart(2, dialect="openai_responses", id="rs_1"),
        ir.ReasoningDelta(2, "**A**\n\nB"),
        ir.ReasoningSignature(2, "gAAAAB+/=="),
        ir.BlockEnd(2),
        ir.ToolCallStart(3, "c2", "weather", "fc_2", "openai_responses"),
        ir.ToolCallDelta(3, "{}"),
        ir.BlockEnd(3),
        ir.Finish("tool_calls"),
    ]


def test_raw_reasoning_text_and_refusals() -> None:
    refusal = {"item_id": "msg_1", "output_index": 1, "content_index": 0}
    raw = {"item_id": "rs_1", "output_index": 0, "content_index": 0}
    done_reasoning = {**REASONING, "content": [{"type": "reasoning_text", "text": "raw"}]}
    events = [
        lifecycle("response.created", "in_progress"),
        {"type": "response.output_item.added", "output_index": 0, "item": REASONING},
        {"type": "response.reasoning_text.delta", **raw, "delta": "raw"},
        {"type": "response.output_item.done", "output_index": 0, "item": done_reasoning},
        {"type": "response.output_item.added", "output_index": 1, "item": MESSAGE},
        {"type": "response.content_part.added", **refusal, "part": {"type": "refusal", "refusal": ""}},
        {"type": "response.refusal.delta", **refusal, "delta": "No."},
        {"type": "response.content_part.done", **refusal, "part": {"type": "refusal", "refusal": "No."}},
        lifecycle("response.completed", "completed"),
    ]
    assert decode_all(frames(events))[1:] == [
        ir.ReasoningStart(0, dialect="openai_responses", id="rs_1"),
        ir.ReasoningDelta(0, "raw"),
        ir.BlockEnd(0),
        ir.TextStart(1),
        ir.TextDelta(1, "No."),
        ir.BlockEnd(1),
        ir.Finish("stop"),
    ]


def test_builtin_tool_items_are_skipped_and_two_text_parts_are_two_blocks() -> None:
    search = {
        "type": "web_search_call",
        "id": "ws_1",
        "status": "in_progress",
        "action": {"type": "search", "query": "q"},
    }
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    events = [
        lifecycle("response.created", "in_progress"),
        {"type": "response.output_item.added", "output_index": 0, "item": search},
        {"type": "response.web_search_call.in_progress", "item_id": "ws_1", "output_index": 0},
        {"type": "response.output_item.done", "output_index": 0, "item": {**search, "status": "completed"}},
        {"type": "response.output_item.added", "output_index": 1, "item": MESSAGE},
        {"type": "response.content_part.added", **TEXT, "part": part},
        {"type": "response.output_text.delta", **TEXT, "delta": "a", "logprobs": []},
        {"type": "response.content_part.done", **TEXT, "part": {**part, "text": "a"}},
        {"type": "response.content_part.added", **TEXT, "content_index": 1, "part": part},
        {"type": "response.output_text.delta", **TEXT, "content_index": 1, "delta": "b", "logprobs": []},
        {"type": "response.output_item.done", "output_index": 1, "item": DONE_MESSAGE},
        lifecycle("response.completed", "completed"),
    ]
    assert decode_all(frames(events))[1:] == [
        ir.TextStart(0),
        ir.TextDelta(0, "a"),
        ir.BlockEnd(0),
        ir.TextStart(1),
        ir.TextDelta(1, "b"),
        ir.BlockEnd(1),
        ir.Finish("stop"),
    ]


def test_interleaved_items_fail_the_stream() -> None:
    second = {**CALL, "id": "fc_2", "call_id": "call_2"}
    events = [
        lifecycle("response.created", "in_progress"),
        {"type": "response.output_item.added", "output_index": 0, "item": CALL},
        {"type": "response.output_item.added", "output_index": 1, "item": second},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 0, "delta": "{}"},
        lifecycle("response.completed", "completed"),
    ]
    out = decode_all(frames(events))
    assert out[-1] == ir.StreamError(
        502, "upstream interleaved the deltas of its output items", code="upstream_interleaved"
    )


def test_stream_without_created_still_starts_and_unknown_events_are_skipped() -> None:
    data = (
        b": keep-alive\n\n"
        b'data: {"type":"response.something_new","x":1}\n\n'
        b'data: {"type":"response.output_item.added","output_index":0,"item":{"type":"message","id":"m"}}\n\n'
        b'data: {"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":"x"}\n\n'
        b"data: [DONE]\n\n"
        b'data: {"type":"response.completed","response":{"id":"r","model":"m","status":"completed","output":[]}}\n\n'
    )
    assert decode_all(data) == [
        ir.Start("", ""),
        ir.TextStart(0),
        ir.TextDelta(0, "x"),
        ir.BlockEnd(0),
        ir.Finish("stop"),
    ]


# ---- encoder --------------------------------------------------------------------------------------------


def client_request(**fields: Any) -> ir.Request:
    return R.decode_request(orjson.dumps({"model": "client-model", "input": "hi", "stream": True, **fields}))


def parse(data: bytes) -> list[dict[str, Any]]:
    """The encoder's frames: each one a valid SDK stream event, named by its ``event:`` line."""
    out = []
    parser = Parser()
    for sse in parser.feed(data):
        assert sse.data is not None and sse.name is not None
        event = orjson.loads(sse.data)
        assert sse.name.decode() == event["type"]
        EVENTS.validate_python(event)
        out.append(event)
    assert parser.close() == b""
    return out


IR_STREAM: list[ir.Event] = [
    ir.Start("msg_01ABC", "claude-x", created=1700000000),
    ir.ReasoningStart(0, dialect="anthropic"),
    ir.ReasoningDelta(0, "Let me "),
    ir.ReasoningDelta(0, "think."),
    ir.ReasoningSignature(0, "anthropic-signature"),
    ir.BlockEnd(0),
    ir.ReasoningStart(1, dialect="anthropic", redacted="opaque"),
    ir.BlockEnd(1),
    ir.TextStart(2),
    ir.TextDelta(2, "Hé"),
    ir.TextDelta(2, "llo"),
    ir.BlockEnd(2),
    ir.TextStart(3),
    ir.TextDelta(3, " again"),
    ir.BlockEnd(3),
    ir.ToolCallStart(4, "toolu_1", "weather"),
    ir.ToolCallDelta(4, '{"city"'),
    ir.ToolCallDelta(4, ':"Paris"}'),
    ir.BlockEnd(4),
    ir.ToolCallStart(5, "toolu_2", "time"),
    ir.BlockEnd(5),
    ir.Finish("tool_calls", ir.Usage(50, 30, cached_tokens=10, reasoning_tokens=5)),
]


def encode_all(events: list[ir.Event], req: ir.Request | None = None) -> bytes:
    encoder = StreamEncoder(req or client_request())
    return b"".join(encoder.encode(e) for e in events) + encoder.finish()


def test_encode_grammar() -> None:
    data = encode_all(IR_STREAM)
    events = parse(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert b"anthropic-signature" not in data and b"opaque" not in data  # only wrapped, in encrypted_content
    rid = "resp_01ABC"
    rs, rs2, msg, fc1, fc2 = (
        derived_id(rid, i, p) for i, p in ((0, "rs_"), (1, "rs_"), (2, "msg_"), (3, "fc_"), (4, "fc_"))
    )
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",  # the redacted thinking: a whole item
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    created = events[0]["response"]
    assert (created["id"], created["model"], created["status"], created["output"]) == (
        rid,
        "client-model",
        "in_progress",
        [],
    )
    assert created["created_at"] == 1700000000
    assert events[15] == {
        "type": "response.output_text.done",
        "sequence_number": 15,
        "item_id": msg,
        "output_index": 2,
        "content_index": 0,
        "text": "Héllo",
        "logprobs": [],
    }
    assert events[18]["content_index"] == 1 and events[18]["delta"] == " again"
    assert events[25]["arguments"] == '{"city":"Paris"}' and events[25]["item_id"] == fc1
    assert events[28]["delta"] == "{}" and events[29]["arguments"] == "{}"
    final = events[-1]["response"]
    assert final["status"] == "completed"
    signed = envelope.Proof("anthropic", "reasoning", "anthropic-signature", text="Let me think.")
    assert final["output"] == [
        {
            "type": "reasoning",
            "id": rs,
            "summary": [{"type": "summary_text", "text": "Let me think."}],
            "encrypted_content": envelope.wrap(signed),
        },
        {
            "type": "reasoning",
            "id": rs2,
            "summary": [],
            "encrypted_content": envelope.wrap(envelope.Proof("anthropic", "reasoning", redacted="opaque")),
        },
        {
            "type": "message",
            "id": msg,
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Héllo", "annotations": [], "logprobs": []},
                {"type": "output_text", "text": " again", "annotations": [], "logprobs": []},
            ],
        },
        R.call_item("toolu_1", fc1, "weather", '{"city":"Paris"}'),
        R.call_item("toolu_2", fc2, "time", "{}"),
    ]
    assert final["usage"] == {
        "input_tokens": 50,
        "input_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 0},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 5},
        "total_tokens": 80,
    }


def test_encode_matches_the_whole_response_encoding() -> None:
    """A stream's final response is what ``encode_response`` gives for the same answer."""
    events = parse(encode_all(IR_STREAM))
    resp = ir.Response(
        id="msg_01ABC",
        model="claude-x",
        parts=(
            ir.Reasoning("Let me think.", signature="anthropic-signature", dialect="anthropic"),
            ir.Reasoning(redacted="opaque", dialect="anthropic"),
            ir.Text("Héllo"),
            ir.Text(" again"),
            ir.ToolCall("toolu_1", "weather", '{"city":"Paris"}'),
            ir.ToolCall("toolu_2", "time", "{}"),
        ),
        finish_reason="tool_calls",
        usage=ir.Usage(50, 30, cached_tokens=10, reasoning_tokens=5),
        created=1700000000,
    )
    assert events[-1]["response"] == orjson.loads(R.encode_response(resp, client_request()))


def test_every_added_has_its_done() -> None:
    for events in (parse(encode_all(IR_STREAM)), parse(encode_all(IR_STREAM[:14]))):
        opened: list[tuple[str, Any]] = []
        for event in events:
            kind = event["type"]
            key = (event.get("output_index"), event.get("content_index"), event.get("summary_index"))
            if kind.endswith(".added"):
                opened.append((kind[: -len(".added")], key))
            elif kind.endswith(".done") and kind.rsplit(".", 1)[0] in {k for k, _ in opened}:
                assert opened.pop() == (kind[: -len(".done")], key)
        assert opened == []


def test_deltas_go_out_at_once() -> None:
    encoder = StreamEncoder(client_request())
    encoder.encode(IR_STREAM[0])
    encoder.encode(ir.TextStart(0))
    out = encoder.encode(ir.TextDelta(0, 'a "quoted" \u2028 text'))
    (event,) = parse(out)
    assert event["delta"] == 'a "quoted" \u2028 text' and event["sequence_number"] == 4
    encoder.encode(ir.BlockEnd(0))
    encoder.encode(ir.ToolCallStart(1, "c", "f"))
    (event,) = parse(encoder.encode(ir.ToolCallDelta(1, '{"a":')))
    assert event["delta"] == '{"a":'
    assert encoder.encode(ir.ToolCallDelta(1, "")) == b""


@pytest.mark.parametrize(
    ("reason", "kind", "details"),
    [
        ("length", "response.incomplete", {"reason": "max_output_tokens"}),
        ("content_filter", "response.incomplete", {"reason": "content_filter"}),
        ("stop", "response.completed", None),
    ],
)
def test_encode_finish_reasons(reason: ir.FinishReason, kind: str, details: Any) -> None:
    events = parse(encode_all([ir.Start("r", "m"), ir.TextStart(0), ir.TextDelta(0, "x"), ir.Finish(reason)]))
    assert events[-1]["type"] == kind
    assert events[-1]["response"]["incomplete_details"] == details
    assert events[-1]["response"]["usage"] is None
    assert events[-2]["type"] == "response.output_item.done"  # the open text part and message were closed


def test_own_reasoning_keeps_its_id_and_encrypted_content() -> None:
    events = [
        ir.Start("resp_1", "gpt-5"),
        ir.ReasoningStart(0, dialect="openai_responses", id="rs_own"),
        ir.ReasoningSignature(0, "gAAA+/=="),
        ir.BlockEnd(0),
        ir.ToolCallStart(1, "call_1", "f", signature="fc_own", signature_dialect="openai_responses"),
        ir.ToolCallDelta(1, "{}"),
        ir.BlockEnd(1),
        ir.Finish("tool_calls"),
    ]
    final = parse(encode_all(events))[-1]["response"]
    assert final["output"] == [
        {"type": "reasoning", "id": "rs_own", "summary": [], "encrypted_content": "gAAA+/=="},
        R.call_item("call_1", "fc_own", "f", "{}"),
    ]


def body_of(events: list[ir.Event]) -> dict[str, Any]:
    """The same answer through ``encode_response``: what a non-streaming client gets."""
    parts: list[Any] = []
    for event in events:
        if isinstance(event, ir.TextDelta):
            parts.append(ir.Text(event.text))
        elif isinstance(event, ir.ReasoningStart):
            parts.append(ir.Reasoning(dialect=event.dialect, redacted=event.redacted))
        elif isinstance(event, ir.ReasoningDelta):
            parts[-1] = ir.Reasoning(parts[-1].text + event.text, dialect=parts[-1].dialect)
        elif isinstance(event, ir.ReasoningSignature):
            last = parts[-1]
            parts[-1] = ir.Reasoning(last.text, signature=event.signature, dialect=last.dialect)
    finish = events[-1]
    assert isinstance(finish, ir.Finish)
    resp = ir.Response(id="r1", model="m", parts=tuple(parts), finish_reason=finish.reason)
    return orjson.loads(R.encode_response(resp, client_request()))


GEMINI_TRAILING_SIGNATURE: list[ir.Event] = [
    ir.Start("r1", "m"),
    ir.ReasoningStart(0, dialect="gemini"),
    ir.ReasoningDelta(0, "thinking"),
    ir.BlockEnd(0),
    ir.TextStart(1),
    ir.TextDelta(1, "The answer"),
    ir.BlockEnd(1),
    ir.ReasoningStart(2, dialect="gemini"),  # Gemini's thoughtSignature on the last, empty, text part
    ir.ReasoningSignature(2, "Z2VtaW5pLXNpZ25hdHVyZQ=="),
    ir.BlockEnd(2),
    ir.Finish("stop"),
]


def test_reasoning_with_only_another_dialects_proof_is_an_item_that_carries_it() -> None:
    """A foreign signature alone (Gemini's trailing thoughtSignature) is a reasoning item with no summary, the
    proof wrapped in its ``encrypted_content``, streamed or not."""
    events = parse(encode_all(GEMINI_TRAILING_SIGNATURE))
    added = [e["item"]["type"] for e in events if e["type"] == "response.output_item.added"]
    assert added == ["reasoning", "message", "reasoning"]
    assert [e["type"] for e in events[-2:]] == ["response.output_item.done", "response.completed"]
    output = events[-1]["response"]["output"]
    assert [item["type"] for item in output] == ["reasoning", "message", "reasoning"]
    assert all(item.get("summary") or item.get("encrypted_content") for item in output if item["type"] == "reasoning")
    assert output[2]["summary"] == []
    assert envelope.unwrap(output[2]["encrypted_content"]) == envelope.Proof(
        "gemini", "reasoning", "Z2VtaW5pLXNpZ25hdHVyZQ=="
    )
    assert output == body_of(GEMINI_TRAILING_SIGNATURE)["output"]
    # a redacted block is an item of its own (its data wrapped), an empty one sends nothing; the text after
    # them starts a new message, as encode_response makes it
    more: list[ir.Event] = [
        ir.Start("r1", "m"),
        ir.TextStart(0),
        ir.TextDelta(0, "a"),
        ir.BlockEnd(0),
        ir.ReasoningStart(1, dialect="anthropic", redacted="opaque"),
        ir.BlockEnd(1),
        ir.ReasoningStart(2, dialect="anthropic"),
        ir.BlockEnd(2),
        ir.TextStart(3),
        ir.TextDelta(3, "b"),
        ir.BlockEnd(3),
        ir.Finish("stop"),
    ]
    streamed = parse(encode_all(more))[-1]["response"]["output"]
    texts = [(i["type"], [c["text"] for c in i.get("content", [])]) for i in streamed]
    assert texts == [("message", ["a"]), ("reasoning", []), ("message", ["b"])]
    assert envelope.unwrap(streamed[1]["encrypted_content"]) == envelope.Proof(
        "anthropic", "reasoning", redacted="opaque"
    )
    assert streamed == body_of(more)["output"]


def test_error_during_reasoning_after_a_message_keeps_the_message_completed() -> None:
    events: list[ir.Event] = [
        ir.Start("r1", "m"),
        ir.TextStart(0),
        ir.TextDelta(0, "a"),
        ir.BlockEnd(0),
        ir.ReasoningStart(1, dialect="gemini"),
        ir.StreamError(503, "gone"),
    ]
    parsed = parse(encode_all(events))
    assert [(e["type"], e.get("item", {}).get("status")) for e in parsed[-2:]] == [
        ("response.output_item.done", "completed"),
        ("error", None),
    ]
    cut = parse(encode_all([*events[:3], ir.StreamError(503, "gone")]))
    assert cut[-2]["item"]["status"] == "incomplete"


def test_reasoning_shown_sends_its_item_before_its_first_delta() -> None:
    """The item of a shown reasoning block comes at its first text: after the message before it closes."""
    events: list[ir.Event] = [
        ir.Start("r1", "m"),
        ir.TextStart(0),
        ir.TextDelta(0, "a"),
        ir.BlockEnd(0),
        ir.ReasoningStart(1, dialect="gemini"),
        ir.ReasoningDelta(1, "hmm"),
        ir.BlockEnd(1),
        ir.Finish("stop"),
    ]
    kinds = [(e["type"], e.get("item", {}).get("type")) for e in parse(encode_all(events))]
    at = kinds.index(("response.output_item.done", "message"))
    assert kinds[at - 2 : at + 4] == [
        ("response.output_text.done", None),
        ("response.content_part.done", None),
        ("response.output_item.done", "message"),
        ("response.output_item.added", "reasoning"),
        ("response.reasoning_summary_part.added", None),
        ("response.reasoning_summary_text.delta", None),
    ]
    assert parse(encode_all(events))[-1]["response"]["output"] == body_of(events)["output"]


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_cut_answer_marks_its_message_incomplete(reason: ir.FinishReason) -> None:
    """OpenAI marks the message an incomplete answer was cut in ``incomplete``, in its done event and the response."""
    events: list[ir.Event] = [
        ir.Start("r1", "m"),
        ir.TextStart(0),
        ir.TextDelta(0, "Once upon"),
        ir.BlockEnd(0),
        ir.Finish(reason),
    ]
    parsed = parse(encode_all(events))
    done = [e["item"] for e in parsed if e["type"] == "response.output_item.done"]
    assert [item["status"] for item in done] == ["incomplete"]
    assert parsed[-1]["type"] == "response.incomplete"
    assert parsed[-1]["response"]["output"][0]["status"] == "incomplete"
    assert parsed[-1]["response"]["output"] == body_of(events)["output"]
    # a message closed before the cut (a call came after it) stays completed
    with_call: list[ir.Event] = [
        *events[:4],
        ir.ToolCallStart(1, "call_1", "f"),
        ir.ToolCallDelta(1, '{"a":'),
        ir.BlockEnd(1),
        ir.Finish(reason),
    ]
    output = parse(encode_all(with_call))[-1]["response"]["output"]
    assert [(i["type"], i["status"]) for i in output] == [("message", "completed"), ("function_call", "completed")]
    completed = parse(encode_all([*events[:4], ir.Finish("stop")]))[-1]["response"]["output"]
    assert completed[0]["status"] == "completed"


def test_encode_is_deterministic() -> None:
    assert encode_all(IR_STREAM) == encode_all(IR_STREAM)


def test_stream_error_closes_the_open_items_ends_with_error_and_the_sdk_raises() -> None:
    events = [*IR_STREAM[:10], ir.StreamError(429, "slow down", code="rate_limited")]
    data = encode_all(events)
    parsed = parse(data)
    assert [e["type"] for e in parsed[-4:]] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "error",
    ]
    assert parsed[-2]["item"]["status"] == "incomplete"
    assert parsed[-2]["item"]["content"][0]["text"] == "Hé"
    error = parsed[-1]
    assert (error["code"], error["message"], error["sequence_number"]) == ("rate_limited", "slow down", len(parsed) - 1)
    assert error["error"] == {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limited"}
    assert not any(e["type"] == "response.failed" for e in parsed)
    with pytest.raises(openai.APIError, match="slow down"):
        for _ in sdk_client(data).responses.create(model="client-model", input="hi", stream=True):
            pass


def test_truncated_stream_fails_at_finish() -> None:
    encoder = StreamEncoder(client_request())
    encoder.encode(IR_STREAM[0])
    encoder.encode(ir.TextStart(0))
    encoder.encode(ir.TextDelta(0, "partial"))
    tail = parse(encoder.finish())
    assert [e["type"] for e in tail][-2:] == ["response.output_item.done", "error"]
    assert tail[-1]["code"] == "upstream_truncated"
    assert encoder.finish() == b"" and encoder.encode(ir.TextDelta(0, "late")) == b""


def test_error_before_start_is_an_error_event_alone() -> None:
    encoder = StreamEncoder(client_request())
    (event,) = parse(encoder.encode(ir.StreamError(502, "no upstream", code="upstream_unreachable")))
    assert event["type"] == "error" and event["sequence_number"] == 0
    assert encoder.finish() == b""


def test_nothing_after_finish() -> None:
    encoder = StreamEncoder(client_request())
    for event in IR_STREAM:
        encoder.encode(event)
    assert encoder.encode(ir.TextDelta(2, "x")) == b""
    assert encoder.encode(ir.StreamError(500, "late")) == b""
    assert encoder.finish() == b""


def test_missing_start_and_text_without_text_start() -> None:
    events = parse(encode_all([ir.TextDelta(0, "x"), ir.Finish("stop")]))
    assert events[0]["response"]["id"] == "resp_0"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "x"


def test_round_trip_encoder_to_decoder() -> None:
    decoded = decode_all(encode_all(IR_STREAM))
    rid = "resp_01ABC"
    signed = envelope.Proof("anthropic", "reasoning", "anthropic-signature", text="Let me think.")
    redacted = envelope.Proof("anthropic", "reasoning", redacted="opaque")
    assert merged(decoded) == [
        ir.Start(rid, "client-model", created=1700000000),
        ir.ReasoningStart(0, dialect="openai_responses", id=derived_id(rid, 0, "rs_")),
        ir.ReasoningDelta(0, "Let me think."),
        ir.ReasoningSignature(0, envelope.wrap(signed)),  # what a client sends back (docs: Reasoning state)
        ir.BlockEnd(0),
        ir.ReasoningStart(1, dialect="openai_responses", id=derived_id(rid, 1, "rs_")),
        ir.ReasoningSignature(1, envelope.wrap(redacted)),
        ir.BlockEnd(1),
        ir.TextStart(2),
        ir.TextDelta(2, "Héllo"),
        ir.BlockEnd(2),
        ir.TextStart(3),
        ir.TextDelta(3, " again"),
        ir.BlockEnd(3),
        ir.ToolCallStart(4, "toolu_1", "weather", derived_id(rid, 3, "fc_"), "openai_responses"),
        ir.ToolCallDelta(4, '{"city":"Paris"}'),
        ir.BlockEnd(4),
        ir.ToolCallStart(5, "toolu_2", "time", derived_id(rid, 4, "fc_"), "openai_responses"),
        ir.ToolCallDelta(5, "{}"),
        ir.BlockEnd(5),
        ir.Finish("tool_calls", ir.Usage(50, 30, cached_tokens=10, reasoning_tokens=5)),
    ]


def test_round_trip_decoder_to_encoder_keeps_openai_ids() -> None:
    data = encode_all(decode_all(frames(openai_stream())), client_request())
    final = parse(data)[-1]["response"]
    assert [item["id"] for item in final["output"]] == ["rs_1", derived_id(RID, 1, "msg_"), "fc_1"]
    assert final["output"][0]["encrypted_content"] == "gAAAAB+/=="
    assert final["output"][0]["summary"] == [{"type": "summary_text", "text": "**A**\n\nB"}]


def test_error_round_trip() -> None:
    data = encode_all([IR_STREAM[0], ir.StreamError(429, "slow", code="rate_limited")])
    assert decode_all(data)[-1] == ir.StreamError(429, "slow", code="rate_limited")


# ---- the openai SDK reads what the encoder writes ---------------------------------------------------------


def sdk_client(data: bytes) -> openai.OpenAI:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=data)

    return openai.OpenAI(
        api_key="k", base_url="http://relay.test/v1", http_client=httpx.Client(transport=httpx.MockTransport(answer))
    )


def test_sdk_stream_accumulator_builds_the_final_response() -> None:
    with sdk_client(encode_all(IR_STREAM)).responses.stream(model="client-model", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["Hé", "llo", " again"]
    assert final.id == "resp_01ABC" and final.model == "client-model"
    assert final.output_text == "Héllo again"
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("toolu_1", "weather", '{"city":"Paris"}'),
        ("toolu_2", "time", "{}"),
    ]
    assert final.output[0].type == "reasoning" and final.output[0].summary[0].text == "Let me think."
    assert final.usage is not None and final.usage.total_tokens == 80


def test_sdk_reads_an_incomplete_stream() -> None:
    data = encode_all([ir.Start("r", "m"), ir.TextStart(0), ir.TextDelta(0, "cut"), ir.Finish("length")])
    events = list(sdk_client(data).responses.create(model="client-model", input="hi", stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details is not None
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert events[-1].response.output_text == "cut"


# ---- speed ------------------------------------------------------------------------------------------------


def test_hot_path_cost() -> None:
    """Text and argument deltas, both ways, stay well under the per-chunk budget (15 µs); generous bound."""
    encoder = StreamEncoder(client_request())
    head = encoder.encode(IR_STREAM[0]) + encoder.encode(ir.TextStart(0))
    delta = ir.TextDelta(0, "a few words of text")
    frame = encoder.encode(delta)
    decoder = StreamDecoder()
    assert decoder.feed(head + frame)[-1] == delta
    assert decoder.feed(frame) == [delta]
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        encoder.encode(delta)
    encode_cost = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for _ in range(n):
        decoder.feed(frame)
    decode_cost = (time.perf_counter() - start) / n
    assert encode_cost < 50e-6 and decode_cost < 50e-6, (encode_cost, decode_cost)

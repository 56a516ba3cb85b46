"""Gemini streams: the array splitter, the stream decoder (SSE and array) and the stream encoder."""

from __future__ import annotations

import base64
import itertools
import time
from typing import Any

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import models as genai_models
from google.genai import types

from relay.dialects import envelope, ir
from relay.dialects.gemini import codec as gemini
from relay.dialects.gemini.stream import ArraySplitter, StreamDecoder, StreamEncoder
from relay.errors import RelayError

MODEL = "gemini-2.5-flash"

# A Gemini stream with every part kind: thoughts, a signature on an empty text part, text with UTF-8
# (é, 😀, 中), two parallel calls without ids (the first signed), the finish with the full usage.
CHUNKS: list[dict[str, Any]] = [
    {
        "candidates": [
            {"content": {"parts": [{"text": "Let me {think}", "thought": True}], "role": "model"}, "index": 0}
        ],
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
        "modelVersion": MODEL,
        "responseId": "resp-1",
    },
    {
        "candidates": [{"content": {"parts": [{"text": ' about "it"', "thought": True}], "role": "model"}, "index": 0}],
        "modelVersion": MODEL,
        "responseId": "resp-1",
    },
    {
        "candidates": [
            {"content": {"parts": [{"text": "", "thoughtSignature": "U0lHLTE="}], "role": "model"}, "index": 0}
        ],
        "modelVersion": MODEL,
        "responseId": "resp-1",
    },
    {
        "candidates": [{"content": {"parts": [{"text": "Héllo 😀 "}], "role": "model"}, "index": 0}],
        "modelVersion": MODEL,
        "responseId": "resp-1",
    },
    {
        "candidates": [{"content": {"parts": [{"text": "中文 [x]\\n"}], "role": "model"}, "index": 0}],
        "modelVersion": MODEL,
        "responseId": "resp-1",
    },
    {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "Q0FMTA==",
                        },
                        {"functionCall": {"name": "get_weather", "args": {"city": "Zürich", "n": [1, {"a": "}"}]}}},
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 20,
            "totalTokenCount": 40,
            "cachedContentTokenCount": 4,
            "thoughtsTokenCount": 8,
        },
        "modelVersion": MODEL,
        "responseId": "resp-1",
    },
]


def _call_id(name: str, arguments: str, n: int) -> str:
    from relay.dialects.common import derived_id

    return derived_id(f"resp-1/{name}/{arguments}", n, "call_gemini_")


ARGS_1 = '{"city":"Paris"}'
ARGS_2 = '{"city":"Zürich","n":[1,{"a":"}"}]}'
EXPECTED: list[ir.Event] = [
    ir.Start(id="resp-1", model=MODEL),
    ir.ReasoningStart(0, dialect="gemini"),
    ir.ReasoningDelta(0, "Let me {think}"),
    ir.ReasoningDelta(0, ' about "it"'),
    ir.ReasoningSignature(0, "U0lHLTE="),
    ir.BlockEnd(0),
    ir.TextStart(1),
    ir.TextDelta(1, "Héllo 😀 "),
    ir.TextDelta(1, "中文 [x]\\n"),
    ir.BlockEnd(1),
    ir.ToolCallStart(2, _call_id("get_weather", ARGS_1, 0), "get_weather", "Q0FMTA==", "gemini"),
    ir.ToolCallDelta(2, ARGS_1),
    ir.BlockEnd(2),
    ir.ToolCallStart(3, _call_id("get_weather", ARGS_2, 1), "get_weather"),
    ir.ToolCallDelta(3, ARGS_2),
    ir.BlockEnd(3),
    ir.Finish(
        "tool_calls",
        ir.Usage(input_tokens=12, output_tokens=28, cached_tokens=4, reasoning_tokens=8),
    ),
]


def sse_body(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks)


def array_body(chunks: list[dict[str, Any]]) -> bytes:
    """Gemini's own array framing: pretty-printed elements, ``\\n,\\r\\n`` between them."""
    return b"[" + b"\n,\r\n".join(orjson.dumps(c, option=orjson.OPT_INDENT_2) for c in chunks) + b"\n]"


def decode_all(data: bytes, pieces: list[int] | None = None, *, sse: bool = True) -> list[ir.Event]:
    decoder = StreamDecoder(sse=sse)
    events: list[ir.Event] = []
    cuts = [0, *(pieces or []), len(data)]
    for a, b in itertools.pairwise(cuts):
        events += decoder.feed(data[a:b])
    return events + decoder.close()


def sdk_chunk(data: bytes) -> types.GenerateContentResponse:
    """Parse one chunk the way the SDK does (mldev converter, then the typed response)."""
    converted = genai_models._GenerateContentResponse_from_mldev(orjson.loads(data))
    return types.GenerateContentResponse._from_response(response=converted, kwargs={})


def sse_data(body: bytes) -> list[bytes]:
    frames = body.split(b"\r\n\r\n")
    assert frames[-1] == b""
    assert all(f.startswith(b"data: ") for f in frames[:-1])
    return [f[6:] for f in frames[:-1]]


# ---- ArraySplitter -----------------------------------------------------------------------------------------

TRICKY = [
    {"text": 'braces } { ] [ and "quotes" and \\ backslashes \\" and \\\\'},
    {"nested": [[{"a": "]"}], {"b": "\\"}], "uni": "é😀中\u2028", "esc": "\u0000\n\t"},
    {"empty": {}, "list": [], "n": -1.5e3, "t": True, "f": False, "z": None},
]


def test_splitter_every_split_point() -> None:
    body = b" [ \n" + b" , ".join(orjson.dumps(e, option=orjson.OPT_INDENT_2) for e in TRICKY) + b"\r\n] \n"
    expected = [orjson.loads(orjson.dumps(e)) for e in TRICKY]
    for cut in range(len(body) + 1):
        splitter = ArraySplitter()
        got = splitter.feed(body[:cut]) + splitter.feed(body[cut:])
        assert [orjson.loads(g) for g in got] == expected, cut
        assert splitter.done
    splitter = ArraySplitter()
    got = [element for i in range(len(body)) for element in splitter.feed(body[i : i + 1])]
    assert [orjson.loads(g) for g in got] == expected
    assert splitter.done and splitter.pending == 0


def test_splitter_gives_each_element_as_soon_as_it_is_complete() -> None:
    splitter = ArraySplitter()
    assert splitter.feed(b'[{"a": "x"') == []
    assert splitter.pending == len(b'{"a": "x"')
    assert splitter.feed(b'}\n,\r\n{"b":') == [b'{"a": "x"}']
    assert splitter.feed(b"2}") == [b'{"b":2}']
    assert not splitter.done
    assert splitter.feed(b"\n]") == []
    assert splitter.done


def test_splitter_split_keeps_the_parsed_value() -> None:
    splitter = ArraySplitter()
    [(raw, value)] = splitter.split(b'[{"a": [1, "}"]}')
    assert raw == b'{"a": [1, "}"]}' and value == {"a": [1, "}"]}
    [(raw, value)] = splitter.split(b'\n,\r\n{"b": "\\"x"}\n]')
    assert raw == b'{"b": "\\"x"}' and value == {"b": '"x'}
    two = ArraySplitter().split(b'[{"c": 1}, {"d": 2}')  # two elements in one chunk: scanned, not parsed
    assert two == [(b'{"c": 1}', None), (b'{"d": 2}', None)]


@pytest.mark.parametrize(
    "body",
    [b'{"a": 1}', b"[1, 2]", b'["a"]', b'[{"a": 1}] x', b'[{"a":1}]\n[', b"null"],
)
def test_splitter_refuses_what_is_not_an_array_of_objects(body: bytes) -> None:
    with pytest.raises(ValueError):
        ArraySplitter().feed(body)


def test_splitter_is_linear_in_the_size_of_an_element() -> None:
    """A 4 MB element in 4 KB chunks: rescanning the pending bytes on every chunk would take seconds."""
    text = ('abc\\"{[ ' * 8) + "x"
    element = orjson.dumps({"parts": [{"text": text * 600} for _ in range(80)], "n": [[1], [2]]})
    body = b"[" + element + b"]"
    splitter = ArraySplitter()
    started = time.perf_counter()
    got = [e for i in range(0, len(body), 4096) for e in splitter.feed(body[i : i + 4096])]
    assert time.perf_counter() - started < 1.0
    assert got == [element] and splitter.done


# ---- StreamDecoder -----------------------------------------------------------------------------------------


def test_decoder_sse_every_part_kind() -> None:
    assert decode_all(sse_body(CHUNKS)) == EXPECTED


def test_decoder_sse_split_at_every_byte() -> None:
    body = sse_body(CHUNKS)
    for cut in range(len(body) + 1):
        assert decode_all(body, [cut]) == EXPECTED, cut
    assert decode_all(body, list(range(1, len(body)))) == EXPECTED


def test_decoder_array_split_at_every_byte() -> None:
    body = array_body(CHUNKS)
    assert decode_all(body, sse=False) == EXPECTED
    for cut in range(len(body) + 1):
        assert decode_all(body, [cut], sse=False) == EXPECTED, cut
    assert decode_all(body, list(range(1, len(body))), sse=False) == EXPECTED


def test_decoder_ids_match_decode_response() -> None:
    """The ids derived for calls without one are those decode_response derives for the same answer."""
    parts = [p for c in CHUNKS for p in c["candidates"][0]["content"]["parts"]]
    whole = {**CHUNKS[-1], "candidates": [{**CHUNKS[-1]["candidates"][0], "content": {"parts": parts}}]}
    response = gemini.decode_response(orjson.dumps(whole))
    calls = [p for p in response.parts if isinstance(p, ir.ToolCall)]
    streamed = [e for e in EXPECTED if isinstance(e, ir.ToolCallStart)]
    assert [c.id for c in calls] == [e.id for e in streamed]
    assert len({c.id for c in calls}) == 2


def test_decoder_keeps_gemini_ids() -> None:
    chunk = {
        "candidates": [
            {
                "content": {"parts": [{"functionCall": {"id": "fc-7", "name": "f"}}], "role": "model"},
                "finishReason": "STOP",
            }
        ],
    }
    events = decode_all(sse_body([chunk]))
    assert events[1] == ir.ToolCallStart(0, "fc-7", "f")
    assert events[2] == ir.ToolCallDelta(0, "{}")
    assert events[-1] == ir.Finish("tool_calls", None)


def _parts_chunk(parts: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "responseId": "r"}


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (  # a signature on the first answer part, no thoughts shown: a signature-only reasoning block
            [{"text": "Hi", "thoughtSignature": "UzE="}],
            [ir.ReasoningStart(0, "gemini"), ir.ReasoningSignature(0, "UzE="), ir.BlockEnd(0), ir.TextStart(1),
             ir.TextDelta(1, "Hi"), ir.BlockEnd(1)],
        ),
        (  # on the first answer part right after thoughts: the thoughts' block takes it
            [{"text": "a", "thought": True}, {"text": "Hi", "thoughtSignature": "UzE="}],
            [ir.ReasoningStart(0, "gemini"), ir.ReasoningDelta(0, "a"), ir.ReasoningSignature(0, "UzE="),
             ir.BlockEnd(0), ir.TextStart(1), ir.TextDelta(1, "Hi"), ir.BlockEnd(1)],
        ),
        (  # on a thought part; a second signature opens a block of its own
            [{"text": "a", "thought": True, "thoughtSignature": "UzE="}, {"text": "", "thoughtSignature": "UzI="}],
            [ir.ReasoningStart(0, "gemini"), ir.ReasoningDelta(0, "a"), ir.ReasoningSignature(0, "UzE="),
             ir.BlockEnd(0), ir.ReasoningStart(1, "gemini"), ir.ReasoningSignature(1, "UzI="), ir.BlockEnd(1)],
        ),
        (  # a thought after a signed block opens a new block; text after text extends it
            [{"text": "a", "thought": True, "thoughtSignature": "UzE="}, {"text": "b", "thought": True},
             {"text": "c"}, {"text": "d"}],
            [ir.ReasoningStart(0, "gemini"), ir.ReasoningDelta(0, "a"), ir.ReasoningSignature(0, "UzE="),
             ir.BlockEnd(0), ir.ReasoningStart(1, "gemini"), ir.ReasoningDelta(1, "b"), ir.BlockEnd(1),
             ir.TextStart(2), ir.TextDelta(2, "c"), ir.TextDelta(2, "d"), ir.BlockEnd(2)],
        ),
        (  # a signature in the middle of the answer text: the text block ends, and goes on after
            [{"text": "a"}, {"text": "", "thoughtSignature": "UzE="}, {"text": "b"}],
            [ir.TextStart(0), ir.TextDelta(0, "a"), ir.BlockEnd(0), ir.ReasoningStart(1, "gemini"),
             ir.ReasoningSignature(1, "UzE="), ir.BlockEnd(1), ir.TextStart(2), ir.TextDelta(2, "b"), ir.BlockEnd(2)],
        ),
        (  # empty text, images and code execution have no IR slot
            [{"text": ""}, {"inlineData": {"mimeType": "image/png", "data": "AA=="}},
             {"executableCode": {"code": "1", "language": "PYTHON"}}, {"text": "x"}],
            [ir.TextStart(0), ir.TextDelta(0, "x"), ir.BlockEnd(0)],
        ),
    ],
)  # fmt: skip
def test_decoder_signatures_and_blocks(parts: list[dict[str, Any]], expected: list[ir.Event]) -> None:
    events = decode_all(sse_body([_parts_chunk(parts, "STOP")]))
    assert events == [ir.Start("r", ""), *expected, ir.Finish("stop", None)]


@pytest.mark.parametrize(
    ("finish", "calls", "reason"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("MAX_TOKENS", True, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("PROHIBITED_CONTENT", True, "content_filter"),
        ("MALFORMED_FUNCTION_CALL", False, "stop"),
        ("SOMETHING_NEW", False, "stop"),
    ],
)
def test_decoder_finish_reasons(finish: str, calls: bool, reason: str) -> None:
    parts = [{"functionCall": {"name": "f", "args": {}}}] if calls else [{"text": "x"}]
    events = decode_all(sse_body([_parts_chunk(parts, finish)]))
    assert events[-1] == ir.Finish(reason, None)  # type: ignore[arg-type]


def test_decoder_a_stop_in_a_later_chunk_keeps_tool_calls() -> None:
    chunks = [_parts_chunk([{"functionCall": {"name": "f"}}]), _parts_chunk([{"text": ""}], "STOP")]
    assert decode_all(sse_body(chunks))[-1] == ir.Finish("tool_calls", None)


def test_decoder_prompt_blocked() -> None:
    chunk = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        "modelVersion": MODEL,
        "responseId": "b1",
    }
    assert decode_all(sse_body([chunk])) == [
        ir.Start("b1", MODEL),
        ir.Finish("content_filter", ir.Usage(input_tokens=7)),
    ]


@pytest.mark.parametrize("sse", [True, False])
def test_decoder_truncated(sse: bool) -> None:
    body = sse_body(CHUNKS[:-1]) if sse else array_body(CHUNKS[:-1])
    for cut in (len(body), len(body) - 3, len(body) // 2):
        events = decode_all(body[:cut], sse=sse)
        assert events[-1] == ir.StreamError(
            502, "upstream stream ended before a chunk with finishReason", code="upstream_truncated"
        )
        assert not any(isinstance(e, ir.Finish) for e in events)


def test_decoder_a_complete_stream_is_not_truncated_and_ignores_what_follows() -> None:
    decoder = StreamDecoder()
    events = decoder.feed(sse_body(CHUNKS) + sse_body(CHUNKS[:1]))
    assert events == EXPECTED
    assert decoder.feed(b"data: {}\r\n\r\n") == [] and decoder.close() == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"},
            ir.StreamError(429, "Resource exhausted", code="RESOURCE_EXHAUSTED"),
        ),
        ({"message": "overloaded", "status": "UNAVAILABLE"}, ir.StreamError(503, "overloaded", code="UNAVAILABLE")),
        ({"code": 500}, ir.StreamError(500, "upstream error", code=None)),
    ],
)
@pytest.mark.parametrize("sse", [True, False])
def test_decoder_error_chunk(error: dict[str, Any], expected: ir.StreamError, sse: bool) -> None:
    chunks = [CHUNKS[0], {"error": error}, CHUNKS[-1]]
    body = sse_body(chunks) if sse else array_body(chunks)
    events = decode_all(body, sse=sse)
    assert events[-1] == expected
    assert len([e for e in events if isinstance(e, ir.StreamError)]) == 1


@pytest.mark.parametrize(
    ("body", "sse"),
    [
        (b"data: not json\r\n\r\n", True),
        (b"data: [1]\r\n\r\n", True),
        (b'{"candidates": []}', False),
        (b"[1]", False),
        (b'[{"a": }]', False),
    ],
)
def test_decoder_malformed(body: bytes, sse: bool) -> None:
    events = decode_all(body, sse=sse)
    assert len(events) == 1 and isinstance(events[0], ir.StreamError)
    assert events[0].status == 502 and events[0].code == "upstream_malformed"


# ---- StreamEncoder -----------------------------------------------------------------------------------------

CLIENT = ir.Request(model="my-gemini", system=(), messages=(), reasoning=ir.ReasoningConfig(include=True))


def encode_all(events: list[ir.Event], req: ir.Request = CLIENT, *, sse: bool = True) -> tuple[bytes, list[bytes]]:
    encoder = StreamEncoder(req, sse=sse)
    pieces = [encoder.encode(e) for e in events]
    pieces.append(encoder.finish())
    return b"".join(pieces), pieces


def test_encoder_round_trip_and_sdk_types() -> None:
    body, pieces = encode_all(EXPECTED)
    # text goes out at once; a call's arguments only at its end
    for event, piece in zip(EXPECTED, pieces, strict=False):
        if isinstance(event, ir.TextDelta | ir.ReasoningDelta | ir.ReasoningSignature | ir.Finish):
            assert piece, event
        if isinstance(event, ir.ToolCallStart | ir.ToolCallDelta | ir.Start | ir.TextStart):
            assert piece == b"", event
    chunks = [sdk_chunk(d) for d in sse_data(body)]
    assert all(c.model_version == "my-gemini" and c.response_id == "resp-1" for c in chunks)
    thoughts = [p for c in chunks for p in c.candidates[0].content.parts if p.thought]
    assert "".join(p.text for p in thoughts) == 'Let me {think} about "it"'
    calls = [c.function_calls[0] for c in chunks if c.function_calls]
    assert [(c.name, c.args, c.id) for c in calls] == [
        ("get_weather", {"city": "Paris"}, None),
        ("get_weather", {"city": "Zürich", "n": [1, {"a": "}"}]}, None),
    ]
    signed = [p.thought_signature for c in chunks for p in c.candidates[0].content.parts if p.thought_signature]
    assert signed == [b"SIG-1", b"CALL"]
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    usage = last.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (12, 20, 8)
    assert (usage.cached_content_token_count, usage.total_token_count) == (4, 40)
    again = decode_all(body)
    assert again == [ir.Start("resp-1", "my-gemini"), *EXPECTED[1:]]


def test_encoder_array_mode() -> None:
    body, _ = encode_all(EXPECTED, sse=False)
    assert body.startswith(b"[{") and body.endswith(b"}]") and b"}\n,\r\n{" not in body
    elements = orjson.loads(body)
    assert len(elements) == len(sse_data(encode_all(EXPECTED)[0]))
    for element in elements:
        sdk_chunk(orjson.dumps(element))
    assert decode_all(body, sse=False) == [ir.Start("resp-1", "my-gemini"), *EXPECTED[1:]]
    for cut in range(0, len(body), 7):
        assert decode_all(body, [cut], sse=False)[1:] == EXPECTED[1:]


def test_encoder_hides_thoughts_the_client_did_not_ask_for() -> None:
    body, _ = encode_all(EXPECTED, ir.Request(model="m", system=(), messages=()))
    assert b"Let me" not in body and b'"thought":true' not in body
    assert b'"thoughtSignature":"U0lHLTE="' in body  # Gemini's own signature still goes back


def test_encoder_wraps_other_dialects_proofs() -> None:
    events: list[ir.Event] = [
        ir.Start("msg_01abc", "claude"),
        ir.ReasoningStart(0, dialect="anthropic"),
        ir.ReasoningDelta(0, "hmm"),
        ir.ReasoningSignature(0, "anthropic-signature"),
        ir.BlockEnd(0),
        ir.ReasoningStart(1, dialect="anthropic", redacted="opaque"),
        ir.ReasoningDelta(1, "secret"),
        ir.BlockEnd(1),
        ir.ToolCallStart(2, "toolu_1", "f", signature="x", signature_dialect="anthropic"),
        ir.ToolCallDelta(2, '{"a":'),
        ir.ToolCallDelta(2, "1}"),
        ir.BlockEnd(2),
        ir.Finish("tool_calls", ir.Usage(input_tokens=5, output_tokens=9, reasoning_tokens=3)),
    ]
    body, _ = encode_all(events)
    assert b"anthropic-signature" not in body and b"secret" not in body and b'"x"' not in body  # never in the clear
    chunks = [sdk_chunk(d) for d in sse_data(body)]
    assert chunks[0].response_id == "01abc"  # msg_ stripped
    assert chunks[0].candidates[0].content.parts[0].text == "hmm"
    # each proof in Relay's envelope, as the SDK hands it back (bytes): the thinking's with its text
    signed = [p.thought_signature for c in chunks for p in c.candidates[0].content.parts if p.thought_signature]
    assert [envelope.unwrap(base64.b64encode(s).decode()) for s in signed] == [
        envelope.Proof("anthropic", "reasoning", signature="anthropic-signature", text="hmm"),
        envelope.Proof("anthropic", "reasoning", redacted="opaque"),
        envelope.Proof("anthropic", "call", signature="x", call="toolu_1"),
    ]
    [call] = [c.function_calls[0] for c in chunks if c.function_calls]
    assert (call.id, call.name, call.args) == ("toolu_1", "f", {"a": 1})
    usage = chunks[-1].usage_metadata
    assert (usage.candidates_token_count, usage.thoughts_token_count, usage.total_token_count) == (6, 3, 14)


def test_encoder_length_drops_a_call_cut_short() -> None:
    events: list[ir.Event] = [
        ir.Start("r", "m"),
        ir.TextStart(0),
        ir.TextDelta(0, "x"),
        ir.ToolCallStart(1, "c1", "f"),
        ir.ToolCallDelta(1, '{"a": "tru'),
        ir.Finish("length", None),
    ]
    body, _ = encode_all(events)
    chunks = [sdk_chunk(d) for d in sse_data(body)]
    assert not any(c.function_calls for c in chunks)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


def test_encoder_flushes_a_complete_call_at_the_finish() -> None:
    events: list[ir.Event] = [ir.ToolCallStart(0, "c1", "f"), ir.ToolCallDelta(0, '{"a":1}'), ir.Finish("stop")]
    body, _ = encode_all(events)
    [chunk] = [sdk_chunk(d) for d in sse_data(body)]
    assert chunk.function_calls[0].args == {"a": 1}
    assert chunk.candidates[0].finish_reason == types.FinishReason.STOP


def test_encoder_arguments_that_are_not_an_object_become_empty() -> None:
    events: list[ir.Event] = [ir.ToolCallStart(0, "c1", "f"), ir.ToolCallDelta(0, "[1]"), ir.BlockEnd(0)]
    encoder = StreamEncoder(CLIENT)
    out = b"".join(encoder.encode(e) for e in events)
    assert sdk_chunk(sse_data(out)[0]).function_calls[0].args == {}


@pytest.mark.parametrize("sse", [True, False])
def test_encoder_stream_error(sse: bool) -> None:
    events: list[ir.Event] = [
        ir.Start("r", "m"),
        ir.TextDelta(0, "x"),
        ir.StreamError(429, "slow down", code="rate_limit"),
        ir.TextDelta(0, "after"),
    ]
    body, _ = encode_all(events, sse=sse)
    assert b"after" not in body
    last = sse_data(body)[-1] if sse else orjson.dumps(orjson.loads(body)[-1])
    assert orjson.loads(last) == {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}
    events = decode_all(body, sse=sse)
    assert events[-1] == ir.StreamError(429, "slow down", code="RESOURCE_EXHAUSTED")


def test_encoder_anthropic_overloaded_is_unavailable() -> None:
    """Anthropic's 529 overloaded_error mid-stream: UNAVAILABLE (Google's overloaded), not INTERNAL."""
    body, _ = encode_all([ir.Start("r", "m"), ir.StreamError(529, "Overloaded", code="overloaded_error")])
    error = orjson.loads(sse_data(body)[-1])["error"]
    assert error == {"code": 529, "message": "Overloaded", "status": "UNAVAILABLE"}


@pytest.mark.parametrize("sse", [True, False])
def test_encoder_finish_without_an_end_is_an_error(sse: bool) -> None:
    body, _ = encode_all([ir.Start("r", "m")], sse=sse)
    expected = b'{"error":{"code":500,"message":"the stream ended unexpectedly","status":"INTERNAL"}}'
    assert body == (b"data: " + expected + b"\r\n\r\n" if sse else b"[" + expected + b"]")
    encoder = StreamEncoder(CLIENT, sse=sse)
    encoder.encode(ir.Finish("stop"))
    assert encoder.finish() == b""


# ---- the SDK end to end --------------------------------------------------------------------------------------


def sdk_client(handler: Any) -> genai.Client:
    transport = httpx.MockTransport(handler)
    return genai.Client(api_key="k", http_options=types.HttpOptions(httpx_client=httpx.Client(transport=transport)))


def test_sdk_reads_an_encoded_stream() -> None:
    body, _ = encode_all(EXPECTED)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    chunks = list(sdk_client(handler).models.generate_content_stream(model=MODEL, contents="hi"))
    assert seen[0].url.path.endswith(gemini.path(MODEL, True).split("?")[0])
    answer = [p.text for c in chunks for p in c.candidates[0].content.parts if p.text and not p.thought]
    assert "".join(answer) == "Héllo 😀 中文 [x]\\n"
    assert [c.function_calls[0].args["city"] for c in chunks if c.function_calls] == ["Paris", "Zürich"]
    assert chunks[-1].usage_metadata.thoughts_token_count == 8


def test_sdk_raises_on_an_encoded_stream_error() -> None:
    body, _ = encode_all([ir.Start("r", "m"), ir.TextDelta(0, "x"), ir.StreamError(503, "gone", code=None)])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    stream = sdk_client(handler).models.generate_content_stream(model=MODEL, contents="hi")
    assert next(stream).text == "x"
    with pytest.raises(genai_errors.ServerError) as caught:
        next(stream)
    assert caught.value.code == 503 and caught.value.status == "UNAVAILABLE" and caught.value.message == "gone"


def test_encode_stream_error_frames() -> None:
    error = RelayError(504, "timeout", "too slow")
    sse = gemini.encode_stream_error(error)
    assert sse == b'data: {"error":{"code":504,"message":"too slow","status":"DEADLINE_EXCEEDED"}}\r\n\r\n'
    assert gemini.encode_stream_error(error, sse=False).startswith(b',\r\n{"error"')
    alone = gemini.encode_stream_error(error, sse=False, after_element=False)
    assert orjson.loads(alone) == [{"error": {"code": 504, "message": "too slow", "status": "DEADLINE_EXCEEDED"}}]


# ---- the one-frame fast path ------------------------------------------------------------------------------

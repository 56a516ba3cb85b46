"""JSON nested deeper than Relay reads (``common.MAX_DEPTH``): refused where it comes in, never a crash where it
would be written again (orjson writes at most 254 levels, and reads up to 1,024).

A client's body is a 400 before anything is sent upstream; an upstream's body a 502; tool-call arguments (JSON
inside a string, parsed when converting) are refused as arguments that are not an object; and should an encoder
still meet something it cannot write, the answer or stream ends with a 502 (``upstream_malformed``).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relay.dialects import common, ir
from relay.dialects.anthropic import codec as anthropic
from relay.dialects.codecs import CODECS
from relay.dialects.common import load_object
from relay.dialects.convert import StreamConverter, convert_response
from relay.dialects.gemini import codec as gemini
from relay.dialects.openai.chat import codec as openai_chat
from relay.errors import RelayError

#: ``common.MAX_DEPTH``, as docs/conversions/README.md documents it.
MAX_DEPTH = 128


def deep(depth: int, leaf: str = "1") -> str:
    """JSON text of an object ``depth`` levels deep."""
    return '{"a":' * depth + leaf + "}" * depth


def test_nested_deeper_counts_levels_of_arrays_and_objects() -> None:
    assert common.MAX_DEPTH == MAX_DEPTH
    nested_deeper = common.nested_deeper
    assert not nested_deeper(orjson.loads(deep(MAX_DEPTH)))
    assert nested_deeper(orjson.loads(deep(MAX_DEPTH + 1)))
    assert not nested_deeper([[{}]], 3) and nested_deeper([[{"a": []}]], 3)
    assert not nested_deeper("text") and not nested_deeper({"a": "b", "c": [1, 2]}, 2)


@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1, 300, 1000])
def test_load_object_refuses_a_body_nested_too_deeply(depth: int) -> None:
    body = deep(depth).encode()
    if depth <= MAX_DEPTH:
        assert load_object(body)["a"]
        return
    with pytest.raises(RelayError) as client:
        load_object(body)
    assert client.value.status == 400 and "nested too deeply" in client.value.message
    with pytest.raises(RelayError) as upstream:
        load_object(body, upstream=True)
    assert upstream.value.status == 502 and upstream.value.code == "upstream_malformed"


@pytest.mark.parametrize("dialect", sorted(CODECS))
def test_every_request_decoder_refuses_a_body_nested_too_deeply(dialect: ir.Dialect) -> None:
    """The finding: Responses ``metadata`` 254 to 1,023 deep was read, sent, and failed when the answer echoed it."""
    inner = deep(300)
    bodies = {
        "openai_chat": '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "metadata": %s}',
        "openai_responses": '{"model": "m", "input": "hi", "metadata": %s}',
        "anthropic": '{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "x": %s}',
        "gemini": '{"contents": [{"parts": [{"text": "hi"}]}], "labels": %s}',
    }
    body = (bodies[dialect] % inner).encode()
    codec = CODECS[dialect]
    with pytest.raises(RelayError) as refused:
        codec.decode_request(body, model="m", stream=False) if dialect == "gemini" else codec.decode_request(body)
    assert refused.value.status == 400 and "nested too deeply" in refused.value.message


def chat_with_call(arguments: str) -> ir.Request:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
    ]
    return openai_chat.decode_request(orjson.dumps({"model": "m", "messages": messages}))


@pytest.mark.parametrize("codec", [anthropic, gemini], ids=["anthropic", "gemini"])
def test_tool_arguments_nested_too_deeply_are_a_400_when_converted(codec: Any) -> None:
    """Arguments are a string in Chat: 300 levels inside it pass the body's check, and were a crash when parsed
    into an Anthropic ``input`` or a Gemini ``args``."""
    req = chat_with_call(deep(300))
    with pytest.raises(RelayError) as refused:
        codec.encode_request(req, "up")
    assert refused.value.status == 400 and "arguments" in refused.value.message
    assert orjson.loads(codec.encode_request(chat_with_call(deep(50)), "up"))


def test_an_upstream_answer_nested_too_deeply_is_a_502() -> None:
    body = (
        (
            '{"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "tool_use",'
            ' "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": DEEP}],'
            ' "usage": {"input_tokens": 1, "output_tokens": 1}}'
        )
        .replace("DEEP", deep(260))
        .encode()
    )
    req = openai_chat.decode_request(b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
    with pytest.raises(RelayError) as failed:
        convert_response(body, anthropic, openai_chat, req, 1)
    assert failed.value.status == 502 and failed.value.code == "upstream_malformed"


def test_a_stream_event_that_cannot_be_written_ends_the_stream_with_an_error() -> None:
    """Stream events are parsed one by one: a Gemini call whose ``args`` are 300 deep cannot be written as Chat
    ``arguments``; the client's stream ends with an error frame instead of the connection failing."""
    req = openai_chat.decode_request(b'{"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}')
    converter = StreamConverter(gemini.StreamDecoder(), openai_chat.StreamEncoder(req), 1)
    text = b'{"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}}], "modelVersion": "m"}'
    call = (
        (
            '{"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": DEEP}}]},'
            ' "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}}'
        )
        .replace("DEEP", deep(300))
        .encode()
    )
    out = converter.feed(b"data: " + text + b"\r\n\r\n")
    out += converter.feed(b"data: " + call + b"\r\n\r\n") + converter.close()
    assert converter.done
    frames = [f for f in out.split(b"\n\n") if f.startswith(b"data: ")]
    assert b'"error"' in frames[-1] or (len(frames) > 1 and b'"error"' in frames[-2]), out[-400:]

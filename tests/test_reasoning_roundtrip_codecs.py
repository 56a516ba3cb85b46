"""Reasoning state through each client codec and back, sans-IO: interleaved proofs of three providers in one turn.

An answer holds, in order, Anthropic thinking (signed), a Gemini call (its thoughtSignature), OpenAI Responses
reasoning (``encrypted_content`` and ``rs_`` id), a Responses call (its ``fc_`` id), Anthropic redacted
thinking and text. Each client codec encodes it (whole, and as a stream read by the client's own SDK), the
client's next request holds that answer as the SDK gives it, and the decoded request must hold every proof,
tagged with its dialect. Each upstream encoder then sends its own proofs natively and none of another's.
"""

from __future__ import annotations

from typing import Any

import orjson
import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from google.genai import _common as genai_common
from google.genai import types
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from relay.dialects import envelope, ir
from relay.dialects.codecs import CODECS
from relay.dialects.foreign_proofs import stripped
from relay.http.sse import Parser

CLIENTS = ("openai_chat", "openai_responses", "anthropic", "gemini")

REASONING = (
    ir.Reasoning("first, the weather", signature="anthropic-sig==", dialect="anthropic"),
    ir.Reasoning("then the time", signature="gAAAAA-encrypted", dialect="openai_responses", id="rs_own1"),
    ir.Reasoning(redacted="anthropic-redacted==", dialect="anthropic"),
)
CALLS = (
    ir.ToolCall("call_a", "weather", '{"city":"Oslo"}', signature="Z2VtaW5pLWNhbGwtc2ln", signature_dialect="gemini"),
    ir.ToolCall("call_b", "time", "{}", signature="fc_own_b", signature_dialect="openai_responses"),
)
ANSWER = ir.Response(
    id="up-1",
    model="up",
    parts=(REASONING[0], CALLS[0], REASONING[1], CALLS[1], REASONING[2], ir.Text("Checking both.")),
    finish_reason="tool_calls",
    usage=ir.Usage(input_tokens=10, output_tokens=20),
    created=1700000000,
)
EVENTS: list[ir.Event] = [
    ir.Start("up-1", "up", created=1700000000),
    ir.ReasoningStart(0, dialect="anthropic"),
    ir.ReasoningDelta(0, "first, "),
    ir.ReasoningDelta(0, "the weather"),
    ir.ReasoningSignature(0, "anthropic-sig=="),
    ir.BlockEnd(0),
    ir.ToolCallStart(1, "call_a", "weather", signature="Z2VtaW5pLWNhbGwtc2ln", signature_dialect="gemini"),
    ir.ToolCallDelta(1, '{"city":'),
    ir.ToolCallDelta(1, '"Oslo"}'),
    ir.BlockEnd(1),
    ir.ReasoningStart(2, dialect="openai_responses", id="rs_own1"),
    ir.ReasoningDelta(2, "then the time"),
    ir.ReasoningSignature(2, "gAAAAA-encrypted"),
    ir.BlockEnd(2),
    ir.ToolCallStart(3, "call_b", "time", signature="fc_own_b", signature_dialect="openai_responses"),
    ir.ToolCallDelta(3, "{}"),
    ir.BlockEnd(3),
    ir.ReasoningStart(4, dialect="anthropic", redacted="anthropic-redacted=="),
    ir.BlockEnd(4),
    ir.TextStart(5),
    ir.TextDelta(5, "Checking both."),
    ir.BlockEnd(5),
    ir.Finish("tool_calls", ir.Usage(input_tokens=10, output_tokens=20)),
]


def client_request(client: str) -> ir.Request:
    return ir.Request(
        model="client-model",
        system=(),
        messages=(ir.Message("user", (ir.Text("go"),)),),
        reasoning=ir.ReasoningConfig(effort="low", include=True),
    )


# ---- the client's SDK reads the answer; its next request holds it -------------------------------------------


def _frames(data: bytes) -> list[Any]:
    return [
        (f.name.decode() if f.name else None, orjson.loads(f.data)) for f in Parser().feed(data) if f.data != b"[DONE]"
    ]


def read_answer(client: str, data: bytes, stream: bool) -> Any:
    """The assistant turn as the client's SDK gives it, in that client's request shape."""
    if client == "openai_chat":
        if not stream:
            return ChatCompletion.model_validate_json(data).choices[0].message.model_dump(exclude_none=True)
        state = ChatCompletionStreamState()
        for _, payload in _frames(data):
            state.handle_chunk(ChatCompletionChunk.model_validate(payload))
        return state.get_final_completion().choices[0].message.model_dump(exclude_none=True)
    if client == "openai_responses":
        if not stream:
            return [item.model_dump(exclude_none=True) for item in Response.model_validate_json(data).output]
        return [p["item"] for name, p in _frames(data) if name == "response.output_item.done"]
    if client == "anthropic":
        if not stream:
            return {"role": "assistant", "content": orjson.loads(data)["content"]}
        snapshot, buffers = None, {}
        adapter = pydantic.TypeAdapter(RawMessageStreamEvent)
        for _, payload in _frames(data):
            snapshot = accumulate_event(
                event=adapter.validate_python(payload), current_snapshot=snapshot, json_bufs=buffers
            )
        assert snapshot is not None
        return {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in snapshot.content]}
    chunks = [orjson.loads(data)] if not stream else [p for _, p in _frames(data)]
    parts: list[types.Part] = []
    for chunk in chunks:
        content = types.GenerateContentResponse.model_validate(chunk).candidates[0].content
        parts += content.parts or [] if content is not None else []
    # as google-genai sends a Content back: its bytes (thought signatures) URL-safe base64
    model_turn = types.Content(role="model", parts=parts).model_dump(exclude_none=True)
    return genai_common.encode_unserializable_types(model_turn)


def next_request(client: str, turn: Any) -> ir.Request:
    """The client's next request, the answer in its history, decoded by the client codec."""
    codec = CODECS[client]
    if client == "openai_chat":
        body = {"model": "m", "messages": [{"role": "user", "content": "go"}, turn]}
    elif client == "openai_responses":
        body = {"model": "m", "input": [{"role": "user", "content": "go"}, *turn]}
    elif client == "anthropic":
        body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "go"}, turn]}
    else:
        body = {"contents": [{"role": "user", "parts": [{"text": "go"}]}, turn]}
        return codec.decode_request(orjson.dumps(body), model="m", stream=False)  # type: ignore[no-any-return]
    return codec.decode_request(orjson.dumps(body))  # type: ignore[no-any-return]


def encoded(client: str, stream: bool) -> bytes:
    codec = CODECS[client]
    req = client_request(client)
    if not stream:
        return codec.encode_response(ANSWER, req)  # type: ignore[no-any-return]
    encoder = codec.StreamEncoder(req)
    return b"".join(encoder.encode(e) for e in EVENTS) + encoder.finish()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_every_proof_comes_back_tagged_with_its_dialect(client: str, stream: bool) -> None:
    data = encoded(client, stream)
    for dialect, secrets in SECRETS.items():  # another provider's proofs only wrapped; the client's own native
        assert all((secret in data) == (dialect == client) for secret in secrets[:1]), dialect
    req = next_request(client, read_answer(client, data, stream))
    (turn,) = [m for m in req.messages if m.role == "assistant"]
    assert [p for p in turn.parts if isinstance(p, ir.Reasoning)] == list(REASONING)
    assert [p for p in turn.parts if isinstance(p, ir.ToolCall)] == list(CALLS)
    # each upstream gets its own proofs, natively, and none of another's
    for upstream in ("anthropic", "gemini", "openai_responses"):
        body = CODECS[upstream].encode_request(req, "up")
        assert b"UkxZ" not in body
        for dialect, secrets in SECRETS.items():
            for secret in secrets:
                assert (secret in body) == (dialect == upstream), (upstream, secret)


SECRETS = {
    "anthropic": (b'"anthropic-sig=="', b'"anthropic-redacted=="'),
    "gemini": (b'"Z2VtaW5pLWNhbGwtc2ln"',),
    "openai_responses": (b'"gAAAAA-encrypted"', b'"rs_own1"', b'"fc_own_b"'),
}


def test_an_anthropic_client_turn_opens_with_its_thinking_again() -> None:
    """Interleaved thinking from Anthropic through a Chat client: each thinking block before its call, signed."""
    answer = ir.Response(
        "up-2",
        "up",
        (
            ir.Reasoning("a", signature="sig-a", dialect="anthropic"),
            ir.ToolCall("t1", "f", "{}"),
            ir.Reasoning("b", signature="sig-b", dialect="anthropic"),
            ir.ToolCall("t2", "g", "{}"),
        ),
        "tool_calls",
    )
    turn = read_answer(
        "openai_chat", CODECS["openai_chat"].encode_response(answer, client_request("openai_chat")), False
    )
    req = next_request("openai_chat", turn)
    body = orjson.loads(CODECS["anthropic"].encode_request(req, "claude"))
    (assistant,) = [m for m in body["messages"] if m["role"] == "assistant"]
    thinking = [b for b in assistant["content"] if b["type"] == "thinking"]
    assert [(b["thinking"], b["signature"]) for b in thinking] == [("a", "sig-a"), ("b", "sig-b")]
    assert assistant["content"][0]["type"] == "thinking"


# ---- the passthrough: envelopes out, the channel's own proofs back in their native field --------------------


def test_stripped_gives_the_channels_own_proofs_back_natively() -> None:
    """An envelope of the channel's own dialect (crafted: a client never gets one) is unwrapped in place."""
    own = envelope.wrap(envelope.Proof("anthropic", "reasoning", "sig-1", text="the text"))
    redacted = envelope.wrap(envelope.Proof("anthropic", "reasoning", redacted="red"))
    foreign = envelope.wrap(envelope.Proof("gemini", "call", "g", call="t1"))
    payload = {
        "model": "claude",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "", "signature": own},
                    {"type": "thinking", "thinking": "", "signature": redacted},
                    {"type": "thinking", "thinking": "", "signature": foreign},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
                ],
            },
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    cleaned = stripped("anthropic", payload)
    assert cleaned == {
        **payload,
        "messages": [
            payload["messages"][0],
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "the text", "signature": "sig-1"},
                    {"type": "redacted_thinking", "data": "red"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
                ],
            },
        ],
    }
    assert stripped("anthropic", cleaned) is None  # nothing left to take out


def test_stripped_responses_and_gemini_and_chat() -> None:
    rs = envelope.wrap(envelope.Proof("openai_responses", "reasoning", "gAAAA-x", id="rs_9"))
    fc = envelope.wrap(envelope.Proof("openai_responses", "call", "fc_9", call="c1"))
    other = envelope.wrap(envelope.Proof("anthropic", "reasoning", "sig", text="t"))
    items = [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_derived", "summary": [], "encrypted_content": other},
        {"type": "reasoning", "id": "rs_derived2", "summary": [], "encrypted_content": rs},
        {"type": "reasoning", "id": "rs_derived3", "summary": [], "encrypted_content": fc},
        {"type": "function_call", "id": "fc_derived", "call_id": "c1", "name": "f", "arguments": "{}"},
    ]
    assert stripped("openai_responses", {"input": items}) == {
        "input": [
            items[0],
            {"type": "reasoning", "id": "rs_9", "summary": [], "encrypted_content": "gAAAA-x"},
            {"type": "function_call", "id": "fc_9", "call_id": "c1", "name": "f", "arguments": "{}"},
        ]
    }
    gemini_own = envelope.wrap(envelope.Proof("gemini", "call", "native==", call="c1"))
    contents = [
        {"role": "user", "parts": [{"text": "hi"}]},
        {
            "role": "model",
            "parts": [
                {"text": "foreign thought", "thought": True, "thought_signature": other},
                {"text": "", "thoughtSignature": other},
                {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": gemini_own},
            ],
        },
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "g", "args": {}}, "thoughtSignature": fc}],
        },
    ]
    assert stripped("gemini", {"contents": contents}) == {
        "contents": [
            contents[0],
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "native=="}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "g", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"}
                ],
            },
        ]
    }
    message = {
        "role": "assistant",
        "content": "x",
        "reasoning_content": "t",
        "reasoning_details": [
            {"type": "reasoning.text", "text": "t", "signature": other, "format": "relay-v1", "index": 0},
            {"type": "reasoning.summary", "summary": "kept", "format": "openrouter", "index": 1},
        ],
    }
    assert stripped("openai_chat", {"messages": [message]}) == {
        "messages": [{**message, "reasoning_details": [message["reasoning_details"][1]]}]
    }

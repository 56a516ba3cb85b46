"""The Anthropic Messages codec: requests, responses, errors, count_tokens, passthrough helpers.

Bytes in, IR or bytes out; encoder output is parsed with the anthropic SDK's own types (and, for whole
answers, with the SDK client over a mock transport) to prove typed SDK objects come out of it.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import anthropic
import httpx2
import orjson
import pydantic
import pytest
from anthropic.types import Message, MessageTokensCount
from anthropic.types.message_count_tokens_params import MessageCountTokensParams
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming, MessageCreateParamsStreaming
from anthropic.types.shared.error_response import ErrorResponse

from relay.dialects import envelope, ir
from relay.dialects.anthropic import codec
from relay.errors import RelayError

# ---- helpers ---------------------------------------------------------------------------------------


def dump(value: Any) -> bytes:
    return orjson.dumps(value)


def _force(value: Any) -> Any:
    """Consume pydantic's lazy iterables, so that every nested item is validated."""
    if type(value).__name__ == "ValidatorIterator":
        return [_force(v) for v in value]
    if isinstance(value, dict):
        return {k: _force(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_force(v) for v in value]
    return value


#: Kept alive while their lazy validators run (pydantic-core panics if the adapter is gone).
CREATE = pydantic.TypeAdapter(MessageCreateParamsNonStreaming)
CREATE_STREAMING = pydantic.TypeAdapter(MessageCreateParamsStreaming)
COUNT = pydantic.TypeAdapter(MessageCountTokensParams)


def sdk_params(body: bytes) -> dict[str, Any]:
    """The body, validated as the SDK's MessageCreateParams (every nested block included)."""
    payload = orjson.loads(body)
    _force((CREATE_STREAMING if payload.get("stream") else CREATE).validate_python(payload))
    return payload


def bad(call: Any, *args: Any) -> RelayError:
    with pytest.raises(RelayError) as info:
        call(*args)
    return info.value


def sdk_client(status: int, body: bytes, seen: list[bytes] | None = None) -> anthropic.Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(request.content)
        return httpx2.Response(status, content=body, headers={"content-type": "application/json"})

    transport = httpx2.MockTransport(handler)
    return anthropic.Anthropic(
        api_key="k", base_url="http://relay.test", http_client=httpx2.Client(transport=transport), max_retries=0
    )


def request(**fields: Any) -> ir.Request:
    base: dict[str, Any] = {"model": "public", "system": (), "messages": (ir.Message("user", (ir.Text("hi"),)),)}
    return ir.Request(**{**base, **fields})


def encoded(req: ir.Request, model: str = "claude-up", **kwargs: Any) -> dict[str, Any]:
    return sdk_params(codec.encode_request(req, model, **kwargs))


# ---- a client request with every content kind ----------------------------------------------------------

PNG = "iVBORw0KGgo="
PDF = "JVBERi0xLjQK"
FULL: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    "title": "Spec",
                },
                {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "héllo"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkYIBxgCKkB+/=="},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
                {"type": "text", "text": "Calling."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"unit": "c", "city": "Paris"}},
                {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18°C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01B",
                    "content": [
                        {"type": "text", "text": "noon"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
                    ],
                    "is_error": True,
                },
                {"type": "text", "text": "Thanks"},
            ],
        },
    ],
    "temperature": 0.5,
    "top_k": 40,
    "stop_sequences": ["END"],
    "stream": True,
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "strict": True,
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "metadata": {"user_id": "u-1"},
    "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
}

FULL_IR = ir.Request(
    model="claude-sonnet-4-5",
    system=(ir.Text("Be brief."), ir.Text("Be kind.")),
    messages=(
        ir.Message(
            "user",
            (
                ir.Text("Look:"),
                ir.Image(data=PNG, media_type="image/png"),
                ir.Image(url="https://example.com/cat.jpg"),
                ir.Document(media_type="application/pdf", data=PDF, name="Spec"),
                ir.Document(media_type="application/pdf", url="https://example.com/a.pdf"),
                ir.Document(media_type="text/plain", data=base64.b64encode("héllo".encode()).decode()),
            ),
        ),
        ir.Message(
            "assistant",
            (
                ir.Reasoning("Let me think.", signature="EqQBCkYIBxgCKkB+/==", dialect="anthropic"),
                ir.Reasoning(redacted="EmwKAhgBEgy3va3pzix/LafPsn4a", dialect="anthropic"),
                ir.Text("Calling."),
                ir.ToolCall("toolu_01A", "get_weather", '{"unit":"c","city":"Paris"}'),
                ir.ToolCall("toolu_01B", "get_time", "{}"),
            ),
        ),
        ir.Message(
            "user",
            (
                ir.ToolResult("toolu_01A", "get_weather", (ir.Text("18°C"),)),
                ir.ToolResult(
                    "toolu_01B",
                    "get_time",
                    (ir.Text("noon"), ir.Image(data="/9j/", media_type="image/jpeg")),
                    is_error=True,
                ),
                ir.Text("Thanks"),
            ),
        ),
    ),
    stream=True,
    max_tokens=1024,
    temperature=0.5,
    top_k=40,
    stop=("END",),
    tools=(
        ir.Tool(
            "get_weather",
            "Weather.",
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            strict=True,
        ),
        ir.Tool("get_time", None, {"type": "object", "properties": {}}),
    ),
    tool_choice=ir.ToolChoice("auto"),
    parallel_tool_calls=False,
    output=ir.OutputFormat(kind="json_schema", schema={"type": "object"}),
    extra={"metadata": {"user_id": "u-1"}},
)


def test_decode_request_every_content_kind():
    assert sdk_params(dump(FULL))  # the fixture itself is a valid SDK request
    assert codec.decode_request(dump(FULL)) == FULL_IR


def test_identity_round_trip_keeps_the_request():
    body = codec.encode_request(codec.decode_request(dump(FULL)), "claude-up", same_dialect=True)
    expected = copy.deepcopy(FULL)
    expected["model"] = "claude-up"
    del expected["system"][1]["cache_control"]  # block-level cache_control has no IR slot
    assert sdk_params(body) == expected
    assert codec.decode_request(body) == attrs_evolve(FULL_IR, model="claude-up")


def attrs_evolve(obj: Any, **changes: Any) -> Any:
    import attrs

    return attrs.evolve(obj, **changes)


def test_extra_is_sent_only_to_the_same_dialect():
    req = codec.decode_request(dump(FULL))
    assert "metadata" not in encoded(req)
    assert encoded(req, same_dialect=True)["metadata"] == {"user_id": "u-1"}


def test_decode_request_scalars_and_defaults():
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": ""}], "system": ""}
    req = codec.decode_request(dump(body))
    assert req.messages == (ir.Message("user", ()),)
    assert req.system == () and req.stream is False and req.tools == () and req.tool_choice is None
    assert req.reasoning is None and req.output is None and req.extra == {}


@pytest.mark.parametrize(
    ("thinking", "output_config", "expected"),
    [
        ({"type": "enabled", "budget_tokens": 3000}, None, ir.ReasoningConfig(budget_tokens=3000, include=True)),
        (
            {"type": "enabled", "budget_tokens": 3000, "display": "omitted"},
            {"effort": "low"},
            ir.ReasoningConfig(effort="low", budget_tokens=3000, include=False),
        ),
        ({"type": "adaptive"}, None, ir.ReasoningConfig(effort="high", include=True)),
        ({"type": "adaptive", "display": "summarized"}, {"effort": "max"}, ir.ReasoningConfig("xhigh", include=True)),
        ({"type": "disabled"}, None, ir.ReasoningConfig(effort="none")),
        (None, {"effort": "medium"}, ir.ReasoningConfig(effort="medium")),
    ],
)
def test_decode_reasoning(thinking, output_config, expected):
    body: dict[str, Any] = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    if thinking is not None:
        body["thinking"] = thinking
    if output_config is not None:
        body["output_config"] = output_config
    assert codec.decode_request(dump(body)).reasoning == expected


@pytest.mark.parametrize("thinking", [{"type": "enabled", "budget_tokens": 3000}, {"type": "adaptive"}])
def test_thinking_turned_on_asks_other_upstreams_to_show_their_reasoning(thinking):
    """An Anthropic client that turned thinking on gets thinking blocks: Gemini is asked for includeThoughts,
    Responses for a reasoning summary (include None would ask neither)."""
    from relay.dialects.gemini import codec as gemini
    from relay.dialects.openai.responses import codec as openai_responses

    body = {"model": "m", "max_tokens": 5000, "messages": [{"role": "user", "content": "x"}], "thinking": thinking}
    req = codec.decode_request(dump(body))
    assert req.reasoning is not None and req.reasoning.include is True
    to_gemini = orjson.loads(gemini.encode_request(req, "g"))
    assert to_gemini["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
    to_responses = orjson.loads(openai_responses.encode_request(req, "o"))
    assert to_responses["reasoning"]["summary"] == "auto"
    omitted = codec.decode_request(dump({**body, "thinking": {**thinking, "display": "omitted"}}))
    assert omitted.reasoning is not None and omitted.reasoning.include is False
    assert not orjson.loads(gemini.encode_request(omitted, "g"))["generationConfig"]["thinkingConfig"].get(
        "includeThoughts"
    )
    assert "summary" not in orjson.loads(openai_responses.encode_request(omitted, "o"))["reasoning"]
    # back to Anthropic, shown thinking needs no display field (its default), omitted keeps it
    assert "display" not in orjson.loads(codec.encode_request(req, "a"))["thinking"]
    assert orjson.loads(codec.encode_request(omitted, "a"))["thinking"]["display"] == "omitted"


def test_decode_older_output_format_and_tool_choices():
    base = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    req = codec.decode_request(dump({**base, "output_format": {"type": "json_schema", "schema": {"type": "array"}}}))
    assert req.output == ir.OutputFormat(kind="json_schema", schema={"type": "array"})
    for wire, mode, name in (
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        ({"type": "tool", "name": "f"}, "named", "f"),
    ):
        req = codec.decode_request(dump({**base, "tool_choice": wire}))
        assert req.tool_choice == ir.ToolChoice(mode, name) and req.parallel_tool_calls is None


def test_thinking_without_signature_is_not_tagged_anthropic():
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": ""}]}],
    }
    (part,) = codec.decode_request(dump(body)).messages[0].parts
    assert part == ir.Reasoning("t", signature=None, dialect=None)


BASE = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}


def _with(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    body["messages"] = copy.deepcopy(FULL["messages"])
    target: Any = body
    keys = path.split("/")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if value is DELETE:
        del target[int(last) if isinstance(target, list) else last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return body


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "param"),
    [
        ("model", DELETE, "model"),
        ("model", "", "model"),
        ("model", 3, "model"),
        ("max_tokens", DELETE, "max_tokens"),
        ("max_tokens", 0, "max_tokens"),
        ("max_tokens", "5", "max_tokens"),
        ("max_tokens", True, "max_tokens"),
        ("messages", [], "messages"),
        ("messages", "hi", "messages"),
        ("messages/0", "hi", "messages[0]"),
        ("messages/0/role", "tool", "messages[0].role"),
        ("messages/0/content", 5, "messages[0].content"),
        ("messages/0/content/0", "x", "messages[0].content[0]"),
        ("messages/0/content/0", {"type": "search_result"}, "messages[0].content[0].type"),
        ("messages/0/content/0", {"type": "text"}, "messages[0].content[0].text"),
        ("messages/0/content/1/source/media_type", DELETE, "messages[0].content[1].source.media_type"),
        ("messages/0/content/1/source/data", 5, "messages[0].content[1].source.data"),
        ("messages/0/content/1/source", {"type": "file", "file_id": "f"}, "messages[0].content[1].source.type"),
        ("messages/0/content/1/source", "x", "messages[0].content[1].source"),
        ("messages/0/content/2/source/url", DELETE, "messages[0].content[2].source.url"),
        ("messages/0/content/3/source", {"type": "content", "content": []}, "messages[0].content[3].source.type"),
        ("messages/0/content/3/title", 5, "messages[0].content[3].title"),
        (
            "messages/0/content/0",
            {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            "messages[0].content[0].type",
        ),
        ("messages/1/content/0", {"type": "tool_result", "tool_use_id": "t"}, "messages[1].content[0].type"),
        ("messages/1/content/0/signature", 5, "messages[1].content[0].signature"),
        ("messages/1/content/1/data", DELETE, "messages[1].content[1].data"),
        ("messages/1/content/3/id", DELETE, "messages[1].content[3].id"),
        ("messages/1/content/3/input", "{}", "messages[1].content[3].input"),
        ("messages/2/content/0/tool_use_id", DELETE, "messages[2].content[0].tool_use_id"),
        ("messages/2/content/0/content", 5, "messages[2].content[0].content"),
        ("messages/2/content/0/is_error", "yes", "messages[2].content[0].is_error"),
        ("messages/2/content/1/content/0", {"type": "document", "source": {}}, "messages[2].content[1].content[0]"),
        ("system", 5, "system"),
        ("system", [{"type": "image"}], "system[0]"),
        ("system", [{"type": "text"}], "system[0].text"),
        ("stop_sequences", "END", "stop_sequences"),
        ("stop_sequences", ["a", 1], "stop_sequences[1]"),
        ("temperature", "hot", "temperature"),
        ("top_k", 1.5, "top_k"),
        ("stream", "yes", "stream"),
        ("tools", {}, "tools"),
        ("tools", ["x"], "tools[0]"),
        ("tools", [{"type": "web_search_20250305", "name": "web_search", "max_uses": "5"}], "tools[0].max_uses"),
        ("tools", [{"name": "f"}], "tools[0].input_schema"),
        ("tools", [{"input_schema": {}}], "tools[0].name"),
        ("tools", [{"name": "f", "input_schema": {}, "description": 5}], "tools[0].description"),
        ("tool_choice", "auto", "tool_choice"),
        ("tool_choice", {"type": "function"}, "tool_choice.type"),
        ("tool_choice", {"type": "tool"}, "tool_choice.name"),
        ("tool_choice", {"type": "auto", "disable_parallel_tool_use": "no"}, "tool_choice.disable_parallel_tool_use"),
        ("thinking", {"type": "on"}, "thinking.type"),
        ("thinking", {"type": "enabled"}, "thinking.budget_tokens"),
        ("thinking", "enabled", "thinking"),
        ("thinking", {"type": "adaptive", "display": 1}, "thinking.display"),
        ("output_config", {"effort": "extreme"}, "output_config.effort"),
        ("output_config", {"format": {"type": "json_object"}}, "output_config.format"),
        ("output_config", {"format": {"type": "json_schema"}}, "output_config.format.schema"),
        ("output_format", {"type": "text"}, "output_format"),
    ],
)
def test_decode_request_errors_name_the_parameter(path, value, param):
    error = bad(codec.decode_request, dump(_with(path, value)))
    assert (error.status, error.kind, error.param) == (400, "invalid_request", param)
    assert param.split(".")[-1].split("[")[0] in error.message or "cannot be converted" in error.message


@pytest.mark.parametrize("body", [b"{not json", b"[1]", b'"x"'])
def test_decode_request_rejects_bodies_that_are_not_objects(body):
    error = bad(codec.decode_request, body)
    assert error.status == 400 and error.param is None


# ---- encoding requests for an Anthropic upstream ----------------------------------------------------------


def test_encode_never_sends_empty_text_and_merges_turns():
    req = request(
        system=(ir.Text(""), ir.Text("sys")),
        messages=(
            ir.Message("user", (ir.Text("a"), ir.Text(""))),
            ir.Message("user", (ir.Text("b"),)),
            ir.Message("assistant", (ir.Text(""),)),
            ir.Message("assistant", (ir.Reasoning("other", dialect="openai_chat"), ir.Text("c"))),
            ir.Message("user", (ir.Text(""),)),
            ir.Message("assistant", (ir.Text("d"),)),
        ),
    )
    body = encoded(req)
    assert body["system"] == "sys"
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
    ]
    assert b'"text":""' not in codec.encode_request(req, "m")


def test_encode_puts_tool_results_first_in_the_next_user_turn():
    req = request(
        messages=(
            ir.Message("user", (ir.Text("go"),)),
            ir.Message("assistant", (ir.ToolCall("call_1", "f", '{"x":1}'), ir.ToolCall("call_2", "g", ""))),
            ir.Message("user", (ir.Text("also"), ir.ToolResult("call_1", "f", (ir.Text("one"),)))),
            ir.Message("user", (ir.ToolResult("call_2", "g", (), is_error=True), ir.Image(url="https://x/y.png"))),
        ),
    )
    turns = encoded(req)["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {}},
    ]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "one"},
        {"type": "tool_result", "tool_use_id": "call_2", "is_error": True},
        {"type": "text", "text": "also"},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
    ]


def test_encode_tool_ids_anthropic_accepts_the_same_for_call_and_result():
    req = request(
        messages=(
            ir.Message("assistant", (ir.ToolCall("functions.get:0", "get", "{}"),)),
            ir.Message("user", (ir.ToolResult("functions.get:0", "get", (ir.Text("ok"),)),)),
        )
    )
    turns = encoded(req)["messages"]
    assert turns[0]["content"][0]["id"] == turns[1]["content"][0]["tool_use_id"] == "functions_get_0"


def test_encode_thinking_only_from_anthropic_byte_identical():
    signature = "EqQBCkYIBxgCKkB+/==\u2028\U0001f600"
    req = request(
        messages=(
            ir.Message("user", (ir.Text("q"),)),
            ir.Message(
                "assistant",
                (
                    ir.Reasoning("mine", signature=signature, dialect="anthropic"),
                    ir.Reasoning(redacted="REDACTED==", dialect="anthropic"),
                    ir.Reasoning("unsigned", dialect="anthropic"),
                    ir.Reasoning("gemini's", signature="gsig", dialect="gemini"),
                    ir.Reasoning(redacted="x", dialect="openai_responses"),
                    ir.Reasoning("chat", dialect="openai_chat"),
                    ir.ToolCall("t1", "f", "{}", signature="gsig2", signature_dialect="gemini"),
                ),
            ),
        ),
    )
    body = codec.encode_request(req, "m")
    assert encoded(req)["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "mine", "signature": signature},
        {"type": "redacted_thinking", "data": "REDACTED=="},
        {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
    ]
    assert b"gsig" not in body and b"chat" not in body
    assert orjson.dumps(signature)[1:-1] in body  # the exact bytes of the signature


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking", "expected_max"),
    [
        (ir.ReasoningConfig(effort="low"), None, {"type": "enabled", "budget_tokens": 2048}, 4096 + 2048),
        (ir.ReasoningConfig(effort="high"), 32000, {"type": "enabled", "budget_tokens": 16384}, 32000),
        (ir.ReasoningConfig(effort="medium"), 8192, {"type": "enabled", "budget_tokens": 8192}, 8192 + 8192),
        (ir.ReasoningConfig(budget_tokens=100), 5000, {"type": "enabled", "budget_tokens": 1024}, 5000),
        (ir.ReasoningConfig(budget_tokens=-1), 20000, {"type": "enabled", "budget_tokens": 8192}, 20000),
        (ir.ReasoningConfig(effort="xhigh"), 64000, {"type": "enabled", "budget_tokens": 32768}, 64000),
        (ir.ReasoningConfig(include=True), 10000, {"type": "enabled", "budget_tokens": 8192}, 10000),
        (
            ir.ReasoningConfig(effort="minimal", include=False),
            2000,
            {"type": "enabled", "budget_tokens": 1024, "display": "omitted"},
            2000,
        ),
        (ir.ReasoningConfig(effort="none"), 100, None, 100),
        (ir.ReasoningConfig(budget_tokens=0), None, None, 4096),
        (ir.ReasoningConfig(include=False), 100, None, 100),
        (None, None, None, 4096),
    ],
)
def test_encode_thinking_budget(reasoning, max_tokens, thinking, expected_max):
    body = encoded(request(reasoning=reasoning, max_tokens=max_tokens))
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == expected_max
    if thinking is not None:
        assert 1024 <= thinking["budget_tokens"] < body["max_tokens"]


def test_sampling_rules_with_and_without_thinking():
    hot = request(temperature=0.3, top_p=0.5, top_k=5, max_tokens=50000)
    assert {k: encoded(hot).get(k) for k in ("temperature", "top_p", "top_k")} == {
        "temperature": 0.3,
        "top_p": None,  # recent models refuse temperature with top_p
        "top_k": 5,
    }
    assert encoded(hot, same_dialect=True)["top_p"] == 0.5
    assert encoded(request(top_p=0.5))["top_p"] == 0.5
    thinking = attrs_evolve(hot, reasoning=ir.ReasoningConfig(effort="low"))
    body = encoded(thinking)
    assert "temperature" not in body and "top_p" not in body and "top_k" not in body
    body = encoded(attrs_evolve(thinking, temperature=1, top_p=0.97))
    assert body["temperature"] == 1 and "top_p" not in body
    assert encoded(attrs_evolve(thinking, temperature=None, top_p=0.97))["top_p"] == 0.97


def test_forced_tool_choice_turns_thinking_off():
    tool = ir.Tool("f", "F.", {"type": "object", "properties": {}})
    for choice, wire in (
        (ir.ToolChoice("required"), {"type": "any"}),
        (ir.ToolChoice("named", "f"), {"type": "tool", "name": "f"}),
    ):
        body = encoded(request(tools=(tool,), tool_choice=choice, reasoning=ir.ReasoningConfig(effort="high")))
        assert "thinking" not in body and body["tool_choice"] == wire
    body = encoded(request(tools=(tool,), tool_choice=ir.ToolChoice("auto"), reasoning=ir.ReasoningConfig("high")))
    assert body["thinking"]["budget_tokens"] == 16384


def test_thinking_off_when_the_last_tool_turn_has_no_thinking_block():
    """Anthropic refuses thinking when the assistant turn that called tools does not start with thinking."""
    call = ir.ToolCall("c1", "f", "{}")
    result = ir.Message("user", (ir.ToolResult("c1", "f", (ir.Text("ok"),)),))
    effort = ir.ReasoningConfig(effort="low")
    for thinking, expected in (
        (ir.Reasoning("chat's", dialect="openai_chat"), None),
        (ir.Reasoning("t", signature="S", dialect="anthropic"), {"type": "enabled", "budget_tokens": 2048}),
        (ir.Reasoning(redacted="R", dialect="anthropic"), {"type": "enabled", "budget_tokens": 2048}),
    ):
        messages = (ir.Message("user", (ir.Text("go"),)), ir.Message("assistant", (thinking, call)), result)
        assert encoded(request(messages=messages, reasoning=effort, max_tokens=9000)).get("thinking") == expected
    earlier = (
        ir.Message("user", (ir.Text("go"),)),
        ir.Message("assistant", (call,)),
        result,
        ir.Message("assistant", (ir.Text("done"),)),
        ir.Message("user", (ir.Text("again"),)),
    )
    assert encoded(request(messages=earlier, reasoning=effort))["thinking"]["budget_tokens"] == 2048


def test_encode_tools_and_choices():
    tools = (ir.Tool("f", None, {}), ir.Tool("g", "G.", {"type": "object", "properties": {"a": {}}}, strict=False))
    body = encoded(request(tools=tools, tool_choice=ir.ToolChoice("none"), parallel_tool_calls=False))
    assert body["tools"] == [
        {"name": "f", "input_schema": {"type": "object"}},
        {
            "name": "g",
            "description": "G.",
            "input_schema": {"type": "object", "properties": {"a": {}}},
            "strict": False,
        },
    ]
    assert body["tool_choice"] == {"type": "none"}
    body = encoded(request(tools=tools, parallel_tool_calls=False))
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    body = encoded(request(tools=tools, tool_choice=ir.ToolChoice("required"), parallel_tool_calls=True))
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": False}
    assert "tool_choice" not in encoded(request(tool_choice=ir.ToolChoice("auto")))  # no tools, no choice


def test_encode_images_and_documents():
    text_doc = base64.b64encode("plain ✓".encode()).decode()
    parts = (
        ir.Image(data="AAAA", media_type="image/webp"),
        ir.Image(url="data:image/gif;base64,R0lG"),
        ir.Image(url="https://example.com/a.png", detail="high"),
        ir.Document(media_type="application/pdf", data=PDF, name="a.pdf"),
        ir.Document(media_type="application/pdf", url="https://example.com/a.pdf"),
        ir.Document(media_type="text/plain", data=text_doc),
        ir.Document(media_type="image/jpeg", data="/9j/"),
    )
    (turn,) = encoded(request(messages=(ir.Message("user", parts),)))["messages"]
    assert turn["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "AAAA"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
            "title": "a.pdf",
        },
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain ✓"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
    ]


def test_encode_output_formats():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = encoded(request(output=ir.OutputFormat("json_schema", name="x", schema=schema, strict=True)))
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    body = encoded(request(system=(ir.Text("sys"),), output=ir.OutputFormat("json_object")))
    assert body["system"] == [
        {"type": "text", "text": "sys"},
        {"type": "text", "text": codec.JSON_OBJECT_INSTRUCTION},
    ]
    assert "output_config" not in encoded(request(output=ir.OutputFormat("text")))


def test_encode_stream_stop_and_model():
    body = encoded(request(stream=True, stop=("END", " x"), max_tokens=7), model="claude-haiku")
    assert body["stream"] is True and body["stop_sequences"] == ["END", " x"]
    assert body["model"] == "claude-haiku" and body["max_tokens"] == 7
    assert "stream" not in encoded(request())


@pytest.mark.parametrize(
    ("part", "role", "param"),
    [
        (ir.ToolCall("t", "f", "[1]"), "assistant", "messages[0].parts[0].arguments"),
        (ir.ToolCall("t", "f", '{"a":'), "assistant", "messages[0].parts[0].arguments"),
        (ir.ToolCall("", "f", "{}"), "assistant", "messages[0].parts[0]"),
        (ir.ToolCall("t", "f", "{}"), "user", "messages[0].parts[0]"),
        (ir.ToolResult("t", "f", ()), "assistant", "messages[0].parts[0]"),
        (ir.Image(), "user", "messages[0].parts[0]"),
        (ir.Image(url="gs://bucket/a.png"), "user", "messages[0].parts[0]"),
        (ir.Image(url="data:image/png,raw"), "user", "messages[0].parts[0].url"),
        (ir.Document(media_type="application/msword", data="AAAA"), "user", "messages[0].parts[0].media_type"),
        (ir.Document(media_type="text/plain", url="https://x/a.txt"), "user", "messages[0].parts[0]"),
        (ir.Document(media_type="text/plain", data="!!not base64"), "user", "messages[0].parts[0].data"),
    ],
)
def test_encode_refuses_what_anthropic_cannot_express(part, role, param):
    error = bad(codec.encode_request, request(messages=(ir.Message(role, (part,)),)), "m")
    assert (error.status, error.param) == (400, param)


@pytest.mark.parametrize("stop", [("\n",), ("ok", " \t")])
def test_encode_refuses_whitespace_stop_sequences(stop):
    error = bad(codec.encode_request, request(stop=stop), "m")
    assert error.status == 400 and error.param == f"stop[{len(stop) - 1}]"


def test_sdk_sends_what_relay_decodes():
    """The SDK's own request bytes decode; their re-encoding is what the SDK sent."""
    seen: list[bytes] = []
    reply = dump(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    )
    client = sdk_client(200, reply, seen)
    client.messages.create(
        model="claude-x",
        max_tokens=2048,
        system="s",
        messages=[{"role": "user", "content": "hi"}],
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[{"name": "f", "input_schema": {"type": "object", "properties": {}}}],
    )
    req = codec.decode_request(seen[0])
    assert req.reasoning == ir.ReasoningConfig(budget_tokens=1024, include=True) and req.max_tokens == 2048
    assert orjson.loads(codec.encode_request(req, "claude-x", same_dialect=True)) == orjson.loads(seen[0])


# ---- count_tokens ------------------------------------------------------------------------------------------


def test_count_tokens_request_round_trip():
    body = {
        k: v
        for k, v in FULL.items()
        if k not in ("max_tokens", "stream", "temperature", "top_k", "stop_sequences", "metadata")
    }
    req = codec.decode_count_request(dump(body))
    assert req.max_tokens is None and req.stream is False
    out = orjson.loads(codec.encode_count_request(req, "claude-up"))
    _force(COUNT.validate_python(out))
    assert set(out) == {"model", "messages", "system", "tools", "tool_choice", "output_config"}
    assert out["messages"] == FULL["messages"] and out["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Be kind."},
    ]
    assert codec.decode_count_request(codec.encode_count_request(req, "claude-sonnet-4-5")) == attrs_evolve(
        req, extra={}
    )
    thinking = orjson.loads(codec.encode_count_request(request(reasoning=ir.ReasoningConfig(effort="low")), "m"))
    assert thinking["thinking"] == {"type": "enabled", "budget_tokens": 2048} and "max_tokens" not in thinking


def test_count_tokens_request_errors():
    assert bad(codec.decode_count_request, dump({"model": "m", "messages": []})).param == "messages"
    assert (
        bad(
            codec.decode_count_request,
            dump({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}),
        ).param
        == "max_tokens"
    )
    assert bad(codec.decode_request, dump({"model": "m", "messages": [{"role": "user", "content": "x"}]})).param == (
        "max_tokens"
    )


def test_count_tokens_response():
    assert codec.decode_count_response(b'{"input_tokens": 42}') == 42
    body = codec.encode_count_response(42)
    assert body == b'{"input_tokens":42}'
    assert MessageTokensCount.model_validate_json(body).input_tokens == 42
    for wrong in (b"{}", b'{"input_tokens": "4"}', b'{"input_tokens": -1}', b"[]", b"nope", b'{"input_tokens":true}'):
        error = bad(codec.decode_count_response, wrong)
        assert error.status == 502


# ---- responses ---------------------------------------------------------------------------------------------

UPSTREAM_MESSAGE: dict[str, Any] = {
    "id": "msg_01ABC",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Hmm.", "signature": "EqQBsig=="},
        {"type": "redacted_thinking", "data": "EmwKredacted"},
        {"type": "text", "text": "Checking.", "citations": None},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris", "days": 2}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 20,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 100,
        "output_tokens": 70,
        "output_tokens_details": {"thinking_tokens": 30},
    },
}

UPSTREAM_IR = ir.Response(
    id="msg_01ABC",
    model="claude-sonnet-4-5-20250929",
    parts=(
        ir.Reasoning("Hmm.", signature="EqQBsig==", dialect="anthropic"),
        ir.Reasoning(redacted="EmwKredacted", dialect="anthropic"),
        ir.Text("Checking."),
        ir.WebSearch("srvtoolu_1", queries=("q",)),  # a web search's call and result: one search
        ir.ToolCall("toolu_01", "get_weather", '{"city":"Paris","days":2}'),
    ),
    finish_reason="tool_calls",
    usage=ir.Usage(input_tokens=125, output_tokens=70, cached_tokens=100, cache_write_tokens=5, reasoning_tokens=30),
)


def test_decode_response():
    assert Message.model_validate(UPSTREAM_MESSAGE)
    assert codec.decode_response(dump(UPSTREAM_MESSAGE)) == UPSTREAM_IR


@pytest.mark.parametrize(
    ("stop", "calls", "finish"),
    [
        ("end_turn", False, "stop"),
        ("end_turn", True, "tool_calls"),
        ("tool_use", True, "tool_calls"),
        ("tool_use", False, "stop"),
        ("stop_sequence", False, "stop"),
        ("pause_turn", False, "stop"),
        ("max_tokens", True, "length"),
        ("model_context_window_exceeded", False, "length"),
        ("refusal", False, "content_filter"),
        ("something_new", False, "stop"),
        (None, False, "stop"),
    ],
)
def test_decode_response_finish_reasons(stop, calls, finish):
    content = [{"type": "tool_use", "id": "t", "name": "f", "input": {}}] if calls else []
    message = {**UPSTREAM_MESSAGE, "content": content, "stop_reason": stop, "stop_sequence": "END"}
    resp = codec.decode_response(dump(message))
    assert resp.finish_reason == finish and resp.stop_sequence == "END"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        dump({"id": "x"}),
        dump({**UPSTREAM_MESSAGE, "content": "text"}),
        dump({**UPSTREAM_MESSAGE, "content": ["text"]}),
        dump({**UPSTREAM_MESSAGE, "content": [{"type": "text", "text": 5}]}),
        dump({**UPSTREAM_MESSAGE, "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]}),
        dump({**UPSTREAM_MESSAGE, "content": [{"type": "thinking", "thinking": None, "signature": "s"}]}),
    ],
)
def test_decode_response_malformed_is_502(body):
    error = bad(codec.decode_response, body)
    assert error.status == 502 and error.kind == "upstream"


def test_encode_response_is_an_sdk_message():
    client_req = request(model="my-alias")
    body = codec.encode_response(UPSTREAM_IR, client_req)
    message = Message.model_validate_json(body)
    assert message.id == "msg_01ABC" and message.model == "my-alias" and message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert message.content[0].signature == "EqQBsig=="  # type: ignore[union-attr]
    assert message.usage.input_tokens == 20 and message.usage.cache_read_input_tokens == 100
    assert message.usage.cache_creation_input_tokens == 5 and message.usage.output_tokens == 70
    assert message.usage.output_tokens_details is not None and message.usage.output_tokens_details.thinking_tokens == 30
    kept = tuple(p for p in UPSTREAM_IR.parts if not isinstance(p, ir.WebSearch))  # a search has no client block
    assert codec.decode_response(body) == attrs_evolve(UPSTREAM_IR, model="my-alias", parts=kept)  # round trip
    assert sdk_client(200, body).messages.create(model="my-alias", max_tokens=5, messages=[]) == message


def test_encode_response_from_other_dialects():
    resp = ir.Response(
        id="chatcmpl-abc",
        model="gpt-x",
        parts=(
            ir.Reasoning("chat thoughts", dialect="openai_chat"),
            ir.Reasoning("gemini thoughts", signature="GSIG", dialect="gemini"),
            ir.Reasoning("", signature="ENC", dialect="openai_responses"),
            ir.Reasoning(redacted="R", dialect="gemini"),
            ir.Text(""),
            ir.Text("Answer"),
            ir.ToolCall("", "f", ""),
            ir.ToolCall("call_2", "g", '{"b":1,"a":2}', signature="GSIG2", signature_dialect="gemini"),
        ),
        finish_reason="stop",
        usage=ir.Usage(input_tokens=10, output_tokens=5, cached_tokens=4),
        created=123,
    )
    thinking = request(reasoning=ir.ReasoningConfig(budget_tokens=1024, include=True))
    body = codec.encode_response(resp, thinking)
    message = Message.model_validate_json(body)
    assert b"GSIG" not in body and b"ENC" not in body  # other providers' proofs only wrapped, in signatures
    assert message.id == "msg_abc"
    blocks = [b.model_dump(exclude_none=True) for b in message.content]
    for block in blocks:
        if block["type"] == "thinking":
            block["signature"] = envelope.unwrap(block["signature"])
    assert blocks == [
        {"type": "thinking", "thinking": "chat thoughts", "signature": envelope.Proof("openai_chat", "reasoning")},
        {
            "type": "thinking",
            "thinking": "gemini thoughts",
            "signature": envelope.Proof("gemini", "reasoning", signature="GSIG"),
        },
        {"type": "thinking", "thinking": "", "signature": envelope.Proof("openai_responses", "reasoning", "ENC")},
        {"type": "thinking", "thinking": "", "signature": envelope.Proof("gemini", "reasoning", redacted="R")},
        {"type": "text", "text": "Answer"},
        {"type": "tool_use", "id": codec.tool_id("", "msg_abc", 6), "name": "f", "input": {}},
        {"type": "thinking", "thinking": "", "signature": envelope.Proof("gemini", "call", "GSIG2", call="call_2")},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {"b": 1, "a": 2}},
    ]
    assert message.content[5].id.startswith("toolu_")  # type: ignore[union-attr]
    # a client that did not turn thinking on gets no thinking block for a call's proof
    unasked = Message.model_validate_json(codec.encode_response(resp, request()))
    assert [b.type for b in unasked.content][-2:] == ["tool_use", "tool_use"]
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 6 and message.usage.cache_read_input_tokens == 4
    assert body == codec.encode_response(resp, thinking)  # deterministic


@pytest.mark.parametrize(
    ("finish", "calls", "sequence", "stop_reason", "stop_sequence"),
    [
        ("stop", False, None, "end_turn", None),
        ("stop", False, "END", "stop_sequence", "END"),
        ("tool_calls", False, None, "end_turn", None),
        ("stop", True, None, "tool_use", None),
        ("length", True, None, "max_tokens", None),
        ("content_filter", False, "END", "refusal", None),
    ],
)
def test_encode_response_stop_reasons(finish, calls, sequence, stop_reason, stop_sequence):
    parts = (ir.ToolCall("t", "f", "{}"),) if calls else (ir.Text("x"),)
    resp = ir.Response("r", "m", parts, finish, stop_sequence=sequence)
    message = Message.model_validate_json(codec.encode_response(resp, request()))
    assert (message.stop_reason, message.stop_sequence) == (stop_reason, stop_sequence)
    assert message.usage.input_tokens == 0 and message.usage.output_tokens == 0


def test_encode_response_cut_tool_arguments():
    cut = ir.Response("r", "m", (ir.Text("x"), ir.ToolCall("t", "f", '{"city": "Pa')), "length")
    message = Message.model_validate_json(codec.encode_response(cut, request()))
    assert [b.type for b in message.content] == ["text"] and message.stop_reason == "max_tokens"
    broken = attrs_evolve(cut, finish_reason="tool_calls")
    error = bad(codec.encode_response, broken, request())
    assert error.status == 502 and "'f'" in error.message


# ---- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "code", "wire_type", "sdk_error"),
    [
        (400, "invalid_request", None, "invalid_request_error", anthropic.BadRequestError),
        (401, "authentication", None, "authentication_error", anthropic.AuthenticationError),
        (402, "invalid_request", None, "billing_error", anthropic.APIStatusError),
        (403, "permission", None, "permission_error", anthropic.PermissionDeniedError),
        (404, "not_found", None, "not_found_error", anthropic.NotFoundError),
        (405, "method_not_allowed", None, "invalid_request_error", anthropic.APIStatusError),
        (413, "request_too_large", None, "request_too_large", anthropic.APIStatusError),
        (429, "rate_limit", None, "rate_limit_error", anthropic.RateLimitError),
        (500, "internal", None, "api_error", anthropic.InternalServerError),
        (502, "upstream", "upstream_malformed", "api_error", anthropic.InternalServerError),
        (504, "timeout", None, "timeout_error", anthropic.InternalServerError),
        (529, "upstream", "overloaded_error", "overloaded_error", anthropic.InternalServerError),
        (503, "upstream", "rate_limit_error", "rate_limit_error", anthropic.InternalServerError),
    ],
)
def test_encode_error(status, kind, code, wire_type, sdk_error):
    error = RelayError(status, kind, "what went wrong", code=code, headers=((b"retry-after", b"3"),))
    got_status, headers, body = codec.encode_error(error)
    assert got_status == status
    assert headers == ((b"content-type", b"application/json"), (b"retry-after", b"3"))
    message = "Your credit balance is too low: what went wrong" if status == 402 else "what went wrong"  # billing
    assert orjson.loads(body) == {"type": "error", "error": {"type": wire_type, "message": message}}
    if wire_type != "request_too_large":  # Anthropic's 413 type, missing from the SDK's ErrorResponse union
        assert ErrorResponse.model_validate_json(body).error.type == wire_type
    with pytest.raises(sdk_error) as info:
        sdk_client(status, body).messages.create(model="m", max_tokens=5, messages=[])
    assert info.value.status_code == status and "what went wrong" in info.value.message
    assert info.value.body == orjson.loads(body)


def test_encode_error_with_request_id():
    _, _, body = codec.encode_error(RelayError(429, "rate_limit", "slow down"), request_id="req_123")
    parsed = ErrorResponse.model_validate_json(body)
    assert parsed.request_id == "req_123" and parsed.error.type == "rate_limit_error"


def test_encode_stream_error():
    frame = codec.encode_stream_error(RelayError(529, "upstream", "Overloaded", code="overloaded_error"))
    assert (
        frame == b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    frame = codec.encode_stream_error(RelayError(504, "timeout", "slow"), request_id="req_1")
    assert frame.endswith(b'"message":"slow"},"request_id":"req_1"}\n\n')


@pytest.mark.parametrize(
    ("status", "body", "message", "code", "kind"),
    [
        (
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            "Overloaded",
            "overloaded_error",
            "upstream",
        ),
        (
            400,
            b'{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"},'
            b'"request_id":"req_9"}',
            "max_tokens: too big",
            "invalid_request_error",
            "invalid_request",
        ),
        (401, b'{"error":{"message":"bad key"}}', "bad key", None, "authentication"),
        (502, b"<html>bad gateway</html>", "<html>bad gateway</html>", None, "upstream"),
        (500, b"", "(empty body)", None, "internal"),
        (200, b'{"type":"error","error":{"type":"api_error","message":"odd"}}', "odd", "api_error", "upstream"),
    ],
)
def test_decode_error(status, body, message, code, kind):
    error = codec.decode_error(status, body)
    assert (error.status, error.message, error.code, error.kind) == (
        status if status >= 400 else 502,
        message,
        code,
        kind,
    )


def test_upstream_error_passes_through_with_its_type():
    upstream = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    status, _, body = codec.encode_error(codec.decode_error(529, upstream))
    assert (status, body) == (529, upstream.replace(b" ", b""))


# ---- passthrough: model names and usage ----------------------------------------------------------------------


def test_rename_model():
    body = dump(UPSTREAM_MESSAGE)
    renamed = orjson.loads(codec.rename_model(body, "alias", "claude-sonnet-4-5"))
    assert renamed == {**UPSTREAM_MESSAGE, "model": "alias"}
    start = dump({"type": "message_start", "message": {**UPSTREAM_MESSAGE, "content": []}})
    assert orjson.loads(codec.rename_model(start, "alias", "up"))["message"]["model"] == "alias"
    delta = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"the \\"model\\" is"}}'
    assert codec.rename_model(delta, "alias", "up") is delta
    tool = b'{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","input":{"model":"x"}}}'
    assert codec.rename_model(tool, "alias", "up") is tool
    assert codec.rename_model(body, "same", "same") is body
    assert codec.rename_model(b"not json", "a", "b") == b"not json"


def test_usage_reader_stream_events():
    reader = codec.UsageReader()
    assert reader.usage is None
    start = {
        "type": "message_start",
        "message": {
            **UPSTREAM_MESSAGE,
            "content": [],
            "usage": {
                "input_tokens": 20,
                "cache_creation_input_tokens": 5,
                "cache_read_input_tokens": 100,
                "output_tokens": 1,
            },
        },
    }
    reader.feed(dump(start))
    assert reader.usage == ir.Usage(input_tokens=125, output_tokens=1, cached_tokens=100, cache_write_tokens=5)
    reader.feed(b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"usage"}}')
    reader.feed(b'{"type":"ping"}')
    reader.feed(b'{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":50}}')
    assert reader.usage == ir.Usage(input_tokens=125, output_tokens=50, cached_tokens=100, cache_write_tokens=5)
    reader.feed(
        b'{"type":"message_delta","delta":{},"usage":{"output_tokens":60,"input_tokens":30,'
        b'"cache_read_input_tokens":null}}'
    )
    assert reader.usage == ir.Usage(input_tokens=135, output_tokens=60, cached_tokens=100, cache_write_tokens=5)
    reader.feed(b"{broken usage")
    assert reader.usage is not None and reader.usage.output_tokens == 60


def test_usage_reader_whole_body():
    reader = codec.UsageReader()
    reader.feed(dump(UPSTREAM_MESSAGE))
    assert reader.usage == UPSTREAM_IR.usage


def test_blocks_of_tools_anthropic_ran_itself_are_left_out_of_a_converted_history() -> None:
    body = {
        "model": "m",
        "max_tokens": 64,
        "messages": [
            {"role": "user", "content": "What is Trio?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "trio"}},
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "text", "text": "Trio is a library."},
                    {"type": "code_execution_tool_result", "tool_use_id": "srvtoolu_2", "content": {}},
                ],
            },
            {"role": "user", "content": "Thanks"},
        ],
    }
    req = codec.decode_request(orjson.dumps(body))
    assert req.messages[1].parts == (ir.Text("Trio is a library."),)

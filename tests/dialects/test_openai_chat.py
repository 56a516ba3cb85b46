"""OpenAI Chat Completions: requests to and from the IR, the passthrough helpers, and Relay's errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relay.dialects import ir
from relay.dialects.openai.chat import codec as openai_chat
from relay.dialects.openai.chat.codec import decode_request, encode_request
from relay.errors import RelayError

PDF = "JVBERi0xLjQK"
PNG = "iVBORw0KGgo="


def body(**fields: Any) -> bytes:
    payload = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}], **fields}
    return orjson.dumps(payload)


def decode(**fields: Any) -> ir.Request:
    return decode_request(body(**fields))


def refused(raw: bytes) -> RelayError:
    with pytest.raises(RelayError) as caught:
        decode_request(raw)
    assert caught.value.status == 400
    assert caught.value.kind == "invalid_request"
    return caught.value


def encoded(req: ir.Request, model: str = "up", **options: Any) -> dict[str, Any]:
    return orjson.loads(encode_request(req, model, **options))


def request(*messages: ir.Message, **fields: Any) -> ir.Request:
    return ir.Request(model="gpt-x", system=fields.pop("system", ()), messages=messages, **fields)


# ---- the interface -------------------------------------------------------------------------------------


def test_every_interface_name_is_importable_from_the_codec_module():
    names = (
        "decode_request encode_request decode_response encode_response StreamDecoder StreamEncoder "
        "encode_error encode_stream_error decode_error UsageReader"
    )
    for name in names.split():
        assert callable(getattr(openai_chat, name)), name


def test_names_the_passthrough_endpoints_use_remain():
    for name in (
        "read_request RequestInfo rename_model error_payload error_text refuse_ambiguous encode_passthrough"
    ).split():
        assert callable(getattr(openai_chat, name)), name
    assert openai_chat.error_text(b"  oops \n") == "oops"


# ---- decode_request: messages --------------------------------------------------------------------------


def test_leading_system_and_developer_messages_form_the_system_prompt():
    req = decode(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "Now be verbose."},
        ]
    )
    assert req.system == (ir.Text("Be brief."), ir.Text("Use French."))
    assert req.messages == (
        ir.Message("user", (ir.Text("hi"),)),
        ir.Message("system", (ir.Text("Now be verbose."),)),  # a later system message: a system turn, in place
    )


def test_user_content_parts_of_every_kind():
    req = decode(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    {"type": "file", "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}},
                    {"type": "file", "file": {"file_data": PDF}},
                ],
            }
        ]
    )
    assert req.messages[0].parts == (
        ir.Text("look"),
        ir.Image(data=PNG, media_type="image/png", detail="low"),
        ir.Image(url="https://example.com/cat.jpg"),
        ir.Document(media_type="application/pdf", data=PDF, name="a.pdf"),
        ir.Document(media_type="application/pdf", data=PDF),
    )


def test_assistant_tool_calls_and_tool_results_named_from_the_history():
    req = decode(
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "I should call both.",
                "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": '{"c":"Oslo"}'}},
                    {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "rain"},
            {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "noon"}]},
            {"role": "tool", "tool_call_id": "call_zzz", "content": "?"},
            {"role": "user", "content": "thanks"},
        ]
    )
    assert req.messages[1] == ir.Message(
        "assistant",
        (
            ir.Reasoning("I should call both.", dialect="openai_chat"),
            ir.ToolCall("call_a", "weather", '{"c":"Oslo"}'),
            ir.ToolCall("call_b", "time", "{}"),
        ),
    )
    assert req.messages[2] == ir.Message(
        "user",
        (
            ir.ToolResult("call_a", "weather", (ir.Text("rain"),)),
            ir.ToolResult("call_b", "time", (ir.Text("noon"),)),
            ir.ToolResult("call_zzz", None, (ir.Text("?"),)),
        ),
    )
    assert req.messages[3] == ir.Message("user", (ir.Text("thanks"),))


def test_assistant_text_parts_and_refusals_are_text():
    req = decode(
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "b"}]},
            {"role": "assistant", "content": "", "refusal": "no"},
        ]
    )
    assert req.messages[1].parts == (ir.Text("a"), ir.Text("b"))
    assert req.messages[2].parts == (ir.Text("no"),)


# ---- decode_request: parameters ------------------------------------------------------------------------


def test_parameters_map_to_their_ir_slots_and_the_rest_goes_to_extra():
    req = decode(
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=10,
        max_completion_tokens=20,
        temperature=0.5,
        top_p=1,
        stop="END",
        seed=7,
        user="u1",
        n=1,
        tools=[
            {
                "type": "function",
                "function": {"name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True},
            },
            {"type": "function", "function": {"name": "g"}},
        ],
        tool_choice={"type": "function", "function": {"name": "f"}},
        parallel_tool_calls=False,
        response_format={"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}},
        reasoning_effort="high",
    )
    assert req.stream is True
    assert req.max_tokens == 20  # max_completion_tokens wins
    assert (req.temperature, req.top_p, req.stop) == (0.5, 1, ("END",))
    assert req.tools == (ir.Tool("f", "d", {"type": "object"}, True), ir.Tool("g", None, {}))
    assert req.tool_choice == ir.ToolChoice("named", "f")
    assert req.parallel_tool_calls is False
    assert req.output == ir.OutputFormat("json_schema", "out", {"type": "object"})
    assert req.reasoning == ir.ReasoningConfig(effort="high")
    assert req.extra == {"stream_options": {"include_usage": True}, "seed": 7, "user": "u1", "n": 1}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"stop": ["a", "b"]}, ("a", "b")),
        ({"stop": None}, ()),
    ],
)
def test_stop_as_string_or_list(fields, expected):
    assert decode(**fields).stop == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("auto", ir.ToolChoice("auto")),
        ("none", ir.ToolChoice("none")),
        ("required", ir.ToolChoice("required")),
    ],
)
def test_tool_choice_strings(raw, expected):
    assert decode(tool_choice=raw).tool_choice == expected


@pytest.mark.parametrize("kind", ["text", "json_object"])
def test_response_format_without_schema(kind):
    assert decode(response_format={"type": kind}).output == ir.OutputFormat(kind)


def test_reasoning_effort_max_is_xhigh():
    assert decode(reasoning_effort="max").reasoning == ir.ReasoningConfig(effort="xhigh")
    assert decode(max_tokens=5).max_tokens == 5


# ---- decode_request: errors name the parameter path ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"{not json", None),
        (b"[]", None),
        (orjson.dumps({"messages": [{"role": "user", "content": "x"}]}), "model"),
        (body(messages=[]), "messages"),
        (body(stream="yes"), "stream"),
        (body(messages=[{"role": "function", "content": "x", "name": "f"}]), "messages[0].role"),
        (body(messages=["hi"]), "messages[0]"),
        (body(messages=[{"role": "user", "content": None}]), "messages[0].content"),
        (body(messages=[{"role": "user", "content": [{"type": "video"}]}]), "messages[0].content[0].type"),
        (body(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]), "messages[0].content[0].text"),
        (
            body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]),
            "messages[0].content[0].image_url.url",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:xyz"}}]}]),
            "messages[0].content[0].image_url.url",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]),
            "messages[0].content[0].file.file_id",
        ),
        (
            body(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}],
                    }
                ]
            ),
            "messages[0].content[0].type",
        ),
        (
            body(messages=[{"role": "system", "content": [{"type": "image_url"}]}, {"role": "user", "content": "x"}]),
            "messages[0].content[0].type",
        ),
        (
            body(messages=[{"role": "assistant", "content": "x", "audio": {"id": "a1"}}]),
            "messages[0].audio",
        ),
        (
            body(messages=[{"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]),
            "messages[0].function_call",
        ),
        (
            body(messages=[{"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]}]),
            "messages[0].tool_calls[0].type",
        ),
        (
            body(messages=[{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}]),
            "messages[0].tool_calls[0].id",
        ),
        (
            body(
                messages=[
                    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}]}
                ]
            ),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (body(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
        (body(n=2), "n"),
        (body(n="2"), "n"),
        (body(logprobs=True), "logprobs"),
        (body(modalities=["text", "audio"]), "modalities"),
        (body(audio={"voice": "alloy", "format": "wav"}), "audio"),
        (body(functions=[{"name": "f"}]), "functions"),
        (body(function_call="auto"), "function_call"),
        (body(max_tokens="10"), "max_tokens"),
        (body(max_completion_tokens=1.5), "max_completion_tokens"),
        (body(temperature=True), "temperature"),
        (body(top_p="1"), "top_p"),
        (body(stop=5), "stop"),
        (body(stop=["a", 1]), "stop[1]"),
        (body(tools={}), "tools"),
        (body(tools=[{"type": "custom", "custom": {"name": "x"}}]), "tools[0].type"),
        (body(tools=[{"type": "function", "function": {"name": 3}}]), "tools[0].function.name"),
        (
            body(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
            "tools[0].function.parameters",
        ),
        (body(tools=[{"type": "function", "function": {"name": "f", "strict": "yes"}}]), "tools[0].function.strict"),
        (body(tool_choice="any"), "tool_choice"),
        (body(tool_choice={"type": "allowed_tools", "allowed_tools": {}}), "tool_choice.type"),
        (body(tool_choice={"type": "function", "function": {}}), "tool_choice.function.name"),
        (body(parallel_tool_calls="no"), "parallel_tool_calls"),
        (body(response_format="json"), "response_format"),
        (body(response_format={"type": "xml"}), "response_format.type"),
        (body(response_format={"type": "json_schema", "json_schema": {}}), "response_format.json_schema.name"),
        (body(reasoning_effort="extreme"), "reasoning_effort"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(raw, param):
    assert refused(raw).param == param


def test_a_deciding_field_sent_twice_is_refused():
    raw = b'{"model":"a","model":"b","messages":[{"role":"user","content":"x"}]}'
    assert refused(raw).param == "model"
    openai_chat.refuse_ambiguous(b'{"model":"a","messages":[{"role":"user","content":"\\"model\\""}]}')


# ---- encode_request ------------------------------------------------------------------------------------


def test_encode_a_full_request():
    req = request(
        ir.Message(
            "user",
            (
                ir.Text("look"),
                ir.Image(data=PNG, media_type="image/png", detail="high"),
                ir.Image(url="https://example.com/a.jpg"),
                ir.Document("application/pdf", data=PDF, name="a.pdf"),
            ),
        ),
        ir.Message(
            "assistant",
            (
                ir.Reasoning("hmm", dialect="openai_chat"),
                ir.Reasoning("other", signature="sig", dialect="anthropic"),
                ir.Text("calling"),
                ir.ToolCall("call_1", "f", '{"x":1}', signature="ts", signature_dialect="gemini"),
            ),
        ),
        ir.Message("user", (ir.ToolResult("call_1", "f", (ir.Text("ok"),)),)),
        system=(ir.Text("sys"),),
        max_tokens=100,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop=("X",),
        tools=(ir.Tool("f", "does f", {"type": "object"}, strict=True),),
        tool_choice=ir.ToolChoice("required"),
        parallel_tool_calls=True,
        output=ir.OutputFormat("json_object"),
        reasoning=ir.ReasoningConfig(budget_tokens=16000, include=True),
        extra={"seed": 1},
    )
    assert encoded(req) == {
        "model": "up",
        "messages": [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                    {"type": "file", "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}},
                ],
            },
            {
                "role": "assistant",
                "content": "calling",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}],
                "reasoning_content": "hmm",
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        ],
        "max_completion_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["X"],
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "description": "does f", "parameters": {"type": "object"}, "strict": True},
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": True,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "high",
    }


def test_tool_results_come_first_their_images_and_errors_after():
    req = request(
        ir.Message(
            "user",
            (
                ir.Text("and?"),
                ir.ToolResult("c1", "shot", (ir.Text("see"), ir.Image(data=PNG, media_type="image/png"))),
                ir.ToolResult("c2", "f", (ir.Text("boom"),), is_error=True),
                ir.ToolResult("c3", "g", ()),
            ),
        )
    )
    assert encoded(req)["messages"] == [
        {"role": "tool", "tool_call_id": "c1", "content": "see"},
        {"role": "tool", "tool_call_id": "c2", "content": "Error: boom"},
        {"role": "tool", "tool_call_id": "c3", "content": ""},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
    ]


def test_assistant_with_only_tool_calls_has_null_content():
    req = request(ir.Message("assistant", (ir.ToolCall("c", "f", "{}"),)), ir.Message("assistant", ()))
    messages = encoded(req)["messages"]
    assert messages[0]["content"] is None
    assert messages[1] == {"role": "assistant", "content": ""}


def test_streaming_always_asks_for_usage_and_extra_goes_only_to_the_same_dialect():
    req = decode(stream=True, stream_options={"include_usage": False, "x": 1}, seed=3, user="u")
    assert encoded(req)["stream_options"] == {"include_usage": True}
    same = encoded(req, same_dialect=True)
    assert same["stream_options"] == {"include_usage": True, "x": 1}
    assert (same["seed"], same["user"], same["stream"]) == (3, "u", True)
    plain = encoded(decode(stream_options={"include_usage": True}), same_dialect=True)
    assert "stream" not in plain and "stream_options" not in plain


def test_tool_choice_needs_tools_and_named_choices():
    assert "tool_choice" not in encoded(request(tool_choice=ir.ToolChoice("none"), parallel_tool_calls=False))
    tools = (ir.Tool("f", None, {}),)
    assert encoded(request(tools=tools, tool_choice=ir.ToolChoice("named", "f")))["tool_choice"] == {
        "type": "function",
        "function": {"name": "f"},
    }
    assert encoded(request(tools=tools, tool_choice=ir.ToolChoice("named")))["tool_choice"] == "required"
    assert encoded(request(tools=tools))["tools"] == [{"type": "function", "function": {"name": "f"}}]


@pytest.mark.parametrize(
    ("config", "effort"),
    [
        (ir.ReasoningConfig(effort="minimal"), "minimal"),
        (ir.ReasoningConfig(budget_tokens=0), "none"),
        (ir.ReasoningConfig(budget_tokens=-1), "medium"),
        (ir.ReasoningConfig(budget_tokens=2000), "low"),
        (ir.ReasoningConfig(budget_tokens=100000), "xhigh"),
        (ir.ReasoningConfig(include=True), None),
    ],
)
def test_reasoning_budget_becomes_the_nearest_effort(config, effort):
    assert encoded(request(reasoning=config)).get("reasoning_effort") == effort


def test_json_schema_output_and_max_tokens_field():
    req = request(output=ir.OutputFormat("json_schema", schema={"type": "object"}, strict=True), max_tokens=9)
    body = encoded(req, max_tokens_field="max_tokens")
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": {"type": "object"}, "strict": True},
    }
    assert body["max_tokens"] == 9 and "max_completion_tokens" not in body


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (ir.Message("user", (ir.Document("application/pdf", url="https://x/a.pdf"),)), "messages[0].parts[0]"),
        (ir.Message("user", (ir.Text("a"), ir.ToolCall("c", "f", "{}"))), "messages[0].parts[1]"),
        (ir.Message("assistant", (ir.Image(url="https://x/a.png"),)), "messages[0].parts[0]"),
        (ir.Message("assistant", (ir.ToolResult("c", "f", ()),)), "messages[0].parts[0]"),
    ],
)
def test_content_chat_cannot_hold_is_a_400(message, param):
    with pytest.raises(RelayError) as caught:
        encode_request(request(message), "up")
    assert (caught.value.status, caught.value.param) == (400, param)


# ---- round trip --------------------------------------------------------------------------------------

ROUND_TRIP: dict[str, Any] = {
    "model": "gpt-x",
    "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
            ],
            "reasoning_content": "call it",
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG}", "detail": "auto"}},
                {"type": "file", "file": {"filename": "doc.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}},
            ],
        },
    ],
    "stream": True,
    "stream_options": {"include_usage": True},
    "max_completion_tokens": 50,
    "temperature": 0.3,
    "stop": ["STOP"],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {}, "strict": True}},
    "reasoning_effort": "low",
    "seed": 42,
    "metadata": {"k": "v"},
}


def test_identity_round_trip_keeps_every_field():
    req = decode_request(orjson.dumps(ROUND_TRIP))
    again = orjson.loads(encode_request(req, "gpt-x", same_dialect=True))
    assert again == ROUND_TRIP
    assert decode_request(orjson.dumps(again)) == req


def test_encoding_is_deterministic():
    req = decode_request(orjson.dumps(ROUND_TRIP))
    assert encode_request(req, "m") == encode_request(req, "m")


# ---- passthrough helpers -------------------------------------------------------------------------------


def test_read_request_and_the_passthrough_body():
    raw = body(stream=None)
    info = openai_chat.read_request(raw)
    assert (info.model, info.stream) == ("gpt-x", False)
    assert openai_chat.encode_passthrough(info, "gpt-x", raw) is raw
    assert orjson.loads(openai_chat.encode_passthrough(info, "other", raw))["model"] == "other"


def test_rename_model():
    chunk = b'{"id":"c","model":"up-1","choices":[]}'
    assert orjson.loads(openai_chat.rename_model(chunk, "pub", "up-1"))["model"] == "pub"
    assert openai_chat.rename_model(chunk, "same", "same") is chunk
    assert openai_chat.rename_model(b"[DONE]", "a", "b") == b"[DONE]"
    assert openai_chat.rename_model(b'{"x":1}', "a", "b") == b'{"x":1}'


# ---- Relay's own errors ---------------------------------------------------------------------------------


def test_encode_error_has_the_openai_shape():
    error = RelayError(429, "rate_limit", "slow down", code="rate", headers=((b"retry-after", b"3"),))
    status, headers, data = openai_chat.encode_error(error)
    assert status == 429
    assert headers == ((b"content-type", b"application/json"), (b"retry-after", b"3"))
    assert orjson.loads(data) == {
        "error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate"}
    }
    frame = openai_chat.encode_stream_error(RelayError(400, "invalid_request", "bad", param="messages[0]"))
    assert frame.startswith(b"data: {") and frame.endswith(b"}\n\n")
    assert orjson.loads(frame[6:])["error"]["param"] == "messages[0]"

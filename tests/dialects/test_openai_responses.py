"""OpenAI Responses codec: requests, responses, errors, usage, model renaming and input tokens."""

from __future__ import annotations

from typing import Any

import orjson
import pydantic
import pytest
from openai.types.responses import InputTokenCountResponse, Response, response_create_params
from openai.types.responses.input_token_count_params import InputTokenCountParams

from relay.dialects import envelope, ir
from relay.dialects.common import derived_id
from relay.dialects.openai.responses import codec as R
from relay.errors import RelayError

CREATE_PARAMS = pydantic.TypeAdapter(response_create_params.ResponseCreateParamsNonStreaming)
CREATE_PARAMS_STREAM = pydantic.TypeAdapter(response_create_params.ResponseCreateParamsStreaming)
COUNT_PARAMS = pydantic.TypeAdapter(InputTokenCountParams)


def body(**fields: Any) -> bytes:
    return orjson.dumps({"model": "gpt-5", **fields})


def decode(**fields: Any) -> ir.Request:
    return R.decode_request(body(**fields))


def encoded(req: ir.Request, model: str = "up", *, same_dialect: bool = False) -> dict[str, Any]:
    data = orjson.loads(R.encode_request(req, model, same_dialect=same_dialect))
    (CREATE_PARAMS_STREAM if data.get("stream") else CREATE_PARAMS).validate_python(data)
    return data


def request(*messages: ir.Message, **fields: Any) -> ir.Request:
    return ir.Request(model="client-model", system=fields.pop("system", ()), messages=messages, **fields)


def user(*parts: ir.Part) -> ir.Message:
    return ir.Message("user", parts)


def assistant(*parts: ir.Part) -> ir.Message:
    return ir.Message("assistant", parts)


# ---- decode_request -----------------------------------------------------------------------------------


def test_string_input_and_instructions() -> None:
    req = decode(input="hi", instructions="be brief", stream=True, max_output_tokens=50, temperature=0.2, top_p=1)
    assert req.model == "gpt-5"
    assert req.system == (ir.Text("be brief"),)
    assert req.messages == (user(ir.Text("hi")),)
    assert (req.stream, req.max_tokens, req.temperature, req.top_p) == (True, 50, 0.2, 1)
    assert req.extra == {}


def test_user_content_parts() -> None:
    content = [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "data:image/jpeg;base64,QUJD", "detail": "high"},
        {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "auto"},
        {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
        {"type": "input_file", "file_data": "JVBE"},
        {"type": "input_file", "file_url": "https://x.test/a.pdf"},
    ]
    req = decode(input=[{"role": "user", "content": content}])
    assert req.messages == (
        user(
            ir.Text("look"),
            ir.Image(data="QUJD", media_type="image/jpeg", detail="high"),
            ir.Image(url="https://x.test/a.png", detail="auto"),
            ir.Document("application/pdf", data="JVBE", name="a.pdf"),
            ir.Document("application/pdf", data="JVBE"),
            ir.Document("application/pdf", url="https://x.test/a.pdf"),
        ),
    )


def test_system_messages_lead_the_system_prompt_later_ones_are_system_turns() -> None:
    req = decode(
        instructions="first",
        input=[
            {"role": "system", "content": "second"},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "third"}]},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": "later"},
        ],
    )
    assert req.system == (ir.Text("first"), ir.Text("second"), ir.Text("third"))
    assert req.messages == (user(ir.Text("hi")), ir.Message("system", (ir.Text("later"),)))


def test_assistant_items_merge_into_one_turn_and_results_into_another() -> None:
    req = decode(
        input=[
            {"role": "user", "content": "weather?"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": "b"}],
                "encrypted_content": "gAAA==",
            },
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_1",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": "Checking.", "annotations": []},
                    {"type": "refusal", "refusal": "not that"},
                ],
            },
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "weather", "arguments": '{"c":"P"}'},
            {"type": "function_call", "call_id": "call_2", "name": "time", "arguments": ""},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [
                    {"type": "input_text", "text": "noon"},
                    {"type": "input_image", "image_url": "https://x.test/c.png"},
                ],
            },
            {"type": "function_call_output", "call_id": "call_9", "name": "other", "output": ""},
            {"role": "user", "content": "thanks"},
        ]
    )
    assert req.messages == (
        user(ir.Text("weather?")),
        assistant(
            ir.Reasoning("a\n\nb", signature="gAAA==", dialect="openai_responses", id="rs_1"),
            ir.Text("Checking."),
            ir.Text("not that"),
            ir.ToolCall("call_1", "weather", '{"c":"P"}', signature="fc_1", signature_dialect="openai_responses"),
            ir.ToolCall("call_2", "time", "{}"),
        ),
        user(
            ir.ToolResult("call_1", "weather", (ir.Text("sunny"),)),
            ir.ToolResult("call_2", "time", (ir.Text("noon"), ir.Image(url="https://x.test/c.png"))),
            ir.ToolResult("call_9", "other", ()),
        ),
        user(ir.Text("thanks")),
    )


def test_reasoning_content_is_read_when_there_is_no_summary() -> None:
    item = {"type": "reasoning", "id": "rs_2", "summary": [], "content": [{"type": "reasoning_text", "text": "raw"}]}
    req = decode(input=[item])
    assert req.messages == (assistant(ir.Reasoning("raw", dialect="openai_responses", id="rs_2")),)


def test_tools_choice_format_reasoning() -> None:
    req = decode(
        input="x",
        tools=[
            {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True},
            {"type": "function", "name": "g", "parameters": None},
        ],
        tool_choice={"type": "function", "name": "f"},
        parallel_tool_calls=False,
        text={"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
        reasoning={"effort": "low", "summary": "concise"},
    )
    assert req.tools == (ir.Tool("f", "d", {"type": "object"}, True), ir.Tool("g", None, {}))
    assert req.tool_choice == ir.ToolChoice("named", "f")
    assert req.parallel_tool_calls is False
    assert req.output == ir.OutputFormat("json_schema", "out", {"type": "object"}, True)
    assert req.reasoning == ir.ReasoningConfig(effort="low", include=True)
    assert "tools" not in req.extra and "tool_choice" not in req.extra


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tool_choice": "required"}, ir.ToolChoice("required")),
        ({"tool_choice": "none"}, ir.ToolChoice("none")),
        ({"text": {"format": {"type": "json_object"}}}, ir.OutputFormat("json_object")),
        ({"text": {"format": {"type": "text"}, "verbosity": "low"}}, ir.OutputFormat("text")),
        ({"reasoning": {"effort": "max"}}, ir.ReasoningConfig(effort="xhigh")),
        ({"reasoning": {"generate_summary": "auto"}}, ir.ReasoningConfig(include=True)),
        ({"reasoning": {"effort": None, "summary": None}}, None),
    ],
)
def test_single_fields(fields: dict[str, Any], expected: object) -> None:
    req = decode(input="x", tools=[{"type": "function", "name": "f"}], **fields)
    key = next(iter(fields))
    value = {"tool_choice": req.tool_choice, "text": req.output, "reasoning": req.reasoning}[key]
    assert value == expected


def test_allowed_tools_narrow_the_tools_and_keep_the_raw_ones() -> None:
    tools = [{"type": "function", "name": n, "parameters": {}} for n in ("a", "b", "c")]
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "b"}]}
    req = decode(input="x", tools=tools, tool_choice=choice)
    assert [t.name for t in req.tools] == ["b"]
    assert req.tool_choice == ir.ToolChoice("required")
    assert req.extra["tools"] == tools and req.extra["tool_choice"] == choice
    assert R.convertible(req) is None


def test_extra_keeps_fields_without_ir_slot() -> None:
    fields = {
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "metadata": {"k": "v"},
        "user": "u",
        "truncation": "auto",
        "service_tier": "flex",
        "top_logprobs": 2,
        "text": {"verbosity": "high"},
    }
    req = decode(input="x", **fields)
    assert req.extra == fields


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "", "input": "x"}, "model"),
        ({"model": "m", "input": 3}, "input"),
        ({"model": "m", "input": [3]}, "input[0]"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"role": "user", "content": 5}]}, "input[0].content"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "video"}]}]}, "input[0].content[0].type"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "input[0].content[0].text"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x"}]}]},
            "input[0].content[0].image_url",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:x"}]}]},
            "input[0].content[0].image_url",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_data": 1}]}]},
            "input[0].content[0].file_data",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "detail": "low"}]}]},
            "input[0].content[0].image_url",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "filename": "a.pdf"}]}]},
            "input[0].content[0].file_url",
        ),
        (
            {"model": "m", "input": [{"role": "system", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"model": "m", "input": [{"role": "assistant", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].type",
        ),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": 1}]}, "input[0].name"),
        ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]}, None),
        ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"model": "m", "input": [{"type": "reasoning", "id": "r", "summary": [{"type": "x"}]}]}, None),
        ({"model": "m", "instructions": 3}, "instructions"),
        ({"model": "m", "tools": {}}, "tools"),
        ({"model": "m", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "m", "tools": [{"type": "function", "name": "f", "strict": "yes"}]}, "tools[0].strict"),
        ({"model": "m", "tools": [{"name": "f"}]}, "tools[0].type"),
        ({"model": "m", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"model": "m", "tool_choice": {"type": "allowed_tools", "mode": "x", "tools": []}}, "tool_choice.mode"),
        ({"model": "m", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"model": "m", "text": {"format": {"type": "json_schema", "name": "n"}}}, "text.format.schema"),
        ({"model": "m", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"model": "m", "reasoning": {"summary": "long"}}, "reasoning.summary"),
        ({"model": "m", "stream": "yes"}, "stream"),
        ({"model": "m", "max_output_tokens": 1.5}, "max_output_tokens"),
        ({"model": "m", "temperature": True}, "temperature"),
        ({"model": "m", "parallel_tool_calls": 1}, "parallel_tool_calls"),
    ],
)
def test_bad_requests_name_the_parameter(payload: dict[str, Any], param: str | None) -> None:
    with pytest.raises(RelayError) as info:
        R.decode_request(orjson.dumps(payload))
    assert info.value.status == 400
    if param is None:  # the exact path is the first field found wrong inside the item
        assert info.value.param is not None and info.value.param.startswith("input[0]")
    else:
        assert info.value.param == param
        assert param in info.value.message


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1]", b'{"model": "a", "model": "b", "input": "x"}', b'{"model":"a","stream":true,"stream":0}'],
)
def test_bad_bodies(raw: bytes) -> None:
    with pytest.raises(RelayError) as info:
        R.decode_request(raw)
    assert info.value.status == 400


def test_model_mentioned_twice_in_nested_places_is_fine() -> None:
    req = R.decode_request(body(input="x", metadata={"model": "y"}, text={"format": {"type": "text"}}))
    assert req.model == "gpt-5"


# ---- convertible --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"background": True}, "background"),
        ({"input": [{"role": "user", "content": "a"}, {"type": "item_reference", "id": "msg_1"}]}, "input[1]"),
        ({"input": [{"id": "msg_1"}]}, "input[0]"),
        ({"input": [{"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": []}]}, "input[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
            "input[0].content[0]",
        ),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_text", "text": "a"}, {"type": "input_file", "file_id": "f"}],
                    }
                ]
            },
            "input[0].content[1]",
        ),
        (
            {
                "input": [
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": "input_file", "file_data": "x"}],
                    }
                ]
            },
            "input[0].output[0]",
        ),
    ],
)
def test_convertible_names_what_only_openai_serves(fields: dict[str, Any], path: str) -> None:
    req = decode(**{"input": "x", **fields})
    assert R.convertible(req) == path
    with pytest.raises(RelayError) as info:
        R.require_convertible(req)
    assert (info.value.status, info.value.param) == (400, path)


def test_convertible_plain_request() -> None:
    req = decode(input="x", tools=[{"type": "function", "name": "f"}], background=False, previous_response_id=None)
    assert R.convertible(req) is None
    R.require_convertible(req)


def test_unconvertible_items_are_skipped_in_the_ir_and_kept_whole_in_extra() -> None:
    items = [
        {"role": "user", "content": "a"},
        {"type": "item_reference", "id": "msg_1"},
        {"role": "user", "content": "b"},
    ]
    req = decode(input=items, instructions="sys")
    assert req.messages == (user(ir.Text("a")), user(ir.Text("b")))
    assert req.extra["input"] == items
    again = encoded(req, same_dialect=True)
    assert again["input"] == items and again["instructions"] == "sys"


# ---- encode_request -------------------------------------------------------------------------------------


def test_encode_a_converted_request() -> None:
    req = request(
        user(ir.Text("hi"), ir.Image(data="QUJD", media_type="image/png"), ir.Document("application/pdf", data="JV")),
        assistant(
            ir.Reasoning("thought", signature="sig", dialect="anthropic"),
            ir.Text("Let me"),
            ir.Text(" check."),
            ir.ToolCall("toolu_1", "weather", '{"c":"P"}'),
            ir.ToolCall("toolu_2", "time", "{}"),
        ),
        user(
            ir.ToolResult("toolu_1", "weather", (ir.Text("sunny"),)),
            ir.ToolResult("toolu_2", "time", (ir.Text("boom"), ir.Image(url="https://x.test/i.png")), is_error=True),
            ir.Text("and?"),
        ),
        system=(ir.Text("sys one"), ir.Text("sys two")),
        tools=(ir.Tool("weather", "Weather", {"type": "object"}), ir.Tool("time", None, {}, strict=True)),
        tool_choice=ir.ToolChoice("named", "weather"),
        parallel_tool_calls=False,
        output=ir.OutputFormat("json_schema", None, {"type": "object"}),
        max_tokens=4,
        temperature=0.5,
        top_k=3,
        stream=True,
        extra={"anthropic_only": 1},
    )
    assert encoded(req) == {
        "model": "up",
        "instructions": "sys one",
        "input": [
            {"type": "message", "role": "developer", "content": "sys two"},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "hi"},
                    {"type": "input_image", "image_url": "data:image/png;base64,QUJD", "detail": "auto"},
                    {"type": "input_file", "filename": "document.pdf", "file_data": "data:application/pdf;base64,JV"},
                ],
            },
            {"type": "message", "role": "assistant", "content": "Let me check."},
            {"type": "function_call", "call_id": "toolu_1", "name": "weather", "arguments": '{"c":"P"}'},
            {"type": "function_call", "call_id": "toolu_2", "name": "time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "toolu_2",
                "output": [
                    {"type": "input_text", "text": "Error: boom"},
                    {"type": "input_image", "image_url": "https://x.test/i.png", "detail": "auto"},
                ],
            },
            {"type": "message", "role": "user", "content": "and?"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "weather",
                "description": "Weather",
                "parameters": {"type": "object"},
                "strict": False,
            },
            {"type": "function", "name": "time", "parameters": {"type": "object", "properties": {}}, "strict": True},
        ],
        "tool_choice": {"type": "function", "name": "weather"},
        "parallel_tool_calls": False,
        "text": {"format": {"type": "json_schema", "name": "response", "schema": {"type": "object"}}},
        "store": False,
        "stream": True,
        "max_output_tokens": 16,
        "temperature": 0.5,
    }


def test_reasoning_replayed_only_to_its_own_dialect_byte_identical() -> None:
    secret = "gAAAAB" + "x/+=" * 50
    req = request(
        user(ir.Text("q")),
        assistant(
            ir.Reasoning("sum", signature=secret, dialect="openai_responses", id="rs_abc"),
            ir.Reasoning("no id", signature="s", dialect="openai_responses"),
            ir.Reasoning("gemini", signature="g", dialect="gemini"),
            ir.Reasoning("chat", dialect="openai_chat"),
            ir.ToolCall("call_1", "f", "{}", signature="fc_abc", signature_dialect="openai_responses"),
            ir.ToolCall("call_2", "g", "{}", signature="gemsig", signature_dialect="gemini"),
        ),
    )
    raw = R.encode_request(req, "up")
    assert secret.encode() in raw
    items = encoded(req)["input"][1:]
    assert items == [
        {
            "type": "reasoning",
            "id": "rs_abc",
            "summary": [{"type": "summary_text", "text": "sum"}],
            "encrypted_content": secret,
        },
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}", "id": "fc_abc"},
        {"type": "function_call", "call_id": "call_2", "name": "g", "arguments": "{}"},
    ]


@pytest.mark.parametrize(
    ("config", "wire"),
    [
        (ir.ReasoningConfig(effort="high"), {"effort": "high"}),
        (ir.ReasoningConfig(effort="high", include=True), {"effort": "high", "summary": "auto"}),
        (ir.ReasoningConfig(budget_tokens=2000), {"effort": "low"}),
        (ir.ReasoningConfig(budget_tokens=-1, include=False), {"effort": "medium"}),
        (ir.ReasoningConfig(budget_tokens=0), {"effort": "none"}),
        (ir.ReasoningConfig(include=True), {"summary": "auto"}),
    ],
)
def test_reasoning_config(config: ir.ReasoningConfig, wire: dict[str, Any]) -> None:
    data = encoded(request(user(ir.Text("q")), reasoning=config, temperature=0.3, top_p=0.9))
    assert data["reasoning"] == wire
    reasoning_on = wire.get("effort") not in (None, "none")
    assert ("include" in data) == (reasoning_on or config.include is True)
    if "include" in data:
        assert data["include"] == ["reasoning.encrypted_content"]
    assert ("temperature" in data) == (not reasoning_on)
    assert ("top_p" in data) == (not reasoning_on)


def test_stop_sequences_cannot_be_expressed() -> None:
    with pytest.raises(RelayError) as info:
        R.encode_request(request(user(ir.Text("q")), stop=("END",)), "up")
    assert (info.value.status, info.value.param) == (400, "stop")


def test_tool_choice_without_tools_is_not_sent() -> None:
    data = encoded(request(user(ir.Text("q")), tool_choice=ir.ToolChoice("none"), parallel_tool_calls=True))
    assert "tool_choice" not in data and "parallel_tool_calls" not in data and "tools" not in data


def test_document_by_url_and_empty_tool_result() -> None:
    req = request(
        user(ir.Document("application/pdf", url="https://x.test/a.pdf", name="a")),
        assistant(ir.ToolCall("c", "f", "{}")),
        user(ir.ToolResult("c", "f", ())),
    )
    items = encoded(req)["input"]
    assert items[0]["content"] == [{"type": "input_file", "file_url": "https://x.test/a.pdf"}]
    assert items[2] == {"type": "function_call_output", "call_id": "c", "output": ""}


CANONICAL = {
    "model": "gpt-5",
    "instructions": "sys",
    "input": [
        {"type": "message", "role": "developer", "content": "dev"},
        {"type": "message", "role": "user", "content": "hi"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "s"}],
            "encrypted_content": "E",
        },
        {"type": "message", "role": "assistant", "content": "ok"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a":1}', "id": "fc_1"},
        {"type": "function_call_output", "call_id": "call_1", "output": "done"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "see"},
                {"type": "input_image", "image_url": "https://x.test/i.png", "detail": "low"},
            ],
        },
    ],
    "tools": [{"type": "function", "name": "f", "description": "F", "parameters": {"type": "object"}, "strict": True}],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "text": {
        "format": {
            "type": "json_schema",
            "name": "o",
            "schema": {"type": "object"},
            "strict": True,
            "description": "D",
        },
        "verbosity": "low",
    },
    "reasoning": {"effort": "max", "summary": "detailed"},
    "include": ["reasoning.encrypted_content"],
    "store": False,
    "metadata": {"a": "b"},
    "max_output_tokens": 10,
    "stream": True,
}


def test_identity_round_trip_keeps_the_body() -> None:
    req = R.decode_request(orjson.dumps(CANONICAL))
    again = encoded(req, "gpt-5", same_dialect=True)
    assert again == CANONICAL
    assert R.decode_request(orjson.dumps(again)) == req


def test_identity_round_trip_with_builtin_tools_keeps_them_raw() -> None:
    tools = [{"type": "function", "name": "f", "defer_loading": True}, {"type": "web_search"}]
    req = decode(input="x", tools=tools, tool_choice={"type": "web_search_preview"}, previous_response_id="resp_1")
    assert [t.name for t in req.tools] == ["f"]
    again = encoded(req, same_dialect=True)
    assert again["tools"] == tools and again["tool_choice"] == {"type": "web_search_preview"}
    assert again["previous_response_id"] == "resp_1"
    assert "store" not in again  # the client's own choice, unset


def test_same_dialect_unsaid_strict_stays_unsaid_and_no_clamp() -> None:
    req = decode(input="x", tools=[{"type": "function", "name": "f", "parameters": {}}], max_output_tokens=5)
    again = encoded(req, same_dialect=True)
    assert "strict" not in again["tools"][0]
    assert again["max_output_tokens"] == 5
    assert "store" not in again


def test_encoding_is_deterministic() -> None:
    req = R.decode_request(orjson.dumps(CANONICAL))
    assert R.encode_request(req, "m") == R.encode_request(req, "m")


# ---- responses ----------------------------------------------------------------------------------------

OPENAI_RESPONSE = {
    "id": "resp_67ccd2bed1ec8190b14f964abc054267",
    "object": "response",
    "created_at": 1741476542.5,
    "status": "completed",
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "model": "gpt-5-2025-08-07",
    "output": [
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "**Plan**"}],
            "encrypted_content": "gAAAAA==",
        },
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "In a peaceful grove…", "annotations": []}],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        },
    ],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 2},
        "output_tokens": 87,
        "output_tokens_details": {"reasoning_tokens": 64},
        "total_tokens": 123,
    },
    "user": None,
    "metadata": {},
}


def test_decode_response() -> None:
    Response.model_validate(OPENAI_RESPONSE)  # the fixture is a real Response
    resp = R.decode_response(orjson.dumps(OPENAI_RESPONSE))
    assert resp == ir.Response(
        id="resp_67ccd2bed1ec8190b14f964abc054267",
        model="gpt-5-2025-08-07",
        parts=(
            ir.Reasoning("**Plan**", signature="gAAAAA==", dialect="openai_responses", id="rs_1"),
            ir.Text("In a peaceful grove…"),
            ir.ToolCall("call_1", "get_weather", '{"city":"Paris"}', "fc_1", "openai_responses"),
        ),
        finish_reason="tool_calls",
        usage=ir.Usage(input_tokens=36, output_tokens=87, cached_tokens=8, cache_write_tokens=2, reasoning_tokens=64),
        created=1741476542,
    )


@pytest.mark.parametrize(
    ("status", "details", "output", "reason"),
    [
        ("completed", None, [], "stop"),
        ("incomplete", {"reason": "max_output_tokens"}, [], "length"),
        ("incomplete", {"reason": "content_filter"}, [], "content_filter"),
        ("incomplete", None, [], "length"),
        (
            "incomplete",
            {"reason": "max_output_tokens"},
            [{"type": "function_call", "call_id": "c", "name": "f", "arguments": '{"a'}],
            "length",
        ),
    ],
)
def test_decode_response_finish(status: str, details: Any, output: list[Any], reason: str) -> None:
    payload = {**OPENAI_RESPONSE, "status": status, "incomplete_details": details, "output": output, "usage": None}
    resp = R.decode_response(orjson.dumps(payload))
    assert resp.finish_reason == reason
    assert resp.usage is None


@pytest.mark.parametrize(
    ("code", "status"), [("rate_limit_exceeded", 429), ("invalid_prompt", 400), ("server_error", 502), (None, 502)]
)
def test_decode_failed_response_is_its_error(code: str | None, status: int) -> None:
    payload = {**OPENAI_RESPONSE, "status": "failed", "error": {"code": code, "message": "nope"}}
    with pytest.raises(RelayError) as info:
        R.decode_response(orjson.dumps(payload))
    assert (info.value.status, info.value.message, info.value.code) == (status, "nope", code)


@pytest.mark.parametrize(
    "raw",
    [
        b"nope",
        b"[]",
        orjson.dumps({"id": "x"}),
        orjson.dumps({**OPENAI_RESPONSE, "status": "in_progress"}),
        orjson.dumps({**OPENAI_RESPONSE, "output": [1]}),
        orjson.dumps({**OPENAI_RESPONSE, "output": [{"type": "function_call", "call_id": "c"}]}),
        orjson.dumps({**OPENAI_RESPONSE, "output": [{"type": "reasoning", "summary": 3}]}),
    ],
)
def test_decode_malformed_response(raw: bytes) -> None:
    with pytest.raises(RelayError) as info:
        R.decode_response(raw)
    assert info.value.status == 502


def client_request(**fields: Any) -> ir.Request:
    return R.decode_request(body(**{"input": "hi", **fields}))


def test_encode_response_validates_and_derives_ids() -> None:
    resp = ir.Response(
        id="msg_01XYZ",
        model="claude-x",
        parts=(
            ir.Reasoning("think", signature="anthropic-sig", dialect="anthropic"),
            ir.Reasoning(redacted="opaque", dialect="anthropic"),
            ir.Text("Hello"),
            ir.Text(""),
            ir.Text(" world"),
            ir.ToolCall("toolu_1", "f", '{"a":1}'),
            ir.ToolCall("", "g", "{}"),
            ir.Text("after"),
        ),
        finish_reason="tool_calls",
        usage=ir.Usage(input_tokens=10, output_tokens=20, cached_tokens=3, reasoning_tokens=5),
        created=1700000000,
    )
    raw = R.encode_response(resp, client_request())
    assert raw == R.encode_response(resp, client_request())
    assert b"anthropic-sig" not in raw and b"opaque" not in raw  # only wrapped, in encrypted_content
    parsed = Response.model_validate_json(raw)
    assert parsed.id == "resp_01XYZ"
    assert parsed.model == "gpt-5"
    assert (parsed.status, parsed.incomplete_details, parsed.created_at) == ("completed", None, 1700000000)
    assert parsed.output_text == "Hello worldafter"
    seed = "resp_01XYZ"
    data = orjson.loads(raw)
    assert data["output"] == [
        {
            "type": "reasoning",
            "id": derived_id(seed, 0, "rs_"),
            "summary": [{"type": "summary_text", "text": "think"}],
            "encrypted_content": envelope.wrap(envelope.Proof("anthropic", "reasoning", "anthropic-sig", text="think")),
        },
        {
            "type": "reasoning",
            "id": derived_id(seed, 1, "rs_"),
            "summary": [],
            "encrypted_content": envelope.wrap(envelope.Proof("anthropic", "reasoning", redacted="opaque")),
        },
        {
            "type": "message",
            "id": derived_id(seed, 2, "msg_"),
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []},
                {"type": "output_text", "text": " world", "annotations": [], "logprobs": []},
            ],
        },
        {
            "type": "function_call",
            "id": derived_id(seed, 3, "fc_"),
            "call_id": "toolu_1",
            "name": "f",
            "arguments": '{"a":1}',
            "status": "completed",
        },
        {
            "type": "function_call",
            "id": derived_id(seed, 4, "fc_"),
            "call_id": derived_id(seed, 4, "call_"),
            "name": "g",
            "arguments": "{}",
            "status": "completed",
        },
        {
            "type": "message",
            "id": derived_id(seed, 5, "msg_"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "after", "annotations": [], "logprobs": []}],
        },
    ]
    assert data["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 0},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 5},
        "total_tokens": 30,
    }


@pytest.mark.parametrize(
    ("reason", "status", "details"),
    [
        ("stop", "completed", None),
        ("tool_calls", "completed", None),
        ("length", "incomplete", {"reason": "max_output_tokens"}),
        ("content_filter", "incomplete", {"reason": "content_filter"}),
    ],
)
def test_encode_response_status(reason: ir.FinishReason, status: str, details: Any) -> None:
    resp = ir.Response(id="r", model="m", parts=(ir.Text("x"),), finish_reason=reason)
    data = orjson.loads(R.encode_response(resp, client_request()))
    Response.model_validate(data)
    assert (data["status"], data["incomplete_details"], data["usage"]) == (status, details, None)


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_encode_response_cut_message_is_incomplete(reason: ir.FinishReason) -> None:
    """The message an incomplete answer ends with is ``incomplete``; one before a call stays ``completed``."""
    parts = (ir.Text("a"), ir.ToolCall("call_1", "f", "{}"), ir.Text("Once upon"), ir.Reasoning(signature="x"))
    resp = ir.Response(id="r", model="m", parts=parts, finish_reason=reason)
    data = orjson.loads(R.encode_response(resp, client_request()))
    Response.model_validate(data)
    assert [(item["type"], item["status"]) for item in data["output"]] == [
        ("message", "completed"),
        ("function_call", "completed"),
        ("message", "incomplete"),
    ]
    done = orjson.loads(
        R.encode_response(ir.Response(id="r", model="m", parts=parts, finish_reason="stop"), client_request())
    )
    assert {item["status"] for item in done["output"]} == {"completed"}


def test_encode_response_keeps_own_ids_and_encrypted_content() -> None:
    resp = R.decode_response(orjson.dumps(OPENAI_RESPONSE))
    data = orjson.loads(R.encode_response(resp, client_request()))
    assert [item.get("id") for item in data["output"]] == ["rs_1", data["output"][1]["id"], "fc_1"]
    assert data["output"][0]["encrypted_content"] == "gAAAAA=="
    again = R.decode_response(orjson.dumps(data))
    assert again.parts == resp.parts and again.usage == resp.usage and again.finish_reason == resp.finish_reason


def test_encode_response_echoes_the_request() -> None:
    req = client_request(
        instructions="sys",
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False}],
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0.1,
        max_output_tokens=99,
        text={"format": {"type": "json_object"}, "verbosity": "low"},
        reasoning={"effort": "max", "summary": "concise"},
        metadata={"k": "v"},
        user="u1",
        store=False,
        truncation="auto",
    )
    resp = ir.Response(id="r", model="m", parts=(ir.Text("{}"),), finish_reason="stop", usage=ir.Usage(1, 1))
    data = orjson.loads(R.encode_response(resp, req))
    parsed = Response.model_validate(data)
    assert parsed.instructions == "sys"
    assert data["tools"] == [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False}]
    assert data["tool_choice"] == "required"
    assert (data["parallel_tool_calls"], data["temperature"], data["top_p"]) == (False, 0.1, 1.0)
    assert data["max_output_tokens"] == 99
    assert data["text"] == {"format": {"type": "json_object"}, "verbosity": "low"}
    assert data["reasoning"] == {"effort": "max", "summary": "concise"}
    assert (data["metadata"], data["user"], data["store"], data["truncation"]) == ({"k": "v"}, "u1", False, "auto")


def test_encode_response_echoes_builtin_tools_raw() -> None:
    tools = [{"type": "web_search"}, {"type": "function", "name": "f", "parameters": {}, "strict": True}]
    req = client_request(tools=tools, tool_choice={"type": "allowed_tools", "mode": "auto", "tools": tools[1:]})
    data = orjson.loads(R.encode_response(ir.Response("r", "m", (), "stop"), req))
    Response.model_validate(data)
    assert data["tools"] == tools
    assert data["tool_choice"]["type"] == "allowed_tools"


# ---- errors -----------------------------------------------------------------------------------------------


def test_encode_error() -> None:
    status, headers, raw = R.encode_error(RelayError(400, "invalid_request", "bad", param="input[0]"))
    assert status == 400 and (b"content-type", b"application/json") in headers
    assert orjson.loads(raw) == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "input[0]", "code": None}
    }


def test_encode_stream_error() -> None:
    raw = R.encode_stream_error(RelayError(429, "rate_limit", "slow down", code="rate_limited"), sequence_number=7)
    assert raw.startswith(b"event: error\ndata: ") and raw.endswith(b"\n\n")
    data = orjson.loads(raw.split(b"data: ", 1)[1])
    assert data["type"] == "error" and data["sequence_number"] == 7
    assert (data["code"], data["message"]) == ("rate_limited", "slow down")
    assert data["error"] == {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limited"}


@pytest.mark.parametrize(
    ("status", "raw", "expected"),
    [
        (429, b'{"error":{"message":"Rate limit","type":"requests","param":null,"code":"rate_limit_exceeded"}}',
         (429, "Rate limit", "rate_limit_exceeded")),
        (400, b'{"error":{"message":"Bad","type":"invalid_request_error","param":"input","code":null}}',
         (400, "Bad", "invalid_request_error")),
        (503, b"<html>down</html>", (503, "<html>down</html>", None)),
        (200, b'{"error":{"message":"odd"}}', (502, "odd", None)),
        (500, b"", (500, "(empty body)", None)),
    ],
)  # fmt: skip
def test_decode_error(status: int, raw: bytes, expected: tuple[int, str, str | None]) -> None:
    error = R.decode_error(status, raw)
    assert (error.status, error.message, error.code) == expected


# ---- usage and model renaming --------------------------------------------------------------------------


def test_usage_reader() -> None:
    reader = R.UsageReader()
    reader.feed(b'{"type":"response.created","sequence_number":0,"response":{"id":"r","usage":null}}')
    reader.feed(b'{"type":"response.output_text.delta","delta":"\\"usage\\": 5"}')
    reader.feed(None)
    assert reader.usage is None
    completed = {"type": "response.completed", "response": {**OPENAI_RESPONSE}}
    reader.feed(orjson.dumps(completed))
    assert reader.usage == ir.Usage(36, 87, 8, 2, 64)
    body_reader = R.UsageReader()
    body_reader.feed(orjson.dumps(OPENAI_RESPONSE))
    assert body_reader.usage == reader.usage
    incomplete = R.UsageReader()
    incomplete.feed(orjson.dumps({"sequence_number": 9, "type": "response.incomplete", "response": OPENAI_RESPONSE}))
    assert incomplete.usage == reader.usage


def test_rename_model() -> None:
    event = orjson.dumps({"type": "response.created", "response": {"id": "r", "model": "up-1"}})
    assert orjson.loads(R.rename_model(event, "pub", "up-1"))["response"]["model"] == "pub"
    whole = orjson.dumps(OPENAI_RESPONSE)
    assert orjson.loads(R.rename_model(whole, "pub", "gpt-5-2025-08-07"))["model"] == "pub"
    delta = b'{"type":"response.output_text.delta","delta":"hi"}'
    assert R.rename_model(delta, "pub", "up") is delta
    assert R.rename_model(event, "same", "same") is event
    assert R.rename_model(b'not json with "model"', "a", "b") == b'not json with "model"'


# ---- input tokens ---------------------------------------------------------------------------------------


def test_count_request_round_trip() -> None:
    raw = body(input="hi", instructions="sys", tools=[{"type": "function", "name": "f"}], truncation="auto")
    req = R.decode_count_request(raw)
    assert req.messages == (user(ir.Text("hi")),) and req.system == (ir.Text("sys"),)
    assert req.extra == {"truncation": "auto"}
    same = orjson.loads(R.encode_count_request(req, "gpt-5", same_dialect=True))
    COUNT_PARAMS.validate_python(same)
    assert same == {
        "model": "gpt-5",
        "input": [{"type": "message", "role": "user", "content": "hi"}],
        "instructions": "sys",
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}],
        "truncation": "auto",
    }


def test_count_request_drops_what_the_count_endpoint_does_not_take() -> None:
    req = request(
        user(ir.Text("q")), stream=True, max_tokens=100, temperature=0.5, reasoning=ir.ReasoningConfig("high")
    )
    data = orjson.loads(R.encode_count_request(req, "up"))
    COUNT_PARAMS.validate_python(data)
    assert data == {
        "model": "up",
        "input": [{"type": "message", "role": "user", "content": "q"}],
        "reasoning": {"effort": "high"},
    }
    decoded = R.decode_count_request(body(input="x", stream=True, store=False, max_output_tokens=3))
    assert decoded.extra == {}


def test_count_responses() -> None:
    raw = R.encode_count_response(42)
    assert InputTokenCountResponse.model_validate_json(raw).input_tokens == 42
    assert R.decode_count_response(raw) == 42
    for bad in (b"x", b'{"input_tokens":"3"}', b'{"input_tokens":-1}', b"{}"):
        with pytest.raises(RelayError) as info:
            R.decode_count_response(bad)
        assert info.value.status == 502

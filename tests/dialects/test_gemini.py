"""Gemini requests, responses, errors, token counts and passthrough helpers (relay.dialects.gemini.codec)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import models as genai_models
from google.genai import types

from relay.dialects import ir
from relay.dialects.common import derived_id
from relay.dialects.gemini import codec as gemini
from relay.dialects.gemini import stream as gemini_stream
from relay.errors import RelayError

MODEL = "gemini-2.5-flash"
OK_ANSWER = {"candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"}, "finishReason": "STOP"}]}


def sdk_client(handler: Any) -> genai.Client:
    transport = httpx.MockTransport(handler)
    return genai.Client(api_key="k", http_options=types.HttpOptions(httpx_client=httpx.Client(transport=transport)))


def sdk_body(contents: Any, config: types.GenerateContentConfig | None = None) -> bytes:
    """The exact body the google-genai SDK sends for generate_content."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=OK_ANSWER)

    sdk_client(handler).models.generate_content(model=MODEL, contents=contents, config=config)
    return seen[0].content


def sdk_response(body: bytes) -> types.GenerateContentResponse:
    converted = genai_models._GenerateContentResponse_from_mldev(orjson.loads(body))
    return types.GenerateContentResponse._from_response(response=converted, kwargs={})


def decode(payload: dict[str, Any], *, model: str = MODEL, stream: bool = False) -> ir.Request:
    return gemini.decode_request(orjson.dumps(payload), model=model, stream=stream)


def encode(req: ir.Request, model: str = MODEL, **kwargs: Any) -> dict[str, Any]:
    return orjson.loads(gemini.encode_request(req, model, **kwargs))


def user(*parts: ir.Part) -> ir.Message:
    return ir.Message("user", parts)


def assistant(*parts: ir.Part) -> ir.Message:
    return ir.Message("assistant", parts)


def request(*messages: ir.Message, **fields: Any) -> ir.Request:
    return ir.Request(model="client-model", system=fields.pop("system", ()), messages=messages, **fields)


# ---- requests: decode ----------------------------------------------------------------------------------------

WEATHER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"city": {"type": "string", "const": "Paris"}, "ref": {"$ref": "#/$defs/x"}},
    "additionalProperties": False,
}


def rich_sdk_body() -> bytes:
    contents = [
        types.Content(
            role="user",
            parts=[
                types.Part(text="Look"),
                types.Part(inline_data=types.Blob(mime_type="image/png", data=b"\x89PNG\xfb\xff")),
                types.Part(file_data=types.FileData(mime_type="application/pdf", file_uri="https://x.test/a.pdf")),
            ],
        ),
        types.Content(
            role="model",
            parts=[
                types.Part(text="thinking", thought=True),
                types.Part(text="", thought_signature=b"sig\xff"),
                types.Part(function_call=types.FunctionCall(name="get_weather", args={"city": "Paris"}),
                           thought_signature=b"call-sig"),
                types.Part(function_call=types.FunctionCall(name="get_weather", args={"city": "Rome"})),
            ],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part(function_response=types.FunctionResponse(name="get_weather", response={"result": "sunny"})),
                types.Part(function_response=types.FunctionResponse(name="get_weather", response={"error": "no data"})),
            ],
        ),
    ]  # fmt: skip
    lookup = types.Schema(
        type="OBJECT",
        properties={
            "q": types.Schema(type="STRING", nullable=True),
            "tags": types.Schema(type="ARRAY", items=types.Schema(type="STRING"), max_items=3),
        },
        required=["q"],
    )
    config = types.GenerateContentConfig(
        system_instruction="Be brief.",
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        max_output_tokens=256,
        stop_sequences=["END"],
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name="get_weather", description="Weather", parameters_json_schema=WEATHER_SCHEMA
                    ),
                    types.FunctionDeclaration(name="lookup", parameters=lookup),
                ]
            ),
            types.Tool(google_search=types.GoogleSearch()),
        ],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode="ANY", allowed_function_names=["get_weather"])
        ),
        thinking_config=types.ThinkingConfig(thinking_budget=1024, include_thoughts=True),
        response_mime_type="application/json",
        response_schema=types.Schema(type="OBJECT", properties={"a": types.Schema(type="INTEGER")}),
        safety_settings=[types.SafetySetting(category="HARM_CATEGORY_HATE_SPEECH", threshold="BLOCK_NONE")],
        seed=7,
    )
    return sdk_body(contents, config)


def test_decode_the_sdk_request() -> None:
    body = rich_sdk_body()
    assert b"parameters_json_schema" in body and b"thinking_budget" in body and b"mime_type" in body
    req = gemini.decode_request(body, model="models/" + MODEL, stream=True)
    first = derived_id('contents[1]/get_weather/{"city":"Paris"}', 0, "call_gemini_")
    second = derived_id('contents[1]/get_weather/{"city":"Rome"}', 1, "call_gemini_")
    assert req.model == MODEL and req.stream is True
    assert req.system == (ir.Text("Be brief."),)
    assert req.messages == (
        user(
            ir.Text("Look"),
            ir.Image(data="iVBOR/v/", media_type="image/png"),  # the SDK's URL-safe base64, made standard
            ir.Document(media_type="application/pdf", url="https://x.test/a.pdf"),
        ),
        assistant(
            ir.Reasoning(text="thinking", signature="c2ln_w==", dialect="gemini"),  # the signature, untouched
            ir.ToolCall(first, "get_weather", '{"city":"Paris"}', "Y2FsbC1zaWc=", "gemini"),
            ir.ToolCall(second, "get_weather", '{"city":"Rome"}'),
        ),
        user(
            ir.ToolResult(first, "get_weather", (ir.Text("sunny"),)),
            ir.ToolResult(second, "get_weather", (ir.Text("no data"),), is_error=True),
        ),
    )
    assert req.tools == (
        ir.Tool("get_weather", "Weather", WEATHER_SCHEMA),
        ir.Tool(
            "lookup",
            None,
            {
                "properties": {
                    "q": {"type": ["string", "null"]},
                    "tags": {"items": {"type": "string"}, "maxItems": 3, "type": "array"},
                },
                "required": ["q"],
                "type": "object",
            },
        ),
    )
    assert req.tool_choice == ir.ToolChoice("named", "get_weather")
    assert (req.temperature, req.top_p, req.top_k, req.max_tokens, req.stop) == (0.2, 0.9, 40, 256, ("END",))
    assert req.reasoning == ir.ReasoningConfig(budget_tokens=1024, include=True)
    assert req.output == ir.OutputFormat(
        "json_schema", schema={"properties": {"a": {"type": "integer"}}, "type": "object"}
    )
    assert req.extra == {
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
        "tools": [{"googleSearch": {}}],
        "generationConfig": {"seed": 7},
    }


def test_identity_round_trip() -> None:
    """decode → encode (same dialect) → decode keeps the request; the bytes Gemini needs stay byte-identical."""
    req = gemini.decode_request(rich_sdk_body(), model=MODEL, stream=False)
    body = encode(req, same_dialect=True)
    assert gemini.decode_request(orjson.dumps(body), model=MODEL, stream=False) == req
    model_turn = body["contents"][1]["parts"]
    assert model_turn[0] == {"text": "thinking", "thought": True, "thoughtSignature": "c2ln_w=="}
    assert model_turn[1]["thoughtSignature"] == "Y2FsbC1zaWc="
    assert "id" not in model_turn[1]["functionCall"]  # derived ids never reach Gemini
    assert "thoughtSignature" not in model_turn[2]
    assert body["safetySettings"] and body["generationConfig"]["seed"] == 7
    assert {"googleSearch": {}} in body["tools"]
    validate_request(body)


def validate_request(body: dict[str, Any]) -> None:
    """Every object of an encoded request parses with the SDK's types (camelCase, base64 bytes)."""
    for content in body["contents"]:
        types.Content.model_validate_json(orjson.dumps(content))
    for tool in body.get("tools", ()):
        types.Tool.model_validate_json(orjson.dumps(tool))
    if "toolConfig" in body:
        types.ToolConfig.model_validate_json(orjson.dumps(body["toolConfig"]))
    if "generationConfig" in body:
        types.GenerationConfig.model_validate_json(orjson.dumps(body["generationConfig"]))
    if "systemInstruction" in body:
        types.Content.model_validate_json(orjson.dumps(body["systemInstruction"]))


def test_camel_and_snake_case_read_alike() -> None:
    camel = {
        "contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}}]}],
        "systemInstruction": {"parts": [{"text": "s"}]},
        "generationConfig": {
            "maxOutputTokens": 5,
            "stopSequences": ["x"],
            "thinkingConfig": {"thinkingLevel": "LOW", "includeThoughts": False},
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object", "properties": {"max_items": {"type": "string"}}},
        },
        "toolConfig": {"functionCallingConfig": {"mode": "NONE"}},
        "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object"}}]}],
    }
    snake = {
        "contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/jpeg", "data": "AAAA"}}]}],
        "system_instruction": {"parts": [{"text": "s"}]},
        "generation_config": {
            "max_output_tokens": 5,
            "stop_sequences": ["x"],
            "thinking_config": {"thinking_level": "low", "include_thoughts": False},
            "response_mime_type": "application/json",
            "response_json_schema": {"type": "object", "properties": {"max_items": {"type": "string"}}},
        },
        "tool_config": {"function_calling_config": {"mode": "NONE"}},
        "tools": [{"function_declarations": [{"name": "f", "parameters_json_schema": {"type": "object"}}]}],
    }
    assert decode(camel) == decode(snake)
    req = decode(snake)
    assert req.reasoning == ir.ReasoningConfig(effort="low", include=False)
    assert req.output is not None and req.output.schema == {
        "type": "object",
        "properties": {"max_items": {"type": "string"}},
    }
    assert req.tool_choice == ir.ToolChoice("none") and req.extra == {}


def _contents(*contents: dict[str, Any]) -> dict[str, Any]:
    return {"contents": list(contents)}


def test_function_responses_pair_with_their_calls() -> None:
    payload = _contents(
        {"role": "user", "parts": [{"text": "go"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "a", "args": {"n": 1}}},
                {"functionCall": {"name": "b"}},
                {"functionCall": {"name": "a", "args": {"n": 2}}},
                {"functionCall": {"id": "given", "name": "c"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "a", "response": {"result": "one"}}},
                {"functionResponse": {"id": "given", "response": {"x": [1]}}},  # no name: the call's
                {"functionResponse": {"name": "a", "response": {"result": {"n": 2}}}},
                {"functionResponse": {"name": "b", "response": {}}},
                {"functionResponse": {"name": "zzz", "response": {"error": {"why": "?"}}}},
            ],
        },
    )
    req = decode(payload)
    calls = [p for p in req.messages[1].parts if isinstance(p, ir.ToolCall)]
    results = req.messages[2].parts
    assert [c.id for c in calls][3] == "given"
    assert results == (
        ir.ToolResult(calls[0].id, "a", (ir.Text("one"),)),
        ir.ToolResult("given", "c", (ir.Text('{"x":[1]}'),)),
        ir.ToolResult(calls[2].id, "a", (ir.Text('{"result":{"n":2}}'),)),
        ir.ToolResult(calls[1].id, "b", ()),
        ir.ToolResult(
            derived_id("contents[2].parts[4].functionResponse/zzz", 0, "call_gemini_"),
            "zzz",
            (ir.Text('{"why":"?"}'),),
            is_error=True,
        ),
    )
    # encoded back: same pairing, objects kept as objects, no derived id sent
    body = encode(req, same_dialect=True)
    responses = [p["functionResponse"] for p in body["contents"][2]["parts"]]
    assert responses == [
        {"name": "a", "response": {"result": "one"}},
        {"id": "given", "name": "c", "response": {"x": [1]}},
        {"name": "a", "response": {"result": {"n": 2}}},
        {"name": "b", "response": {"result": ""}},
        {"name": "zzz", "response": {"error": {"why": "?"}}},
    ]


@pytest.mark.parametrize(
    ("config", "tools", "choice"),
    [
        ({"mode": "AUTO"}, ["a", "b", "c"], ir.ToolChoice("auto")),
        ({"mode": "VALIDATED"}, ["a", "b", "c"], ir.ToolChoice("auto")),
        ({"mode": "NONE"}, ["a", "b", "c"], ir.ToolChoice("none")),
        ({"mode": "ANY"}, ["a", "b", "c"], ir.ToolChoice("required")),
        ({"mode": "ANY", "allowedFunctionNames": ["b"]}, ["a", "b", "c"], ir.ToolChoice("named", "b")),
        ({"mode": "any", "allowedFunctionNames": ["c", "a"]}, ["a", "c"], ir.ToolChoice("required")),
        ({}, ["a", "b", "c"], ir.ToolChoice("auto")),
    ],
)
def test_function_calling_config(config: dict[str, Any], tools: list[str], choice: ir.ToolChoice) -> None:
    declarations = [{"name": n} for n in "abc"]
    req = decode(
        {
            **_contents({"parts": [{"text": "x"}]}),
            "tools": [{"functionDeclarations": declarations}],
            "toolConfig": {"functionCallingConfig": config},
        }
    )
    assert [t.name for t in req.tools] == tools
    assert req.tool_choice == choice


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": {}}, "contents"),
        ({"contents": ["x"]}, "contents[0]"),
        ({"contents": [{"role": "system", "parts": []}]}, "contents[0].role"),
        ({"contents": [{"parts": "hi"}]}, "contents[0].parts"),
        ({"contents": [{"parts": [{"text": 1}]}]}, "contents[0].parts[0].text"),
        ({"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]}, "contents[0].parts[0].executableCode"),
        ({"contents": [{"parts": [{"thought": True}]}]}, "contents[0].parts[0]"),
        ({"contents": [{"parts": [{"functionCall": {"name": "f"}}]}]}, "contents[0].parts[0].functionCall"),
        ({"contents": [{"parts": [{"inlineData": {"data": "AA"}}]}]}, "contents[0].parts[0].inlineData.mimeType"),
        ({"contents": [{"parts": [{"fileData": {"mimeType": "a/b"}}]}]}, "contents[0].parts[0].fileData.fileUri"),
        (
            {"contents": [{"parts": [{"functionResponse": {"response": {}}}]}]},
            "contents[0].parts[0].functionResponse.name",
        ),
        (
            {"contents": [{"parts": [{"functionResponse": {"name": "f", "response": "x"}}]}]},
            "contents[0].parts[0].functionResponse.response",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": [1]}}]}]},
            "contents[0].parts[0].functionCall.args",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"text": "x", "thoughtSignature": 5}]}]},
            "contents[0].parts[0].thoughtSignature",
        ),
        ({"contents": [{"parts": [{"text": "x"}]}], "systemInstruction": {"parts": [{"inlineData": {}}]}},
         "systemInstruction.parts[0]"),
        ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}},
         "generationConfig.candidateCount"),
        ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"temperature": "hot"}},
         "generationConfig.temperature"),
        ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"topK": 2.5}}, "generationConfig.topK"),
        ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"stopSequences": [1]}},
         "generationConfig.stopSequences[0]"),
        ({"contents": [{"parts": [{"text": "x"}]}],
          "generationConfig": {"thinkingConfig": {"thinkingBudget": 10, "thinkingLevel": "LOW"}}},
         "generationConfig.thinkingConfig"),
        ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"thinkingConfig": {"thinkingLevel": "MAX"}}},
         "generationConfig.thinkingConfig.thinkingLevel"),
        ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"thinkingConfig": {"thinkingBudget": -5}}},
         "generationConfig.thinkingConfig.thinkingBudget"),
        ({"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [{"description": "d"}]}]},
         "tools[0].functionDeclarations[0].name"),
        ({"contents": [{"parts": [{"text": "x"}]}],
          "tools": [{"functionDeclarations": [{"name": "f", "parameters": 1}]}]},
         "tools[0].functionDeclarations[0].parameters"),
        ({"contents": [{"parts": [{"text": "x"}]}], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
         "toolConfig.functionCallingConfig.mode"),
        ({"contents": [{"parts": [{"text": "x"}]}],
          "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["nope"]}}},
         "toolConfig.functionCallingConfig.allowedFunctionNames[0]"),
    ],
)  # fmt: skip
def test_decode_errors_name_the_parameter(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(RelayError) as caught:
        decode(payload)
    assert caught.value.status == 400 and caught.value.param == param, caught.value.message


@pytest.mark.parametrize("body", [b"not json", b"[]", b'"x"'])
def test_decode_errors_for_bodies(body: bytes) -> None:
    with pytest.raises(RelayError) as caught:
        gemini.decode_request(body, model=MODEL, stream=False)
    assert caught.value.status == 400


def test_decode_generation_fields_without_an_ir_slot_go_to_extra() -> None:
    req = decode(
        {
            **_contents({"parts": [{"text": "x"}]}),
            "cachedContent": "cachedContents/1",
            "toolConfig": {"retrievalConfig": {"languageCode": "fr"}},
            "generationConfig": {
                "responseMimeType": "text/x.enum",
                "responseSchema": {"type": "STRING", "enum": ["a", "b"]},
                "presence_penalty": 0.5,
                "candidateCount": 1,
            },
        }
    )
    assert req.output is None
    assert req.extra == {
        "cachedContent": "cachedContents/1",
        "toolConfig": {"retrievalConfig": {"languageCode": "fr"}},
        "generationConfig": {
            "responseMimeType": "text/x.enum",
            "responseSchema": {"type": "STRING", "enum": ["a", "b"]},
            "presence_penalty": 0.5,
        },
    }
    same = encode(req, same_dialect=True)
    assert same["cachedContent"] == "cachedContents/1" and same["toolConfig"] == req.extra["toolConfig"]
    assert same["generationConfig"]["responseMimeType"] == "text/x.enum"
    other = encode(req)
    assert set(other) == {"contents"}


@pytest.mark.parametrize(
    ("mime", "schema", "output"),
    [
        ("application/json", None, ir.OutputFormat("json_object")),
        ("application/json", {"responseJsonSchema": {"type": "array"}},
         ir.OutputFormat("json_schema", schema={"type": "array"})),
        ("text/plain", None, None),
        (None, None, None),
    ],
)  # fmt: skip
def test_decode_output(mime: str | None, schema: dict[str, Any] | None, output: ir.OutputFormat | None) -> None:
    config = {"responseMimeType": mime, **(schema or {})} if mime else {}
    assert decode({**_contents({"parts": [{"text": "x"}]}), "generationConfig": config}).output == output


def test_decode_role_defaults_and_system_string() -> None:
    req = decode({"contents": [{"parts": [{"text": "hi"}]}], "systemInstruction": "plain"})
    assert req.messages == (user(ir.Text("hi")),) and req.system == (ir.Text("plain"),)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([{"text": "a", "thoughtSignature": "UzE="}], (ir.Reasoning(signature="UzE=", dialect="gemini"), ir.Text("a"))),
        (
            [{"text": "t", "thought": True}, {"text": "a", "thoughtSignature": "UzE="}],
            (ir.Reasoning("t", signature="UzE=", dialect="gemini"), ir.Text("a")),
        ),
        (
            [{"text": "t", "thought": True, "thoughtSignature": "UzE="}, {"thoughtSignature": "UzI="}],
            (ir.Reasoning("t", signature="UzE=", dialect="gemini"), ir.Reasoning(signature="UzI=", dialect="gemini")),
        ),
    ],
)  # fmt: skip
def test_decode_signatures_on_text_parts(parts: list[dict[str, Any]], expected: tuple[ir.Part, ...]) -> None:
    req = decode(_contents({"parts": [{"text": "q"}]}, {"role": "model", "parts": parts}))
    assert req.messages[1].parts == expected


# ---- requests: encode ----------------------------------------------------------------------------------------


def test_encode_a_foreign_request() -> None:
    """A request decoded from another dialect: ids, signatures, results, images and settings for Gemini."""
    req = request(
        user(
            ir.Text("What is in this image?"),
            ir.Image(url="https://x.test/cat.PNG?size=2"),
            ir.Image(url="https://x.test/photo"),
            ir.Image(data="/9j/4AAQ"),
            ir.Image(url="data:image/webp;base64,UklGRg=="),
            ir.Document(media_type="application/pdf", data="JVBERi0="),
            ir.Document(media_type="application/pdf", url="https://x.test/a.pdf", name="a.pdf"),
            ir.Text(""),
        ),
        assistant(
            ir.Reasoning("thinking", signature="anthropic-sig", dialect="anthropic"),
            ir.Reasoning(redacted="opaque", dialect="anthropic"),
            ir.Text("Let me look."),
            ir.ToolCall("toolu_01", "lookup", '{"q":"cat"}', signature="x", signature_dialect="anthropic"),
            ir.ToolCall("toolu_02", "lookup", ""),
        ),
        user(
            ir.ToolResult("toolu_01", None, (ir.Text('{"found": true}'),)),
            ir.Text("and?"),
            ir.ToolResult("toolu_02", "lookup", (ir.Text("boom"), ir.Image(data="iVBORw0K", media_type="image/png")),
                          is_error=True),
        ),
        user(ir.Text("please")),
        system=(ir.Text("Be brief."), ir.Text("")),
        tools=(ir.Tool("lookup", "Look things up", WEATHER_SCHEMA, strict=True),),
        tool_choice=ir.ToolChoice("required"),
        parallel_tool_calls=False,
        max_tokens=100,
        temperature=0.3,
        top_p=0.8,
        top_k=20,
        stop=("END",),
        output=ir.OutputFormat("json_schema", name="answer", schema={"type": "object"}, strict=True),
        reasoning=ir.ReasoningConfig(effort="high", include=True),
        extra={"store": True},
    )  # fmt: skip
    body = encode(req)
    assert body == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "What is in this image?"},
                    {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/cat.PNG?size=2"}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/photo"}},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
                    {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
                    {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x.test/a.pdf"}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "Let me look."},
                    {
                        "functionCall": {"id": "toolu_01", "name": "lookup", "args": {"q": "cat"}},
                        "thoughtSignature": "skip_thought_signature_validator",
                    },
                    {"functionCall": {"id": "toolu_02", "name": "lookup", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"id": "toolu_01", "name": "lookup", "response": {"found": True}}},
                    {"functionResponse": {"id": "toolu_02", "name": "lookup", "response": {"error": "boom"}}},
                    {"text": "and?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
                    {"text": "please"},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [
            {"functionDeclarations": [
                {"name": "lookup", "description": "Look things up", "parametersJsonSchema": WEATHER_SCHEMA}
            ]}
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {
            "maxOutputTokens": 100,
            "temperature": 0.3,
            "topP": 0.8,
            "topK": 20,
            "stopSequences": ["END"],
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
            "thinkingConfig": {"thinkingBudget": 16384, "includeThoughts": True},
        },
    }  # fmt: skip
    validate_request(body)


def test_encode_keeps_gemini_signatures_byte_identical() -> None:
    req = request(
        user(ir.Text("q")),
        assistant(
            ir.Reasoning(signature="c2lnLTE=", dialect="gemini"),
            ir.Text("answer"),
            ir.Reasoning("t", signature="c2lnLTI_", dialect="gemini"),
            ir.ToolCall("a1", "f", "{}"),
            ir.ToolCall("a2", "f", "{}", signature="Y2FsbA==", signature_dialect="gemini"),
            ir.Reasoning(signature="ZW5k", dialect="gemini"),
        ),
    )
    parts = encode(req)["contents"][1]["parts"]
    assert parts == [
        {"text": "answer", "thoughtSignature": "c2lnLTE="},
        {"text": "t", "thought": True, "thoughtSignature": "c2lnLTI_"},
        {"functionCall": {"id": "a1", "name": "f", "args": {}}},  # the turn has a Gemini signature: no dummy
        {"functionCall": {"id": "a2", "name": "f", "args": {}}, "thoughtSignature": "Y2FsbA=="},
        {"text": "", "thoughtSignature": "ZW5k"},
    ]


@pytest.mark.parametrize(
    ("reasoning", "model", "thinking"),
    [
        (ir.ReasoningConfig(budget_tokens=-1, include=True), MODEL, {"thinkingBudget": -1, "includeThoughts": True}),
        (ir.ReasoningConfig(budget_tokens=0), MODEL, {"thinkingBudget": 0}),
        (ir.ReasoningConfig(effort="none"), MODEL, {"thinkingBudget": 0}),
        (ir.ReasoningConfig(effort="low"), MODEL, {"thinkingBudget": 2048}),
        (ir.ReasoningConfig(effort="low"), "gemini-3-pro-preview", {"thinkingLevel": "LOW"}),
        (ir.ReasoningConfig(effort="xhigh"), "gemini-3-flash", {"thinkingLevel": "HIGH"}),
        (ir.ReasoningConfig(effort="minimal", budget_tokens=500), "gemini-3-pro", {"thinkingBudget": 500}),
        (ir.ReasoningConfig(include=False), MODEL, {"includeThoughts": False}),
        (ir.ReasoningConfig(), MODEL, None),
    ],
)
def test_encode_thinking_never_sends_budget_and_level(
    reasoning: ir.ReasoningConfig, model: str, thinking: dict[str, Any] | None
) -> None:
    body = encode(request(user(ir.Text("x")), reasoning=reasoning), model)
    assert body.get("generationConfig", {}).get("thinkingConfig") == thinking


def test_encode_decoded_thinking_level_goes_back_as_level() -> None:
    payload = {
        **_contents({"parts": [{"text": "x"}]}),
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "HIGH"}},
    }
    body = encode(decode(payload), "gemini-3-pro-preview")
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "HIGH"}


@pytest.mark.parametrize(
    ("req", "param"),
    [
        (request(user(ir.Text("x")), tools=(ir.Tool("ok", None, {}), ir.Tool("bad.name", None, {}))), "tools[1].name"),
        (request(user(ir.Text("x")), tools=(ir.Tool("x" * 65, None, {}),)), "tools[0].name"),
        (request(user(ir.ToolResult("c9", None, (ir.Text("r"),)))), "messages[0].parts[0].name"),
        (request(assistant(ir.ToolCall("c", "f", "[1]"))), "messages[0].parts[0]"),
        (request(user(ir.Text("x")), tools=(ir.Tool("f", None, {}),), tool_choice=ir.ToolChoice("named", "g")),
         "tool_choice"),
        (request(user(ir.Image(url="data:image/png,raw"))), "messages[0].parts[0]"),
    ],
)  # fmt: skip
def test_encode_errors_name_the_parameter(req: ir.Request, param: str) -> None:
    with pytest.raises(RelayError) as caught:
        gemini.encode_request(req, MODEL)
    assert caught.value.status == 400 and caught.value.param == param, caught.value.message


def test_encode_tool_choice_and_json_object() -> None:
    tools = (ir.Tool("f", None, {}), ir.Tool("g", "", {"type": "object"}))
    body = encode(
        request(
            user(ir.Text("x")),
            tools=tools,
            tool_choice=ir.ToolChoice("named", "g"),
            output=ir.OutputFormat("json_object"),
        )
    )
    assert body["tools"] == [
        {"functionDeclarations": [{"name": "f"}, {"name": "g", "parametersJsonSchema": {"type": "object"}}]}
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}}
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
    none = encode(request(user(ir.Text("x")), tools=tools, tool_choice=ir.ToolChoice("none")))
    assert none["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert "toolConfig" not in encode(request(user(ir.Text("x")), tool_choice=ir.ToolChoice("required")))  # no tools
    text = encode(request(user(ir.Text("x")), output=ir.OutputFormat("text")))
    assert "generationConfig" not in text
    assert gemini.decode_request(orjson.dumps(body), model=MODEL, stream=False).tool_choice == ir.ToolChoice(
        "named", "g"
    )


# ---- responses -----------------------------------------------------------------------------------------------

ANSWER = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {"text": "I thought.", "thought": True},
                    {"text": "Calling.", "thoughtSignature": "c2lnLTE="},
                    {"functionCall": {"name": "f", "args": {"b": 1, "a": [2]}}, "thoughtSignature": "Y2FsbA=="},
                    {"functionCall": {"id": "g-1", "name": "g"}},
                    {"inlineData": {"mimeType": "image/png", "data": "AA=="}},
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
            "safetyRatings": [],
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 100,
        "candidatesTokenCount": 30,
        "totalTokenCount": 175,
        "cachedContentTokenCount": 60,
        "thoughtsTokenCount": 40,
        "toolUsePromptTokenCount": 5,
    },
    "modelVersion": "gemini-2.5-flash-001",
    "responseId": "Xyz123",
}


def test_decode_response() -> None:
    resp = gemini.decode_response(orjson.dumps(ANSWER))
    first = derived_id('Xyz123/f/{"b":1,"a":[2]}', 0, "call_gemini_")
    assert resp == ir.Response(
        id="Xyz123",
        model="gemini-2.5-flash-001",
        parts=(
            ir.Reasoning("I thought.", signature="c2lnLTE=", dialect="gemini"),
            ir.Text("Calling."),
            ir.ToolCall(first, "f", '{"b":1,"a":[2]}', "Y2FsbA==", "gemini"),
            ir.ToolCall("g-1", "g", "{}"),
        ),
        finish_reason="tool_calls",
        usage=ir.Usage(input_tokens=105, output_tokens=70, cached_tokens=60, reasoning_tokens=40),
    )


@pytest.mark.parametrize(
    ("finish", "reason"),
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("SPII", "content_filter"),
     ("OTHER", "stop"), (None, "stop")],
)  # fmt: skip
def test_decode_response_finish(finish: str | None, reason: str) -> None:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": "x"}]}}
    if finish:
        candidate["finishReason"] = finish
    assert gemini.decode_response(orjson.dumps({"candidates": [candidate]})).finish_reason == reason


def test_decode_response_blocked_prompt() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}}
    resp = gemini.decode_response(orjson.dumps(body))
    assert resp.parts == () and resp.finish_reason == "content_filter" and resp.usage == ir.Usage(input_tokens=9)


def test_decode_response_vertex_create_time() -> None:
    body = {**OK_ANSWER, "createTime": "2025-01-02T03:04:05.123456Z"}
    assert gemini.decode_response(orjson.dumps(body)).created == 1735787045


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        b"[]",
        b"{}",
        b'{"candidates": [1]}',
        b'{"candidates": [{"content": {"parts": {}}}]}',
        b'{"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}',
        b'{"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": "x"}}]}}]}',
        b'{"candidates": [{"content": {"parts": [{"text": 5}]}}]}',
    ],
)
def test_decode_response_malformed_is_502(body: bytes) -> None:
    with pytest.raises(RelayError) as caught:
        gemini.decode_response(body)
    assert caught.value.status == 502


def test_decode_response_error_body() -> None:
    body = b'{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}'
    with pytest.raises(RelayError) as caught:
        gemini.decode_response(body)
    assert (caught.value.status, caught.value.message, caught.value.code) == (
        503,
        "The model is overloaded.",
        "UNAVAILABLE",
    )


CLIENT = ir.Request(model="my-gemini", system=(), messages=())


def test_encode_response_parses_with_the_sdk() -> None:
    resp = ir.Response(
        id="chatcmpl-abc",
        model="gpt",
        parts=(
            ir.Reasoning("pondering", dialect="openai_chat"),
            ir.Text("Hello"),
            ir.ToolCall("call_1", "f", '{"x": [1, "é"]}'),
            ir.ToolCall(derived_id("s", 0, "call_gemini_"), "g", "not json"),
        ),
        finish_reason="tool_calls",
        usage=ir.Usage(input_tokens=10, output_tokens=7, cached_tokens=3, reasoning_tokens=2),
    )
    body = gemini.encode_response(resp, CLIENT)
    parsed = sdk_response(body)
    assert parsed.model_version == "my-gemini" and parsed.response_id == "abc"
    assert parsed.text == "Hello"
    assert [(c.id, c.name, c.args) for c in parsed.function_calls] == [
        ("call_1", "f", {"x": [1, "é"]}),
        (None, "g", {}),
    ]
    assert parsed.candidates[0].finish_reason == types.FinishReason.STOP
    usage = parsed.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (10, 5, 2)
    assert (usage.cached_content_token_count, usage.total_token_count) == (3, 17)
    assert b"pondering" not in body  # thoughts only when asked for
    shown = gemini.encode_response(resp, ir.Request("m", (), (), reasoning=ir.ReasoningConfig(include=True)))
    assert sdk_response(shown).candidates[0].content.parts[0].thought is True


@pytest.mark.parametrize(
    ("reason", "wire"),
    [("stop", "STOP"), ("tool_calls", "STOP"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY")],
)
def test_encode_response_finish(reason: ir.FinishReason, wire: str) -> None:
    body = orjson.loads(gemini.encode_response(ir.Response("r", "m", (), reason), CLIENT))
    assert body["candidates"] == [{"finishReason": wire, "index": 0}]
    assert "usageMetadata" not in body


def test_response_round_trip_keeps_signatures() -> None:
    resp = gemini.decode_response(orjson.dumps(ANSWER))
    body = gemini.encode_response(resp, ir.Request("m", (), (), reasoning=ir.ReasoningConfig(include=True)))
    parts = orjson.loads(body)["candidates"][0]["content"]["parts"]
    assert parts[:3] == [
        {"text": "I thought.", "thought": True, "thoughtSignature": "c2lnLTE="},
        {"text": "Calling."},
        {"functionCall": {"name": "f", "args": {"b": 1, "a": [2]}}, "thoughtSignature": "Y2FsbA=="},
    ]
    again = gemini.decode_response(body)
    assert again.parts == resp.parts and again.usage == resp.usage


def test_sdk_client_reads_an_encoded_response() -> None:
    resp = ir.Response("r1", "m", (ir.Text("Hi!"),), "stop", ir.Usage(input_tokens=3, output_tokens=2))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=gemini.encode_response(resp, CLIENT))

    answer = sdk_client(handler).models.generate_content(model=MODEL, contents="hi")
    assert answer.text == "Hi!" and answer.usage_metadata.total_token_count == 5


# ---- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "rpc", "sdk_error"),
    [
        (400, "INVALID_ARGUMENT", genai_errors.ClientError),
        (401, "UNAUTHENTICATED", genai_errors.ClientError),
        (403, "PERMISSION_DENIED", genai_errors.ClientError),
        (404, "NOT_FOUND", genai_errors.ClientError),
        (413, "INVALID_ARGUMENT", genai_errors.ClientError),
        (429, "RESOURCE_EXHAUSTED", genai_errors.ClientError),
        (500, "INTERNAL", genai_errors.ServerError),
        (502, "UNAVAILABLE", genai_errors.ServerError),
        (503, "UNAVAILABLE", genai_errors.ServerError),
        (504, "DEADLINE_EXCEEDED", genai_errors.ServerError),
        (529, "UNAVAILABLE", genai_errors.ServerError),  # Anthropic's overloaded
    ],
)
def test_encode_error(status: int, rpc: str, sdk_error: type[Exception]) -> None:
    error = RelayError(status, "upstream", "it went wrong", headers=((b"retry-after", b"3"),))
    code, headers, body = gemini.encode_error(error)
    assert code == status and (b"retry-after", b"3") in headers
    assert orjson.loads(body) == {"error": {"code": status, "message": "it went wrong", "status": rpc}}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, content=body, headers=[(k.decode(), v.decode()) for k, v in headers])

    client = genai.Client(
        api_key="k",
        http_options=types.HttpOptions(
            httpx_client=httpx.Client(transport=httpx.MockTransport(handler)),
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )
    with pytest.raises(sdk_error) as caught:
        client.models.generate_content(model=MODEL, contents="hi")
    assert caught.value.code == status and caught.value.status == rpc and caught.value.message == "it went wrong"


#: Google's HTTP status for each RPC status it answers with (google.rpc.Code).
GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@pytest.mark.parametrize("status", [*GOOGLE_STATUSES, 529])
def test_error_statuses_are_googles(status: int) -> None:
    """Every status Google answers keeps Google's RPC status, body and stream alike; overloaded is UNAVAILABLE."""
    rpc = GOOGLE_STATUSES.get(status, "UNAVAILABLE")
    error = RelayError(status, "upstream", "m", code="overloaded_error" if status == 529 else None)
    assert orjson.loads(gemini.encode_error(error)[2])["error"]["status"] == rpc
    frame = gemini.encode_stream_error(error)
    assert orjson.loads(frame.removeprefix(b"data: "))["error"] == {"code": status, "message": "m", "status": rpc}
    # and back: the RPC status stands for the status Google answers it with
    assert gemini_stream.CODE_BY_STATUS[rpc] == (503 if status == 529 else status)


def test_encode_error_keeps_an_upstream_rpc_status() -> None:
    _, _, body = gemini.encode_error(RelayError(400, "upstream", "m", code="FAILED_PRECONDITION"))
    assert orjson.loads(body)["error"]["status"] == "FAILED_PRECONDITION"


def test_decode_error() -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": 429,
                "message": "Quota exceeded",
                "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37.2s"}],
            }
        }
    )
    error = gemini.decode_error(429, body)
    assert (error.status, error.message, error.code, error.kind) == (
        429,
        "Quota exceeded",
        "RESOURCE_EXHAUSTED",
        "rate_limit",
    )
    assert error.headers == ((b"retry-after", b"38"),)
    bad_key = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    assert gemini.decode_error(400, orjson.dumps([bad_key])).status == 401  # array-wrapped, as without alt=sse
    plain = gemini.decode_error(502, b"<html>Bad Gateway</html>")
    assert (plain.status, plain.message) == (502, "<html>Bad Gateway</html>")
    assert gemini.decode_error(200, b"{}").status == 502


# ---- passthrough helpers -------------------------------------------------------------------------------------


def test_usage_reader() -> None:
    reader = gemini.UsageReader()
    assert reader.usage is None
    reader.feed(b'{"candidates": []}')
    reader.feed(b'not json but has "usageMetadata"')
    assert reader.usage is None
    reader.feed(orjson.dumps({"usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}}))
    assert reader.usage == ir.Usage(input_tokens=5)
    reader.feed(orjson.dumps(ANSWER))
    assert reader.usage == ir.Usage(input_tokens=105, output_tokens=70, cached_tokens=60, reasoning_tokens=40)
    array = gemini.UsageReader()
    array.feed(orjson.dumps([{"usageMetadata": {"promptTokenCount": 1}}, {"usageMetadata": {"promptTokenCount": 2}}]))
    assert array.usage == ir.Usage(input_tokens=2)


def test_rename_model() -> None:
    data = orjson.dumps(ANSWER)
    assert gemini.rename_model(data, "gemini-2.5-flash-001", "gemini-2.5-flash-001") is data
    renamed = orjson.loads(gemini.rename_model(data, "public", "upstream"))
    assert renamed["modelVersion"] == "public" and renamed["candidates"] == ANSWER["candidates"]
    listed = orjson.loads(gemini.rename_model(orjson.dumps([ANSWER, {"x": 1}]), "public", "upstream"))
    assert listed[0]["modelVersion"] == "public" and listed[1] == {"x": 1}
    no_model = b'{"candidates": []}'
    assert gemini.rename_model(no_model, "public", "upstream") is no_model


def test_paths() -> None:
    assert gemini.path(MODEL, False) == "/models/gemini-2.5-flash:generateContent"
    assert gemini.path("models/" + MODEL, True) == "/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert gemini.path("tunedModels/my-model", False) == "/tunedModels/my-model:generateContent"
    assert gemini.count_path(MODEL) == "/models/gemini-2.5-flash:countTokens"


# ---- counting tokens -----------------------------------------------------------------------------------------


def test_count_tokens_with_the_sdk() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=gemini.encode_count_response(42))

    result = sdk_client(handler).models.count_tokens(model=MODEL, contents="How many tokens?")
    assert result.total_tokens == 42
    assert seen[0].url.path.endswith(gemini.count_path(MODEL))
    req = gemini.decode_count_request(seen[0].content, model=MODEL)
    assert req.messages == (user(ir.Text("How many tokens?")),)
    assert gemini.decode_count_response(gemini.encode_count_response(42)) == 42
    assert gemini.decode_count_response(b'{"promptTokensDetails": []}') == 0  # proto-JSON leaves zeros out


def test_count_request_forms() -> None:
    inner = {
        "model": "models/x",
        "contents": [{"parts": [{"text": "a"}]}],
        "systemInstruction": {"parts": [{"text": "s"}]},
    }
    req = gemini.decode_count_request(orjson.dumps({"generateContentRequest": inner}), model=MODEL)
    assert req.system == (ir.Text("s"),) and req.messages == (user(ir.Text("a")),) and req.model == MODEL
    with pytest.raises(RelayError) as caught:
        gemini.decode_count_request(orjson.dumps({"generateContentRequest": inner, "contents": []}), model=MODEL)
    assert caught.value.param == "generateContentRequest"
    with pytest.raises(RelayError) as caught:
        gemini.decode_count_request(orjson.dumps({"generateContentRequest": {"contents": [1]}}), model=MODEL)
    assert caught.value.param == "generateContentRequest.contents[0]"
    with pytest.raises(RelayError) as caught:
        gemini.decode_count_request(b"{}", model=MODEL)
    assert caught.value.param == "contents"


def test_encode_count_request() -> None:
    plain = request(user(ir.Text("a")), max_tokens=5, reasoning=ir.ReasoningConfig(effort="low"))
    assert orjson.loads(gemini.encode_count_request(plain, MODEL)) == {
        "contents": [{"role": "user", "parts": [{"text": "a"}]}]
    }
    full = request(user(ir.Text("a")), system=(ir.Text("s"),), tools=(ir.Tool("f", None, {}),), max_tokens=5)
    assert orjson.loads(gemini.encode_count_request(full, MODEL)) == {
        "generateContentRequest": {
            "model": "models/gemini-2.5-flash",
            "contents": [{"role": "user", "parts": [{"text": "a"}]}],
            "systemInstruction": {"parts": [{"text": "s"}]},
            "tools": [{"functionDeclarations": [{"name": "f"}]}],
        }
    }


@pytest.mark.parametrize("body", [b"x", b"[]", b'{"totalTokens": "3"}', b'{"totalTokens": -1}', b'{"error": {}}'])
def test_decode_count_response_malformed(body: bytes) -> None:
    with pytest.raises(RelayError) as caught:
        gemini.decode_count_response(body)
    assert caught.value.status == 502

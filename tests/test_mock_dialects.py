"""The mock upstream in every dialect: official SDKs straight against it, and every rule and directive.

- SDK tests: ``relay mock-upstream`` as a subprocess, the openai, anthropic and google-genai clients
  pointed at it, proving each wire format parses in the SDK that speaks it (whole, streamed, round trips);
- strictness: ``Mock.route`` (sans-IO) with bodies a real API refuses, each refusal in its dialect's shape;
- directives and routes: through ``MockTransport`` (httpx, no socket), streams read as they come.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pydantic
import pytest
import trio
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from relay.config import MockOptions
from relay.http.sse import Parser
from relay.mock import signing
from relay.mock.model import Answer
from relay.mock.router import Mock
from relay.mock.transport import MockTransport
from tests.conftest import process
from tests.helpers import MOCK_ARGS

KEY = "sk-mock-upstream"
ANTHROPIC = {"anthropic-version": "2023-06-01"}
MOCK = Mock(MockOptions(chunks=4))
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city"],
}
CHAT_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
RESPONSES_TOOL = {"type": "function", "name": "get_weather", "parameters": SCHEMA, "strict": False}
ANTHROPIC_TOOL = {"name": "get_weather", "input_schema": SCHEMA}
GEMINI_TOOL = {"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": SCHEMA}]}
CLOCK = {"functionDeclarations": [{"name": "get_time", "parameters": {"type": "OBJECT", "properties": {}}}]}


# ---- helpers -------------------------------------------------------------------------------------


def route(
    path: str,
    body: Any,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    query: str = "",
    mock: Mock = MOCK,
) -> Answer:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    if headers is None:
        headers = ANTHROPIC if "/messages" in path else {}
    return mock.route(method, path, query, [(k.encode(), v.encode()) for k, v in headers.items()], raw)


def whole(answer: Answer) -> Any:
    assert isinstance(answer.body, bytes), "expected a whole body"
    return json.loads(answer.body)


def sse(answer: Answer | bytes) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of every SSE event, through Relay's own parser."""
    raw = answer if isinstance(answer, bytes) else b"".join(answer.body)
    out = []
    for event in Parser().feed(raw):
        assert event.data is not None
        name = event.name.decode() if event.name else None
        out.append((name, None if event.data == b"[DONE]" else json.loads(event.data)))
    return out


def refused(answer: Answer, status: int = 400) -> str:
    """The message of a refusal, after checking the body has its dialect's error shape."""
    assert answer.status == status, (answer.status, answer.body)
    body = whole(answer)
    if body.get("type") == "error":  # Anthropic
        assert set(body) == {"type", "error"} and set(body["error"]) == {"type", "message"}
        return body["error"]["message"]
    error = body["error"]
    if "status" in error:  # Gemini
        assert set(error) - {"details"} == {"code", "message", "status"} and error["code"] == status
        return error["message"]
    assert set(error) == {"message", "type", "param", "code"}
    return error["message"]


def chat(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-1", "messages": [{"role": "user", "content": text}], **extra}


def responses(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-1", "input": text, **extra}


def messages(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "claude", "max_tokens": 4096, "messages": [{"role": "user", "content": text}], **extra}


def gemini(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


THINK_ANTHROPIC = {"type": "enabled", "budget_tokens": 1024}
THINK_GEMINI = {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}
GENERATE = "/v1beta/models/gemini-x:generateContent"
STREAM_SSE = ("/v1beta/models/gemini-x:streamGenerateContent", "alt=sse")


# ---- SDKs straight against `relay mock-upstream` -----------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with process(*MOCK_ARGS, "--chunks", "3") as (_, address):
        yield f"http://{address}"


@pytest.fixture(scope="module")
def keyed() -> Iterator[str]:
    with process(*MOCK_ARGS, "--api-key", KEY) as (_, address):
        yield f"http://{address}"


@pytest.fixture
def oai(upstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key="any", base_url=f"{upstream}/v1", max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
def claude(upstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="any", base_url=upstream, max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
def gem(upstream) -> genai.Client:
    return genai.Client(api_key="any", http_options=gtypes.HttpOptions(base_url=upstream, timeout=10_000))


def test_sdk_openai_chat_with_reasoning_and_structured_output(oai):
    form = {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}}
    done = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Oslo mock:cached=2"}], reasoning_effort="low",
        response_format=form,
    )  # fmt: skip
    message = done.choices[0].message
    assert json.loads(message.content) == {"city": "Oslo mock:cached=2", "days": 1, "unit": "c"}
    assert message.model_extra["reasoning_content"] == "Thinking about: Oslo mock:cached=2"
    assert done.usage.completion_tokens_details.reasoning_tokens == 9
    assert done.usage.prompt_tokens_details.cached_tokens == 2
    stream = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], reasoning_effort="high", stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    reasoning = "".join(c.choices[0].delta.model_extra.get("reasoning_content") or "" for c in chunks if c.choices)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (reasoning, text) == ("Thinking about: hi", "Echo: hi")
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 5


def test_sdk_openai_responses_text_stream_and_count(oai):
    done = oai.responses.create(model="m", input="hello", instructions="be brief")
    assert isinstance(done, openai.types.responses.Response)
    assert (done.output_text, done.status, done.id[:5]) == ("Echo: hello", "completed", "resp_")
    assert done.output[0].id.startswith("msg_")
    with oai.responses.stream(model="m", input="stream me") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Echo: stream me"
    assert final.usage.output_tokens == 4
    counted = oai.responses.input_tokens.count(model="m", input="hello", instructions="be brief")
    assert counted.input_tokens == done.usage.input_tokens == (2 + 3) + (2 + 3)


def test_sdk_openai_responses_tool_loop_with_encrypted_reasoning(oai):
    first = oai.responses.create(
        model="m", input=[{"role": "user", "content": "Paris"}], tools=[RESPONSES_TOOL],
        reasoning={"effort": "low"}, include=["reasoning.encrypted_content"], store=False,
    )  # fmt: skip
    reasoning, call = first.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_")
    assert signing.decrypted_reasoning(reasoning.encrypted_content) == "Thinking about: Paris"
    assert call.type == "function_call" and call.id.startswith("fc_") and call.call_id.startswith("call_")
    assert json.loads(call.arguments)["city"] == "Paris"
    history = [
        {"role": "user", "content": "Paris"},
        *(item.model_dump(exclude_none=True) for item in first.output),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    again = oai.responses.create(model="m", input=history, tools=[RESPONSES_TOOL], reasoning={"effort": "low"})
    assert again.output_text == "Tool said: sunny"
    history[1]["encrypted_content"] = reasoning.encrypted_content[:-3] + "abc"
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="m", input=history, tools=[RESPONSES_TOOL])
    assert "could not be verified" in str(caught.value)


def test_sdk_openai_responses_stream_events_are_typed_and_balanced(oai):
    events = list(
        oai.responses.create(
            model="m", input="Paris mock:parallel", tools=[RESPONSES_TOOL, {**RESPONSES_TOOL, "name": "other"}],
            reasoning={"effort": "medium", "summary": "auto"}, stream=True,
        )
    )  # fmt: skip
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 3
    final = events[-1].response
    assert [i.type for i in final.output] == ["reasoning", "function_call", "function_call"]
    assert final.output[0].summary[0].text == "Thinking about: Paris mock:parallel"
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert arguments == "".join(i.arguments for i in final.output[1:])


def test_sdk_anthropic_create_stream_and_thinking_round_trip(claude):
    kwargs: dict[str, Any] = {
        "model": "claude", "max_tokens": 2048, "thinking": THINK_ANTHROPIC, "tools": [ANTHROPIC_TOOL],
        "messages": [{"role": "user", "content": "Rome"}],
    }  # fmt: skip
    made = claude.messages.create(**kwargs)
    thinking, use = made.content
    assert (thinking.type, use.type, made.stop_reason) == ("thinking", "tool_use", "tool_use")
    assert thinking.signature == signing.thinking_signature("Thinking about: Rome")
    assert use.id.startswith("toolu_") and use.input["city"] == "Rome"
    with claude.messages.stream(**kwargs) as stream:
        kinds = [e.type for e in stream]
        streamed = stream.get_final_message()
    assert kinds.count("signature") == 1 and "input_json" in kinds
    assert [b.model_dump(exclude={"id"}) for b in streamed.content] == [
        b.model_dump(exclude={"id"}) for b in made.content
    ]
    assert streamed.usage.output_tokens == made.usage.output_tokens
    turn = [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in made.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "warm"}]},
    ]
    kwargs["messages"] = kwargs["messages"] + turn
    answer = claude.messages.create(**kwargs)
    assert answer.content[-1].text == "Tool said: warm" and answer.stop_reason == "end_turn"
    turn[0]["content"][0]["signature"] = "x" + thinking.signature[1:]
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(**kwargs)
    assert "Invalid `signature` in `thinking` block" in str(caught.value)


def test_sdk_anthropic_stop_sequence_cache_count_and_models(claude):
    made = claude.messages.create(
        model="claude", max_tokens=100, messages=[{"role": "user", "content": "one STOP two mock:cached=3"}],
        stop_sequences=["STOP"],
    )  # fmt: skip
    assert (made.content[0].text, made.stop_reason, made.stop_sequence) == ("Echo: one ", "stop_sequence", "STOP")
    assert made.usage.cache_read_input_tokens == 3
    assert made.usage.input_tokens == 10 - 3
    counted = claude.messages.count_tokens(model="claude", messages=[{"role": "user", "content": "hello"}])
    assert counted.input_tokens == 5
    assert [m.id for m in claude.models.list()] == ["mock-1", "mock-2", "gpt-4o-mini"]


def test_sdk_gemini_generate_stream_count_and_models(gem):
    config = gtypes.GenerateContentConfig(
        thinking_config=gtypes.ThinkingConfig(thinking_budget=1024, include_thoughts=True),
        system_instruction="be brief",
    )
    made = gem.models.generate_content(model="gemini-x", contents="hello gem", config=config)
    thought, text = made.candidates[0].content.parts
    assert (thought.thought, thought.text, text.text) == (True, "Thinking about: hello gem", "Echo: hello gem")
    assert made.usage_metadata.thoughts_token_count == 7
    assert made.usage_metadata.candidates_token_count == 4
    chunks = list(gem.models.generate_content_stream(model="gemini-x", contents="streaming"))
    assert "".join(c.text for c in chunks) == "Echo: streaming"
    assert [c.candidates[0].finish_reason for c in chunks][-1] == gtypes.FinishReason.STOP
    usage = chunks[-1].usage_metadata
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count == 6 + 4
    counted = gem.models.count_tokens(model="gemini-x", contents="hello")
    assert counted.total_tokens == 5
    assert [m.name for m in gem.models.list()] == ["models/mock-1", "models/mock-2", "models/gpt-4o-mini"]
    assert gem.models.get(model="gemini-x").name == "models/gemini-x"


def test_sdk_gemini_function_call_loop_keeps_the_thought_signature(gem):
    tool = gtypes.Tool(
        function_declarations=[gtypes.FunctionDeclaration(name="get_weather", parameters_json_schema=SCHEMA)]
    )
    config = gtypes.GenerateContentConfig(tools=[tool], thinking_config=gtypes.ThinkingConfig(thinking_budget=512))
    made = gem.models.generate_content(model="gemini-x", contents="Lima", config=config)
    (part,) = made.candidates[0].content.parts  # no thought part without include_thoughts
    assert part.function_call.id.startswith("call_") and part.function_call.args["city"] == "Lima"
    assert part.thought_signature  # bytes, as the SDK decodes it
    answer = gtypes.FunctionResponse(id=part.function_call.id, name="get_weather", response={"result": "dry"})
    history = [
        gtypes.Content(role="user", parts=[gtypes.Part(text="Lima")]),
        made.candidates[0].content,
        gtypes.Content(role="user", parts=[gtypes.Part(function_response=answer)]),
    ]
    assert gem.models.generate_content(model="gemini-x", contents=history, config=config).text == "Tool said: dry"
    history[1] = gtypes.Content(role="model", parts=[gtypes.Part(function_call=part.function_call)])
    with pytest.raises(genai_errors.ClientError) as caught:
        gem.models.generate_content(model="gemini-x", contents=history, config=config)
    assert caught.value.code == 400 and "missing a thought_signature" in caught.value.message


def test_sdks_send_their_keys(keyed):
    with openai.OpenAI(api_key=KEY, base_url=f"{keyed}/v1", max_retries=0) as good:
        assert good.chat.completions.create(model="m", messages=[{"role": "user", "content": "k"}]).choices
    with openai.OpenAI(api_key="wrong", base_url=f"{keyed}/v1", max_retries=0) as bad, pytest.raises(
        openai.AuthenticationError
    ):  # fmt: skip
        bad.responses.create(model="m", input="k")
    with anthropic.Anthropic(api_key=KEY, base_url=keyed, max_retries=0) as good:
        assert good.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "k"}]).content
    with anthropic.Anthropic(api_key="wrong", base_url=keyed, max_retries=0) as bad, pytest.raises(
        anthropic.AuthenticationError
    ):  # fmt: skip
        bad.messages.count_tokens(model="c", messages=[{"role": "user", "content": "k"}])
    good_gem = genai.Client(api_key=KEY, http_options=gtypes.HttpOptions(base_url=keyed))
    assert good_gem.models.generate_content(model="g", contents="k").text == "Echo: k"
    bad_gem = genai.Client(api_key="wrong", http_options=gtypes.HttpOptions(base_url=keyed))
    with pytest.raises(genai_errors.ClientError) as caught:
        bad_gem.models.count_tokens(model="g", contents="k")
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"


def test_sdks_raise_on_the_status_directive(oai, claude, gem):
    with pytest.raises(openai.RateLimitError):
        oai.responses.create(model="m", input="mock:status=429")
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "mock:status=429"}])
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(genai_errors.ServerError) as server:
        gem.models.generate_content(model="g", contents="mock:status=503")
    assert server.value.status == "UNAVAILABLE"


# ---- wire shapes validated by the SDK types -------------------------------------------------------


def test_responses_stream_events_validate_as_sdk_types():
    adapter = pydantic.TypeAdapter(openai.types.responses.ResponseStreamEvent)
    body = responses("x", tools=[RESPONSES_TOOL], reasoning={"effort": "low"}, include=["reasoning.encrypted_content"])
    for payload in (body, responses("plain text", stream=True), {**body, "stream": True}):
        answer = route("/v1/responses", {**payload, "stream": True})
        for name, data in sse(answer):
            assert name == data["type"]
            adapter.validate_python(data)
        openai.types.responses.Response.model_validate(whole(route("/v1/responses", {**payload, "stream": False})))


def test_anthropic_stream_events_validate_as_sdk_types():
    adapter = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
    payload = messages("x", tools=[ANTHROPIC_TOOL], thinking=THINK_ANTHROPIC, stream=True)
    events = sse(route("/v1/messages", payload))
    assert [n for n, _ in events][:2] == ["message_start", "ping"]
    assert [n for n, _ in events].count("ping") == 1
    for name, data in events:
        assert name == data["type"]
        if name != "ping":
            adapter.validate_python(data)
    tool_deltas = [d["delta"] for n, d in events if n == "content_block_delta" and d["index"] == 1]
    assert tool_deltas[0] == {"type": "input_json_delta", "partial_json": ""}
    thinking = [d["delta"]["type"] for n, d in events if n == "content_block_delta" and d["index"] == 0]
    assert thinking[-1] == "signature_delta" and thinking.count("signature_delta") == 1
    anthropic.types.Message.model_validate(whole(route("/v1/messages", {**payload, "stream": False})))


def test_gemini_chunks_validate_as_sdk_types():
    body = gemini("Quito", tools=[GEMINI_TOOL], generationConfig=THINK_GEMINI)
    made = whole(route(GENERATE, body))
    parsed = gtypes.GenerateContentResponse.model_validate(made)
    assert parsed.candidates[0].content.parts[1].function_call.name == "get_weather"
    for _, data in sse(route(*STREAM_SSE[:1], body, query=STREAM_SSE[1])):
        gtypes.GenerateContentResponse.model_validate(data)


# ---- reasoning, structured output, stops, limits in every dialect ------------------------------------


def test_reasoning_is_asked_in_each_dialect_its_own_way():
    asked = {
        "chat": [chat(reasoning_effort="low")],
        "responses": [responses(reasoning={"effort": "low"}), responses(reasoning={})],
        "anthropic": [messages(thinking=THINK_ANTHROPIC), messages(thinking={"type": "adaptive"})],
        "gemini": [
            gemini(generationConfig={"thinkingConfig": {"thinkingBudget": -1}}),
            gemini(generationConfig={"thinking_config": {"include_thoughts": True}}),
            gemini(generationConfig={"thinkingConfig": {"thinkingLevel": "low"}}),
        ],
    }
    not_asked = {
        "chat": [chat(), chat(reasoning_effort="none")],
        "responses": [responses(), responses(reasoning={"effort": "none"})],
        "anthropic": [messages(), messages(thinking={"type": "disabled"})],
        "gemini": [gemini(), gemini(generationConfig={"thinkingConfig": {"thinkingBudget": 0}})],
    }
    paths = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "anthropic": "/v1/messages"}

    def reasoning_tokens(dialect: str, body: dict) -> int:
        made = whole(route(paths.get(dialect, GENERATE), body))
        if dialect == "chat":
            return made["usage"]["completion_tokens_details"]["reasoning_tokens"]
        if dialect == "responses":
            return made["usage"]["output_tokens_details"]["reasoning_tokens"]
        if dialect == "anthropic":
            return sum(1 for b in made["content"] if b["type"] == "thinking")
        return made["usageMetadata"].get("thoughtsTokenCount", 0)

    for dialect, bodies in asked.items():
        assert all(reasoning_tokens(dialect, b) > 0 for b in bodies), dialect
    for dialect, bodies in not_asked.items():
        assert all(reasoning_tokens(dialect, b) == 0 for b in bodies), dialect


def test_gemini_thought_parts_only_with_include_thoughts():
    hidden = whole(route(GENERATE, gemini("q", generationConfig={"thinkingConfig": {"thinkingBudget": 2048}})))
    assert hidden["candidates"][0]["content"]["parts"] == [{"text": "Echo: q"}]
    assert hidden["usageMetadata"]["thoughtsTokenCount"] == 5
    shown = whole(route(GENERATE, gemini("q", generationConfig=THINK_GEMINI)))
    assert shown["candidates"][0]["content"]["parts"][0] == {"text": "Thinking about: q", "thought": True}
    usage = shown["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"] + 5


def test_structured_output_in_every_dialect():
    wanted = {"city": "Bern", "days": 1, "unit": "c"}
    form = {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}}
    made = whole(route("/v1/chat/completions", chat("Bern", response_format=form)))
    assert json.loads(made["choices"][0]["message"]["content"]) == wanted
    made = whole(route("/v1/chat/completions", chat("Bern", response_format={"type": "json_object"})))
    assert json.loads(made["choices"][0]["message"]["content"]) == {"answer": "Bern"}
    text = {"format": {"type": "json_schema", "name": "w", "schema": SCHEMA}}
    made = whole(route("/v1/responses", {**responses("Bern"), "text": text}))
    assert json.loads(made["output"][0]["content"][0]["text"]) == wanted
    config = {"format": {"type": "json_schema", "schema": SCHEMA}}
    made = whole(route("/v1/messages", messages("Bern", output_config=config)))
    assert json.loads(made["content"][0]["text"]) == wanted
    made = whole(route(GENERATE, gemini("Bern", generationConfig={"responseMimeType": "application/json",
                                                                   "responseJsonSchema": SCHEMA})))  # fmt: skip
    assert json.loads(made["candidates"][0]["content"]["parts"][0]["text"]) == wanted
    made = whole(route(GENERATE, gemini("Bern", generationConfig={"responseMimeType": "application/json"})))
    assert json.loads(made["candidates"][0]["content"]["parts"][0]["text"]) == {"answer": "Bern"}


def test_stop_sequences_cut_the_text():
    made = whole(route("/v1/chat/completions", chat("a|b", stop=["|", "zzz"])))
    assert (made["choices"][0]["message"]["content"], made["choices"][0]["finish_reason"]) == ("Echo: a", "stop")
    made = whole(route("/v1/chat/completions", chat("a|b", stop="b")))
    assert made["choices"][0]["message"]["content"] == "Echo: a|"
    made = whole(route("/v1/messages", messages("a|b", stop_sequences=["zzz", "|"])))
    assert (made["content"][0]["text"], made["stop_reason"], made["stop_sequence"]) == ("Echo: a", "stop_sequence", "|")
    events = sse(route("/v1/messages", messages("a|b", stop_sequences=["|"], stream=True)))
    (delta,) = [d["delta"] for n, d in events if n == "message_delta"]
    assert delta == {"stop_reason": "stop_sequence", "stop_sequence": "|"}
    made = whole(route(GENERATE, gemini("a|b", generationConfig={"stopSequences": ["|"]})))
    assert made["candidates"][0]["content"]["parts"] == [{"text": "Echo: a"}]
    assert made["candidates"][0]["finishReason"] == "STOP"


def test_max_tokens_in_every_dialect():
    long = "x" * 200
    made = whole(route("/v1/chat/completions", chat(long, max_tokens=5)))
    assert made["choices"][0]["finish_reason"] == "length" and len(made["choices"][0]["message"]["content"]) == 20
    made = whole(route("/v1/responses", responses(long, max_output_tokens=16)))
    assert (made["status"], made["incomplete_details"]) == ("incomplete", {"reason": "max_output_tokens"})
    assert made["output"][0]["status"] == "incomplete" and made["usage"]["output_tokens"] == 16
    events = sse(route("/v1/responses", responses(long, max_output_tokens=16, stream=True)))
    assert events[-1][0] == "response.incomplete"
    made = whole(route("/v1/messages", messages(long, max_tokens=5)))
    assert (made["stop_reason"], made["usage"]["output_tokens"]) == ("max_tokens", 5)
    made = whole(route(GENERATE, gemini(long, generationConfig={"maxOutputTokens": 5})))
    assert made["candidates"][0]["finishReason"] == "MAX_TOKENS"
    thinking = whole(route("/v1/messages", messages(long, max_tokens=1030, thinking=THINK_ANTHROPIC)))
    assert thinking["stop_reason"] == "end_turn"


def test_reasoning_counts_against_the_limit():
    made = whole(route("/v1/chat/completions", chat("y" * 40, max_tokens=3, reasoning_effort="low")))
    message = made["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == (None, "Thinking abo")
    assert made["usage"]["completion_tokens"] == made["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3


# ---- strictness: Chat Completions -------------------------------------------------------------------

ASSISTANT_CALL = {
    "role": "assistant",
    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
}


@pytest.mark.parametrize(
    ("messages_", "param", "words"),
    [
        ([{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "call_1", "content": "r"}],
         "messages[1].role", "must be a response to a preceeding message with 'tool_calls'"),
        ([{"role": "user", "content": "q"}, ASSISTANT_CALL, {"role": "tool", "tool_call_id": "call_9", "content": "r"}],
         "messages[2].tool_call_id", "'call_9' not found in 'tool_calls'"),
        ([{"role": "user", "content": "q"}, ASSISTANT_CALL, {"role": "user", "content": "again"}],
         "messages[1].role", "did not have response messages: call_1"),
        ([{"role": "user", "content": "q"}, ASSISTANT_CALL], "messages[1].role", "did not have response messages"),
        ([{"role": "user", "content": "q"},
          {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f",
                                                                                        "arguments": {}}}]}],
         "messages[1].tool_calls[0].function.arguments", "expected a string, but got dict"),
        ([{"role": "model", "content": "q"}], "messages[0].role", "Invalid value: 'model'"),
        ([{"role": "user", "content": [{"type": "input_text", "text": "q"}]}], "messages[0].content[0].type",
         "Invalid value: 'input_text'"),
    ],
)  # fmt: skip
def test_chat_refuses_broken_conversations(messages_, param, words):
    answer = route("/v1/chat/completions", {"model": "m", "messages": messages_})
    assert words in refused(answer)
    assert whole(answer)["error"]["param"] == param


def test_chat_takes_parallel_tool_results_in_any_order():
    second = {"id": "call_2", "type": "function", "function": {"name": "x", "arguments": "{}"}}
    history = [
        {"role": "user", "content": "q"},
        {**ASSISTANT_CALL, "tool_calls": [*ASSISTANT_CALL["tool_calls"], second]},
        {"role": "tool", "tool_call_id": "call_2", "content": "two"},
        {"role": "tool", "tool_call_id": "call_1", "content": "one"},
    ]
    made = whole(route("/v1/chat/completions", {"model": "m", "messages": history}))
    assert made["choices"][0]["message"]["content"] == "Tool said: one"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
            "response_format.json_schema.name",
        ),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"temperature": 2.5}, "temperature"),
    ],
)
def test_chat_refuses_bad_options(extra, param):
    answer = route("/v1/chat/completions", chat(**extra))
    refused(answer)
    assert whole(answer)["error"]["param"] == param


# ---- strictness: Responses --------------------------------------------------------------------------

ENCRYPTED = signing.encrypted_reasoning("Thinking about: q")
REASONING_ITEM = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": ENCRYPTED}
CALL_ITEM = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": "{}"}
OUTPUT_ITEM = {"type": "function_call_output", "call_id": "call_1", "output": "rainy"}


def test_responses_takes_its_own_history_back():
    history = [{"role": "user", "content": "q"}, REASONING_ITEM, CALL_ITEM, OUTPUT_ITEM]
    made = whole(route("/v1/responses", responses(input=history, tools=[RESPONSES_TOOL])))
    assert made["output"][0]["content"][0]["text"] == "Tool said: rainy"
    message = {"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]}
    made = whole(route("/v1/responses", responses(input=[{"role": "user", "content": "q"}, REASONING_ITEM, message])))
    assert made["status"] == "completed"


@pytest.mark.parametrize(
    ("change", "param", "words"),
    [
        ({"messages": []}, "messages", "Unknown parameter: 'messages'."),
        ({"max_tokens": 50}, "max_tokens", "Unknown parameter"),
        ({"stop": ["x"]}, "stop", "Unknown parameter"),
        ({"previous_response_id": "resp_1"}, "previous_response_id", "not found"),
        ({"input": [{**CALL_ITEM, "id": "call_1"}]}, "input[0].id", "Expected an ID that begins with 'fc'"),
        ({"input": [{"type": "message", "id": "item_1", "role": "assistant", "content": "a"}]}, "input[0].id",
         "begins with 'msg'"),
        ({"input": [{"role": "user", "content": "q"}, {**REASONING_ITEM, "id": "reasoning_1"}, CALL_ITEM]},
         "input[1].id", "begins with 'rs'"),
        ({"input": [{"role": "user", "content": "q"}, {**REASONING_ITEM, "encrypted_content": None}, CALL_ITEM]},
         "input", "Item with id 'rs_1' not found"),
        ({"input": [{"role": "user", "content": "q"},
                    {**REASONING_ITEM, "encrypted_content": signing.encrypted_reasoning("Thinking about: Q")[:-2]
                     + "xx"}, CALL_ITEM]},
         "input[1].encrypted_content", "could not be verified"),
        ({"input": [{"role": "user", "content": "q"}, REASONING_ITEM]}, "input", "without its required following item"),
        ({"input": [{"role": "user", "content": "q"}, OUTPUT_ITEM]}, "input", "No tool call found"),
        ({"input": [{"role": "assistant", "content": [{"type": "input_text", "text": "a"}]}]}, "input[0].content[0]",
         "Invalid value: 'input_text'"),
        ({"input": [{"role": "user", "content": [{"type": "output_text", "text": "a"}]}]}, "input[0].content[0]",
         "Invalid value: 'output_text'"),
        ({"input": [{**CALL_ITEM, "arguments": {}}]}, "input[0].arguments", "expected a string"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input", "not found"),
        ({"tools": [CHAT_TOOL]}, "tools[0].name", "Missing required parameter"),
        ({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, "tool_choice.name", "Missing"),
        ({"max_output_tokens": 5}, "max_output_tokens", "Expected a value >= 16"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name", "Missing"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort", "Invalid value: 'extreme'"),
    ],
)  # fmt: skip
def test_responses_refuses_what_openai_refuses(change, param, words):
    answer = route("/v1/responses", {**responses("q"), **change})
    assert words in refused(answer)
    assert whole(answer)["error"]["param"] == param
    if param != "messages" and "input" in change:
        counted = route("/v1/responses/input_tokens", {**responses("q"), **change})
        assert words in refused(counted)


# ---- strictness: Anthropic --------------------------------------------------------------------------

SIGNED = {
    "type": "thinking",
    "thinking": "Thinking about: q",
    "signature": signing.thinking_signature("Thinking about: q"),
}
USE = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "q"}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "fine"}


JPG = {"type": "base64", "media_type": "image/jpg", "data": ""}


def loop(*assistant: dict, answer: list | None = None) -> list[dict]:
    return [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": list(assistant)},
        {"role": "user", "content": answer if answer is not None else [RESULT]},
    ]


def test_anthropic_takes_its_own_history_back():
    made = whole(
        route("/v1/messages", messages(messages=loop(SIGNED, USE), thinking=THINK_ANTHROPIC, tools=[ANTHROPIC_TOOL]))
    )
    assert made["content"][-1]["text"] == "Tool said: fine"
    made = whole(route("/v1/messages", messages(messages=loop(USE), tools=[ANTHROPIC_TOOL])))
    assert made["content"][-1]["text"] == "Tool said: fine"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"max_completion_tokens": 5}, "max_completion_tokens: Extra inputs are not permitted"),
        ({"messages": [{"role": "tool", "content": "s"}]}, "messages.0.role: Input should be 'user' or 'assistant'"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"}]},
         'messages.1: Unexpected role "system". The Messages API accepts a top-level `system` parameter'),
        ({"messages": []}, "at least one message"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}, "must be non-empty"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": " \n"}]}]}, "non-whitespace"),
        ({"messages": [{"role": "user", "content": ""}]}, "must have non-empty content"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a "}]},
         "trailing whitespace"),
        ({"messages": loop(USE, answer=[{"type": "text", "text": "hm"}])},
         "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
        ({"messages": loop(USE, answer=[{"type": "text", "text": "first"}, RESULT])}, "immediately after: toolu_1"),
        ({"messages": loop(USE, answer=[RESULT, {**RESULT, "tool_use_id": "toolu_2"}])},
         "unexpected `tool_use_id` found in `tool_result` blocks: toolu_2"),
        ({"messages": loop({**USE, "input": '{"city": "q"}'})},
         "messages.1.content.0.input: Input should be a valid dictionary"),
        ({"messages": loop({**USE, "id": "call.1"}, answer=[{**RESULT, "tool_use_id": "call.1"}])},
         "should match pattern"),
        ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "`max_tokens` must be greater than"),
        ({"thinking": THINK_ANTHROPIC, "temperature": 0.5}, "`temperature` may only be set to 1"),
        ({"thinking": THINK_ANTHROPIC, "top_k": 5}, "`top_k` must be unset"),
        ({"thinking": THINK_ANTHROPIC, "tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "any"}},
         "Thinking may not be enabled when tool_choice forces tool use"),
        ({"messages": loop({**SIGNED, "signature": SIGNED["signature"][:-4] + "AAA="}, USE)},
         "messages.1.content.0: Invalid `signature` in `thinking` block"),
        ({"messages": loop({**SIGNED, "thinking": "Thinking about: Q"}, USE)},
         "Invalid `signature` in `thinking` block"),
        ({"messages": loop({"type": "redacted_thinking", "data": "abc"}, USE)},
         "Invalid `data` in `redacted_thinking`"),
        ({"messages": loop(USE), "thinking": THINK_ANTHROPIC},
         "Expected `thinking` or `redacted_thinking`, but found `tool_use`"),
        ({"tools": [CHAT_TOOL]}, "tools.0: Input tag 'function'"),
        ({"tools": [{"name": "f"}]}, "tools.0.custom.input_schema: Field required"),
        ({"tools": [{"name": "bad name", "input_schema": {"type": "object"}}]}, "tools.0.custom.name"),
        ({"tool_choice": "auto"}, "tool_choice: Input should be a valid dictionary"),
        ({"temperature": 1.5}, "temperature"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": JPG}]}]},
         "media_type: Input should be 'image/jpeg'"),
        ({"stop_sequences": [""]}, "stop_sequences.0"),
    ],
)  # fmt: skip
def test_anthropic_refuses_what_anthropic_refuses(change, words):
    body = {**messages("q", max_tokens=2048), **change}
    body = {k: v for k, v in body.items() if v is not None}
    answer = route("/v1/messages", body)
    assert words in refused(answer)
    assert whole(answer)["error"]["type"] == "invalid_request_error"


def test_anthropic_needs_its_version_header_and_counts_without_max_tokens():
    assert "anthropic-version" in refused(route("/v1/messages", messages(), headers={}))
    assert "anthropic-version" in refused(route("/v1/messages/count_tokens", messages(), headers={}))
    assert "max_tokens: Extra inputs" in refused(route("/v1/messages/count_tokens", messages()))
    body = messages("hello")
    del body["max_tokens"]
    assert whole(route("/v1/messages/count_tokens", body)) == {"input_tokens": 5}
    assert "budget_tokens" in refused(
        route("/v1/messages/count_tokens", {**body, "thinking": {"type": "enabled", "budget_tokens": 5}})
    )


# ---- strictness: Gemini -----------------------------------------------------------------------------


def gemini_loop(call_part: dict, answer: dict | None = None) -> list[dict]:
    response = answer or {"functionResponse": {"id": "c1", "name": "get_weather", "response": {"result": "ok"}}}
    return [
        {"role": "user", "parts": [{"text": "q"}]},
        {"role": "model", "parts": [call_part]},
        {"role": "user", "parts": [response]},
    ]


TWO_ANSWERS = [{"functionResponse": {"name": n, "response": {}}} for n in "ab"]
CALL = {"functionCall": {"id": "c1", "name": "get_weather", "args": {"city": "q"}}}
SIGNED_CALL = {**CALL, "thoughtSignature": signing.call_signature("get_weather", {"city": "q"})}


def test_gemini_takes_its_own_history_back():
    for part in (SIGNED_CALL, {**CALL, "thoughtSignature": "skip_thought_signature_validator"}):
        body = {"contents": gemini_loop(part), "tools": [GEMINI_TOOL], "generationConfig": THINK_GEMINI}
        made = whole(route(GENERATE, body))
        assert made["candidates"][0]["content"]["parts"][-1] == {"text": "Tool said: ok"}
    # Without thinking no signature is needed, and whole-number floats (a proto Struct's doubles) still verify.
    assert whole(route(GENERATE, {"contents": gemini_loop(CALL)}))["candidates"]
    signed = {**SIGNED_CALL, "functionCall": {**CALL["functionCall"], "args": {"n": 1.0}},
              "thoughtSignature": signing.call_signature("get_weather", {"n": 1})}  # fmt: skip
    assert route(GENERATE, {"contents": gemini_loop(signed), "generationConfig": THINK_GEMINI}).status == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"contents": gemini_loop(CALL, {"functionResponse": {"name": "get_weather", "response": "sunny"}})},
         "function_response.response' (type.googleapis.com/google.protobuf.Struct), \"sunny\""),
        ({"contents": gemini_loop(CALL), "generationConfig": THINK_GEMINI}, "missing a thought_signature"),
        ({"contents": gemini_loop({**SIGNED_CALL, "functionCall": {**CALL["functionCall"], "args": {"city": "Q"}}})},
         "Corrupted thought signature"),
        ({"contents": gemini_loop({**CALL, "thoughtSignature": "AAAA"})}, "Corrupted thought signature"),
        ({**gemini(), "generationConfig": {"thinkingConfig": {"thinkingBudget": 1024, "thinkingLevel": "HIGH"}}},
         "thinking_budget and thinking_level must not both be set"),
        ({**gemini(), "generationConfig": {"thinking_config": {"thinking_budget": 1024, "thinking_level": "high"}}},
         "must not both be set"),
        ({**gemini(), "tools": [{"functionDeclarations": [{"name": "get weather"}]}]}, "Invalid function name"),
        ({**gemini(), "tools": [{"functionDeclarations": [{"name": "9lives"}]}]}, "Invalid function name"),
        ({**gemini(), "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
            "type": "object", "additionalProperties": False}}]}]}, 'Unknown name "additionalProperties"'),
        ({**gemini(), "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}}]}]}, 'Unknown name "$schema"'),
        ({**gemini(), "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
            "type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}}]}]},
         'Unknown name "$ref" at \'tools[0].function_declarations[0].parameters.properties[a]\''),
        ({**gemini(), "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
            "type": "object", "properties": {"a": {"type": ["string", "null"]}}}}]}]}, "v1beta.Type), [\"string\""),
        ({**gemini(), "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object"},
                                                         "parametersJsonSchema": {"type": "object"}}]}]},
         "must not both be set"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "q"}]}]}, "Please use a valid role: user, model."),
        ({"contents": [{"role": "user", "parts": []}]}, "must not be empty"),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "user", "parts": [{"text": ""}]}]}, "empty text parameter"),
        ({"contents": [*gemini_loop(CALL)[:2], {"role": "user", "parts": [TWO_ANSWERS[0], TWO_ANSWERS[1]]}]},
         "number of function response parts is equal to the number of function call parts"),
        ({"contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [{"text": "a"}]},
                       {"role": "model", "parts": [CALL]}]}, "function call turn comes immediately after a user turn"),
        ({**gemini(), "messages": []}, 'Unknown name "messages"'),
        ({**gemini(), "generationConfig": {"max_tokens": 5}}, 'Unknown name "max_tokens" at \'generation_config\''),
        ({**gemini(), "tools": [GEMINI_TOOL], "toolConfig": {"functionCallingConfig": {
            "mode": "AUTO", "allowedFunctionNames": ["get_weather"]}}},
         "only be set when the Function calling mode is ANY"),
        ({"contents": [{"role": "user", "parts": [{"text": "q", "functionCall": {"name": "f"}}]}]},
         "oneof field 'data' is already set"),
    ],
)  # fmt: skip
def test_gemini_refuses_what_gemini_refuses(body, words):
    answer = route(GENERATE, body)
    assert words in refused(answer)
    assert whole(answer)["error"]["status"] == "INVALID_ARGUMENT"


def test_gemini_takes_loose_json_schema_and_snake_case():
    loose = {
        "type": "object",
        "additionalProperties": False,
        "$schema": "x",
        "properties": {"a": {"type": ["string", "null"]}},
    }
    body = {"contents": [{"role": "user", "parts": [{"text": "q"}]}],
            "tools": [{"function_declarations": [{"name": "f", "parameters_json_schema": loose}]}],
            "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}}}  # fmt: skip
    made = whole(route(GENERATE, body))
    (part,) = made["candidates"][0]["content"]["parts"]
    assert part["functionCall"]["args"] == {"a": "q"} and "thoughtSignature" not in part


def test_gemini_count_tokens_takes_both_shapes():
    assert whole(route("/v1beta/models/g:countTokens", {"contents": gemini("hello")["contents"]}))["totalTokens"] == 5
    wrapped = {"generateContentRequest": {"model": "models/g", **gemini("hello")}}
    assert whole(route("/v1beta/models/g:countTokens", wrapped))["totalTokens"] == 5
    assert "Unknown name" in refused(route("/v1beta/models/g:countTokens", {"contents": [], "max": 1}))


# ---- tools, choice and parallel calls across dialects -----------------------------------------------


def test_tool_choice_and_parallel_in_every_dialect():
    clock_responses = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
    made = whole(route("/v1/responses", responses("t", tools=[RESPONSES_TOOL, clock_responses],
                                                  tool_choice={"type": "function", "name": "get_time"})))  # fmt: skip
    assert [i["name"] for i in made["output"]] == ["get_time"]
    clock = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
    made = whole(route("/v1/messages", messages("t mock:parallel", tools=[ANTHROPIC_TOOL, clock])))
    assert [b["name"] for b in made["content"]] == ["get_weather", "get_time"]
    assert len({b["id"] for b in made["content"]}) == 2
    made = whole(route("/v1/messages", messages("t", tools=[ANTHROPIC_TOOL], tool_choice={"type": "none"})))
    assert made["content"] == [{"type": "text", "text": "Echo: t", "citations": None}]
    made = whole(route(GENERATE, gemini("t mock:parallel", tools=[GEMINI_TOOL, CLOCK], generationConfig=THINK_GEMINI)))
    parts = made["candidates"][0]["content"]["parts"]
    calls = [p for p in parts if "functionCall" in p]
    assert [p["functionCall"]["name"] for p in calls] == ["get_weather", "get_time"]
    assert "thoughtSignature" in calls[0] and "thoughtSignature" not in calls[1]
    made = whole(
        route(GENERATE, gemini("t", tools=[GEMINI_TOOL], toolConfig={"functionCallingConfig": {"mode": "NONE"}}))
    )
    assert made["candidates"][0]["content"]["parts"] == [{"text": "Echo: t"}]


def test_parallel_calls_only_where_the_request_allows_them():
    two = [CHAT_TOOL, {**CHAT_TOOL, "function": {**CHAT_TOOL["function"], "name": "other"}}]
    made = whole(route("/v1/chat/completions", chat("p mock:parallel", tools=two)))
    assert len(made["choices"][0]["message"]["tool_calls"]) == 2
    made = whole(route("/v1/chat/completions", chat("p mock:parallel", tools=two, parallel_tool_calls=False)))
    assert len(made["choices"][0]["message"]["tool_calls"]) == 1
    two = [RESPONSES_TOOL, {**RESPONSES_TOOL, "name": "other"}]
    made = whole(route("/v1/responses", responses("p mock:parallel", tools=two, parallel_tool_calls=False)))
    assert [i["type"] for i in made["output"]] == ["function_call"]
    two = [ANTHROPIC_TOOL, {**ANTHROPIC_TOOL, "name": "other"}]
    alone = {"type": "auto", "disable_parallel_tool_use": True}
    made = whole(route("/v1/messages", messages("p mock:parallel", tools=two, tool_choice=alone)))
    assert [b["name"] for b in made["content"]] == ["get_weather"]


# ---- directives in every dialect --------------------------------------------------------------------

STREAMS = {
    "chat": ("/v1/chat/completions", lambda t: chat(t, stream=True), ""),
    "responses": ("/v1/responses", lambda t: responses(t, stream=True), ""),
    "anthropic": ("/v1/messages", lambda t: messages(t, stream=True), ""),
    "gemini": (STREAM_SSE[0], lambda t: gemini(t), STREAM_SSE[1]),
}


def text_deltas(dialect: str, events: list[tuple[str | None, Any]]) -> list[str]:
    if dialect == "chat":
        return [
            d["choices"][0]["delta"]["content"]
            for _, d in events
            if d and d["choices"] and d["choices"][0]["delta"].get("content")
        ]
    if dialect == "responses":
        return [d["delta"] for n, d in events if n == "response.output_text.delta"]
    if dialect == "anthropic":
        return [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    return [d["candidates"][0]["content"]["parts"][0]["text"] for _, d in events]


def terminated(dialect: str, events: list[tuple[str | None, Any]]) -> bool:
    if dialect == "chat":
        return events[-1][1] is None  # data: [DONE]
    if dialect == "responses":
        return events[-1][0] == "response.completed"
    if dialect == "anthropic":
        return events[-1][0] == "message_stop"
    return "finishReason" in events[-1][1]["candidates"][0]


@pytest.mark.parametrize("dialect", list(STREAMS))
def test_chunks_and_drop_after_in_every_dialect(dialect):
    path, body, query = STREAMS[dialect]
    events = sse(route(path, body("mock:chunks=5 twelve"), query=query))
    pieces = text_deltas(dialect, events)
    assert len(pieces) == 5 and "".join(pieces) == "Echo: mock:chunks=5 twelve"
    assert terminated(dialect, events)
    answer = route(path, body("mock:drop_after=3"), query=query)
    assert answer.reply is not None and answer.reply.directives.drop_after == 3


@pytest.mark.parametrize("dialect", list(STREAMS))
def test_status_directive_in_every_dialect(dialect):
    path, body, query = STREAMS[dialect]
    answer = route(path, body("mock:status=429"), query=query)
    assert refused(answer, 429) == "mock upstream error 429"
    shape = whole(answer)
    if dialect == "anthropic":
        assert shape["error"]["type"] == "rate_limit_error"
    elif dialect == "gemini":
        assert shape["error"]["status"] == "RESOURCE_EXHAUSTED"
    else:
        assert shape["error"]["code"] == "429"


def test_cached_directive_in_every_dialect():
    text = "cache me please mock:cached=4"
    usage = whole(route("/v1/chat/completions", chat(text)))["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 4
    usage = whole(route("/v1/responses", responses(text)))["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] == 4 and usage["input_tokens"] == 11
    usage = whole(route("/v1/messages", messages(text)))["usage"]
    assert (usage["cache_read_input_tokens"], usage["input_tokens"]) == (4, 11 - 4)
    events = sse(route("/v1/messages", messages(text, stream=True)))
    assert events[0][1]["message"]["usage"]["cache_read_input_tokens"] == 4
    usage = whole(route(GENERATE, gemini(text)))["usageMetadata"]
    assert (usage["cachedContentTokenCount"], usage["promptTokenCount"]) == (4, 11)
    assert (
        whole(route("/v1/chat/completions", chat("x mock:cached=999")))["usage"]["prompt_tokens_details"][
            "cached_tokens"
        ]
        == 8
    )


# ---- the transport: routes, prefixes, pacing and cuts ------------------------------------------------


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient(
        transport=MockTransport(MockOptions(chunks=4)), base_url="http://mock.invalid/chan"
    ) as c:
        yield c


async def read_stream(client: httpx.AsyncClient, path: str, body: dict, **kw: Any) -> tuple[httpx.Response, bytes]:
    async with client.stream("POST", path, json=body, **kw) as response:
        data = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, data


@pytest.mark.parametrize("dialect", list(STREAMS))
async def test_transport_drops_streams_without_their_terminal_event(client, dialect):
    path, body, query = STREAMS[dialect]
    headers = ANTHROPIC if dialect == "anthropic" else {}
    url = f"{path}?{query}" if query else path
    _, whole_stream = await read_stream(client, url, body("complete"), headers=headers)
    assert terminated(dialect, sse(whole_stream))
    _, cut = await read_stream(client, url, body("mock:drop_after=3"), headers=headers)
    events = sse(cut)
    assert len(events) == 3 and not terminated(dialect, events)


@pytest.mark.parametrize("dialect", list(STREAMS))
async def test_transport_stalls_and_paces(client, dialect):
    path, body, query = STREAMS[dialect]
    headers = ANTHROPIC if dialect == "anthropic" else {}
    url = f"{path}?{query}" if query else path
    got: list[bytes] = []
    with trio.move_on_after(0.3) as scope:
        async with client.stream("POST", url, json=body("mock:stall_after=2"), headers=headers) as response:
            async for chunk in response.aiter_raw():
                got.append(chunk)
    assert scope.cancelled_caught and len(got) == 2
    start = time.monotonic()
    response, data = await read_stream(client, url, body("mock:first_byte_ms=150 mock:delay_ms=20 mock:chunks=2"),
                                       headers=headers)  # fmt: skip
    frames = len(sse(data))
    assert response.status_code == 200 and frames >= 2
    assert time.monotonic() - start >= 0.15 + 0.02 * (frames - 1)


async def test_transport_gemini_array_stream_without_alt_sse(client):
    response, data = await read_stream(client, "/v1beta/models/g:streamGenerateContent", gemini("array"))
    assert response.headers["content-type"] == "application/json"
    assert data.startswith(b"[{") and data.endswith(b"}]") and b"\n,\r\n" not in data and b",\r\n{" in data
    chunks = json.loads(data)
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == "Echo: array"


async def test_transport_routes_every_path_under_any_prefix(client):
    assert (await client.post("/v1/chat/completions", json=chat("a"))).json()["object"] == "chat.completion"
    assert (await client.post("/chat/completions", json=chat("a"))).status_code == 200
    assert (await client.post("/v1/responses", json=responses("a"))).json()["object"] == "response"
    r = await client.post("/v1/responses/input_tokens", json=responses("a"))
    assert r.json() == {"object": "response.input_tokens", "input_tokens": 4}
    assert (await client.post("/v1/messages", json=messages("a"), headers=ANTHROPIC)).json()["type"] == "message"
    count = {"model": "c", "messages": [{"role": "user", "content": "a"}]}
    r = await client.post("/v1/messages/count_tokens", json=count, headers=ANTHROPIC)
    assert r.json() == {"input_tokens": 4}
    for version in ("v1beta", "v1"):
        r = await client.post(f"/{version}/models/g:generateContent", json=gemini("a"))
        assert r.json()["candidates"][0]["content"]["parts"] == [{"text": "Echo: a"}]
        assert (await client.post(f"/{version}/models/g:countTokens", json=gemini("a"))).json()["totalTokens"] == 4
    assert (await client.get("/v1/models")).json()["object"] == "list"
    assert (await client.get("/v1/models", headers=ANTHROPIC)).json()["has_more"] is False
    assert "models" in (await client.get("/v1beta/models")).json()
    assert "models" in (await client.get("/v1/models", headers={"x-goog-api-key": "k"})).json()
    assert (await client.get("/v1/models/mock-1")).json()["object"] == "model"
    assert (await client.get("/v1beta/models/gemini-x")).json()["name"] == "models/gemini-x"
    assert (await client.get("/v1/models/claude-x", headers=ANTHROPIC)).json()["type"] == "model"


async def test_transport_errors_take_the_dialect_shape(client):
    r = await client.get("/v1/chat/completions")
    assert r.status_code == 405 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = await client.post("/v1/nothing", json={})
    assert r.status_code == 404 and "no route" in r.json()["error"]["message"]
    r = await client.post("/v1beta/models/g:predictLongRunning", json={})
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
    r = await client.post("/v1/messages", content=b"{", headers=ANTHROPIC)
    assert r.status_code == 400 and r.json()["type"] == "error"
    r = await client.post("/v1beta/models/g:generateContent", content=b"nope")
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    r = await client.post("/v1/responses", content=b"[")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


# ---- keys -------------------------------------------------------------------------------------------

KEYED = Mock(MockOptions(), api_key=KEY)


@pytest.mark.parametrize(
    ("path", "headers", "query", "status"),
    [
        ("/v1/chat/completions", {"authorization": f"Bearer {KEY}"}, "", 200),
        ("/v1/chat/completions", {"x-api-key": KEY}, "", 401),
        ("/v1/responses", {"authorization": "Bearer nope"}, "", 401),
        ("/v1/messages", {**ANTHROPIC, "x-api-key": KEY}, "", 200),
        ("/v1/messages", {**ANTHROPIC, "authorization": f"Bearer {KEY}"}, "", 200),
        ("/v1/messages", {**ANTHROPIC, "x-goog-api-key": KEY}, "", 401),
        ("/v1/messages/count_tokens", {**ANTHROPIC, "x-api-key": "nope"}, "", 401),
        (GENERATE, {"x-goog-api-key": KEY}, "", 200),
        (GENERATE, {}, f"key={KEY}", 200),
        (GENERATE, {"authorization": f"Bearer {KEY}"}, "", 403),
        (GENERATE, {"x-goog-api-key": "nope"}, "", 400),
    ],
)
def test_each_dialect_takes_its_own_key_header(path, headers, query, status):
    body = {"/v1/chat/completions": chat("k"), "/v1/responses": responses("k"), GENERATE: gemini("k")}.get(path)
    body = body or {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "k"}]}
    if path.endswith("count_tokens"):
        del body["max_tokens"]
    answer = route(path, body, headers, query=query, mock=KEYED)
    assert answer.status == status, answer.body
    if status != 200:
        refused(answer, status)
        if "/messages" in path:
            assert whole(answer)["error"]["type"] == "authentication_error"

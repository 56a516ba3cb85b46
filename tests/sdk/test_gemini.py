"""The google-genai SDK through Relay, to each upstream dialect."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pydantic
import pytest
from google import genai
from google.genai import errors, types

from tests.conftest import KEY

from .conftest import FORBIDDEN, MODELS, UNKNOWN

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city.",
    parameters_json_schema={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["city", "unit"],
    },
)
TIME = types.FunctionDeclaration(
    name="get_time",
    description="The local time in a city.",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TOOLS = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
THINKING = types.GenerateContentConfig(
    thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
)
STOP = types.FinishReason.STOP


class City(pydantic.BaseModel):
    name: str
    population: int


def make_client(base_url: str, key: str = KEY) -> genai.Client:
    options = types.HttpOptions(base_url=base_url, api_version="v1beta", timeout=10_000)
    return genai.Client(api_key=key, vertexai=False, http_options=options)


@pytest.fixture(scope="module")
def client(relay_url: str) -> Iterator[genai.Client]:
    with make_client(relay_url) as client:
        yield client


@pytest.fixture(scope="module")
def prefixed(relay_url: str) -> Iterator[genai.Client]:
    """A client whose base URL is Relay's ``/gemini`` prefix."""
    with make_client(f"{relay_url}/gemini") as client:
        yield client


def assert_usage(usage: types.GenerateContentResponseUsageMetadata | None) -> None:
    assert usage is not None
    assert usage.prompt_token_count > 0 and usage.candidates_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count + (
        usage.thoughts_token_count or 0
    )


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def test_generate_content(client, model):
    config = types.GenerateContentConfig(system_instruction="Be brief.")
    response = client.models.generate_content(model=model, contents="hello sdk", config=config)
    assert isinstance(response, types.GenerateContentResponse)
    assert response.text == "Echo: hello sdk"
    (candidate,) = response.candidates
    assert candidate.finish_reason == STOP
    assert candidate.content.role == "model"
    assert [p.text for p in candidate.content.parts] == ["Echo: hello sdk"]
    assert response.model_version == model
    assert response.response_id
    assert response.function_calls is None
    assert_usage(response.usage_metadata)


def test_max_output_tokens(client, model):
    # 16: the least OpenAI Responses accepts (max_output_tokens).
    config = types.GenerateContentConfig(max_output_tokens=16)
    response = client.models.generate_content(model=model, contents="a" * 100, config=config)
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.text == ("Echo: " + "a" * 100)[:64]  # 16 tokens of four characters
    assert response.usage_metadata.candidates_token_count == 16


def test_generate_content_with_tools(client, model):
    response = client.models.generate_content(model=model, contents="Paris", config=TOOLS)
    (candidate,) = response.candidates
    assert candidate.finish_reason == STOP
    (call,) = response.function_calls
    assert call.name == "get_weather"
    assert call.args == {"city": "Paris", "unit": "celsius", "days": 1}
    assert not response.text
    assert_usage(response.usage_metadata)
    # The function's response goes back in a user turn; the model answers with text.
    answer_part = types.Part(
        function_response=types.FunctionResponse(id=call.id, name=call.name, response={"result": "sunny, 21 C"})
    )
    history = [user("Paris"), candidate.content, types.Content(role="user", parts=[answer_part])]
    answer = client.models.generate_content(model=model, contents=history, config=TOOLS)
    assert answer.candidates[0].finish_reason == STOP
    assert answer.text.startswith("Tool said: ") and "sunny, 21 C" in answer.text
    assert answer.usage_metadata.prompt_token_count > response.usage_metadata.prompt_token_count


def test_named_function(client, model):
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER, TIME])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode="ANY", allowed_function_names=["get_time"])
        ),
    )
    response = client.models.generate_content(model=model, contents="Tokyo", config=config)
    (call,) = response.function_calls
    assert (call.name, call.args) == ("get_time", {"city": "Tokyo"})


def test_stream(client, model):
    chunks = list(client.models.generate_content_stream(model=model, contents="stream me"))
    assert len(chunks) > 1
    assert all(isinstance(c, types.GenerateContentResponse) for c in chunks)
    assert "".join(c.text or "" for c in chunks) == "Echo: stream me"
    last = chunks[-1]
    assert last.candidates[0].finish_reason == STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1] if c.candidates)
    assert_usage(last.usage_metadata)
    # The same request unstreamed counts the same tokens.
    whole = client.models.generate_content(model=model, contents="stream me")
    assert whole.usage_metadata.prompt_token_count == last.usage_metadata.prompt_token_count
    assert whole.usage_metadata.candidates_token_count == last.usage_metadata.candidates_token_count


def test_stream_with_tools(client, model):
    chunks = list(client.models.generate_content_stream(model=model, contents="Oslo", config=TOOLS))
    calls = [call for c in chunks for call in c.function_calls or []]
    (call,) = calls
    assert call.name == "get_weather"
    assert call.args == {"city": "Oslo", "unit": "celsius", "days": 1}
    assert chunks[-1].candidates[0].finish_reason == STOP
    assert_usage(chunks[-1].usage_metadata)


def test_thoughts(client, model):
    response = client.models.generate_content(model=model, contents="think", config=THINKING)
    parts = response.candidates[0].content.parts
    thoughts = [p for p in parts if p.thought]
    assert thoughts and all(p.text for p in thoughts)
    assert response.text == "Echo: think"  # the SDK leaves thoughts out of .text
    assert response.candidates[0].finish_reason == STOP
    usage = response.usage_metadata
    assert_usage(usage)
    if model != "claude-1":  # Anthropic reports no reasoning tokens of their own
        assert usage.thoughts_token_count > 0
    # The model's turn goes back as it came (thought signatures included); the next answer follows.
    history = [user("think"), response.candidates[0].content, user("again")]
    second = client.models.generate_content(model=model, contents=history, config=THINKING)
    assert second.text == "Echo: again"


def test_thoughts_streamed(client, model):
    chunks = list(client.models.generate_content_stream(model=model, contents="think", config=THINKING))
    parts = [p for c in chunks if c.candidates and c.candidates[0].content for p in c.candidates[0].content.parts or []]
    thought_text = "".join(p.text or "" for p in parts if p.thought)
    answer = "".join(p.text or "" for p in parts if not p.thought)
    assert thought_text and answer == "Echo: think"
    first_answer = next(i for i, p in enumerate(parts) if not p.thought and p.text)
    assert all(p.thought for p in parts[:first_answer] if p.text)  # thoughts come first
    assert chunks[-1].candidates[0].finish_reason == STOP


def test_json_schema(client, model):
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=City.model_json_schema()
    )
    response = client.models.generate_content(model=model, contents="Lyon", config=config)
    assert response.candidates[0].finish_reason == STOP
    assert response.parsed == json.loads(response.text)  # a JSON schema: the SDK parses into a dict
    city = City.model_validate(response.parsed)
    assert city.population == 1
    assert "Lyon" in city.name


def test_response_schema_from_pydantic(client, model):
    """``response_schema`` (Gemini's OpenAPI subset, ``type: OBJECT``…) from a pydantic model: ``.parsed`` is one."""
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=City)
    response = client.models.generate_content(model=model, contents="Nice", config=config)
    assert isinstance(response.parsed, City)
    assert response.parsed.population == 1
    assert "Nice" in response.parsed.name


def test_count_tokens(client, model):
    short = client.models.count_tokens(model=model, contents="hi")
    assert isinstance(short, types.CountTokensResponse)
    assert short.total_tokens > 0
    long = client.models.count_tokens(model=model, contents=["hi " * 200, "and more"])
    assert long.total_tokens > short.total_tokens


def test_models_list(client, model):
    pager = client.models.list(config={"page_size": 2})
    assert [m.name for m in pager.page] == [f"models/{m}" for m in MODELS[:2]]
    names = [m.name for m in pager]  # the pager fetches the next page itself
    assert names == [f"models/{m}" for m in MODELS]
    info = client.models.get(model=model)
    assert info.name == f"models/{model}"
    assert "generateContent" in info.supported_actions


def test_gemini_prefix(prefixed, model):
    response = prefixed.models.generate_content(model=model, contents="prefixed")
    assert response.text == "Echo: prefixed"
    assert response.candidates[0].finish_reason == STOP
    chunks = list(prefixed.models.generate_content_stream(model=model, contents="prefixed"))
    assert "".join(c.text or "" for c in chunks) == "Echo: prefixed"
    assert prefixed.models.count_tokens(model=model, contents="prefixed").total_tokens > 0
    assert [m.name for m in prefixed.models.list()] == [f"models/{m}" for m in MODELS]


def test_errors(client, relay_url, model):
    with pytest.raises(errors.ClientError) as limited:
        client.models.generate_content(model=model, contents="mock:status=429")
    assert (limited.value.code, limited.value.status) == (429, "RESOURCE_EXHAUSTED")
    with pytest.raises(errors.ServerError) as unavailable:
        list(client.models.generate_content_stream(model=model, contents="mock:status=503"))
    assert (unavailable.value.code, unavailable.value.status) == (503, "UNAVAILABLE")
    with pytest.raises(errors.ClientError) as missing:
        client.models.generate_content(model=UNKNOWN, contents="x")
    assert (missing.value.code, missing.value.status) == (404, "NOT_FOUND")
    assert UNKNOWN in missing.value.message
    with pytest.raises(errors.ClientError) as forbidden:
        client.models.generate_content(model=FORBIDDEN, contents="x")
    assert (forbidden.value.code, forbidden.value.status) == (403, "PERMISSION_DENIED")
    with make_client(relay_url, key="sk-not-a-relay-key") as bad:
        with pytest.raises(errors.ClientError) as denied:
            bad.models.generate_content(model=model, contents="x")
        with pytest.raises(errors.ClientError):
            list(bad.models.list())
    # Gemini itself answers a bad key with 400 API_KEY_INVALID; Relay says 401, which the SDK also raises as ClientError
    assert (denied.value.code, denied.value.status) == (401, "UNAUTHENTICATED")
    assert denied.value.message


def test_thoughts_with_a_function_loop(client, model):
    """Thinking on through a call and its response: the call's ``thought_signature`` goes back with it."""
    config = types.GenerateContentConfig(tools=TOOLS.tools, thinking_config=THINKING.thinking_config)
    response = client.models.generate_content(model=model, contents="Oslo", config=config)
    content = response.candidates[0].content
    (call,) = response.function_calls
    if model == "gemini-1":
        (signed,) = [p for p in content.parts if p.function_call]
        assert signed.thought_signature  # the provider's proof, passed through
    answer_part = types.Part(
        function_response=types.FunctionResponse(id=call.id, name=call.name, response={"result": "sunny, 21 C"})
    )
    history = [user("Oslo"), content, types.Content(role="user", parts=[answer_part])]
    answer = client.models.generate_content(model=model, contents=history, config=config)
    assert answer.text.startswith("Tool said: ") and "sunny, 21 C" in answer.text

"""Legacy Completions (``/v1/completions``) through ``relay serve`` to ``relay mock-upstream``, with the openai SDK.

One pair of subprocesses for the module: Relay has an OpenAI channel (passed through, and ``comp-alias`` renamed
to the upstream's ``gpt-3.5-turbo-instruct``), an OpenAI channel on the Responses API, an Anthropic channel and a
Gemini channel (converted through Chat), all on the same mock; a priced key, and the request log in SQLite.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from relay.mock.router import Mock
from tests.conftest import KEY, process
from tests.helpers import MOCK_ARGS

PASSTHROUGH = "comp-chat"
ALIAS = "comp-alias"
CONVERTED = ("comp-resp", "comp-claude", "comp-gemini")
MODELS = (PASSTHROUGH, *CONVERTED)
#: Micro-credits per token.
INPUT_PRICE, OUTPUT_PRICE = 1000, 2000


def relay_toml(upstream: str, db: Path) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "sqlite:///{db}"
log_interval = 0.05

[routing]
key_rest = 0.001
breaker_failures = 1000

[[prices]]
model = "comp-*"
input = {INPUT_PRICE}
output = {OUTPUT_PRICE}

[[channels]]
name = "chat"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream"
models = ["{PASSTHROUGH}"]
model_map = {{ "{ALIAS}" = "gpt-3.5-turbo-instruct" }}

[[channels]]
name = "resp"
type = "openai"
api = "responses"
base_url = "{upstream}/v1"
api_key = "sk-upstream"
models = ["comp-resp"]

[[channels]]
name = "claude"
type = "anthropic"
base_url = "{upstream}"
api_key = "sk-upstream"
models = ["comp-claude"]

[[channels]]
name = "gemini"
type = "gemini"
base_url = "{upstream}"
api_key = "sk-upstream"
models = ["comp-gemini"]

[[keys]]
name = "completions"
key = "{KEY}"
quota = 1000
models = ["comp-*"]
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(``http://host:port`` of Relay, its SQLite store)."""
    folder = tmp_path_factory.mktemp("completions")
    db = folder / "relay.db"
    with process(*MOCK_ARGS) as (_, upstream):
        path = folder / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", db))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}", db


@pytest.fixture
def client(served: tuple[str, Path]) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served[0]}/v1", api_key=KEY, max_retries=0)


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=CONVERTED)
def converted(request: pytest.FixtureRequest) -> str:
    return request.param


def post(served: tuple[str, Path], body: dict[str, Any], *, key: str = KEY, path: str = "/v1/completions") -> Any:
    return httpx.post(f"{served[0]}{path}", json=body, headers={"authorization": f"Bearer {key}"}, timeout=10)


def texts(chunks: list[Any]) -> dict[int, str]:
    """Each choice's text, its chunks' texts joined."""
    out: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            out[choice.index] = out.get(choice.index, "") + choice.text
    return out


def finishes(chunks: list[Any]) -> dict[int, str]:
    return {c.index: c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason}


# ---- whole answers ----------------------------------------------------------------------------------------------


def test_a_string_prompt(client: openai.OpenAI, model: str) -> None:
    reply = client.completions.create(model=model, prompt="Say hi", max_tokens=50)
    assert reply.object == "text_completion"
    assert reply.model == model
    [choice] = reply.choices
    assert (choice.index, choice.text, choice.finish_reason, choice.logprobs) == (0, "Echo: Say hi", "stop", None)
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 3  # "Echo: Say hi": 12 characters, a token each four
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_several_prompts_and_n_in_openais_order(client: openai.OpenAI, model: str) -> None:
    reply = client.completions.create(model=model, prompt=["first", "second"], n=2, max_tokens=50)
    got = sorted((c.index, c.text) for c in reply.choices)
    assert got == [(0, "Echo: first"), (1, "Echo: first"), (2, "Echo: second"), (3, "Echo: second")]
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 4 * 3  # four choices of 11 or 12 characters


def test_echo_puts_the_prompt_first(client: openai.OpenAI, model: str) -> None:
    reply = client.completions.create(model=model, prompt="Hello", echo=True, max_tokens=50)
    assert reply.choices[0].text == "HelloEcho: Hello"


def test_max_tokens_defaults_to_16_and_stop_cuts(client: openai.OpenAI, model: str) -> None:
    long = "x" * 100
    reply = client.completions.create(model=model, prompt=long)
    assert (reply.choices[0].text, reply.choices[0].finish_reason) == (("Echo: " + long)[:64], "length")
    if model == "comp-resp":  # the Responses API has no stop sequences: Chat's conversion refuses them
        with pytest.raises(openai.BadRequestError) as caught:
            client.completions.create(model=model, prompt="one two three", stop=["two"], max_tokens=50)
        assert caught.value.param == "stop"
        return
    reply = client.completions.create(model=model, prompt="one two three", stop=["two"], max_tokens=50)
    assert (reply.choices[0].text, reply.choices[0].finish_reason) == ("Echo: one ", "stop")


def test_passthrough_renames_the_model_and_keeps_openai_only_fields(client: openai.OpenAI) -> None:
    reply = client.completions.create(model=ALIAS, prompt="Hi", max_tokens=50, suffix=" end", logprobs=1)
    assert reply.model == ALIAS  # the upstream answered for gpt-3.5-turbo-instruct
    choice = reply.choices[0]
    assert choice.text == "Echo: Hi[insert] end"  # the mock read the suffix
    assert choice.logprobs is not None and choice.logprobs.tokens == ["Echo", ": Hi", "[ins", "ert]", " end"]
    tokens = client.completions.create(model=PASSTHROUGH, prompt=[[1, 2, 3], [4]], max_tokens=50)
    assert sorted(c.text for c in tokens.choices) == ["Echo: 1 2 3", "Echo: 4"]


# ---- streams ----------------------------------------------------------------------------------------------------


def test_a_stream_without_usage(client: openai.OpenAI, model: str) -> None:
    chunks = list(client.completions.create(model=model, prompt="Stream me", max_tokens=50, stream=True))
    assert len(chunks) >= 2
    assert all(c.object == "text_completion" and c.model == model and c.usage is None for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert texts(chunks) == {0: "Echo: Stream me"}
    assert finishes(chunks) == {0: "stop"}


def test_a_stream_with_usage_echo_and_several_choices(client: openai.OpenAI, model: str) -> None:
    chunks = list(
        client.completions.create(
            model=model,
            prompt=["ab", "cd"],
            n=2,
            echo=True,
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert texts(chunks) == {0: "abEcho: ab", 1: "abEcho: ab", 2: "cdEcho: cd", 3: "cdEcho: cd"}
    assert finishes(chunks) == dict.fromkeys(range(4), "stop")
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == 4 * 2  # "Echo: ab": two tokens, four choices
    assert all(c.usage is None for c in chunks[:-1])


def test_the_raw_stream_keeps_done_and_hides_the_usage_chunk(served: tuple[str, Path], model: str) -> None:
    body = {"model": model, "prompt": "Raw", "max_tokens": 50, "stream": True}
    response = post(served, body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    frames = [f for f in response.text.split("\n\n") if f]
    assert frames[-1] == "data: [DONE]"
    assert all(f.startswith("data: ") for f in frames)
    assert '"usage":{' not in response.text.replace(" ", "")  # Relay asked for it, the client did not
    asked = post(served, {**body, "stream_options": {"include_usage": True}})
    assert [f for f in asked.text.split("\n\n") if f][-1] == "data: [DONE]"
    assert '"usage":{' in asked.text.replace(" ", "")


def test_a_stream_through_an_alias_is_renamed(client: openai.OpenAI) -> None:
    chunks = list(client.completions.create(model=ALIAS, prompt="Hi", max_tokens=50, stream=True))
    assert {c.model for c in chunks} == {ALIAS}
    assert texts(chunks) == {0: "Echo: Hi"}


def test_a_converted_stream_cut_short_ends_with_an_error(client: openai.OpenAI, converted: str) -> None:
    stream = client.completions.create(
        model=converted,
        prompt="mock:chunks=20 mock:drop_after=10 Hello there, a longer answer",
        max_tokens=50,
        stream=True,
    )
    got = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            got.append(chunk)
    assert got  # the stream had started
    assert "ended early" in str(caught.value.message) or "upstream" in str(caught.value.message)


def test_a_later_call_failing_ends_a_converted_stream_with_an_error(
    client: openai.OpenAI, served: tuple[str, Path], converted: str
) -> None:
    """The second prompt's upstream call answers 500 once the first choice was streamed: an error event ends the
    stream (no [DONE]); the request is charged the first call's usage."""
    raw = client.completions.with_raw_response.create(
        model=converted, prompt=["fine", "mock:status=500 boom"], max_tokens=50, stream=True
    )
    got = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in raw.parse():
            got.append(chunk)
    assert texts(got) == {0: "Echo: fine"}
    assert "upstream" in caught.value.message
    inputs, outputs, _, _ = logged(served[1], raw.headers["x-request-id"])
    assert outputs == 3 and inputs > 0  # "Echo: fine"


def test_a_later_call_failing_fails_a_whole_converted_answer(served: tuple[str, Path], converted: str) -> None:
    response = post(served, {"model": converted, "prompt": ["fine", "mock:status=500 boom"], "max_tokens": 50})
    error = openai_error(response, 502, None)
    assert error["code"] == "upstream_error"


# ---- refusals -----------------------------------------------------------------------------------------------------


def openai_error(response: httpx.Response, status: int, param: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"prompt": 12}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": ["a", 1]}, "prompt[1]"),
        ({"prompt": "a", "max_tokens": "10"}, "max_tokens"),
        ({"prompt": "a", "n": 0}, "n"),
        ({"prompt": "a", "echo": "yes"}, "echo"),
        ({"prompt": "a", "stream": "yes"}, "stream"),
        ({"prompt": "a", "stop": ["1", "2", "3", "4", "5"]}, "stop"),
        ({"prompt": "a", "temperature": 3}, "temperature"),
        ({"prompt": "a", "logprobs": 6}, "logprobs"),
        ({"prompt": "a", "stream_options": {"include_usage": True}}, "stream_options"),
        ({"prompt": "a", "n": 3, "best_of": 2}, "best_of"),
    ],
)
def test_bad_input_is_a_400_in_openais_shape(served: tuple[str, Path], model: str, body: dict, param: str) -> None:
    openai_error(post(served, {"model": model, **body}), 400, param)


def test_no_model_is_a_400(served: tuple[str, Path]) -> None:
    openai_error(post(served, {"prompt": "a"}), 400, "model")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"suffix": " end"}, "suffix"),
        ({"logprobs": 2}, "logprobs"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"best_of": 3}, "best_of"),
        ({"seed": 7}, "seed"),
        ({"prompt": ["p"] * 9, "n": 2}, "n"),
    ],
)
def test_what_a_converted_channel_cannot_do_is_a_400(
    served: tuple[str, Path], converted: str, extra: dict, param: str
) -> None:
    error = openai_error(post(served, {"model": converted, "prompt": "a", **extra}), 400, param)
    assert param.split("[")[0] in error["message"] or "prompt" in error["message"]


def test_the_sdk_raises_bad_request_for_suffix_on_a_converted_channel(client: openai.OpenAI, converted: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=converted, prompt="a", suffix="b")
    assert caught.value.param == "suffix"
    assert "suffix" in caught.value.message


def test_an_unknown_key_is_a_401_before_the_body_is_judged(served: tuple[str, Path]) -> None:
    response = post(served, {"model": PASSTHROUGH, "prompt": 12}, key="sk-nobody")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_the_upstreams_own_refusal_is_relayed(served: tuple[str, Path]) -> None:
    """A field Relay does not read goes to the OpenAI channel, which judges it (here: the mock, as OpenAI)."""
    error = openai_error(post(served, {"model": PASSTHROUGH, "prompt": "a", "bogus": 1}), 400, "bogus")
    assert "bogus" in error["message"]


def test_the_route_without_v1(served: tuple[str, Path]) -> None:
    response = post(served, {"model": "comp-claude", "prompt": "Hi", "max_tokens": 50}, path="/completions")
    assert response.status_code == 200
    assert response.json()["choices"][0]["text"] == "Echo: Hi"


# ---- the request log ----------------------------------------------------------------------------------------------


def logged(db: Path, request_id: str) -> tuple[int, int, int, str]:
    """(input tokens, output tokens, cost in micro-credits, channel) of a request, once it is written."""
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT input_tokens, output_tokens, cost_micros, channel FROM request_log WHERE request_id = ?",
                (request_id,),
            ).fetchall()
        if rows:
            return rows[0]
        assert time.monotonic() < deadline, f"{request_id} never logged"
        time.sleep(0.05)


def test_the_request_log_has_the_usage_and_cost(client: openai.OpenAI, served: tuple[str, Path], model: str) -> None:
    raw = client.completions.with_raw_response.create(model=model, prompt=["one", "two"], max_tokens=50)
    reply = raw.parse()
    assert reply.usage is not None
    inputs, outputs, cost, _ = logged(served[1], raw.headers["x-request-id"])
    assert (inputs, outputs) == (reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert cost == inputs * INPUT_PRICE + outputs * OUTPUT_PRICE


def test_a_stream_is_charged_the_usage_it_did_not_show(
    client: openai.OpenAI, served: tuple[str, Path], model: str
) -> None:
    raw = client.completions.with_raw_response.create(model=model, prompt="Charge me", max_tokens=50, stream=True)
    chunks = list(raw.parse())
    assert all(c.usage is None for c in chunks)
    inputs, outputs, cost, _ = logged(served[1], raw.headers["x-request-id"])
    assert outputs == 4  # "Echo: Charge me": 15 characters
    assert inputs > 0
    assert cost == inputs * INPUT_PRICE + outputs * OUTPUT_PRICE


# ---- the mock, as OpenAI ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "prompt"),
        ({"prompt": "a"}, "model"),
        ({"model": "m", "prompt": "a", "bogus": 1}, "bogus"),
        ({"model": "m", "prompt": "a", "n": 2, "best_of": 1}, "best_of"),
        ({"model": "m", "prompt": "a", "best_of": 2, "stream": True}, "best_of"),
        ({"model": "m", "prompt": "a", "stream_options": {"include_usage": True}}, "stream_options"),
        ({"model": "m", "prompt": [[1], "a"]}, "prompt"),
        ({"model": "m", "prompt": "a", "logprobs": True}, "logprobs"),
    ],
)
def test_the_mock_refuses_as_openai(body: dict, param: str) -> None:
    import orjson

    answer = Mock().route("POST", "/v1/completions", "", [], orjson.dumps(body))
    assert answer.status == 400
    assert isinstance(answer.body, bytes)
    assert orjson.loads(answer.body)["error"]["param"] == param


def test_the_mock_is_deterministic_and_leaves_chat_alone() -> None:
    import orjson

    body = orjson.dumps({"model": "m", "prompt": ["a", "b"], "n": 2, "stream": True})
    first, second = (Mock().route("POST", "/v1/completions", "", [], body) for _ in range(2))
    assert first.body == second.body and first.status == 200
    chat = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    answer = Mock().route("POST", "/v1/chat/completions", "", [], chat)
    assert isinstance(answer.body, bytes) and orjson.loads(answer.body)["object"] == "chat.completion"

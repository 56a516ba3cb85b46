"""Stateful Responses on every channel, through the openai SDK: ``previous_response_id``, ``store``, retrieve,
delete and input items, against ``relay serve`` in front of ``relay mock-upstream`` (both subprocesses).

Four channels, one per upstream API (``resp-1``: OpenAI Responses, which keeps its own state; ``chat-1``,
``claude-1``, ``gemini-1``: converted, Relay keeps the state), and two keys. The mock counts every text of the
conversation it is sent in ``usage.input_tokens``, so a follow-up proves what the upstream saw: its count equals
that of the same conversation sent whole, without ``previous_response_id``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response

from tests.conftest import KEY, process
from tests.helpers import MOCK_ARGS

OTHER_KEY = "sk-relay-other-key"
MODELS = ("resp-1", "chat-1", "claude-1", "gemini-1")
CONVERTED = ("chat-1", "claude-1", "gemini-1")
CHANNELS = (
    # (name, type, base_url suffix, extra keys, model prefix)
    ("chat", "openai", "/v1", 'api = "chat"\n', "chat"),
    ("resp", "openai", "/v1", 'api = "responses"\n', "resp"),
    ("claude", "anthropic", "", "", "claude"),
    ("gemini", "gemini", "", "", "gemini"),
)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def relay_toml(upstream: str) -> str:
    channels = "".join(
        f"""
[[channels]]
name = "{name}"
type = "{kind}"
base_url = "{upstream}{suffix}"
api_key = "sk-upstream-{name}"
{extra}models = ["{prefix}-1"]
"""
        for name, kind, suffix, extra, prefix in CHANNELS
    )
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false
{channels}
[[keys]]
name = "owner"
key = "{KEY}"

[[keys]]
name = "other"
key = "{OTHER_KEY}"
"""


@pytest.fixture(scope="module")
def relay_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with process(*MOCK_ARGS) as (_, upstream):
        path = tmp_path_factory.mktemp("responses_state") / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}"))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}"


@pytest.fixture(scope="module")
def client(relay_url: str) -> OpenAI:
    return OpenAI(base_url=f"{relay_url}/v1", api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def other(relay_url: str) -> OpenAI:
    return OpenAI(base_url=f"{relay_url}/v1", api_key=OTHER_KEY, max_retries=0)


def create(client: OpenAI, stream: bool, **params: Any) -> Response:
    """``responses.create``, whole or streamed (then the response of the stream's ``response.completed``)."""
    if not stream:
        return client.responses.create(**params)
    final = None
    with client.responses.create(stream=True, **params) as events:
        for event in events:
            if event.type == "response.completed":
                final = event.response
    assert final is not None, "the stream had no response.completed"
    return final


def replayed(items: list[Any], response: Response) -> list[Any]:
    """``items`` then ``response``'s output items, as a stateless client sends them back."""
    return [*items, *(item.model_dump(exclude_none=True) for item in response.output)]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("model", MODELS)
def test_previous_response_id_continues_on_every_channel(client: OpenAI, model: str, stream: bool) -> None:
    first_input = [{"role": "user", "content": f"My name is Ada ({model}, {stream}). Remember it."}]
    first = create(client, stream, model=model, input=first_input, instructions="Answer in one line.")
    second = create(client, stream, model=model, previous_response_id=first.id, input="What is my name?")
    assert second.previous_response_id == first.id
    assert second.output_text == "Echo: What is my name?"
    # The upstream saw the whole conversation: as many input tokens as the same conversation sent whole
    # (instructions are not carried over, as OpenAI)
    whole = [*replayed(first_input, first), {"role": "user", "content": "What is my name?"}]
    stateless = client.responses.create(model=model, input=whole, store=False)
    alone = client.responses.create(model=model, input="What is my name?", store=False)
    assert second.usage is not None and stateless.usage is not None and alone.usage is not None
    assert second.usage.input_tokens == stateless.usage.input_tokens > alone.usage.input_tokens
    # a third turn continues the second: the chain grows
    third = create(client, stream, model=model, previous_response_id=second.id, input="And again?")
    third_whole = [*replayed(whole, second), {"role": "user", "content": "And again?"}]
    third_stateless = client.responses.create(model=model, input=third_whole, store=False)
    assert third.usage is not None and third_stateless.usage is not None
    assert third.usage.input_tokens == third_stateless.usage.input_tokens
    # and each is retrievable as it was answered
    got = client.responses.retrieve(third.id)
    assert (got.id, got.output_text, got.previous_response_id) == (third.id, third.output_text, second.id)


@pytest.mark.parametrize("model", MODELS)
def test_a_tool_result_continues_the_call_of_the_previous_response(client: OpenAI, model: str) -> None:
    call = client.responses.create(model=model, input=f"Weather in Paris? ({model})", tools=[WEATHER])
    [item] = [item for item in call.output if item.type == "function_call"]
    result = {"type": "function_call_output", "call_id": item.call_id, "output": "sunny, 21 C"}
    done = client.responses.create(model=model, previous_response_id=call.id, input=[result], tools=[WEATHER])
    assert done.output_text == "Tool said: sunny, 21 C"


@pytest.mark.parametrize("model", MODELS)
def test_retrieve_input_items_and_delete(client: OpenAI, model: str) -> None:
    first = client.responses.create(model=model, input=f"one ({model})")
    second = client.responses.create(
        model=model, previous_response_id=first.id, input=[{"role": "user", "content": "two"}]
    )
    got = client.responses.retrieve(second.id)
    assert got.model_dump() == second.model_dump()
    items = list(client.responses.input_items.list(second.id, order="asc"))
    assert [item.type for item in items] == ["message", "message", "message"]
    assert [item.role for item in items] == ["user", "assistant", "user"]  # type: ignore[union-attr]
    assert items[0].content[0].text == f"one ({model})"  # type: ignore[union-attr]
    assert items[1].content[0].text == f"Echo: one ({model})"  # type: ignore[union-attr]
    # newest first by default; pages of one, each naming the next by its last id
    page = client.responses.input_items.list(second.id, limit=1)
    assert page.has_more is True and page.data[0].id == items[-1].id
    assert [item.id for item in client.responses.input_items.list(second.id, limit=1)] == [
        item.id for item in reversed(items)
    ]
    assert client.responses.delete(second.id) is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(second.id)
    assert client.responses.retrieve(first.id).id == first.id  # its predecessor stays


@pytest.mark.parametrize("model", MODELS)
def test_another_keys_response_is_not_found(client: OpenAI, other: OpenAI, model: str) -> None:
    mine = client.responses.create(model=model, input=f"private ({model})")
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.input_items.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError) as refused:
        other.responses.create(model=model, previous_response_id=mine.id, input="steal")
    assert refused.value.code == "previous_response_not_found"
    assert client.responses.retrieve(mine.id).id == mine.id  # still there for its owner


@pytest.mark.parametrize("model", MODELS)
def test_store_false_keeps_nothing(client: OpenAI, model: str) -> None:
    unkept = client.responses.create(model=model, input=f"forget me ({model})", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unkept.id)
    with pytest.raises((openai.NotFoundError, openai.BadRequestError)) as refused:
        client.responses.create(model=model, previous_response_id=unkept.id, input="again")
    assert refused.value.code == "previous_response_not_found"


@pytest.mark.parametrize("model", CONVERTED)
def test_unknown_previous_response_on_a_converted_channel(client: OpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        client.responses.create(model=model, previous_response_id="resp_never_made", input="hi")
    assert refused.value.code == "previous_response_not_found"
    assert refused.value.param == "previous_response_id"  # type: ignore[attr-defined]


def test_retrieve_as_a_stream_replays_it(client: OpenAI) -> None:
    """(Replay in detail: tests/sdk/test_responses_background.py.) A bad ``starting_after`` is a 400."""
    kept = client.responses.create(model="claude-1", input="stream me back")
    with client.responses.retrieve(kept.id, stream=True) as events:
        assert list(events)[-1].response.output_text == kept.output_text  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.retrieve(kept.id, stream=True, starting_after=-3)
    assert refused.value.param == "starting_after"  # type: ignore[attr-defined]


def test_a_chain_crosses_channels(client: OpenAI) -> None:
    """Relay's kept chain goes whole to an OpenAI Responses upstream, which then keeps the rest."""
    first = client.responses.create(model="claude-1", input="Kept by Relay: banana.")
    second = client.responses.create(model="resp-1", previous_response_id=first.id, input="Kept upstream.")
    third = client.responses.create(model="resp-1", previous_response_id=second.id, input="Still there?")
    assert second.previous_response_id == first.id
    assert second.usage is not None and third.usage is not None
    assert third.usage.input_tokens > second.usage.input_tokens
    # the upstream keeps the second and third: Relay asks it, on the channel that has them
    items = list(client.responses.input_items.list(second.id, order="asc"))
    assert [getattr(item, "role", None) for item in items] == ["user", "assistant", "user"]


def test_routes_without_v1_and_the_static_input_tokens(client: OpenAI, relay_url: str) -> None:
    made = client.responses.create(model="gemini-1", input="no prefix")
    auth = {"authorization": f"Bearer {KEY}"}
    got = httpx.get(f"{relay_url}/responses/{made.id}", headers=auth)
    assert got.status_code == 200 and got.json()["id"] == made.id
    listed = httpx.get(f"{relay_url}/responses/{made.id}/input_items", params={"order": "sideways"}, headers=auth)
    assert listed.status_code == 400 and listed.json()["error"]["param"] == "order"
    assert httpx.get(f"{relay_url}/v1/responses/{made.id}").status_code == 401  # keyed
    assert httpx.get(f"{relay_url}/v1/responses/input_tokens", headers=auth).status_code == 405

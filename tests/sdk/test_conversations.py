"""The Conversations API through the openai SDK, and ``conversation`` on ``responses.create``, on every channel,
against ``relay serve`` in front of ``relay mock-upstream`` (both subprocesses).

Four channels, one per upstream API (``resp-1``: OpenAI Responses, passed through; ``chat-1``, ``claude-1``,
``gemini-1``: converted); Relay keeps every conversation. The mock counts every text it is sent in
``usage.input_tokens``, so a turn in a conversation proves what the upstream saw: its count equals that of the
same conversation sent whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import KEY, process
from tests.helpers import MOCK_ARGS
from tests.sdk.test_responses_state import MODELS, OTHER_KEY, create, relay_toml


@pytest.fixture(scope="module")
def relay_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with process(*MOCK_ARGS) as (_, upstream):
        path = tmp_path_factory.mktemp("conversations") / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}"))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}"


@pytest.fixture(scope="module")
def client(relay_url: str) -> OpenAI:
    return OpenAI(base_url=f"{relay_url}/v1", api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def other(relay_url: str) -> OpenAI:
    return OpenAI(base_url=f"{relay_url}/v1", api_key=OTHER_KEY, max_retries=0)


def texts(client: OpenAI, conversation_id: str) -> list[tuple[str, str]]:
    """Every message of the conversation, oldest first: (role, text)."""
    return [
        (item.role, "".join(part.text for part in item.content))  # type: ignore[union-attr]
        for item in client.conversations.items.list(conversation_id, order="asc", limit=100)
        if item.type == "message"
    ]


def test_create_retrieve_update_and_delete(client: OpenAI) -> None:
    made = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "Hello"}], metadata={"topic": "demo"}
    )
    assert made.id.startswith("conv_") and made.object == "conversation" and made.metadata == {"topic": "demo"}
    assert abs(made.created_at - time.time()) < 60
    assert client.conversations.retrieve(made.id) == made
    updated = client.conversations.update(made.id, metadata={"topic": "changed", "n": "2"})
    assert updated.metadata == {"topic": "changed", "n": "2"}
    assert client.conversations.retrieve(made.id).metadata == {"topic": "changed", "n": "2"}
    deleted = client.conversations.delete(made.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (made.id, True, "conversation.deleted")
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(made.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.delete(made.id)


def test_items_are_added_listed_paged_retrieved_and_deleted(client: OpenAI) -> None:
    made = client.conversations.create(items=[{"role": "user", "content": "one"}])
    added = client.conversations.items.create(
        made.id,
        items=[
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "two"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "three"}]},
        ],
    )
    assert added.object == "list" and [item.type for item in added.data] == ["message", "message"]
    assert texts(client, made.id) == [("user", "one"), ("assistant", "two"), ("user", "three")]
    every = list(client.conversations.items.list(made.id, order="asc"))
    assert len({item.id for item in every}) == 3
    # newest first by default; pages of one, the SDK following ``after`` to the end
    first_page = client.conversations.items.list(made.id, limit=1)
    assert first_page.has_more is True and first_page.data[0].id == every[-1].id
    assert [item.id for item in client.conversations.items.list(made.id, limit=1)] == [i.id for i in reversed(every)]
    got = client.conversations.items.retrieve(every[1].id, conversation_id=made.id)
    assert got.id == every[1].id and got.role == "assistant"  # type: ignore[union-attr]
    after = client.conversations.items.delete(every[1].id, conversation_id=made.id)
    assert after.id == made.id and after.object == "conversation"
    assert texts(client, made.id) == [("user", "one"), ("user", "three")]
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(every[1].id, conversation_id=made.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.delete(every[1].id, conversation_id=made.id)


def test_bad_requests_are_400s_naming_the_parameter(client: OpenAI) -> None:
    made = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as refused:
        client.conversations.items.create(made.id, items=[])
    assert refused.value.param == "items"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as refused:
        client.conversations.items.create(made.id, items=[{"role": "user", "content": "x"}] * 21)
    assert refused.value.param == "items"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as refused:
        client.conversations.create(items=[{"role": "robot", "content": "x"}])
    assert refused.value.param == "items[0]"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as refused:
        client.conversations.update(made.id, metadata={"k": "v" * 513})
    assert refused.value.param == "metadata"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as refused:
        client.conversations.items.list(made.id, limit=0)
    assert refused.value.param == "limit"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as refused:
        client.conversations.items.list(made.id, after="msg_nowhere")
    assert refused.value.param == "after"  # type: ignore[attr-defined]


def test_routes_without_v1(relay_url: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=relay_url, headers=headers) as http:
        made = http.post("/conversations", json={"metadata": {"a": "b"}}).json()
        assert http.get(f"/conversations/{made['id']}").json() == made
        added = http.post(f"/conversations/{made['id']}/items", json={"items": [{"role": "user", "content": "x"}]})
        item = added.json()["data"][0]
        assert item["content"] == [{"type": "input_text", "text": "x"}] and item["status"] == "completed"
        assert http.get(f"/conversations/{made['id']}/items/{item['id']}").json() == item
        assert http.get(f"/conversations/{made['id']}/items").json()["data"] == [item]
        assert http.delete(f"/conversations/{made['id']}/items/{item['id']}").status_code == 200
        assert http.delete(f"/conversations/{made['id']}").json()["deleted"] is True


def test_another_keys_conversation_is_not_found(client: OpenAI, other: OpenAI) -> None:
    mine = client.conversations.create(items=[{"role": "user", "content": "private"}])
    with pytest.raises(openai.NotFoundError):
        other.conversations.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.conversations.update(mine.id, metadata={"stolen": "yes"})
    with pytest.raises(openai.NotFoundError):
        other.conversations.items.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.conversations.items.create(mine.id, items=[{"role": "user", "content": "injected"}])
    item_id = client.conversations.items.list(mine.id).data[0].id
    with pytest.raises(openai.NotFoundError):
        other.conversations.items.retrieve(item_id, conversation_id=mine.id)
    with pytest.raises(openai.NotFoundError):
        other.conversations.items.delete(item_id, conversation_id=mine.id)
    with pytest.raises(openai.NotFoundError):
        other.conversations.delete(mine.id)
    for model in MODELS:
        with pytest.raises(openai.NotFoundError) as refused:
            other.responses.create(model=model, conversation=mine.id, input="steal")
        assert refused.value.param == "conversation"  # type: ignore[attr-defined]
    assert texts(client, mine.id) == [("user", "private")]  # untouched


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("model", MODELS)
def test_responses_continue_a_conversation_on_every_channel(client: OpenAI, model: str, stream: bool) -> None:
    opening = f"My name is Ada ({model}, {stream}). Remember it."
    conversation = client.conversations.create(items=[{"role": "user", "content": opening}])
    first = create(client, stream, model=model, conversation=conversation.id, input="What is my name?")
    assert first.output_text.startswith("Echo: ") and first.output_text.endswith("What is my name?")
    assert first.conversation is not None and first.conversation.id == conversation.id
    # the upstream saw the whole conversation: as many input tokens as the same conversation sent whole
    whole = [{"role": "user", "content": opening}, {"role": "user", "content": "What is my name?"}]
    stateless = client.responses.create(model=model, input=whole, store=False)
    assert first.usage is not None and stateless.usage is not None
    assert first.usage.input_tokens == stateless.usage.input_tokens
    # the request's input and the answer were added to the conversation
    assert texts(client, conversation.id) == [
        ("user", opening),
        ("user", "What is my name?"),
        ("assistant", first.output_text),
    ]
    # a second turn, naming the conversation as an object, sees all of it
    second = create(client, stream, model=model, conversation={"id": conversation.id}, input="And again?")
    answer = {"role": "assistant", "content": first.output_text}
    again = [*whole, answer, {"role": "user", "content": "And again?"}]
    again_stateless = client.responses.create(model=model, input=again, store=False)
    assert second.usage is not None and again_stateless.usage is not None
    assert second.usage.input_tokens == again_stateless.usage.input_tokens
    assert len(texts(client, conversation.id)) == 5


@pytest.mark.parametrize("model", MODELS)
def test_a_tool_call_and_its_result_continue_in_the_conversation(client: OpenAI, model: str) -> None:
    weather = {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    conversation = client.conversations.create()
    call = client.responses.create(
        model=model, conversation=conversation.id, input=f"Weather in Paris? ({model})", tools=[weather]
    )
    [item] = [item for item in call.output if item.type == "function_call"]
    result = {"type": "function_call_output", "call_id": item.call_id, "output": "sunny, 21 C"}
    done = client.responses.create(model=model, conversation=conversation.id, input=[result], tools=[weather])
    assert done.output_text == "Tool said: sunny, 21 C"
    kinds = [entry.type for entry in client.conversations.items.list(conversation.id, order="asc")]
    assert kinds == ["message", "function_call", "function_call_output", "message"]


def test_conversation_with_previous_response_id_is_a_400(client: OpenAI) -> None:
    conversation = client.conversations.create()
    earlier = client.responses.create(model="chat-1", input="hi")
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(
            model="chat-1", conversation=conversation.id, previous_response_id=earlier.id, input="both"
        )
    assert refused.value.param == "conversation"  # type: ignore[attr-defined]
    assert client.conversations.items.list(conversation.id).data == []


@pytest.mark.parametrize("model", ["chat-1", "resp-1"])
def test_a_background_response_extends_its_conversation(client: OpenAI, model: str) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": f"Start ({model})"}])
    created = client.responses.create(model=model, conversation=conversation.id, input="Later?", background=True)
    deadline = time.monotonic() + 10
    while created.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.05)
        created = client.responses.retrieve(created.id)
    assert created.status == "completed" and created.output_text == "Echo: Later?"
    if model == "chat-1":  # Relay ran it: its answer joined the conversation when it ended
        assert created.conversation is not None and created.conversation.id == conversation.id
        assert texts(client, conversation.id)[-2:] == [("user", "Later?"), ("assistant", "Echo: Later?")]

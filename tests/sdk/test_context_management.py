"""``context_management`` (compaction past a threshold) on ``responses.create`` through the openai SDK, against
``relay serve`` in front of ``relay mock-upstream``: Relay compacts with the channel's own model on converted
channels (Anthropic's included) and passes the field through to OpenAI Responses channels.

The mock counts every text it is sent in ``usage.input_tokens``: above the threshold the upstream got fewer input
tokens than the whole history; below it, the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
import trio
from openai import OpenAI

from relay.store.records import LogRecord
from tests.conftest import KEY, process
from tests.gateway_e2e.conftest import logs
from tests.helpers import MOCK_ARGS
from tests.sdk.test_responses_state import relay_toml

CONVERTED = ("chat-1", "claude-1", "gemini-1")
LONG = "The weather report, in full detail: " + "sunny with a light breeze and no rain at all; " * 40


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpenAI, str]]:
    """An SDK client of ``relay serve`` in front of ``relay mock-upstream``, and Relay's store (SQLite)."""
    root = tmp_path_factory.mktemp("context_management")
    store = f"sqlite:///{root}/relay.db"
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}") + f'\n[store]\nurl = "{store}"\nlog_interval = 0.05\n')
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield OpenAI(base_url=f"http://{address}/v1", api_key=KEY, max_retries=0), store


@pytest.fixture(scope="module")
def client(served: tuple[OpenAI, str]) -> OpenAI:
    return served[0]


def history(model: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"What is the weather in Paris? ({model})"},
        {"role": "assistant", "content": LONG},
        {"role": "user", "content": "And in Lyon?"},
        {"role": "assistant", "content": LONG},
        {"role": "user", "content": "Which city is warmer?"},
    ]


def compaction(threshold: int) -> list[dict[str, Any]]:
    return [{"type": "compaction", "compact_threshold": threshold}]


def input_tokens(client: OpenAI, stream: bool, **params: Any) -> int:
    if stream:
        final = None
        with client.responses.create(stream=True, **params) as events:
            for event in events:
                if event.type == "response.completed":
                    final = event.response
        assert final is not None
        response = final
    else:
        response = client.responses.create(**params)
    assert response.status == "completed" and response.output_text.endswith("Which city is warmer?")
    assert response.usage is not None
    return response.usage.input_tokens


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("model", CONVERTED)
def test_above_the_threshold_relay_compacts_the_history(client: OpenAI, model: str, stream: bool) -> None:
    whole = input_tokens(client, False, model=model, input=history(model), store=False)
    compacted = input_tokens(
        client, stream, model=model, input=history(model), store=False, context_management=compaction(200)
    )
    assert compacted < whole / 2  # the long answers were summarised; the user's messages and the last turn stay


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("model", CONVERTED)
def test_below_the_threshold_nothing_changes(client: OpenAI, model: str, stream: bool) -> None:
    whole = input_tokens(client, False, model=model, input=history(model), store=False)
    kept = input_tokens(
        client, stream, model=model, input=history(model), store=False, context_management=compaction(100_000)
    )
    assert kept == whole


def test_openai_responses_channels_get_the_field_as_it_is(client: OpenAI) -> None:
    whole = input_tokens(client, False, model="resp-1", input=history("resp-1"), store=False)
    passed = input_tokens(
        client, False, model="resp-1", input=history("resp-1"), store=False, context_management=compaction(200)
    )
    assert passed == whole  # the upstream compacts (or not) itself; Relay sent the history whole


def test_a_stored_compacted_response_keeps_the_whole_history(client: OpenAI) -> None:
    first = client.responses.create(model="chat-1", input=history("stored"), context_management=compaction(200))
    items = list(client.responses.input_items.list(first.id, order="asc"))
    assert len(items) == 5 and items[1].content[0].text == LONG  # type: ignore[union-attr]


@pytest.mark.parametrize("model", CONVERTED)
def test_a_bad_context_management_is_a_400_naming_it(client: OpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=model, input="hi", context_management=[{"type": "truncate"}])
    assert refused.value.param == "context_management[0].type"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=model, input="hi", context_management=compaction(0))
    assert refused.value.param == "context_management[0].compact_threshold"  # type: ignore[attr-defined]


async def logged(store: str, request_id: str) -> LogRecord:
    """The request log's row of ``request_id``, once the recorder wrote it."""
    for _ in range(100):
        found = {r.request_id: r for r in await logs(store, 1)}
        if request_id in found:
            return found[request_id]
        await trio.sleep(0.05)
    raise AssertionError(f"{request_id} not in the request log")


async def test_the_summary_call_is_charged_with_the_request(served: tuple[OpenAI, str]) -> None:
    client, store = served
    raw = client.responses.with_raw_response.create(
        model="chat-1", input=history("charged"), store=False, context_management=compaction(200)
    )
    answer = raw.parse()
    assert answer.usage is not None
    record = await logged(store, raw.headers["x-request-id"])
    # the log has the generation's tokens and the summary call's: more than the answer reports
    assert record.input_tokens > answer.usage.input_tokens
    assert record.output_tokens > answer.usage.output_tokens

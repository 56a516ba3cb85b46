"""Background Responses through the openai SDK: ``responses.create(background=True)``, ``retrieve`` (polled and
streamed with ``starting_after``), ``cancel``, and the run's billing, against ``relay serve`` in front of
``relay mock-upstream`` (both subprocesses). Converted channels (Relay runs the job) and the OpenAI Responses
channel (passed through; the mock keeps background responses as OpenAI does).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response

from tests.conftest import KEY, process
from tests.helpers import MOCK_ARGS
from tests.sdk.test_responses_state import CHANNELS

CONVERTED = ("chat-1", "claude-1", "gemini-1")
INPUT_PRICE, OUTPUT_PRICE = 2, 3  # credits per million tokens: micro-credits per token


def relay_toml(upstream: str, db: Path) -> str:
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

[store]
url = "sqlite:///{db}"
log_interval = 0.05

[[prices]]
model = "*"
input = {INPUT_PRICE}
output = {OUTPUT_PRICE}
{channels}
[[keys]]
name = "owner"
key = "{KEY}"
quota = 1000
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with process(*MOCK_ARGS) as (_, upstream):
        folder = tmp_path_factory.mktemp("responses_background")
        db = folder / "relay.db"
        (folder / "relay.toml").write_text(relay_toml(f"http://{upstream}", db))
        with process("serve", "--config", str(folder / "relay.toml"), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}", db


@pytest.fixture(scope="module")
def client(served: tuple[str, Path]) -> OpenAI:
    return OpenAI(base_url=f"{served[0]}/v1", api_key=KEY, max_retries=0)


def polled(client: OpenAI, response_id: str) -> Response:
    """The response once it is no longer queued or in progress."""
    deadline = time.monotonic() + 10
    while True:
        response = client.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress"):
            return response
        assert time.monotonic() < deadline, f"{response_id} never finished"
        time.sleep(0.05)


def streamed(client: OpenAI, response_id: str, after: int | None = None) -> list[Any]:
    params: dict[str, Any] = {} if after is None else {"starting_after": after}
    with client.responses.retrieve(response_id, stream=True, **params) as events:
        return list(events)


@pytest.mark.parametrize("model", CONVERTED)
def test_background_is_queued_then_completed_and_replayed(client: OpenAI, model: str) -> None:
    created = client.responses.create(model=model, input=f"Hello in the background ({model})", background=True)
    assert created.status == "queued" and created.background is True
    assert created.id.startswith("resp_") and created.output == []
    done = polled(client, created.id)
    assert done.status == "completed" and done.background is True and done.id == created.id
    assert done.output_text == f"Echo: Hello in the background ({model})"
    assert done.usage is not None and done.usage.output_tokens > 0
    # the stream replays from the job's kept events, numbered from 0, ending with the final object
    events = streamed(client, created.id)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed" and events[-1].response.id == created.id
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == done.output_text
    later = streamed(client, created.id, after=2)
    assert [e.sequence_number for e in later] == list(range(3, len(events)))
    # and it can be continued
    follow = client.responses.create(model=model, previous_response_id=created.id, input="And then?")
    assert follow.previous_response_id == created.id and follow.output_text == "Echo: And then?"


@pytest.mark.parametrize("model", CONVERTED)
def test_a_background_stream_is_live_from_the_post(client: OpenAI, model: str) -> None:
    with client.responses.create(model=model, input="Streamed mock:chunks=4", background=True, stream=True) as events:
        seen = list(events)
    assert seen[-1].type == "response.completed" and seen[-1].response.background is True
    assert [e.sequence_number for e in seen] == list(range(len(seen)))
    assert polled(client, seen[-1].response.id).output_text == seen[-1].response.output_text


def test_cancel_stops_a_running_background_response(client: OpenAI) -> None:
    slow = "Take your time mock:chunks=40 mock:delay_ms=100"
    created = client.responses.create(model="claude-1", input=slow, background=True)
    time.sleep(0.5)
    cancelled = client.responses.cancel(created.id)
    assert cancelled.status == "cancelled" and cancelled.id == created.id
    assert client.responses.retrieve(created.id).status == "cancelled"
    events = streamed(client, created.id)
    assert events[-1].type == "response.cancelled"
    again = client.responses.cancel(created.id)  # finished: answered as it is
    assert again.status == "cancelled"


@pytest.mark.parametrize("model", ["chat-1", "resp-1"])
def test_cancel_of_a_response_not_in_the_background_is_a_400(client: OpenAI, model: str) -> None:
    plain = client.responses.create(model=model, input="Not in the background")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.cancel(plain.id)
    assert "background" in caught.value.message


def test_background_needs_store(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat-1", input="x", background=True, store=False)
    assert caught.value.param == "store"


def test_a_completed_response_replays_as_a_stream(client: OpenAI) -> None:
    """A response answered whole has no kept events: its events are made from its Response object."""
    whole = client.responses.create(model="gemini-1", input="Replay me")
    events = streamed(client, whole.id)
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1].type == "response.completed" and events[-1].response.id == whole.id
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == whole.output_text


def test_background_on_the_openai_responses_channel_passes_through(client: OpenAI) -> None:
    created = client.responses.create(model="resp-1", input="Upstream background", background=True)
    assert created.status == "queued" and created.background is True
    cancelled = client.responses.cancel(created.id)  # the mock had not finished it yet
    assert cancelled.status == "cancelled"
    second = client.responses.create(model="resp-1", input="Upstream finishes", background=True)
    done = polled(client, second.id)
    assert done.status == "completed" and done.output_text == "Echo: Upstream finishes"
    events = streamed(client, second.id, after=0)
    assert events[0].sequence_number == 1 and events[-1].type == "response.completed"


def _rows(db: Path, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(db) as conn:
            rows = conn.execute(sql, args).fetchall()
        if rows:
            return rows
        assert time.monotonic() < deadline, f"nothing for {sql} {args}"
        time.sleep(0.05)


def test_the_background_run_is_charged_once(client: OpenAI, served: tuple[str, Path]) -> None:
    db = served[1]
    raw = client.responses.with_raw_response.create(model="chat-1", input="Bill me once", background=True)
    created = raw.parse()
    done = polled(client, created.id)
    assert done.usage is not None
    cost = done.usage.input_tokens * INPUT_PRICE + done.usage.output_tokens * OUTPUT_PRICE
    # the POST itself: logged with nothing charged, no hold
    post = _rows(
        db, "SELECT cost_micros, input_tokens FROM request_log WHERE request_id = ?", (raw.headers["x-request-id"],)
    )
    assert post == [(0, 0)]
    assert _rows(db, "SELECT count(*) FROM quota_ledger WHERE request_id = ?", (raw.headers["x-request-id"],)) == [(0,)]
    # the run: one row with the tokens and the cost, held then settled at that cost
    runs = _rows(
        db,
        "SELECT request_id, input_tokens, output_tokens, cost_micros FROM request_log WHERE route LIKE '%(background)'"
        " AND cost_micros = ? AND input_tokens = ?",
        (cost, done.usage.input_tokens),
    )
    run_id = runs[-1][0]
    assert runs[-1][1:] == (done.usage.input_tokens, done.usage.output_tokens, cost)
    kinds = _rows(db, "SELECT kind, amount_micros FROM quota_ledger WHERE request_id = ? ORDER BY id", (run_id,))
    settles = [amount for kind, amount in kinds if kind == "settle"]
    assert settles == [cost]


@pytest.mark.parametrize("model", ["resp-1", *CONVERTED])
def test_compact_gives_the_user_messages_and_one_compaction_item(client: OpenAI, model: str) -> None:
    history: list[Any] = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "I like trains."},
    ]
    compacted = client.responses.compact(model=model, input=history)
    assert compacted.object == "response.compaction" and compacted.usage.input_tokens > 0
    kinds = [item.type for item in compacted.output]
    assert kinds == ["message", "message", "compaction"]
    assert [item.content[0].text for item in compacted.output[:2]] == ["My name is Ada.", "I like trains."]  # type: ignore[union-attr]
    # the compacted items continue the conversation on the same channel
    # (the SDK types the user messages as output messages, so dumping them warns of ``input_text``: not ours)
    items = [item.model_dump(exclude_none=True, warnings=False) for item in compacted.output]
    follow = client.responses.create(model=model, input=[*items, {"role": "user", "content": "Go on"}], store=False)
    assert follow.output_text.startswith("Echo: ") and follow.output_text.endswith("Go on")  # (turns may merge)


@pytest.mark.parametrize("model", CONVERTED)
def test_relays_compaction_item_carries_the_summary(client: OpenAI, model: str) -> None:
    """The upstream sees the summary in place of the compaction item: more input tokens than without it."""
    compacted = client.responses.compact(model=model, input="Remember the number 42 for me, please.")
    item = compacted.output[-1].model_dump(exclude_none=True)
    assert item["encrypted_content"].startswith("relay-compaction-v1:")
    bare = client.responses.create(model=model, input="And now?", store=False)
    carried = client.responses.create(model=model, input=[item, {"role": "user", "content": "And now?"}], store=False)
    assert bare.usage is not None and carried.usage is not None
    assert carried.usage.input_tokens > bare.usage.input_tokens
    damaged = {**item, "encrypted_content": "relay-compaction-v1:???"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=model, input=[damaged], store=False)
    assert caught.value.param == "input"

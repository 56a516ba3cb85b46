"""OpenAI Files and Batches, Anthropic Message Batches: the official SDKs through ``relay serve`` to ``relay
mock-upstream`` (subprocesses), with the store read back to see the affinity rows and the batch's charge."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anthropic
import openai
import pytest
import trio

from relay.store import Tx, open_store
from tests.conftest import process
from tests.helpers import MOCK_ARGS

ALICE = "sk-relay-alice-000000000000"
BOB = "sk-relay-bob-0000000000000000"
#: Micro-credits per input and output token of the batch models.
INPUT_PRICE = 1000
OUTPUT_PRICE = 2000
MAX_UPLOAD = 256 * 1024
T = TypeVar("T")


def relay_toml(upstream: str, store_url: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[limits]
max_upload_bytes = {MAX_UPLOAD}

[store]
url = "{store_url}"
key_refresh = 0.2
log_interval = 0.05

[[prices]]
model = "gpt-*"
input = {INPUT_PRICE}
output = {OUTPUT_PRICE}

[[prices]]
model = "claude-*"
input = {INPUT_PRICE}
output = {OUTPUT_PRICE}

[[channels]]
name = "oai"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream-oai"
models = ["gpt-*"]
model_map = {{ "gpt-mapped" = "gpt-real" }}

[[channels]]
name = "claude"
type = "anthropic"
base_url = "{upstream}"
api_key = "sk-upstream-claude"
models = ["claude-*"]

[[keys]]
name = "alice"
key = "{ALICE}"
quota = 100

[[keys]]
name = "bob"
key = "{BOB}"
models = ["gpt-*"]
"""


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(``http://host:port`` of Relay, its store URL)."""
    folder = tmp_path_factory.mktemp("files_batches")
    store_url = f"sqlite:///{folder}/relay.db"
    with process(*MOCK_ARGS) as (_, upstream):
        path = folder / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", store_url))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}", store_url


def oai(relay: tuple[str, str], key: str = ALICE) -> openai.OpenAI:
    return openai.OpenAI(base_url=relay[0] + "/v1", api_key=key, max_retries=0)


def claude(relay: tuple[str, str], key: str = ALICE) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=relay[0], api_key=key, max_retries=0)


def read(store_url: str, fn: Callable[[Tx], T]) -> T:
    async def go() -> T:
        async with open_store(store_url) as store:
            return await store.transaction(fn)

    return trio.run(go)


def wait_rows(store_url: str, sql: str, params: tuple[object, ...], count: int = 1) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` once there are ``count`` (the recorder writes off the hot path)."""
    deadline = time.monotonic() + 5
    while True:
        rows = read(store_url, lambda tx: tx.execute(sql, params))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def batch_file(model: str, texts: list[str]) -> bytes:
    lines = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": text}]},
        }
        for i, text in enumerate(texts)
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


# ---- files ----------------------------------------------------------------------------------------------------


def test_files_upload_list_retrieve_content_delete(relay: tuple[str, str]) -> None:
    client = oai(relay)
    data = b"hello, files\n" * 10
    created = client.files.create(file=("notes.txt", io.BytesIO(data)), purpose="user_data")
    assert created.id.startswith("file-") and created.bytes == len(data) and created.purpose == "user_data"
    assert created.filename == "notes.txt"

    row = read(
        relay[1],
        lambda tx: tx.execute("SELECT key_name, channel, kind FROM upstream_objects WHERE id = ?", (created.id,)),
    )
    assert row == [("alice", "oai", "file")]

    listed = [f.id for f in client.files.list(purpose="user_data")]
    assert created.id in listed
    assert created.id not in [f.id for f in client.files.list(purpose="batch")]
    assert client.files.retrieve(created.id).id == created.id
    assert client.files.content(created.id).read() == data

    deleted = client.files.delete(created.id)
    assert deleted.deleted and deleted.id == created.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    assert created.id not in [f.id for f in client.files.list()]


def test_another_keys_file_is_not_found(relay: tuple[str, str]) -> None:
    mine = oai(relay).files.create(file=("a.txt", io.BytesIO(b"private")), purpose="user_data")
    other = oai(relay, BOB)
    assert mine.id not in [f.id for f in other.files.list()]
    for call in (
        lambda: other.files.retrieve(mine.id),
        lambda: other.files.content(mine.id),
        lambda: other.files.delete(mine.id),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        error = caught.value.body
        assert isinstance(error, dict) and set(error) >= {"message", "type", "param", "code"}
        assert mine.id in error["message"]
    assert oai(relay).files.content(mine.id).read() == b"private"  # still the owner's


def test_upload_refusals_in_openai_shape(relay: tuple[str, str]) -> None:
    client = oai(relay)
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("a.txt", io.BytesIO(b"x")), purpose="nonsense")  # type: ignore[arg-type]
    assert caught.value.body["param"] == "purpose"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/files", body={}, cast_to=object, options={"headers": {"content-type": "application/json"}})
    assert caught.value.status_code == 400
    # A form with a purpose and no file, and one with a file and no purpose.
    with pytest.raises(openai.BadRequestError) as caught:
        client.post(
            "/files",
            body={"purpose": "batch"},
            files=[],
            cast_to=object,
            options={"headers": {"content-type": "multipart/form-data"}},
        )
    assert caught.value.body["param"] == "file"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.post(
            "/files",
            body={},
            files=[("file", ("a.txt", b"x"))],
            cast_to=object,
            options={"headers": {"content-type": "multipart/form-data"}},
        )
    assert caught.value.body["param"] == "purpose"  # type: ignore[index]
    # A batch file naming two models, and one whose model the key may not use.
    with pytest.raises(openai.BadRequestError) as caught:
        two = batch_file("gpt-a", ["x"]) + batch_file("gpt-b", ["y"]).replace(b"req-0", b"req-9")
        client.files.create(file=("two.jsonl", io.BytesIO(two)), purpose="batch")
    assert caught.value.body["code"] == "invalid_batch_file"  # type: ignore[index]
    with pytest.raises(openai.PermissionDeniedError):
        oai(relay, BOB).files.create(file=("c.jsonl", io.BytesIO(batch_file("claude-x", ["x"]))), purpose="batch")


def test_upload_over_max_upload_bytes_is_413(relay: tuple[str, str]) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        oai(relay).files.create(file=("big.txt", io.BytesIO(b"x" * (MAX_UPLOAD + 1))), purpose="user_data")
    assert caught.value.status_code == 413
    assert set(caught.value.body) >= {"message", "type"}  # type: ignore[arg-type]


# ---- OpenAI batches -------------------------------------------------------------------------------------------


def test_batch_create_retrieve_list_and_output_charged_once(relay: tuple[str, str]) -> None:
    client = oai(relay)
    texts = ["Hello batch one", "and a second, longer request for the batch"]
    input_file = client.files.create(file=("in.jsonl", io.BytesIO(batch_file("gpt-mapped", texts))), purpose="batch")
    batch = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"job": "t1"}
    )
    assert batch.status == "completed" and batch.output_file_id is not None
    assert batch.model == "gpt-mapped"  # the client's name, not the channel's
    assert batch.metadata == {"job": "t1"}
    assert client.batches.retrieve(batch.id).id == batch.id
    assert batch.id in [b.id for b in client.batches.list()]
    assert batch.output_file_id in [f.id for f in client.files.list(purpose="batch_output")]

    raw = client.files.with_raw_response.content(batch.output_file_id)
    first_request = raw.headers["x-request-id"]
    output = raw.http_response.content
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["custom_id"] for line in lines] == ["req-0", "req-1"]
    assert {line["response"]["body"]["model"] for line in lines} == {"gpt-real"}  # renamed for the channel
    tokens_in = sum(line["response"]["body"]["usage"]["prompt_tokens"] for line in lines)
    tokens_out = sum(line["response"]["body"]["usage"]["completion_tokens"] for line in lines)
    cost = tokens_in * INPUT_PRICE + tokens_out * OUTPUT_PRICE
    assert cost > 0

    settle = "SELECT amount_micros FROM quota_ledger WHERE request_id = ? AND kind = 'settle'"
    assert wait_rows(relay[1], settle, (first_request,)) == [(cost,)]
    logged = wait_rows(
        relay[1],
        "SELECT input_tokens, output_tokens, cost_micros FROM request_log WHERE request_id = ?",
        (first_request,),
    )
    assert logged == [(tokens_in, tokens_out, cost)]

    again = client.files.with_raw_response.content(batch.output_file_id)
    second_request = again.headers["x-request-id"]
    assert again.http_response.content == output
    logged = wait_rows(relay[1], "SELECT cost_micros FROM request_log WHERE request_id = ?", (second_request,))
    assert logged == [(0,)]
    assert read(relay[1], lambda tx: tx.execute(settle, (second_request,))) == []
    settled = read(
        relay[1], lambda tx: tx.execute("SELECT settled_at FROM upstream_objects WHERE id = ?", (batch.output_file_id,))
    )
    assert settled[0][0] is not None


def test_batch_cancel_and_other_keys_batch(relay: tuple[str, str]) -> None:
    client = oai(relay)
    held = batch_file("gpt-4o-mini", ["mock:batch_hold please wait"])
    input_file = client.files.create(file=("hold.jsonl", io.BytesIO(held)), purpose="batch")
    batch = client.batches.create(input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "in_progress"
    other = oai(relay, BOB)
    with pytest.raises(openai.NotFoundError):
        other.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        other.batches.cancel(batch.id)
    assert batch.id not in [b.id for b in other.batches.list()]
    with pytest.raises(openai.NotFoundError):  # another key's input file
        other.batches.create(input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h")

    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status == "cancelling"
    assert client.batches.retrieve(batch.id).status == "cancelled"
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)


def test_batch_refusals(relay: tuple[str, str]) -> None:
    client = oai(relay)
    input_file = client.files.create(file=("in.jsonl", io.BytesIO(batch_file("gpt-x", ["hi"]))), purpose="batch")
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(input_file_id=input_file.id, endpoint="/v1/nowhere", completion_window="24h")  # type: ignore[arg-type]
    assert caught.value.body["param"] == "endpoint"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="1h")  # type: ignore[arg-type]
    assert caught.value.body["param"] == "completion_window"  # type: ignore[index]
    plain = client.files.create(file=("p.txt", io.BytesIO(b"text")), purpose="user_data")
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(input_file_id=plain.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert caught.value.body["param"] == "input_file_id"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")


# ---- Anthropic message batches --------------------------------------------------------------------------------


def test_message_batches_lifecycle_and_settlement(relay: tuple[str, str]) -> None:
    client = claude(relay)
    requests: Any = [
        {
            "custom_id": "a",
            "params": {"model": "claude-b1", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi there"}]},
        },
        {
            "custom_id": "b",
            "params": {
                "model": "claude-b2",
                "max_tokens": 64,
                "messages": [{"role": "user", "content": "Another one"}],
            },
        },
    ]
    batch = client.messages.batches.create(requests=requests)
    assert batch.processing_status == "ended" and batch.request_counts.succeeded == 2
    assert batch.results_url is not None and batch.results_url.startswith(relay[0])
    assert client.messages.batches.retrieve(batch.id).id == batch.id
    assert batch.id in [b.id for b in client.messages.batches.list()]

    results = list(client.messages.batches.results(batch.id))
    assert {r.custom_id for r in results} == {"a", "b"}
    usage = [r.result.message.usage for r in results if r.result.type == "succeeded"]
    cost = sum(u.input_tokens * INPUT_PRICE + u.output_tokens * OUTPUT_PRICE for u in usage)
    rows = wait_rows(
        relay[1],
        "SELECT l.amount_micros FROM quota_ledger l JOIN request_log r ON r.request_id = l.request_id"
        " WHERE l.kind = 'settle' AND r.route LIKE ?",
        ("%results%",),
    )
    assert rows == [(cost,)]
    list(client.messages.batches.results(batch.id))  # a second download charges nothing
    time.sleep(0.3)
    assert (
        len(
            read(
                relay[1],
                lambda tx: tx.execute(
                    "SELECT l.amount_micros FROM quota_ledger l JOIN request_log r ON r.request_id = l.request_id"
                    " WHERE l.kind = 'settle' AND r.route LIKE ?",
                    ("%results%",),
                ),
            )
        )
        == 1
    )

    deleted = client.messages.batches.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_message_batch_cancel_other_key_and_refusals(relay: tuple[str, str]) -> None:
    client = claude(relay)
    held: Any = [
        {
            "custom_id": "h",
            "params": {
                "model": "claude-b1",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "mock:batch_hold"}],
            },
        }
    ]
    batch = client.messages.batches.create(requests=held)
    assert batch.processing_status == "in_progress"
    other = claude(relay, BOB)
    with pytest.raises(anthropic.NotFoundError) as caught:
        other.messages.batches.retrieve(batch.id)
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.PermissionDeniedError):  # bob may not use claude models
        other.messages.batches.create(requests=held)
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 1
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.batches.create(requests=[])
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    under_claude = anthropic.Anthropic(base_url=relay[0] + "/claude", api_key=ALICE, max_retries=0)
    assert under_claude.messages.batches.retrieve(batch.id).id == batch.id

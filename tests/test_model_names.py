"""Model names are bounded (issue 9, finding 10): at most 256 printable characters.

A longer name, or one with a control character, is a 400 naming ``model`` in the client's dialect, before
any quota is held; the request log and the daily totals never get the name (each such name used to make a
row of its own). A name of exactly 256 characters is served.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay.config import loads
from relay.gateway.routing import MAX_MODEL_NAME
from relay.store.records import daily
from tests.conftest import serve_relay
from tests.gateway_e2e.conftest import KEY, key_entry, logs, mock_channel, post, read, relay_toml, settled
from tests.helpers import raw_request

HUGE = "mock-" + "x" * 100_000


def body(dialect: str, model: str) -> tuple[str, bytes]:
    """(path, body) of a generation request for ``model`` in ``dialect``."""
    messages = [{"role": "user", "content": "hi"}]
    if dialect == "gemini":
        return f"/v1beta/models/{model}:generateContent", b'{"contents":[{"parts":[{"text":"hi"}]}]}'
    if dialect == "anthropic":
        return "/v1/messages", json.dumps({"model": model, "max_tokens": 16, "messages": messages}).encode()
    if dialect == "openai_responses":
        return "/v1/responses", json.dumps({"model": model, "input": "hi"}).encode()
    if dialect == "count":
        return "/v1/messages/count_tokens", json.dumps({"model": model, "messages": messages}).encode()
    return "/v1/chat/completions", json.dumps({"model": model, "messages": messages}).encode()


def assert_model_refused(dialect: str, status: int, payload: dict) -> None:
    assert status == 400, payload
    error = payload["error"]
    assert "model" in error["message"]
    if dialect in ("openai_chat", "openai_responses"):
        assert error["param"] == "model" and error["code"] == "invalid_model_name"


@pytest.fixture
async def relay(tmp_path: Path):
    store = f"sqlite:///{tmp_path}/relay.db"
    text = relay_toml(store, channels=mock_channel("mock", chunks=2), keys=key_entry("test", KEY, quota=10))
    async with serve_relay(loads(text)) as served:
        yield served.url, store


@pytest.mark.parametrize("dialect", ["openai_chat", "openai_responses", "anthropic", "count"])
async def test_a_100_kb_model_name_is_refused_before_anything_is_held_and_never_logged(relay, dialect):
    url, store = relay
    path, data = body(dialect, HUGE)
    answer = await post(url, path, data)
    assert_model_refused(dialect, answer.status, answer.json())
    assert HUGE[:300].encode() not in answer.body
    (row,) = await logs(store, 1)
    assert row.status == 400 and len(row.requested_model or "") <= MAX_MODEL_NAME
    assert await settled(store) == []  # no hold was taken
    totals = await read(store, lambda tx: daily(tx))
    assert all(len(total.model) <= MAX_MODEL_NAME for total in totals)


async def test_a_long_gemini_model_in_the_url_is_refused(relay):
    url, store = relay
    path, data = body("gemini", "mock-" + "g" * 1000)
    answer = await post(url, path, data)
    assert answer.status == 400 and answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    (row,) = await logs(store, 1)
    assert len(row.requested_model or "") <= MAX_MODEL_NAME


@pytest.mark.parametrize("model", ["mock-1\n", "mock-\x001", "mock-\t1", "mock-1\x7f", "mock-\u200b1\u2028"])
async def test_a_model_name_with_a_control_character_is_refused(relay, model):
    url, _ = relay
    path, data = body("openai_chat", model)
    answer = await post(url, path, data)
    assert_model_refused("openai_chat", answer.status, answer.json())


async def test_a_name_of_the_longest_length_is_served_and_one_more_is_not(relay):
    url, _ = relay
    longest = "mock-" + "y" * (MAX_MODEL_NAME - 5)
    served = await post(url, *body("openai_chat", longest))
    refused = await post(url, *body("openai_chat", longest + "y"))
    assert served.status == 200, served.body
    assert served.json()["model"] == longest
    assert_model_refused("openai_chat", refused.status, refused.json())


async def test_a_long_model_asked_of_the_model_list_is_refused(relay):
    url, _ = relay
    got = await raw_request(url, "GET", "/v1/models/" + "m" * 1000, headers={"authorization": f"Bearer {KEY}"})
    assert got.status == 400 and got.json()["error"]["param"] == "model"

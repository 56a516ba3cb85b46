"""Input at the edge of what Relay can hold, through a served Relay: a 4xx in the client's dialect, never a 500.

An output ceiling of ~1e19 tokens makes a hold no store can keep (SQLite binds 64-bit integers only): it is a
402 on SQLite as on PostgreSQL, and nothing is written. JSON nested deeper than Relay reads (``MAX_DEPTH``) is a
400 in every client dialect, converted or passed through, before the upstream is called at all.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay.config import loads
from relay.http.messages import Request, Response, StreamResponse
from relay.mock.server import MockUpstream
from tests.conftest import KEY, serve_app, serve_relay
from tests.gateway_e2e.conftest import balance, key_entry, mock_channel, openai_channel, post, relay_toml, settled
from tests.helpers import Upstream

ABSURD = 10**19  # above SQLite's largest integer (2**63 - 1), below JSON's unsigned 64-bit one
ANTHROPIC = {"anthropic-version": "2023-06-01"}
#: The deepest nesting Relay reads (``relay.dialects.common.MAX_DEPTH``, docs/conversions/README.md).
MAX_DEPTH = 128
USER = [{"role": "user", "content": "hi"}]


DEEP = "<deep>"


def nested(depth: int) -> str:
    """JSON text of a value ``depth`` levels deep (``{"a": {"a": … []}}``), too deep for ``json.dumps``."""
    return '{"a": ' * (depth - 1) + "[]" + "}" * (depth - 1)


def encoded(body: dict[str, Any], deep: str) -> bytes:
    """``body`` as JSON, its ``DEEP`` string replaced by the JSON text ``deep``."""
    return json.dumps(body).replace(f'"{DEEP}"', deep).encode()


# ---- an absurd output ceiling -----------------------------------------------------------------------------


async def test_an_output_ceiling_no_store_can_hold_is_a_402_on_every_backend(store_url: str) -> None:
    config = loads(relay_toml(store_url, channels=mock_channel("priced"), keys=key_entry("test", KEY, quota=5)))
    async with serve_relay(config) as relay:
        before = await balance(store_url, "test")
        chat = await post(
            relay.url,
            "/v1/chat/completions",
            json.dumps(
                {"model": "mock-1", "max_tokens": ABSURD, "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
        )
        messages = await post(
            relay.url,
            "/v1/messages",
            json.dumps(
                {"model": "mock-1", "max_tokens": ABSURD, "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
            headers=ANTHROPIC,
        )
        gemini = await post(
            relay.url,
            "/v1beta/models/mock-1:generateContent",
            json.dumps(
                {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": ABSURD}}
            ).encode(),
        )
        fine = await post(
            relay.url,
            "/v1/chat/completions",
            json.dumps({"model": "mock-1", "max_tokens": 20, "messages": USER}).encode(),
        )
        assert fine.status == 200, fine.body
        rows = await settled(store_url)
    assert chat.status == 402, chat.body
    assert chat.json()["error"]["code"] == "insufficient_quota"
    assert messages.status == 402, messages.body
    assert messages.json()["error"]["type"] == "billing_error"
    assert gemini.status == 402, gemini.body
    assert gemini.json()["error"]["status"] == "FAILED_PRECONDITION"
    assert before == 5_000_000
    assert [kind for _, _, kind, _ in rows] == ["hold", "settle"]  # the refused requests wrote nothing


# ---- JSON nested too deeply --------------------------------------------------------------------------------


class Counting:
    """The mock model behind an in-test server that keeps every request it gets."""

    def __init__(self) -> None:
        self.mock = MockUpstream()
        self.upstream = Upstream(self.handle)

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        return await self.mock.handle(request, stream)


def channels(base_url: str) -> str:
    """``mock-1`` on an OpenAI channel, ``mock-2`` on an Anthropic one: every client dialect is converted on one
    of them and passed through (or, for Gemini, converted) on the other."""
    return (
        openai_channel("oa", base_url, models=("mock-1",))
        + f"""
[[channels]]
name = "an"
type = "anthropic"
base_url = "{base_url}"
api_key = "sk-upstream"
models = ["mock-2"]
"""
    )


def requests(model: str) -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
    """(dialect, path, body, headers) of one request per client dialect, with ``DEEP`` somewhere inside."""
    deep = DEEP
    user = [{"role": "user", "content": "hi"}]
    return [
        ("chat", "/v1/chat/completions", {"model": model, "messages": user, "metadata": deep}, {}),
        ("responses", "/v1/responses", {"model": model, "input": "hi", "metadata": {"k": deep}}, {}),
        (
            "anthropic",
            "/v1/messages",
            {"model": model, "max_tokens": 16, "messages": user, "metadata": {"user_id": deep}},
            ANTHROPIC,
        ),
        (
            "gemini",
            f"/v1beta/models/{model}:generateContent",
            {"contents": [{"parts": [{"text": "hi"}]}], "labels": deep},
            {},
        ),
    ]


def refused(dialect: str, answer: Any) -> bool:
    if answer.status != 400:
        return False
    error = answer.json()["error"]
    message = error["message"]
    if dialect == "gemini":
        return error["status"] == "INVALID_ARGUMENT" and "nested too deeply" in message
    if dialect == "anthropic":
        return error["type"] == "invalid_request_error" and "nested too deeply" in message
    return error["type"] == "invalid_request_error" and "nested too deeply" in message


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 1000])
async def test_json_nested_too_deeply_is_a_400_before_the_upstream_is_called(sqlite_url: str, depth: int) -> None:
    counting = Counting()
    async with serve_app(counting.upstream) as upstream:
        config = loads(relay_toml(sqlite_url, channels=channels(upstream.url), keys=key_entry("test", KEY)))
        async with serve_relay(config) as relay:
            answers = []
            for model in ("mock-1", "mock-2"):
                for dialect, path, body, headers in requests(model):
                    answer = await post(relay.url, path, encoded(body, nested(depth - 1)), headers=headers)
                    answers.append((dialect, model, answer.status, refused(dialect, answer), answer.body[:200]))
    assert [a for a in answers if not a[3]] == []
    assert counting.upstream.requests == []


async def test_json_as_deep_as_allowed_is_served_in_every_dialect(sqlite_url: str) -> None:
    counting = Counting()
    async with serve_app(counting.upstream) as upstream:
        config = loads(relay_toml(sqlite_url, channels=channels(upstream.url), keys=key_entry("test", KEY)))
        async with serve_relay(config) as relay:
            statuses = []
            for model in ("mock-1", "mock-2"):
                for dialect, path, body, headers in requests(model):
                    answer = await post(relay.url, path, encoded(body, nested(MAX_DEPTH - 3)), headers=headers)
                    statuses.append((dialect, model, answer.status, answer.body[:300]))
    assert [s for s in statuses if s[2] != 200] == []
    assert len(counting.upstream.requests) == 8

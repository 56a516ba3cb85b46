"""Quota through a served Relay: every request charged exactly what the usage its client saw costs (the channel's
multiplier applied), 402 in each client dialect when the hold cannot be covered, holds released when the
upstream fails, and abandoned streams charged for what the upstream produced. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import h11
import pytest
import trio

from relay.config import loads
from relay.store import StoreError
from tests.conftest import KEY, serve_relay
from tests.gateway_e2e.conftest import (
    CACHED_PRICE,
    INPUT_PRICE,
    OUTPUT_PRICE,
    balance,
    chat,
    chat_body,
    cost,
    key_entry,
    logs,
    mock_channel,
    post,
    relay_toml,
    settled,
)
from tests.gateway_e2e.ledger import stream_usage

MULTIPLIER = 1.5
ANTHROPIC = {"anthropic-version": "2023-06-01"}


def config(store_url: str, quota: float, *, chunk_delay: float = 0.0) -> Any:
    return loads(
        relay_toml(
            store_url,
            channels=mock_channel("priced", multiplier=MULTIPLIER, chunk_delay=chunk_delay),
            keys=key_entry("test", KEY, quota=quota),
        )
    )


def anthropic_body(content: str, max_tokens: int, **extra: Any) -> bytes:
    return json.dumps(
        {"model": "mock-1", "max_tokens": max_tokens, "messages": [{"role": "user", "content": content}], **extra}
    ).encode()


def gemini_body(content: str, max_tokens: int) -> bytes:
    return json.dumps(
        {
            "contents": [{"role": "user", "parts": [{"text": content}]}],
            "generationConfig": {"maxOutputTokens": max_tokens},
        }
    ).encode()


def micros(input_tokens: int, output_tokens: int, cached: int = 0) -> int:
    return round(
        ((input_tokens - cached) * INPUT_PRICE + cached * CACHED_PRICE + output_tokens * OUTPUT_PRICE) * MULTIPLIER
    )


async def test_each_request_costs_exactly_its_usage_times_the_channel_multiplier(store_url: str) -> None:
    initial = 10_000_000
    async with serve_relay(config(store_url, 10)) as relay:
        charged: list[int] = []
        whole = await chat(relay.url, "hello there mock:cached=3", max_tokens=50)
        assert whole.status == 200, whole.body
        usage = whole.json()["usage"]
        assert usage["prompt_tokens_details"]["cached_tokens"] == 3
        charged.append(cost(usage, MULTIPLIER))

        stream = await chat(
            relay.url, "a streamed answer", max_tokens=50, stream=True, stream_options={"include_usage": True}
        )
        assert stream.status == 200 and stream.complete
        charged.append(cost(stream_usage(stream.body), MULTIPLIER))

        claude = await post(
            relay.url,
            "/v1/messages",
            anthropic_body("hi claude", 50),
            key=None,
            headers={"x-api-key": KEY, **ANTHROPIC},
        )
        assert claude.status == 200, claude.body
        u = claude.json()["usage"]
        charged.append(micros(u["input_tokens"] + u["cache_read_input_tokens"], u["output_tokens"]))

        gemini = await post(
            relay.url,
            "/v1beta/models/mock-1:generateContent",
            gemini_body("hi gemini", 50),
            key=None,
            headers={"x-goog-api-key": KEY},
        )
        assert gemini.status == 200, gemini.body
        m = gemini.json()["usageMetadata"]
        charged.append(micros(m["promptTokenCount"], m["candidatesTokenCount"] + m.get("thoughtsTokenCount", 0)))

        entries = await settled(store_url)
        records = await logs(store_url, 4)
        assert all(c > 0 for c in charged)
        assert [r.cost_micros for r in records] == charged
        assert sorted(amount for _, _, kind, amount in entries if kind == "settle") == sorted(charged)
        assert [kind for _, _, kind, _ in entries].count("settle") == 4
        assert await balance(store_url, "test") == initial - sum(charged)
        # The one with cached input: 7 uncached at 1000, 3 cached at 250, output at 2000, times 1.5.
        assert charged[0] == round(
            (7 * INPUT_PRICE + 3 * CACHED_PRICE + usage["completion_tokens"] * OUTPUT_PRICE) * 1.5
        )


async def test_a_hold_the_balance_cannot_cover_is_a_402_in_each_client_dialect(store_url: str) -> None:
    async with serve_relay(config(store_url, 0.06)) as relay:
        openai = await chat(relay.url, "hello", max_tokens=1000)
        claude = await post(
            relay.url, "/v1/messages", anthropic_body("hello", 1000), key=None, headers={"x-api-key": KEY, **ANTHROPIC}
        )
        gemini = await post(
            relay.url,
            "/v1beta/models/mock-1:generateContent",
            gemini_body("hello", 1000),
            key=None,
            headers={"x-goog-api-key": KEY},
        )
        assert (openai.status, claude.status, gemini.status) == (402, 402, 402)
        error = openai.json()["error"]
        assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
        assert set(error) == {"message", "type", "param", "code"}
        body = claude.json()
        assert body["type"] == "error" and body["error"]["type"] == "billing_error"
        assert gemini.json()["error"]["code"] == 402
        assert gemini.json()["error"]["status"] == "FAILED_PRECONDITION"
        # A request the balance does cover still goes through (the hold of max_tokens=2 fits 0.06 credits).
        small = await chat(relay.url, "hi", max_tokens=2)
        assert small.status == 200, small.body
        spent = cost(small.json()["usage"], MULTIPLIER)
        await logs(store_url, 4)
        entries = await settled(store_url)
        assert [kind for _, _, kind, _ in entries] == ["hold", "settle"]  # the refused ones wrote nothing
        assert await balance(store_url, "test") == 60_000 - spent
        records = await logs(store_url, 4)
        assert [(r.status, r.error_kind, r.cost_micros) for r in records] == [
            (402, "quota", 0),
            (402, "quota", 0),
            (402, "quota", 0),
            (200, None, spent),
        ]


@pytest.mark.parametrize(
    ("directive", "status"), [("mock:status=500", 502), ("mock:status=503", 503), ("mock:status=429", 429)]
)
async def test_a_failed_upstream_request_releases_its_whole_hold(store_url: str, directive: str, status: int) -> None:
    async with serve_relay(config(store_url, 10)) as relay:
        failed = await chat(relay.url, f"fail please {directive}", max_tokens=100)
        assert failed.status == status  # an upstream 500 is a 502 for the client (docs/routing.md section 9)
        entries = await settled(store_url)
        assert [kind for _, _, kind, _ in entries] == ["hold", "release"]
        assert entries[0][3] == entries[1][3] > 0
        assert await balance(store_url, "test") == 10_000_000
        [record] = await logs(store_url, 1)
        assert (record.status, record.cost_micros) == (status, 0)


async def read_some_then_leave(url: str, body: bytes, frames: int) -> bytes:
    """A streaming request whose client closes the connection after ``frames`` SSE frames."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    conn = h11.Connection(h11.CLIENT)
    head = [
        ("host", f"{host}:{port}"),
        ("content-length", str(len(body))),
        ("content-type", "application/json"),
        ("authorization", f"Bearer {KEY}"),
    ]
    await stream.send_all(conn.send(h11.Request(method="POST", target="/v1/chat/completions", headers=head)))
    await stream.send_all(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    received = b""
    while received.count(b"data: ") < frames:
        data = await stream.receive_some(65536)
        assert data, "the stream ended before the client left"
        received += data
    await stream.aclose()
    return received


async def test_an_abandoned_stream_is_charged_what_it_produced_within_its_hold(store_url: str) -> None:
    async with serve_relay(config(store_url, 10, chunk_delay=0.1)) as relay:
        body = chat_body("a long answer to cut short " * 4, max_tokens=200, stream=True)
        received = await read_some_then_leave(relay.url, body, frames=3)
        assert b"[DONE]" not in received
        entries = await settled(store_url)
        [(_, request_id, hold_kind, held), (_, same_id, kind, charged)] = entries
        assert (hold_kind, kind, same_id) == ("hold", "settle", request_id)
        assert 0 < charged <= held
        assert await balance(store_url, "test") == 10_000_000 - charged
        [record] = await logs(store_url, 1)
        assert record.request_id == request_id and record.cost_micros == charged
        assert record.stream and record.output_tokens > 0


async def test_a_complete_stream_without_include_usage_is_charged(sqlite_url: str) -> None:
    async with serve_relay(config(sqlite_url, 10)) as relay:
        whole = await chat(relay.url, "the same prompt", max_tokens=50)
        streamed = await chat(relay.url, "the same prompt", max_tokens=50, stream=True)
        assert whole.status == streamed.status == 200 and streamed.complete
        records = await logs(sqlite_url, 2)
        await settled(sqlite_url)
        assert records[0].cost_micros == cost(whole.json()["usage"], MULTIPLIER)
        assert records[1].cost_micros == records[0].cost_micros  # the same answer, streamed


async def test_a_store_outage_refuses_quota_keys_with_a_503_and_serves_unlimited_ones(sqlite_url: str) -> None:
    """Quota never fails open: while the store cannot hold, a key with a quota gets 503 (with retry-after) in
    its client's dialect; a key without quota or limits needs no store call and is served."""
    config = loads(
        relay_toml(
            sqlite_url,
            channels=mock_channel("priced"),
            keys=key_entry("test", KEY, quota=10) + key_entry("free", "sk-free-key-1"),
        )
    )
    async with serve_relay(config) as relay:
        store = relay.app.gateway.store  # type: ignore[attr-defined]

        async def down(fn: object) -> object:
            raise StoreError("the store is down (test)")

        store.transaction_now = down
        try:
            openai = await chat(relay.url, "hello")
            anthropic = await post(
                relay.url,
                "/v1/messages",
                anthropic_body("hello", 20),
                key=None,
                headers={"x-api-key": KEY, **ANTHROPIC},
            )
            free = await chat(relay.url, "hello", key="sk-free-key-1")
        finally:
            del store.transaction_now
    assert (openai.status, openai.headers[b"retry-after"]) == (503, b"1")
    assert openai.json()["error"]["code"] == "store_unavailable"
    assert "quota store is unavailable" in openai.json()["error"]["message"]
    assert anthropic.status == 503 and anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "api_error"
    assert free.status == 200
    assert await balance(sqlite_url, "test") == 10_000_000  # nothing was held

"""Overload: the in-flight cap and the upstream pool's limit, through a served Relay with small limits
(``[upstream] max_connections = 4``, ``[server] max_in_flight = 6``) in front of a real upstream on a loopback
socket: the mock model, whose streams marked ``hold`` stop after their first event until the test lets them go.

What must hold: a request beyond the limits gets a 503 with ``retry-after`` at once (or after the short
``pool_timeout``), in the client's own dialect; model lists and ``/healthz`` are still answered; no breaker
opens (``breaker_failures = 1`` here, so one counted failure would open it); once the held streams end, the same
channel serves again; and the request log records every refusal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from relay.config import loads
from relay.http.messages import Headers, Request, Response, StreamResponse
from relay.mock.server import MockUpstream
from tests.conftest import Served, serve_app, serve_relay
from tests.gateway_e2e.conftest import key_entry as key
from tests.gateway_e2e.conftest import logs, relay_toml
from tests.helpers import KEY, RawResponse, Upstream, assert_openai_error, raw_request, sse_data

MAX_CONNECTIONS = 4
MAX_IN_FLIGHT = 6


class Gate:
    """The mock upstream; a stream whose prompt says ``hold`` stops after its first event until ``release``."""

    def __init__(self) -> None:
        self.mock = MockUpstream()
        self.upstream = Upstream(self.handle)
        self.opened = trio.Event()
        #: Held streams that have sent their first event.
        self.holding = 0

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        if b"hold" not in request.body:
            return await self.mock.handle(request, stream)
        return await self.mock.handle(request, _Held(stream, self))


class _Held:
    """A StreamResponse that waits for the gate after the first event it sends."""

    def __init__(self, out: StreamResponse, gate: Gate) -> None:
        self._out = out
        self._gate = gate
        self._sent = False

    @property
    def started(self) -> bool:
        return self._out.started

    @property
    def gone(self) -> bool:
        return self._out.gone

    @property
    def shutdown(self) -> Any:
        return self._out.shutdown

    async def start(self, status: int, headers: Headers) -> None:
        await self._out.start(status, headers)

    async def send(self, data: bytes) -> None:
        await self._out.send(data)
        if not self._sent:
            self._sent = True
            self._gate.holding += 1
            await self._gate.opened.wait()


def config(store_url: str, upstream_url: str, *, pool_timeout: float) -> Any:
    channel = f"""
[[channels]]
name = "gated"
type = "openai"
base_url = "{upstream_url}/v1"
models = ["mock-*"]
[channels.timeouts]
connect = 10.0
first_byte = 60.0
idle = 60.0
"""
    return loads(
        relay_toml(
            store_url,
            channels=channel,
            keys=key("test", KEY),
            top=f"[upstream]\nmax_connections = {MAX_CONNECTIONS}\npool_timeout = {pool_timeout}\n",
            server=f"max_in_flight = {MAX_IN_FLIGHT}",
            routing="breaker_failures = 1\nbreaker_cooldown = 600.0",
        )
    )


def chat(content: str, *, stream: bool = False) -> tuple[str, bytes, dict[str, str]]:
    body = {"model": "mock-1", "stream": stream, "messages": [{"role": "user", "content": content}]}
    return "/v1/chat/completions", json.dumps(body).encode(), {"authorization": f"Bearer {KEY}"}


def messages(content: str) -> tuple[str, bytes, dict[str, str]]:
    body = {"model": "mock-1", "max_tokens": 64, "messages": [{"role": "user", "content": content}]}
    return "/v1/messages", json.dumps(body).encode(), {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def gemini(content: str) -> tuple[str, bytes, dict[str, str]]:
    body = {"contents": [{"role": "user", "parts": [{"text": content}]}]}
    return "/v1beta/models/mock-1:generateContent", json.dumps(body).encode(), {"x-goog-api-key": KEY}


async def send(relay: Served, request: tuple[str, bytes, dict[str, str]]) -> RawResponse:
    path, body, headers = request
    with trio.fail_after(20):
        return await raw_request(
            relay.url, "POST", path, headers={"content-type": "application/json", **headers}, body=body
        )


async def until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.01)


async def hold_every_connection(relay: Served, gate: Gate, nursery: trio.Nursery, answers: list[RawResponse]) -> None:
    """MAX_CONNECTIONS streams, each holding a pooled upstream connection, started and waiting at the gate."""

    async def holder(index: int) -> None:
        answers.append(await send(relay, chat(f"hold {index}", stream=True)))

    for index in range(MAX_CONNECTIONS):
        nursery.start_soon(holder, index)
    await until(lambda: gate.holding == MAX_CONNECTIONS)


def assert_streamed(answer: RawResponse) -> None:
    assert answer.status == 200 and answer.complete, answer.body
    assert sse_data(answer.body)[-1] == "[DONE]"


def assert_refused(answer: RawResponse) -> None:
    assert answer.status == 503, answer.body
    assert answer.headers[b"retry-after"] == b"1"
    assert answer.complete


async def test_beyond_max_in_flight_a_fast_503_in_each_dialect_then_the_channel_serves(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/relay.db"
    gate = Gate()
    async with (
        serve_app(gate.upstream) as upstream,
        serve_relay(config(store, upstream.url, pool_timeout=30)) as relay,
    ):
        holders: list[RawResponse] = []
        waiters: list[RawResponse] = []
        async with trio.open_nursery() as nursery:
            await hold_every_connection(relay, gate, nursery, holders)

            async def waiter(index: int) -> None:  # no connection is free: these two wait in the pool
                waiters.append(await send(relay, chat(f"wait {index}")))

            for index in range(MAX_IN_FLIGHT - MAX_CONNECTIONS):
                nursery.start_soon(waiter, index)
            await until(lambda: relay.app.in_flight.count == MAX_IN_FLIGHT)  # type: ignore[attr-defined]

            # Full: the next request is refused at once (well before the 30 s pool wait), in its own dialect.
            openai = await send(relay, chat("one too many"))
            anthropic = await send(relay, messages("one too many"))
            google = await send(relay, gemini("one too many"))
            # Model lists and the health probe never count and are never refused.
            models = await raw_request(relay.url, "GET", "/v1/models", headers={"authorization": f"Bearer {KEY}"})
            health = await raw_request(relay.url, "GET", "/healthz")
            assert len(waiters) == 0  # the refusals did not wait for anything
            gate.opened.set()
        after = await send(relay, chat("after the storm"))
        records = [r for r in await logs(store, MAX_IN_FLIGHT + 5) if r.route != "/v1/models"]

    assert_refused(openai)
    assert_openai_error(openai.json(), code="overloaded")
    assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"] == "overloaded_error"
    assert_refused(anthropic)
    assert_refused(google)
    assert google.json()["error"]["status"] == "UNAVAILABLE" and google.json()["error"]["code"] == 503
    assert models.status == 200 and health.status == 200

    for answer in holders:
        assert_streamed(answer)
    assert [w.status for w in waiters] == [200, 200], [w.body for w in waiters]
    assert after.status == 200, after.body
    assert after.json()["choices"][0]["message"]["content"] == "Echo: after the storm"

    refused = [r for r in records if r.status == 503]
    assert sorted(r.dialect for r in refused) == ["anthropic", "gemini", "openai"]
    assert {(r.error_kind, r.key_name, r.channel, r.attempts) for r in refused} == {("overloaded", None, None, ())}
    assert sorted(r.status for r in records) == [200] * (MAX_IN_FLIGHT + 1) + [503] * 3


async def test_a_full_pool_is_a_503_that_opens_no_breaker(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/relay.db"
    gate = Gate()
    async with (
        serve_app(gate.upstream) as upstream,
        serve_relay(config(store, upstream.url, pool_timeout=0.2)) as relay,
    ):
        holders: list[RawResponse] = []
        async with trio.open_nursery() as nursery:
            await hold_every_connection(relay, gate, nursery, holders)
            # Under the in-flight cap, but no upstream connection is free: after pool_timeout, a 503.
            openai = await send(relay, chat("no connection"))
            anthropic = await send(relay, messages("no connection"))
            streamed = await send(relay, chat("no connection", stream=True))
            gate.opened.set()
        # The channel was not blamed: with breaker_failures = 1 any counted failure would have opened it.
        after = await send(relay, chat("after the storm"))
        after_stream = await send(relay, chat("after the storm", stream=True))
        records = await logs(store, MAX_CONNECTIONS + 5)

    for answer in (openai, streamed):
        assert_refused(answer)
        assert_openai_error(answer.json(), code="upstream_pool_exhausted")
    assert_refused(anthropic)
    assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"] == "overloaded_error"
    for answer in holders:
        assert_streamed(answer)
    assert after.status == 200, after.body
    assert_streamed(after_stream)

    refused = [r for r in records if r.status == 503]
    assert len(refused) == 3
    assert {(r.error_kind, r.attempts) for r in refused} == {("overloaded", (("gated", "upstream_pool_exhausted"),))}
    assert {r.error_detail for r in refused} == {"channel 'gated': all 4 upstream connections stayed busy for 0.2s"}
    assert sorted(r.status for r in records) == [200] * (MAX_CONNECTIONS + 2) + [503] * 3

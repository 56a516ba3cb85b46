"""The upstream pool's limits: ``[upstream]`` in relay.toml, checked and documented, and the pool honouring them
against a real upstream on a loopback socket (the wait for a free connection, the idle stack)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from relay.config import Config, ConfigError, UpstreamConfig, loads
from relay.http.messages import Request, Response, StreamResponse
from relay.upstream.errors import PoolTimeout
from relay.upstream.pool import Pool, PoolExhausted
from relay.upstream.response import UpstreamRequest
from tests.conftest import serve_app
from tests.helpers import Upstream

SSE = ((b"content-type", b"text/event-stream"),)


# ---- relay.toml -------------------------------------------------------------------------------------------


def test_the_defaults_and_the_in_flight_cap_follows_the_pool() -> None:
    config = Config()
    assert config.upstream == UpstreamConfig(
        max_connections=1000, max_idle_per_origin=100, keepalive_expiry=30.0, pool_timeout=1.0
    )
    assert config.server.max_in_flight is None and config.max_in_flight == 1000
    assert loads("[upstream]\nmax_connections = 64\n").max_in_flight == 64


def test_every_key_is_read() -> None:
    config = loads(
        "[server]\nmax_in_flight = 300\n"
        "[upstream]\nmax_connections = 200\nmax_idle_per_origin = 0\nkeepalive_expiry = 5\npool_timeout = 0\n"
    )
    assert config.upstream == UpstreamConfig(200, 0, 5.0, 0.0)
    assert config.max_in_flight == 300


def test_bad_values_are_each_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        loads(
            "[server]\nmax_in_flight = 0\n"
            "[upstream]\nmax_connections = 0\nmax_idle_per_origin = -1\nkeepalive_expiry = 0\npool_timeout = -1\n"
        )
    assert sorted(caught.value.problems) == [
        "server.max_in_flight: must be at least 1",
        "upstream.keepalive_expiry: must be greater than 0",
        "upstream.max_connections: must be at least 1",
        "upstream.max_idle_per_origin: must be at least 0",
        "upstream.pool_timeout: must be at least 0",
    ]


def test_unknown_and_mistyped_keys_are_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        loads('[upstream]\nmax_conections = 10\npool_timeout = "1"\n')
    assert sorted(caught.value.problems) == [
        "upstream.max_conections: unknown key",
        "upstream.pool_timeout: expected a number, got a string ('1')",
    ]


# ---- the pool -------------------------------------------------------------------------------------------


class Held:
    """An upstream whose answers stream one event, then wait for ``release``; it notes each client port."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.waiting = 0
        self.clients: list[str] = []
        self.upstream = Upstream(self.handle)

    async def handle(self, request: Request, out: StreamResponse) -> Response | None:
        self.clients.append(request.client)
        if b"quick" in request.body:
            return Response(200, b"{}", ((b"content-type", b"application/json"),))
        await out.start(200, SSE)
        await out.send(b"data: first\n\n")
        self.waiting += 1
        await self.release.wait()
        await out.send(b"data: last\n\n")
        return None


@asynccontextmanager
async def pool_and_upstream(**limits: float) -> AsyncIterator[tuple[Pool, Held, str]]:
    held = Held()
    pool = Pool(UpstreamConfig(**limits))  # type: ignore[arg-type]
    async with serve_app(held.upstream) as server:
        try:
            yield pool, held, f"{server.url}/v1/stream"
        finally:
            await pool.aclose()


def post(url: str, body: bytes = b"{}") -> UpstreamRequest:
    """A POST of ``body`` to ``url`` (``http://host:port/path``), as a channel builds it."""
    authority, _, path = url.removeprefix("http://").partition("/")
    host, _, port = authority.rpartition(":")
    return UpstreamRequest((b"http", host, int(port)), authority.encode(), b"/" + path.encode(), (), body, 5.0)


async def test_a_full_pool_refuses_after_pool_timeout_not_after_the_requests_pool_timeout() -> None:
    async with pool_and_upstream(max_connections=2, pool_timeout=0.1) as (pool, held, url):
        first = await pool.send(post(url))
        second = await pool.send(post(url))
        with trio.fail_after(30), pytest.raises(PoolExhausted) as caught:
            await pool.send(post(url))
        assert isinstance(caught.value, PoolTimeout)
        assert "all 2 upstream connections stayed busy for 0.1s" in str(caught.value)
        held.release.set()
        for response in (first, second):
            assert await response.read() == b"data: first\n\ndata: last\n\n"
            await response.aclose()
        third = await pool.send(post(url))  # free again
        assert await third.read() == b"data: first\n\ndata: last\n\n"
        await third.aclose()


async def test_a_waiting_request_gets_the_connection_an_answer_gives_back() -> None:
    async with pool_and_upstream(max_connections=1, pool_timeout=30.0) as (pool, held, url):
        first = await pool.send(post(url))
        answers: list[bytes] = []

        async def waiter() -> None:
            response = await pool.send(post(url, b"quick"))
            answers.append(await response.read())
            await response.aclose()

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                while not pool._slots.statistics().tasks_waiting:  # type: ignore[attr-defined]
                    await trio.sleep(0.01)  # until the waiter waits for the one connection
                assert answers == []
                held.release.set()
                assert await first.read() == b"data: first\n\ndata: last\n\n"
                await first.aclose()  # read to its end: reusable, but someone is waiting for a slot
        assert answers == [b"{}"]


async def test_max_idle_per_origin_zero_keeps_no_connection() -> None:
    async with pool_and_upstream(max_idle_per_origin=0) as (pool, held, url):
        for _ in range(2):
            response = await pool.send(post(url, b"quick"))
            await response.read()
            await response.aclose()
    assert len(set(held.clients)) == 2  # a new connection each time

    async with pool_and_upstream() as (pool, held, url):
        for _ in range(2):
            response = await pool.send(post(url, b"quick"))
            await response.read()
            await response.aclose()
    assert len(set(held.clients)) == 1  # kept and reused


async def test_an_answer_read_to_its_end_is_released_at_once_and_one_cut_short_is_not() -> None:
    """``release`` (what ``Exchange.close`` tries before a shielded ``aclose``): a complete answer's connection goes
    back to the pool without a wait and is reused; a stream cut short stays for ``aclose``, which closes it."""
    async with pool_and_upstream() as (pool, held, url):
        for _ in range(2):
            response = await pool.send(post(url, b"quick"))
            await response.read()
            assert response.release() is True
            assert response.release() is True  # once released, nothing is left to do
        assert len(set(held.clients)) == 1  # the released connection was reused

        stream = await pool.send(post(url))
        assert await stream.receive() == b"data: first\n\n"
        assert stream.release() is False  # its answer is not over: only closing it ends the upstream request
        await stream.aclose()
        held.release.set()
        response = await pool.send(post(url, b"quick"))
        await response.read()
        await response.aclose()
    assert len(set(held.clients)) == 2  # the cut stream's connection was closed, not reused

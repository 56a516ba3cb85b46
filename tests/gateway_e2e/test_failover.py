"""Failover, upstream key pools and breakers, through a served Relay, across real upstreams: a closed port, an
in-test server answering 503 (or 400), and ``relay mock-upstream --api-key good`` as a subprocess. What was
tried is read back from the request log's ``attempts``."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import trio

from relay.config import loads
from relay.http.messages import Request, Response, StreamResponse
from relay.mock.server import MockUpstream
from tests.conftest import process, serve_app, serve_relay
from tests.gateway_e2e.conftest import chat, logs, openai_channel, relay_toml
from tests.gateway_e2e.conftest import key_entry as key
from tests.helpers import KEY, Upstream, sse_data

GOOD = "good"


@pytest.fixture(scope="module")
def healthy() -> Iterator[str]:
    """``relay mock-upstream`` requiring the upstream key ``good``; its base URL."""
    with process("mock-upstream", "--port", "0", "--quiet", "--api-key", GOOD) as (_, address):
        yield f"http://{address}"


def closed_port() -> str:
    """The base URL of a port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Sick:
    """An upstream answering ``status`` (after ``delay`` seconds), or the mock's answer once ``healed``."""

    def __init__(self, status: int = 503, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.healed = False
        self.mock = MockUpstream()
        self.upstream = Upstream(self.handle)

    @property
    def count(self) -> int:
        return len(self.upstream.requests)

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        await trio.sleep(self.delay)
        if self.healed:
            return await self.mock.handle(request, stream)
        error = {"message": f"sick upstream {self.status}", "type": "server_error", "param": None, "code": None}
        return Response.json(self.status, {"error": error})


def config(store_url: str, channels: str, routing: str = "") -> object:
    return loads(relay_toml(store_url, channels=channels, keys=key("test", KEY), routing=routing))


async def test_refused_then_503_then_healthy_answers_200_and_logs_every_attempt(healthy: str, sqlite_url: str) -> None:
    sick = Sick(503)
    async with serve_app(sick.upstream) as sick_server:
        channels = (
            openai_channel("refused", closed_port(), priority=3)
            + openai_channel("sick", sick_server.url, priority=2)
            + openai_channel("healthy", healthy, priority=1, api_keys=(GOOD,))
        )
        async with serve_relay(config(sqlite_url, channels)) as relay:
            whole = await chat(relay.url, "fail over")
            assert whole.status == 200, whole.body
            assert whole.json()["choices"][0]["message"]["content"] == "Echo: fail over"
            streamed = await chat(relay.url, "fail over", stream=True)
            assert streamed.status == 200 and streamed.complete
            assert sse_data(streamed.body)[-1] == "[DONE]"
            assert sick.count == 2
            records = await logs(sqlite_url, 2)
    expected = (("refused", "upstream_connect_error"), ("sick", "503"), ("healthy", "ok"))
    assert [(r.attempts, r.channel, r.status) for r in records] == [(expected, "healthy", 200)] * 2


async def test_max_attempts_bounds_the_failover(healthy: str, sqlite_url: str) -> None:
    sick = Sick(503)
    async with serve_app(sick.upstream) as sick_server:
        channels = (
            openai_channel("refused", closed_port(), priority=3)
            + openai_channel("sick", sick_server.url, priority=2)
            + openai_channel("healthy", healthy, priority=1, api_keys=(GOOD,))
        )
        async with serve_relay(config(sqlite_url, channels, "max_attempts = 2")) as relay:
            answer = await chat(relay.url, "two tries only")
            [record] = await logs(sqlite_url, 1)
    assert answer.status == 503 and answer.json()["error"]["code"] == "upstream_unavailable"  # Relay's words
    assert record.attempts == (("refused", "upstream_connect_error"), ("sick", "503")) and record.status == 503


async def test_a_400_from_the_upstream_is_final(healthy: str, sqlite_url: str) -> None:
    bad = Sick(400)
    async with serve_app(bad.upstream) as bad_server:
        channels = openai_channel("bad", bad_server.url, priority=2) + openai_channel(
            "healthy", healthy, priority=1, api_keys=(GOOD,)
        )
        async with serve_relay(config(sqlite_url, channels)) as relay:
            answer = await chat(relay.url, "my own fault")
            assert answer.status == 400
            assert answer.json()["error"]["message"] == "the upstream rejected the request: sick upstream 400"
            [record] = await logs(sqlite_url, 1)
    assert record.attempts == (("bad", "400"),) and bad.count == 1


async def test_once_the_stream_started_nothing_is_retried(healthy: str, sqlite_url: str) -> None:
    spare = Sick(200)
    spare.healed = True
    async with serve_app(spare.upstream) as spare_server:
        channels = openai_channel("breaks", healthy, priority=2, api_keys=(GOOD,)) + openai_channel(
            "spare", spare_server.url, priority=1
        )
        async with serve_relay(config(sqlite_url, channels)) as relay:
            answer = await chat(relay.url, "cut me mock:drop_after=3", stream=True)
            [record] = await logs(sqlite_url, 1)
    assert answer.status == 200 and answer.complete
    frames = sse_data(answer.body)
    assert "[DONE]" not in frames and '"error"' in frames[-1]
    assert len(frames) == 4  # the three the upstream sent, then the error
    assert record.attempts == (("breaks", "upstream_truncated"),) and spare.count == 0
    assert record.status == 200 and record.error_kind is not None and record.end_kind == "upstream_truncated"


async def test_a_refused_upstream_key_is_set_aside(healthy: str, sqlite_url: str) -> None:
    channels = openai_channel("pool", healthy, api_keys=("bad", GOOD))
    async with serve_relay(config(sqlite_url, channels)) as relay:
        for _ in range(5):
            assert (await chat(relay.url)).status == 200
        records = await logs(sqlite_url, 5)
    assert [r.attempts for r in records] == [(("pool", "key_refused"), ("pool", "ok"))] + [(("pool", "ok"),)] * 4


async def test_breaker_opens_probes_once_half_open_and_closes_on_success(healthy: str, sqlite_url: str) -> None:
    sick = Sick(503)
    routing = "breaker_failures = 2\nbreaker_cooldown = 0.5"
    cooldown = 0.55
    async with serve_app(sick.upstream) as sick_server:
        channels = openai_channel("sick", sick_server.url, priority=2) + openai_channel(
            "healthy", healthy, priority=1, api_keys=(GOOD,)
        )
        async with serve_relay(config(sqlite_url, channels, routing)) as relay:
            both = (("sick", "503"), ("healthy", "ok"))
            only_healthy = (("healthy", "ok"),)

            async def attempts(count: int) -> list[tuple[tuple[str, str], ...]]:
                """The attempts of the next ``count`` requests (sent one after the other)."""
                for _ in range(count):
                    assert (await chat(relay.url)).status == 200
                return [r.attempts for r in (await logs(sqlite_url, seen + count))[seen:]]

            seen = 0
            assert await attempts(3) == [both, both, only_healthy]  # two failures open it
            assert sick.count == 2
            seen = 3

            await trio.sleep(cooldown)  # half-open: one probe, while the others keep away
            sick.delay = 0.3
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(chat, relay.url)
                    await trio.sleep(0.02)
            sick.delay = 0.0
            probes = [r.attempts for r in (await logs(sqlite_url, 7))[3:]]
            assert sorted(probes) == sorted([both, only_healthy, only_healthy, only_healthy])
            assert sick.count == 3
            seen = 7
            assert await attempts(1) == [only_healthy]  # the failed probe opened it again
            seen = 8

            sick.healed = True
            await trio.sleep(cooldown)
            assert await attempts(2) == [(("sick", "ok"),), (("sick", "ok"),)]  # a good probe closes it
            assert sick.count == 5


async def test_a_timeout_before_the_first_byte_moves_on(healthy: str, sqlite_url: str) -> None:
    """An upstream that does not answer within its channel's ``first_byte`` timeout: the next channel answers."""
    slow = Sick(503, delay=5.0)
    async with serve_app(slow.upstream) as slow_server:
        channels = openai_channel("slow", slow_server.url, priority=2, first_byte=0.2) + openai_channel(
            "healthy", healthy, priority=1, api_keys=(GOOD,)
        )
        async with serve_relay(config(sqlite_url, channels)) as relay:
            started = trio.current_time()
            answer = await chat(relay.url, "are you there")
            waited = trio.current_time() - started
            assert answer.status == 200, answer.body
            [record] = await logs(sqlite_url, 1)
    assert record.attempts == (("slow", "upstream_timeout"), ("healthy", "ok"))
    assert slow.count == 1 and waited < 3.0  # the slow upstream's 5 s were not waited for

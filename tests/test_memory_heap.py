"""RSS comes back after a burst of large requests: once they are over and the server is quiet, the heap glibc kept
is given back (``relay.http.heap``). Before, 64 requests of 2 MB left RSS at 8x its idle level for good."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest
import trio
import trio.testing

from relay.http import heap
from relay.http.heap import QUIET, HeapTrimmer
from relay.http.messages import Request, Response, StreamResponse
from tests.conftest import KEY, openai_channel_toml, process, serve_app
from tests.helpers import Upstream, write

REQUESTS = 32
BODY_MB = 2


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _large_request(port: int, stream: bool) -> bytes:
    text = ("The quick brown fox jumps over the lazy dog. " * (BODY_MB * 1_000_000 // 45 + 1))[: BODY_MB * 1_000_000]
    body = orjson.dumps({"model": "mock-1", "stream": stream, "messages": [{"role": "user", "content": text}]})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {KEY}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(port: int, request: bytes, statuses: list[bytes]) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        first = b""
        while data := await stream.receive_some(65536):
            first = first or data[:12]
    statuses.append(first)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; malloc_trim is glibc's")
async def test_rss_comes_back_after_a_burst_of_large_requests(tmp_path: Path, mock_upstream: str) -> None:
    config = write(tmp_path, openai_channel_toml(mock_upstream))
    with process("serve", "--config", str(config), "--listen", "127.0.0.1:0") as (relay, address):
        port = int(address.rsplit(":", 1)[1])
        statuses: list[bytes] = []
        await _exchange(port, _small_request(port), statuses)  # warm-up
        await trio.sleep(0.5)
        before = _rss_kib(relay.pid)
        requests = [_large_request(port, i % 2 == 1) for i in range(REQUESTS)]
        statuses.clear()
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for request in requests:
                    nursery.start_soon(_exchange, port, request, statuses)
        del requests
        assert statuses == [b"HTTP/1.1 200"] * REQUESTS
        await trio.sleep(QUIET + 1.5)  # idle: the trim comes QUIET seconds after the last large request
        after = _rss_kib(relay.pid)
    # glibc alone gives the heap back or not depending on where the last blocks it kept lie: python -m
    # bench.stream_memory --burst 64 measured 6x to 8x before after 5 s idle; this smaller burst it often returns.
    assert after <= before * 1.2, f"RSS {before} KiB before the burst, {after} KiB after"


def _small_request(port: int) -> bytes:
    body = orjson.dumps({"model": "mock-1", "messages": [{"role": "user", "content": "hello"}]})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {KEY}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, pad: int) -> int:
        self.calls += 1
        return 1


async def test_the_heap_is_trimmed_once_large_requests_are_over_and_quiet_at_most_once_a_period(
    mock_clock: trio.testing.MockClock,
) -> None:
    """On trio's MockClock, jumping once every task waited 50 ms (the trim's thread returns well before): its
    minutes take well under a second."""
    mock_clock.autojump_threshold = 0.05
    trim = _Counting()
    heap = HeapTrimmer(quiet=1.0, every=5.0, trim=trim)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(heap.run)
        heap.begin()
        heap.begin()
        heap.end()
        await trio.sleep(3)
        assert trim.calls == 0  # one is still in flight
        heap.end()
        await trio.sleep(0.5)
        assert trim.calls == 0  # not quiet yet
        await trio.sleep(1)
        assert trim.calls == 1
        heap.begin()
        heap.end()
        await trio.sleep(2)
        assert trim.calls == 1  # at most once per 5 s
        await trio.sleep(4)
        assert trim.calls == 2
        await trio.sleep(60)
        assert trim.calls == 2  # nothing large since: nothing to give back
        nursery.cancel_scope.cancel()


async def test_large_requests_served_are_followed_by_a_trim_once_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    trim = _Counting()
    monkeypatch.setattr(heap, "_malloc_trim", lambda: trim)
    handled: list[int] = []

    async def handler(request: Request, stream: StreamResponse) -> Response:
        handled.append(len(request.body))
        return Response(200, b"ok")

    async with serve_app(Upstream(handler)) as served:
        with trio.fail_after(10):
            await _exchange(served.port, _raw_post(served.port, b"x" * 10), [])
            await trio.sleep(QUIET + 0.5)
            assert trim.calls == 0  # small requests: nothing to give back
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(_exchange, served.port, _raw_post(served.port, b"x" * (300 * 1024)), [])
            assert trim.calls == 0  # not on the requests' path
            await trio.sleep(QUIET + 0.5)
            assert trim.calls == 1  # one trim for the three, once the server was quiet
    assert handled == [10] + [300 * 1024] * 3


async def test_a_large_answer_to_a_small_request_is_followed_by_a_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    trim = _Counting()
    monkeypatch.setattr(heap, "_malloc_trim", lambda: trim)

    async def handler(request: Request, stream: StreamResponse) -> Response:
        return Response(200, b"x" * (300 * 1024))

    async with serve_app(Upstream(handler)) as served:
        with trio.fail_after(10):
            await _exchange(served.port, _raw_post(served.port, b"{}"), [])
            await trio.sleep(QUIET + 0.5)
    assert trim.calls == 1


def _raw_post(port: int, body: bytes) -> bytes:
    head = f"POST /x HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    return head.encode() + body


async def test_a_large_stream_stops_counting_when_its_answer_starts_and_only_once() -> None:
    heap = HeapTrimmer(trim=_Counting())
    request = Request("POST", "/v1/chat/completions", "", [], b"x" * (300 * 1024), "test")
    large = heap.large(request)
    assert heap._in_flight == 1
    request.let_go()  # the stream's head went out: its copies are freed
    assert heap._in_flight == 0
    large.release()  # and the connection's own release when the stream is over counts nothing more
    assert heap._in_flight == 0

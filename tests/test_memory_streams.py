"""An open stream lets go of its request once its answer starts: no failover can follow, so the body's bytes, its
parsed payload, the IR of a conversion and the body written for the upstream are not needed any more, and a stream
that lasts minutes must not hold them (docs/performance.md, memory per open stream).

Relay runs in this process under ``tracemalloc``; the upstream is ``relay mock-upstream`` in a process of its own, so
only what Relay holds is counted. Each stream's prompt is large (``PROMPT`` bytes) so that a copy of it stands out
from what a stream holds anyway (its coroutines, sockets and parser states: a few dozen KiB).
"""

from __future__ import annotations

import gc
import tracemalloc

import orjson
import pytest
import trio

from relay.config import loads
from relay.http.messages import Request
from tests.conftest import KEY, serve_relay
from tests.helpers import upstream_relay_toml

PROMPT = 256 * 1024
STREAMS = 8
#: Frames each stream reads before the measure: the answer has started, the stream is well under way.
FRAMES = 5

CHANNELS = (
    ("chat", "openai", "/v1", 'api = "chat"\n', "chat-1"),
    ("claude", "anthropic", "", "", "claude-1"),
)


def _request(model: str, directives: str = "mock:chunks=100000 mock:delay_ms=20") -> bytes:
    text = directives + " " + "lorem ipsum dolor sit amet " * (PROMPT // 27)
    body = orjson.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": text}]})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: relay\r\nauthorization: Bearer {KEY}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def _warm_up(port: int, model: str) -> None:
    """One short stream, so that what Relay sets up on its first request (imports, the upstream pool) is not
    counted."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(_request(model, "mock:chunks=3"))
        data = b""
        with trio.fail_after(30):
            while b"data: [DONE]" not in data:
                data = data[-16:] + await stream.receive_some(65536)


async def _open(port: int, request: bytes, opened: trio.Semaphore, nursery: trio.Nursery) -> None:
    """Send ``request``, read until ``FRAMES`` frames came, then keep the stream open (and read) until cancelled."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        seen = 0
        while seen < FRAMES:
            data = await stream.receive_some(65536)
            assert data, "the stream ended early"
            assert seen or data.startswith(b"HTTP/1.1 200 "), data[:200]
            seen += data.count(b"data: ")
        opened.release()
        while await stream.receive_some(65536):
            pass


@pytest.mark.parametrize("model", ["chat-1", "claude-1"])  # passthrough (Chat to Chat), and converted
async def test_an_open_stream_holds_nothing_of_its_request(mock_upstream: str, model: str) -> None:
    config = loads(upstream_relay_toml(mock_upstream, channels=CHANNELS))
    requests = [_request(model) for _ in range(STREAMS)]  # the client's copies: made before the measure
    async with serve_relay(config) as served, trio.open_nursery() as nursery:
        await _warm_up(served.port, model)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            opened = trio.Semaphore(0)
            for request in requests:
                nursery.start_soon(_open, served.port, request, opened, nursery)
            with trio.fail_after(30):
                for _ in requests:
                    await opened.acquire()
            gc.collect()
            held = (tracemalloc.get_traced_memory()[0] - before) / STREAMS
        finally:
            tracemalloc.stop()
        nursery.cancel_scope.cancel()
    # Before: the body, its payload and (converted) its IR stayed with the stream: 3 to 4 copies of the prompt.
    assert held < PROMPT / 4, f"{held / 1024:.0f} KiB held per stream for a {PROMPT // 1024} KiB prompt"


class _Held:
    def __init__(self) -> None:
        self.released = 0

    def release(self) -> None:
        self.released += 1


def test_letting_go_of_a_request_empties_its_body_and_headers_and_releases_what_was_retained_once() -> None:
    request = Request("POST", "/v1/chat/completions", "", [(b"x-a", b"b")], b"{}" * 100, "test")
    held = _Held()
    request.retain(held)
    request.let_go()
    request.let_go()
    assert request.body == b""
    assert request.headers == []
    assert held.released == 1
    assert request.retained == []

"""The per-frame path of a relayed stream: what it does not do per frame, and that doing less kept its semantics.

Through real sockets: a Relay served in-process, an upstream on a loopback socket (``relay mock-upstream`` in
its own process, so that only Relay's own work is counted here, or an in-test upstream).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import h11
import httpx
import pytest
import trio
import trio._core._run as trio_run

from tests.conftest import openai_channel_config, serve_app, serve_relay
from tests.helpers import (
    AUTH,
    Upstream,
    assert_openai_error,
    chat,
    raw_request,
    shared_mock_upstream,  # noqa: F401  (a fixture)
    sse_data,
    sse_frame,
)

SSE = [(b"content-type", b"text/event-stream")]


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Iterator[list[int]]:
    """Count the calls of ``owner.name`` (a method or a constructor) while the block runs: ``[count]``."""
    seen = [0]
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen[0] += 1
        return original(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(owner, name, counted)
        yield seen


async def stream_through(relay_url: str, content: str) -> list[str]:
    """One streamed chat completion through the relay: its events' data."""
    body = json.dumps(chat(content, stream=True)).encode()
    with trio.fail_after(20):
        r = await raw_request(relay_url, "POST", "/v1/chat/completions", headers=AUTH, body=body)
    assert r.status == 200 and r.complete, r.body[:300]
    return sse_data(r.body)


async def test_the_upstream_leg_builds_no_httpx_object(shared_mock_upstream, monkeypatch):  # noqa: F811
    """Requests and streams to the upstream go through Relay's own small types (relay.upstream.response)."""
    async with serve_relay(openai_channel_config(shared_mock_upstream)) as relay:
        with (
            counting(monkeypatch, httpx.Request, "__init__") as requests,
            counting(monkeypatch, httpx.Response, "__init__") as responses,
            counting(monkeypatch, httpx.Headers, "__init__") as headers,
        ):
            events = await stream_through(relay.url, "mock:chunks=20 " + "word " * 50)
            with trio.fail_after(20):
                whole = await raw_request(
                    relay.url, "POST", "/v1/chat/completions", headers=AUTH, body=json.dumps(chat("hi")).encode()
                )
    assert events[-1] == "[DONE]" and len(events) > 20
    assert whole.status == 200 and whole.json()["object"] == "chat.completion"
    assert (requests[0], responses[0], headers[0]) == (0, 0, 0)


async def test_a_longer_stream_opens_no_more_cancel_scopes_nor_deadlines(shared_mock_upstream, monkeypatch):  # noqa: F811
    """A stream's frames are relayed in one cancel scope whose deadline rarely moves: 400 frames cost no more
    scopes (nor entries in trio's deadline heap) than 50. (Before: three scopes per frame.)"""
    counts: dict[int, tuple[int, int]] = {}
    async with serve_relay(openai_channel_config(shared_mock_upstream)) as relay:
        await stream_through(relay.url, "mock:chunks=5 warm up")  # the pooled connection, the first-use caches
        for chunks in (50, 400):
            with (
                counting(monkeypatch, trio.CancelScope, "__enter__") as scopes,
                counting(monkeypatch, trio_run.Deadlines, "add") as deadlines,
            ):
                events = await stream_through(relay.url, f"mock:chunks={chunks} mock:delay_ms=1 " + "word " * 500)
            assert len(events) > chunks
            counts[chunks] = (scopes[0], deadlines[0])
    (scopes_50, deadlines_50), (scopes_400, deadlines_400) = counts[50], counts[400]
    assert scopes_400 - scopes_50 < 20, counts
    assert deadlines_400 - deadlines_50 < 20, counts


async def test_frames_a_slow_client_could_not_take_at_once_follow_whole_and_in_order():
    """A client that stops reading: the frames the socket could not take are kept and written, in order, once
    it reads again; the chunked framing stays whole (h11 parses it here)."""
    frames = [sse_frame({"n": n, "pad": "x" * 60_000}) for n in range(60)]

    async def flood(request: Any, stream: Any) -> None:
        await stream.start(200, SSE)
        for frame in frames:
            await stream.send(frame)
        await stream.send(sse_frame("[DONE]"))

    body = json.dumps(chat(stream=True)).encode()
    async with serve_app(Upstream(flood)) as up, serve_relay(openai_channel_config(up.url)) as relay:
        host, port = relay.url.removeprefix("http://").rsplit(":", 1)
        client = await trio.open_tcp_stream(host, int(port))
        conn = h11.Connection(h11.CLIENT)
        head = [("host", "relay"), ("content-length", str(len(body))), *AUTH.items()]
        async with client:
            request = h11.Request(method="POST", target="/v1/chat/completions", headers=head)
            await client.send_all(conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            await trio.sleep(1.0)  # every buffer on the way fills; the relay's writes wait
            received: list[bytes] = []
            with trio.fail_after(20):
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await client.receive_some(65536))
                    elif isinstance(event, h11.Data):
                        received.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        assert isinstance(event, h11.Response) and event.status_code == 200, event
    events = sse_data(b"".join(received))
    assert events[-1] == "[DONE]"
    assert [json.loads(e)["n"] for e in events[:-1]] == list(range(60))


async def test_an_upstream_silent_for_idle_mid_stream_is_told_within_an_eighth_of_idle(shared_mock_upstream):  # noqa: F811
    """The idle deadline moves only now and then, never early: frames 0.1 s apart for over a second (longer than
    ``idle``) pass, and the silence after them ends the stream between ``idle`` and ``idle`` and an eighth."""
    idle = 0.4
    timeouts = f"[channels.timeouts]\nconnect = 2\nfirst_byte = 2\nidle = {idle}\ntotal = 10\n"
    text = "mock:chunks=14 mock:delay_ms=100 mock:stall_after=12 " + "word " * 50
    body = json.dumps(chat(text, stream=True)).encode()
    async with serve_relay(openai_channel_config(shared_mock_upstream, extra=timeouts)) as relay:
        host, port = relay.url.removeprefix("http://").rsplit(":", 1)
        client = await trio.open_tcp_stream(host, int(port))
        conn = h11.Connection(h11.CLIENT)
        head = [("host", "relay"), ("content-length", str(len(body))), *AUTH.items()]
        arrivals: list[tuple[float, bytes]] = []
        async with client:
            request = h11.Request(method="POST", target="/v1/chat/completions", headers=head)
            await client.send_all(conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            with trio.fail_after(10):
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await client.receive_some(65536))
                    elif isinstance(event, h11.Data):
                        arrivals.append((trio.current_time(), bytes(event.data)))
                    elif isinstance(event, h11.EndOfMessage):
                        break
    events = [(at, json.loads(e)) for at, data in arrivals for e in sse_data(data)]
    *chunks, (failed_at, last) = events
    assert_openai_error(last, code="upstream_idle_timeout")
    assert len(chunks) >= 12, [c for _, c in chunks]
    assert chunks[-1][0] - chunks[0][0] > idle * 2  # the stream lived well past one idle period
    silence = failed_at - chunks[-1][0]
    assert idle - 0.02 <= silence <= idle * 1.125 + 0.25, silence


async def test_an_http10_client_gets_the_stream_unchunked(shared_mock_upstream):  # noqa: F811
    """The writer frames chunks itself only where h11 chose chunked framing: an HTTP/1.0 client gets the events
    as they are, the end of the stream being the end of the connection."""
    body = json.dumps(chat("mock:chunks=5 " + "word " * 20, stream=True)).encode()
    async with serve_relay(openai_channel_config(shared_mock_upstream)) as relay:
        host, port = relay.url.removeprefix("http://").rsplit(":", 1)
        client = await trio.open_tcp_stream(host, int(port))
        head = (
            f"POST /v1/chat/completions HTTP/1.0\r\nhost: relay\r\nauthorization: {AUTH['authorization']}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        received = b""
        async with client:
            await client.send_all(head + body)
            with trio.fail_after(20):
                while data := await client.receive_some(65536):
                    received += data
    status, _, rest = received.partition(b"\r\n")
    headers, _, answer = rest.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200") and b"transfer-encoding" not in headers.lower()
    assert answer.startswith(b"data: {") and answer.endswith(b"data: [DONE]\n\n"), answer[-200:]
    events = sse_data(answer)
    assert events[-1] == "[DONE]" and all(json.loads(e)["object"] == "chat.completion.chunk" for e in events[:-1])

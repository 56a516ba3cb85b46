"""Streams: events forwarded at once; a client that stops reading stops the upstream; one that leaves closes it."""

import json
import socket

import httpx
import pytest
import trio

from tests.conftest import openai_channel_config, serve_app, serve_relay
from tests.helpers import AUTH, Upstream, chat, sse_data, sse_frame

SSE = [(b"content-type", b"text/event-stream")]
MiB = 1024 * 1024


def _chunk(text: str, model: str = "mock-1") -> bytes:
    return sse_frame({"object": "chat.completion.chunk", "model": model, "choices": [{"delta": {"content": text}}]})


@pytest.mark.parametrize("model", ["mock-1", "fast"])  # passthrough, and the renaming path
async def test_each_event_reaches_the_client_before_the_upstream_sends_the_next(model):
    release = trio.Event()

    async def one_then_wait(request, stream):
        await stream.start(200, SSE)
        await stream.send(_chunk("first"))
        await release.wait()
        await stream.send(_chunk("second") + sse_frame("[DONE]"))

    async with serve_app(Upstream(one_then_wait)) as up, serve_relay(openai_channel_config(up.url)) as relay:
        async with httpx.AsyncClient(base_url=relay.url, headers=AUTH) as client:
            request = chat(model=model, stream=True)
            async with client.stream("POST", "/v1/chat/completions", json=request) as r:
                assert r.status_code == 200
                received = b""
                chunks = r.aiter_raw()
                with trio.fail_after(2):  # the upstream is blocked until the test releases it
                    while b"\n\n" not in received:
                        received += await anext(chunks)
                assert not release.is_set()
                first = [json.loads(d) for d in sse_data(received)]
                assert [c["choices"][0]["delta"]["content"] for c in first] == ["first"]
                assert first[0]["model"] == model
                release.set()
                async for piece in chunks:
                    received += piece
    assert sse_data(received)[-1] == "[DONE]"
    assert json.loads(sse_data(received)[1])["choices"][0]["delta"]["content"] == "second"


async def _open_and_read_head(url: str, body: bytes) -> tuple[trio.SocketStream, bytes]:
    """A raw client with a small receive buffer: sends the request, reads the response head, then stops."""
    host, port = url.removeprefix("http://").split(":")
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    await sock.connect((host, int(port)))
    stream = trio.SocketStream(sock)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\nauthorization: {AUTH['authorization']}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    await stream.send_all(head + body)
    received = b""
    with trio.fail_after(2):
        while b"\r\n\r\n" not in received:
            received += await stream.receive_some(1024)
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    return stream, received.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("model", ["mock-1", "fast"])
async def test_a_client_that_stops_reading_stops_the_upstream(model):
    event = _chunk("x" * MiB)
    total = 200  # 200 MiB if nothing held the upstream back
    written = 0
    stop = False
    finished = trio.Event()

    async def flood(request, stream):
        nonlocal written
        await stream.start(200, SSE)
        for _ in range(total):
            if stop:
                break
            await stream.send(event)
            written += len(event)
        await stream.send(sse_frame("[DONE]"))
        finished.set()

    async with serve_app(Upstream(flood)) as up, serve_relay(openai_channel_config(up.url)) as relay:
        client, received = await _open_and_read_head(relay.url, json.dumps(chat(model=model, stream=True)).encode())
        async with client:
            # Wait until the upstream's count stops growing: every buffer on the way is full.
            with trio.move_on_after(2.5):
                last = -1
                while written != last:
                    last = written
                    await trio.sleep(0.3)
            assert written == last, f"the upstream kept writing: {written} bytes"
            assert written < 16 * MiB, f"{written / MiB:.1f} MiB buffered on the way"
            assert not finished.is_set()
            # Once the client reads again, the stream resumes and ends properly. (The upstream is told
            # to stop first: the relay closing an upstream with data in flight meets an RST, see below.)
            stop = True
            with trio.fail_after(2.5):
                while not received.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"):
                    data = await client.receive_some(MiB)
                    assert data, "the relay closed the stream early"
                    received += data
        assert finished.is_set()
        assert written <= len(received) < written + MiB


async def test_a_client_that_leaves_mid_stream_closes_the_upstream_request():
    closed = trio.Event()
    outcome = []

    async def one_then_hang(request, out):
        try:
            await out.start(200, SSE)
            await out.send(_chunk("first"))
            await trio.sleep_forever()
        except trio.Cancelled:
            outcome.append("cancelled")
            raise
        finally:
            closed.set()

    async with serve_app(Upstream(one_then_hang)) as up, serve_relay(openai_channel_config(up.url)) as relay:
        async with httpx.AsyncClient(base_url=relay.url, headers=AUTH) as client:
            async with client.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as r:
                with trio.fail_after(2):
                    assert b"first" in await anext(r.aiter_raw())
            assert not closed.is_set()
        # The client's connection is closed: the relay must close its upstream request in turn.
        with trio.fail_after(2):
            await closed.wait()
        assert outcome == ["cancelled"]


async def test_a_client_that_leaves_before_the_answer_closes_the_upstream_request():
    waiting = trio.Event()
    closed = trio.Event()

    async def hang(request, out):
        try:
            waiting.set()
            await trio.sleep_forever()
        finally:
            closed.set()

    async with serve_app(Upstream(hang)) as up, serve_relay(openai_channel_config(up.url)) as relay:
        host, port = relay.url.removeprefix("http://").split(":")
        body = json.dumps(chat()).encode()
        client = await trio.open_tcp_stream(host, int(port))
        async with client:
            await client.send_all(
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: "
                + AUTH["authorization"].encode()
                + b"\r\ncontent-length: %d\r\n\r\n" % len(body)
                + body
            )
            with trio.fail_after(2):
                await waiting.wait()
        with trio.fail_after(2):
            await closed.wait()


async def _stream_then_reset(relay_url: str) -> None:
    """A client that reads the head of a busy stream, then closes with unread data (the kernel sends RST)."""
    client, _ = await _open_and_read_head(relay_url, json.dumps(chat(stream=True)).encode())
    await trio.sleep(0.1)
    client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    await client.aclose()


async def test_a_client_that_resets_mid_stream_does_not_take_the_relay_down():
    async def flood(request, stream):
        await stream.start(200, SSE)
        while True:
            await stream.send(_chunk("x" * 65536))

    async with serve_app(Upstream(flood)) as up, serve_relay(openai_channel_config(up.url)) as relay:
        for _ in range(5):
            await _stream_then_reset(relay.url)
            await trio.sleep(0.05)
        async with httpx.AsyncClient(base_url=relay.url, headers=AUTH) as client:
            r = await client.get("/v1/models")
        assert r.status_code == 200

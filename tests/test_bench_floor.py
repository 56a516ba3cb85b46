"""bench.floor, the forwarders the benchmarks measure as the floor of Relay's stack: on one client connection
each relays a sized answer and then a chunked stream whose last chunk arrives in a write of its own, keep-alive
on both sides, and closes the upstream connection when the client leaves. The bare forwarder passes the bytes
as they came; the h11 one re-frames them, so its answers are checked as HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import h11
import pytest
import trio

from bench.floor import forward, forward_h11

SIZED = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED_PIECES = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"6\r\ndata: \r\n",
    b"3\r\none\r\n",
    b"0\r\n\r\n",  # the last chunk alone: the end is found across reads
)

Forward = Callable[[trio.SocketStream, tuple[str, int]], Awaitable[None]]


def request(body: bytes) -> bytes:
    return b"POST /v1/x HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % len(body) + body


async def read_answer(client: trio.SocketStream, reader: h11.Connection) -> tuple[bytes, bytes]:
    """One answer off the client's connection: (its raw bytes, its body as HTTP says)."""
    raw, body = b"", b""
    while True:
        event = reader.next_event()
        if event is h11.NEED_DATA:
            data = await client.receive_some(4096)
            raw += data
            reader.receive_data(data)
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            reader.start_next_cycle()
            return raw, body
        else:
            assert isinstance(event, h11.Response) and event.status_code == 200


@pytest.mark.parametrize("relay", [forward, forward_h11], ids=["bare", "h11"])
async def test_floor_relays_sized_and_chunked_answers_on_one_connection(relay: Forward) -> None:
    seen: list[bytes] = []
    upstream_closed = trio.Event()

    async def upstream(stream: trio.SocketStream) -> None:
        buffer = b""
        answers = [[SIZED], list(CHUNKED_PIECES)]
        while answers:
            while b"\r\n\r\n" not in buffer or not buffer.endswith((b"first", b"second")):
                more = await stream.receive_some(4096)
                assert more, "the floor closed its upstream connection before its second request"
                buffer += more
            seen.append(buffer)
            buffer = b""
            for piece in answers.pop(0):
                await stream.send_all(piece)
                await trio.sleep(0.01)
        assert await stream.receive_some(4096) == b""  # the client left: the floor closes this side too
        upstream_closed.set()

    async with trio.open_nursery() as nursery:
        (up,) = await nursery.start(partial(trio.serve_tcp, upstream, 0, host="127.0.0.1"))
        address = up.socket.getsockname()[:2]
        (floor,) = await nursery.start(partial(trio.serve_tcp, partial(relay, upstream=address), 0, host="127.0.0.1"))
        client = await trio.open_tcp_stream(*floor.socket.getsockname()[:2])
        reader = h11.Connection(h11.CLIENT)
        reader.send(h11.Request(method="GET", target="/", headers=[("host", "test")]))  # what it reads answers
        reader.send(h11.EndOfMessage())
        await client.send_all(request(b"first"))
        with trio.fail_after(5):
            sized_raw, sized = await read_answer(client, reader)
        reader.send(h11.Request(method="GET", target="/", headers=[("host", "test")]))
        reader.send(h11.EndOfMessage())
        await client.send_all(request(b"second"))
        with trio.fail_after(5):
            chunked_raw, chunked = await read_answer(client, reader)
        assert (sized, chunked) == (b"hello", b"data: one")
        if relay is forward:
            assert (sized_raw, chunked_raw) == (SIZED, b"".join(CHUNKED_PIECES))
        await client.aclose()
        with trio.fail_after(5):
            await upstream_closed.wait()
        nursery.cancel_scope.cancel()
    assert [s.endswith(b"first") for s in seen] == [True, False]
    assert seen[1].startswith(b"POST /v1/x HTTP/1.1\r\n") and seen[1].endswith(b"second")

"""``python -m bench.floor``: the floor of Relay's stack, a forwarding proxy that does nothing but forward.

It is what any relay written on trio in CPython must at least spend, and so the lower bound of every figure the
benchmarks report for Relay. Per connection, one trio task: read a request head and its ``Content-Length``
body, send them on the connection's own upstream connection (opened at its first request), and copy the answer
back: a sized one whole, a chunked one as its bytes arrive until the chunked body's last chunk, then the next
request (keep-alive on both sides). No parsing beyond heads' ends and bodies' lengths, no HTTP library, no keys,
no routes, no log, no usage read from the frames, and no second task watching whether the client left (a real
relay needs one: without it a client that hangs up is noticed only at the next write).

With ``--h11`` (``forward_h11``) both legs are spoken through h11, the HTTP library Relay is built on: the floor
of a relay on h11. ``python -m bench --floor`` measures both beside Relay, ``python -m bench.fanout --floor``
(``--floor-h11``) one of them in Relay's place. Prints ``listening on HOST:PORT``.
"""

from __future__ import annotations

import argparse
import socket
from functools import partial

import h11
import trio

HEAD_END = b"\r\n\r\n"
CHUNKED_END = b"\r\n0\r\n\r\n"
RECEIVE_SIZE = 65536


class Reader:
    """A socket's bytes, read as messages: a head and a ``Content-Length`` body, or what is there."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def fill(self) -> bool:
        more = await self.stream.receive_some(RECEIVE_SIZE)
        self.buffer += more
        return bool(more)

    async def head(self) -> bytes | None:
        """The next head (up to and with its blank line), or None at EOF."""
        while (end := self.buffer.find(HEAD_END)) < 0:
            if not await self.fill():
                return None
        head, self.buffer = self.buffer[: end + 4], self.buffer[end + 4 :]
        return head

    async def exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not await self.fill():
                return None
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def take(self) -> bytes:
        data, self.buffer = self.buffer, b""
        return data


def content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return None


async def forward(client: trio.SocketStream, upstream: tuple[str, int]) -> None:
    """Requests of one client connection, in turn, on one upstream connection (opened at the first)."""
    requests = Reader(client)
    answers: Reader | None = None
    async with client:
        while (head := await requests.head()) is not None:
            body = await requests.exactly(content_length(head) or 0)
            if body is None:
                return
            if answers is None:
                sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
                await sock.connect(upstream)
                answers = Reader(trio.SocketStream(sock))
            await answers.stream.send_all(head + body)
            if not await answer(answers, client):
                break
    if answers is not None:
        await answers.stream.aclose()


async def answer(answers: Reader, client: trio.SocketStream) -> bool:
    """Copy one answer to the client: a sized one whole, else every byte until the end of its chunked body
    (or of the connection). False when the upstream connection is over."""
    head = await answers.head()
    if head is None:
        return False
    length = content_length(head)
    if length is not None:
        body = await answers.exactly(length)
        if body is None:
            return False
        await client.send_all(head + body)
        return True
    data = head + answers.take()
    tail = b""
    while True:
        if data:
            await client.send_all(data)
        tail = (tail + data)[-len(CHUNKED_END) :]
        if tail == CHUNKED_END:
            return True
        more = await answers.stream.receive_some(RECEIVE_SIZE)
        if not more:
            return False
        data = more


async def next_event(conn: h11.Connection, stream: trio.SocketStream) -> h11.Event | type[h11.PAUSED]:
    """h11's next event, reading the socket as it needs (an EOF is given to h11, which says what it means)."""
    while (event := conn.next_event()) is h11.NEED_DATA:
        conn.receive_data(await stream.receive_some(RECEIVE_SIZE))
    return event


async def forward_h11(client: trio.SocketStream, upstream: tuple[str, int]) -> None:
    """``forward`` with both legs spoken through h11, as Relay speaks them: the floor of a relay built on h11."""
    server = h11.Connection(h11.SERVER)
    up: trio.SocketStream | None = None
    async with client:
        while isinstance(request := await next_event(server, client), h11.Request):
            parts = []
            while isinstance(event := await next_event(server, client), h11.Data):
                parts.append(event.data)
            if not isinstance(event, h11.EndOfMessage):
                return
            if up is None:
                sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
                await sock.connect(upstream)
                up = trio.SocketStream(sock)
                upper = h11.Connection(h11.CLIENT)
            out = upper.send(h11.Request(method=request.method, target=request.target, headers=request.headers))
            await up.send_all(out + upper.send(h11.Data(data=b"".join(parts))) + upper.send(h11.EndOfMessage()))
            response = await next_event(upper, up)
            if not isinstance(response, h11.Response):
                return
            await client.send_all(server.send(h11.Response(status_code=response.status_code, headers=response.headers)))
            while isinstance(event := await next_event(upper, up), h11.Data):
                await client.send_all(server.send(event))
            if not isinstance(event, h11.EndOfMessage):
                return
            await client.send_all(server.send(h11.EndOfMessage()))
            server.start_next_cycle()
            upper.start_next_cycle()
    if up is not None:
        await up.aclose()


async def serve(listen: tuple[str, int], upstream: tuple[str, int], *, with_h11: bool = False) -> None:
    listeners = await trio.open_tcp_listeners(listen[1], host=listen[0], backlog=4096)
    host, port = listeners[0].socket.getsockname()[:2]
    print(f"bench.floor: listening on {host}:{port}", flush=True)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            await (forward_h11 if with_h11 else forward)(stream, upstream)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass

    await trio.serve_listeners(handle, listeners)


def address(value: str) -> tuple[str, int]:
    host, _, port = value.removeprefix("http://").rstrip("/").rpartition(":")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, type=address, help="HOST:PORT (or http://HOST:PORT)")
    parser.add_argument("--listen", default="127.0.0.1:0", type=address, help="HOST:PORT (127.0.0.1:0)")
    parser.add_argument("--h11", action="store_true", help="speak both legs through h11 (forward_h11)")
    args = parser.parse_args()
    try:
        trio.run(partial(serve, args.listen, args.upstream, with_h11=args.h11))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

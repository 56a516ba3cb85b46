"""Slow clients: the write deadline, the bound on unsent bytes, and the per-address cap on pending heads."""

import socket

import trio

from relay.http.connection import Connection, Shutdown
from relay.http.limits import Limits
from relay.http.messages import Request, Response, StreamResponse
from tests.conftest import config_from, serve_app, serve_relay
from tests.http.apps import SlowStreamApp
from tests.http.raw import Client, connect, request


class Flood:
    """Streams 1 KiB pieces as fast as the client takes them, counting what the server accepted."""

    def __init__(self) -> None:
        self.sent = 0
        self.ended = trio.Event()
        self.error: BaseException | None = None

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        await stream.start(200, [(b"content-type", b"text/plain")])
        try:
            while True:
                await stream.send(b"x" * 1024)
                self.sent += 1024
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.ended.set()

    def error(self, status: int, message: str, path: str | None, *, code: str | None = None) -> Response:
        return Response(status, message.encode())


async def non_reading_client(host: str, port: int, receive_buffer: int = 4096) -> trio.SocketStream:
    """A connection that sends a request and then never reads (``receive_buffer`` 0: the kernel's)."""
    sock = trio.socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    await sock.connect((host, port))
    stream = trio.SocketStream(sock)
    await stream.send_all(request("GET", "/flood"))
    return stream


async def test_a_client_that_takes_no_bytes_is_dropped_after_the_write_timeout():
    app = Flood()
    async with serve_app(app, Limits(write_timeout=0.5)) as served:
        stream = await non_reading_client(served.host, served.port)
        try:
            with trio.fail_after(5):  # without a write deadline the write waits for ever
                await app.ended.wait()
            assert isinstance(app.error, trio.BrokenResourceError)
            assert "write_timeout" in str(app.error)
        finally:
            await trio.aclose_forcefully(stream)


async def test_a_slow_reader_is_not_dropped_while_it_takes_bytes():
    async with serve_app(SlowStreamApp(), Limits(write_timeout=0.3)) as served:
        async with connect(served.host, served.port) as client:
            await client.send(request("GET", "/stream?n=8&delay=0.1"))
            response = await client.response()  # 0.8 s of stream, every write done well within 0.3 s
            assert response.body == b"".join(b"chunk %d\n" % i for i in range(8))


async def test_unsent_bytes_are_bounded_by_the_send_buffer_of_each_client_socket():
    """What a client that does not read can make Relay queue: the kernel send buffer, capped (Linux doubles it)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    try:
        connection = Connection(server, Flood(), Limits(send_buffer_bytes=16 * 1024), Shutdown())
        assert connection.stream.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) in (16 * 1024, 32 * 1024)
    finally:
        for resource in (client, server, *listeners):
            await trio.aclose_forcefully(resource)


async def open_from(address: str, host: str, port: int) -> Client:
    sock = trio.socket.socket()
    await sock.bind((address, 0))
    await sock.connect((host, port))
    return Client(trio.SocketStream(sock))


async def test_pending_heads_are_capped_per_address():
    async with serve_relay(config_from(max_pending_per_address=3)) as relay:
        slow = [await open_from("127.0.0.1", relay.host, relay.port) for _ in range(3)]
        try:
            for client in slow:
                await client.send(b"GET /healthz HTTP/1.1\r\nHost: rel")  # heads begun, never finished
            await trio.sleep(0.1)
            over = await open_from("127.0.0.1", relay.host, relay.port)
            with trio.fail_after(2):
                assert await over.closed(), "a fourth pending connection of one address was served"
            other = await open_from("127.0.0.2", relay.host, relay.port)  # another address is not capped
            await other.send(request("GET", "/healthz"))
            assert (await other.response()).status == 200
            await other.aclose()
            await slow[0].send(b"ay.test\r\n\r\n")  # one head completes: room for one more
            assert (await slow[0].response()).status == 200
            again = await open_from("127.0.0.1", relay.host, relay.port)
            await again.send(request("GET", "/healthz"))
            assert (await again.response()).status == 200
            await again.aclose()
        finally:
            for client in slow:
                await client.aclose()


async def test_a_later_head_on_a_kept_alive_connection_counts_as_pending():
    async with serve_relay(config_from(max_pending_per_address=1)) as relay:
        async with connect(relay.host, relay.port) as kept:
            await kept.send(request("GET", "/healthz"))
            assert (await kept.response()).status == 200  # now idle: not pending
            async with connect(relay.host, relay.port) as slow:
                await slow.send(b"GET /healthz HTTP/1.1\r\n")  # the one pending connection
                await trio.sleep(0.1)
                await kept.send(b"GET /hea")  # its next head would be a second one: closed
                with trio.fail_after(2):
                    assert await kept.closed()

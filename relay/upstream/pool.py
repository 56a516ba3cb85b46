"""Relay's upstream transport: HTTP/1.1 over Trio (relay.upstream.http1), keep-alive connections per origin.

It implements ``relay.upstream.response.Transport``: Relay's own request and response types and its own
exceptions (``relay.upstream.errors``), no httpx object on the way. It replaces httpcore's pool, whose cost
grows with the square of the number of connections (every idle connection is polled and recounted
for every request): at 64 concurrent requests that pool used most of Relay's CPU (bench/README.md).

Here a request takes the most recently used idle connection of its origin (one zero-timeout ``poll`` tells
whether the upstream has closed it meanwhile) or opens a new one; the answer's body streams straight
from the socket, and a connection whose answer was read to its end goes back to the idle stack.
A connection whose answer was not read to its end is closed: that is how an abandoned stream
closes the upstream request.

A request that fails while being *written* on a reused connection is retried once on a new one (the
upstream cannot have seen it). Nothing else is retried: a POST may not be sent twice. A streamed body
(``StreamedBody``, an upload passed on as the client sends it) is written piece by piece after the head, framed by
its length when known, else in chunks; it is retried only when its head failed, before any piece was taken.

The limits are relay.toml's ``[upstream]`` (``relay.config.UpstreamConfig``). When every connection is busy
a request waits up to ``pool_timeout`` for one, then gets ``PoolExhausted`` (a ``PoolTimeout``):
the process is at its capacity, which says nothing of the upstream's health.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import ssl
import time

import trio

from relay.config import UpstreamConfig
from relay.upstream.errors import (
    ConnectError,
    ConnectTimeout,
    LocalProtocolError,
    PoolTimeout,
    ReadError,
    RemoteProtocolError,
    StreamClosed,
    WriteError,
)
from relay.upstream.http1 import END, NEED_DATA, Head, ProtocolError, ResponseParser, request_head
from relay.upstream.response import Origin, StreamedBody, UpstreamRequest, UpstreamResponse

RECEIVE_SIZE = 64 * 1024


class _Connection:
    __slots__ = ("fd", "idle_since", "origin", "parser", "reused", "stream")

    def __init__(self, origin: Origin, stream: trio.abc.Stream) -> None:
        self.origin = origin
        self.stream = stream
        self.parser = ResponseParser()
        self.idle_since = 0.0
        self.reused = False
        #: The socket's descriptor, read directly (``receive``); -1 for TLS, read through the SSL stream.
        self.fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1

    async def send(self, data: bytes) -> None:
        """Write ``data``: at once when the socket takes it all (the usual request), else through the stream."""
        if self.fd >= 0:
            try:
                sent = os.write(self.fd, data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        await self.stream.send_all(data)

    async def receive(self) -> bytes:
        """The bytes the socket holds, once it holds some (``b""``: the upstream closed it).

        A plain socket is read with a wait for it to be readable and one ``read``, which is what trio's
        ``receive_some`` comes to when, as in a stream, the bytes are not there yet; but it first tries a
        read that fails, and wraps the call in a conflict detector and an error translation. A closed
        descriptor wakes the wait with ``trio.ClosedResourceError`` (trio's ``notify_closing``).
        """
        fd = self.fd
        if fd < 0:
            return await self.stream.receive_some(RECEIVE_SIZE)
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                return os.read(fd, RECEIVE_SIZE)
            except BlockingIOError:
                pass

    def next_buffered(self) -> Head | bytes | object:
        """The response's next head, body piece, END or NEED_DATA from what was already read."""
        try:
            return self.parser.next()
        except ProtocolError as exc:
            raise RemoteProtocolError(f"the upstream broke HTTP/1.1: {exc}") from exc

    async def next_event(self) -> Head | bytes | object:
        """The response's next head, body piece or END, reading the socket as needed."""
        parser = self.parser
        while True:
            event = self.next_buffered()
            if event is not NEED_DATA:
                return event
            try:
                parser.feed(await self.receive())
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise ReadError(f"the upstream connection failed: {exc}") from exc

    def closed_by_peer(self) -> bool:
        """Whether the upstream closed (or wrote to) this idle connection: then it cannot be reused."""
        sock = _socket_of(self.stream)
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))


async def _send_streamed(conn: _Connection, body: StreamedBody) -> None:
    """Write ``body``'s pieces as its source gives them (framed in chunks when its length is unknown). The source's
    own errors (the client's body failed) pass through; a write that fails is a ``WriteError``."""
    chunked = body.length is None
    sent = 0
    async for piece in body.pieces:
        if not piece:
            continue
        sent += len(piece)
        if body.length is not None and sent > body.length:
            raise LocalProtocolError(f"the streamed body is longer than its length ({body.length} bytes)")
        try:
            await conn.send(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise WriteError(f"cannot send the request body: {exc}") from exc
    if body.length is not None and sent != body.length:
        raise LocalProtocolError(f"the streamed body ended at {sent} of its {body.length} bytes")
    if chunked:
        try:
            await conn.send(b"0\r\n\r\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise WriteError(f"cannot send the request body: {exc}") from exc


def _socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    return stream.socket if isinstance(stream, trio.SocketStream) else None


async def _open_tcp(host: str, port: int) -> trio.SocketStream:
    """A TCP connection to ``host``; an IP address is connected to directly.

    ``trio.open_tcp_stream`` races the addresses a name resolves to (happy eyeballs) in a nursery of its own,
    which a name needs and an address does not: for ``127.0.0.1`` it cost 155 µs of CPU per connection against
    71 µs for the plain connect (a connect, accept and close each, measured in one loop), and a burst of 1,024
    new streams opens 1,024 upstream connections.
    """
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return await trio.open_tcp_stream(host, port)
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


class PoolExhausted(PoolTimeout):
    """Every connection of the pool stayed busy for ``pool_timeout``."""

    def __init__(self, max_connections: int, waited: float) -> None:
        super().__init__(f"all {max_connections} upstream connections stayed busy for {waited:g}s")
        self.max_connections = max_connections


class Pool:
    def __init__(self, limits: UpstreamConfig | None = None, *, ssl_context: ssl.SSLContext | None = None) -> None:
        limits = limits or UpstreamConfig()
        self.max_connections = limits.max_connections
        self._slots = trio.Semaphore(limits.max_connections)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._max_idle = limits.max_idle_per_origin
        self._expiry = limits.keepalive_expiry
        #: Seconds a request waits for a free connection (the request's own ``pool`` timeout is not used:
        #: the pool is the process's, shared by every channel).
        self._pool_timeout = limits.pool_timeout
        self._ssl_context = ssl_context
        #: The origins whose connections are kept for reuse; None: every origin (see ``keep_only``).
        self._wanted: frozenset[Origin] | None = None

    # ---- the transport interface ----------------------------------------------------------------

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        headers = [(b"host", request.authority), *request.headers]
        body = request.body
        streamed = body if isinstance(body, StreamedBody) else None
        if streamed is not None:
            if streamed.length is None:
                headers.append((b"transfer-encoding", b"chunked"))
            else:
                headers.append((b"content-length", b"%d" % streamed.length))
        elif body or request.method == b"POST":
            headers.append((b"content-length", b"%d" % len(body)))
        try:
            data = request_head(request.method, request.target, headers)
        except ValueError as exc:
            raise LocalProtocolError(str(exc)) from exc
        if not isinstance(body, StreamedBody):
            data += body
        while True:
            conn = await self._acquire(request.origin, request.connect_timeout)
            try:
                await conn.send(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                await self._discard(conn)
                if conn.reused:
                    continue  # the upstream closed it while idle; it cannot have seen this request
                raise WriteError(f"cannot send the request: {exc}") from exc
            except BaseException:
                await self._discard(conn)
                raise
            break
        if streamed is not None:
            try:
                await _send_streamed(conn, streamed)
            except BaseException:
                await self._discard(conn)
                raise
        try:
            event = await conn.next_event()
            while isinstance(event, Head) and event.status < 200:
                event = await conn.next_event()
        except BaseException:
            await self._discard(conn)
            raise
        assert isinstance(event, Head)
        body = _Body(self, conn)
        return UpstreamResponse(event.status, event.headers, body.receive, body.aclose, body.release)

    async def aclose(self) -> None:
        for stack in self._idle.values():
            for conn in stack:
                await self._discard(conn)
        self._idle.clear()

    async def keep_only(self, origins: frozenset[Origin]) -> None:
        """Keep connections of ``origins`` only (the channels' after a reload removed some): idle connections of
        any other origin are closed now, busy ones once their exchange ends (a request in flight keeps its own)."""
        self._wanted = origins
        for origin in [o for o in self._idle if o not in origins]:
            for conn in self._idle.pop(origin):
                await self._discard(conn)

    # ---- connections ------------------------------------------------------------------------------

    async def _acquire(self, origin: Origin, connect_timeout: float | None) -> _Connection:
        stack = self._idle.get(origin)
        now = time.monotonic()
        while stack:
            conn = stack.pop()
            if now - conn.idle_since < self._expiry and not conn.closed_by_peer():
                conn.reused = True
                return conn
            await self._discard(conn)
        await self._take_slot()
        try:
            return _Connection(origin, await self._connect(origin, connect_timeout))
        except BaseException:
            self._slots.release()
            raise

    async def _take_slot(self) -> None:
        try:
            self._slots.acquire_nowait()
            return
        except trio.WouldBlock:
            pass
        oldest = min((s[0] for s in self._idle.values() if s), key=lambda c: c.idle_since, default=None)
        if oldest is not None:  # make room: close the longest-idle connection of any origin
            self._idle[oldest.origin].remove(oldest)
            await self._discard(oldest)
        with trio.move_on_after(self._pool_timeout):
            await self._slots.acquire()
            return
        raise PoolExhausted(self.max_connections, self._pool_timeout)

    async def _connect(self, origin: Origin, timeout: float | None) -> trio.abc.Stream:
        scheme, host, port = origin
        with trio.move_on_after(timeout if timeout is not None else float("inf")):
            try:
                stream: trio.abc.Stream = await _open_tcp(host, port)
                stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if scheme == b"https":
                    stream = trio.SSLStream(stream, self._tls(), server_hostname=host, https_compatible=True)
                    await stream.do_handshake()
            except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
                raise ConnectError(f"{host}:{port}: {exc}") from exc
            return stream
        raise ConnectTimeout(f"{host}:{port}: connect timed out")

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        return self._ssl_context

    def _release(self, conn: _Connection) -> bool:
        """Put a connection whose exchange is complete back to the idle stack; False if it must close.

        While requests wait for a free connection it closes instead: its slot goes to the first of them (a
        request waiting for a slot would not see a connection put back on an idle stack).
        """
        if not conn.parser.done or not conn.parser.reusable or self._slots.statistics().tasks_waiting:
            return False
        if self._wanted is not None and conn.origin not in self._wanted:
            return False
        stack = self._idle.setdefault(conn.origin, [])
        if len(stack) >= self._max_idle:
            return False
        conn.parser = ResponseParser()
        conn.idle_since = time.monotonic()
        stack.append(conn)
        return True

    async def _discard(self, conn: _Connection) -> None:
        self._slots.release()
        await trio.aclose_forcefully(conn.stream)


class _Body:
    """An answer's body, read from the socket as the caller asks for it."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: Pool, conn: _Connection) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn

    async def receive(self) -> bytes | None:
        """The body's next bytes, everything one socket read brought in one piece; None at its end."""
        conn = self._conn
        if conn is None:
            raise StreamClosed("the upstream answer's body was read after it was closed")
        event = await conn.next_event()
        if event is END:
            return None
        if type(event) is not bytes:
            raise RemoteProtocolError("a second response head in the upstream answer")
        more = conn.next_buffered()
        if type(more) is not bytes:
            return event  # the usual case: NEED_DATA, or END (the next call finds it again)
        pieces = [event, more]
        while type(more := conn.next_buffered()) is bytes:
            pieces.append(more)
        return b"".join(pieces)

    def release(self) -> bool:
        """Put the connection back to the pool if its answer was read to its end; False when it must be closed
        (``aclose``)."""
        conn = self._conn
        if conn is not None and not self._pool._release(conn):
            return False
        self._conn = None
        return True

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not self._pool._release(conn):
            await self._pool._discard(conn)

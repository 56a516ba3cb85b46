"""Relay's upstream transport: HTTP/1.1 over Trio (relay.upstream.http1), keep-alive connections per origin.

It implements httpx's transport interface (``httpx.AsyncBaseTransport``), so the rest of Relay speaks
httpx's ``Request`` and ``Response`` and its exception types. It replaces httpcore's pool, whose cost
grows with the square of the number of connections (every idle connection is polled and recounted
for every request): at 64 concurrent requests that pool used most of Relay's CPU (bench/README.md).

Here a request takes the most recently used idle connection of its origin (one zero-timeout ``poll`` tells
whether the upstream has closed it meanwhile) or opens a new one; the answer's body streams straight
from the socket, and a connection whose answer was read to its end goes back to the idle stack.
A connection whose answer was not read to its end is closed: that is how an abandoned stream
closes the upstream request.

A request that fails while being *written* on a reused connection is retried once on a new one (the
upstream cannot have seen it). Nothing else is retried: a POST may not be sent twice.

The limits are relay.toml's ``[upstream]`` (``relay.config.UpstreamConfig``). When every connection is busy
a request waits up to ``pool_timeout`` for one, then gets ``PoolExhausted`` (an ``httpx.PoolTimeout``):
the process is at its capacity, which says nothing of the upstream's health.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import AsyncIterator

import httpx
import trio

from relay.config import UpstreamConfig
from relay.upstream.http1 import END, NEED_DATA, Head, ProtocolError, ResponseParser, request_head

RECEIVE_SIZE = 64 * 1024

Origin = tuple[bytes, str, int]


class _Connection:
    __slots__ = ("idle_since", "origin", "parser", "reused", "stream")

    def __init__(self, origin: Origin, stream: trio.abc.Stream) -> None:
        self.origin = origin
        self.stream = stream
        self.parser = ResponseParser()
        self.idle_since = 0.0
        self.reused = False

    def next_buffered(self) -> Head | bytes | object:
        """The response's next head, body piece, END or NEED_DATA from what was already read."""
        try:
            return self.parser.next()
        except ProtocolError as exc:
            raise httpx.RemoteProtocolError(f"the upstream broke HTTP/1.1: {exc}") from exc

    async def next_event(self) -> Head | bytes | object:
        """The response's next head, body piece or END, reading the socket as needed."""
        parser = self.parser
        while True:
            event = self.next_buffered()
            if event is not NEED_DATA:
                return event
            try:
                parser.feed(await self.stream.receive_some(RECEIVE_SIZE))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise httpx.ReadError(f"the upstream connection failed: {exc}") from exc

    def closed_by_peer(self) -> bool:
        """Whether the upstream closed (or wrote to) this idle connection: then it cannot be reused."""
        sock = _socket_of(self.stream)
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))


def _socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    return stream.socket if isinstance(stream, trio.SocketStream) else None


class PoolExhausted(httpx.PoolTimeout):
    """Every connection of the pool stayed busy for ``pool_timeout``."""

    def __init__(self, max_connections: int, waited: float) -> None:
        super().__init__(f"all {max_connections} upstream connections stayed busy for {waited:g}s")
        self.max_connections = max_connections


class Pool(httpx.AsyncBaseTransport):
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

    # ---- the transport interface ----------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin: Origin = (url.raw_scheme, url.host, url.port or (443 if url.raw_scheme == b"https" else 80))
        timeouts = request.extensions.get("timeout", {})
        try:
            data = request_head(request.method.encode(), url.raw_path, request.headers.raw) + await request.aread()
        except ValueError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc
        while True:
            conn = await self._acquire(origin, timeouts)
            try:
                await conn.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                await self._discard(conn)
                if conn.reused:
                    continue  # the upstream closed it while idle; it cannot have seen this request
                raise httpx.WriteError(f"cannot send the request: {exc}") from exc
            except BaseException:
                await self._discard(conn)
                raise
            break
        try:
            event = await conn.next_event()
            while isinstance(event, Head) and event.status < 200:
                event = await conn.next_event()
        except BaseException:
            await self._discard(conn)
            raise
        assert isinstance(event, Head)
        return httpx.Response(
            event.status,
            headers=event.headers,
            stream=_Body(self, conn),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": event.reason},
        )

    async def aclose(self) -> None:
        for stack in self._idle.values():
            for conn in stack:
                await self._discard(conn)
        self._idle.clear()

    # ---- connections ------------------------------------------------------------------------------

    async def _acquire(self, origin: Origin, timeouts: dict[str, float | None]) -> _Connection:
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
            return _Connection(origin, await self._connect(origin, timeouts.get("connect")))
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
                stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
                stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if scheme == b"https":
                    stream = trio.SSLStream(stream, self._tls(), server_hostname=host, https_compatible=True)
                    await stream.do_handshake()
            except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
                raise httpx.ConnectError(f"{host}:{port}: {exc}") from exc
            return stream
        raise httpx.ConnectTimeout(f"{host}:{port}: connect timed out")

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


class _Body(httpx.AsyncByteStream):
    """An answer's body, read from the socket as the caller asks for it."""

    def __init__(self, pool: Pool, conn: _Connection) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive: everything one socket read brought, in one piece."""
        conn = self._conn
        if conn is None:
            raise httpx.StreamClosed()
        while True:
            event = await conn.next_event()
            if event is END:
                return
            pieces = [_body_piece(event)]
            while type(event := conn.next_buffered()) is bytes:
                pieces.append(event)
            yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
            if event is END:
                return

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not self._pool._release(conn):
            await self._pool._discard(conn)


def _body_piece(event: object) -> bytes:
    if type(event) is not bytes:
        raise httpx.RemoteProtocolError("a second response head in the upstream answer")
    return event

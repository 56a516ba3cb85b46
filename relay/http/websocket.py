"""WebSockets (RFC 6455) on Relay's HTTP server, with wsproto: an h11 connection upgraded in place.

A ``GET`` asking for ``Upgrade: websocket`` is read as any request (same listener, same head limits and
timeouts); its handshake is checked by wsproto (a malformed one is a 400 before the application sees it) and
the request reaches its endpoint with ``Request.websocket`` set to an ``Upgrade`` (any route: the endpoint
decides; a route that wants no WebSocket answers as for any request). The endpoint may answer it
as any request (a 401, a 402: plain HTTP, keep-alive kept), or accept it: ``async with upgrade.accept(...) as
ws`` writes the 101 and hands the same socket over to wsproto for the rest of the connection's life.

``WebSocket`` is what the endpoint talks to: ``receive()`` (a whole message, ``None`` once closed),
``send(text | bytes)`` and ``close(code, reason)``. Limits (``[limits]``, docs/limits.md):

- a client message larger than ``websocket_max_message_bytes`` closes the connection with **1009**: its
  fragments are counted as they arrive, never held beyond the limit;
- what Relay sends goes straight to the socket, one message at a time, under ``write_timeout``: a client that
  takes no bytes for that long is closed with **1008** (the send buffer is the kernel's, ``send_buffer_bytes``,
  plus the rest of the frame being written; nothing queues without limit). Frames are written here, not by
  ``send_all``, so that a write cut short leaves whole frames behind it: the close frame follows the stuck frame
  if the client reads again within a second, else the connection is dropped; a client never reads a garbled
  stream;
- a frame wsproto cannot parse closes with its code (**1002**, **1007**);
- pings every ``websocket_ping_interval`` seconds; a peer that does not answer within
  ``websocket_ping_timeout`` while Relay waits to read is closed with **1011**;
- no extension is negotiated (no ``permessage-deflate``: a compressed message's size is not its size);
- the endpoint watches ``shutdown`` to close with **1001** when the server stops (its own in-flight work first).

Reading stays with the connection's reader task (it feeds wsproto instead of h11 once upgraded): as for HTTP it
reads ahead at most 64 KiB the endpoint has not asked for, so a client's frames wait in TCP while the endpoint
is busy (backpressure).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

import h11
import trio
from wsproto import ConnectionState, ConnectionType
from wsproto.connection import Connection as WsConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.events import (
    Request as WsRequest,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from relay.http.limits import Limits
from relay.http.shutdown import Shutdown

log = logging.getLogger("relay.http")

#: ``relay.http.messages.Headers`` (not imported: ``messages`` names this module's ``Upgrade``).
Headers = Sequence[tuple[bytes, bytes]]

#: Close codes Relay sends (RFC 6455 §7.4.1).
NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
POLICY = 1008
TOO_BIG = 1009
INTERNAL = 1011
#: No close frame came: the socket ended (RFC 6455 §7.1.5).
ABNORMAL = 1006
#: Seconds a close frame may take to leave when the client is not reading.
_CLOSE_WRITE_SECONDS = 1.0


class Socket(Protocol):
    """What a WebSocket uses of its ``relay.http.connection.Connection``."""

    stream: trio.SocketStream
    limits: Limits
    shutdown: Shutdown
    h11: h11.Connection
    eof: bool
    client_gone: bool

    async def more(self) -> None:
        """Wait until the reader has taken in more bytes (or the socket ended)."""
        ...

    def upgrade_to(self, sink: Callable[[bytes | None], None]) -> bytes:
        """From now on the reader hands what it reads to ``sink`` (None at the end); returns the bytes read
        past the request head already."""
        ...


class Started(Protocol):
    """The response writer of the request: accepting the upgrade starts its answer (no failover can follow)."""

    started: bool


class HandshakeError(Exception):
    """A WebSocket handshake wsproto refuses (no key, a wrong version): answered 400 by the connection."""


def asks_upgrade(headers: Headers) -> bool:
    """Whether a request head asks to become a WebSocket (``Upgrade: websocket``)."""
    return any(name == b"upgrade" and value.strip().lower() == b"websocket" for name, value in headers)


class Upgrade:
    """A request asking to become a WebSocket, checked by wsproto; ``accept`` makes it one."""

    def __init__(self, socket: Socket, headers: Headers, target: bytes) -> None:
        self._socket = socket
        self._handshake = H11Handshake(ConnectionType.SERVER)
        try:
            self._handshake.initiate_upgrade_connection(list(headers), target)
            request = next(iter(self._handshake.events()), None)
        except RemoteProtocolError as exc:
            raise HandshakeError(f"malformed WebSocket handshake: {exc}") from None
        if not isinstance(request, WsRequest):
            raise HandshakeError("malformed WebSocket handshake")
        #: The subprotocols the client offers (``Sec-WebSocket-Protocol``), in its order.
        self.subprotocols: list[str] = list(request.subprotocols)
        #: The request's response writer (bound by the connection): marked started once accepted.
        self.writer: Started | None = None
        self.accepted = False

    @asynccontextmanager
    async def accept(
        self, subprotocol: str | None = None, headers: Headers = (), *, started: bool = True
    ) -> AsyncIterator[WebSocket]:
        """Answer 101 (choosing ``subprotocol``, one the client offered) and yield the WebSocket; the keepalive
        runs meanwhile. At the end it is closed (1000, or 1011 when the body raised) if it is not already.
        ``started``: the response counts as started (failover stops); False for an endpoint that picks its
        upstream after the upgrade (Gemini Live reads the model from the first message)."""
        if self.accepted:
            raise RuntimeError("WebSocket already accepted")
        self.accepted = True
        if self.writer is not None and started:
            self.writer.started = True
        data = self._handshake.send(AcceptConnection(subprotocol=subprotocol, extra_headers=list(headers)))
        connection = self._handshake.connection
        assert connection is not None
        ws = WebSocket(self._socket, connection, subprotocol)
        try:
            await ws._write(data, self._socket.limits.write_timeout)
        except trio.BrokenResourceError:
            self._socket.client_gone = True
            ws.closed_by, ws.close_code = "client", ABNORMAL
        code = NORMAL
        try:
            async with trio.open_nursery() as nursery:
                if not ws.closed:
                    nursery.start_soon(ws.keepalive)
                try:
                    yield ws
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            code = INTERNAL
            if len(group.exceptions) == 1:  # the endpoint's own exception, as it raised it
                raise group.exceptions[0] from None
            raise
        except BaseException:
            code = INTERNAL
            raise
        finally:
            with trio.CancelScope(shield=True):
                await ws.close(code, "" if code == NORMAL else "internal error")


class WebSocket:
    """One accepted WebSocket: messages in and out, close, keepalive."""

    def __init__(self, socket: Socket, connection: WsConnection, subprotocol: str | None) -> None:
        self._socket = socket
        self._ws = connection
        self.subprotocol = subprotocol
        limits = socket.limits
        self._max = limits.websocket_max_message_bytes
        self._send_lock = trio.Lock()
        #: The close code of the closing side, once closed; ``closed_by``: ``client`` or ``server``.
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by: str | None = None
        #: Relay is waiting for the client's bytes (it has read all it was sent): a missing pong is the peer's.
        self._waiting = False
        self._pong = trio.Event()
        self._pings = 0
        #: Bytes of frames not written yet (a part of one, when the client stopped reading mid-frame).
        self._unsent = bytearray()
        #: A write found the client not reading for ``write_timeout``: only a close frame may still go.
        self._stalled = False
        connection.receive_data(socket.upgrade_to(self._feed))

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    @property
    def shutdown(self) -> Shutdown:
        """The server's shutdown: an endpoint closes with 1001 once it begins (its in-flight work done first)."""
        return self._socket.shutdown

    def _feed(self, data: bytes | None) -> None:
        if self._ws.state is ConnectionState.CLOSED:
            return
        self._ws.receive_data(data)

    async def receive(self) -> str | bytes | None:
        """The client's next message; None once the WebSocket is closed (``close_code`` says how)."""
        parts: list[str] | list[bytes] = []
        size = 0
        while not self.closed:
            for event in self._ws.events():
                if isinstance(event, TextMessage | BytesMessage):
                    size += len(event.data) if isinstance(event.data, bytes) else len(event.data.encode())
                    if size > self._max:
                        await self.close(TOO_BIG, f"message larger than {self._max} bytes")
                        return None
                    parts.append(event.data)  # type: ignore[arg-type]
                    if event.message_finished:
                        return "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)  # type: ignore[arg-type]
                elif isinstance(event, Ping):
                    await self._send_event(event.response(), quiet=True)
                elif isinstance(event, Pong):
                    self._pong.set()
                elif isinstance(event, CloseConnection):
                    await self._closed_by_client(event)
                    return None
            if self.closed:
                return None
            if self._socket.eof:
                self._feed(None)  # no close frame came: 1006, on the next turn
                continue
            self._waiting = True
            try:
                await self._socket.more()
            finally:
                self._waiting = False
        return None

    async def _closed_by_client(self, event: CloseConnection) -> None:
        if event.code == ABNORMAL:  # the socket ended without a close frame (wsproto's own event)
            self._socket.client_gone = True
            self._mark("client", ABNORMAL, "connection lost")
            return
        if self._ws.state is ConnectionState.OPEN:  # wsproto's own: a frame it could not parse (1002, 1007)
            await self.close(event.code, event.reason or "malformed frame")
            return
        self._mark("client", event.code, event.reason or "")
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            # The answer to the client's close (or, for a frame wsproto could not parse, Relay's own close).
            await self._send_event(event.response(), quiet=True)

    def _mark(self, by: str, code: int, reason: str) -> None:
        if self.close_code is None:
            self.closed_by, self.close_code, self.close_reason = by, code, reason

    async def send(self, data: str | bytes) -> None:
        """Send one message; raises ``trio.ClosedResourceError`` once closed. A client that takes no bytes for
        ``write_timeout`` is closed with 1008 (and this raises ``trio.BrokenResourceError``)."""
        if self.closed:
            raise trio.ClosedResourceError("the WebSocket is closed")
        event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        await self._send_event(event)

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Close with ``code`` (a close frame, once; the connection then ends), or with the code of the reason to
        close found first (a client too slow: 1008). Nothing is sent after it."""
        self._mark("server", code, reason)
        if self._ws.state is ConnectionState.OPEN and self.close_code is not None:
            close = CloseConnection(code=self.close_code, reason=self.close_reason[:120])
            await self._send_event(close, quiet=True)

    async def _send_event(self, event: object, *, quiet: bool = False) -> None:
        async with self._send_lock:
            if self._ws.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                if quiet:
                    return
                raise trio.ClosedResourceError("the WebSocket is closed")
            closing = isinstance(event, CloseConnection)
            if self._stalled and not closing:
                raise trio.BrokenResourceError("the client is not reading")
            data = self._ws.send(event)  # type: ignore[arg-type]
            try:
                await self._write(data, _CLOSE_WRITE_SECONDS if closing else self._socket.limits.write_timeout)
            except trio.BrokenResourceError:
                if not self._socket.client_gone:
                    self._stalled = True
                    self._mark("server", POLICY, "client too slow")
                else:
                    self._mark("client", ABNORMAL, "connection lost")
                if not quiet:
                    raise

    async def _write(self, data: bytes, timeout: float) -> None:
        """Write ``data`` after what an earlier write left; ``trio.BrokenResourceError`` when no byte leaves for
        ``timeout`` seconds (what is left stays, whole frames after it, so a close frame may still follow) or the
        socket failed (``client_gone``). Written here, not by ``send_all``, so a write cut short is never a frame
        cut in the middle."""
        self._unsent += data
        fd = self._socket.stream.socket.fileno()
        while self._unsent:
            try:
                sent = os.write(fd, self._unsent)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self._socket.client_gone = True
                self._unsent.clear()
                raise trio.BrokenResourceError(f"the client's socket failed: {exc}") from None
            if sent:
                del self._unsent[:sent]
                continue
            with trio.move_on_after(timeout) as waited:
                await trio.lowlevel.wait_writable(fd)
            if waited.cancelled_caught:
                raise trio.BrokenResourceError(f"the client took no bytes for {timeout:g}s")

    async def keepalive(self) -> None:
        """Ping every ``websocket_ping_interval`` seconds; close with 1011 when a pong does not come within
        ``websocket_ping_timeout`` while Relay waits to read (a busy endpoint not reading is not the peer's fault)."""
        limits = self._socket.limits
        if limits.websocket_ping_interval <= 0:
            return
        while not self.closed:
            await trio.sleep(limits.websocket_ping_interval)
            if self.closed:
                return
            self._pong = trio.Event()
            self._pings += 1
            try:
                await self._send_event(Ping(payload=b"relay-%d" % self._pings))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            with trio.move_on_after(limits.websocket_ping_timeout):
                await self._pong.wait()
                continue
            if self._waiting and not self.closed:
                log.info("WebSocket peer did not answer a ping in %gs: closing", limits.websocket_ping_timeout)
                await self.close(INTERNAL, "keepalive ping timeout")
                return


def offered(subprotocols: Sequence[str], prefix: str) -> str | None:
    """The first offered subprotocol starting with ``prefix``, without it (``openai-insecure-api-key.KEY``)."""
    return next((p[len(prefix) :] for p in subprotocols if p.startswith(prefix)), None)

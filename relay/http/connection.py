"""One h11 loop per connection: limits, timeouts, keep-alive, pipelining and the disconnect watch.

Two tasks per connection. The reader is the only one that reads the socket: it feeds h11, wakes
the request loop when data arrives, and, when the client closes or resets its socket, cancels the
request being handled. The request loop reads one request (head, then body) from h11, hands it to
the application, writes the answer, and starts the next cycle. Requests pipelined behind the current
one wait in h11's buffer and are answered in order; the reader reads at most ``_READ_AHEAD`` bytes
the loop has not asked for, then stops (TCP backpressure). docs/limits.md lists every limit.

A route that streams its uploads (the app's ``streams_body``) gets its request once the head is in, the body
still to read (``relay.http.body_stream``): the request loop waits while the handler reads the body through
this connection's h11 state, under the same limit and body timeout as a whole body.

A request asking for a WebSocket (``Upgrade: websocket``) carries ``Request.websocket`` (``relay.http.websocket``):
once its endpoint accepts it, the reader feeds wsproto instead of h11, the client leaving no longer cancels the
handler (the WebSocket reports it), and the connection ends with the handler.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Protocol

import h11
import trio

from relay.http import framing
from relay.http.body_stream import BodyReader
from relay.http.heap import LARGE, HeapTrimmer
from relay.http.limits import Limits
from relay.http.messages import Aborted, BodyError, Headers, Request, Response, StreamResponse
from relay.http.pending import PendingHeads
from relay.http.shutdown import Shutdown
from relay.http.websocket import HandshakeError, Upgrade, asks_upgrade
from relay.http.writer import Writer, http_date, reason, send_all

log = logging.getLogger("relay.http")

RECEIVE_SIZE = 64 * 1024
#: Bytes the reader takes in that the request loop has not asked for yet (a pipelined request).
_READ_AHEAD = 64 * 1024
_LINGER_SECONDS = 1.0


class BodyLimits(Protocol):
    """An app whose routes take bodies of different sizes (uploads) has ``body_limit``: the largest body
    ``path`` may send (a connection looks for the method; without it every path has ``max_body_bytes``)."""

    def body_limit(self, path: str) -> int: ...


class StreamsBodies(Protocol):
    """An app whose routes read some bodies as they arrive has ``streams_body``: whether ``path``'s body is handed
    over unread (``Request.body_stream``) instead of whole (``Request.body``)."""

    def streams_body(self, path: str) -> bool: ...


class App(Protocol):
    async def handle(self, request: Request, stream: StreamResponse) -> Response | None: ...

    def error(self, status: int, message: str, path: str | None, *, code: str | None = None) -> Response:
        """A protocol-level error (400, 408, 413, 431, 500, 501, 505) in the shape the path's clients expect;
        ``code`` names it when the status alone does not (``unsupported_transfer_coding``)."""
        ...


class Connection:
    """One client connection. Slotted: an open stream holds one, so its size is paid per stream."""

    __slots__ = (
        "_ahead",
        "_arrived",
        "_body_limit",
        "_counted",
        "_handling",
        "_heap",
        "_pending",
        "_raw",
        "_room",
        "_sink",
        "_streams_body",
        "app",
        "client",
        "client_gone",
        "eof",
        "h11",
        "host",
        "limits",
        "served",
        "shutdown",
        "stream",
        "upgraded",
    )

    def __init__(
        self,
        stream: trio.SocketStream,
        app: App,
        limits: Limits,
        shutdown: Shutdown,
        pending: PendingHeads | None = None,
        heap: HeapTrimmer | None = None,
    ) -> None:
        self.stream = stream
        self.app = app
        self.limits = limits
        self.shutdown = shutdown
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head_bytes)
        self.served = 0
        self.client_gone = False
        #: The client closed or reset its side: h11 has been told, the running handler cancelled.
        self.eof = False
        self._arrived = trio.Event()
        self._room = trio.Event()
        self._ahead = 0
        self._handling: trio.CancelScope | None = None
        #: The bytes of the head being read, as they arrive (None while no head is being read).
        self._raw: bytearray | None = None
        self._pending = pending if pending is not None else PendingHeads(0)
        #: Told of large requests, to give the heap back once they are over (``relay.http.heap``).
        self._heap = heap
        #: The body limit of a path, when the app has one per route (``BodyLimits``); else ``max_body_bytes``.
        self._body_limit: Callable[[str], int] | None = getattr(app, "body_limit", None)
        #: Whether a path's body is read by the app as it arrives (``StreamsBodies``); else it is read whole first.
        self._streams_body: Callable[[str], bool] | None = getattr(app, "streams_body", None)
        #: Whether this connection is counted in ``_pending`` (sending a head).
        self._counted = False
        #: An accepted WebSocket's: what the reader reads goes to ``_sink`` (wsproto) instead of h11.
        self.upgraded = False
        self._sink: Callable[[bytes | None], None] | None = None
        with contextlib.suppress(OSError):  # small stream frames must leave at once (no Nagle delay)
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        with contextlib.suppress(OSError):  # what a client that does not read can make Relay queue
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, limits.send_buffer_bytes)
        try:
            host, port = stream.socket.getpeername()[:2]
            self.host = str(host)
            self.client = f"{host}:{port}"
        except OSError:
            self.host = self.client = "unknown"

    def count_pending(self) -> bool:
        """Count this connection as sending a head; False when its address already has too many."""
        if not self._counted:
            self._counted = self._pending.enter(self.host)
        return self._counted

    def uncount_pending(self) -> None:
        if self._counted:
            self._counted = False
            self._pending.leave(self.host)

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._reader)
                try:
                    await self._serve_requests()
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            self.uncount_pending()
            await self._close()

    async def _serve_requests(self) -> None:
        try:
            while True:
                request = await self._read_request()
                if request is None:
                    return
                large = self._heap.large(request) if self._heap is not None and len(request.body) >= LARGE else None
                try:
                    await self._dispatch(request)
                finally:
                    if large is not None:
                        large.release()  # at the latest: a stream's start released it already (Request.let_go)
                del request, large  # let go of before the next request's wait (keep-alive: up to a minute)
                self.served += 1
                if self.client_gone or self.upgraded or self.h11.our_state is not h11.DONE:
                    return
                if self.h11.their_state is not h11.DONE:
                    return  # the handler answered without the body being read: cannot reuse
                self.h11.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    # ---- the reader -----------------------------------------------------------------------------

    async def _reader(self) -> None:
        """Read the socket into h11 for as long as the connection lives; at EOF or a reset, cancel."""
        try:
            while True:
                while self._ahead >= _READ_AHEAD:
                    self._room = trio.Event()
                    await self._room.wait()
                data = await self.stream.receive_some(RECEIVE_SIZE)
                if not data:
                    break
                self._ahead += len(data)
                if self._sink is not None:
                    self._sink(data)
                else:
                    self.h11.receive_data(data)
                if self._raw is not None:
                    self._raw += data
                # h11 and the head buffer copied it; kept in this frame it would stay for the whole wait for
                # the next read, that is for a stream's life (the request's last piece, often all of it).
                del data
                self._arrived.set()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self.eof = True
        if self._sink is not None:
            self._sink(None)
        else:
            self.h11.receive_data(b"")
        self._arrived.set()
        if self._handling is not None and not self.upgraded:  # a WebSocket reports the end itself
            self.client_gone = True
            self._handling.cancel()

    async def _more(self) -> None:
        """Wait until the reader has fed h11 more bytes (or the end of the stream)."""
        if self.eof:
            return
        self._ahead = 0
        self._room.set()
        self._arrived = trio.Event()
        await self._arrived.wait()

    async def more(self) -> None:
        """Wait until the reader has fed the accepted WebSocket more bytes (``relay.http.websocket.Socket``)."""
        await self._more()

    def upgrade_to(self, sink: Callable[[bytes | None], None]) -> bytes:
        """The WebSocket is accepted: the reader feeds ``sink`` from now on; the bytes h11 holds past the
        request head (the client's first frames) are returned for it."""
        self.upgraded = True
        self._sink = sink
        return bytes(self.h11.trailing_data[0])

    # ---- reading ------------------------------------------------------------------------------

    async def _read_request(self) -> Request | None:
        """The next request, or None when the connection should close (after an error answer, if any).

        A new connection's head timeout runs from the accept; later heads' from their first byte.
        Waiting for a first byte is idle time: it ends quietly, at its timeout or at shutdown.
        The body timeout runs from the end of the head.
        """
        self._raw = bytearray(self.h11.trailing_data[0])
        try:
            return await self._read_request_unguarded()
        finally:
            self._raw = None
            self.uncount_pending()

    async def _read_request_unguarded(self) -> Request | None:
        if self._raw:
            deadline = trio.current_time() + self.limits.head_timeout  # pipelined: the head is on its way
        elif self.served == 0:
            deadline = trio.current_time() + self.limits.head_timeout
            if not await self._wait_first_byte(deadline):
                return None
        else:
            if not await self._wait_first_byte(trio.current_time() + self.limits.keepalive_timeout):
                return None
            deadline = trio.current_time() + self.limits.head_timeout
        if self.served and not self.count_pending():
            return None  # too many connections of this address are sending heads: closed unanswered
        head: h11.Request | _Refused | None = None
        with trio.move_on_at(deadline) as scope:
            head = await self._read_head()
            self.uncount_pending()
            if not isinstance(head, h11.Request):
                return await self._refuse(head.status, head.message, head.path, head.code) if head else None
            path, _, query = head.target.decode("latin-1").partition("?")
            scope.deadline = trio.current_time() + self.limits.body_timeout
            if self._streams_body is not None and self._streams_body(path):
                return await self._streamed_request(head, path, query, scope.deadline)
            body = await self._read_body(head, path)
            if body is None:
                return None
            request = Request(
                method=head.method.decode("ascii"),
                path=path,
                query=query,
                headers=list(head.headers),
                body=body,
                client=self.client,
            )
            if asks_upgrade(head.headers):
                try:
                    request.websocket = Upgrade(self, head.headers, head.target)
                except HandshakeError as exc:
                    return await self._refuse(400, str(exc), path)
            return request
        if isinstance(head, h11.Request):
            return await self._refuse(408, "request body not received in time", path)
        return await self._refuse(408, "request head not received in time", None)

    async def _wait_first_byte(self, deadline: float) -> bool:
        """Wait for the first byte of a request; False at the deadline, at EOF or once shutdown begins."""
        with trio.CancelScope(deadline=deadline) as idle:
            self.shutdown.watch_idle(idle)
            try:
                await self._more()
            finally:
                self.shutdown.unwatch_idle(idle)
        return not idle.cancelled_caught and not self.eof

    async def _read_head(self) -> h11.Request | _Refused | None:
        """The request head, measured exactly and checked strictly (relay.http.framing) before h11 parses it.

        The head's bytes are collected as they arrive (``_raw``, which begins with what h11 already held)
        and scanned once each, so a head dribbled a byte at a time costs no more than one sent at once.
        """
        raw = self._raw
        assert raw is not None
        limit = self.limits.max_head_bytes
        scanned = 0
        while (end := raw.find(framing.HEAD_END, max(0, scanned - 3))) < 0:
            if framing.bare_lf(raw, scanned):
                return _Refused(400, "malformed HTTP request: a line ends in a bare LF")
            if len(raw) > limit:
                return _Refused(431, _HEAD_TOO_LARGE)
            if self.eof:
                break  # h11 says what an unfinished head at EOF is
            scanned = len(raw)
            await self._more()
        self._raw = None
        if end >= 0:
            if end + len(framing.HEAD_END) > limit:
                return _Refused(431, _HEAD_TOO_LARGE)
            whole = bytes(raw[: end + len(framing.HEAD_END)])
            refusal = framing.check_head(whole)
            if refusal is not None:
                return _Refused(refusal.status, refusal.message, refusal.code, framing.request_path(whole))
        try:
            event = self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            return _Refused(exc.error_status_hint, _protocol_message(exc))
        return event if isinstance(event, h11.Request) else None

    def _limit(self, path: str) -> int:
        return self._body_limit(path) if self._body_limit is not None else self.limits.max_body_bytes

    async def _streamed_request(self, head: h11.Request, path: str, query: str, deadline: float) -> Request | None:
        """The request with its body to be read as it arrives; a declared length over the limit is refused here."""
        limit = self._limit(path)
        length = _content_length(head.headers)
        if length is not None and length > limit:
            return await self._refuse(413, f"request body of {length} bytes exceeds the limit of {limit} bytes", path)
        return Request(
            method=head.method.decode("ascii"),
            path=path,
            query=query,
            headers=list(head.headers),
            body=b"",
            client=self.client,
            body_stream=BodyReader(self, length, limit, deadline),
        )

    async def send_continue(self) -> None:
        """``100 Continue``, when the client waits for it before sending its body."""
        if self.h11.they_are_waiting_for_100_continue:
            await self._send(self.h11.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))

    async def next_body_event(self) -> h11.Event | type[h11.PAUSED] | BodyError:
        """The next event of a streamed body (``BodyReader``); a framing error as a ``BodyError``."""
        event = await self._next_event()
        return BodyError(event.status, event.message) if isinstance(event, _Refused) else event

    async def _read_body(self, head: h11.Request, path: str) -> bytes | None:
        """The whole body, or None once an error was answered (or the client left).

        With a Content-Length the body is copied into one buffer of that size as it arrives (no list of
        pieces to join, so no second body-sized allocation at the end).
        """
        limit = self._limit(path)
        length = _content_length(head.headers)
        if length is not None and length > limit:
            return await self._refuse(413, f"request body of {length} bytes exceeds the limit of {limit} bytes", path)
        await self.send_continue()
        if length is not None:
            return await self._read_sized_body(length, path)
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    return await self._refuse(413, f"request body exceeds the limit of {limit} bytes", path)
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            elif isinstance(event, _Refused):
                return await self._refuse(event.status, event.message, path)
            else:
                return None  # closed mid-body

    async def _read_sized_body(self, length: int, path: str) -> bytes | None:
        if length == 0:
            event = await self._next_event()
            if isinstance(event, h11.EndOfMessage):
                return b""
            return await self._refuse(event.status, event.message, path) if isinstance(event, _Refused) else None
        body = bytearray(length)
        view = memoryview(body)
        size = 0
        try:
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Data):
                    view[size : size + len(event.data)] = event.data  # h11 never hands out more than Content-Length
                    size += len(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return bytes(body)
                elif isinstance(event, _Refused):
                    return await self._refuse(event.status, event.message, path)
                else:
                    return None  # closed mid-body
        finally:
            view.release()

    async def _next_event(self) -> h11.Event | type[h11.PAUSED] | _Refused:
        conn = self.h11
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return _Refused(exc.error_status_hint, _protocol_message(exc))
            if event is h11.NEED_DATA:
                await self._more()
                continue
            return event

    # ---- answering -----------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> None:
        writer = Writer(self, request)
        if isinstance(request.websocket, Upgrade):
            request.websocket.writer = writer
        with trio.CancelScope() as self._handling:
            if self.eof:
                self.client_gone = True
                return  # the client left before its answer could start
            try:
                await self._answer(request, writer)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.client_gone = True
        self._handling = None

    async def _answer(self, request: Request, writer: Writer) -> None:
        try:
            response = await self.app.handle(request, writer)
        except Aborted:
            self.client_gone = True  # the answer is cut: the connection closes without its end
            return
        except BodyError as exc:  # a streamed body the app did not turn into an answer of its own
            if writer.started:
                self.client_gone = True
                return
            response = self.app.error(exc.status, exc.message, request.path)
        except Exception:
            if self.client_gone or self.upgraded:
                if self.upgraded and not self.client_gone:
                    log.exception("unhandled error in the WebSocket of %s", request.path)
                return  # the client left, or a write to it was cut short: not a bug; the connection closes
            log.exception("unhandled error in %s %s", request.method, request.path)
            if writer.started:
                self.client_gone = True  # a truncated stream must not look complete
                return
            response = self.app.error(500, "internal error", request.path)
        if self.upgraded:
            return  # the WebSocket closed itself: nothing of HTTP follows
        if writer.started:
            await writer.finish()
            return
        response = response or self.app.error(500, "no response", request.path)
        try:
            await writer.respond(response)
        finally:
            if self._heap is not None and len(response.body) >= LARGE:
                self._heap.freed()  # a large answer (and the upstream's copy of it) to a small request

    def wants_close(self) -> bool:
        """Whether the answer being written is the connection's last: shutdown, the request count, or a streamed
        body the app answered before reading it to its end (its rest cannot be told from the next request)."""
        return (
            self.shutdown.begun
            or self.served + 1 >= self.limits.max_requests_per_connection
            or self.h11.their_state is h11.SEND_BODY
        )

    async def _refuse(self, status: int, message: str, path: str | None, code: str | None = None) -> None:
        """Answer a request h11 could not take in, outside h11's state machine, and close."""
        response = self.app.error(status, message, path, code=code)
        head = [b"HTTP/1.1 %d " % status + reason(status)]
        for name, value in (
            *response.headers,
            (b"content-length", str(len(response.body)).encode()),
            (b"connection", b"close"),
            (b"date", http_date()),
        ):
            head.append(name + b": " + value)
        try:
            await self._send(b"\r\n".join(head) + b"\r\n\r\n" + response.body)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        return None

    async def _send(self, data: bytes) -> None:
        """Write to the client under the write deadline (``write_timeout`` without progress)."""
        await send_all(self.stream, data, self.limits.write_timeout)

    async def _close(self) -> None:
        """Half-close, drain what the client still sends for a moment, then close (no RST on the answer)."""
        with trio.move_on_after(_LINGER_SECONDS, shield=True):
            try:
                if not self.client_gone:
                    await self.stream.send_eof()
                    while await self.stream.receive_some(RECEIVE_SIZE):
                        pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, OSError):
                pass
        await trio.aclose_forcefully(self.stream)


class _Refused:
    __slots__ = ("code", "message", "path", "status")

    def __init__(self, status: int, message: str, code: str | None = None, path: str | None = None) -> None:
        self.status = status
        self.message = message
        self.code = code
        self.path = path


def _content_length(headers: Headers) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # h11 has validated it
    return None


_HEAD_TOO_LARGE = "request head too large"


def _protocol_message(exc: h11.RemoteProtocolError) -> str:
    if exc.error_status_hint == 431:
        return _HEAD_TOO_LARGE
    return f"malformed HTTP request: {exc}"


async def serve_connection(
    stream: trio.SocketStream,
    app: App,
    limits: Limits,
    shutdown: Shutdown,
    pending: PendingHeads | None = None,
    heap: HeapTrimmer | None = None,
) -> None:
    """Serve one accepted connection; a bug in it is logged and never stops the server.

    A connection from an address that already has ``max_pending_per_address`` connections sending their
    heads is closed at once, unanswered: it has not said which API it speaks, and answering costs more.
    """
    connection = Connection(stream, app, limits, shutdown, pending, heap)
    if not connection.count_pending():
        await trio.aclose_forcefully(stream)
        return
    try:
        await connection.run()
    except Exception:
        log.exception("connection from %s failed", connection.client)

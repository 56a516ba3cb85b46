"""One h11 loop per connection: limits, timeouts, keep-alive, pipelining and the disconnect watch.

The loop reads one request (head, then body), hands it to the application with a watcher task
reading the socket, writes the answer, and starts the next cycle. Requests pipelined behind the
current one wait in h11's buffer and are answered in order.
"""

from __future__ import annotations

import logging
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol

import h11
import trio

from relay.http.limits import Limits
from relay.http.messages import Headers, Request, Response, StreamResponse

log = logging.getLogger("relay.http")

RECEIVE_SIZE = 64 * 1024
#: Bytes of a pipelined next request the watcher buffers before it stops reading the socket.
_WATCH_BUFFER = 64 * 1024
_LINGER_SECONDS = 1.0


class App(Protocol):
    async def handle(self, request: Request, stream: StreamResponse) -> Response | None: ...

    def error(self, status: int, message: str, path: str | None) -> Response:
        """A protocol-level error (400, 408, 413, 431, 500) in the shape the path's clients expect."""
        ...


class Shutdown:
    """Shared by a server's connections: once begun, idle connections close and busy ones finish."""

    def __init__(self) -> None:
        self.begun = False
        self.event = trio.Event()
        self._idle: set[trio.CancelScope] = set()

    def begin(self) -> None:
        self.begun = True
        self.event.set()
        for scope in self._idle:
            scope.cancel()

    def watch_idle(self, scope: trio.CancelScope) -> None:
        if self.begun:
            scope.cancel()
        self._idle.add(scope)

    def unwatch_idle(self, scope: trio.CancelScope) -> None:
        self._idle.discard(scope)


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode())
    return _date_cache[1]


class Connection:
    def __init__(self, stream: trio.SocketStream, app: App, limits: Limits, shutdown: Shutdown) -> None:
        self.stream = stream
        self.app = app
        self.limits = limits
        self.shutdown = shutdown
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head_bytes)
        self.served = 0
        self.client_gone = False
        try:
            host, port = stream.socket.getpeername()[:2]
            self.client = f"{host}:{port}"
        except OSError:
            self.client = "unknown"

    async def run(self) -> None:
        try:
            while True:
                request = await self._read_request()
                if request is None:
                    return
                await self._dispatch(request)
                self.served += 1
                if self.client_gone or self.h11.our_state is not h11.DONE:
                    return
                if self.h11.their_state is not h11.DONE:
                    return  # the handler answered without the body being read: cannot reuse
                self.h11.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            await self._close()

    # ---- reading ------------------------------------------------------------------------------

    async def _read_request(self) -> Request | None:
        conn = self.h11
        if self.served and not conn.trailing_data[0]:
            if not await self._wait_idle():
                return None
        with trio.move_on_after(self.limits.head_timeout) as scope:
            event = await self._next_event()
        if scope.cancelled_caught:
            if self.served == 0 and not conn.trailing_data[0]:
                return None  # a connection that never said anything: close quietly
            return await self._refuse(408, "request head not received in time", None)
        if isinstance(event, _Refused):
            return await self._refuse(event.status, event.message, None)
        if not isinstance(event, h11.Request):
            return None  # ConnectionClosed
        head = event
        path, _, query = head.target.decode("latin-1").partition("?")
        length = _content_length(head.headers)
        if length is not None and length > self.limits.max_body_bytes:
            return await self._refuse(
                413, f"request body of {length} bytes exceeds the limit of {self.limits.max_body_bytes} bytes", path
            )
        if conn.they_are_waiting_for_100_continue:
            await self.stream.send_all(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        chunks: list[bytes] = []
        size = 0
        with trio.move_on_after(self.limits.body_timeout) as scope:
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > self.limits.max_body_bytes:
                        return await self._refuse(
                            413, f"request body exceeds the limit of {self.limits.max_body_bytes} bytes", path
                        )
                    chunks.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, _Refused):
                    return await self._refuse(event.status, event.message, path)
                else:
                    return None  # closed mid-body
        if scope.cancelled_caught:
            return await self._refuse(408, "request body not received in time", path)
        return Request(
            method=head.method.decode("ascii"),
            path=path,
            query=query,
            headers=list(head.headers),
            body=b"".join(chunks),
            client=self.client,
        )

    async def _wait_idle(self) -> bool:
        """Wait for the first byte of the next request; False when the connection should close."""
        with trio.CancelScope(deadline=trio.current_time() + self.limits.keepalive_timeout) as idle:
            self.shutdown.watch_idle(idle)
            try:
                data = await self.stream.receive_some(RECEIVE_SIZE)
            finally:
                self.shutdown.unwatch_idle(idle)
        if idle.cancelled_caught or not data:
            return False
        self.h11.receive_data(data)
        return True

    async def _next_event(self) -> h11.Event | type[h11.PAUSED] | _Refused:
        conn = self.h11
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return _Refused(exc.error_status_hint, _protocol_message(exc))
            if event is h11.NEED_DATA:
                conn.receive_data(await self.stream.receive_some(RECEIVE_SIZE))
                continue
            return event

    # ---- answering -----------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> None:
        writer = _Writer(self, request)
        response: Response | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch, nursery.cancel_scope)
            try:
                response = await self.app.handle(request, writer)
            except Exception:
                log.exception("unhandled error in %s %s", request.method, request.path)
                if writer.started:
                    self.client_gone = True  # a truncated stream must not look complete
                    nursery.cancel_scope.cancel()
                    return
                response = self.app.error(500, "internal error", request.path)
            if writer.started:
                await writer.finish()
            else:
                await writer.respond(response or self.app.error(500, "no response", request.path))
            nursery.cancel_scope.cancel()

    async def _watch(self, scope: trio.CancelScope) -> None:
        """Read the socket while a request is handled: EOF means the client left, so cancel."""
        while len(self.h11.trailing_data[0]) < _WATCH_BUFFER:
            data = await self.stream.receive_some(RECEIVE_SIZE)
            if not data:
                self.client_gone = True
                scope.cancel()
                return
            self.h11.receive_data(data)

    def wants_close(self) -> bool:
        return self.shutdown.begun or self.served + 1 >= self.limits.max_requests_per_connection

    async def _refuse(self, status: int, message: str, path: str | None) -> None:
        """Answer a request h11 could not take in, outside h11's state machine, and close."""
        response = self.app.error(status, message, path)
        head = [b"HTTP/1.1 %d " % status + reason(status)]
        for name, value in (
            *response.headers,
            (b"content-length", str(len(response.body)).encode()),
            (b"connection", b"close"),
            (b"date", http_date()),
        ):
            head.append(name + b": " + value)
        try:
            await self.stream.send_all(b"\r\n".join(head) + b"\r\n\r\n" + response.body)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        return None

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


class _Writer:
    """The connection's StreamResponse: the head goes out with the first chunk, in one write."""

    def __init__(self, connection: Connection, request: Request) -> None:
        self._c = connection
        self._request = request
        self._head = b""
        self.started = False

    def _headers(self, headers: Headers) -> list[tuple[bytes, bytes]]:
        out = [(b"date", http_date()), *headers]
        if self._request.id:
            out.append((b"x-request-id", self._request.id.encode()))
        if self._c.wants_close():
            out.append((b"connection", b"close"))
        return out

    async def start(self, status: int, headers: Headers) -> None:
        if self.started:
            raise RuntimeError("response already started")
        self.started = True
        self._head = self._c.h11.send(
            h11.Response(status_code=status, headers=self._headers(headers), reason=reason(status))
        )

    async def send(self, data: bytes) -> None:
        if not data:
            return
        out = self._c.h11.send(h11.Data(data=data))
        if self._head:
            out, self._head = self._head + out, b""
        await self._c.stream.send_all(out)

    async def finish(self) -> None:
        await self._c.stream.send_all(self._head + self._c.h11.send(h11.EndOfMessage()))
        self._head = b""

    async def respond(self, response: Response) -> None:
        self.started = True
        headers = self._headers(response.headers)
        headers.append((b"content-length", str(len(response.body)).encode()))
        conn = self._c.h11
        out = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason(response.status)))
        if response.body and self._request.method != "HEAD":
            out += conn.send(h11.Data(data=response.body))
        await self._c.stream.send_all(out + conn.send(h11.EndOfMessage()))


class _Refused:
    __slots__ = ("message", "status")

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


def _content_length(headers: Headers) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # h11 has validated it
    return None


def _protocol_message(exc: h11.RemoteProtocolError) -> str:
    if exc.error_status_hint == 431:
        return "request head too large"
    return f"malformed HTTP request: {exc}"


_REASONS = {int(s): s.phrase.encode() for s in HTTPStatus}


def reason(status: int) -> bytes:
    return _REASONS.get(status, b"")


async def serve_connection(stream: trio.SocketStream, app: App, limits: Limits, shutdown: Shutdown) -> None:
    await Connection(stream, app, limits, shutdown).run()

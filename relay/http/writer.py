"""The connection's StreamResponse, the Date header and reason phrases.

A response head is held back and goes out with the first chunk of the body, in one write.

A stream's body pieces are framed here (HTTP/1.1 chunks, written by hand once h11 has chosen chunked
framing: h11's ``send(Data(...))`` cost more than the write) and written at once when the client's socket
takes them (``send_nowait``: one ``send`` system call, no cancel scope, no trip through the scheduler). Only
a piece the socket cannot take at once goes the slow way (``send``), under the write timeout.
"""

from __future__ import annotations

import os
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

import h11
import trio

from relay.http.messages import Headers, Request, Response

if TYPE_CHECKING:
    from relay.http.peer import ResponseSink
    from relay.http.shutdown import Shutdown


class Writer:
    """The connection's StreamResponse: the head goes out with the first chunk, in one write."""

    def __init__(self, connection: ResponseSink, request: Request) -> None:
        self._c = connection
        self._request = request
        self._head = b""
        self.started = False
        #: The body goes in HTTP/1.1 chunks that this writer frames itself (h11 chose chunked framing).
        self._chunked = False
        #: Framed bytes ``send_nowait`` could not write at once: the next ``send`` writes them first.
        self._unsent = b""

    @property
    def gone(self) -> bool:
        """The client closed or reset its side of the connection (or a write to it failed)."""
        return self._c.client_gone or self._c.eof

    @property
    def shutdown(self) -> Shutdown:
        return self._c.shutdown

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
        # h11 adds this header itself when it frames the body in chunks (no content-length, an HTTP/1.1 client);
        # to a HEAD it announces the same head but sends no body, so its own writer stays in charge there.
        self._chunked = self._request.method != "HEAD" and b"\r\ntransfer-encoding: chunked\r\n" in self._head.lower()

    def _framed(self, data: bytes) -> bytes:
        """``data`` as the body's next bytes on the wire, the held-back head and unsent bytes before it."""
        if self._chunked:
            out = b"%x\r\n%b\r\n" % (len(data), data)  # h11 is past the head: it tracks no chunk state
        else:
            out = self._c.h11.send(h11.Data(data=data))
        if self._head or self._unsent:
            out, self._head, self._unsent = self._head + self._unsent + out, b"", b""
        return out

    def send_nowait(self, data: bytes) -> bool:
        """Write ``data`` if the client's socket takes it all at once; False when some is left (then ``send``
        must follow: it writes the rest first). Once started only; without a wait, so without a timeout."""
        if not data:
            return not self._unsent
        if self._unsent:  # the client is still behind: queue behind what waits (``_framed`` puts it first)
            self._unsent = self._framed(data)
            return False
        out = self._framed(data)
        sent = self._write_now(out)
        if sent == len(out):
            return True
        self._unsent = out[sent:]
        return False

    def _write_now(self, data: bytes) -> int:
        """Bytes of ``data`` the client's socket took at once (one ``send`` system call, no wait)."""
        try:
            return os.write(self._c.stream.socket.fileno(), data)
        except OSError:  # BlockingIOError: the socket is full; any other failure shows again in ``send_all``
            return 0

    async def send(self, data: bytes) -> None:
        if not data and not self._unsent:
            return
        await self._write(self._framed(data) if data else self._framed_unsent())

    def _framed_unsent(self) -> bytes:
        out, self._head, self._unsent = self._head + self._unsent, b"", b""
        return out

    async def finish(self) -> None:
        head, self._head, unsent, self._unsent = self._head, b"", self._unsent, b""
        await self._write(head + unsent + self._c.h11.send(h11.EndOfMessage()))

    async def _write(self, data: bytes) -> None:
        """Write, or mark the connection unusable: h11 counts the bytes as sent even if they were not
        (a write cut by cancellation, or by the client leaving), so nothing may follow them."""
        done = False
        try:
            sent = self._write_now(data)  # the usual case: all of it, with no scope and no trip to the scheduler
            if sent < len(data):
                await send_all(self._c.stream, data[sent:], self._c.limits.write_timeout)
            done = True
        finally:
            if not done:
                self._c.client_gone = True

    async def respond(self, response: Response) -> None:
        self.started = True
        headers = self._headers(response.headers)
        headers.append((b"content-length", str(len(response.body)).encode()))
        conn = self._c.h11
        out = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason(response.status)))
        if response.body and self._request.method != "HEAD":
            out += conn.send(h11.Data(data=response.body))
        await self._write(out + conn.send(h11.EndOfMessage()))


#: Bytes written under one write deadline: a large answer to a slow reader must progress, not finish, in time.
_WRITE_SLICE = 64 * 1024


async def send_all(stream: trio.SocketStream, data: bytes, timeout: float) -> None:
    """``stream.send_all(data)``, raising ``trio.BrokenResourceError`` when the client takes nothing for
    ``timeout`` seconds (each 64 KiB slice has that long): a client that does not read is treated as gone."""
    view = memoryview(data)
    for start in range(0, len(view), _WRITE_SLICE):
        with trio.move_on_after(timeout) as scope:
            await stream.send_all(view[start : start + _WRITE_SLICE])
        if scope.cancelled_caught:
            raise trio.BrokenResourceError(f"the client took no bytes for {timeout:g}s (write_timeout)")


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode())
    return _date_cache[1]


_REASONS = {int(s): s.phrase.encode() for s in HTTPStatus}


def reason(status: int) -> bytes:
    return _REASONS.get(status, b"")

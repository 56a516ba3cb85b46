"""The connection's StreamResponse, the Date header and reason phrases.

A response head is held back and goes out with the first chunk of the body, in one write.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

import h11
import trio

from relay.http.messages import Headers, Request, Response

if TYPE_CHECKING:
    from relay.http.connection import Connection, Shutdown


class Writer:
    """The connection's StreamResponse: the head goes out with the first chunk, in one write."""

    def __init__(self, connection: Connection, request: Request) -> None:
        self._c = connection
        self._request = request
        self._head = b""
        self.started = False

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

    async def send(self, data: bytes) -> None:
        if not data:
            return
        out = self._c.h11.send(h11.Data(data=data))
        if self._head:
            out, self._head = self._head + out, b""
        await self._write(out)

    async def finish(self) -> None:
        head, self._head = self._head, b""
        await self._write(head + self._c.h11.send(h11.EndOfMessage()))

    async def _write(self, data: bytes) -> None:
        """Write, or mark the connection unusable: h11 counts the bytes as sent even if they were not
        (a write cut by cancellation, or by the client leaving), so nothing may follow them."""
        done = False
        try:
            await send_all(self._c.stream, data, self._c.limits.write_timeout)
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

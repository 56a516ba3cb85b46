"""The connection's StreamResponse, the Date header and reason phrases.

A response head is held back and goes out with the first chunk of the body, in one write.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

import h11

from relay.http.messages import Headers, Request, Response

if TYPE_CHECKING:
    from relay.http.connection import Connection


class Writer:
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
        await self._write(out)

    async def finish(self) -> None:
        head, self._head = self._head, b""
        await self._write(head + self._c.h11.send(h11.EndOfMessage()))

    async def _write(self, data: bytes) -> None:
        """Write, or mark the connection unusable: h11 counts the bytes as sent even if they were not
        (a write cut by cancellation, or by the client leaving), so nothing may follow them."""
        done = False
        try:
            await self._c.stream.send_all(data)
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

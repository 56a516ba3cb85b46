"""A request body read as it arrives, for routes that stream uploads to the upstream.

For such a route (the app's ``streams_body(path)`` says so) the connection hands the request to the app as soon
as its head is in: ``Request.body`` is empty and ``Request.body_stream`` is a ``BodyReader``. The app reads the
body piece by piece (each piece what one socket read brought, 64 KiB at most), so the whole body is never in
memory. Everything that bounds a whole body bounds a streamed one the same way:

- a declared Content-Length over the route's limit is refused (413) before a byte of the body is read, by the
  connection, before the app is called; a chunked body that grows past the limit fails its next ``receive``;
- ``100 Continue`` is sent when the app first asks for the body (an app that refuses the request first, as an
  unknown key, spares the client the upload);
- the body must be in within ``[limits] body_timeout`` of the end of the head, as for a whole body; then
  ``receive`` raises ``BodyError`` 408 (and the app answers it in the route's dialect);
- a client that closes its socket mid-body cancels the handler, as a client gone during any answer does.

A request whose body was not read to its end cannot leave the connection reusable: its answer says
``Connection: close`` and the connection closes after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import h11
import trio

from relay.http.messages import BodyError

if TYPE_CHECKING:
    from relay.http.peer import BodySource


class BodyReader:
    """``relay.http.messages.BodyStream`` over one connection's h11 state; read only by the request's handler."""

    __slots__ = ("_conn", "_continued", "_deadline", "_limit", "done", "length", "received")

    def __init__(self, conn: BodySource, length: int | None, limit: int, deadline: float) -> None:
        self._conn = conn
        self.length = length
        self.received = 0
        self._limit = limit
        #: ``trio.current_time()`` by which the whole body must be in (``body_timeout`` from the head's end).
        self._deadline = deadline
        self._continued = False
        self.done = False

    async def receive(self) -> bytes | None:
        if self.done:
            return None
        conn = self._conn
        if not self._continued:
            self._continued = True
            await conn.send_continue()
        with trio.move_on_at(self._deadline):
            event = await conn.next_body_event()
            if isinstance(event, h11.Data):
                self.received += len(event.data)
                if self.received > self._limit:
                    raise BodyError(413, f"request body exceeds the limit of {self._limit} bytes")
                return bytes(event.data)
            if isinstance(event, h11.EndOfMessage):
                self.done = True
                return None
            if isinstance(event, BodyError):
                raise event
            raise BodyError(400, "the request body ended before its end (the connection closed mid-body)")
        raise BodyError(408, "request body not received in time")

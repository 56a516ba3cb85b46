"""What the HTTP layer hands to the application, and what the application hands back.

A handler is ``async def handler(request, stream) -> Response | None``: it returns a whole
``Response``, or it streams through ``stream`` (``start`` once, then ``send`` per chunk) and returns
None. ``send`` returns only when the bytes are written, which is the backpressure.

A request's body is in ``body``, whole, unless its route reads it as it arrives (an upload streamed to the
upstream: ``relay.http.body_stream``); then ``body`` is empty and ``body_stream`` gives it piece by piece.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl

import attrs
import orjson

if TYPE_CHECKING:
    from relay.http.shutdown import Shutdown
    from relay.http.websocket import Upgrade

Headers = Sequence[tuple[bytes, bytes]]


class BodyStream(Protocol):
    """A request body read as it arrives (``relay.http.body_stream.BodyReader``)."""

    #: The body's declared length (Content-Length), None when it comes in chunks.
    length: int | None
    #: Bytes received so far.
    received: int

    async def receive(self) -> bytes | None:
        """The body's next piece, None at its end; ``BodyError`` when it cannot be read whole."""
        ...


class BodyError(Exception):
    """A streamed body could not be read whole: 400 (malformed framing, cut short), 408 (not received within
    ``[limits] body_timeout`` of the head), 413 (over the route's limit). The connection closes after the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Releasable(Protocol):
    """Something the application keeps of a request only until its answer starts (``Request.retain``)."""

    def release(self) -> None: ...


@attrs.define(slots=True, eq=False)
class Request:
    method: str
    path: str
    query: str
    #: Header names are lower-case (h11 normalises them); values are raw bytes.
    headers: list[tuple[bytes, bytes]]
    body: bytes
    client: str
    #: Path parameters filled in by the router, e.g. ``{"model": "gpt-4o"}``.
    params: dict[str, str] = attrs.field(factory=dict)
    #: Request id: echoed to the client as ``x-request-id``.
    id: str = ""
    #: Who sent it, as the application established (for logs): ``-`` until then.
    principal: str = "-"
    #: The token usage the upstream reported (a ``relay.dialects.ir.Usage``), for the logs: None until then.
    usage: object = None
    #: What the application records of the request as it goes (Relay's ``gateway.tally.Tally``).
    record: object = None
    #: What the application keeps of the request's content to try it again (``retain``), until the answer starts.
    retained: list[Releasable] = attrs.field(factory=list)
    #: The body as it arrives, for a route that reads it so; None: ``body`` holds it whole.
    body_stream: BodyStream | None = None
    #: Part of a streamed body went upstream and cannot be read again: no other attempt may follow.
    body_spent: bool = False
    #: A request asking to become a WebSocket: its ``relay.http.websocket.Upgrade`` (None: a plain request).
    websocket: Upgrade | None = None

    def retain(self, held: Releasable) -> None:
        """Keep ``held`` (a parsed copy of the body, for failover) only until the answer starts."""
        self.retained.append(held)

    def let_go(self) -> None:
        """The answer started: no other attempt can follow, so the body and what was parsed from it are let go.

        A stream lasts minutes and holds its request all along otherwise: its bytes, its headers, its parsed
        payload, the body written for the upstream (docs/performance.md, memory per open stream).
        """
        self.body = b""
        self.headers = []
        retained, self.retained = self.retained, []
        for held in retained:
            held.release()

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def query_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True)) if self.query else {}


@attrs.frozen
class Response:
    status: int
    body: bytes = b""
    headers: Headers = ()

    @classmethod
    def json(cls, status: int, payload: object, headers: Headers = ()) -> Response:
        return cls(status, orjson.dumps(payload), ((b"content-type", b"application/json"), *headers))


class StreamResponse(Protocol):
    """A response written piece by piece; the connection implements it."""

    @property
    def started(self) -> bool: ...

    async def start(self, status: int, headers: Headers) -> None: ...

    async def send(self, data: bytes) -> None: ...

    def send_nowait(self, data: bytes) -> bool:
        """Write ``data`` (once started) if the client takes it at once; False: ``send`` must write the rest."""
        ...

    @property
    def gone(self) -> bool:
        """The client has gone away: what is still written is lost."""
        ...

    @property
    def shutdown(self) -> Shutdown:
        """The server's shutdown: a stream registers its waits with it to end itself before the grace runs out."""
        ...


Handler = Callable[[Request, StreamResponse], Awaitable[Response | None]]


class Aborted(Exception):
    """Raised by a handler whose started response cannot end properly (the upstream failed mid-answer, the
    client stopped reading): the connection closes without the response's end, so the client sees it cut,
    never a shorter answer that looks whole. Expected, so the server logs no error for it."""

"""What the upstream leg sends and gets back: a request, a response and the transport between them.

Relay's own small types, not httpx's: an upstream exchange needs a status, a few headers and the body
piece by piece, and building httpx's ``Request``, ``URL``, ``Headers`` and ``Response`` (with its byte
stream and two nested async generators per body piece) cost about as much CPU as Relay's own pool did
(docs/performance.md). Two transports implement ``Transport``: the HTTP/1.1 pool (``relay.upstream.pool``)
and the in-process mock model (``relay.mock.transport``).

A request body is bytes, or a ``StreamedBody`` (an upload passed on as the client sends it): its pieces from an
async iterator, framed with its Content-Length when known, else in chunks.

A body is read with ``receive``: one awaited call per piece, no async generator in between. Failures are
``relay.upstream.errors.TransportError``s, which ``relay.upstream.errors.relay_error`` maps to the client's
errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from typing import Protocol

#: Where a request goes: scheme (``b"http"``/``b"https"``), host and port.
Origin = tuple[bytes, str, int]
RawHeaders = Sequence[tuple[bytes, bytes]]


class StreamedBody:
    """A request body sent as it is produced: ``pieces`` (iterated once) and their total ``length`` when known."""

    __slots__ = ("length", "pieces")

    def __init__(self, pieces: AsyncIterable[bytes], length: int | None = None) -> None:
        self.pieces = pieces
        #: The body's length (its Content-Length); None: sent with chunked framing.
        self.length = length

    async def read(self) -> bytes:
        """The whole body (for a transport that takes whole bodies, as the in-process mock)."""
        return b"".join([piece async for piece in self.pieces])


class UpstreamRequest:
    """One request to the upstream (a POST unless ``method`` says otherwise), its bytes ready to write but for
    the head's framing."""

    __slots__ = ("authority", "body", "connect_timeout", "headers", "method", "origin", "target")

    def __init__(
        self,
        origin: Origin,
        authority: bytes,
        target: bytes,
        headers: RawHeaders,
        body: bytes | StreamedBody,
        connect_timeout: float | None = None,
        method: bytes = b"POST",
    ) -> None:
        self.origin = origin
        #: The ``host`` header's value (the host, and the port when it is not the scheme's own).
        self.authority = authority
        #: The request target: the path and the query, percent-encoded.
        self.target = target
        self.headers = headers
        self.body = body
        #: Seconds a new connection may take (TCP and TLS); None: no limit of the transport's own.
        self.connect_timeout = connect_timeout
        self.method = method

    @property
    def path(self) -> str:
        return self.target.partition(b"?")[0].decode("ascii")

    @property
    def query(self) -> str:
        return self.target.partition(b"?")[2].decode("ascii")


class UpstreamResponse:
    """An upstream answer once its head is in; its body is read with ``receive`` and must be ``aclose``d.

    ``receive`` is the body's own bound method (the pool's connection reader, or the mock's frames), so a
    stream's loop pays one call per piece.
    """

    __slots__ = ("aclose", "headers", "receive", "release", "status")

    def __init__(
        self,
        status: int,
        headers: RawHeaders,
        receive: Callable[[], Awaitable[bytes | None]],
        aclose: Callable[[], Awaitable[None]],
        release: Callable[[], bool] | None = None,
    ) -> None:
        self.status = status
        #: Names lower-cased, in the order received.
        self.headers = headers
        #: The body's next piece (everything one socket read brought), None once the body ended.
        self.receive = receive
        #: Let the body go: the connection goes back to the pool when the body was read to its end, else
        #: it closes (that is how an abandoned stream ends the upstream request).
        self.aclose = aclose
        #: Let the body go without waiting, when that needs no wait (the pool: an answer read to its end puts its
        #: connection back); False: ``aclose`` must do it. Saves the close its shielded cancel scope (2.9% of a
        #: worker's time at concurrency 64, py-spy).
        self.release = release or _not_at_once

    def header(self, name: bytes) -> bytes | None:
        """The first value of the header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def read(self) -> bytes:
        """The whole body, without limits or timeouts (tests and tools; an exchange uses ``read_body``)."""
        parts: list[bytes] = []
        while (piece := await self.receive()) is not None:
            parts.append(piece)
        return b"".join(parts)


class Transport(Protocol):
    """Sends a request and returns its answer once the head is in (its body still to read)."""

    async def send(self, request: UpstreamRequest) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


def _not_at_once() -> bool:
    return False

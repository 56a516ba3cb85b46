"""One upstream exchange under its channel's timeouts: opening it, reading its chunks, its body, its end.

All timeouts of an exchange live here; ``Channel.send`` only sends.

The total timeout is a deadline, not a cancel scope around the whole exchange: each upstream wait
ends at the sooner of its own timeout (first byte, idle gap) and the deadline, and the caller bounds
its own writes to the client by the same deadline. So a write to the client is never cut in half
by a timeout meant for the upstream without the caller knowing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import trio

from relay.errors import RelayError
from relay.upstream.channels import Channel
from relay.upstream.errors import TransportError, relay_error
from relay.upstream.response import StreamedBody, UpstreamResponse

#: Largest upstream answer (a whole body, or one stream event) held in memory.
MAX_UPSTREAM_BODY = 64 * 1024 * 1024
#: Seconds to wait, after a stream's terminal event, for the upstream to end its answer (so that its
#: connection can be reused); the relay does not wait longer than this for bytes it would drop.
DRAIN_AFTER_END = 1.0
#: Seconds closing an upstream response may take (it is shielded from cancellation).
CLOSE_GRACE = 1.0
#: A stream's idle deadline is set this many times ``idle`` ahead, and moved once less than ``idle`` is left.
_IDLE_SLACK = 1.125


class Draining(Protocol):
    """What a stream's read needs of the server's shutdown (``relay.http.connection.Shutdown``)."""

    drain_at: float

    def watch_draining(self, scope: trio.CancelScope) -> None: ...

    def unwatch_draining(self, scope: trio.CancelScope) -> None: ...


class Drained(Exception):
    """The server's drain deadline passed while a stream waited for its next chunk: it must end now."""


class Exchange:
    def __init__(self, channel: Channel, api_key: str = "", forwarded: tuple[tuple[str, str], ...] = ()) -> None:
        self.channel = channel.name
        self.api_key = api_key
        #: The client's headers sent on (``relay.upstream.channels.forwarded``).
        self.forwarded = forwarded
        self.timeouts = channel.config.timeouts
        self._send = channel.send
        #: ``trio.current_time()`` by which the whole exchange, stream included, must be over.
        self.deadline = trio.current_time() + self.timeouts.total
        #: The upstream answered an error status: what the client was told (its ``detail`` the operator's
        #: account), set by ``relay.endpoints.upstream_error``.
        self.error: RelayError | None = None
        #: That error's upstream status as Relay reads it (what retry decisions go by); None: no error answer.
        self.upstream_status: int | None = None

    def total_error(self) -> RelayError:
        return RelayError(
            504,
            "timeout",
            f"the upstream exchange exceeded {self.timeouts.total:g}s",
            code="upstream_timeout",
            detail=f"channel '{self.channel}': the upstream exchange exceeded {self.timeouts.total:g}s",
        )

    def too_large(self, what: str) -> RelayError:
        return RelayError(
            502,
            "upstream",
            f"{what} exceeds {MAX_UPSTREAM_BODY} bytes",
            code="upstream_error",
            detail=f"channel '{self.channel}': {what} exceeds {MAX_UPSTREAM_BODY} bytes",
        )

    async def open(
        self, path: str, body: bytes | StreamedBody, *, method: str = "POST", content_type: str | None = None
    ) -> UpstreamResponse:
        """Send the request (``Channel.send``: a POST of JSON unless ``method`` and ``content_type`` say
        otherwise); the response once its head is in, within ``first_byte`` and the deadline.

        A streamed body (an upload passed on as the client sends it) takes as long as the client does: its
        ``first_byte`` wait starts once its last piece is sent (the client's own pace is bounded by the
        ``[limits] body_timeout``), and the exchange's deadline bounds both.

        The caller must ``close`` the response however it leaves.
        """
        first_byte = trio.current_time() + self.timeouts.first_byte
        with trio.move_on_at(min(first_byte, self.deadline)) as scope:
            if isinstance(body, StreamedBody):
                timer = _FirstByteAfterBody(body, scope, self.timeouts.first_byte, self.deadline)
                body, scope.deadline = timer.body, self.deadline
            try:
                if method == "POST" and content_type is None:
                    return await self._send(path, body, self.api_key, self.forwarded)
                return await self._send(
                    path, body, self.api_key, self.forwarded, method=method, content_type=content_type
                )
            except TransportError as exc:
                raise relay_error(exc, self.channel) from None
        if isinstance(body, StreamedBody):
            first_byte = timer.first_byte  # the body's end plus ``first_byte``; past the deadline while unsent
        if trio.current_time() < first_byte:
            raise self.total_error()
        raise RelayError(
            504,
            "timeout",
            f"no answer from the upstream within {self.timeouts.first_byte:g}s",
            code="upstream_timeout",
            detail=f"channel '{self.channel}': no answer from the upstream within {self.timeouts.first_byte:g}s",
        )

    async def close(self, response: UpstreamResponse) -> None:
        """Close the response (and its connection, if its body was not read to the end), whatever happens.

        An answer read to its end gives its connection back at once (``release``), with no wait to bound."""
        if response.release():
            return
        with trio.move_on_after(CLOSE_GRACE, shield=True):
            await response.aclose()

    def _idle_deadline(self) -> float:
        return min(trio.current_time() + self.timeouts.idle, self.deadline)

    def _silence_error(self) -> RelayError:
        if trio.current_time() >= self.deadline:
            return self.total_error()
        return RelayError(
            504,
            "timeout",
            f"the upstream sent nothing for {self.timeouts.idle:g}s",
            code="upstream_idle_timeout",
            detail=f"channel '{self.channel}': the upstream sent nothing for {self.timeouts.idle:g}s",
        )

    def silence(self, shutdown: Draining | None = None) -> RelayError | Drained:
        """What a wait for a stream's next chunk that was cancelled at its deadline (``arm``) means:
        ``Drained`` past the shutdown's drain deadline, else the idle (or total) timeout's 504."""
        if shutdown is not None and trio.current_time() >= shutdown.drain_at:
            return Drained()
        return self._silence_error()

    def arm(self, scope: trio.CancelScope, shutdown: Draining | None = None) -> None:
        """Set ``scope``'s deadline for a stream's next read: the idle gap, the total deadline, the shutdown's drain.

        The idle deadline moves only when less than ``idle`` is left, and then to ``idle`` and an eighth from now:
        so a stream of many chunks moves it once every eighth of ``idle``, not for each chunk (each move is an
        entry in trio's deadline heap, and a chunk's cost counts), and an upstream silent for ``idle`` is told
        at most an eighth of ``idle`` late. The total deadline and the drain are exact.
        """
        now = trio.current_time()
        idle = self.timeouts.idle
        current = scope.deadline
        if now + idle <= current <= now + idle * _IDLE_SLACK:
            return
        deadline = min(now + idle * _IDLE_SLACK, self.deadline)
        if shutdown is not None:
            deadline = min(deadline, shutdown.drain_at)
        if deadline != current:
            scope.deadline = deadline

    async def read_body(self, response: UpstreamResponse) -> bytes:
        """The whole body; ``idle`` bounds each wait for a chunk, the deadline all of them."""
        parts: list[bytes] = []
        size = 0
        with trio.CancelScope(deadline=self._idle_deadline()) as scope:
            receive = response.receive
            try:
                while (chunk := await receive()) is not None:
                    size += len(chunk)
                    if size > MAX_UPSTREAM_BODY:
                        raise self.too_large("the upstream answer")
                    parts.append(chunk)
                    scope.deadline = self._idle_deadline()
            except TransportError as exc:
                raise relay_error(exc, self.channel, body=True) from None
            return b"".join(parts)
        raise self._silence_error()

    async def drain(self, response: UpstreamResponse) -> None:
        """Read, briefly, what the upstream still sends after its terminal event; failures are ignored."""
        with trio.move_on_at(min(trio.current_time() + DRAIN_AFTER_END, self.deadline)):
            try:
                while await response.receive() is not None:
                    pass
            except TransportError:
                pass


class _FirstByteAfterBody:
    """A streamed body whose end starts the wait for the answer's head: ``first_byte`` seconds from then."""

    __slots__ = ("_deadline", "_scope", "_seconds", "_source", "body", "first_byte")

    def __init__(self, source: StreamedBody, scope: trio.CancelScope, seconds: float, deadline: float) -> None:
        self._source = source
        self._scope = scope
        self._seconds = seconds
        self._deadline = deadline
        #: When the wait for the head ends (the exchange's deadline, and more, until the body is sent).
        self.first_byte = deadline + seconds
        self.body = StreamedBody(self._pieces(), source.length)

    async def _pieces(self) -> AsyncIterator[bytes]:
        async for piece in self._source.pieces:
            yield piece
        self.first_byte = trio.current_time() + self._seconds
        self._scope.deadline = min(self.first_byte, self._deadline)

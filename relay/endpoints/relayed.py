"""The client side of one relayed answer: its stream written with backpressure, and upstream errors.

Before the first byte reaches the client every failure is an error response with its own status
(502, 504, or the upstream's). After it, a failure becomes a final error frame in the client's
dialect and the stream ends cleanly, unless a write to the client was itself overtaken by the total
timeout: a frame cut in half cannot be followed by anything, so the connection is closed instead.
Each upstream chunk's frames are written to the client before the next upstream chunk is read, in one
write, so a client that stops reading stops the upstream read. When Relay shuts down, a stream still
running a moment before the grace runs out ends itself with an error frame (``server_shutting_down``).

The loop does little per chunk, as a stream costs its CPU per frame: one cancel scope for the upstream
reads of the whole stream, whose deadline is moved now and then (``Exchange.arm``: the idle gap, the total
deadline, the shutdown's drain), the body read straight from the upstream response (``receive``), and a
write the client's socket takes at once, which needs no deadline (``send_nowait``). Only a write that must
wait for the client leaves that scope and runs under its own deadline; the reads then go on in a new one.

A stream keeps no chunk once it is written: what it needs should it not reach its end (the output it
produced, its usage) the step object counts on the way.
"""

from __future__ import annotations

from typing import Protocol

import trio

from relay.errors import RelayError, ResponseAborted
from relay.http.messages import Headers, StreamResponse
from relay.upstream.errors import TransportError, relay_error
from relay.upstream.exchange import Drained, Exchange
from relay.upstream.response import UpstreamResponse

JSON: Headers = ((b"content-type", b"application/json"),)
SSE: Headers = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))
#: Seconds the final error frame of a failed stream may take to reach the client.
LAST_WRITE = 1.0


class Steps(Protocol):
    """What turns upstream chunks into the client's bytes (a passthrough or a conversion)."""

    def step(self, chunk: bytes) -> tuple[bytes, bool]:
        """One upstream chunk -> (the client's bytes for it, whether the stream reached its terminal event)."""
        ...

    def end(self) -> bytes:
        """The upstream ended -> the client's last bytes (or a RelayError when the end came too early)."""
        ...


def shutting_down() -> RelayError:
    return RelayError(
        503,
        "upstream",
        "Relay is shutting down; the answer was cut short. Retry the request.",
        code="server_shutting_down",
        headers=((b"retry-after", b"1"),),
    )


class Relayed:
    """Writes one stream to the client, every write bounded by the exchange's deadline."""

    __slots__ = ("exchange", "finished", "headers", "out")

    def __init__(self, out: StreamResponse, exchange: Exchange, headers: Headers = SSE) -> None:
        self.out = out
        self.exchange = exchange
        self.headers = headers
        #: The client has the stream's end (its terminal event, or an end the steps accepted).
        self.finished = False

    async def pump(self, upstream: UpstreamResponse, steps: Steps) -> None:
        """Relay ``upstream``'s body through ``steps`` to the client, to its end or its terminal event."""
        exchange = self.exchange
        shutdown = self.out.shutdown
        while True:
            with trio.CancelScope() as wait:
                shutdown.watch_draining(wait)
                try:
                    behind, stop = await self._relay(upstream, steps, wait)
                finally:
                    shutdown.unwatch_draining(wait)
            if wait.cancelled_caught:  # a read's deadline passed: idle, total, or the shutdown's drain
                silence = exchange.silence(shutdown)
                raise shutting_down() if isinstance(silence, Drained) else silence
            if behind:
                # The client is not keeping up: the rest of the write waits, under the total deadline only, and
                # outside the reads' scope (a write cut by a read's deadline could be followed by nothing).
                await self._flush(exchange.deadline)
            if stop is not None:
                break
        self.finished = True
        if stop:
            await exchange.drain(upstream)

    async def _relay(
        self, upstream: UpstreamResponse, steps: Steps, wait: trio.CancelScope
    ) -> tuple[bool, bool | None]:
        """The loop of ``pump`` in the reads' scope ``wait``, until the client falls behind or the stream stops:
        (whether a write is left for ``_flush``, and None to go on, True at the terminal event (the upstream may
        still send its end), False at the upstream's end)."""
        exchange = self.exchange
        out = self.out
        shutdown = out.shutdown
        receive = upstream.receive
        step = steps.step
        while True:
            exchange.arm(wait, shutdown)
            try:
                chunk = await receive()
            except TransportError as exc:
                raise relay_error(exc, exchange.channel, body=True) from None
            if chunk is None:
                data, done = steps.end(), False
            else:
                data, done = step(chunk)
            stop = done if done or chunk is None else None
            if data:
                if not out.started:
                    await out.start(200, self.headers)
                if not out.send_nowait(data):
                    return True, stop
            if stop is not None:
                return False, stop

    async def send(self, data: bytes, deadline: float) -> None:
        """Write ``data`` by ``deadline``; past it the write may be cut in half, so the response is aborted."""
        out = self.out
        if not out.started:
            await out.start(200, self.headers)
        if not out.send_nowait(data):
            await self._flush(deadline)

    async def _flush(self, deadline: float) -> None:
        """Write what ``send_nowait`` left by ``deadline``; past it the write may be cut in half, so the response
        is aborted."""
        with trio.move_on_at(deadline):
            await self.out.send(b"")
            return
        raise ResponseAborted("the client did not take the stream in time")

    async def fail(self, frame: bytes) -> None:
        """The last frame of a stream that failed after it started."""
        if frame:
            await self.send(frame, trio.current_time() + LAST_WRITE)


def success(status: int) -> bool:
    """Statuses relayed as an answer; 204/205 cannot carry one, and redirects are not followed."""
    return 200 <= status < 300 and status not in (204, 205)

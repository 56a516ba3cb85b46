"""The client side of one relayed answer: its stream written with backpressure, and upstream errors.

Before the first byte reaches the client every failure is an error response with its own status
(502, 504, or the upstream's). After it, a failure becomes a final error frame in the client's
dialect and the stream ends cleanly, unless a write to the client was itself overtaken by the total
timeout: a frame cut in half cannot be followed by anything, so the connection is closed instead.
Each upstream chunk's frames are written to the client before the next upstream chunk is read, so a
client that stops reading stops the upstream read. When Relay shuts down, a stream still running a
moment before the grace runs out ends itself with an error frame (``server_shutting_down``).

A stream keeps no chunk once it is written: what it needs should it not reach its end (the output it
produced, its usage) the step object counts on the way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import httpx
import trio

from relay.errors import RelayError, ResponseAborted
from relay.http.messages import Headers, StreamResponse
from relay.upstream.exchange import Drained, Exchange

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

    async def pump(self, upstream: httpx.Response, steps: Steps) -> None:
        chunks = upstream.aiter_raw()
        while True:
            chunk = await self._next(chunks)
            if chunk is None:
                data = steps.end()
                if data:
                    await self.send(data, self.exchange.deadline)
                self.finished = True
                return
            data, done = steps.step(chunk)
            if data:
                await self.send(data, self.exchange.deadline)
            if done:
                self.finished = True
                await self.exchange.drain(chunks)
                return

    async def _next(self, chunks: AsyncIterator[bytes]) -> bytes | None:
        """The next upstream chunk; a ``server_shutting_down`` error once the shutdown's drain deadline passed."""
        try:
            return await self.exchange.next_chunk(chunks, self.out.shutdown)
        except Drained:
            raise shutting_down() from None

    async def send(self, data: bytes, deadline: float) -> None:
        """Write ``data`` by ``deadline``; past it the write may be cut in half, so the response is aborted."""
        with trio.move_on_at(deadline):
            if not self.out.started:
                await self.out.start(200, self.headers)
            await self.out.send(data)
            return
        raise ResponseAborted("the client did not take the stream in time")

    async def fail(self, frame: bytes) -> None:
        """The last frame of a stream that failed after it started."""
        if frame:
            await self.send(frame, trio.current_time() + LAST_WRITE)


def success(status: int) -> bool:
    """Statuses relayed as an answer; 204/205 cannot carry one, and redirects are not followed."""
    return 200 <= status < 300 and status not in (204, 205)

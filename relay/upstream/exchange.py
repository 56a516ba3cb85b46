"""One upstream exchange under its channel's timeouts: opening it, reading its chunks, its body, its end.

The total timeout is a deadline, not a cancel scope around the whole exchange: each upstream wait
ends at the sooner of its own timeout (first byte, idle gap) and the deadline, and the caller bounds
its own writes to the client by the same deadline. So a write to the client is never cut in half
by a timeout meant for the upstream without the caller knowing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack

import httpx
import trio

from relay.config import ChannelTimeouts
from relay.errors import RelayError
from relay.upstream.errors import upstream_errors

#: Largest upstream answer (a whole body, or one stream event) held in memory.
MAX_UPSTREAM_BODY = 64 * 1024 * 1024
#: Seconds to wait, after a stream's terminal event, for the upstream to end its answer (so that its
#: connection can be reused); the relay does not wait longer than this for bytes it would drop.
DRAIN_AFTER_END = 1.0


class Exchange:
    def __init__(self, channel: str, timeouts: ChannelTimeouts) -> None:
        self.channel = channel
        self.timeouts = timeouts
        #: ``trio.current_time()`` by which the whole exchange, stream included, must be over.
        self.deadline = trio.current_time() + timeouts.total

    def total_error(self) -> RelayError:
        return RelayError(
            504,
            "timeout",
            f"channel '{self.channel}': the upstream exchange exceeded {self.timeouts.total:g}s",
            code="upstream_timeout",
        )

    def too_large(self, what: str) -> RelayError:
        return RelayError(
            502,
            "upstream",
            f"channel '{self.channel}': {what} exceeds {MAX_UPSTREAM_BODY} bytes",
            code="upstream_error",
        )

    async def open(self, stack: AsyncExitStack, request: AbstractAsyncContextManager[httpx.Response]) -> httpx.Response:
        """Enter ``request`` (a ``Channel.post``) on ``stack`` before the deadline."""
        with trio.move_on_at(self.deadline):
            return await stack.enter_async_context(request)
        raise self.total_error()

    async def next_chunk(self, chunks: AsyncIterator[bytes], *, started: bool = False) -> bytes | None:
        """The next upstream chunk, None at the end; a 504 when the upstream is silent for ``idle``."""
        idle = self.timeouts.idle
        with trio.move_on_at(min(trio.current_time() + idle, self.deadline)):
            with upstream_errors(self.channel, started=started):
                return await anext(chunks, None)
        if trio.current_time() >= self.deadline:
            raise self.total_error()
        raise RelayError(
            504,
            "timeout",
            f"channel '{self.channel}': the upstream sent nothing for {idle:g}s",
            code="upstream_idle_timeout",
        )

    async def read_body(self, response: httpx.Response) -> bytes:
        parts: list[bytes] = []
        size = 0
        chunks = response.aiter_raw()
        while True:
            chunk = await self.next_chunk(chunks)
            if chunk is None:
                return b"".join(parts)
            size += len(chunk)
            if size > MAX_UPSTREAM_BODY:
                raise self.too_large("the upstream answer")
            parts.append(chunk)

    async def drain(self, chunks: AsyncIterator[bytes]) -> None:
        """Read, briefly, what the upstream still sends after its terminal event; failures are ignored."""
        with trio.move_on_at(min(trio.current_time() + DRAIN_AFTER_END, self.deadline)):
            try:
                async for _ in chunks:
                    pass
            except (httpx.TransportError, httpx.StreamError):
                pass

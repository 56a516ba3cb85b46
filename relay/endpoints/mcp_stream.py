"""The MCP proxy's reads of a server's answer: a whole body, or an event stream relayed with backpressure.

A stream's chunk is written to the client before the next is read, so a client that stops reading stops the
reads from the server. A POST's answer stream is bounded by the server's ``idle`` gap and ``total`` deadline;
a GET stream (the server's own messages, or a legacy SSE session) has neither, and lasts until the server ends
it, the client leaves (the connection cancels the handler) or Relay shuts down (it ends itself at the drain).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

import trio

from relay.errors import RelayError, ResponseAborted
from relay.upstream.errors import TransportError, relay_error
from relay.upstream.exchange import CLOSE_GRACE, MAX_UPSTREAM_BODY
from relay.upstream.response import UpstreamResponse

from .ending import End

if TYPE_CHECKING:
    from relay.http.shutdown import Shutdown

#: How a relayed stream ended (``relay.endpoints.ending``'s words).
StreamEnd = Literal["completed", "upstream_truncated", "timeout", "shutdown"]


class Sink(Protocol):
    """Where a stream is written: a started response (``StreamResponse``), or a legacy session's locked writer."""

    @property
    def shutdown(self) -> Shutdown: ...

    async def send(self, data: bytes) -> None: ...


async def pump(
    out: Sink,
    response: UpstreamResponse,
    step: Callable[[bytes], bytes],
    *,
    idle: float | None = None,
    deadline: float = math.inf,
) -> tuple[StreamEnd, str | None]:
    """Relay ``response``'s body through ``step`` to the started ``out``: how it ended, and why (for the log)."""
    shutdown = out.shutdown
    receive = response.receive
    while True:
        with trio.CancelScope() as wait:
            wait.deadline = deadline if idle is None else min(deadline, trio.current_time() + idle)
            shutdown.watch_draining(wait)
            try:
                chunk = await receive()
            except TransportError as exc:
                return "upstream_truncated", f"the stream broke: {exc or type(exc).__name__}"
            finally:
                shutdown.unwatch_draining(wait)
        if wait.cancelled_caught:
            now = trio.current_time()
            if now >= shutdown.drain_at:
                return "shutdown", "Relay is shutting down"
            if now >= deadline:
                return "timeout", "the stream exceeded the total timeout"
            return "timeout", f"the server sent nothing for {idle:g}s"
        if chunk is None:
            return "completed", None
        data = step(chunk)
        if data:
            with trio.move_on_at(deadline) as writing:
                await out.send(data)
            if writing.cancelled_caught:
                raise ResponseAborted("the client did not take the stream in time")


async def read_whole(response: UpstreamResponse, label: str, deadline: float, idle: float) -> bytes:
    """The whole body (at most ``MAX_UPSTREAM_BODY``), each wait bounded by ``idle`` and all by ``deadline``."""
    parts: list[bytes] = []
    size = 0
    with trio.CancelScope(deadline=min(deadline, trio.current_time() + idle)) as scope:
        try:
            while (chunk := await response.receive()) is not None:
                size += len(chunk)
                if size > MAX_UPSTREAM_BODY:
                    raise RelayError(
                        502,
                        "upstream",
                        f"the MCP server's answer exceeds {MAX_UPSTREAM_BODY} bytes",
                        code="upstream_error",
                        detail=f"{label}: the answer exceeds {MAX_UPSTREAM_BODY} bytes",
                    )
                parts.append(chunk)
                scope.deadline = min(deadline, trio.current_time() + idle)
        except TransportError as exc:
            raise relay_error(exc, label, body=True) from None
        return b"".join(parts)
    raise RelayError(
        504, "timeout", "the MCP server's answer was too slow", code="upstream_timeout", detail=f"{label}: too slow"
    )


async def close(response: UpstreamResponse) -> None:
    """Let the answer go: its connection back to the pool when it was read to its end, else closed."""
    if response.release():
        return
    with trio.move_on_after(CLOSE_GRACE, shield=True):
        await response.aclose()


def end_kind(end: End) -> str | None:
    """The request log's ``error_kind`` for a stream that ended so (None: it completed)."""
    return {"completed": None, "timeout": "timeout", "shutdown": "upstream"}.get(end, "upstream")

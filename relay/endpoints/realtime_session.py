"""A relayed WebSocket session (OpenAI Realtime, Gemini Live): the two directions, metering hooks, how it ended.

Two tasks, one per direction, each passing one message at a time (the sender waits for the other side to take it:
backpressure, nothing piles up), and a third that watches the server's shutdown. A dialect's session
(``relay.endpoints.realtime.RealtimeSession``, ``relay.endpoints.live.LiveSession``) reads what it must on the
way: ``client`` may refuse a client's message (None: not forwarded), ``upstream`` meters the upstream's (a
``RelayError`` back: the next response cannot be admitted, and ``refuse`` ends the session after telling the
client). ``began`` and ``finished`` mark a response under way, which a shutdown lets finish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from relay.errors import RelayError
from relay.http import websocket
from relay.http.websocket import WebSocket
from relay.redact import redact
from relay.upstream.channels import Channel

from .realtime_meter import Meter
from .realtime_upstream import Upstream

if TYPE_CHECKING:
    from relay.app import Relay

#: The error kind of a session Relay closed, by its close code (else ``invalid_request``: a malformed frame).
_CLOSE_KINDS = {websocket.POLICY: "client_slow", websocket.INTERNAL: "timeout"}


class Session:
    """One relayed session; a dialect's subclass reads the messages (``client``, ``upstream``, ``refuse``)."""

    def __init__(
        self, relay: Relay, record: Any, ws: WebSocket, upstream: Upstream, meter: Meter, channel: Channel
    ) -> None:
        self.relay = relay
        self.record = record
        self.ws = ws
        self.upstream = upstream
        self.meter = meter
        self.channel = channel
        self._idle = trio.Event()
        self._idle.set()
        self._done: trio.CancelScope | None = None

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self._done = nursery.cancel_scope
            nursery.start_soon(self._from_client)
            nursery.start_soon(self._from_upstream)
            nursery.start_soon(self._on_shutdown)
        self.record.end = self.record.end or "completed"
        if self.record.end == "upstream_closed" and not self.ws.closed:
            code = self.upstream.close_code
            sendable = code is not None and (1000 <= code <= 1014 or 3000 <= code <= 4999) and code not in (1005, 1006)
            await self.ws.close(code if sendable and code is not None else websocket.INTERNAL, "the upstream closed")

    # ---- the dialect's hooks --------------------------------------------------------------------------------

    async def client(self, message: str | bytes) -> str | bytes | None:
        """The client's message to forward (changed, maybe), or None to drop it."""
        return message

    async def upstream_message(self, message: str | bytes) -> RelayError | None:
        """Meter the upstream's message (before it is passed on); the refusal of the next response, if any."""
        return None

    async def refuse(self, error: RelayError) -> None:
        """The next response cannot be admitted: tell the client (the session then closes with 1008)."""

    @property
    def idle(self) -> bool:
        """No response is under way."""
        return self._idle.is_set()

    def began(self) -> None:
        """A response is under way (a shutdown lets it finish)."""
        if self._idle.is_set():
            self._idle = trio.Event()

    def finished(self) -> None:
        self._idle.set()

    async def settled(self, usage: Any, *, failed: bool = False) -> RelayError | None:
        """Settle a response's usage and admit the next; the refusal when it cannot be."""
        self.meter.settle(usage, failed=failed)
        self.finished()
        try:
            await self.meter.admit()
        except RelayError as error:
            return error
        return None

    # ---- the two directions ---------------------------------------------------------------------------------

    def _end(self, end: str, error_kind: str | None = None, detail: str | None = None) -> None:
        """Record how the session ended (the first reason wins) and stop both directions."""
        if self.record.end is None:
            self.record.end = end
            self.record.error_kind = self.record.error_kind or error_kind
            self.record.error_detail = self.record.error_detail or detail
        assert self._done is not None
        self._done.cancel()

    async def _from_client(self) -> None:
        ws = self.ws
        while True:
            message = await ws.receive()
            if message is None:
                code = ws.close_code
                if code == websocket.ABNORMAL:
                    self._end("client_closed", "client_gone")
                elif ws.closed_by == "server":  # Relay closed it: a bad frame, too big, too slow, no pong
                    self._end("error", _CLOSE_KINDS.get(code or 0, "invalid_request"), ws.close_reason)
                else:
                    self._end("completed")
                return
            forwarded = await self.client(message)
            if forwarded is None:
                continue
            try:
                await self.upstream.send(forwarded)
            except trio.ClosedResourceError:
                self._end("upstream_closed", detail=f"upstream close code {self.upstream.close_code}")
                return

    async def _from_upstream(self) -> None:
        while True:
            message = await self.upstream.receive()
            if message is None:
                code = self.upstream.close_code
                self._end(
                    "upstream_closed",
                    None if code in (1000, None) else "upstream",
                    f"upstream close code {code}: {redact(self.upstream.close_reason)}",
                )
                return
            refused = await self.upstream_message(message)
            try:
                await self.ws.send(message)
            except trio.BrokenResourceError:
                if self.ws.closed_by == "client":
                    self._end("client_closed", "client_gone")
                else:
                    self._end("error", "client_slow", "the client took no bytes for write_timeout")
                return
            except trio.ClosedResourceError:
                self._end("client_closed", "client_gone")
                return
            if refused is not None:
                await self.refuse(refused)
                end = "quota" if refused.status == 402 else "rate_limited" if refused.status == 429 else "error"
                await self.ws.close(websocket.POLICY, refused.code or end)
                self._end(end, refused.kind, refused.message)
                return

    async def _on_shutdown(self) -> None:
        """Once the server stops: let the response in progress finish (until the drain deadline), then 1001."""
        shutdown = self.ws.shutdown
        await shutdown.event.wait()
        with trio.CancelScope() as scope:
            shutdown.watch_draining(scope)
            try:
                await self._idle.wait()
            finally:
                shutdown.unwatch_draining(scope)
        self._end("shutdown")
        with trio.CancelScope(shield=True):
            await self.ws.close(websocket.GOING_AWAY, "server shutting down")

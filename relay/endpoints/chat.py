"""POST /v1/chat/completions, relayed to an OpenAI-compatible channel, streaming and not.

Before the first byte reaches the client every failure is an error response with its own status
(502, 504, or the upstream's). After it, a failure becomes a final ``data: {"error": …}`` frame
and the stream ends cleanly, unless a write to the client was itself overtaken by the total
timeout: a chunk cut in half cannot be followed by anything, so the connection is closed instead.
Each upstream event is written to the client before the next upstream chunk is read, so a client
that stops reading stops the upstream read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import trio

from relay.dialects import openai_chat
from relay.errors import RelayError, ResponseAborted, kind_for_status
from relay.gateway.auth import check_model
from relay.gateway.routing import resolve
from relay.http import sse
from relay.http.messages import Request, Response, StreamResponse
from relay.upstream.exchange import MAX_UPSTREAM_BODY, Exchange

if TYPE_CHECKING:
    from relay.app import Relay

SSE_HEADERS = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))
JSON = ((b"content-type", b"application/json"),)
#: Seconds the final error event of a failed stream may take to reach the client.
LAST_WRITE = 1.0


async def completions(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key = relay.keyring.authenticate(request)
    info = openai_chat.read_request(request.body)
    check_model(key, info.model)
    route = resolve(relay.config.channels, info.model)
    channel = relay.channels[route.channel.name]
    body = openai_chat.encode_request(info, route.upstream_model, request.body)
    exchange = Exchange(channel)
    relayed = _Relayed(out, info.model, route.upstream_model, exchange)
    try:
        upstream = await exchange.open("/chat/completions", body)
        try:
            if not _success(upstream.status_code):
                return await _upstream_error(upstream, exchange)
            if not info.stream:
                data = await exchange.read_body(upstream)
                return Response(upstream.status_code, relayed.rename(data), JSON)
            await relayed.pump(upstream)
        finally:
            await exchange.close(upstream)
    except RelayError as error:
        if not out.started:
            raise
        await relayed.fail(error)
    return None


class _Relayed:
    """The client side of one relayed stream."""

    def __init__(self, out: StreamResponse, public_model: str, upstream_model: str, exchange: Exchange) -> None:
        self.out = out
        self.public_model = public_model
        self.upstream_model = upstream_model
        self.aliased = public_model != upstream_model
        self.exchange = exchange

    def rename(self, data: bytes) -> bytes:
        return openai_chat.rename_model(data, self.public_model, self.upstream_model) if self.aliased else data

    async def pump(self, upstream: httpx.Response) -> None:
        parser = sse.Parser()
        chunks = upstream.aiter_raw()
        upstream_failed = False
        while True:
            chunk = await self.exchange.next_chunk(chunks, started=self.out.started)
            if chunk is None:
                if upstream_failed:
                    return  # the upstream's own error event ended the stream: it is the last word
                raise RelayError(
                    502,
                    "upstream",
                    f"channel '{self.exchange.channel}': the upstream stream ended before its final 'data: [DONE]'",
                    code="upstream_truncated",
                )
            events = parser.feed(chunk)
            if parser.pending > MAX_UPSTREAM_BODY:
                raise self.exchange.too_large("an upstream stream event")
            if not events:
                continue
            pieces = []
            done = False
            for event in events:
                pieces.append(self._event(event))
                upstream_failed = openai_chat.is_stream_error(event.data)
                if event.data == b"[DONE]":
                    done = True
                    break  # nothing after the terminal event is forwarded
            await self._send(b"".join(pieces), self.exchange.deadline)
            if done:
                await self.exchange.drain(chunks)
                return

    def _event(self, event: sse.Event) -> bytes:
        if not self.aliased or not event.data or event.data[:1] != b"{":
            return event.raw
        renamed = self.rename(event.data)
        return event.raw if renamed is event.data else sse.frame(renamed, event.name)

    async def _send(self, data: bytes, deadline: float) -> None:
        """Write ``data`` by ``deadline``; past it the write may be cut in half, so the response is aborted."""
        with trio.move_on_at(deadline):
            if not self.out.started:
                await self.out.start(200, SSE_HEADERS)
            await self.out.send(data)
            return
        raise ResponseAborted(f"channel '{self.exchange.channel}': the client did not take the stream in time")

    async def fail(self, error: RelayError) -> None:
        await self._send(openai_chat.encode_stream_error(error), trio.current_time() + LAST_WRITE)


def _success(status: int) -> bool:
    """Statuses relayed as an answer; 204/205 cannot carry one, and redirects are not followed."""
    return 200 <= status < 300 and status not in (204, 205)


#: Upstream headers an error keeps: the SDKs read them to decide when (and whether) to retry.
_KEPT_ON_ERROR = (b"retry-after", b"retry-after-ms", b"x-should-retry")


async def _upstream_error(upstream: httpx.Response, exchange: Exchange) -> Response:
    """The upstream's error in the OpenAI shape, its status and retry headers kept.

    A body already in the OpenAI shape passes unchanged; one with only part of it is completed;
    any other becomes the message. A status that is not an error (a redirect, a 204) becomes 502.
    """
    body = await exchange.read_body(upstream)
    status = upstream.status_code
    extra = tuple((name.lower(), value) for name, value in upstream.headers.raw if name.lower() in _KEPT_ON_ERROR)
    if not 400 <= status <= 599:
        status = 502
    elif openai_chat.is_error_body(body):
        return Response(status, openai_chat.complete_error_body(body), (*JSON, *extra))
    error = RelayError(
        status,
        kind_for_status(status),
        f"channel '{exchange.channel}': upstream answered {upstream.status_code}: {openai_chat.error_text(body)}",
        code="upstream_error",
        headers=extra,
    )
    status, headers, data = openai_chat.encode_error(error)
    return Response(status, data, headers)

"""POST /v1/chat/completions, relayed to an OpenAI-compatible channel, streaming and not.

Before the first byte reaches the client every failure is an error response with its own status
(502, 504, or the upstream's). After it, a failure becomes a final ``data: {"error": …}`` frame
and the stream ends cleanly. Each upstream event is written to the client before the next upstream
chunk is read, so a client that stops reading stops the upstream read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import trio

from relay.dialects import openai_chat
from relay.errors import RelayError, kind_for_status
from relay.gateway.auth import check_model
from relay.gateway.routing import resolve
from relay.http import sse
from relay.http.messages import Request, Response, StreamResponse
from relay.upstream.client import upstream_errors

if TYPE_CHECKING:
    from relay.app import Relay

SSE_HEADERS = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))
JSON = ((b"content-type", b"application/json"),)
#: Largest upstream answer (a whole body, or one stream event) held in memory.
MAX_UPSTREAM_BODY = 64 * 1024 * 1024


async def completions(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key = relay.keyring.authenticate(request)
    info = openai_chat.read_request(request.body)
    check_model(key, info.model)
    route = resolve(relay.config.channels, info.model)
    channel = relay.channels[route.channel.name]
    body = openai_chat.encode_request(info, route.upstream_model, request.body)
    timeouts = route.channel.timeouts
    relayed = _Relayed(out, info.model, route.upstream_model)
    with trio.move_on_after(timeouts.total) as total:
        try:
            async with channel.post("/chat/completions", body) as upstream:
                if upstream.status_code >= 400:
                    return await _upstream_error(upstream, channel.name, timeouts.idle)
                if not info.stream:
                    data = await _read_body(upstream, channel.name, timeouts.idle)
                    return Response(upstream.status_code, relayed.rename(data), JSON)
                await relayed.pump(upstream, channel.name, timeouts.idle)
        except RelayError as error:
            if not out.started:
                raise
            await relayed.fail(error)
            return None
    if total.cancelled_caught:
        error = RelayError(
            504,
            "timeout",
            f"channel '{channel.name}': the upstream exchange exceeded {timeouts.total:g}s",
            code="upstream_timeout",
        )
        if not out.started:
            raise error
        await relayed.fail(error)
    return None


class _Relayed:
    """The client side of one relayed stream."""

    def __init__(self, out: StreamResponse, public_model: str, upstream_model: str) -> None:
        self.out = out
        self.public_model = public_model
        self.upstream_model = upstream_model
        self.aliased = public_model != upstream_model

    def rename(self, data: bytes) -> bytes:
        return openai_chat.rename_model(data, self.public_model, self.upstream_model) if self.aliased else data

    async def pump(self, upstream: httpx.Response, channel: str, idle: float) -> None:
        parser = sse.Parser()
        done = False
        chunks = upstream.aiter_raw()
        while True:
            chunk = await _next_chunk(chunks, channel, idle, started=self.out.started)
            if chunk is None:
                break
            events = parser.feed(chunk)
            if parser.pending > MAX_UPSTREAM_BODY:
                raise RelayError(
                    502,
                    "upstream",
                    f"channel '{channel}': an upstream stream event exceeds {MAX_UPSTREAM_BODY} bytes",
                    code="upstream_error",
                )
            if not events:
                continue
            pieces = []
            for event in events:
                if event.data == b"[DONE]":
                    done = True
                if self.aliased and event.data and event.data[:1] == b"{":
                    pieces.append(sse.frame(self.rename(event.data), event.name))
                else:
                    pieces.append(event.raw)
            await self._send(b"".join(pieces))
        if not done:
            raise RelayError(
                502,
                "upstream",
                f"channel '{channel}': the upstream stream ended before its final 'data: [DONE]'",
                code="upstream_truncated",
            )

    async def _send(self, data: bytes) -> None:
        if not self.out.started:
            await self.out.start(200, SSE_HEADERS)
        await self.out.send(data)

    async def fail(self, error: RelayError) -> None:
        await self.out.send(openai_chat.encode_stream_error(error))


async def _read_body(upstream: httpx.Response, channel: str, idle: float) -> bytes:
    parts: list[bytes] = []
    size = 0
    chunks = upstream.aiter_raw()
    while True:
        chunk = await _next_chunk(chunks, channel, idle)
        if chunk is None:
            return b"".join(parts)
        size += len(chunk)
        if size > MAX_UPSTREAM_BODY:
            raise RelayError(
                502,
                "upstream",
                f"channel '{channel}': the upstream answer exceeds {MAX_UPSTREAM_BODY} bytes",
                code="upstream_error",
            )
        parts.append(chunk)


async def _next_chunk(
    chunks: AsyncIterator[bytes], channel: str, idle: float, *, started: bool = False
) -> bytes | None:
    """The next upstream chunk, None at the end; a 504 when the upstream is silent for ``idle``."""
    with trio.move_on_after(idle):
        with upstream_errors(channel, started=started):
            return await anext(chunks, None)
    raise RelayError(
        504, "timeout", f"channel '{channel}': the upstream sent nothing for {idle:g}s", code="upstream_idle_timeout"
    )


async def _upstream_error(upstream: httpx.Response, channel: str, idle: float) -> Response:
    """The upstream's error, status and ``retry-after`` kept; its body passed on when already OpenAI-shaped."""
    body = await _read_body(upstream, channel, idle)
    status = upstream.status_code
    retry_after = upstream.headers.get("retry-after")
    extra = ((b"retry-after", retry_after.encode()),) if retry_after else ()
    if openai_chat.is_error_body(body):
        return Response(status, body, (*JSON, *extra))
    error = RelayError(
        status,
        kind_for_status(status),
        f"channel '{channel}': upstream answered {status}: {openai_chat.error_text(body)}",
        code="upstream_error",
        headers=extra,
    )
    status, headers, data = openai_chat.encode_error(error)
    return Response(status, data, headers)

"""The client side of one relayed answer: its stream written with backpressure, and upstream errors.

Before the first byte reaches the client every failure is an error response with its own status
(502, 504, or the upstream's). After it, a failure becomes a final error frame in the client's
dialect and the stream ends cleanly, unless a write to the client was itself overtaken by the total
timeout: a frame cut in half cannot be followed by anything, so the connection is closed instead.
Each upstream chunk's frames are written to the client before the next upstream chunk is read, so a
client that stops reading stops the upstream read.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import httpx
import orjson
import trio

from relay.errors import ResponseAborted
from relay.http.messages import Headers, Response, StreamResponse
from relay.upstream.exchange import Exchange

JSON: Headers = ((b"content-type", b"application/json"),)
SSE: Headers = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))
#: Seconds the final error frame of a failed stream may take to reach the client.
LAST_WRITE = 1.0
#: Upstream headers an error keeps: the SDKs read them to decide when (and whether) to retry.
KEPT_ON_ERROR = (b"retry-after", b"retry-after-ms", b"x-should-retry")

#: One upstream chunk -> (the client's bytes for it, whether the stream reached its terminal event).
Step = Callable[[bytes], tuple[bytes, bool]]
#: The upstream ended -> the client's last bytes (or a RelayError when the end came too early).
End = Callable[[], bytes]


class Relayed:
    """Writes one stream to the client, every write bounded by the exchange's deadline."""

    def __init__(self, out: StreamResponse, exchange: Exchange, headers: Headers = SSE) -> None:
        self.out = out
        self.exchange = exchange
        self.headers = headers
        #: The upstream's chunks so far: what it produced, should the stream not reach its end.
        self.kept: list[bytes] = []
        #: The stream reached its end (its terminal event, or an end the ``End`` accepted).
        self.finished = False

    async def pump(self, upstream: httpx.Response, step: Step, end: End) -> None:
        chunks = upstream.aiter_raw()
        kept = self.kept
        while True:
            chunk = await self.exchange.next_chunk(chunks, started=self.out.started)
            if chunk is None:
                data = end()
                self.finished = True
                if data:
                    await self.send(data, self.exchange.deadline)
                return
            kept.append(chunk)
            data, done = step(chunk)
            if done:
                self.finished = True
            if data:
                await self.send(data, self.exchange.deadline)
            if done:
                await self.exchange.drain(chunks)
                return

    async def send(self, data: bytes, deadline: float) -> None:
        """Write ``data`` by ``deadline``; past it the write may be cut in half, so the response is aborted."""
        with trio.move_on_at(deadline):
            if not self.out.started:
                await self.out.start(200, self.headers)
            await self.out.send(data)
            return
        raise ResponseAborted(f"channel '{self.exchange.channel}': the client did not take the stream in time")

    async def fail(self, frame: bytes) -> None:
        """The last frame of a stream that failed after it started."""
        if frame:
            await self.send(frame, trio.current_time() + LAST_WRITE)


def success(status: int) -> bool:
    """Statuses relayed as an answer; 204/205 cannot carry one, and redirects are not followed."""
    return 200 <= status < 300 and status not in (204, 205)


async def upstream_error(
    upstream: httpx.Response, exchange: Exchange, source: ModuleType, client: ModuleType, same: bool
) -> Response:
    """The upstream's error in the client's dialect, its status, message and retry headers kept.

    When the client speaks the upstream's dialect and the body already has that dialect's error
    shape, it passes unchanged (an OpenAI body missing some of its four fields is completed).
    """
    body = await exchange.read_body(upstream)
    kept = tuple((name.lower(), value) for name, value in upstream.headers.raw if name.lower() in KEPT_ON_ERROR)
    if same and 400 <= upstream.status_code <= 599 and in_shape(source.__name__, body):
        if source.__name__.endswith("openai_chat"):
            body = source.complete_error_body(body)
        return Response(upstream.status_code, body, (*JSON, *kept))
    error = source.decode_error(upstream.status_code, body)
    error.message = f"channel '{exchange.channel}': upstream answered {upstream.status_code}: {error.message}"
    error.code = error.code or "upstream_error"
    error.headers = (*error.headers, *kept)
    status, headers, data = client.encode_error(error)
    return Response(status, data, headers)


def in_shape(module: str, body: bytes) -> bool:
    """Whether an error body has the error shape of the dialect ``module`` codes."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), dict):
        return False
    error = payload["error"]
    if not isinstance(error.get("message"), str):
        return False
    if module.endswith("anthropic"):
        return payload.get("type") == "error" and isinstance(error.get("type"), str)
    if module.endswith("gemini"):
        return isinstance(error.get("code"), int)
    return True

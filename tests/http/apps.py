"""A small App for the HTTP layer's own tests: echoes requests and streams slowly on demand."""

from __future__ import annotations

import orjson
import trio

from relay.http.messages import Request, Response, StreamResponse


class SlowStreamApp:
    """``/stream?n=N&delay=S`` streams N chunks S seconds apart; anything else echoes the request.

    ``first_chunk`` is set once a stream's first chunk is written, ``cancelled`` when a stream's
    work was cancelled, ``finished`` when a stream ran to its end.
    """

    def __init__(self) -> None:
        self.first_chunk = trio.Event()
        self.cancelled = trio.Event()
        self.finished = trio.Event()

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        if request.path != "/stream":
            payload = {"method": request.method, "path": request.path, "body": request.body.decode()}
            return Response.json(200, payload)
        params = request.query_params()
        count, delay = int(params.get("n", "5")), float(params.get("delay", "0.05"))
        await stream.start(200, [(b"content-type", b"text/plain")])
        try:
            for i in range(count):
                await stream.send(b"chunk %d\n" % i)
                self.first_chunk.set()
                await trio.sleep(delay)
        except trio.Cancelled:
            self.cancelled.set()
            raise
        self.finished.set()
        return None

    def error(self, status: int, message: str, path: str | None, *, code: str | None = None) -> Response:
        body = {"error": {"message": message, "type": "http_error", "param": None, "code": code}}
        return Response(status, orjson.dumps(body), [(b"content-type", b"application/json")])


def chat_body(text: str, *, stream: bool = False) -> bytes:
    """A Chat Completions request for the built-in mock model, which answers ``Echo: <text>``."""
    return orjson.dumps({"model": "mock-1", "messages": [{"role": "user", "content": text}], "stream": stream})

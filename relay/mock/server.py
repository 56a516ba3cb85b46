"""``relay mock-upstream``: an OpenAI-compatible server around the mock model, on Relay's HTTP core."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import trio

from relay.config import MockOptions
from relay.gateway.auth import presented_key
from relay.http.messages import Headers, Request, Response, StreamResponse
from relay.mock import model

SSE_HEADERS = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))
JSON = ((b"content-type", b"application/json"),)
DEFAULT_MODELS = ("mock-1", "mock-2", "gpt-4o-mini")


async def play(reply: model.Reply, frames: Sequence[bytes]) -> AsyncIterator[bytes]:
    """The frames of a streamed answer, paced and cut as the reply's directives say."""
    directives = reply.directives
    for index, frame in enumerate(frames):
        if directives.stall_after is not None and index >= directives.stall_after:
            await trio.sleep_forever()
        if directives.drop_after is not None and index >= directives.drop_after:
            return
        if index and reply.chunk_delay:
            await trio.sleep(reply.chunk_delay)
        yield frame


async def answer(payload: Any, options: MockOptions) -> tuple[int, Headers, bytes | AsyncIterator[bytes]]:
    """The mock's answer to a Chat Completions body: status, headers, and a body or a frame stream.

    A body a real upstream would refuse gets a 400 in the OpenAI shape, naming the parameter.
    """
    refused = model.problem(payload)
    if refused is not None:
        param, message = refused
        error = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
        return 400, JSON, orjson.dumps(error)
    reply = model.reply(payload, options)
    if reply.first_byte_delay:
        await trio.sleep(reply.first_byte_delay)
    if reply.directives.status:
        return reply.directives.status, JSON, model.error_body(reply.directives.status)
    if not payload.get("stream"):
        return 200, JSON, model.chat_completion(reply, payload["model"])
    return 200, SSE_HEADERS, play(reply, model.chat_chunks(reply, payload["model"], model.wants_usage(payload)))


class MockUpstream:
    def __init__(
        self, options: MockOptions | None = None, models: Sequence[str] = DEFAULT_MODELS, api_key: str | None = None
    ) -> None:
        self.options = options or MockOptions()
        self.models = list(models)
        self.api_key = api_key

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        path = request.path.removeprefix("/v1")
        if self.api_key is not None:
            presented = presented_key(request) or ""
            if not hmac.compare_digest(presented.encode(), self.api_key.encode()):
                return self.error(401, "mock upstream: wrong API key", request.path)
        if path == "/chat/completions":
            if request.method != "POST":
                return self.error(405, "use POST", request.path)
            return await self.chat(request, stream)
        if path == "/models" and request.method == "GET":
            return Response(200, model.model_list(self.models), JSON)
        return self.error(404, f"mock upstream has no route {request.method} {request.path}", request.path)

    async def chat(self, request: Request, stream: StreamResponse) -> Response | None:
        try:
            payload = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return self.error(400, "body is not JSON", request.path)
        status, headers, body = await answer(payload, self.options)
        if isinstance(body, bytes):
            return Response(status, body, headers)
        await stream.start(status, headers)
        async for frame in body:
            await stream.send(frame)
        return None

    def error(self, status: int, message: str, path: str | None) -> Response:
        body = {"error": {"message": message, "type": "mock_error", "param": None, "code": None}}
        return Response.json(status, body)

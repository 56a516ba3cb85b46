"""``relay mock-upstream``: the mock model as a server of its own, on Relay's HTTP core.

It speaks every dialect (see ``relay.mock.router`` for the routes, ``docs/mock.md`` for the rest).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from relay.config import MockOptions
from relay.http.messages import Headers, Request, Response, StreamResponse
from relay.mock import wire_chat, wire_live, wire_realtime
from relay.mock.model import JSON_HEADERS, SSE_HEADERS
from relay.mock.router import DEFAULT_MODELS, Mock, deliver, error, play

__all__ = ["DEFAULT_MODELS", "JSON", "SSE_HEADERS", "MockUpstream", "answer", "play"]

JSON = JSON_HEADERS


async def answer(payload: Any, options: MockOptions) -> tuple[int, Headers, bytes | AsyncIterator[bytes]]:
    """The mock's answer to a Chat Completions body: status, headers, and a body or a frame stream.

    A body a real upstream would refuse gets a 400 in the OpenAI shape, naming the parameter.
    """
    return await deliver(wire_chat.respond(payload, options))


class MockUpstream:
    def __init__(
        self, options: MockOptions | None = None, models: Sequence[str] = DEFAULT_MODELS, api_key: str | None = None
    ) -> None:
        self.mock = Mock(options, models, api_key)

    @property
    def options(self) -> MockOptions:
        return self.mock.options

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        if request.websocket is not None and request.path.endswith("/realtime"):
            return await self._realtime(request)
        if request.websocket is not None and request.path.endswith(".BidiGenerateContent"):
            return await self._live(request)
        status, headers, body = await self.mock.respond(
            request.method, request.path, request.query, request.headers, request.body
        )
        if isinstance(body, bytes):
            return Response(status, body, headers)
        await stream.start(status, headers)
        async for frame in body:
            await stream.send(frame)
        return None

    async def _realtime(self, request: Request) -> Response:
        """A Realtime session over the request's WebSocket (``relay.mock.wire_realtime``), its key checked first."""
        upgrade = request.websocket
        assert upgrade is not None
        refused = self.mock.refuse_realtime(request.headers, request.query)
        if refused is not None:
            assert isinstance(refused.body, bytes)
            return Response(refused.status, refused.body, refused.headers)
        name = wire_realtime.model_of(request.query) or "mock-realtime"
        chosen = "realtime" if "realtime" in upgrade.subprotocols else None
        async with upgrade.accept(chosen) as ws:
            await wire_realtime.Session(ws, name, self.mock.options).run()
        return Response(101)

    async def _live(self, request: Request) -> Response:
        """A Gemini Live session over the request's WebSocket (``relay.mock.wire_live``), its key checked first."""
        upgrade = request.websocket
        assert upgrade is not None
        refused = self.mock.refuse_live(request.headers, request.query)
        if refused is not None:
            assert isinstance(refused.body, bytes)
            return Response(refused.status, refused.body, refused.headers)
        async with upgrade.accept() as ws:
            await wire_live.Session(ws, self.mock.options).run()
        return Response(101)

    def error(self, status: int, message: str, path: str | None, *, code: str | None = None) -> Response:
        dialect = "anthropic" if path and path.endswith(("/messages", "/count_tokens")) else "openai"
        if path and ":" in path.rsplit("/", 1)[-1]:
            dialect = "gemini"
        answer = error(dialect, status, message)
        assert isinstance(answer.body, bytes)
        return Response(status, answer.body, answer.headers)

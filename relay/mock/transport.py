"""The mock upstream as an httpx transport: a ``mock`` channel without a socket.

It routes exactly what ``relay mock-upstream`` routes (``relay.mock.router``), whatever prefix the
channel's base URL puts before the path (``http://mock.invalid/<channel>/v1/messages``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx

from relay.config import MockOptions
from relay.mock.router import DEFAULT_MODELS, Mock


class MockTransport(httpx.AsyncBaseTransport):
    """The mock model as an httpx transport; ``api_key`` makes it check each dialect's key header."""

    def __init__(
        self, options: MockOptions, models: Sequence[str] = DEFAULT_MODELS, api_key: str | None = None
    ) -> None:
        self.options = options
        self.mock = Mock(options, models, api_key)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        status, headers, content = await self.mock.respond(
            request.method, request.url.path, request.url.query.decode("ascii"), request.headers.raw, body
        )
        stream = httpx.ByteStream(content) if isinstance(content, bytes) else _Frames(content)
        return httpx.Response(status, headers=list(headers), stream=stream)


class _Frames(httpx.AsyncByteStream):
    def __init__(self, frames: AsyncIterator[bytes]) -> None:
        self._frames = frames

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for frame in self._frames:
            yield frame

    async def aclose(self) -> None:
        await self._frames.aclose()  # type: ignore[attr-defined]

"""The mock upstream as a transport: a ``mock`` channel without a socket.

It routes exactly what ``relay mock-upstream`` routes (``relay.mock.router``), whatever prefix the
channel's base URL puts before the path (``http://mock.invalid/<channel>/v1/messages``). It implements
``relay.upstream.response.Transport``, as the HTTP/1.1 pool does, and also httpx's transport interface
(``handle_async_request``) so that an httpx client can talk to the mock model in tests and tools.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx

from relay.config import MockOptions
from relay.mock.router import DEFAULT_MODELS, Mock
from relay.upstream.response import UpstreamRequest, UpstreamResponse


class MockTransport(httpx.AsyncBaseTransport):
    """The mock model as a transport; ``api_key`` makes it check each dialect's key header."""

    def __init__(
        self, options: MockOptions, models: Sequence[str] = DEFAULT_MODELS, api_key: str | None = None
    ) -> None:
        self.options = options
        self.mock = Mock(options, models, api_key)

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        headers = (*request.headers, (b"host", request.authority))
        status, answer_headers, content = await self.mock.respond(
            request.method.decode("ascii"), request.path, request.query, headers, request.body
        )
        body = _Whole(content) if isinstance(content, bytes) else _Frames(content)
        return UpstreamResponse(status, [(n.lower(), v) for n, v in answer_headers], body.receive, body.aclose)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        status, headers, content = await self.mock.respond(
            request.method, request.url.path, request.url.query.decode("ascii"), request.headers.raw, body
        )
        stream = httpx.ByteStream(content) if isinstance(content, bytes) else _HttpxFrames(content)
        return httpx.Response(status, headers=list(headers), stream=stream)


class _Whole:
    """A whole answer's body, in one piece."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    async def receive(self) -> bytes | None:
        data, self._data = self._data, None
        return data or None

    async def aclose(self) -> None:
        self._data = None


class _Frames:
    """A streamed answer's body: the mock's frames as it plays them (paced, stalled or cut by its directives)."""

    __slots__ = ("_frames",)

    def __init__(self, frames: AsyncIterator[bytes]) -> None:
        self._frames = frames

    async def receive(self) -> bytes | None:
        return await anext(self._frames, None)

    async def aclose(self) -> None:
        await self._frames.aclose()  # type: ignore[attr-defined]


class _HttpxFrames(httpx.AsyncByteStream):
    def __init__(self, frames: AsyncIterator[bytes]) -> None:
        self._frames = frames

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for frame in self._frames:
            yield frame

    async def aclose(self) -> None:
        await self._frames.aclose()  # type: ignore[attr-defined]

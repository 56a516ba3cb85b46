"""A channel at run time: its base URL, its credentials, and one upstream request with its timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

import httpx
import orjson

from relay.config import ChannelConfig, MockOptions
from relay.mock.server import answer
from relay.upstream.pool import Pool


class Channel:
    def __init__(self, config: ChannelConfig, transport: httpx.AsyncBaseTransport) -> None:
        self.config = config
        self.name = config.name
        self.base_url = f"http://mock.invalid/{config.name}" if config.type == "mock" else config.base_url.rstrip("/")
        self._transport = transport
        headers = {"content-type": "application/json", "user-agent": "relay"}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        self._headers = httpx.Headers(headers)
        t = config.timeouts
        self._timeout = httpx.Timeout(connect=t.connect, read=None, write=t.idle, pool=t.connect).as_dict()
        self._urls: dict[str, httpx.URL] = {}

    def url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base_url + path)
        return url

    async def send(self, path: str, body: bytes) -> httpx.Response:
        """POST ``body`` to ``path``: the response once its head is in, its body still to read.

        Timeouts are the caller's (``relay.upstream.exchange``); the caller must close the response,
        which also closes the upstream connection when the body was not read to its end.
        """
        request = httpx.Request(
            "POST", self.url(path), content=body, headers=self._headers, extensions={"timeout": self._timeout}
        )
        return await self._transport.handle_async_request(request)


class MockTransport(httpx.AsyncBaseTransport):
    """The mock model as an httpx transport: a ``mock`` channel without a socket."""

    def __init__(self, options: MockOptions) -> None:
        self.options = options

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        if not request.url.path.endswith("/chat/completions"):
            return _error(404, f"mock channel has no route {request.url.path}")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "the request body is not JSON")
        status, headers, content = await answer(payload, self.options)
        stream = httpx.ByteStream(content) if isinstance(content, bytes) else _Frames(content)
        return httpx.Response(status, headers=list(headers), stream=stream)


def _error(status: int, message: str) -> httpx.Response:
    error = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return httpx.Response(status, headers={"content-type": "application/json"}, content=orjson.dumps(error))


class _Frames(httpx.AsyncByteStream):
    def __init__(self, frames: AsyncIterator[bytes]) -> None:
        self._frames = frames

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for frame in self._frames:
            yield frame

    async def aclose(self) -> None:
        await self._frames.aclose()  # type: ignore[attr-defined]


def build_channels(configs: Sequence[ChannelConfig]) -> tuple[Pool, Mapping[str, Channel]]:
    """The shared upstream pool, and every channel by name (a mock channel gets its mock transport)."""
    pool = Pool()
    channels = {c.name: Channel(c, MockTransport(c.mock) if c.type == "mock" else pool) for c in configs}
    return pool, channels

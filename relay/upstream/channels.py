"""A channel at run time: its base URL, its credentials, and one upstream request with its timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import httpx
import orjson
import trio

from relay.config import ChannelConfig, MockOptions
from relay.errors import RelayError
from relay.mock.server import answer
from relay.upstream.client import make_client, upstream_errors

_CLOSE_GRACE = 1.0


class Channel:
    def __init__(self, config: ChannelConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.name = config.name
        self.base_url = f"mock://{config.name}" if config.type == "mock" else config.base_url.rstrip("/")
        self._client = client
        self._headers = {"content-type": "application/json", "user-agent": "relay"}
        if config.api_key:
            self._headers["authorization"] = f"Bearer {config.api_key}"
        t = config.timeouts
        self._timeout = httpx.Timeout(connect=t.connect, read=None, write=t.idle, pool=t.connect)

    @asynccontextmanager
    async def post(self, path: str, body: bytes) -> AsyncIterator[httpx.Response]:
        """POST ``body`` to ``path``; yields once the response head is in (within ``first_byte``).

        Raises RelayError 502 or 504 when there is no answer; closes the upstream response (and its
        connection, if unread) however the caller leaves.
        """
        request = self._client.build_request(
            "POST", self.base_url + path, content=body, headers=self._headers, timeout=self._timeout
        )
        with trio.move_on_after(self.config.timeouts.first_byte) as first_byte:
            with upstream_errors(self.name):
                response = await self._client.send(request, stream=True)
        if first_byte.cancelled_caught:
            raise RelayError(
                504,
                "timeout",
                f"channel '{self.name}': no answer from the upstream within {self.config.timeouts.first_byte:g}s",
                code="upstream_timeout",
            )
        try:
            yield response
        finally:
            with trio.move_on_after(_CLOSE_GRACE, shield=True):
                await response.aclose()


class MockTransport(httpx.AsyncBaseTransport):
    """The mock model as an httpx transport: a ``mock`` channel without a socket."""

    def __init__(self, options: MockOptions) -> None:
        self.options = options

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        if not request.url.path.endswith("/chat/completions"):
            message = f"mock channel has no route {request.url.path}"
            return httpx.Response(404, stream=httpx.ByteStream(orjson.dumps({"error": {"message": message}})))
        status, headers, content = await answer(orjson.loads(body), self.options)
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


def build_channels(configs: Sequence[ChannelConfig]) -> tuple[httpx.AsyncClient, Mapping[str, Channel]]:
    """The shared client (with a mock transport mounted per mock channel) and every channel by name."""
    mounts = {f"mock://{c.name}": MockTransport(c.mock) for c in configs if c.type == "mock"}
    client = make_client(mounts)
    return client, {c.name: Channel(c, client) for c in configs}

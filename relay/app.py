"""The application: configuration, keys, channels and routes, and the dispatch of one request."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from relay.config import Config
from relay.dialects import anthropic, gemini, ir, openai_chat
from relay.errors import RelayError, kind_for_status
from relay.gateway.auth import Keyring
from relay.http.messages import Headers, Request, Response, StreamResponse
from relay.routes import ROUTES, Dialect, Router
from relay.upstream.channels import Channel, build_channels

access = logging.getLogger("relay.access")
log = logging.getLogger("relay")

ErrorEncoder = Callable[[RelayError], tuple[int, Headers, bytes]]
ENCODERS: dict[Dialect, ErrorEncoder] = {
    "openai": openai_chat.encode_error,
    "anthropic": anthropic.encode_error,
    "gemini": gemini.encode_error,
}


class Relay:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.keyring = Keyring(config.keys)
        self.router = Router(ROUTES)
        self.channels: dict[str, Channel]
        self.pool, channels = build_channels(config.channels)
        self.channels = dict(channels)
        self._access_log = config.server.access_log

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        request.id = os.urandom(12).hex()
        started = time.perf_counter()
        recorder = _Recorder(stream)
        dialect: Dialect | None = None
        try:
            route, request.params = self.router.match(request.method, request.path)
            dialect = route.dialect_for(request)
            response = await route.endpoint(self, request, recorder)
        except RelayError as error:
            response = render(error, dialect or self.router.dialect_of(request.path))
        if self._access_log:
            status = response.status if response is not None else recorder.status
            usage = request.usage
            access.info(
                "%s %s %s %s %s %d %.1fms %s",
                request.id,
                request.client,
                request.principal,
                request.method,
                request.path,
                status,
                (time.perf_counter() - started) * 1000,
                f"tokens={usage.input_tokens}/{usage.output_tokens}" if isinstance(usage, ir.Usage) else "tokens=-",
            )
        return response

    def error(self, status: int, message: str, path: str | None) -> Response:
        dialect = self.router.dialect_of(path) if path is not None else "openai"
        return render(RelayError(status, kind_for_status(status), message), dialect)

    async def aclose(self) -> None:
        await self.pool.aclose()


def render(error: RelayError, dialect: Dialect) -> Response:
    status, headers, body = ENCODERS[dialect](error)
    return Response(status, body, headers)


class _Recorder:
    """Passes a stream through, remembering its status for the access log."""

    __slots__ = ("_stream", "status")

    def __init__(self, stream: StreamResponse) -> None:
        self._stream = stream
        self.status = 0

    @property
    def started(self) -> bool:
        return self._stream.started

    async def start(self, status: int, headers: Headers) -> None:
        self.status = status
        await self._stream.start(status, headers)

    async def send(self, data: bytes) -> None:
        await self._stream.send(data)

"""The application: configuration, keys, channels and routes, and the dispatch of one request."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import trio

from relay.admin.auth import AdminKeys
from relay.config import Config
from relay.dialects import ir
from relay.dialects.anthropic import codec as anthropic
from relay.dialects.gemini import codec as gemini
from relay.dialects.openai.chat import codec as openai_chat
from relay.endpoints.background_jobs import BackgroundJobs
from relay.errors import RelayError, kind_for_status
from relay.gateway.gateway import Gateway
from relay.gateway.live import Live
from relay.gateway.overload import InFlight
from relay.gateway.tally import Tally
from relay.http.connection import Shutdown
from relay.http.messages import Headers, Request, Response, StreamResponse
from relay.metrics import Metrics
from relay.redact import redact
from relay.routes import ROUTES, Dialect, Router
from relay.tracing import tracer_for
from relay.upstream.channels import Channel, build_channels

#: Seconds the spans still queued at the end may take to be exported.
TRACES_FLUSH = 5.0

access = logging.getLogger("relay.access")
log = logging.getLogger("relay")

ErrorEncoder = Callable[[RelayError], tuple[int, Headers, bytes]]
ENCODERS: dict[Dialect, ErrorEncoder] = {
    "openai": openai_chat.encode_error,
    "anthropic": anthropic.encode_error,
    "gemini": gemini.encode_error,
}


class Relay:
    def __init__(self, config: Config, config_path: str | None = None) -> None:
        """``config_path``: the relay.toml that SIGHUP reads again (none: SIGHUP is ignored)."""
        self.router = Router(ROUTES)
        self.pool, channels = build_channels(config.channels, config.upstream)
        self.gateway = Gateway(config, channels)
        #: The in-flight cap of requests that go upstream (``[server] max_in_flight``).
        self.in_flight = InFlight(config.max_in_flight)
        self.gateway.admissions.serving = lambda: self.in_flight.count
        #: Background Responses being generated in this process (``relay.endpoints.background_responses``).
        self.background = BackgroundJobs()
        #: The admin API's keys: relay.toml's and the store's (``relay admin-keys``), reloaded when they change.
        self.admin_keys = AdminKeys(config.admin_keys, self.gateway.store, config.store.key_refresh)
        #: Prometheus metrics of this process (relay/metrics.py, docs/metrics.md).
        self.metrics = Metrics((route.path for route in ROUTES), channels)
        #: OpenTelemetry traces of this process (relay/tracing, docs/tracing.md); None when they are off.
        self.tracer = tracer_for(config.telemetry, (route.path for route in ROUTES))
        #: The live configuration: reloads of relay.toml (SIGHUP) and of the store's channels (relay/gateway/live.py).
        self.live = Live(self.gateway, self.pool, self.metrics, config, config_path)

    @property
    def config(self) -> Config:
        """The configuration in force for the running request (relay.toml's, with the channels enabled now)."""
        return self.gateway.current.get().config

    @property
    def channels(self) -> Mapping[str, Channel]:
        """The channels in force for the running request, by name."""
        return self.gateway.current.get().channels

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Relay]:
        """The gateway started (store migrated, keys loaded, the recorder running) for the body; at the end
        the request log and settlements are flushed and upstream connections closed."""
        try:
            async with self.gateway.running(), self.background.running(), trio.open_nursery() as nursery:
                await self.admin_keys.reload()
                nursery.start_soon(self.admin_keys.refresh_forever)
                await self.live.refresh()
                nursery.start_soon(self.live.refresh_forever)
                await nursery.start(self.live.reload_on_sighup)
                nursery.start_soon(self._sample_metrics_forever)
                yield self
                nursery.cancel_scope.cancel()
        finally:
            await self.pool.aclose()
            if self.tracer is not None:  # the spans still queued are exported, for a few seconds at most
                with trio.move_on_after(TRACES_FLUSH, shield=True):
                    await trio.to_thread.run_sync(self.tracer.shutdown, abandon_on_cancel=True)

    def sample_metrics(self) -> None:
        """Set this process's gauges of the metrics from its state now (at each scrape, and every second)."""
        snapshot = self.gateway.current.latest
        breakers = {name: snapshot.router.breaker(name) for name in snapshot.channels}
        self.metrics.sample(self.in_flight.count, breakers, self.gateway.recorder, self.gateway.holds)

    async def _sample_metrics_forever(self) -> None:
        while True:
            self.sample_metrics()
            await trio.sleep(1.0)

    async def handle(
        self, request: Request, stream: StreamResponse, *, parent_id: str | None = None
    ) -> Response | None:
        """Answer ``request``; ``parent_id``: the request it is made for (a task endpoint's model call,
        ``relay.utility.calls``), logged with it."""
        with self.gateway.current.pinned():  # a reload meanwhile leaves this request its channels, router, prices
            return await self._handle(request, stream, parent_id)

    async def _handle(self, request: Request, stream: StreamResponse, parent_id: str | None = None) -> Response | None:
        request.id = os.urandom(12).hex()
        started = time.perf_counter()
        record = Tally("openai", request.path, parent_id=parent_id)
        request.record = record
        recorder = _Recorder(stream, record, request, self.metrics)
        span = self.tracer.request(request) if self.tracer is not None else None
        response: Response | None = None
        dialect: Dialect | None = None
        try:
            try:
                route, request.params = self.router.match(request.method, request.path)
                record.route = route.path
                record.dialect = dialect = route.dialect_for(request)
                with self.in_flight.enter(route):
                    response = await route.endpoint(self, request, recorder)
            except RelayError as error:
                record.dialect = dialect = dialect or self.router.dialect_of(request.path)
                response = render(error, dialect)
                record.error_kind = record.error_kind or error.kind
                record.error_detail = record.error_detail or redact(error.detail or error.message)
        finally:
            status = self._finish(request, record, response, recorder, started)
            if span is not None:
                span.end(request, record, status)
        return response

    def _finish(
        self, request: Request, record: Tally, response: Response | None, recorder: _Recorder, started: float
    ) -> int:
        """Settle and log the request, however it ended (answered, streamed, its client gone, cancelled); the
        status the client got."""
        status = response.status if response is not None else (recorder.status or 499)
        if record.first_byte is None and response is not None:
            record.first_byte = time.perf_counter()
        if record.end == "client_closed":
            record.error_kind = record.error_kind or "client_gone"
        if record.error_kind is None and status >= 400:
            record.error_kind = kind_for_status(status) if status != 499 else "client_gone"
        record.usage = request.usage if isinstance(request.usage, ir.Usage) else None
        self.gateway.finish(record, request.id, status, started, request.client, request.principal)
        self.metrics.observe(record, status, started, recorder.status != 0)
        if self.config.server.access_log:
            usage = record.usage
            access.info(
                "%s %s %s %s %s %d %.1fms %s %s",
                request.id,
                request.client,
                request.principal,
                request.method,
                request.path,
                status,
                (time.perf_counter() - started) * 1000,
                f"tokens={usage.input_tokens}/{usage.output_tokens}" if usage is not None else "tokens=-",
                f"end={record.end}" if record.end is not None else "end=-",
            )
        return status

    def body_limit(self, path: str) -> int:
        """The largest body a request to ``path`` may send (``relay.http.connection.BodyLimits``)."""
        limits = self.config.limits
        return limits.max_upload_bytes if self.router.takes_uploads(path) else limits.max_body_bytes

    def streams_body(self, path: str) -> bool:
        """Whether a request to ``path`` is handed over with its body still to read
        (``relay.http.connection.StreamsBodies``)."""
        return self.router.streams_body(path)

    def error(self, status: int, message: str, path: str | None, *, code: str | None = None) -> Response:
        dialect = self.router.dialect_of(path) if path is not None else "openai"
        return render(RelayError(status, kind_for_status(status), message, code=code), dialect)


def render(error: RelayError, dialect: Dialect) -> Response:
    status, headers, body = ENCODERS[dialect](error)
    return Response(status, body, headers)


class _Recorder:
    """Passes a stream through, remembering its status and when it started, for the logs; once it started,
    the request's content is let go (``Request.let_go``): no failover can follow."""

    __slots__ = ("_metrics", "_record", "_request", "_stream", "status")

    def __init__(self, stream: StreamResponse, record: Tally, request: Request, metrics: Metrics) -> None:
        self._stream = stream
        self._record = record
        self._request = request
        self._metrics = metrics
        self.status = 0

    @property
    def started(self) -> bool:
        return self._stream.started

    @property
    def gone(self) -> bool:
        return self._stream.gone

    @property
    def shutdown(self) -> Shutdown:
        return self._stream.shutdown

    async def start(self, status: int, headers: Headers) -> None:
        self.status = status
        self._metrics.stream_started()
        self._record.first_byte = time.perf_counter()
        self._request.let_go()
        await self._stream.start(status, headers)

    async def send(self, data: bytes) -> None:
        await self._stream.send(data)

    def send_nowait(self, data: bytes) -> bool:
        return self._stream.send_nowait(data)

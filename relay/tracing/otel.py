"""The spans (docs/tracing.md): OpenTelemetry's SDK, imported only when ``[telemetry] otlp_endpoint`` is set.

A request's span (kind server) begins when ``Relay.handle`` takes the request, continuing the trace of the
client's ``traceparent`` if it sent one, and ends in ``Relay.handle`` once the request is settled; each upstream
attempt (``relay.endpoints.failover``) is a span (kind client) under it, whose context its upstream request
carries. Spans go to a ``BatchSpanProcessor`` (a queue and an exporter thread): ending one appends it to the
queue, never waits for the network. Each process (each worker of ``--workers N``) has its own provider, not the
global one, shut down (its queue exported) when the process stops serving.

What a span holds is chosen here and nowhere else: never a key's secret (only its name), an upstream key, a
prompt, an answer, nor the client's address.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from relay.errors import RelayError
from relay.http.messages import Request, Response
from relay.tracing.outgoing import OUTGOING
from relay.version import package_version

if TYPE_CHECKING:
    from relay.config import TelemetryConfig
    from relay.gateway.tally import Tally

#: The path of OTLP/HTTP's traces under a collector's base URL.
TRACES_PATH = "/v1/traces"
#: The W3C trace context's headers, read from a client and written to an upstream.
_TRACE_HEADERS = (b"traceparent", b"tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()
#: The span of the request this task serves (its attempts' parent).
_REQUEST: ContextVar[Span | None] = ContextVar("relay_request_span", default=None)


def traces_url(endpoint: str) -> str:
    """Where spans are sent: ``endpoint`` itself when it names a path, else its ``/v1/traces``."""
    if urlsplit(endpoint).path.strip("/"):
        return endpoint
    return endpoint.rstrip("/") + TRACES_PATH


class Tracer:
    """This process's provider, exporter and tracer; ``request`` and ``attempt`` begin spans."""

    def __init__(self, config: TelemetryConfig, routes: Iterable[str]) -> None:
        resource = Resource.create(
            {"service.name": config.service_name, "service.version": package_version(), "process.pid": os.getpid()}
        )
        self._provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)), resource=resource, shutdown_on_exit=False
        )
        exporter = OTLPSpanExporter(endpoint=traces_url(config.otlp_endpoint), headers=dict(config.headers))
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer("relay", package_version())
        self._routes = frozenset(routes)

    def request(self, request: Request) -> RequestSpan:
        """The request's span, begun now (a child of the client's ``traceparent``, when it sent a valid one)."""
        carrier = {name.decode(): value.decode("latin-1") for name, value in request.headers if name in _TRACE_HEADERS}
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        span = self._tracer.start_span(request.method, context=parent, kind=SpanKind.SERVER)
        return RequestSpan(span, _REQUEST.set(span), self._routes)

    def attempt(self, channel: str, upstream_model: str, number: int) -> AttemptSpan:
        """An upstream attempt's span, begun now under the request's; its context goes upstream (``OUTGOING``)
        until it ends. ``number`` counts the request's attempts from 1 (the retries and failovers before it)."""
        parent = _REQUEST.get()
        span = self._tracer.start_span(
            f"upstream {channel}",
            context=trace.set_span_in_context(parent) if parent is not None else None,
            kind=SpanKind.CLIENT,
            attributes={"relay.channel": channel, "gen_ai.request.model": upstream_model, "relay.attempt": number},
        )
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        headers = tuple((name.encode(), value.encode("latin-1")) for name, value in carrier.items())
        return AttemptSpan(span, OUTGOING.set(headers))

    def shutdown(self) -> None:
        """Export what is queued and stop the exporter thread (blocking: run it in a thread)."""
        self._provider.shutdown()


class RequestSpan:
    __slots__ = ("_routes", "_span", "_token")

    def __init__(self, span: Span, token: Token[Span | None], routes: frozenset[str]) -> None:
        self._span = span
        self._token = token
        self._routes = routes

    def end(self, request: Request, record: Tally, status: int) -> None:
        """End the span with what the request became: its route, status, model, channel, key, tokens."""
        _REQUEST.reset(self._token)
        span = self._span
        attributes: dict[str, AttributeValue] = {
            "http.request.method": request.method,
            "http.response.status_code": status,
            "relay.request_id": request.id,
            "relay.stream": record.stream,
            "relay.attempts": len(record.attempts),
        }
        if record.route in self._routes:  # a path the table does not know names no route (nor a span)
            attributes["http.route"] = record.route
            span.update_name(f"{request.method} {record.route}")
        key = record.key.name if record.key is not None else request.principal
        if key not in ("-", "(invalid)"):
            attributes["relay.key"] = key
        optional: dict[str, AttributeValue | None] = {
            "relay.dialect": record.dialect,
            "gen_ai.request.model": record.requested_model,
            "relay.channel": record.channel,
            "relay.upstream_model": record.upstream_model,
            "relay.end": record.end,
            "error.type": record.error_kind,
        }
        attributes.update((name, value) for name, value in optional.items() if value is not None)
        usage = record.usage
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
        span.set_attributes(attributes)
        if status >= 500:  # a client's own error (4xx) is no failure of the server's
            span.set_status(Status(StatusCode.ERROR, record.error_kind))
        span.end()


class AttemptSpan:
    __slots__ = ("_span", "_token")

    def __init__(self, span: Span, token: Token[tuple[tuple[bytes, bytes], ...]]) -> None:
        self._span = span
        self._token = token

    def end(self, record: Tally, result: Response | RelayError | BaseException | None) -> None:
        """End the span with how the attempt went: ``result`` is its answer (None: it streamed one), the error
        it answered, or what it raised; ``record`` tells the upstream's status and how the exchange ended."""
        OUTGOING.reset(self._token)
        span = self._span
        status = record.upstream_status
        if status is None and isinstance(result, Response):
            status = result.status
        elif status is None and result is None:
            status = 200  # the answer was streamed: the upstream's began with a success
        error: str | None = None
        if record.end is not None and record.end != "completed":
            error = record.end
        elif isinstance(result, RelayError):
            error = result.code or result.kind
        elif isinstance(result, BaseException):
            error = type(result).__name__
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        if record.end is not None:
            span.set_attribute("relay.end", record.end)
        if error is not None:
            span.set_attribute("error.type", error)
        if error is not None or (status is not None and status >= 400):
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()

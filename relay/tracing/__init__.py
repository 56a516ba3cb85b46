"""OpenTelemetry traces (docs/tracing.md): one span per request and one child span per upstream attempt, sent to
a collector by OTLP/HTTP when ``[telemetry] otlp_endpoint`` is set (the ``otel`` extra).

This module and ``relay.tracing.outgoing`` (the trace an upstream attempt's request carries) are all the rest of
Relay imports, and neither imports OpenTelemetry: ``tracer_for`` answers None when traces are off, and the request
path then checks that None and does nothing else. The spans themselves live in ``relay.tracing.otel``, imported
only when traces are on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relay.config import TelemetryConfig
    from relay.tracing.otel import Tracer


def tracer_for(config: TelemetryConfig, routes: Iterable[str]) -> Tracer | None:
    """This process's tracer (its own provider and exporter thread: each worker has one), or None when
    ``config`` asks for no traces. ``routes`` are the routing table's path templates, the spans' names."""
    if not config.otlp_endpoint:
        return None
    from relay.tracing.otel import Tracer  # only now: OpenTelemetry is an extra, and costs nothing when off

    return Tracer(config, routes)

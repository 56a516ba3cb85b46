"""The trace context an upstream request carries: set by an upstream attempt's span (``relay.tracing.otel``), in
its task (so in the tasks it starts too), and read by ``relay.upstream.channels.Channel.send``, which adds its
headers (``traceparent``, and ``tracestate`` when the trace has one). Empty when traces are off."""

from __future__ import annotations

from contextvars import ContextVar

#: The trace headers of the upstream attempt under way in this task: () when there is none, or traces are off.
OUTGOING: ContextVar[tuple[tuple[bytes, bytes], ...]] = ContextVar("relay_trace_headers", default=())

"""Prometheus metrics (docs/metrics.md): recorded once per request by ``Relay._finish`` through ``Metrics.observe``,
and a few per-process gauges (in-flight requests and streams, breaker states, the request log's queue, quota
holds) sampled by ``Metrics.sample`` — every second in the background and at each scrape. The store times its own
transactions (``relay.store.metrics``: it imports nothing of Relay's, so the store need not import this module,
which names gateway types).

Under ``relay serve --workers N`` the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` to a folder it owns (and
removes at its end) before it starts the workers: prometheus-client then keeps every value in a file per
process there, and a scrape answered by any worker adds up all of them (``MultiProcessCollector``). A single
process keeps them in memory (the default registry, with the process and Python collectors).

Labels stay few: routes are the table's path templates (``unmatched`` for any other path), channels come
from relay.toml, and the models clients name are counted under their own name up to ``MAX_MODELS`` distinct
names per process, ``other`` beyond (and for a request no channel served, e.g. an unknown model).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from prometheus_client.metrics import MetricWrapperBase

    from relay.gateway.breaker import Breaker
    from relay.gateway.gateway import Holds
    from relay.gateway.recorder import Recorder
    from relay.gateway.tally import Tally

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Distinct client-given model names one process labels by their own name; beyond, ``other``.
MAX_MODELS = 100
OTHER = "other"
UNMATCHED = "unmatched"
NONE = "none"
#: The breaker's states as a gauge's values.
BREAKER_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

REQUESTS = Counter(
    "relay_requests", "Requests answered, by route template, model, channel and status.",
    ("route", "model", "channel", "status"),
)  # fmt: skip
LATENCY = Histogram(
    "relay_request_duration_seconds", "Seconds from a request's arrival to the end of its answer.",
    ("route",), buckets=_LATENCY_BUCKETS,
)  # fmt: skip
TTFT = Histogram(
    "relay_time_to_first_byte_seconds", "Seconds from a request's arrival to the first byte of its answer.",
    ("route",), buckets=_LATENCY_BUCKETS,
)  # fmt: skip
UPSTREAM_ERRORS = Counter(
    "relay_upstream_errors", "Upstream exchanges that did not complete, by channel and how they ended.",
    ("channel", "end"),
)  # fmt: skip
IN_FLIGHT = Gauge(
    "relay_requests_in_flight", "Requests going upstream being served now (the [server] max_in_flight places).",
    multiprocess_mode="livesum",
)  # fmt: skip
STREAMS = Gauge("relay_streams_in_flight", "Streamed answers under way now.", multiprocess_mode="livesum")
BREAKER = Gauge(
    "relay_breaker_state", "A channel's circuit breaker: 0 closed, 1 half-open, 2 open (the worst of the workers).",
    ("channel",), multiprocess_mode="livemax",
)  # fmt: skip
LOG_PENDING = Gauge(
    "relay_recorder_pending", "Settlements and request-log records waiting to be written to the store.",
    multiprocess_mode="livesum",
)  # fmt: skip
LOG_WRITTEN = Counter("relay_recorder_written_records", "Request-log records written to the store.")
LOG_DROPPED = Counter(
    "relay_recorder_dropped_records", "Request-log records dropped: the buffer was full while the store failed."
)  # fmt: skip
HOLDS = Gauge(
    "relay_quota_holds_in_flight", "Admitted requests holding quota, not settled yet.", multiprocess_mode="livesum"
)  # fmt: skip
HELD = Gauge(
    "relay_quota_held_credits", "Credits the quota holds in flight reserve.", multiprocess_mode="livesum"
)  # fmt: skip
HOLDS_TAKEN = Counter("relay_quota_holds", "Quota holds taken: requests admitted against a key's quota.")
QUOTA_REFUSED = Counter("relay_quota_refusals", "Requests refused (402) because their key's quota could not hold them.")


class Metrics:
    """One process's recording: ``observe`` at each request's end, ``sample`` for the gauges."""

    def __init__(self, routes: Iterable[str], channels: Iterable[str]) -> None:
        self._routes = frozenset(routes)
        self._channels = frozenset(channels)
        self._models: set[str] = set()
        self._requests: dict[tuple[str, str, str, int], MetricWrapperBase] = {}
        self._latency: dict[str, MetricWrapperBase] = {}
        self._ttft: dict[str, MetricWrapperBase] = {}
        self._streams = 0
        self._written = 0
        self._dropped = 0
        self._holds_taken = 0
        self._refused = 0

    def add_channels(self, names: Iterable[str]) -> None:
        """Label the requests of these channels too (channels added by a reload, relay/gateway/live.py); names known
        before stay, so the label set only grows with the channels an operator made."""
        self._channels = self._channels | frozenset(names)

    def stream_started(self) -> None:
        self._streams += 1

    def observe(self, record: Tally, status: int, started: float, streamed: bool) -> None:
        """Count a request that ended: ``streamed`` says its answer went as a stream (``stream_started``)."""
        if streamed:
            self._streams -= 1
        now = time.perf_counter()
        route = record.route if record.route in self._routes else UNMATCHED
        channel = record.channel if record.channel in self._channels else NONE
        model = self._model(record.requested_model, channel)
        key = (route, model, channel, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = REQUESTS.labels(route, model, channel, str(status))
        child.inc()  # type: ignore[attr-defined]
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = LATENCY.labels(route)
            self._ttft[route] = TTFT.labels(route)
        latency.observe(now - started)  # type: ignore[attr-defined]
        if record.first_byte is not None:
            self._ttft[route].observe(record.first_byte - started)  # type: ignore[attr-defined]
        if record.end is not None and record.end != "completed":
            UPSTREAM_ERRORS.labels(channel, record.end).inc()

    def _model(self, model: str | None, channel: str) -> str:
        if not model:
            return NONE
        if model in self._models:
            return model
        if channel == NONE or len(self._models) >= MAX_MODELS:
            return OTHER
        self._models.add(model)
        return model

    def sample(self, in_flight: int, breakers: dict[str, Breaker], recorder: Recorder, holds: Holds) -> None:
        """Set this process's gauges (and add the recorder's and the quota holds' new counts) from its state now."""
        IN_FLIGHT.set(in_flight)
        STREAMS.set(self._streams)
        for name, breaker in breakers.items():
            BREAKER.labels(name).set(BREAKER_VALUES.get(breaker.state, 0.0))
        LOG_PENDING.set(recorder.pending)
        if recorder.written > self._written:
            LOG_WRITTEN.inc(recorder.written - self._written)
            self._written = recorder.written
        if recorder.dropped > self._dropped:
            LOG_DROPPED.inc(recorder.dropped - self._dropped)
            self._dropped = recorder.dropped
        HOLDS.set(holds.in_flight)
        HELD.set(holds.micros / 1_000_000)
        if holds.taken > self._holds_taken:
            HOLDS_TAKEN.inc(holds.taken - self._holds_taken)
            self._holds_taken = holds.taken
        if holds.refused > self._refused:
            QUOTA_REFUSED.inc(holds.refused - self._refused)
            self._refused = holds.refused


def exposition() -> tuple[bytes, str]:
    """The text a scrape answers, and its content type: every worker's values under ``--workers N``."""
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

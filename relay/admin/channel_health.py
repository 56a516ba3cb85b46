"""The channels as the admin API shows them (``GET /admin/v1/channels``): each channel's configuration (never its
keys), its circuit breaker in this process, and its requests of the last minutes from the request log."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from relay.channel_defaults import DEFAULT_BASE_URLS
from relay.config import ChannelConfig
from relay.gateway.breaker import Breaker
from relay.store.base import Tx

__all__ = ["latencies_since", "percentile", "public_base_url", "shown"]


def public_base_url(config: ChannelConfig) -> str:
    """The channel's base URL without credentials (user, password) nor query (where keys may hide)."""
    url = config.base_url or DEFAULT_BASE_URLS.get(config.type, "")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` percentile (0 to 1) of ascending values by the nearest rank; None for no values."""
    if not sorted_values:
        return None
    rank = min(len(sorted_values), max(1, math.ceil(fraction * len(sorted_values) - 1e-9)))
    return float(sorted_values[rank - 1])


def latencies_since(tx: Tx, since: float) -> dict[str, tuple[list[float], int]]:
    """Per channel: the ascending latencies (ms) of its logged requests from ``since`` (Unix seconds) on, and
    how many of them were errors (status 400 and up, or an error kind, as ``daily_totals`` counts them)."""
    rows = tx.execute(
        "SELECT channel, latency_ms, status, error_kind FROM request_log"
        " WHERE time >= ? AND channel IS NOT NULL ORDER BY channel, latency_ms",
        (since,),
    )
    found: dict[str, tuple[list[float], int]] = {}
    for channel, latency, status, error_kind in rows:
        latencies, errors = found.get(str(channel), ([], 0))
        latencies.append(float(latency))
        found[str(channel)] = (latencies, errors + (int(status) >= 400 or error_kind is not None))
    return found


def shown(
    config: ChannelConfig, breaker: Breaker | None, window: Mapping[str, tuple[list[float], int]], minutes: int
) -> dict[str, Any]:
    """One channel as JSON: its configuration, breaker and the window's request numbers."""
    latencies, errors = window.get(config.name, ([], 0))
    requests = len(latencies)
    return {
        "name": config.name,
        "type": config.type,
        "base_url": public_base_url(config),
        "models": list(config.models),
        "priority": config.priority,
        "weight": config.weight,
        "group": config.group,
        "keys": len(config.keys),
        "breaker": None
        if breaker is None
        else {"state": breaker.state, "failures": breaker.failures, "retry_in": round(breaker.retry_in(), 3)},
        "window": {
            "minutes": minutes,
            "requests": requests,
            "errors": errors,
            "error_rate": errors / requests if requests else None,
            "latency_ms_p50": percentile(latencies, 0.50),
            "latency_ms_p95": percentile(latencies, 0.95),
        },
    }

"""The one place where the upstream transport's exceptions (httpx's types) become ``RelayError``s.

The client's message is Relay's own; the channel and the transport's words (which may name the
upstream's host or address) go to the error's ``detail``, for the operator.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from relay.errors import RelayError


@contextmanager
def upstream_errors(channel: str, *, body: bool = False) -> Iterator[None]:
    """Map httpx's exceptions to RelayError: 502 when the upstream failed, 504 when it was slow; ``body``: the
    answer's body (or stream) was being read."""
    try:
        yield
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise relay_error(exc, channel, body=body) from None


def relay_error(exc: httpx.TransportError | httpx.StreamError, channel: str, *, body: bool = False) -> RelayError:
    """The RelayError for one of httpx's exceptions (``upstream_errors``; a stream's per-chunk read calls it
    directly, a context manager per chunk costing more than the read)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return RelayError(
            504,
            "timeout",
            "connecting to the upstream timed out",
            code="upstream_connect_timeout",
            detail=f"channel '{channel}': connecting to the upstream timed out",
        )
    if isinstance(exc, httpx.PoolTimeout):
        return RelayError(
            504,
            "timeout",
            "no upstream connection became free in time",
            code="upstream_pool_timeout",
            detail=f"channel '{channel}': no upstream connection became free in time",
        )
    if isinstance(exc, httpx.ConnectError):
        return RelayError(
            502,
            "upstream",
            "cannot connect to the upstream",
            code="upstream_connect_error",
            detail=f"channel '{channel}': cannot connect to the upstream: {exc or type(exc).__name__}",
        )
    if isinstance(exc, httpx.TimeoutException):
        return RelayError(
            504,
            "timeout",
            "the upstream timed out",
            code="upstream_timeout",
            detail=f"channel '{channel}': the upstream timed out",
        )
    # Broken while its answer was being read: the answer was cut short (truncated), not refused.
    what = "the upstream's answer was cut short" if body else "the upstream failed"
    return RelayError(
        502,
        "upstream",
        what,
        code="upstream_truncated" if body else "upstream_error",
        detail=f"channel '{channel}': {what}: {exc or type(exc).__name__}",
    )

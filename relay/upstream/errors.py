"""The upstream transport's own exceptions, and the one place where they become ``RelayError``s.

The transports (``relay.upstream.pool``, ``relay.mock.transport``) raise a ``TransportError`` subclass
naming what failed: connecting, a timeout, reading, writing, the upstream breaking HTTP/1.1. The client's
message is Relay's own; the channel and the transport's words (which may name the upstream's host or
address) go to the error's ``detail``, for the operator.
"""

from __future__ import annotations

from relay.errors import RelayError


class TransportError(Exception):
    """The upstream leg failed below HTTP: no answer, or an answer cut or malformed on the wire."""


class UpstreamTimeout(TransportError):
    """A wait of the transport's own ran out."""


class ConnectTimeout(UpstreamTimeout):
    """Opening a connection (TCP, TLS) took longer than the channel's ``connect`` timeout."""


class PoolTimeout(UpstreamTimeout):
    """No pooled connection became free in time."""


class ConnectError(TransportError):
    """The upstream could not be reached (refused, unreachable, TLS handshake failed)."""


class ReadError(TransportError):
    """The connection failed while the answer was being read."""


class WriteError(TransportError):
    """The connection failed while the request was being written."""


class RemoteProtocolError(TransportError):
    """The upstream broke HTTP/1.1."""


class LocalProtocolError(TransportError):
    """The request cannot be sent as it is (a header with illegal characters)."""


class StreamClosed(TransportError):
    """The answer's body was read after it was closed."""


def relay_error(exc: TransportError, channel: str, *, body: bool = False) -> RelayError:
    """The RelayError for one of the transport's exceptions: 502 when the upstream failed, 504 when it was slow;
    ``body``: the answer's body (or stream) was being read. Callers catch ``TransportError`` and call this (a
    context manager per call cost more than some of the reads it guarded)."""
    if isinstance(exc, ConnectTimeout):
        return RelayError(
            504,
            "timeout",
            "connecting to the upstream timed out",
            code="upstream_connect_timeout",
            detail=f"channel '{channel}': connecting to the upstream timed out",
        )
    if isinstance(exc, PoolTimeout):
        return RelayError(
            504,
            "timeout",
            "no upstream connection became free in time",
            code="upstream_pool_timeout",
            detail=f"channel '{channel}': no upstream connection became free in time",
        )
    if isinstance(exc, ConnectError):
        return RelayError(
            502,
            "upstream",
            "cannot connect to the upstream",
            code="upstream_connect_error",
            detail=f"channel '{channel}': cannot connect to the upstream: {exc or type(exc).__name__}",
        )
    if isinstance(exc, UpstreamTimeout):
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

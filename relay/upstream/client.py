"""The shared httpx client, and the one place where httpx's exceptions become ``RelayError``s."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from relay.errors import RelayError

#: Upstream connections kept per process; a request beyond it waits (up to the connect timeout).
MAX_CONNECTIONS = 1000
#: Idle upstream connections kept open for reuse.
MAX_KEEPALIVE = 200
KEEPALIVE_EXPIRY = 30.0


def make_client(mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE, keepalive_expiry=KEEPALIVE_EXPIRY
        ),
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        retries=0,
    )
    return httpx.AsyncClient(
        transport=transport, mounts=dict(mounts or {}), trust_env=False, follow_redirects=False, timeout=None
    )


@contextmanager
def upstream_errors(channel: str, *, started: bool = False) -> Iterator[None]:
    """Map httpx's exceptions to RelayError: 502 when the upstream failed, 504 when it was slow."""
    try:
        yield
    except httpx.ConnectTimeout:
        raise RelayError(
            504,
            "timeout",
            f"channel '{channel}': connecting to the upstream timed out",
            code="upstream_connect_timeout",
        ) from None
    except httpx.PoolTimeout:
        raise RelayError(
            504,
            "timeout",
            f"channel '{channel}': no upstream connection became free in time",
            code="upstream_pool_timeout",
        ) from None
    except httpx.ConnectError as exc:
        raise RelayError(
            502,
            "upstream",
            f"channel '{channel}': cannot connect to the upstream: {exc}",
            code="upstream_connect_error",
        ) from None
    except httpx.TimeoutException:
        raise RelayError(
            504, "timeout", f"channel '{channel}': the upstream timed out", code="upstream_timeout"
        ) from None
    except (httpx.TransportError, httpx.StreamError) as exc:
        what = "the upstream stream broke" if started else "the upstream failed"
        raise RelayError(
            502, "upstream", f"channel '{channel}': {what}: {exc or type(exc).__name__}", code="upstream_error"
        ) from None

"""The admin API's calls made for the web dashboard (docs/dashboard.md): signing in (a session token for an admin
key, relay.admin.session), who the session is, and the overview's time series (relay.admin.stats)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from relay.admin import session, stats
from relay.admin.auth import admin_caller
from relay.errors import RelayError
from relay.gateway.auth import presented_key
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.store.keys import digest

if TYPE_CHECKING:
    from relay.app import Relay

__all__ = ["ROUTES"]

PREFIX = "/admin/v1"
#: The overview's default window (a day) and the most buckets it is cut into by default.
DEFAULT_WINDOW, DEFAULT_BUCKETS = 24 * 3600, 48


async def sign_in(relay: Relay, request: Request, out: StreamResponse) -> Response:
    """``POST /admin/v1/session`` with ``Authorization: Bearer <admin key>``: a session token for that key."""
    caller = admin_caller(relay, request, reads=True)  # a viewer signs in too
    if caller.session:
        raise RelayError(
            400, "invalid_request", "Sign in with an admin key, not a session token.", code="session_not_renewable"
        )
    secret = presented_key(request)
    assert secret is not None  # admin_caller found an admin key in it
    token, expires = session.issue(caller.name, caller.role, digest(secret), time.time())
    return Response.json(
        201, {"object": "session", "token": token, "name": caller.name, "role": caller.role, "expires_at": expires}
    )


async def who(relay: Relay, request: Request, out: StreamResponse) -> Response:
    """``GET /admin/v1/session``: the admin key's name and role the token (or key) stands for."""
    caller = admin_caller(relay, request)
    return Response.json(200, {"object": "session", "name": caller.name, "role": caller.role})


def _seconds(params: dict[str, str], name: str, default: float) -> float:
    text = params.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise RelayError(400, "invalid_request", f"{name} must be Unix seconds, got {text!r}.", param=name)
    return value


async def overview(relay: Relay, request: Request, out: StreamResponse) -> Response:
    """``GET /admin/v1/stats?since=&until=&bucket=``: the request log's time series (relay.admin.stats)."""
    admin_caller(relay, request)
    params = request.query_params()
    until = _seconds(params, "until", math.ceil(time.time()))
    since = _seconds(params, "since", until - DEFAULT_WINDOW)
    if since >= until:
        raise RelayError(400, "invalid_request", f"since ({since}) must be before until ({until}).", param="since")
    default_bucket = max(60, math.ceil((until - since) / DEFAULT_BUCKETS / 60) * 60)
    text = params.get("bucket") or str(default_bucket)
    if not text.isdigit() or int(text) < 1:
        raise RelayError(
            400, "invalid_request", f"bucket must be whole seconds, 1 or more, got {text!r}.", param="bucket"
        )
    bucket = int(text)
    if (until - since) / bucket > stats.MAX_BUCKETS:
        raise RelayError(
            400,
            "invalid_request",
            f"{until - since:g} seconds in buckets of {bucket} make more than {stats.MAX_BUCKETS}: use larger buckets.",
            param="bucket",
        )
    data = await relay.gateway.store.transaction(lambda tx: stats.series(tx, since, until, bucket))
    return Response.json(200, {"object": "list", "since": since, "until": until, "bucket": bucket, "data": data})


ROUTES: tuple[Route, ...] = (
    Route("POST", PREFIX + "/session", sign_in),
    Route("GET", PREFIX + "/session", who),
    Route("GET", PREFIX + "/stats", overview),
)

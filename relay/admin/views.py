"""The admin API's read-only views (docs/admin.md): the channels with their health, usage totals (JSON and
CSV) and the configured prices. Both roles (``admin``, ``viewer``) may read them; none is written to the log."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, cast

import attrs

from relay.admin import channel_health, channels, usage_totals
from relay.admin.auth import admin_caller
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route

if TYPE_CHECKING:
    from relay.app import Relay

__all__ = ["ROUTES"]

PREFIX = "/admin/v1"
#: Minutes of the request log the channels' numbers cover, by default and at most (a week).
DEFAULT_MINUTES, MAX_MINUTES = 15, 7 * 24 * 60


def _authenticate(relay: Relay, request: Request) -> None:
    admin_caller(relay, request)


def _minutes(params: dict[str, str]) -> int:
    text = params.get("minutes") or str(DEFAULT_MINUTES)
    try:
        value = int(text)
    except ValueError:
        raise RelayError(
            400, "invalid_request", f"minutes must be an integer, got {text!r}.", param="minutes"
        ) from None
    if not 1 <= value <= MAX_MINUTES:
        raise RelayError(
            400, "invalid_request", f"minutes must be from 1 to {MAX_MINUTES}, got {value}.", param="minutes"
        )
    return value


def _day(params: dict[str, str], name: str) -> str | None:
    text = params.get(name)
    if not text:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise RelayError(
            400, "invalid_request", f"{name} must be a day, YYYY-MM-DD, got {text!r}.", param=name
        ) from None


async def list_channels(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _authenticate(relay, request)
    minutes = _minutes(request.query_params())
    since = time.time() - minutes * 60
    window = await relay.gateway.store.transaction(lambda tx: channel_health.latencies_since(tx, since))
    await relay.live.refresh()  # the store's channels as they are now, were they changed through another worker
    data = [channels.as_json(listed, relay, window, minutes) for listed in relay.live.listed]
    return Response.json(200, {"object": "list", "data": data})


async def _usage_rows(relay: Relay, request: Request) -> tuple[usage_totals.Grouping, list[dict[str, str | int]]]:
    _authenticate(relay, request)
    params = request.query_params()
    by = params.get("by") or "key"
    if by not in usage_totals.GROUPINGS:
        raise RelayError(400, "invalid_request", f"by must be key, model, channel or day, got {by!r}.", param="by")
    grouping = cast(usage_totals.Grouping, by)
    since, until = _day(params, "since"), _day(params, "until")
    if since is not None and until is not None and since > until:
        raise RelayError(400, "invalid_request", f"since ({since}) is after until ({until}).", param="since")
    rows = await relay.gateway.store.transaction(lambda tx: usage_totals.summed(tx, grouping, since, until))
    return grouping, rows


async def usage(relay: Relay, request: Request, out: StreamResponse) -> Response:
    by, rows = await _usage_rows(relay, request)
    return Response.json(200, {"object": "list", "by": by, "data": rows})


async def usage_csv(relay: Relay, request: Request, out: StreamResponse) -> Response:
    by, rows = await _usage_rows(relay, request)
    headers = (
        (b"content-type", b"text/csv; charset=utf-8"),
        (b"content-disposition", f'attachment; filename="usage-by-{by}.csv"'.encode()),
    )
    return Response(200, usage_totals.as_csv(by, rows).encode(), headers)


def _plain(value: object) -> object:
    return dict(value) if isinstance(value, Mapping) else value


async def prices(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _authenticate(relay, request)
    data = [
        {field.name: _plain(getattr(price, field.name)) for field in attrs.fields(type(price))}
        for price in relay.config.prices
    ]
    return Response.json(200, {"object": "list", "data": data})


ROUTES: tuple[Route, ...] = (
    Route("GET", PREFIX + "/channels", list_channels),
    Route("GET", PREFIX + "/usage", usage),
    Route("GET", PREFIX + "/usage.csv", usage_csv),
    Route("GET", PREFIX + "/prices", prices),
)

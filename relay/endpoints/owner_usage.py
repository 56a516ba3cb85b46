"""A key owner's own view, authenticated by the key itself (docs/apis/usage.md): no other key's data.

- ``GET /v1/dashboard/billing/subscription`` (and without ``/v1``): the shape OpenAI-compatible chat clients
  (NextChat) read, ``hard_limit_usd`` the credits ever granted to the key (a key without quota:
  ``UNLIMITED_USD``, as new-api answers), ``access_until`` its expiry (0: none).
- ``GET /v1/dashboard/billing/usage?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD`` (and without ``/v1``):
  ``total_usage`` in cents, the cost of the key's requests from ``start_date`` (included) to ``end_date``
  (excluded, as OpenAI's was), with ``daily_costs`` by model.
- ``GET /v1/usage``: Relay's own JSON, balance, granted, spent, today's and the last 30 days' totals, and the
  key's latest requests.

Credits are reported as US dollars, one for one. These reads are not written to the request log (they cost
nothing, and would count themselves).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.store import ledger
from relay.store import usage as stored
from relay.store.base import Tx
from relay.store.keys import MICROS, KeyRecord
from relay.store.records import day_of

if TYPE_CHECKING:
    from relay.app import Relay

__all__ = ["RECENT", "ROUTES", "UNLIMITED_USD"]

#: ``hard_limit_usd`` of a key without quota: the large number new-api answers for an unlimited token.
UNLIMITED_USD = 100_000_000.0
#: The key's latest requests shown by ``GET /v1/usage``.
RECENT = 20
#: Days in ``last_30_days``, today included.
WINDOW_DAYS = 30

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _dollars(micros: int) -> float:
    return micros / MICROS


async def _owner(relay: Relay, request: Request) -> KeyRecord:
    request.record.logged = False  # type: ignore[attr-defined]  # a read of the log must not add to it
    key, _ = await relay.gateway.keys.authenticate(request)
    return key


async def subscription(relay: Relay, request: Request, out: StreamResponse) -> Response:
    key = await _owner(relay, request)

    def read(tx: Tx) -> tuple[int | None, int]:
        return ledger.balance(tx, key.name), stored.granted(tx, key.name)

    balance, granted = await relay.gateway.store.transaction(read)
    limit = UNLIMITED_USD if balance is None else _dollars(granted)
    return Response.json(
        200,
        {
            "object": "billing_subscription",
            "has_payment_method": False,
            "soft_limit_usd": limit,
            "hard_limit_usd": limit,
            "system_hard_limit_usd": limit,
            "access_until": int(key.expires_at) if key.expires_at is not None else 0,
        },
    )


def _day_param(request: Request, name: str) -> date | None:
    value = request.query_params().get(name)
    if value is None or value == "":
        return None
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise RelayError(
            400, "invalid_request", f"{name} must be a date as YYYY-MM-DD, got {value!r}", param=name
        ) from None


async def billing_usage(relay: Relay, request: Request, out: StreamResponse) -> Response:
    key = await _owner(relay, request)
    start, end = _day_param(request, "start_date"), _day_param(request, "end_date")
    if start is not None and end is not None and end <= start:
        raise RelayError(400, "invalid_request", "end_date must be after start_date", param="end_date")
    first = start.isoformat() if start is not None else "0000-01-01"
    stop = end.isoformat() if end is not None else "9999-12-31"
    rows = await relay.gateway.store.transaction(lambda tx: stored.daily_costs(tx, key.name, first, stop))
    days: dict[str, list[dict[str, Any]]] = {}
    for day, model, cost in rows:
        days.setdefault(day, []).append({"name": model or "(none)", "cost": cost / (MICROS / 100)})
    daily = [
        {"timestamp": datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp(), "line_items": items}
        for day, items in days.items()
    ]
    total = sum(cost for _, _, cost in rows)
    return Response.json(200, {"object": "list", "daily_costs": daily, "total_usage": total / (MICROS / 100)})


def _counts(sums: dict[str, int]) -> dict[str, Any]:
    shown: dict[str, Any] = {name: value for name, value in sums.items() if name != "cost_micros"}
    shown["cost"] = _dollars(sums["cost_micros"])
    return shown


async def own_usage(relay: Relay, request: Request, out: StreamResponse) -> Response:
    key = await _owner(relay, request)
    now = time.time()
    today = day_of(now)
    since = (datetime.fromtimestamp(now, UTC).date() - timedelta(days=WINDOW_DAYS - 1)).isoformat()

    def read(tx: Tx) -> dict[str, Any]:
        balance = ledger.balance(tx, key.name)
        window = stored.totals(tx, key.name, since)
        if balance is not None:
            spent = stored.charged(tx, key.name)
        else:  # nothing is charged from an unlimited key's balance: what its requests cost
            spent = stored.totals(tx, key.name, "0000-01-01")["cost_micros"]
        return {
            "balance": balance,
            "granted": stored.granted(tx, key.name),
            "spent": spent,
            "today": stored.totals(tx, key.name, today, today),
            "window": window,
            "recent": stored.recent(tx, key.name, RECENT),
        }

    found = await relay.gateway.store.transaction(read)
    limited = found["balance"] is not None
    return Response.json(
        200,
        {
            "object": "usage",
            "key": key.name,
            "unlimited": not limited,
            "balance": _dollars(found["balance"]) if limited else None,
            "granted": _dollars(found["granted"]) if limited else None,
            "spent": _dollars(found["spent"]),
            "expires_at": int(key.expires_at) if key.expires_at is not None else None,
            "today": {"day": today, **_counts(found["today"])},
            "last_30_days": {"since": since, "until": today, **_counts(found["window"])},
            "recent": [
                {
                    "time": r.time,
                    "request_id": r.request_id,
                    "route": r.route,
                    "model": r.model,
                    "status": r.status,
                    "error": r.error_kind,
                    "stream": r.stream,
                    "latency_ms": round(r.latency_ms, 1),
                    "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens,
                    "cached_tokens": r.cached_tokens,
                    "reasoning_tokens": r.reasoning_tokens,
                    "cost": _dollars(r.cost_micros),
                }
                for r in found["recent"]
            ],
        },
    )


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/dashboard/billing/subscription", subscription),
    Route("GET", "/dashboard/billing/subscription", subscription),
    Route("GET", "/v1/dashboard/billing/usage", billing_usage),
    Route("GET", "/dashboard/billing/usage", billing_usage),
    Route("GET", "/v1/usage", own_usage),
)

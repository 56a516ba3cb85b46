"""What a key's owner may read of the key's own use: its grants and charges in the ledger, its daily totals over
a range of days, and its latest requests in the request log.

Every reader takes the key's name and reads that key's rows only. Every function is synchronous and takes the
``Tx`` of one store transaction.
"""

from __future__ import annotations

import attrs

from relay.store.base import Tx

__all__ = ["RecentRequest", "charged", "daily_costs", "granted", "recent", "totals"]

#: The counters of ``totals``, summed from ``daily_totals``.
COUNTERS = ("requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "cost_micros")


@attrs.frozen
class RecentRequest:
    """One request of the key, as its owner sees it: nothing of the channel, the upstream or the operator's notes."""

    time: float
    request_id: str
    route: str
    model: str | None
    status: int
    error_kind: str | None
    stream: bool
    latency_ms: float
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_micros: int


_RECENT_COLUMNS = (
    "time, request_id, route, requested_model, status, error_kind, stream, latency_ms, input_tokens, output_tokens,"
    " cached_tokens, reasoning_tokens, cost_micros"
)


def _sum_ledger(tx: Tx, key_name: str, kind: str) -> int:
    rows = tx.execute(
        "SELECT COALESCE(SUM(amount_micros), 0) FROM quota_ledger WHERE key_name = ? AND kind = ?", (key_name, kind)
    )
    return int(rows[0][0])


def granted(tx: Tx, key_name: str) -> int:
    """Micro-credits ever added to the key's balance: its grant and every top-up (``topup`` rows)."""
    return _sum_ledger(tx, key_name, "topup")


def charged(tx: Tx, key_name: str) -> int:
    """Micro-credits ever taken from the key's balance for requests (``settle`` rows)."""
    return _sum_ledger(tx, key_name, "settle")


def totals(tx: Tx, key_name: str, first_day: str, last_day: str | None = None) -> dict[str, int]:
    """The key's daily totals summed from ``first_day`` to ``last_day`` (``YYYY-MM-DD``, both included; None: no
    end), every model and channel together."""
    where, params = "key_name = ? AND day >= ?", [key_name, first_day]
    if last_day is not None:
        where, params = where + " AND day <= ?", [*params, last_day]
    sums = ", ".join(f"COALESCE(SUM({name}), 0)" for name in COUNTERS)
    row = tx.execute(f"SELECT {sums} FROM daily_totals WHERE {where}", params)[0]
    return {name: int(value) for name, value in zip(COUNTERS, row, strict=True)}


def daily_costs(tx: Tx, key_name: str, first_day: str, end_day: str) -> list[tuple[str, str, int]]:
    """(day, model, micro-credits) of the key's requests from ``first_day`` (included) to ``end_day`` (excluded),
    by day and model (channels together), days with a cost only."""
    rows = tx.execute(
        "SELECT day, model, SUM(cost_micros) FROM daily_totals WHERE key_name = ? AND day >= ? AND day < ?"
        " GROUP BY day, model HAVING SUM(cost_micros) > 0 ORDER BY day, model",
        (key_name, first_day, end_day),
    )
    return [(str(day), str(model), int(cost)) for day, model, cost in rows]


def recent(tx: Tx, key_name: str, limit: int) -> list[RecentRequest]:
    """The key's latest ``limit`` requests in the request log, newest first."""
    rows = tx.execute(
        f"SELECT {_RECENT_COLUMNS} FROM request_log WHERE key_name = ? ORDER BY time DESC, id DESC LIMIT ?",
        (key_name, limit),
    )
    return [
        RecentRequest(
            time=float(r[0]),
            request_id=str(r[1]),
            route=str(r[2]),
            model=r[3],
            status=int(r[4]),
            error_kind=r[5],
            stream=bool(r[6]),
            latency_ms=float(r[7]),
            input_tokens=int(r[8]),
            output_tokens=int(r[9]),
            cached_tokens=int(r[10]),
            reasoning_tokens=int(r[11]),
            cost_micros=int(r[12]),
        )
        for r in rows
    ]

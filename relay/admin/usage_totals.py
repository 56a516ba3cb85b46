"""Usage totals over days for the admin API (``GET /admin/v1/usage`` and ``/usage.csv``): ``daily_totals``
summed by key, model, channel or day, every key's rows (the key owner's own readers are relay.store.usage)."""

from __future__ import annotations

import csv
import io
from typing import Literal

from relay.store.base import Tx
from relay.store.usage import COUNTERS

__all__ = ["GROUPINGS", "Grouping", "as_csv", "summed"]

Grouping = Literal["key", "model", "channel", "day"]
#: ``by`` values and the ``daily_totals`` column each groups by.
GROUPINGS: dict[str, str] = {"key": "key_name", "model": "model", "channel": "channel", "day": "day"}


def summed(tx: Tx, by: Grouping, since: str | None, until: str | None) -> list[dict[str, str | int]]:
    """One row per value of ``by`` (ascending): the counters summed over the days from ``since`` to ``until``
    (``YYYY-MM-DD``, both included; None: unbounded)."""
    column = GROUPINGS[by]
    where, params = [], []
    if since is not None:
        where, params = [*where, "day >= ?"], [*params, since]
    if until is not None:
        where, params = [*where, "day <= ?"], [*params, until]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    sums = ", ".join(f"COALESCE(SUM({name}), 0)" for name in COUNTERS)
    rows = tx.execute(f"SELECT {column}, {sums} FROM daily_totals{clause} GROUP BY {column} ORDER BY {column}", params)
    return [{by: str(row[0]), **{n: int(v) for n, v in zip(COUNTERS, row[1:], strict=True)}} for row in rows]


def as_csv(by: Grouping, rows: list[dict[str, str | int]]) -> str:
    """The rows as CSV with a header line (``by`` then the counters), CRLF line ends (RFC 4180)."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([by, *COUNTERS])
    for row in rows:
        writer.writerow([row[by], *(row[name] for name in COUNTERS)])
    return text.getvalue()

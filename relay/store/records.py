"""The request log and the daily totals: written in batches, each request at most once, read back.

``write_logs`` inserts a batch in as few statements as it can, skips a request id already logged (a batch
retried after a failure is not logged twice), and adds the requests it did insert to ``daily_totals``
(by UTC day, key, requested model and channel; ``''`` for none). Every function is synchronous and takes
the ``Tx`` of one store transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

from relay.store.base import Row, Tx

__all__ = ["DailyTotal", "LogRecord", "daily", "day_of", "read_logs", "write_logs"]


@attrs.frozen
class LogRecord:
    """One request, as the request log holds it (every column of ``request_log`` but its id)."""

    time: float
    request_id: str
    key_name: str | None
    dialect: str
    route: str
    requested_model: str | None
    upstream_model: str | None
    channel: str | None
    #: (channel, outcome) of every attempt, in order.
    attempts: tuple[tuple[str, str], ...]
    status: int
    error_kind: str | None
    stream: bool
    latency_ms: float
    ttft_ms: float | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_micros: int
    client_addr: str | None
    #: How the exchange ended (``relay.endpoints.ending``): ``completed``, ``client_closed``, ``upstream_truncated``,
    #: ``upstream_malformed``, ``upstream_error``, ``timeout``, ``shutdown``; None when no upstream was called.
    end_kind: str | None = None
    #: What went wrong, for the operator: Relay's own words and the upstream's (redacted of credentials);
    #: never shown to the client.
    error_detail: str | None = None
    #: The units of the APIs beside generation the request was billed (``[[prices]]``): images made, and the
    #: ``"SIZE"`` or ``"SIZE/QUALITY"`` they were priced at (None: no size), seconds of audio, characters
    #: spoken, requests billed as units.
    images: int = 0
    image_size: str | None = None
    seconds: float = 0.0
    characters: int = 0
    request_units: int = 0
    #: The request this one was made for (a task endpoint's model call: docs/utility.md); None: a client's own.
    parent_id: str | None = None


@attrs.frozen
class DailyTotal:
    day: str
    key_name: str
    model: str
    channel: str
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_micros: int = 0
    images: int = 0
    seconds: float = 0.0
    characters: int = 0
    request_units: int = 0


_FIELDS = tuple(field.name for field in attrs.fields(LogRecord))
_COUNTERS = tuple(field.name for field in attrs.fields(DailyTotal))[4:]  # after day, key_name, model, channel
#: The counters summed from the log's own columns (the first two, requests and errors, are counted).
_SUMMED = _COUNTERS[2:]
#: Rows in one INSERT: 27 parameters each stays far below SQLite's 32 766 and PostgreSQL's 65 535.
CHUNK = 500


def day_of(moment: float) -> str:
    """The UTC day of a Unix time, ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")


def _params(record: LogRecord) -> tuple[object, ...]:
    attempts = json.dumps([{"channel": channel, "outcome": outcome} for channel, outcome in record.attempts])
    return tuple(attempts if name == "attempts" else getattr(record, name) for name in _FIELDS)


#: The end of an insert into ``daily_totals``: a group's counts added to those already there.
_ADD_TO_TOTALS = " ON CONFLICT (day, key_name, model, channel) DO UPDATE SET " + ", ".join(
    f"{c} = daily_totals.{c} + excluded.{c}" for c in _COUNTERS
)


def _failed(record: LogRecord) -> bool:
    """What the daily totals count as a failed request: an error status, or an error kind recorded."""
    return record.status >= 400 or record.error_kind is not None


def write_logs(tx: Tx, records: Sequence[LogRecord]) -> int:
    """Insert ``records`` (request ids already logged are skipped) and add them to the daily totals; how
    many were inserted (pipelined on PostgreSQL, where the count is not read back: how many were sent)."""
    seen: set[str] = set()
    unique = [r for r in records if not (r.request_id in seen or seen.add(r.request_id))]  # first of an id
    if tx.pipelined:
        if unique:
            _write_postgres(tx, unique)
        return len(unique)
    inserted: list[LogRecord] = []
    row = f"({', '.join('?' * len(_FIELDS))})"
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        written = {
            r[0]
            for r in tx.execute(
                f"INSERT INTO request_log ({', '.join(_FIELDS)}) VALUES {', '.join([row] * len(chunk))}"
                " ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
                [value for record in chunk for value in _params(record)],
            )
        }
        inserted += [r for r in chunk if r.request_id in written]
    totals: dict[tuple[str, str, str, str], list[float]] = {}
    for r in inserted:
        group = (day_of(r.time), r.key_name or "", r.requested_model or "", r.channel or "")
        counts = totals.setdefault(group, [0] * len(_COUNTERS))
        for i, value in enumerate((1, int(_failed(r)), *(getattr(r, name) for name in _SUMMED))):
            counts[i] += value  # seconds are fractional: every other counter stays an int
    upsert = (
        f"INSERT INTO daily_totals (day, key_name, model, channel, {', '.join(_COUNTERS)})"
        f" VALUES ({', '.join('?' * (4 + len(_COUNTERS)))})" + _ADD_TO_TOTALS
    )
    for group in sorted(totals):  # one order in every process: concurrent writers never deadlock
        tx.execute(upsert, (*group, *totals[group]))
    return len(inserted)


#: PostgreSQL types of ``request_log``'s columns (text unless named), for ``unnest``.
_PG_TYPES = {
    "time": "float8",
    "status": "int",
    "stream": "bool",
    "latency_ms": "float8",
    "ttft_ms": "float8",
    "input_tokens": "bigint",
    "output_tokens": "bigint",
    "cached_tokens": "bigint",
    "reasoning_tokens": "bigint",
    "cost_micros": "bigint",
    "images": "bigint",
    "seconds": "float8",
    "characters": "bigint",
    "request_units": "bigint",
}
_ARRAYS = ", ".join(f"?::{_PG_TYPES.get(name, 'text')}[]" for name in _FIELDS)
#: PostgreSQL: the batch's rows and their daily totals in one statement, so that a pipelined transaction sends
#: it without waiting. Only the rows inserted (not those of a request already logged) are added up, by the UTC
#: day computed here (``day_of``) and passed along, in one order (no deadlock between writers).
_POSTGRES_LOGS = (
    f"WITH rows AS (SELECT * FROM unnest({_ARRAYS}, ?::text[], ?::int[]) AS t({', '.join(_FIELDS)}, day, failed)),"
    f" inserted AS (INSERT INTO request_log ({', '.join(_FIELDS)}) SELECT {', '.join(_FIELDS)} FROM rows"
    " ON CONFLICT (request_id) DO NOTHING RETURNING request_id)"
    f" INSERT INTO daily_totals (day, key_name, model, channel, {', '.join(_COUNTERS)})"
    " SELECT r.day, COALESCE(r.key_name, ''), COALESCE(r.requested_model, ''), COALESCE(r.channel, ''), COUNT(*),"
    f" SUM(r.failed), {', '.join(f'SUM(r.{name})' for name in _SUMMED)}"
    " FROM inserted JOIN rows r ON r.request_id = inserted.request_id GROUP BY 1, 2, 3, 4"
    " ORDER BY 1, 2, 3, 4" + _ADD_TO_TOTALS
)


def _write_postgres(tx: Tx, records: Sequence[LogRecord]) -> None:
    columns: list[list[object]] = [list(column) for column in zip(*(_params(r) for r in records), strict=True)]
    columns.append([day_of(r.time) for r in records])
    columns.append([int(_failed(r)) for r in records])
    tx.send(_POSTGRES_LOGS, columns)


def _log_record(row: Row) -> LogRecord:
    values = dict(zip(_FIELDS, row, strict=True))
    values["attempts"] = tuple((a["channel"], a["outcome"]) for a in json.loads(values["attempts"]))
    values["stream"] = bool(values["stream"])
    return LogRecord(**values)


def read_logs(tx: Tx, since: float = 0.0, limit: int = 1000, key_name: str | None = None) -> list[LogRecord]:
    """Logged requests from ``since`` on (of one key, if named), oldest first, at most ``limit``."""
    where, params = "time >= ?", [since]
    if key_name is not None:
        where, params = where + " AND key_name = ?", [*params, key_name]
    rows = tx.execute(
        f"SELECT {', '.join(_FIELDS)} FROM request_log WHERE {where} ORDER BY time, id LIMIT ?", [*params, limit]
    )
    return [_log_record(row) for row in rows]


def daily(tx: Tx, day: str | None = None, key_name: str | None = None) -> list[DailyTotal]:
    """Daily totals (of one day, of one key, if named), by day, key, model and channel."""
    conditions, params = [], []
    if day is not None:
        conditions, params = ["day = ?"], [day]
    if key_name is not None:
        conditions, params = [*conditions, "key_name = ?"], [*params, key_name]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = tx.execute(
        f"SELECT day, key_name, model, channel, {', '.join(_COUNTERS)} FROM daily_totals{where}"
        " ORDER BY day, key_name, model, channel",
        params,
    )
    return [DailyTotal(*row) for row in rows]

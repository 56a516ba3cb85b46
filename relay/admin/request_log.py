"""The request log as the admin API reads it: newest first, filtered, in pages with an opaque cursor."""

from __future__ import annotations

import base64
import json
from typing import Any

import attrs

from relay.store.base import Tx
from relay.store.records import LogRecord

__all__ = ["MAX_LIMIT", "BadCursor", "LogFilter", "as_json", "decode_cursor", "encode_cursor", "find", "page"]

MAX_LIMIT = 200
_FIELDS = tuple(field.name for field in attrs.fields(LogRecord))
_COLUMNS = ", ".join(_FIELDS)


class BadCursor(ValueError):
    """A cursor this module did not make."""


@attrs.frozen
class LogFilter:
    key: str | None = None
    model: str | None = None
    channel: str | None = None
    status: int | None = None
    #: Unix seconds: from (included) and until (excluded).
    since: float | None = None
    until: float | None = None
    #: The request they were made for (a task endpoint's model calls).
    parent_id: str | None = None


def encode_cursor(moment: float, row_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([moment, row_id]).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[float, int]:
    try:
        moment, row_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(moment, int | float) or not isinstance(row_id, int):
            raise TypeError
    except (ValueError, TypeError):
        raise BadCursor(text) from None
    return float(moment), row_id


def _record(values: tuple[Any, ...]) -> LogRecord:
    fields = dict(zip(_FIELDS, values, strict=True))
    fields["attempts"] = tuple((a["channel"], a["outcome"]) for a in json.loads(fields["attempts"]))
    fields["stream"] = bool(fields["stream"])
    return LogRecord(**fields)


def page(tx: Tx, where: LogFilter, limit: int, cursor: tuple[float, int] | None) -> tuple[list[LogRecord], str | None]:
    """At most ``limit`` records matching ``where`` after ``cursor``, newest first; the next page's cursor."""
    conditions: list[str] = []
    params: list[object] = []
    for column, value in (
        ("key_name", where.key),
        ("requested_model", where.model),
        ("channel", where.channel),
        ("status", where.status),
        ("parent_id", where.parent_id),
    ):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    if where.since is not None:
        conditions.append("time >= ?")
        params.append(where.since)
    if where.until is not None:
        conditions.append("time < ?")
        params.append(where.until)
    if cursor is not None:
        conditions.append("(time < ? OR (time = ? AND id < ?))")
        params += [cursor[0], cursor[0], cursor[1]]
    clause = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = tx.execute(
        f"SELECT id, {_COLUMNS} FROM request_log{clause} ORDER BY time DESC, id DESC LIMIT ?", [*params, limit + 1]
    )
    found = with_calls(tx, [_record(row[1:]) for row in rows[:limit]])
    following = encode_cursor(rows[limit - 1][1], rows[limit - 1][0]) if len(rows) > limit else None
    return found, following


def find(tx: Tx, request_id: str) -> LogRecord | None:
    rows = tx.execute(f"SELECT {_COLUMNS} FROM request_log WHERE request_id = ? ORDER BY id LIMIT 1", [request_id])
    return with_calls(tx, [_record(rows[0])])[0] if rows else None


#: The columns a task's row shows summed with its model calls' (the rows whose ``parent_id`` is its id).
SUMMED = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_micros",
    "images",
    "seconds",
    "characters",
    "request_units",
)


def with_calls(tx: Tx, records: list[LogRecord]) -> list[LogRecord]:
    """``records``, each task's (``relay.utility``) with its model calls' tokens, units and cost added to its own.

    Summed as the log is read, never written: each call is counted once in the daily totals and the usage, on
    its own row (its model and channel), and a task's row is charged and counted for its own part only."""
    if not records:
        return records
    ids = [r.request_id for r in records]
    rows = tx.execute(
        f"SELECT parent_id, {', '.join(f'SUM({c})' for c in SUMMED)} FROM request_log"
        f" WHERE parent_id IN ({', '.join('?' * len(ids))}) GROUP BY parent_id",
        ids,
    )
    sums = {row[0]: row[1:] for row in rows}
    if not sums:
        return records
    return [
        attrs.evolve(r, **{c: getattr(r, c) + (v or 0) for c, v in zip(SUMMED, sums[r.request_id], strict=True)})
        if r.request_id in sums
        else r
        for r in records
    ]


def as_json(record: LogRecord) -> dict[str, Any]:
    shown = attrs.asdict(record, recurse=False)
    shown["attempts"] = [{"channel": channel, "outcome": outcome} for channel, outcome in record.attempts]
    return shown

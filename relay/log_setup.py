"""The log's format and level (``[server] log_format``, ``[server] log_level``): text lines, or one JSON object
per line with ``time``, ``level``, ``logger``, ``message`` and, for the access log (``relay.access``), its
fields by name (docs/configuration.md)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_LOGGER = "relay.access"
#: The access log's arguments (relay/app.py ``Relay._finish``), in order, as the JSON line names them.
ACCESS_FIELDS = ("request_id", "client", "key", "method", "path", "status", "duration_ms", "tokens", "end")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == ACCESS_LOGGER and isinstance(record.args, tuple) and len(record.args) == len(ACCESS_FIELDS):
            line.update(_access_fields(record.args))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def _access_fields(args: tuple[Any, ...]) -> dict[str, Any]:
    fields = dict(zip(ACCESS_FIELDS, args, strict=True))
    tokens = str(fields.pop("tokens")).removeprefix("tokens=")
    if "/" in tokens:
        given, taken = tokens.split("/", 1)
        fields["input_tokens"], fields["output_tokens"] = int(given), int(taken)
    end = str(fields["end"]).removeprefix("end=")
    fields["end"] = None if end == "-" else end
    fields["duration_ms"] = round(float(fields["duration_ms"]), 1)
    return fields


def configure(log_format: str = "text", level: str = "info") -> None:
    """Send the log to stderr in ``log_format`` (``text`` or ``json``) from ``level`` up, replacing any earlier
    set-up of the root logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)

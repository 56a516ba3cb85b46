"""Server-Sent Events: an incremental parser that keeps each event's raw bytes, and a framer.

The parser takes chunks as they come off the wire and returns complete events only, so a relay can
forward an event untouched (``raw``) or rewrite it, but never forwards half of one. Line endings may
be CRLF, LF or CR, mixed; a CR at the end of a chunk waits for the next chunk to see if LF follows.
"""

from __future__ import annotations

import re

import attrs

_EOL = rb"(?:\r\n|\n|\r(?=[^\n]))"
_BLANK_LINE = re.compile(_EOL + _EOL)
_LINE = re.compile(rb"\r\n|\n|\r")


@attrs.frozen
class Event:
    #: The event exactly as received, terminator included.
    raw: bytes
    #: The ``data:`` lines joined with LF (``None`` when the event had none).
    data: bytes | None
    #: The ``event:`` field, when present.
    name: bytes | None = None


class Parser:
    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[Event] = []
        start = 0
        while True:
            end = _BLANK_LINE.search(buffer, start)
            if end is None:
                break
            events.append(_parse(buffer[start : end.start()], buffer[start : end.end()]))
            start = end.end()
        self._buffer = buffer[start:]
        return events

    def close(self) -> bytes:
        """The bytes left over at end of stream: an unterminated event, which SSE discards."""
        rest, self._buffer = self._buffer, b""
        return rest

    @property
    def pending(self) -> int:
        return len(self._buffer)


def _parse(block: bytes, raw: bytes) -> Event:
    data: list[bytes] = []
    name: bytes | None = None
    for line in _LINE.split(block):
        if not line or line[0] == 0x3A:  # ':' starts a comment
            continue
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value
    return Event(raw=raw, data=b"\n".join(data) if data else None, name=name)


def frame(data: bytes, event: bytes | None = None) -> bytes:
    """One event; ``data`` must not contain newlines (compact JSON never does)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event + b"\ndata: " + data + b"\n\n"

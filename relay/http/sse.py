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
        #: Bytes of the event still incomplete, in the pieces they came in (joined once it completes).
        self._pending: list[bytes] = []
        self._pending_size = 0

    def feed(self, chunk: bytes) -> list[Event]:
        if self._pending:
            # A blank line is at most four bytes: only the new bytes and the three before them can
            # hold one, so a large event costs linear time however many chunks it comes in.
            tail = self._pending[-1][-3:] if len(self._pending[-1]) >= 3 else b"".join(self._pending)[-3:]
            if _BLANK_LINE.search(tail + chunk) is None:
                self._pending.append(chunk)
                self._pending_size += len(chunk)
                return []
            buffer = b"".join(self._pending) + chunk
            self._pending.clear()
        else:
            buffer = chunk
        events: list[Event] = []
        start = 0
        while True:
            end = _BLANK_LINE.search(buffer, start)
            if end is None:
                break
            events.append(_parse(buffer[start : end.start()], buffer[start : end.end()]))
            start = end.end()
        rest = buffer[start:]
        if rest:
            self._pending.append(rest)
        self._pending_size = len(rest)
        return events

    def close(self) -> bytes:
        """The bytes left over at end of stream: an unterminated event, which SSE discards."""
        rest = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        return rest

    @property
    def pending(self) -> int:
        return self._pending_size


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

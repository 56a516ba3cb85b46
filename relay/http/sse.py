"""Server-Sent Events: an incremental parser that keeps each event's raw bytes, and a framer.

The parser takes chunks as they come off the wire and returns complete events only, so a relay can
forward an event untouched (``raw``) or rewrite it, but never forwards half of one. Line endings may
be CRLF, LF or CR, mixed; a CR at the end of a chunk waits for the next chunk to see if LF follows.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_EOL = rb"(?:\r\n|\n|\r(?=[^\n]))"
_BLANK_LINE = re.compile(_EOL + _EOL)
_LINE = re.compile(rb"\r\n|\n|\r")


class Event(NamedTuple):
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
        if not self._pending:
            one = one_frame(chunk)
            if one is not None:  # the usual chunk: exactly one event
                return [Event(chunk, one[1], one[0])]
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
        if b"\r" not in buffer:
            start = _split_lf(buffer, events)
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


def one_frame(chunk: bytes) -> tuple[bytes | None, bytes] | None:
    """The event name and data of a chunk that is exactly one event, else None (then use a ``Parser``).

    The usual upstream chunk is one whole event: ``data: …`` alone (OpenAI Chat, Gemini) or after an
    ``event: …`` line (Anthropic, OpenAI Responses), ended by LF or CRLF line ends (Gemini). For such a
    chunk this gives what the general path of ``Parser.feed`` gives, without its machinery: ``feed`` takes
    this shortcut itself when nothing is pending. Any other chunk (part of an event, several, other fields, mixed or
    CR line ends, ``data:`` without its space) gives None.
    """
    if chunk.endswith(b"\n\n"):
        if b"\r" in chunk:
            return None
        eol, step, end = b"\n", 1, len(chunk) - 2
    elif chunk.endswith(b"\r\n\r\n"):
        pairs = chunk.count(b"\r\n")
        if chunk.count(b"\r") != pairs or chunk.count(b"\n") != pairs:
            return None
        eol, step, end = b"\r\n", 2, len(chunk) - 4
    else:
        return None
    if chunk.startswith(b"data: "):
        return (None, chunk[6:end]) if chunk.find(eol, 6) == end else None
    if not chunk.startswith(b"event: "):
        return None
    first = chunk.find(eol, 7)
    if not chunk.startswith(b"data: ", first + step):
        return None
    data = first + step + 6
    return (chunk[7:first], chunk[data:end]) if chunk.find(eol, data) == end else None


def _split_lf(buffer: bytes, events: list[Event]) -> int:
    """The events of a buffer whose lines all end in LF (the usual case), without a regex; where the rest starts."""
    start = 0
    find = buffer.find
    while True:
        end = find(b"\n\n", start)
        if end < 0:
            return start
        block = buffer[start:end]
        raw = buffer[start : end + 2]
        if block[:6] == b"data: " and b"\n" not in block:
            events.append(Event(raw, block[6:], None))
        elif block[:7] == b"event: " and block.count(b"\n") == 1:
            name, _, line = block.partition(b"\n")
            if line[:6] == b"data: ":
                events.append(Event(raw, line[6:], name[7:]))
            else:
                events.append(_parse(block, raw))
        else:
            events.append(_parse(block, raw))
        start = end + 2


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

"""HTTP/1.1 for the upstream side, sans-IO: the request head written, the response parsed.

The server side of Relay uses h11; the upstream side needs only a POST out and one response back,
and h11's general machinery cost more than half of Relay's upstream CPU per request. ``Response
Parser`` takes bytes as they come off the socket and returns, one at a time, the response head,
pieces of its body as soon as they arrive, and the end. It understands what an upstream may send:
1xx interim responses, ``Content-Length``, ``Transfer-Encoding: chunked`` (extensions and trailers
included), bodiless statuses (204, 304) and a body that ends when the connection closes. Anything
else is a ``ProtocolError`` naming the problem.
"""

from __future__ import annotations

import re

import attrs

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) (\d{3})(?: (.*))?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class ProtocolError(Exception):
    """The upstream broke HTTP/1.1 (or sent a head larger than the limit)."""


@attrs.frozen
class Head:
    status: int
    reason: bytes
    #: Header names lower-cased, values stripped, in the order received.
    headers: list[tuple[bytes, bytes]]


class _End:
    def __repr__(self) -> str:
        return "END"


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


END = _End()
NEED_DATA = _NeedData()


def request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The request line and headers; a CR, LF or other control byte in a header is refused."""
    lines = [method + b" " + target + b" HTTP/1.1\r\n"]
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise ValueError(f"header {name!r} cannot be sent: illegal characters")
        lines.append(name + b": " + value + b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


class ResponseParser:
    def __init__(self, max_head_bytes: int = 64 * 1024) -> None:
        self._buffer = bytearray()
        self._eof = False
        self._max_head = max_head_bytes
        self._state = "head"  # head, length, chunk_size, chunk_data, chunk_end, trailers, close, done
        self._remaining = 0
        #: False when the connection cannot carry another request after this response.
        self.reusable = True

    def feed(self, data: bytes) -> None:
        """Bytes from the socket; ``b""`` means the upstream closed the connection."""
        if data:
            self._buffer += data
        else:
            self._eof = True

    @property
    def done(self) -> bool:
        return self._state == "done"

    def next(self) -> Head | bytes | _End | _NeedData:
        """The next thing the bytes fed so far hold: a head (1xx ones too), body bytes, END or NEED_DATA."""
        while True:
            state = self._state
            if state == "head":
                return self._head()
            if state == "length":
                return self._length()
            if state == "close":
                if self._buffer:
                    return self._take(len(self._buffer))
                if self._eof:
                    self._state = "done"
                    return END
                return NEED_DATA
            if state == "done":
                return END
            progressed = self._chunked()
            if progressed is not None:
                return progressed

    # ---- head -----------------------------------------------------------------------------------

    def _head(self) -> Head | _NeedData:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > self._max_head:
                raise ProtocolError(f"response head larger than {self._max_head} bytes")
            if self._eof:
                raise ProtocolError("connection closed before a complete response head")
            return NEED_DATA
        if end > self._max_head:
            raise ProtocolError(f"response head larger than {self._max_head} bytes")
        lines = bytes(buffer[:end]).split(b"\r\n")
        del buffer[: end + 4]
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise ProtocolError(f"bad status line {lines[0][:100]!r}")
        minor, status, reason = int(match.group(1)), int(match.group(2)), match.group(3) or b""
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise ProtocolError(f"bad header line {line[:100]!r}")
            value = value.strip(b" \t")
            if _BAD_VALUE.search(value):
                raise ProtocolError(f"bad value in header {name!r}")
            headers.append((name.lower(), value))
        head = Head(status, reason, headers)
        if 100 <= status < 200:
            if status == 101:
                raise ProtocolError("the upstream switched protocols")
            return head  # interim: the real head follows
        self._frame(head, minor)
        return head

    def _frame(self, head: Head, minor: int) -> None:
        """How the body is delimited, and whether the connection stays usable."""
        lengths = {v for n, v in head.headers if n == b"content-length"}
        codings = b",".join(v for n, v in head.headers if n == b"transfer-encoding").lower()
        tokens = {t.strip() for n, v in head.headers if n == b"connection" for t in v.lower().split(b",")}
        if (minor == 0 and b"keep-alive" not in tokens) or b"close" in tokens:
            self.reusable = False
        if head.status in (204, 304):
            self._state = "done"
        elif codings:
            if [c.strip() for c in codings.split(b",")] != [b"chunked"]:
                raise ProtocolError(f"unsupported transfer-encoding {codings!r}")
            self._state = "chunk_size"
        elif lengths:
            if len(lengths) > 1 or not all(v.isdigit() for v in lengths):
                raise ProtocolError(f"bad content-length {sorted(lengths)!r}")
            self._remaining = int(lengths.pop())
            self._state = "length" if self._remaining else "done"
        else:
            self._state = "close"
            self.reusable = False

    # ---- bodies ---------------------------------------------------------------------------------

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _length(self) -> bytes | _End | _NeedData:
        if self._buffer:
            data = self._take(min(self._remaining, len(self._buffer)))
            self._remaining -= len(data)
            if not self._remaining:
                self._state = "done"
            return data
        if self._eof:
            raise ProtocolError(f"connection closed with {self._remaining} bytes of the body missing")
        return NEED_DATA

    def _chunked(self) -> bytes | _End | _NeedData | None:
        """One step of chunked decoding; None when it moved on without producing anything."""
        buffer = self._buffer
        state = self._state
        if state == "chunk_data":
            if buffer:
                data = self._take(min(self._remaining, len(buffer)))
                self._remaining -= len(data)
                if not self._remaining:
                    self._state = "chunk_end"
                return data
        else:
            end = buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 2]
                if state == "chunk_end":
                    if line:
                        raise ProtocolError("chunk data longer than its size")
                    self._state = "chunk_size"
                elif state == "chunk_size":
                    size = line.split(b";", 1)[0].strip(b" \t")
                    if not _HEX.fullmatch(size):
                        raise ProtocolError(f"bad chunk size {line[:100]!r}")
                    self._remaining = int(size, 16)
                    self._state = "chunk_data" if self._remaining else "trailers"
                elif not line:  # trailers: a blank line ends them
                    self._state = "done"
                    return END
                return None
            if len(buffer) > self._max_head:
                raise ProtocolError("chunk size line or trailers too long")
        if self._eof:
            raise ProtocolError("connection closed in the middle of a chunked body")
        return NEED_DATA

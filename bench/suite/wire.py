"""An HTTP/1.1 response read incrementally, with the arrival time of every SSE event that carries a token.

Unlike bench.http1.ResponseReader (Chat streams only, content found by one byte pattern), this reader de-chunks
the body, splits it into SSE events (``\\n\\n`` or ``\\r\\n\\r\\n``) and asks the dialect's pattern whether each
event carries a token, so that time to first token and the gaps between tokens are measured alike in all four
dialects. The body is not decoded beyond that.
"""

from __future__ import annotations

import re

_HEAD_END = b"\r\n\r\n"
_EVENT_END = re.compile(rb"\r?\n\r?\n")


class ProtocolError(Exception):
    """The response could not be read (a broken head, a broken chunk)."""


class Response:
    """Feed bytes with their arrival time; ``feed`` returns True once the whole response is in."""

    def __init__(self, token: re.Pattern[bytes], stream: bool) -> None:
        self.token = token
        self.stream = stream
        self.buf = bytearray()
        self.status = 0
        self.close = False
        self.length = -1
        self.chunked = False
        self.head_done = False
        self.done = False
        self.body_bytes = 0
        #: Chunked decoding: bytes left in the current chunk, -1 when a size line comes next.
        self._chunk_left = -1
        self._events = bytearray()
        #: perf_counter_ns of each event carrying a token, and how many events arrived.
        self.token_ns: list[int] = []
        self.events = 0

    def feed(self, data: bytes, now_ns: int) -> bool:
        self.buf += data
        if not self.head_done:
            end = self.buf.find(_HEAD_END)
            if end < 0:
                if len(self.buf) > 65536:
                    raise ProtocolError("response head over 64 KiB")
                return False
            self._head(bytes(self.buf[:end]).lower())
            del self.buf[: end + 4]
            self.head_done = True
        if self.chunked:
            self._dechunk(now_ns)
        else:
            body = bytes(self.buf)
            self.buf.clear()
            self.body_bytes += len(body)
            if self.stream:
                self._scan(body, now_ns)
            if self.length >= 0 and self.body_bytes >= self.length:
                self.done = True
        return self.done

    def eof(self, now_ns: int) -> bool:
        """The server closed the connection: the response is whole if its body was delimited by the close."""
        if self.head_done and self.length < 0 and not self.chunked:
            self._scan(b"\n\n", now_ns)
            self.done = True
        return self.done

    @property
    def ok(self) -> bool:
        """A 200 whose stream (if asked for one) carried at least one token."""
        return self.done and self.status == 200 and (not self.stream or bool(self.token_ns))

    def _head(self, head: bytes) -> None:
        if not head.startswith(b"http/1.1 ") or len(head) < 12:
            raise ProtocolError(f"not an HTTP/1.1 response head: {head[:40]!r}")
        self.status = int(head[9:12])
        self.close = b"\r\nconnection: close" in head
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            self.length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        elif b"\r\ntransfer-encoding: chunked" in head:
            self.chunked = True
        else:
            self.close = True  # the body ends when the connection does

    def _dechunk(self, now_ns: int) -> None:
        buf = self.buf
        while buf:
            if self._chunk_left < 0:
                line_end = buf.find(b"\r\n")
                if line_end < 0:
                    return
                try:
                    size = int(bytes(buf[:line_end]).split(b";", 1)[0], 16)
                except ValueError as exc:
                    raise ProtocolError(f"bad chunk size line {bytes(buf[:line_end])[:20]!r}") from exc
                if size == 0:
                    if buf.find(b"\r\n\r\n", line_end) < 0:
                        return  # the trailer's end has not arrived
                    del buf[:]
                    self.done = True
                    return
                del buf[: line_end + 2]
                self._chunk_left = size
            take = min(self._chunk_left, len(buf))
            if take:
                piece = bytes(buf[:take])
                del buf[:take]
                self._chunk_left -= take
                self.body_bytes += take
                if self.stream:
                    self._scan(piece, now_ns)
            if self._chunk_left == 0:
                if len(buf) < 2:
                    return
                del buf[:2]
                self._chunk_left = -1
            elif not buf:
                return

    def _scan(self, piece: bytes, now_ns: int) -> None:
        events = self._events
        events += piece
        start = 0
        for match in _EVENT_END.finditer(events):
            event = events[start : match.start()]
            start = match.end()
            if not event:
                continue
            self.events += 1
            if self.token.search(event):
                self.token_ns.append(now_ns)
        if start:
            del events[:start]

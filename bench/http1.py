"""The load generator's HTTP/1.1 client side: precomputed request bytes and a minimal response reader.

The reader does only what a benchmark needs: find the end of the head, take the status, the
``content-length`` or ``transfer-encoding: chunked`` and ``connection: close``, then wait for the
body's last byte. A chunked body (an SSE stream) ends at the terminator chunk ``0\\r\\n\\r\\n``; the
body is not decoded, only scanned for ``data: [DONE]`` and, when asked, for the first event that
carries content.
"""

from __future__ import annotations

import orjson

_HEAD_END = b"\r\n\r\n"
_CHUNKED_END = b"\r\n0\r\n\r\n"
_DONE = b"data: [DONE]"
#: The first SSE event that carries content: ``"content":"`` followed by anything but the closing quote.
_CONTENT = b'"content":"'


def chat_request(host: str, port: int, key: str, *, stream: bool, message: str, model: str = "mock-1") -> bytes:
    """The whole bytes of one POST /v1/chat/completions, head and body."""
    payload: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": message}]}
    if stream:
        payload["stream"] = True
    body = orjson.dumps(payload)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\n"
        f"Accept: */*\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class ProtocolError(Exception):
    """The response could not be read (no length, a broken head)."""


class ResponseReader:
    """Feed bytes; ``feed`` returns True once one whole response is in."""

    __slots__ = ("body_end", "buf", "chunked", "close", "content_at", "head_end", "length", "scan", "status")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.reset()

    def reset(self) -> None:
        self.buf.clear()
        self.head_end = -1
        self.body_end = -1
        self.length = -1
        self.chunked = False
        self.close = False
        self.status = 0
        self.scan = 0
        #: Index in ``buf`` of the first content-carrying event (streams, when ``find_content``), else -1.
        self.content_at = -1

    def feed(self, data: bytes) -> bool:
        buf = self.buf
        buf += data
        if self.head_end < 0:
            end = buf.find(_HEAD_END)
            if end < 0:
                return False
            self._head(bytes(buf[:end]).lower())
            self.head_end = end + 4
            self.scan = end + 2  # an empty chunked body is "0\r\n\r\n" right after the head
        if self.length >= 0:
            if len(buf) - self.head_end >= self.length:
                self.body_end = self.head_end + self.length
                return True
            return False
        end = buf.find(_CHUNKED_END, self.scan)
        if end < 0:
            self.scan = max(self.scan, len(buf) - len(_CHUNKED_END))
            return False
        self.body_end = end + len(_CHUNKED_END)
        return True

    def find_content(self) -> bool:
        """Whether an event with non-empty content has arrived (call once the head is in)."""
        if self.content_at >= 0:
            return True
        buf = self.buf
        at = buf.find(_CONTENT, self.head_end)
        while at >= 0:
            value = at + len(_CONTENT)
            if value >= len(buf):
                return False  # the value's first byte has not arrived yet
            if buf[value] != 0x22:  # '"': empty content (the role chunk)
                self.content_at = at
                return True
            at = buf.find(_CONTENT, value)
        return False

    @property
    def ok(self) -> bool:
        """A 200 whose stream (if it is one) ended with ``data: [DONE]``."""
        if self.status != 200:
            return False
        return not self.chunked or self.buf.find(_DONE, self.head_end) >= 0

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
            raise ProtocolError("response has neither content-length nor chunked encoding")

"""Same dialect in and out: the upstream's stream forwarded event by event, its bytes unchanged.

Only the model name is rewritten (when the public name is an alias) and the usage is read on the
way. Each dialect's terminal event is recognised by a cheap look at the event (its name, or a
substring of its data), never by parsing every chunk: a stream that ends before it is reported in
the client's dialect as truncated; an upstream's own error event is the stream's last word.
"""

from __future__ import annotations

from types import ModuleType

import orjson

from relay.dialects import ir
from relay.dialects.gemini_stream import ArraySplitter
from relay.errors import RelayError
from relay.http import sse
from relay.upstream.exchange import MAX_UPSTREAM_BODY, Exchange

#: What a truncated stream of each dialect lacked, for the error message.
_TERMINAL: dict[ir.Dialect, str] = {
    "openai_chat": "its final 'data: [DONE]'",
    "openai_responses": "its terminal 'response.completed' event",
    "anthropic": "its final 'message_stop' event",
    "gemini": "a chunk with a finishReason",
}
_RESPONSES_END = frozenset({b"response.completed", b"response.incomplete", b"response.failed"})


class Passthrough:
    """The step and end of a passthrough stream (``relay.endpoints.relayed.Relayed.pump``)."""

    def __init__(
        self,
        dialect: ir.Dialect,
        codec: ModuleType,
        exchange: Exchange,
        public: str,
        upstream: str,
        *,
        hide_usage: bool = False,
    ) -> None:
        self.dialect = dialect
        #: Chat Completions: Relay asked for the usage chunk the client did not ask for; it is not forwarded.
        self.hide_usage = hide_usage
        self.codec = codec
        self.exchange = exchange
        self.public = public
        self.upstream = upstream
        self.aliased = public != upstream
        self.parser = sse.Parser()
        self.usage_reader = codec.UsageReader()
        #: The stream may end now: its terminal event (or an upstream error event) went by.
        self.complete = False

    @property
    def usage(self) -> ir.Usage | None:
        return self.usage_reader.usage

    def step(self, chunk: bytes) -> tuple[bytes, bool]:
        events = self.parser.feed(chunk)
        if self.parser.pending > MAX_UPSTREAM_BODY:
            raise self.exchange.too_large("an upstream stream event")
        pieces: list[bytes] = []
        for event in events:
            pieces.append(self._event(event))
            if self._ends(event):
                return b"".join(pieces), True  # nothing after the terminal event is forwarded
        return b"".join(pieces), False

    def end(self) -> bytes:
        if self.complete:
            return b""
        raise RelayError(
            502,
            "upstream",
            f"channel '{self.exchange.channel}': the upstream stream ended before {_TERMINAL[self.dialect]}",
            code="upstream_truncated",
        )

    def _ends(self, event: sse.Event) -> bool:
        """Whether ``event`` ends the stream; sets ``complete`` when the stream may end after it."""
        data = event.data
        if self.dialect == "openai_chat":
            if data == b"[DONE]":
                self.complete = True
                return True
            if self.codec.is_stream_error(data):
                self.complete = True
            return False
        if self.dialect == "anthropic":
            if event.name in (b"message_stop", b"error"):
                self.complete = True
            return event.name == b"message_stop"
        if self.dialect == "openai_responses":
            if event.name in _RESPONSES_END:
                self.complete = True
                return True
            if event.name == b"error":
                self.complete = True
            return False
        # Gemini has no terminal event: its last chunk carries the finish reason (or it is an error).
        if data and (b'"finishReason"' in data or data.startswith(b'{"error"')):
            self.complete = True
        return False

    def _event(self, event: sse.Event) -> bytes:
        data = event.data
        if data and data[:1] == b"{":
            self.usage_reader.feed(data)
            if self.hide_usage and _usage_only(data):
                return b""
            if self.aliased:
                renamed = self.codec.rename_model(data, self.public, self.upstream)
                if renamed is not data:
                    return sse.frame(renamed, event.name)
        return event.raw


def _usage_only(data: bytes) -> bool:
    """Whether a Chat Completions chunk is the usage chunk (no choices, a usage), parsed only when it may be."""
    if b'"choices":[]' not in data and b'"choices": []' not in data:
        return False
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(chunk, dict) and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)


class ArrayPassthrough:
    """Gemini's streamed JSON array (``streamGenerateContent`` without ``alt=sse``), element by element.

    An element splitter reads each element, its usage and the array's end. Elements are forwarded as
    soon as they are complete, framed as Gemini frames them (``[``, ``,\r\n`` between, ``]``), so that
    a stream cut in the middle of an element can still end with a well-formed error element.
    """

    def __init__(
        self, codec: ModuleType, splitter: ArraySplitter, exchange: Exchange, public: str, upstream: str
    ) -> None:
        self.codec = codec
        self.splitter = splitter
        self.exchange = exchange
        self.public = public
        self.upstream = upstream
        self.aliased = public != upstream
        self.usage_reader = codec.UsageReader()
        #: Elements forwarded so far.
        self.count = 0

    @property
    def usage(self) -> ir.Usage | None:
        return self.usage_reader.usage

    def step(self, chunk: bytes) -> tuple[bytes, bool]:
        pieces = []
        for element in self.splitter.feed(chunk):
            self.usage_reader.feed(element)
            pieces.append(b"[" if self.count == 0 else b",\r\n")
            pieces.append(self.codec.rename_model(element, self.public, self.upstream) if self.aliased else element)
            self.count += 1
        done = self.splitter.done
        if done:
            pieces.append(b"[]" if self.count == 0 else b"]")
        return b"".join(pieces), done

    def end(self) -> bytes:
        if self.splitter.done:
            return b""
        raise RelayError(
            502,
            "upstream",
            f"channel '{self.exchange.channel}': the upstream stream ended before its JSON array was closed",
            code="upstream_truncated",
        )

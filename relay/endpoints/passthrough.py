"""Same dialect in and out: the upstream's stream forwarded event by event, its bytes unchanged.

Only the model name is rewritten (when the public name is an alias) and the usage is read on the
way. Each dialect's terminal event is recognised by a cheap look at the event (its name, or a
substring of its data), never by parsing every chunk: a stream that ends before it is reported in
the client's dialect as truncated; an upstream's own error event is the stream's last word.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import orjson

from relay.dialects import ir
from relay.dialects.gemini.stream import ArraySplitter
from relay.errors import RelayError, kind_for_status
from relay.http import sse
from relay.redact import redact
from relay.upstream.exchange import MAX_UPSTREAM_BODY, Exchange

from . import gemini_images, produced

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
        self._output = produced.BY_DIALECT[dialect]
        #: Bytes of output the upstream produced so far (text, reasoning, tool calls).
        self.produced = 0
        #: Gemini: the images the upstream sent so far (``relay.endpoints.gemini_images``).
        self.images = 0
        #: The stream may end now: its terminal event (or an upstream error event) went by.
        self.complete = False
        #: The upstream's error event (or ``response.failed``) the stream ended with.
        self.failed: RelayError | None = None

    @property
    def usage(self) -> ir.Usage | None:
        return self.usage_reader.usage

    def step(self, chunk: bytes) -> tuple[bytes, bool]:
        events = self.parser.feed(chunk)
        if self.parser.pending > MAX_UPSTREAM_BODY:
            raise self.exchange.too_large("an upstream stream event")
        pieces: list[bytes] = []
        for event in events:
            payload = self._payload(event)
            if payload is not None and self._failing(event, payload):
                # The upstream's own error event: its status and code kept, its text for the operator only.
                pieces.append(self._error_frame(payload))
                self.complete = True
                return b"".join(pieces), True
            pieces.append(self._event(event, payload))
            if self._ends(event):
                return b"".join(pieces), True  # nothing after the terminal event is forwarded
        return b"".join(pieces), False

    def end(self) -> bytes:
        if self.complete:
            return b""
        raise truncated(self.exchange, f"the upstream stream ended before {_TERMINAL[self.dialect]}")

    def _ends(self, event: sse.Event) -> bool:
        """Whether ``event`` ends the stream; sets ``complete`` when the stream may end after it."""
        data = event.data
        if self.dialect == "openai_chat":
            if data == b"[DONE]":
                self.complete = True
                return True
            return False
        if self.dialect == "anthropic":
            if event.name == b"message_stop":
                self.complete = True
            return self.complete
        if self.dialect == "openai_responses":
            if event.name in _RESPONSES_END:
                self.complete = True
                if event.name == b"response.failed":
                    self.failed = RelayError(
                        502,
                        "upstream",
                        "the upstream failed while answering (response.failed)",
                        code="upstream_failed",
                        detail=f"channel '{self.exchange.channel}': response.failed",
                    )
                return True
            return False
        # Gemini has no terminal event: its last chunk carries the finish reason (and the full usage).
        if data and b'"finishReason"' in data:
            self.complete = True
        return self.complete

    def _payload(self, event: sse.Event) -> dict[str, Any] | None:
        """The event's data parsed (None for Chat's ``[DONE]`` and events without data); malformed: an error."""
        data = event.data
        if not data or (data == b"[DONE]" and self.dialect == "openai_chat"):
            return None
        return parse_object(data, self.exchange)

    def _failing(self, event: sse.Event, payload: dict[str, Any]) -> bool:
        """Whether ``event`` is the upstream's error event (its stream's last word)."""
        if self.dialect == "anthropic" or self.dialect == "openai_responses":
            return event.name == b"error" or payload.get("type") == "error"
        if self.dialect == "openai_chat":
            return "error" in payload and "choices" not in payload
        return _gemini_error(payload)

    def _error_frame(self, payload: dict[str, Any]) -> bytes:
        """The client's error frame for the upstream's error event, in Relay's words; ``failed`` set."""
        self.failed = upstream_failure(payload, self.exchange)
        if self.dialect == "openai_responses":
            return self.codec.encode_stream_error(self.failed, sequence_number=payload.get("sequence_number", 0))
        return self.codec.encode_stream_error(self.failed)

    def _event(self, event: sse.Event, payload: dict[str, Any] | None) -> bytes:
        if payload is None:
            return event.raw
        data = event.data
        assert data is not None
        self.produced += self._output(payload)
        if self.dialect == "gemini":
            self.images += gemini_images.count(payload)
        self.usage_reader.feed(data)
        if self.hide_usage and payload.get("choices") == [] and isinstance(payload.get("usage"), dict):
            return b""  # the usage chunk Relay asked for, which the client did not
        if self.aliased:
            renamed = self.codec.rename_model(data, self.public, self.upstream)
            if renamed is not data:
                return sse.frame(renamed, event.name)
        return event.raw


def _gemini_error(payload: dict[str, Any]) -> bool:
    """Whether a Gemini chunk is an error (``{"error": …}``) rather than an answer."""
    return "error" in payload and "candidates" not in payload


def upstream_failure(payload: dict[str, Any], exchange: Exchange) -> RelayError:
    """The upstream's error event as Relay's error: its status and code kept, its text for the operator only."""
    error = payload.get("error") if isinstance(payload.get("error"), dict) else payload
    code = next((error[k] for k in ("code", "type", "status") if isinstance(error.get(k), str)), None)
    code = code if code not in (None, "error") else "upstream_error"
    status = error.get("code") if isinstance(error.get("code"), int) and 400 <= error["code"] <= 599 else 502
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    return RelayError(
        status,
        kind_for_status(status),
        f"the upstream failed while answering ({code})",
        code=code,
        detail=f"channel '{exchange.channel}': upstream error event: {redact(message)}",
    )


def parse_object(data: bytes, exchange: Exchange) -> dict[str, Any]:
    """An upstream event's (or body's) JSON object; ``upstream_malformed`` when it is not one."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise malformed(exchange, "not JSON", data) from None
    if not isinstance(payload, dict):
        raise malformed(exchange, "not a JSON object", data)
    return payload


def malformed(exchange: Exchange, what: str, data: bytes) -> RelayError:
    return RelayError(
        502,
        "upstream",
        "the upstream sent a malformed answer",
        code="upstream_malformed",
        detail=f"channel '{exchange.channel}': {what}: {redact(data[:200].decode('utf-8', 'replace'))}",
    )


def truncated(exchange: Exchange, what: str) -> RelayError:
    return RelayError(
        502,
        "upstream",
        "the upstream's answer ended early",
        code="upstream_truncated",
        detail=f"channel '{exchange.channel}': {what}",
    )


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
        #: Bytes of output the upstream produced so far.
        self.produced = 0
        #: The images the upstream sent so far (``relay.endpoints.gemini_images``).
        self.images = 0
        #: The upstream's error element the stream ended with.
        self.failed: RelayError | None = None

    @property
    def usage(self) -> ir.Usage | None:
        return self.usage_reader.usage

    def step(self, chunk: bytes) -> tuple[bytes, bool]:
        pieces = []
        for element in self.splitter.feed(chunk):
            payload = parse_object(element, self.exchange)
            if _gemini_error(payload):
                self.failed = upstream_failure(payload, self.exchange)
                pieces.append(self.codec.encode_stream_error(self.failed, sse=False, after_element=self.count > 0))
                return b"".join(pieces), True
            self.produced += produced.gemini(payload)
            self.images += gemini_images.count(payload)
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
        raise truncated(self.exchange, "the upstream stream ended before its JSON array was closed")

"""An OpenAI event stream whose events name their ``type`` (speech and transcription events, partial images),
passed through event by event (never half an event) while a subclass reads each event's payload.

An upstream ``error`` event (by its SSE name, its ``type``, or an ``error`` field with no type) is the stream's
last word, in Relay's words (``openai_chat.encode_stream_error``); ``seen`` says when the stream is complete.
"""

from __future__ import annotations

from typing import Any

from relay.dialects.openai.chat import codec as openai_chat
from relay.errors import RelayError
from relay.http import sse
from relay.upstream.exchange import MAX_UPSTREAM_BODY, Exchange

from .passthrough import parse_object, upstream_failure


class TypedEvents:
    """The steps of a typed event stream (``relay.endpoints.relayed.Relayed.pump``); subclasses give ``seen``."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.parser = sse.Parser()
        #: The upstream's error event the stream ended with.
        self.failed: RelayError | None = None

    def seen(self, kind: str | None, payload: dict[str, Any]) -> bool:
        """Read one event (its ``type`` and payload) after it was forwarded; True once the stream is complete."""
        raise NotImplementedError

    def step(self, chunk: bytes) -> tuple[bytes, bool]:
        events = self.parser.feed(chunk)
        if self.parser.pending > MAX_UPSTREAM_BODY:
            raise self.exchange.too_large("an upstream stream event")
        pieces: list[bytes] = []
        for event in events:
            if not event.data:
                pieces.append(event.raw)
                continue
            payload = parse_object(event.data, self.exchange)
            kind = payload.get("type")
            if event.name == b"error" or kind == "error" or ("error" in payload and not isinstance(kind, str)):
                self.failed = upstream_failure(payload, self.exchange)
                pieces.append(openai_chat.encode_stream_error(self.failed))
                return b"".join(pieces), True
            pieces.append(event.raw)
            if self.seen(kind if isinstance(kind, str) else None, payload):
                return b"".join(pieces), True
        return b"".join(pieces), False

"""A streamed image generation or edit (``stream: true``), passed through event by event.

OpenAI streams ``image_generation.partial_image`` / ``image_edit.partial_image`` events and one
``….completed`` event per image, each completed event with its ``usage``. The events are forwarded as they
come, unchanged; the completed ones are counted (the images billed) and their tokens added up (the tokens
billed). The stream may end once every image asked for is complete; an upstream that ends before any image is
complete is reported as truncated, and an upstream error event ends the stream with Relay's error frame.
"""

from __future__ import annotations

from typing import Any

from relay.dialects import ir, openai_chat
from relay.errors import RelayError
from relay.http import sse
from relay.upstream.exchange import MAX_UPSTREAM_BODY, Exchange

from .passthrough import parse_object, truncated, upstream_failure


class ImageStream:
    """The steps of a streamed Images answer (``relay.endpoints.relayed.Relayed.pump``)."""

    def __init__(self, exchange: Exchange, expected: int) -> None:
        self.exchange = exchange
        #: Images asked for: the stream may end once this many are complete.
        self.expected = expected
        self.parser = sse.Parser()
        #: Images complete so far, and the tokens their events reported.
        self.completed = 0
        self.input_tokens = 0
        self.output_tokens = 0
        #: The ``size`` and ``quality`` the completed events reported (the billed size).
        self.size: str | None = None
        self.quality: str | None = None
        #: The upstream's error event the stream ended with.
        self.failed: RelayError | None = None

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
            if isinstance(kind, str) and kind.endswith(".completed"):
                self._count(payload)
            pieces.append(event.raw)
            if self.completed >= self.expected:
                return b"".join(pieces), True
        return b"".join(pieces), False

    def end(self) -> bytes:
        if self.completed:
            return b""
        raise truncated(self.exchange, "the upstream image stream ended before any image was complete")

    def _count(self, payload: dict[str, Any]) -> None:
        self.completed += 1
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self.input_tokens += _tokens(usage.get("input_tokens"))
            self.output_tokens += _tokens(usage.get("output_tokens"))
        if isinstance(payload.get("size"), str):
            self.size = payload["size"]
        if isinstance(payload.get("quality"), str):
            self.quality = payload["quality"]

    def usage(self, billed_size: str) -> ir.Usage | None:
        """What the stream is billed: its complete images and their tokens (None before any)."""
        if not (self.completed or self.input_tokens or self.output_tokens):
            return None
        return ir.Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            images=self.completed,
            image_size=billed_size,
        )


def _tokens(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

"""A streamed image generation or edit (``stream: true``), passed through event by event.

OpenAI streams ``image_generation.partial_image`` / ``image_edit.partial_image`` events and one
``….completed`` event per image, each completed event with its ``usage``. The events are forwarded as they
come, unchanged; the completed ones are counted (the images billed) and their tokens added up (the tokens
billed). The stream may end once every image asked for is complete; an upstream that ends before any image is
complete is reported as truncated, and an upstream error event ends the stream with Relay's error frame.
"""

from __future__ import annotations

from typing import Any

from relay.dialects import ir
from relay.upstream.exchange import Exchange

from .passthrough import truncated
from .typed_events import TypedEvents


class ImageStream(TypedEvents):
    """The steps of a streamed Images answer (``relay.endpoints.relayed.Relayed.pump``)."""

    def __init__(self, exchange: Exchange, expected: int) -> None:
        super().__init__(exchange)
        #: Images asked for: the stream may end once this many are complete.
        self.expected = expected
        #: Images complete so far, and the tokens their events reported.
        self.completed = 0
        self.input_tokens = 0
        self.output_tokens = 0
        #: The ``size`` and ``quality`` the completed events reported (the billed size).
        self.size: str | None = None
        self.quality: str | None = None

    def seen(self, kind: str | None, payload: dict[str, Any]) -> bool:
        if kind is not None and kind.endswith(".completed"):
            self._count(payload)
        return self.completed >= self.expected

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

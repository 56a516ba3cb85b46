"""``Call``: a client's generation request as the pipeline (relay.endpoints.generate) knows it before it picks a
channel; underneath generate and the steps it runs (relay.endpoints.context_compaction)."""

from __future__ import annotations

from typing import Any

import attrs

from relay.dialects import ir


@attrs.define
class Call:
    """What the pipeline knows of a client request before it picks a channel."""

    dialect: ir.Dialect
    body: bytes
    model: str
    stream: bool
    #: The parsed body (None for Gemini, whose model is in the URL and whose body passes unread).
    payload: dict[str, Any] | None = None
    #: Gemini streams: server-sent events (``?alt=sse``), else a JSON array streamed element by element.
    sse: bool = True
    #: Gemini: the parsed body, read for the quota hold only (its output ceiling).
    seen: dict[str, Any] | None = None

    def release(self) -> None:
        """The answer started (``Request.let_go``): no other attempt will send the body, so it goes."""
        self.body = b""
        self.payload = self.seen = None

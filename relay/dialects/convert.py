"""One dialect's answer into another's, through the IR: pure, one upstream chunk in, its frames out.

The endpoints call these between the upstream and the client; golden fixtures and the conversion
benchmark call them with bytes alone. ``now`` fills a ``created`` the upstream did not give (Anthropic
and Gemini have none), so the same bytes and ``now`` always give the same output.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import orjson

from relay.dialects import ir
from relay.dialects.common import bad_upstream
from relay.errors import RelayError, kind_for_status

#: An upstream answer that cannot be written in the client's dialect (orjson: nesting, a number out of range).
_UNWRITABLE = "the upstream's answer cannot be written in the client's API"


class Decoder(Protocol):
    def feed(self, chunk: bytes) -> list[ir.Event]: ...
    def close(self) -> list[ir.Event]: ...


class Encoder(Protocol):
    def encode(self, event: ir.Event) -> bytes: ...
    def finish(self) -> bytes: ...


class StreamConverter:
    """Upstream stream chunks in, the client's stream bytes out, event by event.

    ``done`` turns true at the terminal event (a Finish or a StreamError): the encoder's end follows it
    at once and nothing after it is converted. An upstream error that comes before the first byte
    for the client is raised as a ``RelayError`` instead, so the client gets an error status rather
    than a stream that fails at once.
    """

    def __init__(self, decoder: Decoder, encoder: Encoder, now: int) -> None:
        self._decoder = decoder
        self._encoder = encoder
        self._now = now
        self.done = False
        self.emitted = False
        #: The latest usage the upstream reported (at its start, then at its finish).
        self.usage: ir.Usage | None = None
        #: Bytes of text, reasoning and tool calls the upstream produced so far (to charge a stream cut short).
        self.produced = 0
        #: The error the stream ended with (the upstream's error event, a truncated or malformed stream),
        #: as the upstream put it (for the operator); the client is told Relay's own words.
        self.failed: ir.StreamError | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self.done:
            return b""
        try:
            events = self._decoder.feed(chunk)
        except orjson.JSONEncodeError as exc:  # a decoder writes tool arguments as JSON text
            events = [ir.StreamError(502, f"{_UNWRITABLE}: {exc}", "upstream_malformed")]
        return self._encode(events)

    def close(self) -> bytes:
        """The upstream ended: the client's end, or an error frame when its terminal event never came."""
        if self.done:
            return b""
        data = self._encode(self._decoder.close())
        if not self.done:
            self.done = True
            data += self._encoder.finish()
        return data

    @property
    def reported(self) -> ir.Usage | None:
        """The latest usage the upstream reported, including one its decoder holds until the terminal event."""
        return self.usage or getattr(self._decoder, "usage", None)

    def fail(self, error: RelayError) -> bytes:
        """Relay's own failure after the stream started (a timeout): the client's error frame."""
        if self.done:
            return b""
        self.done = True
        self.failed = ir.StreamError(error.status, error.message, error.code)
        return self._encoder.encode(self.failed) + self._encoder.finish()

    def _failing(self, event: ir.StreamError) -> ir.StreamError:
        """``event`` kept as ``failed``; what the client gets: Relay's words in place of an upstream's text."""
        self.failed = event
        if event.code in RELAYS_OWN:
            return event
        reason = event.code or str(event.status)
        return ir.StreamError(event.status, f"the upstream failed while answering ({reason})", event.code)

    def _encode(self, events: list[ir.Event]) -> bytes:
        out: list[bytes] = []
        for event in events:
            kind = type(event)
            if kind is ir.TextDelta or kind is ir.ReasoningDelta:
                self.produced += len(event.text.encode())  # type: ignore[union-attr]
            elif kind is ir.ToolCallDelta:
                self.produced += len(event.arguments.encode())  # type: ignore[union-attr]
            elif kind is ir.ToolCallStart:
                self.produced += len(event.name.encode())  # type: ignore[union-attr]
            elif kind is ir.StreamError:
                assert isinstance(event, ir.StreamError)
                upstreams, event = event, self._failing(event)
                if not self.emitted and not out:
                    self.done = True
                    raise as_error(event, detail=upstreams.message)
            if kind is ir.Start:
                assert isinstance(event, ir.Start)
                self.usage = event.usage or self.usage
                if not event.created:
                    event = attrs.evolve(event, created=self._now)
            elif kind is ir.Finish:
                assert isinstance(event, ir.Finish)
                self.usage = event.usage or self.usage
            try:
                out.append(self._encoder.encode(event))
            except orjson.JSONEncodeError as exc:
                kind, event = ir.StreamError, ir.StreamError(502, f"{_UNWRITABLE}: {exc}", "upstream_malformed")
                out.append(self._encoder.encode(event))
            if kind is ir.Finish or kind is ir.StreamError:
                self.done = True
                out.append(self._encoder.finish())
                break
        data = b"".join(out)
        if data:
            self.emitted = True
        return data


#: Stream errors whose message is Relay's own (a decoder's): every other message is the upstream's text.
RELAYS_OWN = frozenset({"upstream_truncated", "upstream_malformed"})


def as_error(event: ir.StreamError, *, detail: str | None = None) -> RelayError:
    """A stream's error event as Relay's error (a status outside 400-599 becomes 502)."""
    status = event.status if 400 <= event.status <= 599 else 502
    return RelayError(status, kind_for_status(status), event.message, code=event.code, detail=detail)


def convert_response(
    body: bytes, upstream: Any, client: Any, request: ir.Request, now: int
) -> tuple[bytes, ir.Response]:
    """A whole upstream answer in the client's dialect, and the IR of it (for usage)."""
    try:
        response = upstream.decode_response(body)
        if not response.created:
            response = attrs.evolve(response, created=now)
        return client.encode_response(response, request), response
    except orjson.JSONEncodeError as exc:
        raise bad_upstream(f"{_UNWRITABLE}: {exc}") from None

"""The Audio API's streamed answers, relayed as they come: speech's audio bytes, and the event streams of speech
(``stream_format: "sse"``) and transcriptions (``stream=true``).

Audio bytes go through untouched, chunk by chunk, with the upstream's content type; their end is the upstream's
end. An event stream goes through event by event (never half an event), and ends at its terminal event
(``speech.audio.done``, ``transcript.text.done``), whose usage is kept; an upstream ``error`` event is the
stream's last word, in Relay's words. A failure once the answer started: an event stream gets a last error event
(OpenAI's error shape); audio bytes cannot carry one, so the connection is closed without the body's end
(``ResponseAborted``), and the client sees a truncated answer rather than a short one that looks whole.
"""

from __future__ import annotations

from typing import Any

from relay.dialects.openai.chat import codec as openai_chat
from relay.errors import RelayError, ResponseAborted
from relay.gateway.tally import Tally
from relay.http.messages import Headers, StreamResponse
from relay.upstream.exchange import Exchange
from relay.upstream.response import UpstreamResponse

from .ending import record_stream_end
from .passthrough import truncated
from .relayed import SSE, Relayed
from .typed_events import TypedEvents


class Bytes:
    """The steps of an audio body: each chunk as it is; the upstream's end is the answer's."""

    failed: RelayError | None = None
    done: dict[str, Any] | None = None

    def step(self, chunk: bytes) -> tuple[bytes, bool]:
        return chunk, False

    def end(self) -> bytes:
        return b""


class Events(TypedEvents):
    """The steps of an event stream that ends with the event of type ``terminal`` (kept in ``done``)."""

    def __init__(self, exchange: Exchange, terminal: str) -> None:
        super().__init__(exchange)
        self.terminal = terminal
        #: The terminal event's payload, once it went by.
        self.done: dict[str, Any] | None = None

    def seen(self, kind: str | None, payload: dict[str, Any]) -> bool:
        if kind == self.terminal:
            self.done = payload
            return True
        return False

    def end(self) -> bytes:
        if self.done is not None or self.failed is not None:
            return b""
        raise truncated(self.exchange, f"the upstream stream ended before its '{self.terminal}' event")


def content_type(upstream: UpstreamResponse, default: bytes) -> bytes:
    value = upstream.header(b"content-type")
    return value if value else default


def is_events(upstream: UpstreamResponse) -> bool:
    return content_type(upstream, b"").split(b";", 1)[0].strip().lower() == b"text/event-stream"


async def relay_stream(
    record: Tally,
    out: StreamResponse,
    exchange: Exchange,
    upstream: UpstreamResponse,
    steps: Bytes | Events,
    headers: Headers,
) -> None:
    """Relay ``upstream``'s body through ``steps`` to the client, and record how it ended."""
    events = isinstance(steps, Events)
    relayed = Relayed(out, exchange, SSE if events else headers)
    failure: BaseException | None = None
    try:
        await relayed.pump(upstream, steps)
        if not out.started:  # an empty body: the answer is its head
            await relayed.send(b"", exchange.deadline)
    except RelayError as error:
        failure = error
        if not out.started:
            raise
        if events:
            await relayed.fail(openai_chat.encode_stream_error(error))
        else:
            raise ResponseAborted(f"the audio stream failed after it started: {error.message}") from None
    except BaseException as exc:
        failure = exc
        raise
    finally:
        record_stream_end(record, relayed.finished, failure, steps.failed)

"""OpenAI's Audio API: speech (``/v1/audio/speech``) here; transcriptions and translations in
``relay.endpoints.audio_transcribe``. Relayed to OpenAI-family channels only (a model served by an Anthropic
or Gemini channel is a 400: they have no audio API).

Speech is streamed to the client as the upstream makes it: the audio bytes, chunk by chunk, with the
upstream's content type (or, for ``stream_format: "sse"``, its events; ``relay.endpoints.audio_stream``). The
request body goes on as it came, with only the model renamed when the channel knows the model by another name.
It is billed for the characters of ``input`` (``[[prices]] character``), and, when the upstream reports tokens
(the ``speech.audio.done`` event), for those at the model's token prices too; the hold covers the characters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects import ir
from relay.dialects.openai.chat import codec as openai_chat
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.upstream.channels import Channel
from relay.upstream.exchange import Exchange

from . import audio_transcribe
from .audio_stream import Bytes, Events, content_type, is_events, relay_stream
from .forward import forward, tally
from .openai_only import refuse_other_families
from .relayed import success
from .upstream_error import error_answer

if TYPE_CHECKING:
    from relay.app import Relay


def read_speech(body: bytes) -> dict[str, Any]:
    """The speech request's JSON object; a 400 naming the field when it is not JSON, or lacks a string
    ``model`` or ``input`` (the rest is the upstream's to check)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RelayError(400, "invalid_request", "the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise RelayError(400, "invalid_request", "the request body must be a JSON object", code="invalid_json")
    for name in ("model", "input"):
        value = payload.get(name)
        if not isinstance(value, str) or not value:
            raise RelayError(
                400,
                "invalid_request",
                f"'{name}' is required: a non-empty string",
                param=name,
                code="missing_required_parameter" if value is None else "invalid_type",
            )
    return payload


async def speech(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    payload = read_speech(request.body)
    public: str = payload["model"]
    characters = len(payload["input"])

    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        refuse_other_families(channel, public, "audio")
        record = tally(request)
        body = request.body if model == public else orjson.dumps({**payload, "model": model})
        exchange = Exchange(channel, api_key)
        upstream = await exchange.open("/audio/speech", body)
        try:
            record.upstream_status = upstream.status
            if not success(upstream.status):
                return await error_answer(record, upstream, exchange, openai_chat, openai_chat)
            steps = Events(exchange, "speech.audio.done") if is_events(upstream) else Bytes()
            headers = ((b"content-type", content_type(upstream, b"application/octet-stream")),)
            try:
                await relay_stream(record, out, exchange, upstream, steps, headers)
            finally:
                if out.started:  # the upstream made (and bills) the speech, whether or not all of it arrived
                    request.usage = spoken(characters, steps.done)
        finally:
            await exchange.close(upstream)
        return None

    units = ir.Usage(characters=characters)
    return await forward(
        relay, request, out, public, attempt, body=request.body, payload=payload, stream=True, units=units
    )


def spoken(characters: int, done: dict[str, Any] | None) -> ir.Usage:
    """The usage of a speech request: its characters, and the tokens its ``speech.audio.done`` reports."""
    usage = done.get("usage") if done is not None else None
    if isinstance(usage, dict):
        given, made = usage.get("input_tokens"), usage.get("output_tokens")
        if _count(given) or _count(made):
            return ir.Usage(
                input_tokens=given if _count(given) else 0,
                output_tokens=made if _count(made) else 0,
                characters=characters,
            )
    return ir.Usage(characters=characters)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


#: This module's routes (``relay.routes.ROUTES`` takes them in), transcriptions' and translations' among them.
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/audio/speech", speech),
    Route("POST", "/audio/speech", speech),
    *audio_transcribe.ROUTES,
)

"""OpenAI's transcriptions and translations (``/v1/audio/transcriptions``, ``/v1/audio/translations``): a
multipart upload, relayed to OpenAI-family channels.

Relay reads the form for what it needs (``model``, one ``file``, ``stream``) and passes the rest on: the body
goes as it came, the ``model`` field's value replaced when the channel knows the model by another name. The
answer is relayed in the form it comes in: whole (JSON, text, SRT, WebVTT, with the upstream's
content type), or, when the upstream streams (``text/event-stream``: ``stream=true``), event by event as it
comes, to its ``transcript.text.done`` event.

Billed per second of audio (``[[prices]] second``), as ``relay.endpoints.audio_length`` reads them (the
answer's ``usage`` or ``duration``, else the WAV header, else an SRT/VTT answer's last cue, else the upload's
size), plus the tokens the upstream reports (``usage`` of type ``tokens``) at the model's token prices. The
hold covers the seconds the upload holds (WAV header) or is assumed to (its Content-Length), before it is read
(``relay.endpoints.upload_seconds``).

The upload is streamed to the upstream as it arrives (``relay.endpoints.multipart_stream``): Relay keeps the
form's fields and the file's first 64 KiB, never the whole file; ``model`` must come before the file (or within
the form's first 8 MiB), and once the upload went upstream past that head no other channel is tried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay.dialects import ir
from relay.dialects.openai.chat import codec as openai_chat
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.upstream.channels import Channel
from relay.upstream.exchange import Exchange

from . import audio_length
from .audio_stream import Events, content_type, is_events, relay_stream
from .forward import forward, tally
from .multipart_stream import FileInfo, StreamedForm
from .openai_only import refuse_other_families
from .passthrough import parse_object
from .relayed import SSE, success
from .upload_seconds import file_seconds, held_seconds
from .upstream_error import error_answer

if TYPE_CHECKING:
    from relay.app import Relay


def read_head(form: StreamedForm) -> tuple[FileInfo, str, bool]:
    """The upload, the model and whether a stream is asked (from the form's head: ``StreamedForm.read_head``);
    a 400 naming the field that is missing or wrong."""
    files = [f for f in form.files if f.name in ("file", "file[]")]
    if len(files) != 1:
        message = "'file' is required: the audio file, as a file part of the form" if not files else "send one 'file'"
        raise RelayError(400, "invalid_request", message, param="file", code="missing_required_parameter")
    model = form.field("model")
    if not model:
        raise RelayError(
            400, "invalid_request", form.missing("model"), param="model", code="missing_required_parameter"
        )
    stream = (form.field("stream") or "false").lower()
    if stream not in ("true", "false"):
        raise RelayError(400, "invalid_request", "'stream' must be true or false", param="stream", code="invalid_value")
    return files[0], model, stream == "true"


async def transcriptions(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    return await _relay(relay, request, out, "/audio/transcriptions")


async def translations(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    return await _relay(relay, request, out, "/audio/translations")


async def _relay(relay: Relay, request: Request, out: StreamResponse, path: str) -> Response | None:
    kind = request.header(b"content-type") or ""
    form = StreamedForm(request, kind, ("model", "file"))
    await form.read_head(("model",))
    upload, public, stream = read_head(form)
    estimate = held_seconds(upload, form.length, relay.config.limits.max_upload_bytes)
    request.retain(form)

    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        refuse_other_families(channel, public, "audio")
        record = tally(request)
        body = form.body({} if model == public else {"model": model})
        exchange = Exchange(channel, api_key)
        upstream = await exchange.open(path, body, content_type=kind)
        del body
        try:
            record.upstream_status = upstream.status
            if not success(upstream.status):
                return await error_answer(record, upstream, exchange, openai_chat, openai_chat)
            read = file_seconds(upload)
            if is_events(upstream):
                steps = Events(exchange, "transcript.text.done")
                try:
                    await relay_stream(record, out, exchange, upstream, steps, SSE)
                finally:
                    if out.started:  # the upstream heard (and bills) the audio, whether or not all text arrived
                        seconds, tokens = audio_length.answer_usage(steps.done or {})
                        fallback = read if read is not None else audio_length.size_seconds(upload.size)
                        request.usage = audio_length.billed(seconds if seconds is not None else fallback, tokens)
                return None
            data = await exchange.read_body(upstream)
        finally:
            await exchange.close(upstream)
        answer_type = content_type(upstream, b"application/json")
        seconds, tokens = None, None
        if answer_type.split(b";", 1)[0].strip().lower() == b"application/json":
            seconds, tokens = audio_length.answer_usage(parse_object(data, exchange))
        if seconds is None:
            seconds = read if read is not None else audio_length.cue_seconds(data)
        record.end = "completed"
        usage_seconds = seconds if seconds is not None else audio_length.size_seconds(upload.size)
        request.usage = audio_length.billed(usage_seconds, tokens)
        return Response(upstream.status, data, ((b"content-type", answer_type),))

    units = ir.Usage(seconds=estimate)
    return await forward(relay, request, out, public, attempt, stream=stream, units=units)


#: This module's routes (``relay.endpoints.audio.ROUTES`` takes them in); they take uploads, streamed upstream.
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/audio/transcriptions", transcriptions, uploads=True, streamed=True),
    Route("POST", "/audio/transcriptions", transcriptions, uploads=True, streamed=True),
    Route("POST", "/v1/audio/translations", translations, uploads=True, streamed=True),
    Route("POST", "/audio/translations", translations, uploads=True, streamed=True),
)

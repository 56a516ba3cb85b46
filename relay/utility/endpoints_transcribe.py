"""``POST /v1/transcribe``: an audio ``file`` (or a ``url`` to one) in, its text out, through a transcription
channel: the audio API's (``relay.endpoints.audio_transcribe``), on the channels serving the ``model``.

Step by step: the form (or JSON with a ``url``) is read (``relay.utility.form``); a ``url`` is fetched
(``relay.utility.fetch``: an audio or video type); the upload is written again as an OpenAI transcription form
(``file``, ``model`` as the channel names it, ``language``, ``instructions`` as ``prompt``, ``response_format:
json``) and sent to ``/audio/transcriptions`` with failover; the answer's ``text`` is returned::

    {"object": "transcription", "model": "…", "text": "…", "language": "en", "usage": {"seconds": 3.2}}

Billed as a transcription is (``relay.endpoints.audio_length``): the seconds the answer reports, else the WAV
header's, else an estimate from the size, at ``[[prices]] second``, plus the tokens the upstream reports. The hold
covers the upload's seconds (exact for WAV).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay.dialects import ir
from relay.dialects.common import load_object
from relay.dialects.openai.chat import codec as openai_chat
from relay.endpoints import audio_length
from relay.endpoints.forward import fetch, forward, tally
from relay.endpoints.multipart_form import Part, encode
from relay.endpoints.openai_only import refuse_other_families
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.upstream.channels import Channel

from .fetch import fetch_url
from .form import Upload, invalid, read_input

if TYPE_CHECKING:
    from relay.app import Relay

#: The model when neither the request nor ``[utility] transcribe_model`` names one (OpenAI's).
DEFAULT_MODEL = "whisper-1"
#: The media types a fetched ``url`` may have.
AUDIO_TYPES = ("audio/*", "video/mp4", "video/webm", "video/mpeg", "application/octet-stream")
#: Characters of ``instructions`` (OpenAI's ``prompt``), at most.
MAX_INSTRUCTIONS = 4000


async def transcribe(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    await relay.gateway.keys.authenticate(request)  # a bad key is a 401 before any complaint about the body
    given = read_input(request)
    model = given.string("model") or relay.config.utility.transcribe_model or DEFAULT_MODEL
    language = given.string("language")
    instructions = given.string("instructions") or given.string("prompt")
    if instructions is not None and len(instructions) > MAX_INSTRUCTIONS:
        raise invalid("instructions", f"'instructions' is longer than {MAX_INSTRUCTIONS} characters")
    upload = await _audio(relay, given.file, given.url)
    seconds = audio_length.upload_seconds(upload.data)

    async def attempt(channel: Channel, upstream_model: str, api_key: str) -> Response | None:
        refuse_other_families(channel, model, "audio transcription")
        parts = [
            Part("file", upload.data, upload.filename or "audio", upload.content_type or "application/octet-stream"),
            Part("model", upstream_model.encode()),
            Part("response_format", b"json"),
        ]
        if language:
            parts.append(Part("language", language.encode()))
        if instructions:
            parts.append(Part("prompt", instructions.encode()))
        body, content_type = encode(parts)
        data = await fetch(
            request,
            channel,
            api_key,
            "/audio/transcriptions",
            body,
            source=openai_chat,
            client=openai_chat,
            content_type=content_type,
        )
        if isinstance(data, Response):
            return data
        payload = load_object(data, upstream=True)
        text = payload.get("text")
        if not isinstance(text, str):
            raise RelayError(502, "upstream", "the transcription answer has no text", code="bad_upstream_answer")
        reported, tokens = audio_length.answer_usage(payload)
        billed = reported if reported is not None else seconds
        request.usage = audio_length.billed(billed, tokens)
        tally(request).end = "completed"
        answer = {"object": "transcription", "model": model, "text": text, "usage": {"seconds": billed}}
        if language:
            answer["language"] = language
        return Response.json(200, answer)

    return await forward(relay, request, out, model, attempt, units=ir.Usage(seconds=seconds))


async def _audio(relay: Relay, file: Upload | None, url: str | None) -> Upload:
    """The audio: the uploaded ``file`` or the one at ``url``; a 400 when there is neither or both, or it is empty."""
    if file is not None and url is not None:
        raise invalid("file", "send a 'file' or a 'url', not both")
    if url is not None:
        fetched = await fetch_url(relay, url, accept=AUDIO_TYPES)
        file = Upload(fetched.body, fetched.filename, fetched.content_type)
    if file is None:
        raise RelayError(
            400,
            "invalid_request",
            "'file' is required: the audio, as a file part of a multipart form (curl -F file=@talk.wav), or a 'url'",
            param="file",
            code="missing_required_parameter",
        )
    if not file.data:
        raise invalid("file", "the 'file' is empty")
    return file


#: This module's routes (``relay.routes.ROUTES`` takes them in); it takes uploads.
ROUTES: tuple[Route, ...] = (Route("POST", "/v1/transcribe", transcribe, uploads=True),)

"""The mock upstream's Audio API in OpenAI's shape: speech (``/audio/speech``) here, transcriptions and
translations in ``relay.mock.wire_transcribe``.

Speech is the mock's tone (``relay.mock.audio_wav``) with its text inside: ``wav`` (the text in the file) or
``pcm``; the other formats (``mp3``, ``opus``, ``aac``, ``flac``, and ``mp3`` is the default) are refused with a
400, as the mock makes no compressed audio. The audio is sent in the mock's chunks (``mock:chunks=N``, else
``--chunks``), paced by ``mock:delay_ms=N`` (else ``--chunk-delay``); ``stream_format: "sse"`` sends it as
``speech.audio.delta`` events (base64) and a ``speech.audio.done`` event with the usage. ``mock:status=NNN``
in the input answers that error. The request is checked as OpenAI checks it.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

import orjson

from relay.mock import audio_wav, model, wire_chat, wire_transcribe
from relay.mock.model import Answer, Prompt

if TYPE_CHECKING:
    from relay.mock.call import Call, Dialect, MockState, RouteEntry

#: The longest input OpenAI speaks.
MAX_INPUT = 4096
VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar"}
)
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
#: The formats the mock makes, and their content types.
MADE = {"wav": b"audio/wav", "pcm": b"audio/pcm"}
FIELDS = frozenset({"model", "input", "voice", "response_format", "speed", "instructions", "stream_format"})
#: Models that cannot stream events (``stream_format: "sse"``).
NO_SSE = ("tts-1", "tts-1-hd")


def _problem(payload: Any) -> tuple[str | None, str] | None:
    """(param, message) of what OpenAI would refuse in a speech request; None when it is fine."""
    if not isinstance(payload, dict):
        return None, "the request body must be a JSON object"
    for name in payload:
        if name not in FIELDS:
            return name, f"Unrecognized request argument supplied: {name}"
    for name in ("model", "input", "voice"):
        if name not in payload:
            return name, f"Missing required parameter: '{name}'."
    if not isinstance(payload["model"], str) or not payload["model"]:
        return "model", "'model' must be a non-empty string"
    text = payload["input"]
    if not isinstance(text, str) or not text:
        return "input", "'input' must be a non-empty string"
    if len(text) > MAX_INPUT:
        return "input", f"'input' is too long: {len(text)} characters, at most {MAX_INPUT}"
    voice = payload["voice"]
    if isinstance(voice, dict):
        if set(voice) != {"id"} or not isinstance(voice["id"], str) or not voice["id"]:
            return "voice", "a custom 'voice' must be an object with one string 'id'"
    elif voice not in VOICES:
        return "voice", f"'voice' must be one of {', '.join(sorted(VOICES))}, or {{'id': …}}"
    fmt = payload.get("response_format", "mp3")
    if fmt not in FORMATS:
        return "response_format", f"'response_format' must be one of {', '.join(FORMATS)}"
    if fmt not in MADE:
        return "response_format", f"mock upstream: response_format '{fmt}' is not made by the mock; use wav or pcm"
    speed = payload.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        return "speed", "'speed' must be a number from 0.25 to 4.0"
    if not isinstance(payload.get("instructions", ""), str):
        return "instructions", "'instructions' must be a string"
    stream_format = payload.get("stream_format", "audio")
    if stream_format not in ("sse", "audio"):
        return "stream_format", "'stream_format' must be 'sse' or 'audio'"
    if stream_format == "sse" and payload["model"] in NO_SSE:
        return "stream_format", f"stream_format 'sse' is not supported for {payload['model']}"
    return None


def speech(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    try:
        payload = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        return wire_chat.error(400, "the request body is not JSON")
    refused = _problem(payload)
    if refused is not None:
        param, message = refused
        return wire_chat.error(400, message, param)
    text: str = payload["input"]
    reply = model.answer(Prompt(text=text, prompt_tokens=model.tokens(text)), mock.options)
    if reply.directives.status:
        status = reply.directives.status
        return Answer(status, wire_chat.error_body(status), model.JSON_HEADERS, reply)
    fmt = payload.get("response_format", "mp3")
    speed = float(payload.get("speed", 1.0))
    audio = audio_wav.wav(text, speed) if fmt == "wav" else audio_wav.pcm(text, speed)
    pieces = _split(audio, reply.chunks)
    if payload.get("stream_format", "audio") == "audio":
        return Answer(200, tuple(pieces), ((b"content-type", MADE[fmt]),), reply)
    frames = [_event({"type": "speech.audio.delta", "audio": base64.b64encode(p).decode()}) for p in pieces]
    made = len(audio) // 100  # the mock's audio tokens: one per 100 bytes
    usage = {"input_tokens": reply.prompt_tokens, "output_tokens": made, "total_tokens": reply.prompt_tokens + made}
    frames.append(_event({"type": "speech.audio.done", "usage": usage}))
    return Answer(200, tuple(frames), model.SSE_HEADERS, reply)


def _split(data: bytes, parts: int) -> list[bytes]:
    """``data`` in ``parts`` nearly equal pieces (fewer when it is shorter)."""
    parts = max(1, min(parts, len(data)))
    size, extra = divmod(len(data), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(data[start:end])
        start = end
    return out


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


#: Routes ``relay.mock.router`` tries before its own: (method, path pattern, dialect or None, handler).
ROUTES: tuple[RouteEntry, ...] = (
    ("POST", re.compile(r"/audio/speech$"), "openai", speech),
    ("POST", re.compile(r"/audio/transcriptions$"), "openai", wire_transcribe.transcriptions),
    ("POST", re.compile(r"/audio/translations$"), "openai", wire_transcribe.translations),
)

"""The mock upstream's transcriptions and translations (``/audio/transcriptions``, ``/audio/translations``).

The transcript is the text a WAV file carries (the mock's own speech, ``relay.mock.audio_wav``), else words
chosen by a digest of the upload's bytes; a translation is the same text (the mock speaks English only). The
audio's length is the WAV file's, else its size at ``relay.endpoints.audio_length.BYTES_PER_SECOND``.

Formats as OpenAI's: ``json`` (``text`` and ``usage``: tokens for ``gpt-4o*`` models, else the duration in
whole seconds, rounded up), ``text``, ``srt``, ``vtt`` (one cue over the whole audio), ``verbose_json``
(``duration``, one segment, ``words`` when asked, the usage's duration). ``stream=true`` on a transcription
(not with ``whisper-1``, which OpenAI answers whole) sends ``transcript.text.delta`` events and a
``transcript.text.done`` with token usage, in the mock's chunks and pace (``mock:`` directives in ``prompt``).
The form is checked as OpenAI checks it: a file with a known extension, a model, the format's values, a
temperature from 0 to 1, ``timestamp_granularities[]`` only with ``verbose_json``, only ``json`` and
``text`` for ``gpt-4o*`` models.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import orjson

from relay.endpoints import audio_length, multipart_form
from relay.errors import RelayError
from relay.mock import audio_wav, model, wire_chat
from relay.mock.model import Answer, Prompt

if TYPE_CHECKING:
    from relay.mock.call import Call, Dialect, MockState

FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
EXTENSIONS = ("flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm")
GRANULARITIES = ("word", "segment")
TEXT_TYPE = b"text/plain; charset=utf-8"


def transcriptions(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    return _answer(mock, call, translate=False)


def translations(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    return _answer(mock, call, translate=True)


def _answer(mock: MockState, call: Call, *, translate: bool) -> Answer:
    try:
        form = multipart_form.parse(call.body, call.headers.get(b"content-type", ""))
    except RelayError as error:
        return wire_chat.error(400, error.message)
    refused = _problem(form, translate)
    if refused is not None:
        param, message = refused
        return wire_chat.error(400, message, param)
    (upload,) = form.files("file")
    name = form.field("model") or ""
    fmt = form.field("response_format") or "json"
    prompt = form.field("prompt") or ""
    reply = model.answer(Prompt(text=prompt), mock.options)
    if reply.directives.status:
        status = reply.directives.status
        return Answer(status, wire_chat.error_body(status), model.JSON_HEADERS, reply)
    text = audio_wav.embedded_text(upload.data) or audio_wav.hashed_text(upload.data)
    seconds = audio_length.upload_seconds(upload.data)
    streams = not translate and (form.field("stream") or "").lower() == "true" and name != "whisper-1"
    if streams:
        return Answer(200, _events(text, seconds, reply.chunks), model.SSE_HEADERS, reply)
    language = "english" if translate else (form.field("language") or "english")
    granularities = _granularities(form)
    if fmt == "text":
        return Answer(200, text.encode() + b"\n", ((b"content-type", TEXT_TYPE),), reply)
    if fmt == "srt":
        srt = f"1\n{_stamp(0, ',')} --> {_stamp(seconds, ',')}\n{text}\n\n"
        return Answer(200, srt.encode(), ((b"content-type", TEXT_TYPE),), reply)
    if fmt == "vtt":
        vtt = f"WEBVTT\n\n{_stamp(0, '.')} --> {_stamp(seconds, '.')}\n{text}\n\n"
        return Answer(200, vtt.encode(), ((b"content-type", b"text/vtt; charset=utf-8"),), reply)
    if fmt == "verbose_json":
        return model.json_answer(200, _verbose(text, seconds, language, granularities, translate), reply)
    return model.json_answer(200, {"text": text, "usage": _usage(name, text, seconds)}, reply)


def _problem(form: multipart_form.Form, translate: bool) -> tuple[str | None, str] | None:
    files = form.files("file")
    if len(files) != 1:
        return "file", "Missing required parameter: 'file'." if not files else "send one 'file'"
    upload = files[0]
    extension = (upload.filename or "").rsplit(".", 1)[-1].lower() if "." in (upload.filename or "") else ""
    if extension not in EXTENSIONS:
        return "file", f"Invalid file format. Supported formats: {EXTENSIONS!r}"
    if not upload.data:
        return "file", "Audio file is empty: the file might be corrupted or unsupported"
    name = form.field("model")
    if not name:
        return "model", "Missing required parameter: 'model'."
    fmt = form.field("response_format") or "json"
    if fmt not in FORMATS:
        return "response_format", f"'response_format' must be one of {', '.join(FORMATS)}"
    if name.startswith("gpt-4o") and fmt not in ("json", "text"):
        return "response_format", f"response_format '{fmt}' is not compatible with model '{name}'; use json or text"
    temperature = form.field("temperature")
    if temperature is not None:
        try:
            value = float(temperature)
        except ValueError:
            value = math.nan
        if not 0.0 <= value <= 1.0:
            return "temperature", "'temperature' must be a number from 0 to 1"
    granularities = _granularities(form)
    if granularities and translate:
        return "timestamp_granularities", "Unrecognized request argument supplied: timestamp_granularities"
    for value in granularities:
        if value not in GRANULARITIES:
            return "timestamp_granularities", "'timestamp_granularities' takes 'word' and 'segment'"
    if granularities and fmt != "verbose_json":
        return "timestamp_granularities", "timestamp_granularities requires response_format 'verbose_json'"
    stream = form.field("stream")
    if stream is not None and stream.lower() not in ("true", "false"):
        return "stream", "'stream' must be true or false"
    return None


def _granularities(form: multipart_form.Form) -> list[str]:
    """Every ``timestamp_granularities[]`` value (the SDK sends the array as repeated fields)."""
    names = ("timestamp_granularities", "timestamp_granularities[]")
    return [p.data.decode("utf-8", "replace") for p in form.parts if p.name in names and p.filename is None]


def _usage(name: str, text: str, seconds: float) -> dict[str, Any]:
    if name.startswith("gpt-4o"):
        heard, said = _audio_tokens(seconds), model.tokens(text)
        return {
            "type": "tokens",
            "input_tokens": heard,
            "output_tokens": said,
            "total_tokens": heard + said,
            "input_token_details": {"audio_tokens": heard, "text_tokens": 0},
        }
    return {"type": "duration", "seconds": math.ceil(seconds)}


def _audio_tokens(seconds: float) -> int:
    """The mock's audio tokens: ten a second, rounded up."""
    return math.ceil(seconds * 10)


def _verbose(text: str, seconds: float, language: str, granularities: list[str], translate: bool) -> dict[str, Any]:
    segment = {
        "id": 0,
        "seek": 0,
        "start": 0.0,
        "end": round(seconds, 3),
        "text": text,
        "tokens": list(range(50_364, 50_364 + model.tokens(text))),
        "temperature": 0.0,
        "avg_logprob": -0.25,
        "compression_ratio": 1.0,
        "no_speech_prob": 0.01,
    }
    out: dict[str, Any] = {
        "task": "translate" if translate else "transcribe",
        "language": language,
        "duration": round(seconds, 3),
        "text": text,
    }
    if not granularities or "segment" in granularities:
        out["segments"] = [segment]
    if "word" in granularities:
        words = text.split()
        step = seconds / max(len(words), 1)
        out["words"] = [
            {"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)} for i, w in enumerate(words)
        ]
    if not translate:
        out["usage"] = {"type": "duration", "seconds": math.ceil(seconds)}
    return out


def _events(text: str, seconds: float, chunks: int) -> tuple[bytes, ...]:
    pieces = model.split(text, chunks)
    frames = [_event({"type": "transcript.text.delta", "delta": p}) for p in pieces]
    heard, said = _audio_tokens(seconds), model.tokens(text)
    usage = {
        "type": "tokens",
        "input_tokens": heard,
        "output_tokens": said,
        "total_tokens": heard + said,
        "input_token_details": {"audio_tokens": heard, "text_tokens": 0},
    }
    frames.append(_event({"type": "transcript.text.done", "text": text, "usage": usage}))
    return tuple(frames)


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _stamp(seconds: float, mark: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    whole, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{mark}{millis:03d}"

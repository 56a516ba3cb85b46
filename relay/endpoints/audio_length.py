"""How many seconds of audio a transcription or translation is billed for, and how many its hold assumes.

The answer says it when it can: a ``usage`` of type ``duration`` (what the upstream billed), else a
``duration`` (``verbose_json``). Otherwise Relay reads the upload: a WAV file's header gives its length
exactly (the stdlib ``wave``: PCM WAV only); an ``srt`` or ``vtt`` answer gives the end of its last cue; any
other upload is assumed to hold ``BYTES_PER_SECOND`` bytes a second (128 kbit/s, a usual MP3 or M4A rate).
The hold, taken before the answer, is the WAV length or that size estimate.
"""

from __future__ import annotations

import io
import math
import re
import struct
import wave
from collections.abc import Mapping
from typing import Any

from relay.dialects import ir

#: Bytes a second of an upload that is not a WAV file is assumed to hold: 128 kbit/s.
BYTES_PER_SECOND = 16_000
#: A cue's timestamp in an SRT (``00:01:02,500``) or WebVTT (``00:01:02.500``, hours optional) answer.
_CUE_END = re.compile(rb"-->\s*(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{3})")


def wav_header(head: bytes) -> tuple[int, int, int] | None:
    """(frames, rate, bytes per frame) of a PCM WAV file, or of its first bytes; None when ``wave`` reads no WAV
    there."""
    try:
        with wave.open(io.BytesIO(bytes(head)), "rb") as reader:
            frames = reader.getnframes()
            rate = reader.getframerate()
            frame_size = reader.getnchannels() * reader.getsampwidth()
    except (wave.Error, EOFError, struct.error, ValueError, OSError):
        return None
    if rate <= 0 or frame_size <= 0:
        return None
    return frames, rate, frame_size


def wav_seconds(data: bytes) -> float | None:
    """The length of a PCM WAV file (its frames over its rate, never more frames than its data chunk holds);
    None when ``data`` is not one ``wave`` reads."""
    header = wav_header(data)
    if header is None:
        return None
    frames, rate, frame_size = header
    return min(frames, data_bytes(data) // frame_size) / rate


def data_bytes(data: bytes) -> int:
    """The bytes a RIFF file (or its first bytes) holds after the head of its ``data`` chunk (which may claim
    more, or less)."""
    at = 12
    while at + 8 <= len(data):
        name = data[at : at + 4]
        (size,) = struct.unpack_from("<I", data, at + 4)
        if name == b"data":
            return len(data) - (at + 8)
        at += 8 + size + (size % 2)
    return 0


def size_seconds(size: int) -> float:
    """The seconds an upload of ``size`` bytes is assumed to hold (``BYTES_PER_SECOND``)."""
    return size / BYTES_PER_SECOND


def upload_seconds(data: bytes) -> float:
    """The seconds an upload holds: exact for a WAV file, else estimated from its size."""
    seconds = wav_seconds(data)
    return seconds if seconds is not None else size_seconds(len(data))


def cue_seconds(text: bytes) -> float | None:
    """The end of the last cue of an SRT or WebVTT answer; None when it has none."""
    ends = [int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000 for h, m, s, ms in _CUE_END.findall(text)]
    return max(ends) if ends else None


def answer_usage(payload: Mapping[str, Any]) -> tuple[float | None, ir.Usage | None]:
    """What a JSON answer (or a stream's done event) reports: (its seconds, its tokens).

    Seconds come from ``usage`` of type ``duration``, else from ``duration``; tokens from ``usage`` of type
    ``tokens``. Values that are not finite non-negative numbers are ignored."""
    seconds: float | None = None
    tokens: ir.Usage | None = None
    usage = payload.get("usage")
    if isinstance(usage, dict):
        if usage.get("type") == "duration":
            seconds = _amount(usage.get("seconds"))
        elif usage.get("type") == "tokens":
            given = _amount(usage.get("input_tokens"))
            made = _amount(usage.get("output_tokens"))
            if given is not None or made is not None:
                tokens = ir.Usage(input_tokens=int(given or 0), output_tokens=int(made or 0))
    if seconds is None:
        seconds = _amount(payload.get("duration"))
    return seconds, tokens


def _amount(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(value)


def billed(seconds: float, tokens: ir.Usage | None) -> ir.Usage:
    """The usage a transcription is charged: its seconds, and the tokens the upstream reported (if any)."""
    if tokens is None:
        return ir.Usage(seconds=seconds)
    return ir.Usage(input_tokens=tokens.input_tokens, output_tokens=tokens.output_tokens, seconds=seconds)

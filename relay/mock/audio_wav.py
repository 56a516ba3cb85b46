"""The mock's speech: a short WAV tone with its text inside, and the text read back out of an upload.

``speech`` makes 16-bit mono PCM, a 400 Hz sine, 0.5 s plus 20 ms per character of the text (at most 10 s),
divided by the speed; a WAV file carries the text in a RIFF ``LIST``/``INFO`` chunk (``ICMT``, UTF-8), so
that transcribing the mock's speech gives its text back. Raw PCM (``pcm``) is 24 kHz as OpenAI's is, WAV
16 kHz. ``embedded_text`` finds that chunk in an upload; ``hashed_text`` is the mock's transcript of
anything else: words picked by a digest of the bytes, the same bytes always the same words.
"""

from __future__ import annotations

import array
import hashlib
import math
import struct
import sys

WAV_RATE = 16_000
PCM_RATE = 24_000
#: The tone's frequency: a whole number of samples per period at both rates.
TONE_HZ = 400
AMPLITUDE = 8_000
#: Seconds of speech: ``BASE_SECONDS`` plus ``PER_CHARACTER`` a character, at most ``MAX_SECONDS``.
BASE_SECONDS = 0.5
PER_CHARACTER = 0.02
MAX_SECONDS = 10.0

_WORDS = (
    "amber river quiet lantern copper meadow silver harbor gentle orchard velvet summit cedar"
    " echo marble willow ember falcon coral prairie"
).split()


def seconds_for(text: str, speed: float) -> float:
    return min(BASE_SECONDS + PER_CHARACTER * len(text), MAX_SECONDS) / speed


def samples(seconds: float, rate: int) -> bytes:
    """``seconds`` of the tone at ``rate``: 16-bit little-endian mono samples."""
    period = rate // TONE_HZ
    one = array.array("h", (round(AMPLITUDE * math.sin(2 * math.pi * i / period)) for i in range(period)))
    if sys.byteorder != "little":
        one.byteswap()
    count = round(seconds * rate)
    whole, rest = divmod(count, period)
    data = one.tobytes()
    return data * whole + data[: rest * 2]


def pcm(text: str, speed: float) -> bytes:
    return samples(seconds_for(text, speed), PCM_RATE)


def wav(text: str, speed: float) -> bytes:
    """A WAV file of the tone for ``text``, the text in its ``LIST``/``INFO``/``ICMT`` chunk."""
    data = samples(seconds_for(text, speed), WAV_RATE)
    fmt = struct.pack("<HHIIHH", 1, 1, WAV_RATE, WAV_RATE * 2, 2, 16)
    comment = text.encode("utf-8") + b"\x00"
    info = b"INFO" + _chunk(b"ICMT", comment)
    body = b"WAVE" + _chunk(b"fmt ", fmt) + _chunk(b"LIST", info) + _chunk(b"data", data)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _chunk(name: bytes, payload: bytes) -> bytes:
    pad = b"\x00" if len(payload) % 2 else b""
    return name + struct.pack("<I", len(payload)) + payload + pad


def embedded_text(data: bytes) -> str | None:
    """The text of a RIFF WAVE file's ``LIST``/``INFO``/``ICMT`` chunk; None when it has none."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    for name, payload in _chunks(data, 12, len(data)):
        if name == b"LIST" and payload[:4] == b"INFO":
            for inner, value in _chunks(payload, 4, len(payload)):
                if inner == b"ICMT":
                    return value.split(b"\x00", 1)[0].decode("utf-8", "replace")
    return None


def _chunks(data: bytes, start: int, end: int) -> list[tuple[bytes, bytes]]:
    found = []
    at = start
    while at + 8 <= end:
        name = data[at : at + 4]
        (size,) = struct.unpack_from("<I", data, at + 4)
        found.append((name, data[at + 8 : min(at + 8 + size, end)]))
        at += 8 + size + (size % 2)
    return found


def hashed_text(data: bytes) -> str:
    """The mock's transcript of audio without its text: six words chosen by the bytes' SHA-256."""
    digest = hashlib.sha256(data).digest()
    words = [_WORDS[b % len(_WORDS)] for b in digest[:6]]
    return " ".join(words).capitalize() + "."

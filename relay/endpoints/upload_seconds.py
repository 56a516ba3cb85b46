"""The seconds of an audio upload streamed upstream (``relay.endpoints.audio_transcribe``), from what Relay keeps
of it: the file's first bytes (a WAV header) and its size.

The hold is taken before the upload is read: a WAV header's length (no more than the body's bytes can hold),
else the body's length as audio of ``audio_length.BYTES_PER_SECOND`` (its Content-Length; a chunked body, whose
length is unknown, is held for the route's limit, ``[limits] max_upload_bytes``). Once read, a WAV file's seconds
are its header's frames, no more than its bytes hold, as ``audio_length.wav_seconds`` reads a whole file.
"""

from __future__ import annotations

from . import audio_length
from .multipart_stream import FileInfo


def held_seconds(upload: FileInfo, length: int | None, limit: int) -> float:
    """The seconds the hold covers, before the upload is read: a WAV header's length (no more than the body's
    bytes can hold), else the body's length (its Content-Length; a chunked body: the route's limit) as audio of
    ``audio_length.BYTES_PER_SECOND``."""
    size = length if length is not None else limit
    header = audio_length.wav_header(upload.head)
    if header is not None:
        frames, rate, frame_size = header
        return min(frames, size // frame_size) / rate
    return audio_length.size_seconds(size)


def file_seconds(upload: FileInfo) -> float | None:
    """A WAV upload's seconds once it was read (its header's frames, no more than its bytes hold); else None."""
    header = audio_length.wav_header(upload.head)
    if header is None:
        return None
    frames, rate, frame_size = header
    data = upload.size - (len(upload.head) - audio_length.data_bytes(upload.head))
    return min(frames, max(data, 0) // frame_size) / rate

"""How Relay reads the seconds of audio it bills (relay.endpoints.audio_length), and the mock's WAV speech it is
tested against (relay.mock.audio_wav)."""

from __future__ import annotations

import io
import wave

import pytest

from relay.dialects import ir
from relay.endpoints import audio_length
from relay.mock import audio_wav


def test_the_mocks_speech_is_a_wav_file_wave_reads_with_its_text_inside() -> None:
    data = audio_wav.wav("Grüße, world", 2.0)
    with wave.open(io.BytesIO(data)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 16_000)
    assert audio_length.wav_seconds(data) == pytest.approx((0.5 + 0.02 * 12) / 2)
    assert audio_wav.embedded_text(data) == "Grüße, world"
    assert audio_wav.embedded_text(audio_wav.pcm("x", 1.0)) is None
    assert len(audio_wav.pcm("x", 1.0)) == round(0.52 * 24_000) * 2


def test_a_wav_header_claiming_more_frames_than_the_file_holds_counts_what_it_holds() -> None:
    data = audio_wav.wav("abc", 1.0)
    cut = data[: len(data) - 16_000 // 2 * 2]  # half a second fewer samples than its data chunk says
    assert audio_length.wav_seconds(cut) == pytest.approx(audio_length.wav_seconds(data) - 0.5, abs=1e-3)


@pytest.mark.parametrize("data", [b"", b"RIFF", b"ID3\x04" + bytes(500), b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(40)])
def test_what_is_not_a_wav_file_is_estimated_from_its_size(data: bytes) -> None:
    assert audio_length.wav_seconds(data) is None
    assert audio_length.upload_seconds(data) == len(data) / audio_length.BYTES_PER_SECOND


def test_the_last_cue_of_srt_and_vtt() -> None:
    srt = b"1\n00:00:00,000 --> 00:00:02,500\nhi\n\n2\n00:01:02,000 --> 01:00:03,250\nthere\n\n"
    assert audio_length.cue_seconds(srt) == 3603.25
    assert audio_length.cue_seconds(b"WEBVTT\n\n00:01.000 --> 00:04.500\nhi\n") == 4.5
    assert audio_length.cue_seconds(b"just a transcript") is None


def test_what_an_answer_reports() -> None:
    assert audio_length.answer_usage({"usage": {"type": "duration", "seconds": 3}, "duration": 2.4}) == (3.0, None)
    assert audio_length.answer_usage({"duration": 2.4}) == (2.4, None)
    tokens = {"type": "tokens", "input_tokens": 14, "output_tokens": 5, "total_tokens": 19}
    assert audio_length.answer_usage({"usage": tokens}) == (None, ir.Usage(input_tokens=14, output_tokens=5))
    assert audio_length.answer_usage({"duration": -1, "usage": {"type": "duration", "seconds": True}}) == (None, None)
    assert audio_length.billed(2.0, ir.Usage(input_tokens=3, output_tokens=4)) == ir.Usage(
        input_tokens=3, output_tokens=4, seconds=2.0
    )


def test_the_mocks_transcript_of_unknown_audio_is_stable_and_depends_on_the_bytes() -> None:
    assert audio_wav.hashed_text(b"one") == audio_wav.hashed_text(b"one") != audio_wav.hashed_text(b"two")

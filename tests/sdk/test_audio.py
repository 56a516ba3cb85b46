"""The Audio API through ``relay serve`` to ``relay mock-upstream``, with the official ``openai`` SDK: speech
streamed as it is made, transcriptions and translations in every format and streamed, the refusals, the upload
limit, and what each request costs in the request log.

The mock's speech is a WAV tone carrying its text (relay.mock.audio_wav), so a transcription of it gives the
text back: 0.5 s plus 20 ms a character at 16 kHz, 16-bit mono.
"""

from __future__ import annotations

import base64
import json
import math
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from relay.endpoints import audio_length
from relay.mock import audio_wav
from tests.conftest import KEY, process
from tests.helpers import MOCK_ARGS

#: Credits per character spoken by tts-* models, and per second heard by whisper-1.
CHARACTER = 0.001
SECOND = 0.01
#: ``house-ears`` (gpt-4o-transcribe upstream): per second, and per million tokens in and out.
EARS_SECOND = 0.02
EARS_INPUT = 2.5
EARS_OUTPUT = 10.0
#: gpt-4o-mini-tts: per character, and per million tokens in and out (reported with ``stream_format: "sse"``).
TTS_INPUT = 0.6
TTS_OUTPUT = 12.0
MAX_UPLOAD = 300_000
POOR_KEY = "sk-relay-poor-audio"

#: The SDK marks ``audio.translations.create`` deprecated (OpenAI still serves it; Relay relays it).
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


def relay_toml(upstream: str, store: Path) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[limits]
max_upload_bytes = {MAX_UPLOAD}

[store]
url = "sqlite:///{store}"
log_interval = 0.05

[routing]
key_rest = 0.001
breaker_failures = 1000

[[prices]]
model = "tts-*"
character = {CHARACTER}

[[prices]]
model = "house-voice"
character = {CHARACTER * 2}

[[prices]]
model = "gpt-4o-mini-tts"
character = {CHARACTER}
input = {TTS_INPUT}
output = {TTS_OUTPUT}

[[prices]]
model = "whisper-*"
second = {SECOND}

[[prices]]
model = "house-ears"
second = {EARS_SECOND}
input = {EARS_INPUT}
output = {EARS_OUTPUT}

[[channels]]
name = "voice"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream-voice"
models = ["tts-1", "gpt-4o-mini-tts", "whisper-1", "gpt-4o-transcribe"]
model_map = {{ "house-voice" = "tts-1", "house-ears" = "gpt-4o-transcribe" }}
[channels.timeouts]
first_byte = 10
idle = 10

[[channels]]
name = "slow"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream-slow"
models = []
model_map = {{ "tts-stalling" = "tts-1", "ears-stalling" = "gpt-4o-transcribe" }}
[channels.timeouts]
first_byte = 10
idle = 0.5

[[channels]]
name = "claude"
type = "anthropic"
base_url = "{upstream}"
api_key = "sk-upstream-claude"
models = ["claude-voice"]

[[keys]]
name = "audio"
key = "{KEY}"

[[keys]]
name = "poor"
key = "{POOR_KEY}"
quota = 0.000001
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with process(*MOCK_ARGS) as (_, address):
        yield f"http://{address}"


@pytest.fixture(scope="module")
def relay_url(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("audio")
    path = folder / "relay.toml"
    path.write_text(relay_toml(upstream, folder / "relay.db"))
    with process("serve", "--config", str(path)) as (_, address):
        yield f"http://{address}"


@pytest.fixture
def client(relay_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{relay_url}/v1", api_key=KEY, max_retries=0)


def spoken(client: openai.OpenAI, text: str, model: str = "tts-1") -> bytes:
    return client.audio.speech.create(model=model, voice="alloy", input=text, response_format="wav").content


# ---- speech ----------------------------------------------------------------------------------------


def test_speech_is_the_mocks_wav_with_its_text_inside(client: openai.OpenAI) -> None:
    audio = spoken(client, "Hello there")
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    assert audio_wav.embedded_text(audio) == "Hello there"
    assert audio_length.wav_seconds(audio) == pytest.approx(0.5 + 0.02 * len("Hello there"))
    assert audio == spoken(client, "Hello there")  # deterministic


def test_speech_streams_as_the_upstream_makes_it(client: openai.OpenAI) -> None:
    text = "mock:chunks=5 mock:delay_ms=300 Streaming speech"
    started = time.monotonic()
    arrivals: list[tuple[float, int]] = []
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="wav"
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        assert "content-length" not in response.headers  # relayed as it comes, not buffered
        chunks = []
        for chunk in response.iter_bytes():
            arrivals.append((time.monotonic() - started, len(chunk)))
            chunks.append(chunk)
    total = arrivals[-1][0]
    assert total >= 1.1  # four gaps of 300 ms
    assert arrivals[0][0] < total - 0.8  # the first bytes came long before the upstream finished
    assert len(arrivals) >= 3
    assert audio_wav.embedded_text(b"".join(chunks)) == text


def speech_events(relay_url: str, text: str) -> list[str]:
    """The ``data:`` lines of a speech request with ``stream_format: "sse"``."""
    body = {"model": "gpt-4o-mini-tts", "voice": "nova", "input": text, "response_format": "wav"}
    with httpx.stream(
        "POST",
        f"{relay_url}/v1/audio/speech",
        json={**body, "stream_format": "sse"},
        headers={"authorization": f"Bearer {KEY}"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line for line in response.iter_lines() if line.startswith("data: ")]


def test_speech_as_events_keeps_the_upstreams_events(relay_url: str) -> None:
    events = [json.loads(line[6:]) for line in speech_events(relay_url, "Events please")]
    assert [e["type"] for e in events][-1] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert audio_wav.embedded_text(audio) == "Events please"


def test_upstream_errors_reach_the_client_in_relays_words(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input="mock:status=429 hi", response_format="wav")
    assert caught.value.code == "upstream_rate_limited"
    with pytest.raises(openai.InternalServerError) as failed:
        client.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", spoken(client, "x")), prompt="mock:status=500"
        )
    assert failed.value.status_code == 502 and "mock upstream error" not in str(failed.value.body)


def test_speech_cut_short_is_not_ended_as_if_whole(relay_url: str) -> None:
    """The upstream goes silent after two of four chunks: the client has those, then a broken answer (no
    chunked terminator), never a short body that looks complete."""
    body = {"model": "tts-stalling", "voice": "alloy", "input": "mock:chunks=4 mock:stall_after=2 hi"}
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):  # the error comes while reading the body
        with httpx.stream(
            "POST",
            f"{relay_url}/v1/audio/speech",
            json={**body, "response_format": "wav"},
            headers={"authorization": f"Bearer {KEY}"},
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                received += chunk
    assert received[:4] == b"RIFF"


def test_a_transcription_stream_cut_short_ends_with_an_error_event(client: openai.OpenAI) -> None:
    stream = client.audio.transcriptions.create(
        model="ears-stalling",
        file=("s.wav", spoken(client, "cut short")),
        stream=True,
        prompt="mock:chunks=4 mock:stall_after=2",
    )
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:  # the error is the stream's last event
        for event in stream:
            seen.append(event.type)
    assert seen == ["transcript.text.delta"] * 2
    assert "upstream" in str(caught.value)


def test_the_model_is_renamed_for_the_channel(client: openai.OpenAI) -> None:
    assert audio_wav.embedded_text(spoken(client, "Renamed", model="house-voice")) == "Renamed"
    with pytest.raises(openai.BadRequestError) as caught:  # the upstream got tts-1, which streams no events
        client.audio.speech.create(
            model="house-voice", voice="alloy", input="x", response_format="wav", stream_format="sse"
        )
    assert caught.value.body["param"] == "stream_format"  # type: ignore[index]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"voice": "alloy", "response_format": "wav"}, "input"),  # Relay's own check
        ({"input": "hi", "voice": "nobody", "response_format": "wav"}, "voice"),  # the upstream's
        ({"input": "hi", "voice": "alloy", "speed": 9, "response_format": "wav"}, "speed"),
        ({"input": "hi", "voice": "alloy"}, "response_format"),  # mp3 by default: the mock makes wav and pcm
    ],
)
def test_bad_speech_requests_are_400s_naming_the_field(relay_url: str, fields: dict[str, object], param: str) -> None:
    response = httpx.post(
        f"{relay_url}/v1/audio/speech",
        json={"model": "tts-1", **fields},
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and set(error) == {"message", "type", "param", "code"}


def test_speech_not_json_is_a_400(relay_url: str) -> None:
    response = httpx.post(f"{relay_url}/v1/audio/speech", content=b"{nope", headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_a_model_of_an_anthropic_channel_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="claude-voice", voice="alloy", input="hi", response_format="wav")
    assert caught.value.code == "unsupported_model"
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="claude-voice", file=("a.wav", spoken(client, "x")))
    assert caught.value.code == "unsupported_model"


# ---- transcriptions and translations ---------------------------------------------------------------


def test_transcription_gives_the_spoken_text_back(client: openai.OpenAI) -> None:
    audio = spoken(client, "The quick brown fox")
    result = client.audio.transcriptions.create(model="whisper-1", file=("fox.wav", audio, "audio/wav"))
    assert result.text == "The quick brown fox"
    assert result.usage is not None and result.usage.type == "duration"
    assert result.usage.seconds == math.ceil(audio_length.wav_seconds(audio) or 0)


def test_transcription_formats(client: openai.OpenAI) -> None:
    audio = spoken(client, "Formats")
    seconds = audio_length.wav_seconds(audio)
    text = client.audio.transcriptions.create(model="whisper-1", file=("f.wav", audio), response_format="text")
    assert text.strip() == "Formats"
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=("f.wav", audio), response_format="verbose_json", timestamp_granularities=["word"]
    )
    assert verbose.text == "Formats" and verbose.duration == pytest.approx(seconds, abs=1e-3)
    assert verbose.words is not None and [w.word for w in verbose.words] == ["Formats"]
    srt = client.audio.transcriptions.create(model="whisper-1", file=("f.wav", audio), response_format="srt")
    assert "00:00:00,000 --> 00:00:00,640\nFormats" in srt
    vtt = client.audio.transcriptions.create(model="whisper-1", file=("f.wav", audio), response_format="vtt")
    assert vtt.startswith("WEBVTT") and "00:00:00.640\nFormats" in vtt


def test_a_transcription_streams_its_events_as_they_come(client: openai.OpenAI) -> None:
    audio = spoken(client, "streamed words here")
    started = time.monotonic()
    stream = client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("s.wav", audio), stream=True, prompt="mock:chunks=4 mock:delay_ms=300"
    )
    timed = [(time.monotonic() - started, event) for event in stream]
    events = [event for _, event in timed]
    kinds = [e.type for e in events]
    assert kinds == ["transcript.text.delta"] * 4 + ["transcript.text.done"]
    assert timed[0][0] < timed[-1][0] - 0.6  # the first delta came before the upstream finished
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert deltas == events[-1].text == "streamed words here"  # type: ignore[union-attr]


def test_an_unknown_upload_is_transcribed_alike_every_time(client: openai.OpenAI) -> None:
    data = bytes(range(256)) * 40
    one = client.audio.transcriptions.create(model="whisper-1", file=("noise.mp3", data))
    assert (
        one.text
        == audio_wav.hashed_text(data)
        == client.audio.translations.create(model="whisper-1", file=("noise.mp3", data)).text
    )


def test_translation(client: openai.OpenAI) -> None:
    audio = spoken(client, "Bonjour")
    result = client.audio.translations.create(model="whisper-1", file=("b.wav", audio), response_format="verbose_json")
    assert result.text == "Bonjour" and result.language == "english"


def test_an_aliased_transcription_model_is_renamed_in_the_form(client: openai.OpenAI) -> None:
    audio = spoken(client, "Alias")
    result = client.audio.transcriptions.create(model="house-ears", file=("a.wav", audio))
    assert result.text == "Alias"
    assert result.usage is not None and result.usage.type == "tokens"  # the upstream got gpt-4o-transcribe


def test_bad_transcription_requests_are_400s(relay_url: str, client: openai.OpenAI) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    url = f"{relay_url}/v1/audio/transcriptions"
    no_file = httpx.post(url, data={"model": "whisper-1"}, files={"other": ("x.txt", b"x")}, headers=auth)
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    no_model = httpx.post(url, files={"file": ("a.wav", b"RIFF")}, headers=auth)
    assert no_model.status_code == 400 and no_model.json()["error"]["param"] == "model"
    not_a_form = httpx.post(url, json={"model": "whisper-1"}, headers=auth)
    assert not_a_form.status_code == 400 and not_a_form.json()["error"]["code"] == "invalid_content_type"
    bad_stream = httpx.post(
        url, data={"model": "whisper-1", "stream": "maybe"}, files={"file": ("a.wav", b"1")}, headers=auth
    )
    assert bad_stream.status_code == 400 and bad_stream.json()["error"]["param"] == "stream"
    audio = spoken(client, "x")
    with pytest.raises(openai.BadRequestError) as caught:  # the upstream's refusal, in Relay's words
        client.audio.transcriptions.create(model="whisper-1", file=("a.txt", audio))
    assert caught.value.body["param"] == "file"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", audio), response_format="json", timestamp_granularities=["word"]
        )
    assert caught.value.body["param"] == "timestamp_granularities"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.audio.transcriptions.create(model="no-such-model", file=("a.wav", audio))


def test_an_upload_over_the_limit_is_a_413(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=("big.wav", b"\x00" * (MAX_UPLOAD + 1)))
    assert caught.value.status_code == 413


def test_the_hold_covers_the_uploads_seconds(relay_url: str, client: openai.OpenAI) -> None:
    poor = openai.OpenAI(base_url=f"{relay_url}/v1", api_key=POOR_KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        poor.audio.transcriptions.create(model="whisper-1", file=("a.wav", spoken(client, "Too dear")))
    assert caught.value.status_code == 402


# ---- what each request costs -----------------------------------------------------------------------


def test_each_request_costs_its_characters_or_seconds(upstream: str, tmp_path: Path) -> None:
    store = tmp_path / "relay.db"
    path = tmp_path / "relay.toml"
    path.write_text(relay_toml(upstream, store))
    wav = audio_wav.wav("Hello there", 1.0)  # 0.72 s
    wav_seconds = audio_length.wav_seconds(wav) or 0.0
    mp3 = bytes(range(256)) * 125  # 32,000 bytes: two seconds at 16,000 bytes a second
    micros = 1_000_000
    expected: list[tuple[str, int]] = []
    with process("serve", "--config", str(path)) as (_, address):
        client = openai.OpenAI(base_url=f"http://{address}/v1", api_key=KEY, max_retries=0)
        spoken(client, "Hello there")
        expected.append(("tts-1", round(11 * CHARACTER * micros)))
        events = speech_events(f"http://{address}", "Counted events")
        done = json.loads(events[-1][6:])["usage"]
        tokens = done["input_tokens"] * TTS_INPUT + done["output_tokens"] * TTS_OUTPUT
        expected.append(("gpt-4o-mini-tts", round(tokens + 14 * CHARACTER * micros)))
        spoken(client, "Renamed voice", model="house-voice")
        expected.append(("house-voice", round(13 * CHARACTER * 2 * micros)))
        client.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav))  # usage: 1 s (rounded up)
        expected.append(("whisper-1", round(1 * SECOND * micros)))
        client.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav), response_format="text")
        expected.append(("whisper-1", round(wav_seconds * SECOND * micros)))  # the WAV header: 0.72 s
        client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", mp3), response_format="text")
        expected.append(("whisper-1", round(2 * SECOND * micros)))  # the size: 2 s
        client.audio.translations.create(model="whisper-1", file=("a.mp3", mp3), response_format="vtt")
        expected.append(("whisper-1", round(2 * SECOND * micros)))  # the last cue's end: 2 s
        list(client.audio.transcriptions.create(model="house-ears", file=("a.wav", wav), stream=True))
        heard, said = math.ceil(wav_seconds * 10), math.ceil(len("Hello there") / 4)  # the mock's tokens
        tokens = heard * EARS_INPUT + said * EARS_OUTPUT
        expected.append(("house-ears", round(tokens + wav_seconds * EARS_SECOND * micros)))
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT requested_model, cost_micros, status FROM request_log WHERE key_name = 'audio' ORDER BY id"
        ).fetchall()
    assert [(model, cost) for model, cost, _ in rows] == expected
    assert {status for _, _, status in rows} == {200}

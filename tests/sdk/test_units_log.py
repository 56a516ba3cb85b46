"""The units beside tokens in the request log and the daily totals, through ``relay serve`` in front of
``relay mock-upstream``, with the official SDKs: an image request (``images``, the size it was priced at),
speech (``characters``), a transcription (``seconds``), and Gemini's image output through ``generateContent``
and ``streamGenerateContent`` (``images`` beside its tokens, the per-image price), each row's cost, and the
day's totals summing them. On SQLite, and on PostgreSQL (the recorder's ``unnest`` writer) when
RELAY_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import trio
from google import genai
from google.genai import types

from relay.endpoints import audio_length
from relay.mock import png
from relay.mock.wire_images import GEMINI_IMAGE_TOKENS
from relay.store.records import DailyTotal, LogRecord, daily, day_of
from tests.conftest import KEY, postgres_schema, process
from tests.gateway_e2e.conftest import logs, post, read
from tests.helpers import MOCK_ARGS

SMALL_KEY = "sk-relay-units-small"
#: Credits the small key has: a Gemini text answer, not one image (GEMINI_IMAGE) beside it.
SMALL_QUOTA = 0.02

DALLE2 = "dall-e-2"
GEMINI = "gem-image-1"  # the gemini channel knows it as gemini-2.5-flash-image
#: Credits per image, per image of 256x256, per character, per second.
DALLE2_IMAGE, DALLE2_256 = 0.02, 0.016
TTS_CHARACTER = 0.001
WHISPER_SECOND = 0.01
GEMINI_IMAGE = 0.039
#: Credits per million tokens (micro-credits per token).
GEMINI_INPUT, GEMINI_OUTPUT = 1, 30


def relay_toml(upstream: str, store: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
key_refresh = 0.2
log_interval = 0.05

[routing]
key_rest = 0.001
breaker_failures = 1000

[[prices]]
model = "{DALLE2}"
image = {DALLE2_IMAGE}
image_sizes = {{ "256x256" = {DALLE2_256} }}

[[prices]]
model = "tts-1"
character = {TTS_CHARACTER}

[[prices]]
model = "whisper-1"
second = {WHISPER_SECOND}

[[prices]]
model = "gem-image-*"
input = {GEMINI_INPUT}
output = {GEMINI_OUTPUT}
image = {GEMINI_IMAGE}

[[channels]]
name = "oai"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream-oai"
models = ["{DALLE2}", "tts-1", "whisper-1"]

[[channels]]
name = "gem"
type = "gemini"
base_url = "{upstream}"
api_key = "sk-upstream-gem"
models = ["gem-image-*"]
[channels.model_map]
"{GEMINI}" = "gemini-2.5-flash-image"

[[keys]]
name = "units"
key = "{KEY}"

[[keys]]
name = "small"
key = "{SMALL_KEY}"
quota = {SMALL_QUOTA}
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(Relay's base URL, its store URL, its relay.toml): ``relay serve`` in front of ``relay mock-upstream``,
    on each backend."""
    root = tmp_path_factory.mktemp("units")
    if request.param == "postgresql":
        with postgres_schema("relay_units") as store:
            yield from _serve(root, store)
    else:
        yield from _serve(root, f"sqlite:///{root}/relay.db")


def _serve(root: Path, store: str) -> Iterator[tuple[str, str, Path]]:
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", store))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}", store, path


@pytest.fixture(scope="module")
def url(served: tuple[str, str, Path]) -> str:
    return served[0]


@pytest.fixture(scope="module")
def store(served: tuple[str, str, Path]) -> str:
    return served[1]


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def gemini(url: str) -> genai.Client:
    options = types.HttpOptions(base_url=url, api_version="v1beta", timeout=10_000)
    return genai.Client(api_key=KEY, vertexai=False, http_options=options)


async def row(store: str, request_id: str) -> LogRecord:
    """The request log's row of ``request_id``, once the recorder wrote it."""
    for _ in range(100):
        found = {r.request_id: r for r in await logs(store, 1)}
        if request_id in found:
            return found[request_id]
        await trio.sleep(0.05)
    raise AssertionError(f"{request_id} not in the request log")


def micros(credits: float) -> int:
    return round(credits * 1_000_000)


def gemini_cost(record: LogRecord, images: int) -> int:
    return record.input_tokens * GEMINI_INPUT + record.output_tokens * GEMINI_OUTPUT + micros(images * GEMINI_IMAGE)


def units(record: LogRecord) -> tuple[int, str | None, float, int, int]:
    return (record.images, record.image_size, record.seconds, record.characters, record.request_units)


async def test_an_image_request_logs_its_images_and_their_size(client: openai.OpenAI, store: str) -> None:
    raw = client.images.with_raw_response.generate(model=DALLE2, prompt="a blue whale", n=2, size="256x256")
    assert len(raw.parse().data or []) == 2
    record = await row(store, raw.headers["x-request-id"])
    assert units(record) == (2, "256x256", 0, 0, 0)
    assert (record.input_tokens, record.output_tokens) == (0, 0)
    assert record.cost_micros == micros(2 * DALLE2_256)
    raw = client.images.with_raw_response.generate(model=DALLE2, prompt="a blue whale", size="1024x1024")
    record = await row(store, raw.headers["x-request-id"])
    assert units(record) == (1, "1024x1024", 0, 0, 0) and record.cost_micros == micros(DALLE2_IMAGE)


async def test_speech_and_a_transcription_log_characters_and_seconds(client: openai.OpenAI, store: str) -> None:
    text = "Counted, character by character."
    raw = client.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input=text, response_format="wav")
    audio = raw.content
    record = await row(store, raw.headers["x-request-id"])
    assert units(record) == (0, None, 0, len(text), 0)
    assert record.cost_micros == micros(len(text) * TTS_CHARACTER)
    raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=("speech.wav", audio))
    assert raw.parse().text
    record = await row(store, raw.headers["x-request-id"])
    length = audio_length.wav_seconds(audio)
    assert length is not None and length > 1
    assert record.seconds == pytest.approx(length, abs=1)  # what the upstream billed, or the WAV's length
    assert (record.images, record.characters, record.request_units) == (0, 0, 0)
    assert record.cost_micros == micros(record.seconds * WHISPER_SECOND)


def _images(answer: types.GenerateContentResponse) -> list[bytes]:
    parts = answer.candidates[0].content.parts if answer.candidates and answer.candidates[0].content else None
    return [p.inline_data.data for p in parts or () if p.inline_data is not None and p.inline_data.data]


def _request_id(answer: types.GenerateContentResponse) -> str:
    response = answer.sdk_http_response
    assert response is not None and response.headers is not None
    return response.headers["x-request-id"]


async def test_gemini_image_output_is_billed_per_image(gemini: genai.Client, store: str) -> None:
    answer = gemini.models.generate_content(
        model=GEMINI, contents="a red fox", config=types.GenerateContentConfig(response_modalities=["IMAGE"])
    )
    assert _images(answer) == [png.png("gemini|gemini-2.5-flash-image|a red fox")]
    record = await row(store, _request_id(answer))
    assert record.route.endswith(":generateContent") and record.channel == "gem"
    assert units(record) == (1, None, 0, 0, 0)
    assert record.output_tokens == GEMINI_IMAGE_TOKENS
    assert record.cost_micros == gemini_cost(record, 1)
    text = gemini.models.generate_content(model=GEMINI, contents="a red fox")  # no IMAGE asked: tokens only
    assert not _images(text) and text.text
    record = await row(store, _request_id(text))
    assert record.images == 0 and record.cost_micros == gemini_cost(record, 0) > 0


async def test_gemini_image_output_streamed_is_billed_per_image(gemini: genai.Client, store: str) -> None:
    config = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
    chunks = list(gemini.models.generate_content_stream(model=GEMINI, contents="a grey owl", config=config))
    assert len(chunks) == 2 and chunks[0].text == "Here is: a grey owl"
    assert _images(chunks[1]) == [png.png("gemini|gemini-2.5-flash-image|a grey owl")]
    record = await row(store, _request_id(chunks[0]))
    assert record.stream and units(record) == (1, None, 0, 0, 0)
    assert record.output_tokens > GEMINI_IMAGE_TOKENS and record.cost_micros == gemini_cost(record, 1)


async def test_gemini_image_output_in_a_json_array_stream_is_billed_per_image(url: str, store: str) -> None:
    body = {"contents": [{"parts": [{"text": "a green frog"}]}], "generationConfig": {"responseModalities": ["IMAGE"]}}
    answer = await post(
        url,
        f"/v1beta/models/{GEMINI}:streamGenerateContent",
        json.dumps(body).encode(),
        key=None,
        headers={"x-goog-api-key": KEY},
    )
    assert answer.status == 200, answer.body
    [chunk] = answer.json()
    data = chunk["candidates"][0]["content"]["parts"][0]["inlineData"]["data"]
    assert base64.b64decode(data) == png.png("gemini|gemini-2.5-flash-image|a green frog")
    record = await row(store, answer.headers[b"x-request-id"].decode())
    assert units(record) == (1, None, 0, 0, 0) and record.cost_micros == gemini_cost(record, 1)


async def test_the_hold_covers_the_images_a_gemini_request_asks_for(url: str) -> None:
    """The small key's quota covers a short Gemini answer's tokens, not an image beside them: refused up front,
    in Gemini's error shape."""

    async def ask(modalities: list[str]) -> Any:
        body = {
            "contents": [{"parts": [{"text": "a small cat"}]}],
            "generationConfig": {"responseModalities": modalities, "maxOutputTokens": 100},
        }
        return await post(
            url,
            f"/v1beta/models/{GEMINI}:generateContent",
            json.dumps(body).encode(),
            key=None,
            headers={"x-goog-api-key": SMALL_KEY},
        )

    refused = await ask(["IMAGE"])
    assert refused.status == 402, refused.body
    error = refused.json()["error"]
    assert set(error) == {"code", "message", "status"} and error["code"] == 402
    assert "quota" in error["message"]
    text = await ask(["TEXT"])
    assert text.status == 200, text.body


async def test_the_days_totals_sum_the_units_of_the_log(store: str) -> None:
    """Run last in the module: the key's requests of today, row by row and in the daily totals, agree."""
    records = [r for r in await logs(store, 1) if r.key_name == "units"]
    assert {r.route for r in records} >= {"/v1/images/generations", "/v1/audio/speech"}
    today = {day_of(r.time) for r in records}
    totals: list[DailyTotal] = await read(store, lambda tx: [t for t in daily(tx) if t.key_name == "units"])
    assert {t.day for t in totals} == today
    for model in {r.requested_model for r in records}:
        rows = [r for r in records if r.requested_model == model]
        [total] = [t for t in totals if t.model == model]
        assert total.requests == len(rows)
        assert total.images == sum(r.images for r in rows)
        assert total.seconds == pytest.approx(sum(r.seconds for r in rows))
        assert total.characters == sum(r.characters for r in rows)
        assert total.request_units == sum(r.request_units for r in rows)
        assert total.cost_micros == sum(r.cost_micros for r in rows)
    by_model = {t.model: t for t in totals}
    assert by_model[DALLE2].images == 3 and by_model["tts-1"].characters > 0 and by_model["whisper-1"].seconds > 1
    assert by_model[GEMINI].images == 3  # an answer, an SSE stream, a JSON array stream: one image each


def test_keys_show_has_the_days_units(served: tuple[str, str, Path]) -> None:
    """``relay keys show`` (an admin reader of the daily totals) shows today's units beside the tokens."""
    argv = [sys.executable, "-m", "relay", "keys", "--config", str(served[2]), "show", "units"]
    shown = subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=30, check=True)
    today = json.loads(shown.stdout)["today"]
    assert today["images"] == 6 and today["characters"] > 0 and today["seconds"] > 1
    assert set(today) >= {"requests", "errors", "input_tokens", "request_units", "cost_micros"}
    text = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    line = next(line for line in text.splitlines() if line.startswith("today ("))
    assert "images 6" in line and "request units 0" in line and "cost" not in line

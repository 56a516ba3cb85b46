"""The shipped relay.toml answers every API without a provider key: each one once, through the official SDKs,
against ``relay serve`` on that file (its store moved to a temporary folder, its port to a free one)."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from tests.conftest import ROOT, process

KEY = "sk-relay-dev"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("shipped")
    text = (ROOT / "relay.toml").read_text(encoding="utf-8")
    assert 'url = "sqlite:///relay.db"' in text and 'listen = "127.0.0.1:8080"' in text
    text = text.replace('url = "sqlite:///relay.db"', f'url = "sqlite:///{folder / "relay.db"}"')
    config = Path(folder / "relay.toml")
    config.write_text(text, encoding="utf-8")
    with process("serve", "--config", str(config), "--listen", "127.0.0.1:0") as (_, address):
        yield f"http://{address}"


@pytest.fixture
def client(shipped: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=shipped + "/v1", api_key=KEY, max_retries=0)


def test_embeddings_completions_and_moderations(client: openai.OpenAI, shipped: str) -> None:
    vector = client.embeddings.create(model="mock-embed", input="hello").data[0].embedding
    assert len(vector) > 1 and all(isinstance(x, float) for x in vector)
    assert client.completions.create(model="mock-1", prompt="Say hi", max_tokens=8).choices[0].text
    assert client.completions.create(model="mock-claude-1", prompt="Say hi", max_tokens=8).choices[0].text
    moderation = client.moderations.create(input="hello")  # the default model, served by the mock channel
    assert moderation.results[0].flagged is False
    gemini = genai.Client(api_key=KEY, http_options=genai_types.HttpOptions(base_url=shipped))
    embedded = gemini.models.embed_content(model="mock-gemini-embed", contents="hello")
    assert embedded.embeddings and embedded.embeddings[0].values


def test_rerank(shipped: str) -> None:
    answer = httpx.post(
        shipped + "/v1/rerank",
        headers={"authorization": f"Bearer {KEY}"},
        json={"model": "mock-rerank", "query": "cat", "documents": ["a dog", "a cat"]},
    )
    assert answer.status_code == 200, answer.text
    assert [r["index"] for r in answer.json()["results"]] == [1, 0]


def test_images_and_audio(client: openai.OpenAI) -> None:
    image = client.images.generate(prompt="a lighthouse", response_format="b64_json")  # dall-e-2 by default
    assert image.data and image.data[0].b64_json
    speech = client.audio.speech.create(model="mock-tts", input="hello there", voice="alloy", response_format="wav")
    audio = speech.read()
    with wave.open(io.BytesIO(audio)) as wav:
        assert wav.getnframes() > 0
    text = client.audio.transcriptions.create(model="mock-whisper", file=("speech.wav", audio, "audio/wav"))
    assert text.text == "hello there"


def test_stateful_responses_files_and_batches(client: openai.OpenAI) -> None:
    first = client.responses.create(model="mock-claude-1", input="remember 42")
    second = client.responses.create(model="mock-claude-1", input="and now?", previous_response_id=first.id)
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens  # the first turn went up again
    assert client.responses.retrieve(first.id).id == first.id
    assert [item.type for item in client.responses.input_items.list(second.id)]
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    line = b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"mock-1","messages":[]}}'
    uploaded = client.files.create(file=("batch.jsonl", line + b"\n"), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.retrieve(batch.id).id == batch.id

"""``/v1/models`` lists concrete names for channels that serve globs: ``model_map`` keys, ``list_models`` and
exact names, never a glob; on the shipped relay.toml, through the official SDKs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from relay.config import loads
from relay.gateway.routing import listed_models
from tests.conftest import process

ROOT = Path(__file__).resolve().parent.parent
#: relay.toml's only key.
SHIPPED_KEY = "sk-relay-dev"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``relay serve`` on a copy of the shipped relay.toml (its SQLite store beside the copy)."""
    folder = tmp_path_factory.mktemp("shipped")
    config = folder / "relay.toml"
    config.write_text((ROOT / "relay.toml").read_text())
    with process("serve", "--config", str(config), "--listen", "127.0.0.1:0") as (_, address):
        yield f"http://{address}"


def test_openai_sdk_lists_the_shipped_models_by_name(shipped):
    client = openai.OpenAI(base_url=f"{shipped}/v1", api_key=SHIPPED_KEY)
    names = [model.id for model in client.models.list()]
    assert names == [
        "mock-claude",
        "mock-gemini",
        "fast",
        "mock-1",
        "dall-e-2",
        "dall-e-3",
        "gpt-image-1",
        "omni-moderation-latest",
        "web-search",  # the mock search engine's (/v1/search)
    ]
    assert not any(ch in name for name in names for ch in "*?[")
    owners = {model.id: model.owned_by for model in client.models.list()}
    assert owners["mock-claude"] == "mock" and owners["fast"] == "mock"
    assert client.models.retrieve("mock-gemini").id == "mock-gemini"


def test_every_listed_model_answers(shipped):
    client = openai.OpenAI(base_url=f"{shipped}/v1", api_key=SHIPPED_KEY)
    for name in ("mock-claude", "mock-gemini", "fast", "mock-1"):
        reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content


def test_anthropic_sdk_sees_the_same_list(shipped):
    client = anthropic.Anthropic(base_url=shipped, api_key=SHIPPED_KEY)
    names = [model.id for model in client.models.list(limit=100)]
    assert names[:4] == ["mock-claude", "mock-gemini", "fast", "mock-1"]


def test_a_key_limited_to_some_models_sees_only_those(tmp_path):
    text = (ROOT / "relay.toml").read_text().replace('models = ["*"]', 'models = ["mock-claude*", "fast"]')
    config = tmp_path / "relay.toml"
    config.write_text(text)
    with process("serve", "--config", str(config), "--listen", "127.0.0.1:0") as (_, address):
        client = openai.OpenAI(base_url=f"http://{address}/v1", api_key=SHIPPED_KEY)
        assert [model.id for model in client.models.list()] == ["mock-claude", "fast"]


def test_listing_order_and_duplicates():
    config = loads(
        """
[[channels]]
name = "a"
type = "mock"
models = ["x-1", "x-*"]
list_models = ["x-2", "x-1"]
model_map = { alias = "x-9" }
[[channels]]
name = "b"
type = "mock"
models = ["x-*"]
list_models = ["x-2", "x-3"]
"""
    )
    assert listed_models(config.channels) == ["alias", "x-2", "x-1", "x-3"]

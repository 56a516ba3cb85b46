"""The shipped relay.toml demonstrates Realtime and Live with no key of a provider: its in-process mock channels
answer ``mock-realtime`` (OpenAI's SDK) and ``mock-gemini-live`` (google-genai), billed at its mock prices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.conftest import ROOT, process
from tests.realtime.test_live_sdk import converse

SHIPPED_KEY = "sk-relay-dev"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("shipped_realtime")
    config = folder / "relay.toml"
    config.write_text((ROOT / "relay.toml").read_text().replace("sqlite:///relay.db", f"sqlite:///{folder}/relay.db"))
    with process("serve", "--config", str(config), "--listen", "127.0.0.1:0") as (_, address):
        yield address


def test_the_shipped_config_speaks_realtime(shipped: str) -> None:
    client = OpenAI(api_key=SHIPPED_KEY, base_url=f"http://{shipped}/v1", max_retries=0)
    with client.realtime.connect(model="mock-realtime", max_retries=0) as conn:
        assert conn.recv().type == "session.created"
        conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "demo"}]}
        conn.conversation.item.create(item=item)
        conn.response.create()
        text = ""
        for event in conn:
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.done":
                break
    assert text == "Echo: demo" and event.response.usage.output_tokens > 0


def test_the_shipped_config_speaks_live(shipped: str) -> None:
    [answer] = converse(shipped, SHIPPED_KEY, "mock-gemini-live", ["demo"])
    assert answer["text"] == "Echo: demo" and answer["usage"].response_token_count > 0

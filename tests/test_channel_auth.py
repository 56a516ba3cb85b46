"""Each channel type sends its key the way its provider wants it, to the path its provider's SDK would use."""

import httpx
import pytest

from relay.mock.server import MockUpstream
from tests.conftest import KEY, config_from, serve_app, serve_relay

UPSTREAM_KEY = "sk-upstream-secret"


def channels(base_url: str, key: str) -> str:
    return f"""
[[channels]]
name = "openai"
type = "openai"
base_url = "{base_url}/v1"
api_key = "{key}"
models = ["chat-1"]

[[channels]]
name = "responses"
type = "openai"
api = "responses"
base_url = "{base_url}/v1"
api_key = "{key}"
models = ["resp-1"]

[[channels]]
name = "anthropic"
type = "anthropic"
base_url = "{base_url}"
api_key = "{key}"
models = ["claude-1"]

[[channels]]
name = "gemini"
type = "gemini"
base_url = "{base_url}"
api_key = "{key}"
models = ["gemini-1"]

[[keys]]
name = "test"
key = "{KEY}"
"""


@pytest.mark.parametrize("model", ["chat-1", "resp-1", "claude-1", "gemini-1"])
async def test_each_provider_gets_its_key_in_its_header(model):
    async with serve_app(MockUpstream(api_key=UPSTREAM_KEY)) as up:
        async with serve_relay(config_from(channels(up.url, UPSTREAM_KEY))) as relay:
            async with httpx.AsyncClient(base_url=relay.url) as client:
                body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
                ok = await client.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"})
        async with serve_relay(config_from(channels(up.url, "sk-wrong-key"))) as relay:
            async with httpx.AsyncClient(base_url=relay.url) as client:
                refused = await client.post(
                    "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
                )
    assert ok.status_code == 200, ok.text
    assert ok.json()["choices"][0]["message"]["content"] == "Echo: hi"
    # the mock checks Bearer (OpenAI), x-api-key (Anthropic), x-goog-api-key (Gemini): a wrong one is refused,
    # and the refusal reaches the client in its own shape as a 502 (its own Relay key is fine)
    assert refused.status_code == 502
    assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
    assert refused.json()["error"]["code"] == "upstream_auth_failed"

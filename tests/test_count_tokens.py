"""Token counts: converted to the channel's counting endpoint, passed through on the same API, estimated without one."""

import httpx
import orjson

from relay.dialects import estimate, ir
from relay.http.messages import Response
from tests.conftest import KEY, config_from, serve_app, serve_relay
from tests.helpers import Upstream

HEADERS = {"authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}
MESSAGES = [{"role": "user", "content": "How many tokens is this sentence, roughly?"}]


def channel_toml(base_url: str) -> str:
    return f"""
[[channels]]
name = "compatible"
type = "openai"
base_url = "{base_url}/v1"
models = ["local-*"]
[channels.model_map]
alias = "local-1"

[[keys]]
name = "test"
key = "{KEY}"
"""


async def test_an_upstream_without_a_counting_endpoint_gets_an_estimate():
    async def not_found(request, out):
        return Response.json(404, {"error": {"message": "no such route", "type": "invalid_request_error"}})

    upstream = Upstream(not_found)
    async with serve_app(upstream) as up, serve_relay(config_from(channel_toml(up.url))) as relay:
        async with httpx.AsyncClient(base_url=relay.url) as client:
            claude = await client.post(
                "/v1/messages/count_tokens", headers=HEADERS, json={"model": "local-1", "messages": MESSAGES}
            )
            gemini = await client.post(
                "/v1beta/models/local-1:countTokens",
                headers=HEADERS,
                json={"contents": [{"role": "user", "parts": [{"text": MESSAGES[0]["content"]}]}]},
            )
    expected = estimate.input_tokens(
        ir.Request("local-1", (), (ir.Message("user", (ir.Text(MESSAGES[0]["content"]),)),))
    )
    assert claude.status_code == 200 and claude.json() == {"input_tokens": expected}
    assert gemini.status_code == 200
    assert gemini.json()["totalTokens"] == expected
    # it asked the upstream first, at OpenAI's counting endpoint, with the request converted
    assert [r.path for r in upstream.requests] == ["/v1/responses/input_tokens"] * 2
    asked = orjson.loads(upstream.requests[0].body)
    assert asked["model"] == "local-1" and asked["input"][0]["role"] == "user"


async def test_same_api_count_passes_through_with_the_alias_renamed():
    async def count(request, out):
        return Response.json(200, {"object": "response.input_tokens", "input_tokens": 42, "extra": "kept"})

    upstream = Upstream(count)
    async with serve_app(upstream) as up, serve_relay(config_from(channel_toml(up.url))) as relay:
        async with httpx.AsyncClient(base_url=relay.url) as client:
            body = {"model": "alias", "input": "hi", "tools": [{"type": "web_search"}]}
            counted = await client.post("/v1/responses/input_tokens", headers=HEADERS, json=body)
    assert counted.json() == {"object": "response.input_tokens", "input_tokens": 42, "extra": "kept"}
    sent = orjson.loads(upstream.requests[0].body)
    assert sent == {**body, "model": "local-1"}  # a built-in tool passes: the upstream is OpenAI's own API


async def test_upstream_count_error_comes_back_in_the_client_shape():
    async def busy(request, out):
        return Response.json(503, {"error": {"message": "busy", "type": "server_error"}}, [(b"retry-after", b"3")])

    async with serve_app(Upstream(busy)) as up, serve_relay(config_from(channel_toml(up.url))) as relay:
        async with httpx.AsyncClient(base_url=relay.url) as client:
            claude = await client.post(
                "/v1/messages/count_tokens", headers=HEADERS, json={"model": "local-1", "messages": MESSAGES}
            )
    assert claude.status_code == 503
    assert claude.headers["retry-after"] == "3"
    assert claude.json()["type"] == "error" and claude.json()["error"]["message"] == "the upstream is unavailable (503)"

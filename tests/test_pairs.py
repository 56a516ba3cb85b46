"""Every client API against every upstream API through Relay: whole answers, streams, truncated streams, usage.

Relay is served on a loopback socket; its four channels are mock upstreams speaking Chat Completions,
Responses, Anthropic and Gemini. Each pair is checked on the wire, in the client's own grammar.
"""

import logging

import httpx
import orjson
import pytest

from relay.config import loads
from relay.http.sse import Parser
from tests.conftest import KEY, serve_relay

CONFIG = f"""
[server]
access_log = true

[[channels]]
name = "chat"
type = "mock"
api = "chat"
models = ["chat-1"]

[[channels]]
name = "responses"
type = "mock"
api = "responses"
models = ["resp-1"]

[[channels]]
name = "claude"
type = "mock"
models = ["claude-1"]
[channels.mock]
dialect = "anthropic"

[[channels]]
name = "gemini"
type = "mock"
models = ["gemini-1"]
[channels.mock]
dialect = "gemini"

[[keys]]
name = "test"
key = "{KEY}"
"""
UPSTREAMS = ["chat-1", "resp-1", "claude-1", "gemini-1"]
CLIENTS = ["openai_chat", "openai_responses", "anthropic", "gemini"]
HEADERS = {"authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}


@pytest.fixture
async def relay():
    async with serve_relay(loads(CONFIG)) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        yield client


def request(client: str, model: str, text: str, stream: bool) -> tuple[str, dict]:
    if client == "openai_chat":
        body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return "/v1/chat/completions", body
    if client == "openai_responses":
        return "/v1/responses", {"model": model, "input": text, "stream": stream}
    if client == "anthropic":
        body = {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}], "stream": stream}
        return "/v1/messages", body
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{action}", {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def answer_text(client: str, body: dict) -> str:
    if client == "openai_chat":
        return body["choices"][0]["message"]["content"]
    if client == "openai_responses":
        return "".join(c["text"] for item in body["output"] if item["type"] == "message" for c in item["content"])
    if client == "anthropic":
        return "".join(block["text"] for block in body["content"] if block["type"] == "text")
    return "".join(p.get("text", "") for p in body["candidates"][0]["content"]["parts"] if not p.get("thought"))


def streamed(client: str, raw: bytes) -> tuple[str, bool, bool]:
    """The text a client reads from a stream, whether it ended with its terminal event, whether with an error."""
    events = Parser().feed(raw)
    text, terminal, error = "", False, False
    for event in events:
        if event.data == b"[DONE]":
            terminal = True
            continue
        data = orjson.loads(event.data)
        if client == "openai_chat":
            error = error or "error" in data
            for choice in data.get("choices", []):
                text += choice["delta"].get("content") or ""
        elif client == "openai_responses":
            error = error or event.name == b"error"
            terminal = terminal or event.name == b"response.completed"
            if event.name == b"response.output_text.delta":
                text += data["delta"]
        elif client == "anthropic":
            error = error or event.name == b"error"
            terminal = terminal or event.name == b"message_stop"
            if event.name == b"content_block_delta" and data["delta"]["type"] == "text_delta":
                text += data["delta"]["text"]
        else:
            error = error or "error" in data
            candidate = (data.get("candidates") or [{}])[0]
            terminal = terminal or "finishReason" in candidate
            parts = candidate.get("content", {}).get("parts", [])
            text += "".join(p.get("text", "") for p in parts if not p.get("thought"))
    return text, terminal, error


@pytest.mark.parametrize("model", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_whole_answer(relay, client, model, caplog):
    caplog.set_level(logging.INFO, "relay.access")
    path, body = request(client, model, "hello there", stream=False)
    response = await relay.post(path, json=body, headers=HEADERS)
    assert response.status_code == 200, response.text
    assert answer_text(client, response.json()) == "Echo: hello there"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "relay.access"]
    assert "tokens=-" not in line and " 200 " in line  # usage read on the way, converted or passed through


@pytest.mark.parametrize("model", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_stream(relay, client, model, caplog):
    caplog.set_level(logging.INFO, "relay.access")
    path, body = request(client, model, "hello there mock:chunks=5", stream=True)
    response = await relay.post(path, json=body, headers=HEADERS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    text, terminal, error = streamed(client, response.content)
    assert (text, terminal, error) == ("Echo: hello there mock:chunks=5", True, False)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "relay.access"]
    assert "tokens=-" not in line


@pytest.mark.parametrize("model", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_truncated_stream_is_an_error_in_the_client_dialect(relay, client, model):
    prompt = "a longer answer, cut mock:chunks=10 mock:drop_after=6"
    path, body = request(client, model, prompt, stream=True)
    response = await relay.post(path, json=body, headers=HEADERS)
    assert response.status_code == 200, response.text
    text, terminal, error = streamed(client, response.content)
    assert error and not terminal
    assert text and f"Echo: {prompt}".startswith(text) and text != f"Echo: {prompt}"


@pytest.mark.parametrize("model", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_upstream_error_keeps_its_status_in_the_client_dialect(relay, client, model):
    path, body = request(client, model, "fail please mock:status=429", stream=False)
    response = await relay.post(path, json=body, headers=HEADERS)
    assert response.status_code == 429
    payload = response.json()
    if client == "anthropic":
        assert payload["type"] == "error" and payload["error"]["type"] == "rate_limit_error"
    elif client == "gemini":
        assert payload["error"]["code"] == 429 and payload["error"]["status"] == "RESOURCE_EXHAUSTED"
    else:
        assert payload["error"]["type"] and payload["error"]["message"]


async def test_gemini_array_stream_passthrough_and_converted(relay):
    for model in UPSTREAMS:
        body = {"contents": [{"role": "user", "parts": [{"text": "array please mock:chunks=4"}]}]}
        response = await relay.post(f"/v1beta/models/{model}:streamGenerateContent", json=body, headers=HEADERS)
        assert response.status_code == 200, (model, response.text)
        assert response.headers["content-type"].startswith("application/json")
        elements = orjson.loads(response.content)
        text = "".join(p.get("text", "") for e in elements for p in e["candidates"][0]["content"]["parts"])
        assert text == "Echo: array please mock:chunks=4", model
        assert "finishReason" in elements[-1]["candidates"][0]


@pytest.mark.parametrize("model", UPSTREAMS)
async def test_truncated_gemini_array_stream_ends_with_an_error_element(relay, model):
    body = {"contents": [{"role": "user", "parts": [{"text": "cut me mock:chunks=10 mock:drop_after=6"}]}]}
    response = await relay.post(f"/v1beta/models/{model}:streamGenerateContent", json=body, headers=HEADERS)
    assert response.status_code == 200
    elements = orjson.loads(response.content)  # still one well-formed JSON array
    assert elements[-1]["error"]["code"] == 502 and elements[-1]["error"]["status"] == "UNAVAILABLE"
    assert all("finishReason" not in (e.get("candidates") or [{}])[0] for e in elements[:-1])
    assert len(elements) > 1

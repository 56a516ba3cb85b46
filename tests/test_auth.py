"""Keys: every place a client may put one; 401 / 403 / 404 in the OpenAI shape; secrets never logged."""

import json
import logging

import httpx
import pytest

from relay.config import loads
from tests.conftest import serve_relay
from tests.helpers import assert_openai_error, chat, raw_request, relay_with_stderr, write

FULL = "sk-relay-full-0123456789"
NARROW = "sk-relay-narrow-0123456789"
WRONG = "sk-relay-wrong-0123456789"
CONFIG = f"""
[server]
listen = "127.0.0.1:0"
access_log = true

[[channels]]
name = "mock"
type = "mock"
models = ["mock-*"]
[channels.model_map]
fast = "mock-1"

[[keys]]
name = "full-key"
key = "{FULL}"

[[keys]]
name = "narrow-key"
key = "{NARROW}"
models = ["mock-1", "fast"]
"""
BODY = chat("hi", model="mock-1")


@pytest.fixture
async def relay():
    async with serve_relay(loads(CONFIG)) as served, httpx.AsyncClient(base_url=served.url) as client:
        yield client


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"authorization": f"Bearer {FULL}"}, ""),
        ({"authorization": f"bearer   {FULL}"}, ""),
        ({"x-api-key": FULL}, ""),
        ({"x-goog-api-key": FULL}, ""),
        ({}, f"?key={FULL}"),
    ],
    ids=["bearer", "bearer-lowercase", "x-api-key", "x-goog-api-key", "query"],
)
async def test_key_is_accepted_wherever_clients_put_it(relay, headers, query):
    r = await relay.post("/v1/chat/completions" + query, headers=headers, json=BODY)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Echo: hi"
    r = await relay.get("/v1/models" + query, headers=headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("headers", "query", "code"),
    [
        ({}, "", "missing_api_key"),
        ({"authorization": "Bearer"}, "", "missing_api_key"),
        ({"authorization": f"Basic {FULL}"}, "", "missing_api_key"),
        ({"x-api-key": ""}, "?key=", "missing_api_key"),
        ({"authorization": f"Bearer {WRONG}"}, "", "invalid_api_key"),
        ({"x-api-key": WRONG}, "", "invalid_api_key"),
        ({}, f"?key={WRONG}", "invalid_api_key"),
        ({"authorization": f"Bearer {FULL}x"}, "", "invalid_api_key"),
    ],
)
async def test_missing_or_unknown_key_is_401(relay, headers, query, code):
    for method, path, body in (("POST", "/v1/chat/completions", BODY), ("GET", "/v1/models", None)):
        r = await relay.request(method, path + query, headers=headers, json=body)
        assert r.status_code == 401, r.text
        error = assert_openai_error(r.json(), code=code)
        assert error["type"] == "authentication_error"
        assert WRONG not in r.text and FULL not in r.text


async def test_key_is_checked_before_the_body(relay):
    r = await relay.post("/v1/chat/completions", content=b"{not json")
    assert r.status_code == 401
    assert_openai_error(r.json(), code="missing_api_key")


async def test_model_outside_the_allow_list_is_403(relay):
    r = await relay.post("/v1/chat/completions", headers={"x-api-key": NARROW}, json=chat(model="mock-2"))
    assert r.status_code == 403, r.text
    error = assert_openai_error(r.json(), code="model_not_allowed", param="model")
    assert error["type"] == "permission_error"
    assert "mock-2" in error["message"]
    for model in ("mock-1", "fast"):
        r = await relay.post("/v1/chat/completions", headers={"x-api-key": NARROW}, json=chat(model=model))
        assert r.status_code == 200, r.text


async def test_model_no_channel_serves_is_404_naming_it(relay):
    r = await relay.post("/v1/chat/completions", headers={"x-api-key": FULL}, json=chat(model="gpt-nothing"))
    assert r.status_code == 404, r.text
    error = assert_openai_error(r.json(), code="model_not_found", param="model")
    assert "gpt-nothing" in error["message"]


async def test_secret_never_reaches_the_log(caplog):
    # A raw-socket client, so that every log record comes from the relay (httpx would log its URLs).
    caplog.set_level(logging.DEBUG)
    body = json.dumps(BODY).encode()
    async with serve_relay(loads(CONFIG)) as served:
        for headers, query in (
            ({"authorization": f"Bearer {FULL}"}, ""),
            ({"x-api-key": FULL}, ""),
            ({"x-goog-api-key": NARROW}, ""),
            ({}, f"?key={FULL}"),
            ({}, f"?key={WRONG}"),
            ({"authorization": f"Bearer {WRONG}"}, ""),
        ):
            r = await raw_request(served.url, "POST", "/v1/chat/completions" + query, headers=headers, body=body)
            assert r.status in (200, 401)
            await raw_request(served.url, "GET", "/v1/models/mock-1" + query, headers=headers)
        bad = json.dumps(chat(model="mock-2")).encode()
        r = await raw_request(served.url, "POST", "/v1/chat/completions", headers={"x-api-key": NARROW}, body=bad)
        assert r.status == 403
    access = [r.getMessage() for r in caplog.records if r.name == "relay.access"]
    assert len(access) == 13
    assert sum("full-key" in line for line in access) == 6  # the key's name is logged
    assert sum("narrow-key" in line for line in access) == 3
    for secret in (FULL, NARROW, WRONG):
        assert secret not in caplog.text
        assert secret.removeprefix("sk-") not in caplog.text


def test_secret_never_reaches_the_log_of_the_process(tmp_path):
    config = write(tmp_path, CONFIG)
    stderr = tmp_path / "stderr.log"
    with relay_with_stderr(config, stderr) as url, httpx.Client(base_url=url) as client:
        assert client.post("/v1/chat/completions", headers={"x-api-key": FULL}, json=BODY).status_code == 200
        assert client.post(f"/v1/chat/completions?key={FULL}", json=BODY).status_code == 200
        assert client.get("/v1/models", headers={"authorization": f"Bearer {NARROW}"}).status_code == 200
        assert client.get("/v1/models", headers={"authorization": f"Bearer {WRONG}"}).status_code == 401
        r = client.post("/v1/chat/completions", headers={"x-api-key": FULL}, content=b"{bad")
        assert r.status_code == 400
    log = stderr.read_text()
    assert log.count("full-key") == 3 and log.count("narrow-key") == 1, log
    for secret in (FULL, NARROW, WRONG):
        assert secret not in log

"""What Relay's answers tell a client about its deployment (issue 9, finding 13).

A pin (``X-Relay-Channel``, ``KEY#CHANNEL``) cannot be used to enumerate channel names: no such channel,
another group's channel and a channel that does not serve the model get one answer. Errors name no
channel (an unknown model, an upstream that cannot be reached or is too slow); the request log does.
``/healthz`` shows its pid and log counters only to callers on the same machine, not through a proxy.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import trio

from relay.endpoints.health import healthz, local_caller
from relay.gateway.tally import Tally
from relay.http.messages import Request, Response, StreamResponse
from tests.conftest import KEY, config_from, serve_app, serve_relay
from tests.gateway_e2e.conftest import chat, logs, post
from tests.helpers import Upstream, raw_request

CHAT = b'{"model":"mock-1","messages":[{"role":"user","content":"x"}]}'


def pins_config(store: str = "sqlite://:memory:") -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
log_interval = 0.05

[[channels]]
name = "public-mock"
type = "mock"
models = ["mock-*"]

[[channels]]
name = "secret-vip-channel"
type = "mock"
models = ["mock-*"]
group = "vip"

[[channels]]
name = "other-models"
type = "mock"
models = ["other-*"]

[[keys]]
name = "test"
key = "{KEY}"
"""


async def test_a_pin_cannot_tell_a_missing_channel_from_a_forbidden_one_or_one_without_the_model():
    async with serve_relay(config_from(pins_config())) as relay:
        answers = [
            await post(relay.url, "/v1/chat/completions", CHAT, headers={"x-relay-channel": "no-such-channel"}),
            await post(relay.url, "/v1/chat/completions", CHAT, headers={"x-relay-channel": "secret-vip-channel"}),
            await post(relay.url, "/v1/chat/completions", CHAT, headers={"x-relay-channel": "other-models"}),
            await chat(relay.url, key=f"{KEY}#no-such-channel"),
            await chat(relay.url, key=f"{KEY}#secret-vip-channel"),
            await chat(relay.url, key=f"{KEY}#other-models"),
        ]
        served = await post(relay.url, "/v1/chat/completions", CHAT, headers={"x-relay-channel": "public-mock"})
    assert served.status == 200
    assert {(a.status, a.body) for a in answers} == {(answers[0].status, answers[0].body)}, [a.body for a in answers]
    assert answers[0].status == 404 and answers[0].json()["error"]["code"] == "channel_not_found"
    for name in ("no-such-channel", "secret-vip-channel", "other-models", "public-mock"):
        assert name.encode() not in answers[0].body


async def test_the_request_log_says_what_was_wrong_with_a_pin(tmp_path: Path):
    store = f"sqlite:///{tmp_path}/relay.db"
    async with serve_relay(config_from(pins_config(store))) as relay:
        await chat(relay.url, key=f"{KEY}#secret-vip-channel")
        (row,) = await logs(store, 1)
    assert "secret-vip-channel" in (row.error_detail or "") and "group" in (row.error_detail or "")


async def test_an_unknown_model_names_no_channel():
    async with serve_relay(config_from(pins_config())) as relay:
        answer = await chat(relay.url, model="gpt-nothing")
    assert answer.status == 404
    for name in ("public-mock", "secret-vip-channel", "other-models"):
        assert name.encode() not in answer.body


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def upstream_config(base: str, store: str, first_byte: float = 5.0) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
log_interval = 0.05

[routing]
max_attempts = 1

[[channels]]
name = "internal-gpu-cluster-7"
type = "openai"
base_url = "{base}/v1"
api_key = "sk-upstream"
models = ["mock-*"]
[channels.timeouts]
connect = 2.0
first_byte = {first_byte}

[[keys]]
name = "test"
key = "{KEY}"
"""


async def test_an_upstream_that_cannot_be_reached_is_not_named_to_the_client(tmp_path: Path):
    store = f"sqlite:///{tmp_path}/relay.db"
    port = closed_port()
    async with serve_relay(config_from(upstream_config(f"http://127.0.0.1:{port}", store))) as relay:
        answer = await chat(relay.url)
        (row,) = await logs(store, 1)
    assert answer.status == 502 and answer.json()["error"]["code"] == "upstream_connect_error"
    assert b"internal-gpu-cluster-7" not in answer.body and str(port).encode() not in answer.body
    assert "internal-gpu-cluster-7" in (row.error_detail or "")


async def test_a_slow_upstream_is_not_named_to_the_client(tmp_path: Path):
    async def slow(request: Request, out: StreamResponse) -> Response:
        await trio.sleep(5)
        return Response.json(200, {})

    store = f"sqlite:///{tmp_path}/relay.db"
    async with (
        serve_app(Upstream(slow)) as up,
        serve_relay(config_from(upstream_config(up.url, store, first_byte=0.2))) as relay,
    ):
        answer = await chat(relay.url)
        (row,) = await logs(store, 1)
    assert answer.status == 504 and answer.json()["error"]["code"] == "upstream_timeout"
    assert b"internal-gpu-cluster-7" not in answer.body
    assert "internal-gpu-cluster-7" in (row.error_detail or "")


# ---- /healthz -----------------------------------------------------------------------------------------------


async def test_healthz_shows_details_on_this_machine_and_the_status_only_through_a_proxy():
    async with serve_relay() as relay:
        local = await raw_request(relay.url, "GET", "/healthz")
        proxied = await raw_request(relay.url, "GET", "/healthz", headers={"x-forwarded-for": "203.0.113.7"})
        forwarded = await raw_request(relay.url, "GET", "/healthz", headers={"forwarded": "for=203.0.113.7"})
    assert local.status == 200 and set(local.json()) == {"status", "pid", "log"}
    assert proxied.status == forwarded.status == 200
    assert json.loads(proxied.body) == json.loads(forwarded.body) == {"status": "ok"}


def probe(client: str) -> Request:
    request = Request("GET", "/healthz", "", [], b"", client)
    request.record = Tally("openai_chat", "/healthz")
    return request


async def test_healthz_shows_the_status_only_to_a_remote_caller():
    answer = await healthz(None, probe("203.0.113.7:40000"), None)  # type: ignore[arg-type]
    assert json.loads(answer.body) == {"status": "ok"}
    assert [local_caller(probe(c)) for c in ("127.0.0.1:1", "[::1]:1", "::ffff:127.0.0.1:1")] == [True] * 3
    assert [local_caller(probe(c)) for c in ("10.0.0.1:1", "[2001:db8::1]:1", "unknown")] == [False] * 3

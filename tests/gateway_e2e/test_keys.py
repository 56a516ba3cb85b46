"""Keys through a served Relay: relay.toml keys, keys made and changed with ``relay keys`` (a subprocess on the
same relay.toml and store) taking effect in the running Relay within ``key_refresh``, and every refusal —
disabled, expired, wrong address, model not allowed, channel pins — with its status and in each dialect's shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from relay.config import load, loads
from tests.conftest import KEY, serve_relay
from tests.gateway_e2e.conftest import (
    chat,
    key_entry,
    logs,
    mock_channel,
    post,
    relay_cli,
    relay_toml,
    write_toml,
)
from tests.helpers import RawResponse

#: key_refresh is 0.2 s in these relay.toml files: a change shows within it (and a poll).
WITHIN = 1.5


def gemini(text: str = "hello") -> bytes:
    return json.dumps({"contents": [{"role": "user", "parts": [{"text": text}]}]}).encode()


def claude(text: str = "hello") -> bytes:
    return json.dumps({"model": "mock-1", "max_tokens": 50, "messages": [{"role": "user", "content": text}]}).encode()


async def in_three_dialects(url: str, key: str) -> tuple[RawResponse, RawResponse, RawResponse]:
    openai = await chat(url, key=key)
    anthropic = await post(
        url, "/v1/messages", claude(), key=None, headers={"x-api-key": key, "anthropic-version": "2023-06-01"}
    )
    google = await post(
        url, "/v1beta/models/mock-1:generateContent", gemini(), key=None, headers={"x-goog-api-key": key}
    )
    return openai, anthropic, google


async def until_status(url: str, key: str, status: int) -> int:
    """Chat with ``key`` until the answer has ``status`` (the running Relay reloads its keys); how many requests
    that took. Fails after WITHIN seconds."""
    sent = 0
    with trio.move_on_after(WITHIN):
        while True:
            response = await chat(url, key=key)
            sent += 1
            if response.status == status:
                return sent
            await trio.sleep(0.02)
    raise AssertionError(f"still {response.status} after {WITHIN}s, expected {status}: {response.body!r}")


def assert_refused(answers: tuple[RawResponse, RawResponse, RawResponse], status: int, code: str) -> None:
    """The same refusal in OpenAI's, Anthropic's and Gemini's shapes."""
    openai, anthropic, google = answers
    assert (openai.status, anthropic.status, google.status) == (status, status, status)
    error: dict[str, Any] = openai.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    assert error["type"] == {401: "authentication_error", 403: "permission_error"}[status]
    body = anthropic.json()
    assert set(body) == {"type", "error"} and body["type"] == "error"
    assert body["error"]["type"] == {401: "authentication_error", 403: "permission_error"}[status]
    # Anthropic's words for a forbidden model name it as Anthropic does ("model: …"; Claude Code reads it)
    prefix = "model: " if code == "model_not_allowed" else ""
    assert body["error"]["message"] == prefix + error["message"]
    assert google.json() == {
        "error": {
            "code": status,
            "message": error["message"],
            "status": {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}[status],
        }
    }


async def test_cli_keys_take_effect_in_the_running_relay(store_url: str, tmp_path: Path) -> None:
    path = write_toml(tmp_path, relay_toml(store_url, channels=mock_channel("mock"), keys=key_entry("test", KEY)))
    async with serve_relay(load(path)) as relay:
        assert (await chat(relay.url)).status == 200  # the relay.toml key
        sent = 1

        made = await relay_cli("keys", "--config", str(path), "create", "alice", "--quota", "100", "--json")
        assert made.returncode == 0, made.stderr
        secret = json.loads(made.stdout)["secret"]
        assert secret.startswith("sk-relay-")
        sent += await until_status(relay.url, secret, 200)
        answers = await in_three_dialects(relay.url, secret)
        assert [a.status for a in answers] == [200, 200, 200], [a.body for a in answers]

        off = await relay_cli("keys", "--config", str(path), "disable", "alice")
        assert off.returncode == 0, off.stderr
        sent += 3 + await until_status(relay.url, secret, 401)
        assert_refused(await in_three_dialects(relay.url, secret), 401, "key_disabled")
        assert (await chat(relay.url)).status == 200  # other keys are not affected
        sent += 4
        refused = sent

        on = await relay_cli("keys", "--config", str(path), "enable", "alice")
        assert on.returncode == 0, on.stderr
        sent += await until_status(relay.url, secret, 200)

        records = await logs(store_url, sent)
        assert len(records) == sent
        assert records[-1].key_name == "alice" and records[-1].status == 200
        assert [r.status for r in records[refused - 4 : refused]] == [401, 401, 401, 200]  # 3 dialects, then "test"


async def test_expired_key_address_and_model_refusals(store_url: str) -> None:
    keys = (
        key_entry("test", KEY)
        + key_entry("old", "sk-relay-expired-key", expires="2020-01-01")
        + key_entry("elsewhere", "sk-relay-elsewhere", ips=["10.0.0.0/8", "::1/128"])
        + key_entry("local", "sk-relay-local-only", ips=["127.0.0.0/8"])
        + key_entry("narrow", "sk-relay-narrow-key", models=["mock-2"])
    )
    async with serve_relay(loads(relay_toml(store_url, channels=mock_channel("mock"), keys=keys))) as relay:
        assert_refused(await in_three_dialects(relay.url, "sk-relay-expired-key"), 401, "key_expired")
        assert_refused(await in_three_dialects(relay.url, "sk-relay-elsewhere"), 403, "ip_not_allowed")
        assert [a.status for a in await in_three_dialects(relay.url, "sk-relay-local-only")] == [200, 200, 200]
        assert_refused(await in_three_dialects(relay.url, "sk-relay-narrow-key"), 403, "model_not_allowed")
        assert (await chat(relay.url, key="sk-relay-narrow-key", model="mock-2")).status == 200
        unknown = await chat(relay.url, key="sk-relay-nobody-has-this")
        assert unknown.status == 401 and unknown.json()["error"]["code"] == "invalid_api_key"
        missing = await chat(relay.url, key=None)
        assert missing.status == 401 and missing.json()["error"]["code"] == "missing_api_key"


async def test_channel_pins_by_key_suffix_and_header(sqlite_url: str) -> None:
    channels = (
        mock_channel("alpha", priority=2)
        + mock_channel("beta", priority=1)
        + mock_channel("gamma", group="vip", priority=3)
    )
    keys = key_entry("test", KEY) + key_entry("vip", "sk-relay-vip-key", group="vip")
    async with serve_relay(loads(relay_toml(sqlite_url, channels=channels, keys=keys))) as relay:
        plain = await chat(relay.url)
        by_suffix = await chat(relay.url, key=f"{KEY}#beta")
        by_header = await post(
            relay.url,
            "/v1/chat/completions",
            b'{"model":"mock-1","messages":[{"role":"user","content":"x"}]}',
            headers={"x-relay-channel": "beta"},
        )
        vip = await chat(relay.url, key="sk-relay-vip-key#gamma")
        assert [r.status for r in (plain, by_suffix, by_header, vip)] == [200, 200, 200, 200]

        other_group = await chat(relay.url, key=f"{KEY}#gamma")
        # another group's channel is refused as a channel that does not exist (names cannot be enumerated)
        assert other_group.status == 404 and other_group.json()["error"]["code"] == "channel_not_found"
        by_header_403 = await post(
            relay.url,
            "/v1/chat/completions",
            b'{"model":"mock-1","messages":[{"role":"user","content":"x"}]}',
            headers={"x-relay-channel": "gamma"},
        )
        assert by_header_403.status == 404 and by_header_403.json()["error"]["code"] == "channel_not_found"
        unknown = await chat(relay.url, key=f"{KEY}#nowhere")
        assert unknown.status == 404 and unknown.json()["error"]["code"] == "channel_not_found"

        records = await logs(sqlite_url, 7)
        assert [(r.key_name, r.status, r.channel) for r in records] == [
            ("test", 200, "alpha"),
            ("test", 200, "beta"),
            ("test", 200, "beta"),
            ("vip", 200, "gamma"),
            ("test", 404, None),
            ("test", 404, None),
            ("test", 404, None),
        ]


async def test_a_refused_known_key_is_named_in_the_request_log(sqlite_url: str) -> None:
    keys = key_entry("old", "sk-relay-expired-key", expires="2020-01-01") + key_entry(
        "elsewhere", "sk-relay-elsewhere", ips=["10.0.0.0/8"]
    )
    async with serve_relay(loads(relay_toml(sqlite_url, channels=mock_channel("mock"), keys=keys))) as relay:
        assert (await chat(relay.url, key="sk-relay-expired-key")).status == 401
        assert (await chat(relay.url, key="sk-relay-elsewhere")).status == 403
        records = await logs(sqlite_url, 2)
        assert [(r.key_name, r.status) for r in records] == [("old", 401), ("elsewhere", 403)]

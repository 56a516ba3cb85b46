"""The admin API's read-only views through ``relay serve`` in front of ``relay mock-upstream``, with httpx:
``/admin/v1/channels`` (configuration, breaker, the request log's window), ``/admin/v1/usage`` and ``usage.csv``
(daily totals by key, model, channel, day) and ``/admin/v1/prices``."""

from __future__ import annotations

import csv
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import process
from tests.helpers import MOCK_ARGS

ADMIN = "sk-admin-views-0123456789"
VIEWER = "sk-viewer-views-0123456789"
ALICE, BOB = "sk-relay-views-alice", "sk-relay-views-bobby"
CHATS = {(ALICE, "chat-1"): 3, (BOB, "chat-2"): 2}
DEAD_CALLS = 2


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def relay_toml(upstream: str, store: str, dead: int) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
log_interval = 0.05

[routing]
breaker_failures = 2
breaker_cooldown = 600

[[channels]]
name = "chat"
type = "openai"
base_url = "http://{upstream}/v1"
api_key = "sk-upstream-chat"
models = ["chat-*"]
priority = 2
weight = 3
group = "default"

[[channels]]
name = "dead"
type = "openai"
base_url = "http://127.0.0.1:{dead}/v1"
api_key = "sk-upstream-dead"
models = ["dead-*"]

[[keys]]
name = "alice"
key = "{ALICE}"

[[keys]]
name = "bob"
key = "{BOB}"

[[prices]]
model = "chat-*"
input = 2.0
output = 8.0
image_sizes = {{ "1024x1024" = 0.04 }}

[[admin_keys]]
name = "root"
key = "{ADMIN}"

[[admin_keys]]
name = "auditor"
key = "{VIEWER}"
role = "viewer"
"""


def chat(base: str, key: str, model: str) -> httpx.Response:
    return httpx.post(
        base + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": f"hello {model}"}]},
        timeout=10,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """The Relay's URL and what its requests were answered: usage by (key, model)."""
    root: Path = tmp_path_factory.mktemp("admin_views")
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(upstream, f"sqlite:///{root}/relay.db", closed_port()))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            base = f"http://{address}"
            used: dict[str, Any] = {}
            for (key, model), times in CHATS.items():
                for _ in range(times):
                    reply = chat(base, key, model)
                    assert reply.status_code == 200, reply.text
                    usage = reply.json()["usage"]
                    sums = used.setdefault(model, {"requests": 0, "input_tokens": 0, "output_tokens": 0})
                    sums["requests"] += 1
                    sums["input_tokens"] += usage["prompt_tokens"]
                    sums["output_tokens"] += usage["completion_tokens"]
            for _ in range(DEAD_CALLS):
                assert chat(base, ALICE, "dead-1").status_code >= 500
            wait_for_log(base, sum(CHATS.values()) + DEAD_CALLS)
            yield base, used


def call(base: str, path: str, key: str | None = ADMIN, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.get(base + "/admin/v1" + path, headers=headers, timeout=10, **kwargs)


def wait_for_log(base: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(call(base, "/requests", params={"limit": 200}).json()["data"]) < count:
        assert time.monotonic() < deadline, "the request log was not written"
        time.sleep(0.05)


def openai_error(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_channels_show_configuration_breaker_and_window(served: tuple[str, dict[str, Any]]) -> None:
    base, _ = served
    reply = call(base, "/channels")
    assert reply.status_code == 200, reply.text
    channels = {c["name"]: c for c in reply.json()["data"]}
    assert list(channels) == ["chat", "dead"]
    chat_channel, dead = channels["chat"], channels["dead"]
    assert "sk-upstream" not in reply.text  # never the upstream keys
    assert chat_channel["base_url"].startswith("http://127.0.0.1:") and chat_channel["base_url"].endswith("/v1")
    assert (chat_channel["models"], chat_channel["priority"], chat_channel["weight"]) == (["chat-*"], 2, 3)
    assert chat_channel["group"] == "default" and chat_channel["type"] == "openai"
    assert chat_channel["breaker"]["state"] == "closed"
    assert dead["breaker"]["state"] == "open" and dead["breaker"]["retry_in"] > 0
    window = chat_channel["window"]
    assert (window["minutes"], window["requests"], window["errors"]) == (15, sum(CHATS.values()), 0)
    assert window["error_rate"] == 0.0
    assert 0 < window["latency_ms_p50"] <= window["latency_ms_p95"]
    assert dead["window"]["requests"] == DEAD_CALLS and dead["window"]["error_rate"] == 1.0


def test_channels_window_minutes(served: tuple[str, dict[str, Any]]) -> None:
    base, _ = served
    shown = call(base, "/channels", params={"minutes": "1"}).json()["data"][0]["window"]
    assert shown["minutes"] == 1 and shown["requests"] == sum(CHATS.values())
    for bad in ("0", "abc", "100000"):
        assert openai_error(call(base, "/channels", params={"minutes": bad}), 400)["param"] == "minutes"


def test_usage_by_model_matches_the_requests(served: tuple[str, dict[str, Any]]) -> None:
    base, used = served
    reply = call(base, "/usage", params={"by": "model"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["by"] == "model"
    rows = {row["model"]: row for row in reply.json()["data"]}
    for model, sums in used.items():
        assert {name: rows[model][name] for name in sums} == sums
        assert rows[model]["errors"] == 0
        expected_cost = sums["input_tokens"] * 2 + sums["output_tokens"] * 8  # micro-credits per token
        assert rows[model]["cost_micros"] == expected_cost
    assert rows["dead-1"]["requests"] == DEAD_CALLS and rows["dead-1"]["errors"] == DEAD_CALLS


def test_usage_by_key_channel_and_day(served: tuple[str, dict[str, Any]]) -> None:
    base, _ = served
    keys = {row["key"]: row["requests"] for row in call(base, "/usage", params={"by": "key"}).json()["data"]}
    assert keys == {"alice": CHATS[(ALICE, "chat-1")] + DEAD_CALLS, "bob": CHATS[(BOB, "chat-2")]}
    channels = {r["channel"]: r["requests"] for r in call(base, "/usage", params={"by": "channel"}).json()["data"]}
    assert channels["chat"] == sum(CHATS.values()) and channels["dead"] == DEAD_CALLS
    today = time.strftime("%Y-%m-%d", time.gmtime())
    days = call(base, "/usage", params={"by": "day", "since": today, "until": today}).json()["data"]
    assert [d["day"] for d in days] == [today] and days[0]["requests"] == sum(CHATS.values()) + DEAD_CALLS
    assert call(base, "/usage", params={"by": "day", "until": "2000-01-01"}).json()["data"] == []
    assert call(base, "/usage", params={"since": "2999-01-01"}).json()["data"] == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"by": "user"}, "by"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-02-02", "until": "2026-02-01"}, "since"),
    ],
)
def test_usage_refuses_bad_parameters(served: tuple[str, dict[str, Any]], params: dict[str, str], param: str) -> None:
    base, _ = served
    assert openai_error(call(base, "/usage", params=params), 400)["param"] == param
    assert openai_error(call(base, "/usage.csv", params=params), 400)["param"] == param


def test_usage_csv_is_the_json_as_csv(served: tuple[str, dict[str, Any]]) -> None:
    base, _ = served
    for by in ("key", "model", "channel", "day"):
        reply = call(base, "/usage.csv", params={"by": by})
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(reply.text)))
        expected = call(base, "/usage", params={"by": by}).json()["data"]
        assert rows == [{name: str(value) for name, value in row.items()} for row in expected]
        assert rows


def test_prices_are_the_configured_ones(served: tuple[str, dict[str, Any]]) -> None:
    base, _ = served
    reply = call(base, "/prices")
    assert reply.status_code == 200, reply.text
    (price,) = reply.json()["data"]
    assert price["model"] == "chat-*" and (price["input"], price["output"]) == (2.0, 8.0)
    assert price["image_sizes"] == {"1024x1024": 0.04} and price["cached_input"] is None


@pytest.mark.parametrize("path", ["/channels", "/usage", "/usage.csv", "/prices"])
def test_viewer_reads_and_no_key_is_401(served: tuple[str, dict[str, Any]], path: str) -> None:
    base, _ = served
    assert call(base, path, VIEWER).status_code == 200
    openai_error(call(base, path, None), 401)
    openai_error(call(base, path, ALICE), 401)  # a relay key is not an admin key
    written = httpx.post(base + "/admin/v1" + path, headers={"authorization": f"Bearer {VIEWER}"})
    openai_error(written, 403 if path == "/channels" else 405)  # POST /channels creates one: an admin's write


def test_percentile_and_base_url_without_credentials() -> None:
    from relay.admin.channel_health import percentile, public_base_url
    from relay.config import ChannelConfig

    assert percentile([], 0.5) is None
    assert percentile([10.0], 0.95) == 10.0
    values = [float(v) for v in range(1, 21)]
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (10.0, 19.0)
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0
    hidden = ChannelConfig(name="c", type="openai", models=("m",), base_url="https://u:pw@example.com:8443/v1?key=k")
    assert public_base_url(hidden) == "https://example.com:8443/v1"
    assert public_base_url(ChannelConfig(name="g", type="gemini", models=("m",))).startswith("https://generative")

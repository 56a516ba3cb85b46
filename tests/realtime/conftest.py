"""``relay serve`` in front of ``relay mock-upstream`` (each its own process) for the Realtime tests: one channel
to the mock's WebSocket, one in-process mock channel, priced models and a key per test (each test reads its own
key's rows of the request log through the admin API)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import process
from tests.helpers import MOCK_ARGS

ADMIN = "sk-admin-realtime-tests-0001"
MODEL = "gpt-realtime"
#: Credits per million tokens of gpt-realtime* (text in, cached in, text out; audio in, cached audio in, audio out).
PRICES = {"input": 4.0, "cached_input": 0.4, "output": 16.0, "audio_input": 32.0, "cached_audio_input": 0.5}
AUDIO_OUTPUT = 64.0
#: The quota of the key that runs out: its first response's hold fits, the second's does not (docs/apis/realtime.md:
#: a hold is the conversation + 1,024 tokens at the dearest input price, + default_max_output_tokens = 100).
POOR_QUOTA = 0.0392
KEYS = (
    *("sdk", "audio", "http", "frames", "big", "subproto", "narrow", "poor", "slow", "abort", "drop", "alias"),
    *("live", "live-narrow", "live-poor", "live-inproc", "failover"),
)


def key_of(name: str) -> str:
    return f"sk-relay-realtime-{name}"


def relay_toml(upstream: str, store: str, limits: str = "") -> str:
    keys = "".join(
        f"""
[[keys]]
name = "{name}"
key = "{key_of(name)}"
quota = {POOR_QUOTA if name in ("poor", "live-poor") else 100}
models = {'["gpt-realtime", "mock-realtime", "gemini-live"]' if "narrow" in name else '["*"]'}
"""
        for name in KEYS
    )
    prices = "\n".join(f"{k} = {v}" for k, v in PRICES.items())
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
key_refresh = 0.2
log_interval = 0.05

[limits]
write_timeout = 1.0
send_buffer_bytes = 16384
websocket_max_message_bytes = 65536
{limits}

[quota]
default_max_output_tokens = 100

[aliases]
realtime-alias = "gpt-realtime"

[[channels]]
name = "rt"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream-rt"
models = ["gpt-realtime*"]
[channels.model_map]
gpt-realtime-mini = "gpt-realtime-mini-2025"

# Tried first for gpt-realtime-failover, and refuses: nothing listens on port 9 of loopback.
[[channels]]
name = "dead"
type = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key = "sk-upstream-dead"
models = ["gpt-realtime-failover"]
priority = 1

[[channels]]
name = "inproc"
type = "mock"
models = ["mock-realtime*"]

[[channels]]
name = "gem"
type = "gemini"
base_url = "{upstream}"
api_key = "upstream-gemini-key"
models = ["gemini-live*"]

[[channels]]
name = "inproc-gemini"
type = "mock"
models = ["mock-gemini-live*"]
[channels.mock]
dialect = "gemini"

[[prices]]
model = "gpt-realtime*"
{prices}
audio_output = {AUDIO_OUTPUT}

[[prices]]
model = "gemini-live*"
{prices}
audio_output = {AUDIO_OUTPUT}

[[admin_keys]]
name = "root"
key = "{ADMIN}"
{keys}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(relay's ``HOST:PORT``, the mock's) for the module."""
    root: Path = tmp_path_factory.mktemp("realtime")
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", f"sqlite:///{root}/relay.db"))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield address, upstream


def admin(address: str, path: str, **params: Any) -> Any:
    answer = httpx.get(
        f"http://{address}/admin/v1{path}", params=params, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def rows(address: str, key: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The key's rows of the request log, oldest first, once there are ``count`` of them (and a moment later no
    more: a row too many is a request logged twice)."""
    deadline = time.monotonic() + timeout
    while True:
        found = admin(address, "/requests", key=key)["data"]
        if len(found) >= count:
            time.sleep(0.3)
            found = admin(address, "/requests", key=key)["data"]
            assert len(found) == count, found
            return sorted(found, key=lambda r: (r["time"], r["request_id"]))
        assert time.monotonic() < deadline, f"{len(found)} rows of {key!r}, not {count}: {found}"
        time.sleep(0.05)


def balance(address: str, key: str) -> int:
    return admin(address, f"/keys/{key}")["balance_micros"]


def cost(usage: dict[str, int], audio: bool = False) -> int:
    """Micro-credits of a response's usage at ``PRICES`` (credits per million: a micro-credit per token per credit)."""
    return round(
        (usage["text_in"] - usage["cached_text"]) * PRICES["input"]
        + usage["cached_text"] * PRICES["cached_input"]
        + (usage["audio_in"] - usage["cached_audio"]) * PRICES["audio_input"]
        + usage["cached_audio"] * PRICES["cached_audio_input"]
        + usage["text_out"] * PRICES["output"]
        + usage["audio_out"] * AUDIO_OUTPUT
    )

"""The task endpoints' test bed (tests/utility/test_{extract,segment,summarize,translate}.py): ``relay serve`` in
front of ``relay mock-upstream`` (which also serves the fixture documents, relay/mock/wire_fixtures.py), each its own
process, with channels of both OpenAI's and Anthropic's API, one that is down, prices, a key with a quota and an
admin key to read the request log; and the calls the tests make over HTTP with httpx."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import process
from tests.helpers import MOCK_ARGS

KEY = "sk-utility-tests-0123456789abcdef"
ADMIN = "sk-utility-admin-0123456789abcdef"
#: Credits per million input and output tokens of the ``chat-*`` and ``claude-*`` models.
INPUT_PRICE, OUTPUT_PRICE = 3.0, 12.0


#: The largest upload the tests' Relay takes (``[limits] max_upload_bytes``).
MAX_UPLOAD = 1_000_000


def relay_toml(upstream: str, store: str, mock_host: str) -> str:
    """Fetches may reach the mock upstream's own port (``allow_hosts``), and nothing else private."""
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false
default_model = "chat-1"

[limits]
max_upload_bytes = {MAX_UPLOAD}

[store]
url = "{store}"
log_interval = 0.05

[utility]
allow_hosts = ["{mock_host}"]
max_fetch_bytes = 100000
fetch_timeout = 10
segment_tokens = 64

[[channels]]
name = "chat"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream"
models = ["chat-*"]

[[channels]]
name = "claude"
type = "anthropic"
base_url = "{upstream}"
api_key = "sk-upstream"
models = ["claude-*"]

[[channels]]
name = "down"
type = "openai"
base_url = "http://127.0.0.1:9/v1"
models = ["down-*"]

[[prices]]
model = "chat-*"
input = {INPUT_PRICE}
output = {OUTPUT_PRICE}

[[prices]]
model = "claude-*"
input = {INPUT_PRICE}
output = {OUTPUT_PRICE}

[[keys]]
name = "user"
key = "{KEY}"
quota = 1000

[[admin_keys]]
name = "root"
key = "{ADMIN}"
role = "admin"
"""


class Served:
    """A running Relay (``base``) and mock upstream (``upstream``), with the tests' calls to them."""

    def __init__(self, base: str, upstream: str) -> None:
        self.base = base
        self.upstream = upstream

    def post(self, path: str, key: str = KEY, **kwargs: Any) -> httpx.Response:
        return httpx.post(
            self.base + path,
            headers={"authorization": f"Bearer {key}", **kwargs.pop("headers", {})},
            timeout=30,
            **kwargs,
        )

    def fixture(self, name: str) -> str:
        return f"{self.upstream}/fixtures/{name}"

    def document(self, name: str) -> bytes:
        reply = httpx.get(self.fixture(name), timeout=10)
        assert reply.status_code == 200
        return reply.content

    def logged(self, request_id: str, wait: float = 5.0) -> dict[str, Any]:
        """The request's row of the log (the log is written in batches: waited for)."""
        deadline = time.monotonic() + wait
        while True:
            reply = httpx.get(
                f"{self.base}/admin/v1/requests/{request_id}", headers={"authorization": f"Bearer {ADMIN}"}, timeout=10
            )
            if reply.status_code == 200 or time.monotonic() > deadline:
                assert reply.status_code == 200, reply.text
                return reply.json()
            time.sleep(0.05)

    def children(self, request_id: str, count: int, wait: float = 5.0) -> list[dict[str, Any]]:
        """The rows of the model calls made for ``request_id`` (waited for until ``count`` are logged)."""
        deadline = time.monotonic() + wait
        while True:
            reply = httpx.get(
                f"{self.base}/admin/v1/requests",
                params={"parent_id": request_id, "limit": 200},
                headers={"authorization": f"Bearer {ADMIN}"},
                timeout=10,
            )
            assert reply.status_code == 200, reply.text
            rows = reply.json()["data"]
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def openai_error(reply: httpx.Response, status: int) -> dict[str, Any]:
    """The error of an answer in OpenAI's shape, with its status checked."""
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return error


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root: Path = tmp_path_factory.mktemp("utility")
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", f"sqlite:///{root}/relay.db", upstream))
        with process("serve", "--config", str(path)) as (_, address):
            yield Served(f"http://{address}", f"http://{upstream}")

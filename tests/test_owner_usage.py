"""A key owner's own view (``/v1/usage``, ``/v1/dashboard/billing/*``) through ``relay serve`` in front of
``relay mock-upstream``, with httpx: a priced key's numbers match the requests it made, and another key sees
only its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.endpoints.owner_usage import UNLIMITED_USD
from tests.conftest import process
from tests.helpers import MOCK_ARGS

OWNER_KEY = "sk-relay-owner-view"
OTHER_KEY = "sk-relay-other-view"
#: Credits granted to the owner's key.
QUOTA = 5.0
EXPIRES = "2099-01-02"
#: Credits per million tokens: micro-credits per token.
INPUT, OUTPUT = 3, 7
MODEL = "chat-1"


def relay_toml(upstream: str, store: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
key_refresh = 0.2
log_interval = 0.05

[routing]
key_rest = 0.001
breaker_failures = 1000

[[prices]]
model = "chat-*"
input = {INPUT}
output = {OUTPUT}

[[channels]]
name = "chat"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream-chat"
models = ["chat-*"]

[[keys]]
name = "owner"
key = "{OWNER_KEY}"
quota = {QUOTA}
expires = "{EXPIRES}"

[[keys]]
name = "other"
key = "{OTHER_KEY}"
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("owner_usage")
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", f"sqlite:///{root}/relay.db"))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}"


def get(base: str, path: str, key: str | None, **params: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.get(base + path, headers=headers, params=params, timeout=10)


def chat(base: str, key: str, content: str) -> tuple[str, int, int]:
    """One Chat Completions request; its request id and its input and output tokens."""
    reply = httpx.post(
        base + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": MODEL, "messages": [{"role": "user", "content": content}]},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    usage = reply.json()["usage"]
    return reply.headers["x-request-id"], usage["prompt_tokens"], usage["completion_tokens"]


def poll(
    read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> dict[str, Any]:
    """``read()`` until ``done`` says so (the request log and settlements are written off the hot path)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture(scope="module")
def made(base: str) -> dict[str, list[tuple[str, int, int]]]:
    """The requests each key made: (request id, input tokens, output tokens)."""
    owner = [chat(base, OWNER_KEY, "hello " * n) for n in (1, 4, 9)]
    other = [chat(base, OTHER_KEY, "another key's words " * n) for n in (2, 3)]
    for key, count in ((OWNER_KEY, len(owner)), (OTHER_KEY, len(other))):
        view = poll(
            lambda key=key: get(base, "/v1/usage", key).json(),
            lambda v, count=count: v["today"]["requests"] >= count and v["spent"] > 0,
        )
        assert view["today"]["requests"] == count
    return {"owner": owner, "other": other}


def micros(requests: list[tuple[str, int, int]]) -> int:
    return sum(i * INPUT + o * OUTPUT for _, i, o in requests)


def test_own_usage_matches_the_requests_made(base: str, made: dict[str, list[tuple[str, int, int]]]) -> None:
    owner = made["owner"]
    cost = micros(owner) / 1_000_000
    view = get(base, "/v1/usage", OWNER_KEY).json()
    assert view["key"] == "owner"
    assert view["unlimited"] is False
    assert view["granted"] == QUOTA
    assert view["spent"] == pytest.approx(cost)
    assert view["balance"] == pytest.approx(QUOTA - cost)
    assert view["expires_at"] == int(datetime(2099, 1, 2, tzinfo=UTC).timestamp())
    for period in (view["today"], view["last_30_days"]):
        assert period["requests"] == 3
        assert period["errors"] == 0
        assert period["input_tokens"] == sum(i for _, i, _ in owner)
        assert period["output_tokens"] == sum(o for _, _, o in owner)
        assert period["cost"] == pytest.approx(cost)
    today = datetime.now(UTC).date()
    assert view["today"]["day"] == today.isoformat()
    assert view["last_30_days"]["since"] == (today - timedelta(days=29)).isoformat()
    # Newest first, each with its tokens and cost; the views read above were not logged.
    recent = view["recent"]
    assert [r["request_id"] for r in recent] == [rid for rid, _, _ in reversed(owner)]
    for row, (_, i, o) in zip(recent, reversed(owner), strict=True):
        assert (row["model"], row["status"], row["input_tokens"], row["output_tokens"]) == (MODEL, 200, i, o)
        assert row["cost"] == pytest.approx((i * INPUT + o * OUTPUT) / 1_000_000)
        assert "channel" not in row and "client_addr" not in row


def test_another_key_sees_only_its_own(base: str, made: dict[str, list[tuple[str, int, int]]]) -> None:
    other = made["other"]
    view = get(base, "/v1/usage", OTHER_KEY).json()
    assert view["key"] == "other"
    assert view["unlimited"] is True
    assert view["balance"] is None and view["granted"] is None
    assert view["spent"] == pytest.approx(micros(other) / 1_000_000)
    assert view["today"]["requests"] == 2
    assert view["today"]["input_tokens"] == sum(i for _, i, _ in other)
    assert {r["request_id"] for r in view["recent"]} == {rid for rid, _, _ in other}
    subscription = get(base, "/v1/dashboard/billing/subscription", OTHER_KEY).json()
    assert subscription["hard_limit_usd"] == UNLIMITED_USD
    assert subscription["access_until"] == 0


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_billing_subscription(base: str, prefix: str, made: dict[str, list[tuple[str, int, int]]]) -> None:
    reply = get(base, prefix + "/dashboard/billing/subscription", OWNER_KEY)
    assert reply.status_code == 200
    body = reply.json()
    assert body["object"] == "billing_subscription"
    assert body["hard_limit_usd"] == body["soft_limit_usd"] == body["system_hard_limit_usd"] == QUOTA
    assert body["access_until"] == int(datetime(2099, 1, 2, tzinfo=UTC).timestamp())


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_billing_usage_in_cents_over_the_days_asked(
    base: str, prefix: str, made: dict[str, list[tuple[str, int, int]]]
) -> None:
    today = datetime.now(UTC).date()
    month = today.replace(day=1).isoformat()
    tomorrow = (today + timedelta(days=1)).isoformat()
    path = prefix + "/dashboard/billing/usage"
    # As NextChat asks: from the first of the month to tomorrow (the end excluded).
    body = get(base, path, OWNER_KEY, start_date=month, end_date=tomorrow).json()
    assert body["object"] == "list"
    assert body["total_usage"] == pytest.approx(micros(made["owner"]) / 10_000)  # cents
    [day] = body["daily_costs"]
    assert day["timestamp"] == datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp()
    assert day["line_items"] == [{"name": MODEL, "cost": pytest.approx(body["total_usage"])}]
    other = get(base, path, OTHER_KEY, start_date=month, end_date=tomorrow).json()
    assert other["total_usage"] == pytest.approx(micros(made["other"]) / 10_000)
    # A range without today: nothing; no range at all: everything.
    before = get(base, path, OWNER_KEY, start_date="2020-01-01", end_date=today.isoformat()).json()
    assert before == {"object": "list", "daily_costs": [], "total_usage": 0}
    assert get(base, path, OWNER_KEY).json()["total_usage"] == pytest.approx(body["total_usage"])


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"start_date": "2026-13-01", "end_date": "2026-12-31"}, "start_date"),
        ({"start_date": "2026-01-01", "end_date": "yesterday"}, "end_date"),
        ({"start_date": "2026-1-1"}, "start_date"),
        ({"start_date": "2026-02-01", "end_date": "2026-02-01"}, "end_date"),
    ],
)
def test_billing_usage_refuses_bad_dates(base: str, params: dict[str, str], param: str) -> None:
    reply = get(base, "/v1/dashboard/billing/usage", OWNER_KEY, **params)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param in error["message"]


@pytest.mark.parametrize("path", ["/v1/usage", "/v1/dashboard/billing/subscription", "/dashboard/billing/usage"])
def test_views_need_a_valid_key(base: str, path: str) -> None:
    for key in (None, "sk-relay-nobody"):
        reply = get(base, path, key)
        assert reply.status_code == 401
        assert set(reply.json()["error"]) >= {"message", "type", "code"}

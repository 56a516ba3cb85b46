"""Channels kept in the store, through the admin API of ``relay serve --workers 2`` in front of ``relay mock-upstream``:
create, update, disable, enable, delete, each seen by every worker within seconds; relay.toml's channels read-only
but for their state; the test endpoint against the mock and against a dead port. Once on SQLite, once on PostgreSQL
(when RELAY_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import postgres_schema, process
from tests.helpers import MOCK_ARGS

ADMIN = "sk-admin-h1-channels-0123456789"
VIEWER = "sk-viewer-h1-channels-0123456789"
RELAY_KEY = "sk-relay-h1-channels-user"
UPSTREAM_KEY = "sk-upstream-from-the-environment-42"
#: Requests in a row, each on a new connection, that must all answer alike before a change counts as seen by
#: every worker: with two workers taking connections at random, 20 all on one worker has a chance of 2^-19.
IN_A_ROW = 20


def relay_toml(upstream: str, store: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
key_refresh = 0.2
log_interval = 0.05

[[channels]]
name = "base"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream-base"
models = ["base-*", "shared-*"]
priority = 1

[[keys]]
name = "user"
key = "{RELAY_KEY}"

[[admin_keys]]
name = "root"
key = "{ADMIN}"

[[admin_keys]]
name = "auditor"
key = "{VIEWER}"
role = "viewer"
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(relay's base URL, the mock upstream's), two workers, on a fresh store of each backend."""
    root: Path = tmp_path_factory.mktemp("store_channels")
    with process(*MOCK_ARGS) as (_, upstream):
        upstream_url = f"http://{upstream}"
        path = root / "relay.toml"
        env = {"H1_UPSTREAM_KEY": UPSTREAM_KEY}

        def serve(store: str) -> Iterator[tuple[str, str]]:
            path.write_text(relay_toml(upstream_url, store))
            args = ("serve", "--config", str(path), "--workers", "2")
            with process(*args, env=env) as (_, address):
                yield f"http://{address}", upstream_url

        if request.param == "sqlite":
            yield from serve(f"sqlite:///{root}/relay.db")
        else:
            with postgres_schema("relay_h1_channels") as url:
                yield from serve(url)


def admin(base: str, method: str, path: str, key: str = ADMIN, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, f"{base}/admin/v1{path}", headers={"authorization": f"Bearer {key}"}, timeout=30, **kwargs
    )


def chat(base: str, model: str) -> httpx.Response:
    """One chat request on a connection of its own (so the kernel may hand it to either worker)."""
    return httpx.post(
        base + "/v1/chat/completions",
        headers={"authorization": f"Bearer {RELAY_KEY}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )


def everywhere(base: str, model: str, status: int, within: float = 10.0) -> None:
    """Wait until IN_A_ROW requests for ``model`` in a row answer ``status`` (every worker does, by then)."""
    deadline = time.monotonic() + within
    row = 0
    seen: list[int] = []
    while row < IN_A_ROW:
        got = chat(base, model).status_code
        seen.append(got)
        row = row + 1 if got == status else 0
        assert time.monotonic() < deadline, f"{model}: never {IN_A_ROW} x {status} in a row; last: {seen[-40:]}"


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    return error


def listed(base: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in admin(base, "GET", "/channels").json()["data"]}


def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_create_update_disable_delete_seen_by_every_worker(served: tuple[str, str]) -> None:
    base, upstream = served
    everywhere(base, "extra-1", 404)
    table = {
        "name": "extra",
        "type": "openai",
        "base_url": f"{upstream}/v1",
        "api_key": "${H1_UPSTREAM_KEY}",
        "models": ["extra-*", "shared-*"],
    }
    created = admin(base, "POST", "/channels", json=table)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert (shown["source"], shown["enabled"], shown["in_force"]) == ("store", True, True)
    assert shown["config"]["api_key"] == "${H1_UPSTREAM_KEY}"  # a reference, kept as one
    assert UPSTREAM_KEY not in created.text
    everywhere(base, "extra-1", 200)
    reply = chat(base, "extra-1").json()
    assert reply["model"] == "extra-1" and reply["choices"][0]["message"]["content"]

    # update: a model_map entry, then the alias works everywhere
    everywhere(base, "nickname", 404)
    patched = admin(base, "PATCH", "/channels/extra", json={"model_map": {"nickname": "extra-7"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["config"]["model_map"] == {"nickname": "extra-7"}
    everywhere(base, "nickname", 200)
    assert chat(base, "nickname").json()["model"] == "nickname"

    # disable: a model only it serves is a 503 everywhere; a model another channel serves goes there
    disabled = admin(base, "POST", "/channels/extra/disable")
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    everywhere(base, "extra-1", 503)
    assert error_of(chat(base, "extra-1"), 503)["code"] == "channel_disabled"
    admin(base, "POST", "/channels/base/disable").raise_for_status()
    everywhere(base, "base-1", 503)
    admin(base, "POST", "/channels/extra/enable").raise_for_status()
    everywhere(base, "shared-1", 200)  # base (priority 1) is off: extra serves it
    everywhere(base, "extra-1", 200)
    admin(base, "POST", "/channels/base/enable").raise_for_status()
    everywhere(base, "base-1", 200)
    assert listed(base)["base"]["enabled"] is True

    # delete: its models are unknown again everywhere
    deleted = admin(base, "DELETE", "/channels/extra")
    assert deleted.status_code == 200 and deleted.json() == {"name": "extra", "deleted": True}
    everywhere(base, "extra-1", 404)
    error_of(admin(base, "GET", "/channels/extra"), 404)
    error_of(admin(base, "DELETE", "/channels/extra"), 404)


def test_requests_through_the_log_name_the_channel_that_served(served: tuple[str, str]) -> None:
    base, upstream = served
    table = {"name": "second", "type": "openai", "base_url": f"{upstream}/v1", "models": ["shared-*"]}
    assert admin(base, "POST", "/channels", json=table).status_code == 201
    try:
        admin(base, "POST", "/channels/base/disable").raise_for_status()
        everywhere(base, "shared-x", 200)

        def logged() -> bool:
            rows = admin(base, "GET", "/requests", params={"model": "shared-x", "limit": 1}).json()["data"]
            return bool(rows) and rows[0]["channel"] == "second"

        eventually(logged)
    finally:
        admin(base, "POST", "/channels/base/enable").raise_for_status()
        admin(base, "DELETE", "/channels/second").raise_for_status()


def test_bad_channels_are_refused_with_every_problem(served: tuple[str, str]) -> None:
    base, upstream = served
    bad = {"name": "bad", "type": "nope", "models": [], "weight": 0, "colour": "red", "api_key": "${H1_NOT_SET}"}
    message = error_of(admin(base, "POST", "/channels", json=bad), 400)["message"]
    for problem in ("type: must be one of", "models: list at least one model", "weight: must be at least 1"):
        assert problem in message, message
    assert "colour: unknown key" in message and "H1_NOT_SET is not set" in message
    error_of(admin(base, "POST", "/channels", json={"type": "openai", "models": ["m"]}), 400)
    error_of(admin(base, "POST", "/channels", json={"name": "a/b", "type": "openai", "models": ["m"]}), 400)
    error_of(admin(base, "POST", "/channels", content=b"{not json"), 400)
    taken = {"name": "base", "type": "openai", "base_url": f"{upstream}/v1", "models": ["m"]}
    assert "relay.toml" in error_of(admin(base, "POST", "/channels", json=taken), 409)["message"]
    once = {"name": "twice", "type": "mock", "models": ["twice-*"]}
    assert admin(base, "POST", "/channels", json=once).status_code == 201
    try:
        error_of(admin(base, "POST", "/channels", json=once), 409)
        error_of(admin(base, "PATCH", "/channels/twice", json={"weight": -1}), 400)
        error_of(admin(base, "PATCH", "/channels/twice", json={"name": "other"}), 400)
        assert admin(base, "GET", "/channels/twice").json()["weight"] == 1  # the refused change left it as it was
    finally:
        admin(base, "DELETE", "/channels/twice").raise_for_status()
    assert "bad" not in listed(base)


def test_relay_toml_channels_are_read_only(served: tuple[str, str]) -> None:
    base, _ = served
    for method, body in (("PATCH", {"weight": 5}), ("DELETE", None)):
        error = error_of(admin(base, method, "/channels/base", json=body), 409)
        assert error["code"] == "channel_read_only" and "relay.toml" in error["message"]
    shown = admin(base, "GET", "/channels/base").json()
    assert (shown["source"], shown["weight"], shown["keys"]) == ("config", 1, 1)
    assert "sk-upstream-base" not in admin(base, "GET", "/channels").text
    error_of(admin(base, "POST", "/channels/base/disable", key=VIEWER), 403)
    error_of(admin(base, "POST", "/channels/nowhere/enable"), 404)


def test_literal_secrets_are_never_shown(served: tuple[str, str]) -> None:
    base, upstream = served
    secret = "sk-literal-upstream-secret-0123456789"
    table = {
        "name": "literal",
        "type": "openai",
        "base_url": f"{upstream}/v1",
        "api_key": secret,
        "api_keys": ["${H1_UPSTREAM_KEY}", "sk-another-literal-9876543210"],
        "models": ["literal-*"],
    }
    created = admin(base, "POST", "/channels", json=table)
    try:
        assert created.status_code == 201, created.text
        assert created.json()["config"]["api_key"] == "***"
        assert created.json()["config"]["api_keys"] == ["${H1_UPSTREAM_KEY}", "***"]
        for text in (created.text, admin(base, "GET", "/channels").text, admin(base, "GET", "/channels/literal").text):
            assert secret not in text and "sk-another-literal" not in text
    finally:
        admin(base, "DELETE", "/channels/literal").raise_for_status()


def test_the_test_endpoint(served: tuple[str, str]) -> None:
    base, _ = served
    good = admin(base, "POST", "/channels/base/test", json={"model": "base-9"})
    assert good.status_code == 200, good.text
    result = good.json()
    assert (result["name"], result["model"], result["ok"], result["status"], result["error"]) == (
        "base",
        "base-9",
        True,
        200,
        None,
    )
    assert isinstance(result["latency_ms"], float) and result["latency_ms"] >= 0
    error_of(admin(base, "POST", "/channels/base/test", json={"model": "not-served"}), 400)
    assert "model" in error_of(admin(base, "POST", "/channels/base/test"), 400)["message"]  # only patterns: name one

    table = {"name": "dead", "type": "openai", "base_url": f"http://127.0.0.1:{dead_port()}/v1", "models": ["d-1"]}
    assert admin(base, "POST", "/channels", json=table).status_code == 201
    try:
        failed = admin(base, "POST", "/channels/dead/test").json()  # its first exact model: d-1
        assert (failed["ok"], failed["status"], failed["model"]) == (False, None, "d-1")
        assert failed["error"], failed
        admin(base, "POST", "/channels/dead/disable").raise_for_status()  # a disabled channel can be tested too
        assert admin(base, "POST", "/channels/dead/test").json()["ok"] is False
    finally:
        admin(base, "DELETE", "/channels/dead").raise_for_status()

    for dialect in ("openai", "anthropic", "gemini"):  # the in-process mock, in each API a channel may speak
        mock = {"name": f"mock-{dialect}", "type": "mock", "models": ["m-1"], "mock": {"dialect": dialect}}
        assert admin(base, "POST", "/channels", json=mock).status_code == 201
        try:
            tried = admin(base, "POST", f"/channels/mock-{dialect}/test").json()
            assert (tried["ok"], tried["status"], tried["model"]) == (True, 200, "m-1"), tried
        finally:
            admin(base, "DELETE", f"/channels/mock-{dialect}").raise_for_status()

    with process(*MOCK_ARGS, "--api-key", "sk-the-right-upstream-key") as (_, locked):
        wrong = {"name": "wrong-key", "type": "openai", "base_url": f"http://{locked}/v1", "models": ["w-1"]}
        wrong["api_key"] = "sk-the-wrong-upstream-key"
        assert admin(base, "POST", "/channels", json=wrong).status_code == 201
        try:
            answer = admin(base, "POST", "/channels/wrong-key/test").json()
            assert (answer["ok"], answer["status"]) == (False, 401) and answer["error"], answer
            assert "sk-the-wrong-upstream-key" not in answer["error"]
        finally:
            admin(base, "DELETE", "/channels/wrong-key").raise_for_status()


def test_channels_listing(served: tuple[str, str]) -> None:
    base, _ = served
    channels = listed(base)
    assert channels["base"]["source"] == "config" and channels["base"]["enabled"] is True
    assert channels["base"]["breaker"] is not None and "window" in channels["base"]
    viewer = admin(base, "GET", "/channels", key=VIEWER)
    assert viewer.status_code == 200

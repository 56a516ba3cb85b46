"""The admin API (``/admin/v1/``) through ``relay serve`` in front of ``relay mock-upstream``, with httpx: admin
keys and roles, the keys' operations (the very ones ``relay keys`` runs), the request log's filters and cursor
paging, and the OpenAPI document."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.admin.openapi import document
from tests.conftest import process
from tests.helpers import MOCK_ARGS

ADMIN = "sk-admin-0123456789abcdef"
VIEWER = "sk-viewer-0123456789abcdef"
RELAY_KEY = "sk-relay-admin-tests-user"
MODELS = ("chat-1", "chat-2")


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
name = "chat"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream-chat"
models = ["chat-*"]

[[keys]]
name = "user"
key = "{RELAY_KEY}"
quota = 5

[[admin_keys]]
name = "root"
key = "{ADMIN}"
role = "admin"

[[admin_keys]]
name = "auditor"
key = "{VIEWER}"
role = "viewer"
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("admin_api")
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", f"sqlite:///{root}/relay.db"))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}"


def call(base: str, method: str, path: str, key: str | None = ADMIN, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.request(method, base + "/admin/v1" + path, headers=headers, timeout=10, **kwargs)


def chat(base: str, key: str, model: str) -> str:
    reply = httpx.post(
        base + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return reply.headers["x-request-id"]


def openai_error(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


# ---- admin keys and roles ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, RELAY_KEY, "sk-not-a-key-at-all-0000"])
def test_without_an_admin_key_is_401(base: str, key: str | None) -> None:
    openai_error(call(base, "GET", "/keys", key), 401)


def test_viewer_reads_but_may_not_write(base: str) -> None:
    assert call(base, "GET", "/keys", VIEWER).status_code == 200
    assert call(base, "GET", "/requests", VIEWER).status_code == 200
    error = openai_error(call(base, "POST", "/keys", VIEWER, json={"name": "by-viewer"}), 403)
    assert "auditor" in error["message"]
    openai_error(call(base, "POST", "/keys/user/disable", VIEWER), 403)
    openai_error(call(base, "DELETE", "/keys/user", VIEWER), 403)
    assert call(base, "GET", "/keys/by-viewer").status_code == 404  # nothing was made


# ---- keys ----------------------------------------------------------------------------------------------


def test_key_lifecycle(base: str) -> None:
    made = call(base, "POST", "/keys", json={"name": "alice", "quota": "2.5", "group": "team", "models": ["chat-*"]})
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert made.json()["balance_micros"] == 2_500_000 and made.json()["group"] == "team"
    assert "secret" not in call(base, "GET", "/keys/alice").json()  # shown once
    openai_error(call(base, "POST", "/keys", json={"name": "alice"}), 409)  # name taken
    # The key works for requests (within the key refresh), then shows today's use.
    deadline = time.monotonic() + 10
    while httpx.get(base + "/v1/models", headers={"authorization": f"Bearer {secret}"}).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    topped = call(base, "POST", "/keys/alice/topup", json={"amount": "12.5"})
    assert topped.status_code == 200, topped.text
    assert topped.json()["balance_micros"] == 15_000_000
    assert call(base, "POST", "/keys/alice/disable").json()["status"] == "disabled"
    assert [k["name"] for k in call(base, "GET", "/keys", params={"disabled": "true"}).json()["data"]] == ["alice"]
    while httpx.get(base + "/v1/models", headers={"authorization": f"Bearer {secret}"}).status_code != 401:
        assert time.monotonic() < deadline + 10, "the disabled key still works"
        time.sleep(0.1)
    assert call(base, "POST", "/keys/alice/enable").json()["status"] == "active"
    shown = call(base, "GET", "/keys/alice").json()
    while shown["today"]["requests"] < 1:  # its /v1/models calls, once the log is written
        assert time.monotonic() < deadline + 20, shown
        time.sleep(0.1)
        shown = call(base, "GET", "/keys/alice").json()
    assert shown["today"]["day"] == time.strftime("%Y-%m-%d", time.gmtime()) and shown["open_holds_micros"] == 0
    assert call(base, "DELETE", "/keys/alice").json() == {"name": "alice", "deleted": True}
    openai_error(call(base, "GET", "/keys/alice"), 404)
    openai_error(call(base, "POST", "/keys/alice/topup", json={"amount": 1}), 404)


def test_key_refusals(base: str) -> None:
    assert openai_error(call(base, "POST", "/keys", json={"name": "bad name"}), 400)["param"] is None
    assert "quota" in openai_error(call(base, "POST", "/keys", json={"name": "q", "quota": "lots"}), 400)["message"]
    assert openai_error(call(base, "POST", "/keys", json={"name": "r", "rpm": "9"}), 400)["param"] == "rpm"
    assert openai_error(call(base, "POST", "/keys", json={"name": "x", "colour": 1}), 400)["param"] == "colour"
    openai_error(call(base, "POST", "/keys", content=b"{not json"), 400)
    openai_error(call(base, "POST", "/keys", json={"name": "user"}), 409)  # declared in relay.toml
    openai_error(call(base, "DELETE", "/keys/user"), 409)  # declared in relay.toml
    assert openai_error(call(base, "POST", "/keys/user/topup", json={"amount": "-1"}), 400)["param"] is None
    openai_error(call(base, "POST", "/keys/user/topup", json={}), 400)


def test_key_list_filters_and_pages(base: str) -> None:
    for name in ("page-a", "page-b", "page-c"):
        assert call(base, "POST", "/keys", json={"name": name, "group": "paged"}).status_code == 201
    first = call(base, "GET", "/keys", params={"group": "paged", "limit": 2}).json()
    assert [k["name"] for k in first["data"]] == ["page-a", "page-b"] and first["has_more"]
    rest = call(base, "GET", "/keys", params={"group": "paged", "limit": 2, "after": first["last_id"]}).json()
    assert [k["name"] for k in rest["data"]] == ["page-c"] and not rest["has_more"]
    openai_error(call(base, "GET", "/keys", params={"limit": 0}), 400)
    openai_error(call(base, "GET", "/keys", params={"disabled": "maybe"}), 400)


def completion(base: str, key: str, model: str = "chat-1") -> httpx.Response:
    """One /v1/chat/completions call on a connection of its own."""
    return httpx.post(
        base + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )


def settles_on(wanted: int, attempt: Callable[[], httpx.Response]) -> httpx.Response:
    """``attempt()`` until it answers ``wanted`` (within 10 s: the running Relay reloads its keys meanwhile)."""
    deadline = time.monotonic() + 10
    while (reply := attempt()).status_code != wanted:
        assert time.monotonic() < deadline, (wanted, reply.status_code, reply.text)
        time.sleep(0.05)
    return reply


def test_key_update(base: str) -> None:
    made = call(base, "POST", "/keys", json={"name": "upd", "quota": "1", "rpm": 100})
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    settles_on(200, lambda: completion(base, secret, "chat-2"))
    changes = {"models": ["chat-1"], "rpm": 600, "tpm": 100_000, "ips": ["127.0.0.0/8"]}
    changed = call(base, "PATCH", "/keys/upd", json={**changes, "expires": "2099-01-01"})
    assert changed.status_code == 200, changed.text
    assert {name: changed.json()[name] for name in changes} == changes
    assert (changed.json()["expires_at"], changed.json()["balance_micros"]) == (4070908800.0, 1_000_000)
    assert "secret" not in changed.json() and call(base, "GET", "/keys/upd").json()["rpm"] == 600
    # Running Relays follow: chat-2 is no longer this key's, chat-1 still is.
    assert settles_on(403, lambda: completion(base, secret, "chat-2")).json()["error"]["code"] == "model_not_allowed"
    assert completion(base, secret, "chat-1").status_code == 200
    assert call(base, "PATCH", "/keys/upd", json={"group": "team"}).json()["group"] == "team"
    settles_on(404, lambda: completion(base, secret, "chat-1"))  # no channel of group "team" serves it
    # null clears a field; quota makes a limited key unlimited (null) and an unlimited one limited.
    cleared = call(base, "PATCH", "/keys/upd", json=dict.fromkeys(("models", "rpm", "tpm", "group", "ips", "expires")))
    assert cleared.status_code == 200, cleared.text
    shown = cleared.json()
    assert (shown["models"], shown["rpm"], shown["tpm"], shown["group"], shown["ips"], shown["expires_at"]) == (
        ["*"],
        None,
        None,
        "default",
        [],
        None,
    )
    assert "top it up" in openai_error(call(base, "PATCH", "/keys/upd", json={"quota": "2"}), 409)["message"]
    assert call(base, "PATCH", "/keys/upd", json={"quota": None}).json()["balance_micros"] is None
    assert call(base, "PATCH", "/keys/upd", json={"quota": 2.5}).json()["balance_micros"] == 2_500_000


@pytest.mark.parametrize(
    ("name", "body", "status", "param"),
    [
        ("upd-bad", {"name": "renamed"}, 400, "name"),
        ("upd-bad", {"rpm": "9"}, 400, "rpm"),
        ("upd-bad", {"models": "chat-1"}, 400, "models"),
        ("upd-bad", {"ips": [1]}, 400, "ips"),
        ("upd-bad", {"rpm": 0}, 400, None),
        ("upd-bad", {"quota": "lots"}, 400, None),
        ("upd-bad", {"expires": "2001-01-01"}, 400, None),
        ("upd-bad", {"ips": ["10.0.0.0/33"]}, 400, None),
        ("upd-bad", {}, 400, None),
        ("ghost", {"rpm": 5}, 404, None),
        ("user", {"rpm": 5}, 409, None),  # declared in relay.toml: changed there
    ],
)
def test_key_update_refusals(base: str, name: str, body: dict[str, Any], status: int, param: str | None) -> None:
    call(base, "POST", "/keys", json={"name": "upd-bad", "rpm": 7})
    before = call(base, "GET", f"/keys/{name}").json()
    assert openai_error(call(base, "PATCH", f"/keys/{name}", json=body), status)["param"] == param
    assert call(base, "GET", f"/keys/{name}").json() == before
    openai_error(call(base, "PATCH", "/keys/upd-bad", VIEWER, json={"rpm": 5}), 403)
    openai_error(call(base, "PATCH", "/keys/upd-bad", content=b"{not json"), 400)


def test_key_rotate(base: str) -> None:
    made = call(base, "POST", "/keys", json={"name": "rot", "quota": "3"})
    assert made.status_code == 201, made.text
    old = made.json()["secret"]
    before = settles_on(200, lambda: completion(base, old)).headers["x-request-id"]
    assert call(base, "POST", "/keys/rot/topup", json={"amount": "1.5"}).status_code == 200
    balance = call(base, "GET", "/keys/rot").json()["balance_micros"]
    rotated = call(base, "POST", "/keys/rot/rotate")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and (rotated.json()["name"], rotated.json()["balance_micros"]) == ("rot", balance)
    assert "secret" not in call(base, "GET", "/keys/rot").json()
    # The old secret is refused once the keys are reloaded (no overlap), the new one works, under the same name.
    assert settles_on(401, lambda: completion(base, old)).json()["error"]["code"] == "invalid_api_key"
    after = completion(base, new).headers["x-request-id"]
    deadline = time.monotonic() + 10
    while after not in (
        logged := {r["request_id"] for r in call(base, "GET", "/requests", params={"key": "rot"}).json()["data"]}
    ):
        assert time.monotonic() < deadline, logged
        time.sleep(0.1)
    assert before in logged  # its history stays with the key
    openai_error(call(base, "POST", "/keys/user/rotate"), 409)  # its secret is relay.toml's
    openai_error(call(base, "POST", "/keys/ghost/rotate"), 404)
    openai_error(call(base, "POST", "/keys/rot/rotate", VIEWER), 403)


# ---- the request log -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logged(base: str) -> list[str]:
    """Five requests of the relay key (three to chat-1, two to chat-2), once all are in the log."""
    started = time.time()
    ids = [chat(base, RELAY_KEY, model) for model in (*MODELS, "chat-1", "chat-2", "chat-1")]
    deadline = time.monotonic() + 10
    while len(call(base, "GET", "/requests", params={"since": started - 1, "key": "user"}).json()["data"]) < 5:
        assert time.monotonic() < deadline, "the requests did not reach the log"
        time.sleep(0.1)
    return ids


def test_request_log_newest_first_with_cursor_paging(base: str, logged: list[str]) -> None:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"key": "user", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = call(base, "GET", "/requests", params=params).json()
        seen += [r["request_id"] for r in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] == (cursor is not None)
        if cursor is None:
            break
    assert seen == list(reversed(logged))
    assert all(r["key_name"] == "user" for r in call(base, "GET", "/requests", params={"key": "user"}).json()["data"])


def test_request_log_filters(base: str, logged: list[str]) -> None:
    chat2 = call(base, "GET", "/requests", params={"model": "chat-2", "key": "user"}).json()["data"]
    assert [r["request_id"] for r in chat2] == [logged[3], logged[1]]
    assert len(call(base, "GET", "/requests", params={"channel": "chat", "status": 200}).json()["data"]) >= 5
    assert call(base, "GET", "/requests", params={"status": 500}).json()["data"] == []
    assert call(base, "GET", "/requests", params={"channel": "nowhere"}).json()["data"] == []
    one = call(base, "GET", f"/requests/{logged[0]}").json()
    window = call(base, "GET", "/requests", params={"since": one["time"], "until": one["time"] + 1e-6}).json()
    assert logged[0] in [r["request_id"] for r in window["data"]]
    assert call(base, "GET", "/requests", params={"until": one["time"], "key": "user"}).json()["data"] == []
    assert one["requested_model"] == "chat-1" and one["status"] == 200 and one["channel"] == "chat"
    openai_error(call(base, "GET", "/requests/no-such-request"), 404)
    for bad in ({"limit": 201}, {"cursor": "garbage!"}, {"since": "yesterday"}, {"status": "ok"}):
        openai_error(call(base, "GET", "/requests", params=bad), 400)


# ---- OpenAPI -------------------------------------------------------------------------------------------


def test_openapi_documents_every_admin_route_and_is_valid(base: str) -> None:
    from relay.admin.api import ROUTES

    served = call(base, "GET", "/openapi.json", VIEWER)
    assert served.status_code == 200
    spec = served.json()
    assert spec == document()
    for route in ROUTES:
        assert route.method.lower() in spec["paths"][route.path], (route.method, route.path)
    validator = pytest.importorskip("openapi_spec_validator", reason="pip install -e '.[test]' installs it")
    validator.validate(spec)


# ---- relay.toml ----------------------------------------------------------------------------------------


def test_admin_keys_config_checks() -> None:
    from relay.config import ConfigError, loads

    good = loads(
        f'[[admin_keys]]\nname = "a"\nkey = "{ADMIN}"\n[[admin_keys]]\nname = "v"\nkey = "{VIEWER}"\nrole = "viewer"'
    )
    assert [(k.name, k.role) for k in good.admin_keys] == [("a", "admin"), ("v", "viewer")]
    with pytest.raises(ConfigError) as raised:
        loads(
            f'[[keys]]\nname = "u"\nkey = "{RELAY_KEY}"\n'
            f'[[admin_keys]]\nname = "a"\nkey = "short"\n'
            f'[[admin_keys]]\nname = "a"\nkey = "{RELAY_KEY}"\n'
            f'[[admin_keys]]\nname = "b"\nkey = "{ADMIN}"\nrole = "owner"'
        )
    text = "\n".join(raised.value.problems)
    assert "admin_keys[0].key: use at least 16 characters" in text
    assert "admin_keys[1].key: is also a key of [[keys]]" in text
    assert "admin_keys[1].name: duplicate 'a'" in text
    assert "admin_keys[2].role: must be one of 'admin', 'viewer', got 'owner'" in text

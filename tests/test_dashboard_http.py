"""The web dashboard over HTTP, through ``relay serve`` in front of ``relay mock-upstream``: its static files
(content types, ETags, the Content-Security-Policy, no way out of the bundle), ``/`` sending browsers to it,
sign-in sessions (accepted, expired, tampered with, signed by a key that changed), the overview's time series and
the playground's billing and refusals."""

from __future__ import annotations

import html.parser
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from relay.admin import session
from relay.dashboard.serve import files
from relay.store.keys import digest
from tests.conftest import process
from tests.helpers import MOCK_ARGS, raw_request, sse_data

ADMIN = "sk-admin-dash-0123456789abcdef"
VIEWER = "sk-viewer-dash-0123456789abcdef"
USER_KEY = "sk-relay-dashboard-user-000"
PRICE_IN, PRICE_OUT = 2.0, 4.0  # credits per million tokens


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

[[prices]]
model = "chat-*"
input = {PRICE_IN}
output = {PRICE_OUT}

[[keys]]
name = "user"
key = "{USER_KEY}"
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
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of relay.toml and the store."""
    return tmp_path_factory.mktemp("dashboard_http")


@pytest.fixture(scope="module")
def base(root: Path) -> Iterator[str]:
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", f"sqlite:///{root}/relay.db"))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}"


def sign_in(base: str, key: str = ADMIN) -> str:
    reply = httpx.post(base + "/admin/v1/session", headers={"authorization": f"Bearer {key}"}, timeout=10)
    assert reply.status_code == 201, reply.text
    return reply.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def openai_error(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def logged(base: str, request_id: str) -> dict[str, Any]:
    """The request log's row of ``request_id``, once written (the log is written in batches)."""
    deadline = time.monotonic() + 10
    while (reply := httpx.get(f"{base}/admin/v1/requests/{request_id}", headers=bearer(ADMIN))).status_code != 200:
        assert time.monotonic() < deadline, reply.text
        time.sleep(0.05)
    return reply.json()


def playground(base: str, token: str, key: str | None, **body: Any) -> httpx.Response:
    headers = bearer(token) | ({"x-relay-key": key} if key is not None else {})
    payload = {"model": "chat-1", "messages": [{"role": "user", "content": "hello playground"}], **body}
    return httpx.post(base + "/pg/chat/completions", headers=headers, json=payload, timeout=10)


# ---- static files -------------------------------------------------------------------------------------------


def test_the_page_and_its_files_have_types_etags_and_a_strict_policy(base: str) -> None:
    page = httpx.get(base + "/dashboard")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["cache-control"] == "no-cache"
    for path, kind in (
        ("/dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/style.css", "text/css; charset=utf-8"),
        ("/dashboard/vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        ("/dashboard/vendor/uPlot.min.css", "text/css; charset=utf-8"),
    ):
        reply = httpx.get(base + path)
        assert reply.status_code == 200 and reply.headers["content-type"] == kind, path
        assert reply.headers["content-security-policy"] == policy
        again = httpx.get(base + path, headers={"if-none-match": reply.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", path
        other = httpx.get(base + path, headers={"if-none-match": '"something-else"'})
        assert other.status_code == 200 and other.content == reply.content
    assert httpx.get(base + "/dashboard/").content == page.content


def test_the_page_has_no_inline_script() -> None:
    """Every script of the page is a file of the bundle (the policy would block any other), and the code builds
    its elements without innerHTML or eval."""

    class Scripts(html.parser.HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.sources: list[str | None] = []
            self.inline: list[str] = []
            self.handlers: list[str] = []
            self._in_script = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.handlers += [name for name, _ in attrs if name.startswith("on")]
            if tag == "script":
                self.sources.append(dict(attrs).get("src"))
                self._in_script = True

        def handle_endtag(self, tag: str) -> None:
            self._in_script = self._in_script and tag != "script"

        def handle_data(self, data: str) -> None:
            if self._in_script and data.strip():
                self.inline.append(data)

    bundle = files()
    parser = Scripts()
    parser.feed(bundle["index.html"][0].decode())
    assert parser.sources == ["/dashboard/vendor/uPlot.iife.min.js", "/dashboard/app.js"]
    assert parser.inline == [] and parser.handlers == []
    code = bundle["app.js"][0].decode()
    assert ".innerHTML" not in code and "eval(" not in code and "new Function" not in code


@pytest.mark.parametrize(
    "target",
    [
        "/dashboard/../pyproject.toml",
        "/dashboard/../../relay/config.py",
        "/dashboard/%2e%2e/serve.py",
        "/dashboard/..%2fserve.py",
        "/dashboard/vendor/..%2f..%2fserve.py",
        "/dashboard/vendor/%2e%2e/%2e%2e/__init__.py",
        "/dashboard//etc/passwd",
        "/dashboard/%2fetc%2fpasswd",
        "/dashboard/vendor/README.md",
        "/dashboard/serve.py",
        "/dashboard/static/app.js",
    ],
)
async def test_nothing_outside_the_bundle_is_served(base: str, target: str) -> None:
    reply = await raw_request(base, "GET", target)
    assert reply.status in (400, 404), (target, reply.status)
    assert b"import" not in reply.body and b"root:" not in reply.body and b"[project]" not in reply.body
    if reply.status == 404:
        assert set(reply.json()["error"]) == {"message", "type", "param", "code"}


def test_the_root_sends_browsers_to_the_dashboard(base: str) -> None:
    browser = httpx.get(base + "/", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code == 302 and browser.headers["location"] == "/dashboard"
    openai_error(httpx.get(base + "/", headers={"accept": "application/json"}), 404)


# ---- sessions -----------------------------------------------------------------------------------------------


def test_a_session_stands_for_its_admin_key(base: str) -> None:
    token = sign_in(base)
    assert token.startswith("rs1.") and ADMIN not in token
    assert httpx.get(base + "/admin/v1/session", headers=bearer(token)).json() == {
        "object": "session",
        "name": "root",
        "role": "admin",
    }
    assert httpx.get(base + "/admin/v1/keys", headers=bearer(token)).status_code == 200
    made = httpx.post(base + "/admin/v1/keys", headers=bearer(token), json={"name": "by-session"})
    assert made.status_code == 201, made.text
    # A session does not make another: signing in takes the admin key itself.
    assert openai_error(httpx.post(base + "/admin/v1/session", headers=bearer(token)), 400)["code"] == (
        "session_not_renewable"
    )


def test_a_viewer_session_only_reads(base: str) -> None:
    token = sign_in(base, VIEWER)
    assert httpx.get(base + "/admin/v1/session", headers=bearer(token)).json()["role"] == "viewer"
    assert httpx.get(base + "/admin/v1/requests", headers=bearer(token)).status_code == 200
    openai_error(httpx.post(base + "/admin/v1/keys", headers=bearer(token), json={"name": "nope"}), 403)
    openai_error(playground(base, token, "user"), 403)


def test_sign_in_refuses_what_is_not_an_admin_key(base: str) -> None:
    openai_error(httpx.post(base + "/admin/v1/session"), 401)
    openai_error(httpx.post(base + "/admin/v1/session", headers=bearer(USER_KEY)), 401)
    openai_error(httpx.post(base + "/admin/v1/session", headers=bearer("sk-not-an-admin-key-000")), 401)


def _swap(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


def test_expired_tampered_and_revoked_sessions_are_refused(base: str) -> None:
    def code(token: str) -> str | None:
        return openai_error(httpx.get(base + "/admin/v1/keys", headers=bearer(token)), 401)["code"]

    now = time.time()
    # Signed by root's key but over: expired.
    expired, _ = session.issue("root", "admin", digest(ADMIN), now - session.TTL - 1)
    assert code(expired) == "session_expired"
    fresh, _ = session.issue("root", "admin", digest(ADMIN), now)
    assert httpx.get(base + "/admin/v1/keys", headers=bearer(fresh)).status_code == 200
    # A viewer's token raised to admin, its expiry pushed, its name changed, its signature bent: all refused.
    viewer = sign_in(base, VIEWER)
    assert code(_swap(viewer, 2, "admin")) == "invalid_session"
    assert code(_swap(viewer, 3, str(int(now) + 10 * session.TTL))) == "invalid_session"
    assert code(_swap(viewer, 1, fresh.split(".")[1])) == "invalid_session"
    mac = viewer.split(".")[4]
    assert code(_swap(viewer, 4, ("A" if mac[0] != "A" else "B") + mac[1:])) == "invalid_session"
    # Signed by a key root no longer has (its key changed in relay.toml), or by a name that is not an admin key.
    assert code(session.issue("root", "admin", digest("sk-an-old-root-key-0000"), now)[0]) == "invalid_session"
    assert code(session.issue("ghost", "admin", digest(ADMIN), now)[0]) == "invalid_session"
    # The shape of a session but not one.
    assert code("rs1.x.admin.notanumber.y") == "invalid_admin_key"


def test_a_store_admin_key_s_sessions_end_when_it_is_disabled_or_deleted(base: str, root: Path) -> None:
    def admin_keys(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "relay", "admin-keys", "--config", str(root / "relay.toml"), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    secret = json.loads(admin_keys("create", "night-shift", "--json"))["secret"]
    token = settles_on(201, lambda: httpx.post(base + "/admin/v1/session", headers=bearer(secret))).json()["token"]

    def reads() -> httpx.Response:
        return httpx.get(base + "/admin/v1/keys", headers=bearer(token))

    assert reads().status_code == 200
    admin_keys("disable", "night-shift")
    assert settles_on(401, reads).json()["error"]["code"] == "invalid_session"
    admin_keys("enable", "night-shift")
    settles_on(200, reads)
    admin_keys("delete", "night-shift")
    settles_on(401, reads)


# ---- the overview's time series -----------------------------------------------------------------------------


def test_stats_count_the_logged_requests(base: str) -> None:
    since = time.time() - 1
    ids = []
    for model in ("chat-1", "chat-2", "chat-1"):
        reply = httpx.post(
            base + "/v1/chat/completions",
            headers=bearer(USER_KEY),
            json={"model": model, "messages": [{"role": "user", "content": "stats"}]},
        )
        assert reply.status_code == 200, reply.text
        ids.append(reply.headers["x-request-id"])
    refused = httpx.post(base + "/v1/chat/completions", headers=bearer("sk-wrong-key-000000"), json={})
    assert refused.status_code == 401
    rows = [logged(base, request_id) for request_id in ids]
    logged(base, refused.headers["x-request-id"])
    until = time.time() + 1
    reply = httpx.get(
        base + "/admin/v1/stats", headers=bearer(sign_in(base, VIEWER)), params={"since": since, "until": until}
    )
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["bucket"] == 60 and len(answer["data"]) == 1
    bucket = answer["data"][0]
    # Only this test's requests were logged in its window (the module's other tests make theirs elsewhere in time
    # or not at all): its three answers and one refusal.
    window = httpx.get(base + "/admin/v1/requests", headers=bearer(ADMIN), params={"since": since, "until": until})
    assert bucket["requests"] == len(window.json()["data"]) >= 4
    assert bucket["errors"] == sum(r["status"] >= 400 for r in window.json()["data"]) >= 1
    assert bucket["cost_micros"] == sum(r["cost_micros"] for r in window.json()["data"]) > 0
    latencies = sorted(r["latency_ms"] for r in window.json()["data"])
    assert bucket["latency_ms_p99"] == latencies[-1] and bucket["latency_ms_p50"] in latencies
    assert bucket["ttft_ms_p50"] in [r["ttft_ms"] for r in rows]


@pytest.mark.parametrize(
    "params",
    [
        {"since": "100", "until": "100"},
        {"since": "soon"},
        {"bucket": "0"},
        {"bucket": "1.5"},
        {"since": "0", "until": "1000000", "bucket": "60"},
    ],
)
def test_stats_refuse_bad_windows(base: str, params: dict[str, str]) -> None:
    openai_error(httpx.get(base + "/admin/v1/stats", headers=bearer(ADMIN), params=params), 400)


# ---- the playground -----------------------------------------------------------------------------------------


def settles_on(wanted: int, attempt: Callable[[], httpx.Response]) -> httpx.Response:
    """``attempt()`` until it answers ``wanted`` (within 10 s: a running Relay sees a new or changed key within
    ``[store] key_refresh``)."""
    deadline = time.monotonic() + 10
    while (reply := attempt()).status_code != wanted:
        assert time.monotonic() < deadline, (wanted, reply.status_code, reply.text)
        time.sleep(0.05)
    return reply


def _balance(base: str, name: str) -> int:
    return httpx.get(f"{base}/admin/v1/keys/{name}", headers=bearer(ADMIN)).json()["balance_micros"]


def test_the_playground_streams_and_bills_the_named_key(base: str) -> None:
    token = sign_in(base)
    made = httpx.post(base + "/admin/v1/keys", headers=bearer(token), json={"name": "pg-billed", "quota": "3"})
    assert made.status_code == 201, made.text
    options = {"stream": True, "stream_options": {"include_usage": True}}
    reply = settles_on(200, lambda: playground(base, token, "pg-billed", **options))
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = sse_data(reply.content)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    usage = next(c["usage"] for c in chunks if c.get("usage"))
    assert text and usage["prompt_tokens"] > 0
    row = logged(base, reply.headers["x-request-id"])
    assert (row["key_name"], row["route"], row["status"], row["stream"]) == (
        "pg-billed",
        "/pg/chat/completions",
        200,
        True,
    )
    cost = round(usage["prompt_tokens"] * PRICE_IN + usage["completion_tokens"] * PRICE_OUT)
    assert row["cost_micros"] == cost > 0
    deadline = time.monotonic() + 10
    while _balance(base, "pg-billed") != 3_000_000 - cost:  # settled on the key like any request
        assert time.monotonic() < deadline, _balance(base, "pg-billed")
        time.sleep(0.05)


def test_the_playground_refuses_keys_it_cannot_bill(base: str) -> None:
    token = sign_in(base)
    assert openai_error(playground(base, token, None), 400)["code"] == "missing_key_name"
    assert openai_error(playground(base, token, "no-such-key"), 404)["code"] == "key_not_found"
    made = httpx.post(base + "/admin/v1/keys", headers=bearer(token), json={"name": "pg-off", "models": ["chat-1"]})
    assert made.status_code == 201, made.text
    settles_on(200, lambda: playground(base, token, "pg-off"))
    assert openai_error(playground(base, token, "pg-off", model="chat-2"), 403)["code"] == "model_not_allowed"
    httpx.post(base + "/admin/v1/keys/pg-off/disable", headers=bearer(token)).raise_for_status()
    reply = settles_on(403, lambda: playground(base, token, "pg-off"))
    error = openai_error(reply, 403)
    assert error["code"] == "key_disabled" and "pg-off" in error["message"]
    row = logged(base, reply.headers["x-request-id"])
    assert (row["key_name"], row["status"], row["cost_micros"]) == ("pg-off", 403, 0)


def test_the_playground_needs_an_admin_session(base: str) -> None:
    openai_error(httpx.post(base + "/pg/chat/completions", headers={"x-relay-key": "user"}, json={}), 401)
    # A relay key is not an admin: it cannot bill another key (nor itself) through the playground.
    openai_error(playground(base, USER_KEY, "user"), 401)
    openai_error(playground(base, sign_in(base, VIEWER), "user"), 403)


async def test_a_dashboard_file_is_not_a_logged_request(base: str) -> None:
    """The page and its files are not requests to log: only API calls are."""
    reply = await raw_request(base, "GET", "/dashboard/app.js")
    assert reply.status == 200
    request_id = reply.headers[b"x-request-id"].decode()
    with trio.move_on_after(0.5):
        while True:
            assert httpx.get(f"{base}/admin/v1/requests/{request_id}", headers=bearer(ADMIN)).status_code == 404
            await trio.sleep(0.05)

"""No upstream secret, upstream text or channel name reaches a client (issue 9, finding 1).

An in-test upstream answers every request with an error that echoes the key Relay sent it (as OpenAI's
"Incorrect API key provided" does, and some servers with the whole header), or with an nginx HTML page.
For each client dialect and each channel type, the client gets Relay's own message in its own shape with
the failure's class kept (an upstream 401 is a 502 ``upstream_auth_failed``, never the client's own 401),
and the request log's ``error_detail`` has the upstream's text, redacted, and the channel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relay.http.messages import Request, Response, StreamResponse
from relay.redact import redact
from tests.conftest import KEY, config_from, serve_app, serve_relay
from tests.gateway_e2e.conftest import logs, post
from tests.helpers import RawResponse, Upstream

OPENAI_KEY = "sk-proj-UpstreamSecret7Qx2Lm9Vb4Nc8Zt"
ANTHROPIC_KEY = "sk-ant-api03-UpstreamSecret5Rk1Wp6Yd3Hg"
GEMINI_KEY = "AIzaSyUpstreamSecret0Jf4Ku8Ms2Qv6Xz1Bc"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY, "UpstreamSecret")
CHANNELS = {"o": "chan-openai-private", "a": "chan-anthropic-private", "g": "chan-gemini-private"}
#: Text only the upstream says: the client must not see it for 401/403/5xx.
MARKER = "upstream-internal-marker"

NGINX_500 = f"""<html>
<head><title>500 Internal Server Error</title><style>body {{ width: 35em; }}</style></head>
<body>
<center><h1>500 Internal Server Error</h1></center>
<hr><center>nginx/1.18.0 ({MARKER})</center>
</body>
</html>
"""


def received_key(request: Request) -> str:
    for name in (b"x-api-key", b"x-goog-api-key"):
        value = request.header(name)
        if value:
            return value
    return request.header(b"authorization") or ""


def model_of(request: Request) -> str:
    if ":" in request.path:  # Gemini: /v1beta/models/{model}:generateContent
        return request.path.rsplit("/", 1)[1].split(":", 1)[0]
    return json.loads(request.body)["model"]


def error_body(kind: str, status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """An error of the channel's dialect (``kind``: ``o``, ``a``, ``g``)."""
    if kind == "a":
        types = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error"}
        types |= {429: "rate_limit_error", 503: "api_error", 529: "overloaded_error"}
        return {"type": "error", "error": {"type": types.get(status, "api_error"), "message": message}}
    if kind == "g":
        error: dict[str, Any] = {"code": status, "message": message, "status": "INVALID_ARGUMENT"}
        if reason:
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
        return {"error": error}
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": reason}}


async def answer(request: Request, out: StreamResponse) -> Response:
    """The fault the model names (``{o|a|g}-{fault}-1``), with the key the upstream got in its text."""
    kind, fault, _ = model_of(request).split("-", 2)
    key = received_key(request)
    if fault == "html":
        return Response(500, NGINX_500.encode(), ((b"content-type", b"text/html"),))
    if fault == "auth":
        if kind == "g":  # Google answers a bad key with 400 API_KEY_INVALID
            body = error_body("g", 400, f"API key not valid. Please pass a valid API key. {MARKER}", "API_KEY_INVALID")
            return Response.json(400, body)
        return Response.json(
            401, error_body(kind, 401, f"Incorrect API key provided: {key}. {MARKER}", "invalid_api_key")
        )
    if fault == "forbidden":
        return Response.json(403, error_body(kind, 403, f"key {key} may not use this model {MARKER}"))
    if fault == "bad":
        message = f"max_tokens is too large: 999999 > 8192 (request sent with key={key})"
        return Response.json(400, error_body(kind, 400, message))
    if fault == "limit":
        return Response.json(429, error_body(kind, 429, f"rate limit for {key} {MARKER}"), ((b"retry-after", b"7"),))
    if fault == "down":
        return Response.json(503, error_body(kind, 503, f"backend pool {MARKER} unavailable"))
    if fault == "over":
        return Response.json(529, error_body(kind, 529, f"Overloaded {MARKER}"))
    raise AssertionError(fault)


def relay_config(base: str, store: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
log_interval = 0.05

[routing]
max_attempts = 1
key_rest = 1e-9  # every request finds the one key back: each test provokes refusals on purpose
key_set_aside = 1e-9
breaker_failures = 1000

[[channels]]
name = "{CHANNELS["o"]}"
type = "openai"
base_url = "{base}/v1"
api_key = "{OPENAI_KEY}"
models = ["o-*"]

[[channels]]
name = "{CHANNELS["a"]}"
type = "anthropic"
base_url = "{base}"
api_key = "{ANTHROPIC_KEY}"
models = ["a-*"]

[[channels]]
name = "{CHANNELS["g"]}"
type = "gemini"
base_url = "{base}"
api_key = "{GEMINI_KEY}"
models = ["g-*"]

[[keys]]
name = "test"
key = "{KEY}"
"""


CLIENTS = ("openai_chat", "openai_responses", "anthropic", "gemini")


async def ask(url: str, client: str, model: str, *, stream: bool = False) -> RawResponse:
    """One generation request in the ``client`` dialect."""
    text = [{"role": "user", "content": "hi"}]
    if client == "gemini":
        verb = "streamGenerateContent?alt=sse" if stream else "generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        return await post(url, f"/v1beta/models/{model}:{verb}", json.dumps(body).encode())
    if client == "anthropic":
        body = {"model": model, "max_tokens": 64, "messages": text, "stream": stream}
        return await post(url, "/v1/messages", json.dumps(body).encode())
    if client == "openai_responses":
        body = {"model": model, "input": "hi", "stream": stream}
        return await post(url, "/v1/responses", json.dumps(body).encode())
    return await post(
        url, "/v1/chat/completions", json.dumps({"model": model, "messages": text, "stream": stream}).encode()
    )


def message_of(client: str, answer: RawResponse) -> tuple[str, str | None]:
    """(message, code or error type) of an error answer, checking the client's error shape."""
    payload = answer.json()
    error = payload["error"]
    if client == "anthropic":
        assert payload["type"] == "error"
        return error["message"], error["type"]
    if client == "gemini":
        assert error["code"] == answer.status
        return error["message"], error["status"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error["message"], error["code"]


def assert_nothing_leaks(answer: RawResponse) -> None:
    text = answer.body.decode()
    for secret in SECRETS:
        assert secret not in text, text
    for name in CHANNELS.values():
        assert name not in text, text
    assert "<html" not in text.lower() and "nginx" not in text


@pytest.fixture
async def served(tmp_path: Path) -> Any:
    store = f"sqlite:///{tmp_path}/relay.db"
    async with serve_app(Upstream(answer)) as up, serve_relay(config_from(relay_config(up.url, store))) as relay:
        yield relay.url, store


# ---- the client's answer ---------------------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("kind", ["o", "a", "g"])
async def test_an_upstream_401_is_a_502_without_the_key_the_channel_or_the_upstream_text(served, client, kind):
    url, _ = served
    for stream in (False, True):
        answer = await ask(url, client, f"{kind}-auth-1", stream=stream)
        assert answer.status == 502, answer.body
        assert_nothing_leaks(answer)
        message, code = message_of(client, answer)
        assert MARKER not in message and "Incorrect API key" not in message
        assert "upstream authentication failed" in message
        if client.startswith("openai"):
            assert code == "upstream_auth_failed"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("kind", ["o", "a", "g"])
async def test_403_html_500_and_503_keep_their_class_and_nothing_of_the_upstream(served, client, kind):
    url, _ = served
    for fault, status in (("forbidden", 502), ("html", 502), ("down", 503)):
        answer = await ask(url, client, f"{kind}-{fault}-1")
        assert answer.status == status, (fault, answer.body)
        assert_nothing_leaks(answer)
        message, _ = message_of(client, answer)
        assert MARKER not in message and "Internal Server Error" not in message


@pytest.mark.parametrize("client", CLIENTS)
async def test_overloaded_stays_overloaded_for_anthropic_clients_and_is_a_503_for_the_others(served, client):
    url, _ = served
    answer = await ask(url, client, "a-over-1")
    assert_nothing_leaks(answer)
    message, code = message_of(client, answer)
    assert MARKER not in message
    if client == "anthropic":
        assert (answer.status, code) == (529, "overloaded_error")
    else:
        assert answer.status == 503


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("kind", ["o", "a", "g"])
async def test_an_upstream_429_stays_a_429_with_its_retry_after_and_without_its_text(served, client, kind):
    url, _ = served
    answer = await ask(url, client, f"{kind}-limit-1")
    assert answer.status == 429
    assert answer.headers[b"retry-after"] == b"7"
    assert_nothing_leaks(answer)
    assert MARKER not in message_of(client, answer)[0]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("kind", ["o", "a", "g"])
async def test_a_client_caused_400_keeps_the_upstreams_reason_redacted(served, client, kind):
    url, _ = served
    answer = await ask(url, client, f"{kind}-bad-1")
    assert answer.status == 400
    assert_nothing_leaks(answer)
    message, _ = message_of(client, answer)
    assert message.startswith("the upstream rejected the request: max_tokens is too large: 999999 > 8192")
    assert "key=***" in message


# ---- the operator's account -----------------------------------------------------------------------------


async def test_the_request_log_has_the_redacted_upstream_text_and_the_channel(served):
    url, store = served
    answers = [await ask(url, "anthropic", "o-auth-1"), await ask(url, "openai_chat", "a-html-1")]
    assert [a.status for a in answers] == [502, 502]
    rows = await logs(store, 2)
    assert [row.status for row in rows] == [502, 502]
    by_channel = {row.channel: row.error_detail or "" for row in rows}
    auth = by_channel[CHANNELS["o"]]
    assert CHANNELS["o"] in auth and "upstream answered 401" in auth and "Incorrect API key provided" in auth
    html = by_channel[CHANNELS["a"]]
    assert CHANNELS["a"] in html and "upstream answered 500" in html and "500 Internal Server Error" in html
    assert "<" not in html
    for detail in by_channel.values():
        assert not any(secret in detail for secret in SECRETS), detail


async def test_a_token_count_refused_by_the_upstream_is_a_502_and_logged(served):
    url, store = served
    body = {"model": "a-auth-1", "messages": [{"role": "user", "content": "hi"}]}
    answer = await post(url, "/v1/messages/count_tokens", json.dumps(body).encode())
    assert answer.status == 502
    assert_nothing_leaks(answer)
    (row,) = await logs(store, 1)
    assert CHANNELS["a"] in (row.error_detail or "") and ANTHROPIC_KEY not in (row.error_detail or "")


# ---- redact -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        (  # OpenAI's 401 text, a masked key
            "Incorrect API key provided: sk-upstr************************ey12. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "Incorrect API key provided: sk-***. You can find your API key at https://platform.openai.com",
            "ey12",
        ),
        ("Incorrect API key provided: Bearer sk-upstream-9fQ2xL", "Incorrect API key provided: Bearer ***", "9fQ2xL"),
        (  # Anthropic
            '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}} '
            "x-api-key: sk-ant-api03-AbCdEf012345-xyz",
            "authentication_error",
            "AbCdEf012345",
        ),
        (  # Google's API_KEY_INVALID, and a key in a query string
            "API key not valid. Please pass a valid API key. https://generativelanguage.googleapis.com/v1beta/"
            "models/gemini-pro:generateContent?key=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv&alt=sse",
            "API key not valid. Please pass a valid API key.",
            "AIzaSyA1b2",
        ),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl here", "token *** here", "eyJhbGci"),
        ("proxy https://relay:hunter22@proxy.internal:3128 refused", "https://***@proxy.internal:3128", "hunter22"),
        ('{"api_key": "abc123", "password=pw0rd"}', '"api_key": "***"', "pw0rd"),
        ("azure key 0123456789abcdef0123456789abcdef failed", "azure key *** failed", "0123456789abcdef0123"),
        ("aws wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY denied", "aws *** denied", "wJalrXUtnFEMI"),
    ],
)
def test_redact_masks_what_looks_like_a_credential(text, kept, gone):
    out = redact(text)
    assert kept in out and gone not in out, out


def test_redact_turns_an_html_page_into_one_line_of_its_text():
    out = redact(NGINX_500)
    assert out == f"500 Internal Server Error 500 Internal Server Error nginx/1.18.0 ({MARKER})"


def test_redact_keeps_ordinary_text_and_ids_and_truncates():
    text = "This model's maximum context length is 128000 tokens (request req_0123456789abcdef0123456789abcdef)."
    assert redact(text) == text
    assert redact("a  b\n\tc") == "a b c"
    long = redact("word " * 1000, 50)
    assert len(long) == 50 and long.endswith("…")
    assert redact("the key is plain-words-here", secrets=["plain-words-here"]) == "the key is ***"
    huge = redact("x " * 200_000 + OPENAI_KEY)  # past what is read: cut at a space, never half a key shown
    assert "UpstreamSecret" not in huge

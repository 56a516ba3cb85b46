"""``/v1/search`` and ``/v1/retrieve`` through ``relay serve`` in front of ``relay mock-upstream``'s search engine:
each provider's client (Tavily, Exa, Brave, SearXNG) against the mock's wire shapes and the in-process mock, JSON and
form bodies, bad requests, a provider down or failing (OpenAI's error shape), a chat model refused, and the
request log's billed request units and cost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.mock.wire_search import results, slug
from tests.conftest import process
from tests.helpers import MOCK_ARGS

KEY = "sk-relay-search-tests"
ADMIN = "sk-admin-search-tests-0123456789"


def relay_toml(upstream: str, store: str, closed: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
log_interval = 0.05

[routing]
breaker_failures = 1000   # the error tests below fail each provider many times
key_set_aside = 0.001     # and make it refuse its key (401): set aside for a moment only

[utility]
search_model = "web"

[[channels]]
name = "tavily"
type = "tavily"
base_url = "{upstream}"
api_key = "tvly-test"
models = ["web", "tavily-*"]
[channels.model_map]
tavily-deep = "advanced"

[[channels]]
name = "exa"
type = "exa"
base_url = "{upstream}"
api_key = "exa-test"
models = ["exa"]

[[channels]]
name = "brave"
type = "brave"
base_url = "{upstream}"
api_key = "brave-test"
models = ["brave"]

[[channels]]
name = "searxng"
type = "searxng"
base_url = "{upstream}"
models = ["searx"]

[[channels]]
name = "inproc"
type = "mock"
models = ["mock-search"]
[channels.mock]
dialect = "tavily"

[[channels]]
name = "down"
type = "tavily"
base_url = "{closed}"
models = ["down"]
[channels.timeouts]
connect = 2.0

[[channels]]
name = "first-down"
type = "tavily"
base_url = "{closed}"
models = ["fallback"]
priority = 1

[[channels]]
name = "backup"
type = "searxng"
base_url = "{upstream}"
models = ["fallback"]

[[channels]]
name = "chat"
type = "openai"
base_url = "{upstream}/v1"
models = ["mock-1"]

[[channels]]
name = "reranker"
type = "openai"
base_url = "{upstream}/v1"
models = ["rerank-*"]

[[prices]]
model = "web"
request = 0.005

[[prices]]
model = "rerank-*"
input = 1.0

[[keys]]
name = "searcher"
key = "{KEY}"

[[admin_keys]]
name = "root"
key = "{ADMIN}"
"""


def closed_port() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(Relay's base URL, the mock upstream's)."""
    root: Path = tmp_path_factory.mktemp("search")
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", f"sqlite:///{root}/relay.db", closed_port()))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}", f"http://{upstream}"


def search(
    base: str, path: str = "/v1/search", key: str = KEY, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", **(headers or {})}
    return httpx.post(base + path, headers=headers, timeout=20, **kwargs)


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert "type" in error
    return error


@pytest.mark.parametrize("model", ["web", "exa", "brave", "searx"])
def test_each_provider_answers_the_mocks_results_in_one_shape(servers: tuple[str, str], model: str) -> None:
    base, upstream = servers
    reply = search(base, json={"model": model, "query": "Trio structured concurrency", "max_results": 3})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "search.results"
    assert body["model"] == model and body["query"] == "Trio structured concurrency"
    assert body["usage"] == {"requests": 1}
    expected = results("Trio structured concurrency", upstream, 3)
    assert [r["url"] for r in body["results"]] == [e["url"] for e in expected]
    assert [r["title"] for r in body["results"]] == [e["title"] for e in expected]
    for got, want in zip(body["results"], expected, strict=True):
        assert set(got) == {"title", "url", "snippet", "score"}
        assert got["snippet"] == want["content"]  # Brave's <strong> marks taken out
        assert isinstance(got["score"], float)
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    if model == "brave":  # no score from Brave: one from the rank
        assert scores == [1.0, pytest.approx(2 / 3), pytest.approx(1 / 3)]
    else:
        assert scores == [e["score"] for e in expected]


def test_same_query_same_results_and_retrieve_alias_input_alias(servers: tuple[str, str]) -> None:
    base, _ = servers
    first = search(base, json={"query": "deterministic"}).json()  # [utility] search_model = "web"
    again = search(base, "/v1/retrieve", json={"input": "deterministic"}).json()
    assert first["results"] == again["results"]
    assert len(first["results"]) == 5  # the default max_results
    assert f"/pages/{slug('deterministic')}-1.html" in first["results"][0]["url"]


def test_form_bodies(servers: tuple[str, str]) -> None:
    base, _ = servers
    encoded = search(base, data={"query": "form search", "model": "searx", "max_results": "2"})
    assert encoded.status_code == 200, encoded.text
    assert len(encoded.json()["results"]) == 2
    multipart = search(base, files={"input": (None, "form search"), "model": (None, "exa"), "max_results": (None, "2")})
    assert multipart.status_code == 200, multipart.text
    assert [r["url"] for r in multipart.json()["results"]] == [r["url"] for r in encoded.json()["results"]]


def test_in_process_mock_provider(servers: tuple[str, str]) -> None:
    base, _ = servers
    body = search(base, json={"model": "mock-search", "query": "in process"}).json()
    assert [r["url"] for r in body["results"]] == [r["url"] for r in results("in process", "http://mock.invalid", 5)]


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "web"}, "query"),
        ({"query": ""}, "query"),
        ({"query": 3}, "query"),
        ({"query": "x" * 2001}, "query"),
        ({"query": "q", "max_results": 0}, "max_results"),
        ({"query": "q", "max_results": 21}, "max_results"),
        ({"query": "q", "max_results": "three"}, "max_results"),
        ({"query": "q", "input": "other"}, "query"),
        ({"query": "q", "model": 5}, "model"),
    ],
)
def test_bad_requests(servers: tuple[str, str], payload: dict[str, Any], param: str) -> None:
    error = openai_error(search(servers[0], json=payload), 400)
    assert error["param"] == param


def test_not_json_and_bad_key(servers: tuple[str, str]) -> None:
    base, _ = servers
    openai_error(search(base, content=b"{not json", headers={"content-type": "application/json"}), 400)
    openai_error(search(base, key="sk-wrong", json={"query": "q"}), 401)
    openai_error(search(base, json={"query": "q", "model": "no-such-provider"}), 404)


def test_a_chat_model_is_no_search_provider_and_a_search_model_no_chat_model(servers: tuple[str, str]) -> None:
    base, _ = servers
    error = openai_error(search(base, json={"query": "q", "model": "mock-1"}), 400)
    assert error["code"] == "unsupported_model" and "no search provider" in error["message"]
    chat = httpx.post(
        base + "/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}"},
        json={"model": "web", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert openai_error(chat, 400)["code"] == "unsupported_model"


def test_provider_down_is_a_502(servers: tuple[str, str]) -> None:
    error = openai_error(search(servers[0], json={"query": "q", "model": "down"}), 502)
    assert "tvly" not in error["message"]


@pytest.mark.parametrize(("status", "client"), [(500, 502), (503, 503), (401, 502), (400, 400)])
@pytest.mark.parametrize("model", ["web", "exa", "brave", "searx"])
def test_provider_errors_in_openai_shape(servers: tuple[str, str], model: str, status: int, client: int) -> None:
    error = openai_error(search(servers[0], json={"query": f"boom mock:status={status}", "model": model}), client)
    assert "mock search" not in error["message"] or client == 400  # the provider's words stay out but for a 400


def logged(base: str, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        found = httpx.get(
            f"{base}/admin/v1/requests/{request_id}", headers={"authorization": f"Bearer {ADMIN}"}, timeout=10
        )
        if found.status_code == 200:
            return found.json()
        assert time.monotonic() < deadline, "the request did not reach the request log"
        time.sleep(0.05)


def test_billed_per_request_in_the_log(servers: tuple[str, str]) -> None:
    base, _ = servers
    reply = search(base, json={"query": "billing check", "model": "web"})
    assert reply.status_code == 200
    row = logged(base, reply.headers["x-request-id"])
    assert row["requested_model"] == "web" and row["channel"] == "tavily" and row["status"] == 200
    assert row["request_units"] == 1
    assert row["cost_micros"] == 5000  # 0.005 credits a request


def test_rerank_orders_the_results_again_as_a_request_of_its_own(servers: tuple[str, str]) -> None:
    base, _ = servers
    query = "rerank these results please"
    plain = search(base, json={"query": query, "model": "web"}).json()["results"]
    reply = search(base, json={"query": query, "model": "web", "rerank": "rerank-1"})
    assert reply.status_code == 200, reply.text
    again = reply.json()["results"]
    assert sorted(r["url"] for r in again) == sorted(r["url"] for r in plain)
    scores = [r["score"] for r in again]
    assert scores == sorted(scores, reverse=True)
    assert scores != [r["score"] for r in plain]  # the reranker's relevance, not the provider's score
    parent = logged(base, reply.headers["x-request-id"])
    deadline = time.monotonic() + 10
    while not (
        children := httpx.get(
            f"{base}/admin/v1/requests",
            params={"parent_id": reply.headers["x-request-id"]},
            headers={"authorization": f"Bearer {ADMIN}"},
        ).json()["data"]
    ):
        assert time.monotonic() < deadline, "the rerank did not reach the request log"
        time.sleep(0.05)
    [child] = children
    assert child["requested_model"] == "rerank-1" and child["route"] == "/v1/rerank" and child["input_tokens"] > 0
    assert parent["cost_micros"] == 5000 + child["cost_micros"]
    error = openai_error(search(base, json={"query": query, "model": "web", "rerank": "no-such-reranker"}), 404)
    assert "no-such-reranker" in error["message"]


def test_a_searxng_channel_needs_its_base_url() -> None:
    from relay.config import ConfigError, loads

    with pytest.raises(ConfigError) as raised:
        loads('[[channels]]\nname = "s"\ntype = "searxng"\nmodels = ["s"]\n')
    assert raised.value.problems == ["channels[0].base_url: a searxng channel needs its server's base_url"]
    assert loads('[[channels]]\nname = "t"\ntype = "tavily"\nmodels = ["t"]\n').channels[0].type == "tavily"


def test_a_provider_down_fails_over_to_the_next(servers: tuple[str, str]) -> None:
    base, upstream = servers
    reply = search(base, json={"query": "fail over", "model": "fallback", "max_results": 2})
    assert reply.status_code == 200, reply.text
    assert [r["url"] for r in reply.json()["results"]] == [r["url"] for r in results("fail over", upstream, 2)]
    row = logged(base, reply.headers["x-request-id"])
    assert row["channel"] == "backup"
    assert [attempt["channel"] for attempt in row["attempts"]] == ["first-down", "backup"]

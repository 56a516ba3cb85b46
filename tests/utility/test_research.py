"""``/v1/research`` end to end through ``relay serve`` in front of ``relay mock-upstream``: the mock model plans,
the mock search engine finds the mock's pages, Relay fetches and reads them, the mock model summarises each and
writes the report citing them; whole and streamed (the progress events in order); every model call and search a
row of the log under the research, priced, the research's row their sum; failures in OpenAI's shape."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from relay.mock.wire_search import slug
from tests.conftest import process
from tests.helpers import MOCK_ARGS

KEY = "sk-relay-research-tests"
ADMIN = "sk-admin-research-tests-012345"
QUESTION = "How does Trio handle structured concurrency?"


def relay_toml(upstream: str, store: str, closed: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
log_interval = 0.05

[utility]
allow_private_urls = true   # the mock's pages are on loopback
model = "mock-1"
search_model = "web"

[[channels]]
name = "chat"
type = "openai"
base_url = "{upstream}/v1"
models = ["mock-*"]

[[channels]]
name = "search"
type = "tavily"
base_url = "{upstream}"
models = ["web"]

[[channels]]
name = "down"
type = "searxng"
base_url = "{closed}"
models = ["down"]

[[prices]]
model = "mock-*"
input = 1.0
output = 2.0

[[prices]]
model = "web"
request = 0.005

[[keys]]
name = "researcher"
key = "{KEY}"

[[admin_keys]]
name = "root"
key = "{ADMIN}"
"""


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root: Path = tmp_path_factory.mktemp("research")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", f"sqlite:///{root}/relay.db", closed))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}", f"http://{upstream}"


def post(base: str, payload: dict[str, Any]) -> httpx.Response:
    return httpx.post(base + "/v1/research", headers={"authorization": f"Bearer {KEY}"}, json=payload, timeout=60)


def admin(base: str, path: str, **params: Any) -> Any:
    reply = httpx.get(base + "/admin/v1" + path, headers={"authorization": f"Bearer {ADMIN}"}, params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def rows(base: str, parent: str, count: int) -> list[dict[str, Any]]:
    """The log's rows of ``parent``'s calls and the parent's own, once all ``count`` calls are in."""
    deadline = time.monotonic() + 10
    while True:
        children = admin(base, "/requests", parent_id=parent, limit=200)["data"]
        own = httpx.get(f"{base}/admin/v1/requests/{parent}", headers={"authorization": f"Bearer {ADMIN}"})
        if len(children) >= count and own.status_code == 200:
            return [own.json(), *children]
        assert time.monotonic() < deadline, f"{len(children)} of {count} calls in the log"
        time.sleep(0.05)


def check_report(body: dict[str, Any], upstream: str, sources: int) -> None:
    assert body["object"] == "research.report"
    assert body["model"] == "mock-1" and body["search_model"] == "web" and body["instructions"] == QUESTION
    assert body["queries"] == [QUESTION]  # the mock plans one search: the question (its structured output)
    found = body["sources"]
    assert [s["index"] for s in found] == list(range(1, sources + 1))
    assert len({s["url"] for s in found}) == sources
    for source in found:
        assert source["url"].startswith(f"{upstream}/pages/{slug(QUESTION)}-")  # the mock engine's pages
        assert source["fetched"] is True
        # the summary read the page (its first sentence is not in the search snippet)
        assert f"This page is source {source['url'].rsplit('-', 1)[1].removesuffix('.html')}" in source["summary"]
        assert source["summary"] not in source["snippet"]
    assert body["citations"] == list(range(1, sources + 1))
    report = body["report"]
    for source in found:
        claim = source["summary"].removeprefix("Source summary: ")
        assert f"- {claim} [{source['index']}]" in report  # each claim cites its own source
        assert f"{source['index']}. [{source['title']}]({source['url']})" in report
    assert body["usage"]["searches"] == len(body["queries"])
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0


def test_research_end_to_end_with_citations_and_billing(servers: tuple[str, str]) -> None:
    base, upstream = servers
    reply = post(base, {"input": QUESTION, "max_searches": 2, "results_per_search": 5, "max_sources": 4})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    check_report(body, upstream, 4)
    searches = body["usage"]["searches"]
    calls = 1 + 4 + 1  # the plan, a summary per source, the report
    logged = rows(base, reply.headers["x-request-id"], calls + searches)
    parent, children = logged[0], logged[1:]
    assert len(children) == calls + searches
    search_rows = [r for r in children if r["requested_model"] == "web"]
    model_rows = [r for r in children if r["requested_model"] == "mock-1"]
    assert len(search_rows) == searches and len(model_rows) == calls
    assert all(r["request_units"] == 1 and r["cost_micros"] == 5000 and r["channel"] == "search" for r in search_rows)
    assert all(r["cost_micros"] > 0 and r["status"] == 200 for r in model_rows)
    assert parent["route"] == "/v1/research" and parent["status"] == 200
    assert parent["cost_micros"] == sum(r["cost_micros"] for r in children)
    assert parent["request_units"] == searches
    assert parent["input_tokens"] == sum(r["input_tokens"] for r in model_rows) == body["usage"]["input_tokens"]


def events(reply: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in reply.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], orjson.loads(lines["data"])))
    return out


def test_research_streams_progress_then_the_report(servers: tuple[str, str]) -> None:
    base, upstream = servers
    reply = post(base, {"instructions": QUESTION, "stream": True, "max_searches": 1, "max_sources": 2})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/event-stream")
    seen = events(reply)
    names = [name for name, _ in seen]
    assert names[0] == "research.plan" and names[-1] == "research.completed"
    assert names[1] == "research.search"
    assert names.count("research.source") == 2 and names.count("research.summary") == 2
    assert "research.report.delta" in names
    last_summary = max(i for i, n in enumerate(names) if n == "research.summary")
    first_delta = names.index("research.report.delta")
    assert max(i for i, n in enumerate(names) if n == "research.source") < last_summary < first_delta
    completed = seen[-1][1]
    check_report(completed, upstream, 2)
    written = "".join(data["delta"] for name, data in seen if name == "research.report.delta")
    assert completed["report"].startswith(written.rstrip())


def test_a_search_provider_down_is_a_502(servers: tuple[str, str]) -> None:
    base, _ = servers
    reply = post(base, {"instructions": QUESTION, "search_model": "down"})
    assert reply.status_code == 502, reply.text
    assert reply.json()["error"]["type"]
    streamed = post(base, {"instructions": QUESTION, "search_model": "down", "stream": True})
    seen = events(streamed)
    assert [name for name, _ in seen] == ["research.plan", "error"]
    assert seen[-1][1]["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({}, "instructions"),
        ({"instructions": "   "}, "instructions"),
        ({"instructions": "q", "max_sources": 11}, "max_sources"),
        ({"instructions": "q", "max_searches": 0}, "max_searches"),
        ({"instructions": "q", "stream": "maybe"}, "stream"),
    ],
)
def test_bad_requests(servers: tuple[str, str], payload: dict[str, Any], param: str) -> None:
    reply = post(servers[0], payload)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param


def test_a_search_model_that_is_a_chat_model_is_refused(servers: tuple[str, str]) -> None:
    reply = post(servers[0], {"instructions": QUESTION, "search_model": "mock-2"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "unsupported_model"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Relay refusing private addresses (the default): the mock's pages on loopback may not be fetched."""
    root: Path = tmp_path_factory.mktemp("research_guarded")
    with process(*MOCK_ARGS) as (_, upstream):
        text = relay_toml(f"http://{upstream}", f"sqlite:///{root}/relay.db", "http://127.0.0.1:9")
        path = root / "relay.toml"
        path.write_text(text.replace("allow_private_urls = true", "allow_private_urls = false"))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}"


def test_pages_at_private_addresses_are_not_fetched_the_snippets_serve(guarded: str) -> None:
    reply = post(guarded, {"instructions": QUESTION, "stream": True, "max_sources": 2})
    assert reply.status_code == 200, reply.text
    seen = events(reply)
    refused = [data for name, data in seen if name == "research.source"]
    assert len(refused) == 2
    assert all(data["fetched"] is False and "127.0.0.1" in data["error"] for data in refused)
    completed = seen[-1][1]
    assert [s["fetched"] for s in completed["sources"]] == [False, False]
    for source in completed["sources"]:  # summarised from the search snippet instead of the page
        assert source["summary"].startswith(f"Source summary: Source {source['index']} on {QUESTION}")
        assert "This page is source" not in source["summary"]
    assert completed["citations"] == [1, 2]

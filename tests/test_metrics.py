"""GET /metrics (relay/metrics.py, docs/metrics.md): scraped from ``relay serve`` after real requests, alone and
under ``--workers 2``, and who may read it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from relay.endpoints.metrics_endpoint import may_scrape
from relay.http.messages import Request
from tests.conftest import KEY, process
from tests.helpers import MOCK_ARGS

CHAT = "/v1/chat/completions"
AUTH = {"authorization": f"Bearer {KEY}"}


def relay_toml(upstream: str, *, workers: int = 1) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
workers = {workers}
access_log = false

[[channels]]
name = "chat"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream"
models = ["chat-1", "chat-*"]

[[keys]]
name = "metrics"
key = "{KEY}"
models = ["chat-*", "ghost-*"]
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with process(*MOCK_ARGS) as (_, address):
        yield f"http://{address}"


def serve(tmp_path: Path, upstream: str, workers: int) -> Iterator[str]:
    path = tmp_path / "relay.toml"
    path.write_text(relay_toml(upstream, workers=workers))
    with process("serve", "--config", str(path)) as (_, address):
        yield f"http://{address}"


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, upstream: str) -> Iterator[str]:
    yield from serve(tmp_path_factory.mktemp("metrics1"), upstream, 1)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, upstream: str) -> Iterator[str]:
    yield from serve(tmp_path_factory.mktemp("metrics2"), upstream, 2)


def chat(client: httpx.Client, model: str, text: str = "hello", *, stream: bool = False) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    return client.post(CHAT, json=body, headers=AUTH)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def scrape(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def test_counts_match_the_requests_served(single: str) -> None:
    with httpx.Client(base_url=single, timeout=30) as client:
        before = scrape(client)
        for _ in range(3):
            assert chat(client, "chat-1").status_code == 200
        for _ in range(2):
            response = chat(client, "chat-1", stream=True)
            assert response.status_code == 200 and "[DONE]" in response.text
        assert chat(client, "ghost-1").status_code == 404
        assert chat(client, "chat-1", "mock:status=400").status_code == 400
        assert client.get("/no/such/path").status_code == 404
        after = scrape(client)

    def added(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"route": CHAT, "model": "chat-1", "channel": "chat", "status": "200"}
    assert added("relay_requests_total", **ok) == 5
    assert added("relay_requests_total", route=CHAT, model="other", channel="none", status="404") == 1
    assert added("relay_requests_total", route=CHAT, model="chat-1", channel="chat", status="400") == 1
    assert added("relay_requests_total", route="unmatched", model="none", channel="none", status="404") == 1
    assert added("relay_upstream_errors_total", channel="chat", end="upstream_error") == 1
    assert added("relay_request_duration_seconds_count", route=CHAT) == 7
    assert added("relay_time_to_first_byte_seconds_count", route=CHAT) == 7
    assert value(after, "relay_streams_in_flight") == 0
    assert value(after, "relay_requests_in_flight") == 0
    assert value(after, "relay_breaker_state", channel="chat") == 0


def test_scrapes_are_not_counted_as_in_flight_nor_logged(single: str) -> None:
    with httpx.Client(base_url=single, timeout=30) as client:
        first = scrape(client)
        second = scrape(client)
    route = {"route": "/metrics", "model": "none", "channel": "none", "status": "200"}
    assert value(second, "relay_requests_total", **route) == value(first, "relay_requests_total", **route) + 1


def test_two_workers_are_counted_in_one_scrape(pair: str) -> None:
    """Each connection stays with one worker: find both (their pids from /healthz), send each some requests,
    then every worker's scrape counts all of them."""
    served: dict[int, int] = {}
    totals: dict[int, float] = {}
    for _ in range(200):
        if len(served) == 2:
            break
        with httpx.Client(base_url=pair, timeout=30) as client:  # a new connection, so perhaps another worker
            pid = client.get("/healthz").json()["pid"]
            if pid in served:
                continue
            served[pid] = 0
            for _ in range(pid % 3 + 2):
                assert chat(client, "chat-1").status_code == 200
                served[pid] += 1
    assert len(served) == 2, "the kernel sent every connection to one worker"
    for _ in range(200):
        if len(totals) == 2:
            break
        with httpx.Client(base_url=pair, timeout=30) as client:
            pid = client.get("/healthz").json()["pid"]
            labels = {"route": CHAT, "model": "chat-1", "channel": "chat", "status": "200"}
            totals[pid] = value(scrape(client), "relay_requests_total", **labels)
    assert set(totals) == set(served)
    assert all(total == sum(served.values()) for total in totals.values()), (served, totals)


def request_from(client: str, headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    return Request(method="GET", path="/metrics", query="", headers=headers or [], body=b"", client=client)


def test_only_local_callers_may_scrape_unless_public() -> None:
    assert may_scrape(request_from("127.0.0.1:5000"), public=False)
    assert may_scrape(request_from("[::1]:5000"), public=False)
    assert not may_scrape(request_from("10.1.2.3:5000"), public=False)
    assert not may_scrape(request_from("203.0.113.9:443"), public=False)
    proxied = request_from("127.0.0.1:5000", [(b"x-forwarded-for", b"203.0.113.9")])
    assert not may_scrape(proxied, public=False)
    assert may_scrape(request_from("203.0.113.9:443"), public=True)
    assert may_scrape(proxied, public=True)

"""GET /metrics (relay/metrics.py, docs/metrics.md): scraped from ``relay serve`` after real requests, alone and
under ``--workers 2`` (requests, quota holds in flight while a stream is open, store latency), who may read it, and
the store's failures counted by kind."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from relay.endpoints.metrics_endpoint import may_scrape
from relay.http.messages import Request
from relay.store import IntegrityError, StoreError, open_store
from tests.conftest import KEY, process
from tests.helpers import MOCK_ARGS

CHAT = "/v1/chat/completions"
AUTH = {"authorization": f"Bearer {KEY}"}
#: A key whose quota is spent: every priced request is refused (402).
BROKE = "sk-metrics-broke-key"


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
quota = 1000

[[keys]]
name = "broke"
key = "{BROKE}"
quota = 0

[[prices]]
model = "chat-*"
input = 1
output = 2
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


def wait_for(client: httpx.Client, name: str, ok: Callable[[float], bool], **labels: str) -> float:
    """The sample's value once ``ok`` holds for it (a worker's gauges are a second old at most), 10 s at most."""
    deadline = time.monotonic() + 10
    while True:
        found = value(scrape(client), name, **labels)
        if ok(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def holds_and_store_latency_are_measured(base: str) -> None:
    """A stream held open shows its quota hold in flight (and what it reserves) until it ends; holds taken and
    quota refusals are counted; the store's transactions are timed by kind."""
    with httpx.Client(base_url=base, timeout=30) as client:
        before = scrape(client)
        assert chat(client, "chat-1").status_code == 200
        refused = client.post(
            CHAT,
            json={"model": "chat-1", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {BROKE}"},
        )
        assert refused.status_code == 402
        slow = "mock:chunks=4 mock:delay_ms=600"  # a few seconds: longer than a worker's gauges may lag
        body = {"model": "chat-1", "stream": True, "messages": [{"role": "user", "content": slow}]}
        with (
            httpx.Client(base_url=base, timeout=30) as streamer,
            streamer.stream("POST", CHAT, json=body, headers=AUTH) as stream,
        ):
            assert stream.status_code == 200
            events = stream.iter_raw()  # kept: a generator let go would close the stream
            next(events)  # the stream's first event: its hold is taken, and not settled
            assert wait_for(client, "relay_quota_holds_in_flight", lambda v: v >= 1) == 1
            held = value(scrape(client), "relay_quota_held_credits")
            assert 0 < held < 1  # a few thousand tokens at 1 and 2 credits per million
            assert b"[DONE]" in b"".join(events)
        assert wait_for(client, "relay_quota_holds_in_flight", lambda v: v == 0) == 0
        assert value(scrape(client), "relay_quota_held_credits") == 0
        # The request log's writes: in the background (every log_interval).
        sqlite = {"backend": "sqlite"}
        assert wait_for(client, "relay_store_transaction_seconds_count", lambda v: v > 0, kind="background", **sqlite)
        after = scrape(client)

    def added(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert added("relay_quota_holds_total") == 2
    assert added("relay_quota_refusals_total") == 1
    assert value(after, "relay_store_transaction_seconds_count", kind="transaction", **sqlite) > 0  # the start's
    assert value(after, "relay_store_transaction_seconds_sum", kind="transaction", **sqlite) > 0
    assert value(after, "relay_store_errors_total", kind="transaction", **sqlite) == 0


def test_quota_holds_and_store_latency(single: str) -> None:
    holds_and_store_latency_are_measured(single)


def test_quota_holds_and_store_latency_under_two_workers(pair: str) -> None:
    holds_and_store_latency_are_measured(pair)


async def test_store_failures_are_counted_by_kind_but_not_a_constraints_refusal(tmp_path: Path) -> None:
    def count(name: str, kind: str) -> float:
        return REGISTRY.get_sample_value(name, {"kind": kind, "backend": "sqlite"}) or 0.0

    store = open_store(f"sqlite:///{tmp_path}/metrics.db")
    timed, failed = count("relay_store_transaction_seconds_count", "now"), count("relay_store_errors_total", "now")
    await store.transaction_now(lambda tx: tx.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
    await store.transaction_now(lambda tx: tx.execute("INSERT INTO t VALUES (1)"))
    with pytest.raises(IntegrityError):
        await store.transaction_now(lambda tx: tx.execute("INSERT INTO t VALUES (1)"))
    assert count("relay_store_transaction_seconds_count", "now") == timed + 3
    assert count("relay_store_errors_total", "now") == failed  # a duplicate is an answer, not a failure
    await store.aclose()
    before = count("relay_store_errors_total", "transaction")
    with pytest.raises(StoreError):
        await store.transaction(lambda tx: tx.execute("SELECT 1"))
    assert count("relay_store_errors_total", "transaction") == before + 1


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

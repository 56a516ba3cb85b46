"""``relay serve --workers 2`` as a subprocess, hammered by many clients on separate connections: rate limits
exact across the two processes (counted in the store, SQLite or PostgreSQL, or in Redis), and the quota ledger
exact to the micro-credit after a graceful stop (SIGTERM).

One Relay per backend serves the whole module; the last test of the module stops it, so the tests run in file
order (as pytest runs them).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from tests.conftest import postgres_schema
from tests.gateway_e2e.conftest import (
    chat,
    cost,
    key_entry,
    minute_guard,
    mock_channel,
    post,
    read,
    redis_or_skip,
    relay_serve,
    relay_toml,
    terminate,
    write_toml,
)
from tests.gateway_e2e.ledger import check_ledger, stream_usage
from tests.helpers import RawResponse, raw_request

RPM = 5
TPM = 40
#: Less than the 80 requests of the ledger test cost (~0.02 credits each): the key runs out while they run.
QUOTA_CREDITS = 1


@attrs.define
class Fleet:
    """A ``relay serve --workers 2`` and what the tests need of it."""

    url: str
    store_url: str
    proc: Any
    #: Key names and secrets, fresh per run (Redis keeps windows between runs).
    rpm_key: str
    tpm_key: str
    hammer_key: str


def secret(name: str) -> str:
    return f"sk-relay-{name}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "redis"])
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Rate limits in the store (SQLite, PostgreSQL) or in Redis (with a SQLite store)."""
    tmp_path = tmp_path_factory.mktemp(f"fleet-{request.param}")
    run = uuid.uuid4().hex[:8]
    names = (f"rpm-{run}", f"tpm-{run}", f"hammer-{run}")
    keys = (
        key_entry(names[0], secret(names[0]), rpm=RPM)
        + key_entry(names[1], secret(names[1]), tpm=TPM)
        + key_entry(names[2], secret(names[2]), quota=QUOTA_CREDITS)
    )
    top = ""
    if request.param == "redis":
        top = f'[ratelimit]\nurl = "{redis_or_skip()}"\n'
    with _store(request.param, tmp_path) as store_url:
        text = relay_toml(store_url, channels=mock_channel("mock"), keys=keys, top=top)
        with relay_serve(write_toml(tmp_path, text), workers=2) as (proc, url):
            yield Fleet(url, store_url, proc, *names)


def _store(backend: str, tmp_path: Path) -> AbstractContextManager[str]:
    if backend == "postgresql":
        return postgres_schema()
    return nullcontext(f"sqlite:///{tmp_path}/relay.db")


async def test_both_workers_serve(fleet: Fleet) -> None:
    pids = set()
    for _ in range(24):
        answer = await raw_request(fleet.url, "GET", "/healthz")
        pids.add(answer.json()["pid"])
    assert len(pids) == 2


def assert_429(answer: RawResponse) -> int:
    assert answer.status == 429, answer.body
    retry = answer.headers[b"retry-after"].decode()
    assert retry.isdigit() and 1 <= int(retry) <= 60
    return int(retry)


async def test_rpm_admits_exactly_rpm_across_two_workers(fleet: Fleet) -> None:
    await minute_guard()
    answers: list[RawResponse] = []

    async def one() -> None:
        answers.append(await chat(fleet.url, key=secret(fleet.rpm_key)))

    async with trio.open_nursery() as nursery:
        for _ in range(3 * RPM):
            nursery.start_soon(one)
    statuses = sorted(a.status for a in answers)
    assert statuses == [200] * RPM + [429] * (2 * RPM)
    for answer in answers:
        if answer.status == 429:
            assert_429(answer)
            error = answer.json()["error"]
            assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")

    claude = await post(
        fleet.url,
        "/v1/messages",
        json.dumps({"model": "mock-1", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}).encode(),
        key=None,
        headers={"x-api-key": secret(fleet.rpm_key), "anthropic-version": "2023-06-01"},
    )
    assert_429(claude)
    assert claude.json()["type"] == "error" and claude.json()["error"]["type"] == "rate_limit_error"
    gemini = await post(
        fleet.url,
        "/v1beta/models/mock-1:generateContent",
        b'{"contents": [{"parts": [{"text": "hi"}]}]}',
        key=None,
        headers={"x-goog-api-key": secret(fleet.rpm_key)},
    )
    assert_429(gemini)
    assert gemini.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


async def test_tpm_refuses_once_a_request_used_the_minute_up(fleet: Fleet) -> None:
    await minute_guard()
    key = secret(fleet.tpm_key)
    small = [await chat(fleet.url, "hi", key=key) for _ in range(2)]
    assert [a.status for a in small] == [200, 200]
    used = sum(a.json()["usage"]["total_tokens"] for a in small)
    assert used < TPM
    big = await chat(fleet.url, "word " * 30, key=key)
    assert big.status == 200
    assert used + big.json()["usage"]["total_tokens"] >= TPM
    with trio.move_on_after(1.0):  # its tokens are counted after the answer, by the recorder: soon
        while (after := await chat(fleet.url, "hi", key=key)).status == 200:
            await trio.sleep(0.05)
    assert_429(after)
    assert "tokens per minute" in after.json()["error"]["message"]


async def test_ledger_exact_after_sigterm_under_concurrent_clients(fleet: Fleet) -> None:
    key = secret(fleet.hammer_key)
    seen: list[int] = []  # the cost of what each client saw (0 for a refusal)
    statuses: list[int] = []

    async def client(index: int) -> None:
        for round_ in range(2):
            stream = (index + round_) % 2 == 0
            extra: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
            answer = await chat(fleet.url, f"client {index} round {round_}", key=key, max_tokens=30, **extra)
            statuses.append(answer.status)
            if answer.status == 200:
                seen.append(cost(stream_usage(answer.body) if stream else answer.json()["usage"]))
            else:
                assert answer.status == 402, answer.body
                seen.append(0)

    async with trio.open_nursery() as nursery:
        for index in range(40):
            nursery.start_soon(client, index)
    assert await terminate(fleet.proc) == 0

    assert len(statuses) == 80 and statuses.count(200) > 0
    assert statuses.count(402) > 0, "the quota was meant to run out"
    report = await read(fleet.store_url, lambda tx: check_ledger(tx, fleet.hammer_key))
    assert report.requests == 80
    assert report.spent == sum(seen)
    assert report.balance == QUOTA_CREDITS * 1_000_000 - sum(seen)
    assert report.held == statuses.count(200)  # a refused request held nothing

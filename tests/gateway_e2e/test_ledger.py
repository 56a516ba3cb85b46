"""One key hammered by 50 concurrent tasks against an in-process Relay on a real store: after it stops, the
ledger is exact to the micro-credit (see ``ledger.check_ledger``) and agrees with what the clients saw."""

from __future__ import annotations

import json

import trio

from relay.config import loads
from tests.conftest import KEY, serve_relay
from tests.gateway_e2e.conftest import (
    chat,
    cost,
    key_entry,
    mock_channel,
    post,
    read,
    relay_toml,
)
from tests.gateway_e2e.ledger import check_ledger, stream_usage

TASKS = 50
ROUNDS = 3
QUOTA = 2  # credits: less than the 150 requests cost (~0.03 each), so the key runs out while they run


async def test_fifty_tasks_on_one_key_leave_the_ledger_exact(store_url: str) -> None:
    config = loads(
        relay_toml(
            store_url,
            channels=mock_channel("mock", multiplier=1.25),
            keys=key_entry("test", KEY, quota=QUOTA),
            # a quarter of the requests answer 503 on purpose: the breaker must not open on a run of them
            # (its 503 comes before any hold, which would throw the count of holds below off)
            routing="breaker_failures = 1000",
        )
    )
    seen: list[int] = []
    statuses: list[int] = []

    async def task(index: int) -> None:
        for round_ in range(ROUNDS):
            kind = (index + round_) % 4
            text = f"task {index} round {round_}"
            if kind == 0:
                answer = await chat(relay.url, text, max_tokens=20)
                usage = answer.json()["usage"] if answer.status == 200 else None
            elif kind == 1:
                answer = await chat(relay.url, text, max_tokens=20, stream=True, stream_options={"include_usage": True})
                usage = stream_usage(answer.body) if answer.status == 200 else None
            elif kind == 2:
                body = {"model": "mock-1", "max_tokens": 20, "messages": [{"role": "user", "content": text}]}
                answer = await post(
                    relay.url,
                    "/v1/messages",
                    json.dumps(body).encode(),
                    key=None,
                    headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
                )
                u = answer.json()["usage"] if answer.status == 200 else None
                usage = (
                    None if u is None else {"prompt_tokens": u["input_tokens"], "completion_tokens": u["output_tokens"]}
                )
            else:
                answer = await chat(relay.url, f"{text} mock:status=503", max_tokens=20)  # the hold comes back
                usage = None
            statuses.append(answer.status)
            assert answer.status in (200, 402, 503), answer.body
            seen.append(cost(usage, 1.25) if usage is not None else 0)

    async with serve_relay(config) as relay, trio.open_nursery() as nursery:
        for index in range(TASKS):
            nursery.start_soon(task, index)
    # serve_relay has stopped: everything the recorder held is written.

    report = await read(store_url, lambda tx: check_ledger(tx, "test"))
    assert len(statuses) == report.requests == TASKS * ROUNDS
    assert statuses.count(402) > 0, "the key was meant to run out"
    assert report.granted == QUOTA * 1_000_000
    assert report.spent == sum(seen) > 0
    assert report.balance == QUOTA * 1_000_000 - sum(seen) >= 0
    assert report.held == statuses.count(200) + statuses.count(503)

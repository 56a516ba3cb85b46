"""The quota ledger of one key, replayed and checked against its balance and the request log."""

from __future__ import annotations

import json
from typing import Any

import attrs

from relay.store import Tx


@attrs.frozen
class LedgerReport:
    #: The key's balance in the store, micro-credits.
    balance: int
    #: Σ topup rows (the grant included).
    granted: int
    #: Σ settle rows: what the key was charged.
    spent: int
    #: Request-log rows of the key.
    requests: int
    #: Requests held for.
    held: int


def check_ledger(tx: Tx, key_name: str) -> LedgerReport:
    """Replay the key's ledger in order and check, raising AssertionError at the first breach:

    - every hold is closed by exactly one settle or release, and nothing else is closed;
    - a settle charges at most its hold, a release gives back the whole hold;
    - the balance never goes below zero at any step, and ends where the store says it is;
    - balance == granted - Σ settle == granted - Σ cost_micros of the request log;
    - every held request is in the request log, charged there what its settle row says.
    """
    rows = tx.execute(
        "SELECT request_id, kind, amount_micros FROM quota_ledger WHERE key_name = ? ORDER BY id", (key_name,)
    )
    [(stored,)] = tx.execute("SELECT quota_micros FROM keys WHERE name = ?", (key_name,))
    running = granted = 0
    holds: dict[str, int] = {}
    closed: dict[str, tuple[str, int]] = {}
    for request_id, kind, amount in rows:
        if kind == "topup":
            running += amount
            granted += amount
        elif kind == "hold":
            assert request_id not in holds, f"{request_id} held twice"
            holds[request_id] = amount
            running -= amount
        else:
            assert request_id in holds, f"{request_id}: {kind} without a hold"
            assert request_id not in closed, f"{request_id}: {kind} after {closed.get(request_id)}"
            closed[request_id] = (kind, amount)
            if kind == "settle":
                assert 0 < amount <= holds[request_id], (request_id, amount, holds[request_id])
                running += holds[request_id] - amount
            else:
                assert amount == holds[request_id], (request_id, amount, holds[request_id])
                running += amount
        assert running >= 0, f"balance {running} below zero after {kind} of {request_id}"
    assert set(closed) == set(holds), f"holds never closed: {sorted(set(holds) - set(closed))}"
    assert running == stored, (running, stored)
    spent = sum(amount for kind, amount in closed.values() if kind == "settle")
    assert stored == granted - spent

    logged = {
        request_id: (status, charged)
        for request_id, status, charged in tx.execute(
            "SELECT request_id, status, cost_micros FROM request_log WHERE key_name = ?", (key_name,)
        )
    }
    assert set(holds) <= set(logged), f"held but not logged: {sorted(set(holds) - set(logged))}"
    for request_id, (kind, amount) in closed.items():
        assert logged[request_id][1] == (amount if kind == "settle" else 0), (request_id, kind, logged[request_id])
    assert sum(charged for _, charged in logged.values()) == spent
    return LedgerReport(stored, granted, spent, len(logged), len(holds))


def stream_usage(body: bytes) -> dict[str, Any]:
    """The usage of a Chat Completions stream (its ``include_usage`` chunk)."""
    for line in body.split(b"\n"):
        if line.startswith(b"data: {") and b'"usage":{' in line:
            usage = json.loads(line[6:])["usage"]
            if usage:
                return usage
    raise AssertionError("no usage chunk in the stream")

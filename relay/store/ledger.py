"""The quota ledger and the store-kept rate limits: admission (hold) and settlement, atomic on every backend.

Money: a key's balance is ``keys.quota_micros`` (NULL: unlimited), in micro-credits. ``admit`` takes the
most a request can cost from the balance (a ``hold`` row); ``settle_all`` charges what it did cost (a
``settle`` row, or a ``release`` row when it cost nothing) and returns the rest. The balance never goes below
zero, and ``UNIQUE (request_id, kind)`` makes every step happen at most once. For a key that has been limited
since it was created, at every quiet moment::

    balance == Σ topup (its grant included) - Σ settle - Σ open holds

Atomicity: every function takes the key's row first (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already holds its one write lock), so the admissions and settlements of one key happen
one after the other, across processes and machines. Several keys are always taken in name order.

The gateway no longer calls ``admit`` per request: it admits against quota leases (``relay.store.leases``) and
writes each request's hold and settle rows together (``relay.store.settlements``), rows of the same kinds in
the same ledger, with the same identity. ``admit`` and ``settle_all`` remain the per-request path.

Rate limits (docs/store.md): minute windows (``minute = floor(now / 60)``); the estimate is the previous
minute weighed by the part of it still inside the sliding minute, plus the current one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Protocol

import attrs

from relay.store.base import Tx
from relay.store.keys import KeyNotFound

__all__ = [
    "MAX_MICROS",
    "Admission",
    "Settle",
    "admit",
    "balance",
    "estimate",
    "open_holds",
    "retry_after",
    "settle_all",
]

Reason = Literal["ok", "quota", "rpm", "tpm", "unknown_key"]

#: The largest amount a store can keep (SQLite and PostgreSQL integers are signed 64-bit): a hold above it
#: (a request asking for ~1e19 output tokens) is one no balance can cover, refused for quota on every backend.
MAX_MICROS = 2**63 - 1


@attrs.frozen
class Admission:
    ok: bool
    reason: Reason
    #: Seconds until the rate limit may let the request through (rpm, tpm); 0 otherwise.
    retry_after: float = 0
    #: The balance after the hold (or, refused for quota, the balance that could not cover it); None when
    #: the key is unlimited, in which case nothing was held and the request is settled with held None.
    balance: int | None = None


@attrs.frozen
class Settle:
    key_name: str
    request_id: str
    #: What ``admit`` held for the request; None: nothing (an unlimited key).
    held_micros: int | None
    cost_micros: int
    #: Tokens the request used (input and output), counted against the key's tpm when ``tpm_counted``.
    tokens: int
    tpm_counted: bool
    now: float


def _lock(tx: Tx) -> str:
    return " FOR UPDATE" if tx.backend == "postgresql" else ""


def estimate(previous: int, current: int, now: float) -> float:
    """Use in the sliding minute ending at ``now``, from the counts of the previous and current minutes."""
    return previous * (1 - (now % 60) / 60) + current


def retry_after(now: float) -> float:
    """Seconds until the next minute begins (at least 1)."""
    return float(max(1, math.ceil(60 - now % 60)))


def admit(
    tx: Tx,
    key_name: str,
    request_id: str,
    hold_micros: int | None,
    rpm: int | None,
    tpm: int | None,
    now: float,
    count_rate: bool = True,
) -> Admission:
    """Check the key's rate limits and take ``hold_micros`` from its balance, both or neither.

    Refused (quota before rate limits): nothing is written. Admitted: the request counts one in the current
    minute (when ``count_rate`` and the key has an rpm or tpm) and its hold is taken, in a ``hold`` row.
    """
    if hold_micros is not None and hold_micros < 0:
        raise ValueError(f"a hold is at least 0 micro-credits, got {hold_micros}")
    # The hot path is four statements: take the hold (which also locks the key's row), read and count the
    # rate windows, write the hold row. Anything else (a refusal, an unlimited key) costs a statement more.
    hold: int | None = None
    balance: int | None = None
    if hold_micros is not None:
        taken = (
            tx.execute(
                "UPDATE keys SET quota_micros = quota_micros - ? WHERE name = ? AND quota_micros >= ?"
                " RETURNING quota_micros",
                (hold_micros, key_name, hold_micros),
            )
            if hold_micros <= MAX_MICROS  # SQLite cannot even bind a larger integer
            else []
        )
        if taken:
            hold, balance = hold_micros, int(taken[0][0])
        else:
            rows = tx.execute("SELECT quota_micros FROM keys WHERE name = ?" + _lock(tx), (key_name,))
            if not rows:
                return Admission(False, "unknown_key")
            if rows[0][0] is not None:
                return Admission(False, "quota", balance=int(rows[0][0]))
    rated = count_rate and (rpm is not None or tpm is not None)
    if rated and hold is None:
        # Serialise this key's admissions (PostgreSQL: the row lock; SQLite: the write lock is held already).
        rows = tx.execute("SELECT quota_micros FROM keys WHERE name = ?" + _lock(tx), (key_name,))
        if not rows:
            return Admission(False, "unknown_key")
        balance = rows[0][0]
    minute = math.floor(now / 60)
    if rated:
        windows = {
            row[0]: (row[1], row[2])
            for row in tx.execute(
                "SELECT minute, requests, tokens FROM rate_windows WHERE key_name = ? AND minute IN (?, ?)",
                (key_name, minute - 1, minute),
            )
        }
        (prev_requests, prev_tokens), (requests, tokens) = windows.get(minute - 1, (0, 0)), windows.get(minute, (0, 0))
        refusal: Admission | None = None
        if rpm is not None and estimate(prev_requests, requests, now) + 1 > rpm:
            refusal = Admission(False, "rpm", retry_after(now), balance)
        elif tpm is not None and estimate(prev_tokens, tokens, now) >= tpm:
            refusal = Admission(False, "tpm", retry_after(now), balance)
        if refusal is not None:
            if hold is not None:  # give the hold back: a refused request leaves the balance as it found it
                tx.execute("UPDATE keys SET quota_micros = quota_micros + ? WHERE name = ?", (hold, key_name))
                refusal = attrs.evolve(refusal, balance=balance + hold if balance is not None else None)
            return refusal
        tx.execute(
            "INSERT INTO rate_windows (key_name, minute, requests) VALUES (?, ?, 1)"
            " ON CONFLICT (key_name, minute) DO UPDATE SET requests = rate_windows.requests + 1",
            (key_name, minute),
        )
        if minute not in windows:  # the first request of a minute sweeps the minutes no estimate reads
            tx.execute("DELETE FROM rate_windows WHERE key_name = ? AND minute < ?", (key_name, minute - 1))
    if hold is None:
        return Admission(True, "ok", balance=balance)
    tx.execute(
        "INSERT INTO quota_ledger (key_name, request_id, kind, amount_micros, created_at) VALUES (?, ?, 'hold', ?, ?)",
        (key_name, request_id, hold, now),
    )
    return Admission(True, "ok", balance=balance)


def settle_all(tx: Tx, settles: Sequence[Settle]) -> list[int]:
    """Settle every request of ``settles``; the micro-credits actually charged for each, in order.

    A held request is charged ``min(cost, held + balance)`` (the balance never goes below zero: the report
    shows any shortfall) in one ``settle`` row, or released in one ``release`` row when it cost nothing, and
    ``held - charged`` goes back to the balance. Settling a request again changes nothing (and reports what
    it was charged the first time). A request with nothing held (an unlimited key) writes no ledger row and
    reports its cost. Tokens of ``tpm_counted`` requests are added to the key's current minute.
    """
    charged = [0] * len(settles)
    by_key: dict[str, list[int]] = {}
    for i, settle in enumerate(settles):
        if settle.held_micros is None:
            charged[i] = max(0, settle.cost_micros)
        else:
            by_key.setdefault(settle.key_name, []).append(i)
    for key_name in sorted(by_key):  # keys locked in one order in every process: no deadlock
        order = sorted(by_key[key_name], key=lambda i: settles[i].request_id)
        for i, charge in zip(order, _settle_key(tx, key_name, [settles[i] for i in order]), strict=True):
            charged[i] = charge
    for params in token_windows(settles):
        tx.execute(ADD_TOKENS, params)
    return charged


#: Adds a count of tokens to a key's minute (``token_windows``' rows as parameters).
ADD_TOKENS = (
    "INSERT INTO rate_windows (key_name, minute, tokens) VALUES (?, ?, ?)"
    " ON CONFLICT (key_name, minute) DO UPDATE SET tokens = rate_windows.tokens + excluded.tokens"
)


class _Counted(Protocol):
    key_name: str
    tokens: int
    tpm_counted: bool
    now: float


def token_windows(settles: Sequence[_Counted]) -> list[tuple[str, int, int]]:
    """The tokens of ``tpm_counted`` settlements summed per key and minute, in key and minute order (the order
    every process writes them in: no deadlock)."""
    tokens: dict[tuple[str, int], int] = {}
    for s in settles:
        if s.tpm_counted and s.tokens > 0:
            window = (s.key_name, math.floor(s.now / 60))
            tokens[window] = tokens.get(window, 0) + s.tokens
    return [(key_name, minute, count) for (key_name, minute), count in sorted(tokens.items())]


#: Request ids looked up, and ledger rows written, per statement.
_CHUNK = 400


def _settle_key(tx: Tx, key_name: str, settles: Sequence[Settle]) -> list[int]:
    """One key's settlements: its row locked once, its ledger read and written a chunk per statement, its
    balance updated once. The charges, in the order of ``settles``."""
    rows = tx.execute("SELECT quota_micros FROM keys WHERE name = ?" + _lock(tx), (key_name,))
    if not rows:
        return [0] * len(settles)  # the key was deleted, and its ledger with it
    balance: int | None = rows[0][0]
    entries: dict[str, dict[str, int]] = {}
    ids = list(dict.fromkeys(s.request_id for s in settles))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        # By request id alone (the unique index): with key_name in the WHERE, SQLite may pick the
        # (key_name, created_at) index and scan the key's whole ledger.
        for request_id, kind, amount, owner in tx.execute(
            "SELECT request_id, kind, amount_micros, key_name FROM quota_ledger"
            f" WHERE request_id IN ({', '.join('?' * len(chunk))})",
            chunk,
        ):
            if owner == key_name:
                entries.setdefault(request_id, {})[kind] = int(amount)
    charges: list[int] = []
    writes: list[tuple[object, ...]] = []
    refund = 0
    for s in settles:
        known = entries.setdefault(s.request_id, {})
        cost = max(0, s.cost_micros)
        if "settle" in known:
            charges.append(known["settle"])
            continue
        if "release" in known:
            charges.append(0)
            continue
        held = known.get("hold")
        if held is None:  # nothing was held: the key was unlimited when the request was admitted
            charges.append(cost if balance is None else 0)
            continue
        charge = cost if balance is None else min(cost, held + balance)
        kind, amount = ("settle", charge) if cost > 0 else ("release", held)
        known[kind] = amount  # a second settlement of the same request in this batch finds it
        writes.append((key_name, s.request_id, kind, amount, s.now))
        if balance is not None:
            balance += held - charge
            refund += held - charge
        charges.append(charge)
    for start in range(0, len(writes), _CHUNK):
        chunk = writes[start : start + _CHUNK]
        tx.execute(
            "INSERT INTO quota_ledger (key_name, request_id, kind, amount_micros, created_at) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
            [value for row in chunk for value in row],
        )
    if refund:
        tx.execute("UPDATE keys SET quota_micros = quota_micros + ? WHERE name = ?", (refund, key_name))
    return charges


def balance(tx: Tx, name: str) -> int | None:
    """The key's balance in micro-credits (None: unlimited); KeyNotFound for an unknown key."""
    rows = tx.execute("SELECT quota_micros FROM keys WHERE name = ?", (name,))
    if not rows:
        raise KeyNotFound(f"no key named {name!r}")
    return None if rows[0][0] is None else int(rows[0][0])


def open_holds(tx: Tx, name: str) -> int:
    """Micro-credits held for the key's requests not yet settled or released."""
    rows = tx.execute(
        "SELECT COALESCE(SUM(h.amount_micros), 0) FROM quota_ledger h WHERE h.key_name = ? AND h.kind = 'hold'"
        " AND NOT EXISTS (SELECT 1 FROM quota_ledger d WHERE d.request_id = h.request_id"
        " AND d.kind IN ('settle', 'release'))",
        (name,),
    )
    return int(rows[0][0])

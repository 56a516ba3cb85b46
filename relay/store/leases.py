"""Quota leases: a process reserves a slice of a key's balance (and rate-limit slots of the current minute) in
one transaction, then admits requests against it in memory (``relay.gateway.leases``). docs/store.md, "Leases",
has the design and its exactness argument; in short:

- A lease row reserves ``amount_micros - settled_micros`` of its key's balance. The balance itself
  (``keys.quota_micros``) moves only when a request is charged, so at every moment, for a key limited since it
  was created::

      balance == Σ topup - Σ settle - Σ open holds (holds written by ``ledger.admit``, never by a lease)

  and the money no lease reserves is ``balance - Σ reservations``, which ``take`` never lets go below zero.
- ``take`` locks the key's row, reclaims the expired leases of the key (a crashed process's: their reservation
  lapses, so what it had not charged is the balance's again), and adds to the caller's lease only what no lease
  reserves. ``relay.store.settlements.settle`` writes each request's ``hold`` row and its ``settle`` (or
  ``release``) row together, charges the balance and counts the charge as settled on its lease, so the
  reservation shrinks by exactly what the balance lost.
- Rate-limit slots: ``take`` counts the slots it grants in the store's window of the current minute at once,
  only as many as the sliding-minute rule allows now (so no request admitted on a slot could have been refused
  by ``ledger.admit`` at its own time); unused slots of a past minute are given back.

Every function is synchronous and takes the ``Tx`` of one transaction.
"""

from __future__ import annotations

import math
import secrets

import attrs

from relay.store.base import Tx
from relay.store.ledger import Reason, estimate, retry_after

__all__ = [
    "SURPLUS_SHARE",
    "Grant",
    "Take",
    "reap",
    "release_owner",
    "renew",
    "reserved",
    "shrink",
    "take",
]

#: A lease's surplus (what it takes beyond the request that needs it now) is at most this fraction of what no
#: lease reserves: as a key runs low, slices shrink geometrically, and the last of a balance (or of a minute's
#: rate-limit room) is taken a request at a time, exactly as ``ledger.admit`` would.
SURPLUS_SHARE = 0.25


@attrs.frozen
class Take:
    """What a process asks of the store for one key."""

    key_name: str
    owner: str
    #: The lease to add to; None (or one reclaimed meanwhile): a new lease is made.
    lease_id: str | None
    #: Micro-credits the lease must gain now (a request waits for them), or None: no money asked (the key is
    #: unlimited in the process's copy, or only its slots are wanted).
    need_micros: int | None
    #: Wanted beyond the need (a few seconds of the key's spend), granted up to ``SURPLUS_SHARE`` of the rest.
    surplus_micros: int = 0
    #: The store keeps the key's rate limits (no Redis): read its windows, take slots.
    rated: bool = False
    rpm: int | None = None
    tpm: int | None = None
    #: Slots of the current minute needed now (0 or 1) and wanted beyond.
    need_slots: int = 0
    surplus_slots: int = 0
    #: (minute, slots) taken earlier and not used: given back to that minute's window.
    give_back: tuple[int, int] | None = None
    now: float = 0.0
    #: Seconds the lease lives unless renewed.
    ttl: float = 30.0
    #: Refused while other leases of the key reserve money (or surplus slots of this minute): ask them back.
    recall: bool = False


@attrs.frozen
class Grant:
    reason: Reason
    #: The caller's lease after the call: the one it named, or a new one (it was reclaimed, or there was none).
    lease_id: str | None = None
    #: Micro-credits added to the lease.
    micros: int = 0
    #: The key turned out to be unlimited in the store: no lease is needed for its money.
    unlimited: bool = False
    #: The balance no lease reserves, after this call (None: unlimited).
    available: int | None = None
    minute: int = 0
    #: Slots of ``minute`` granted by this call.
    slots: int = 0
    #: Requests and tokens of the previous and the current minute, as the store counts them now.
    requests: tuple[int, int] = (0, 0)
    tokens: tuple[int, int] = (0, 0)
    retry_after: float = 0.0
    #: Refused, and the other leases of the key were asked to give back what they have free (``recall``):
    #: asking again after their owners' next renewal may succeed.
    recalled: bool = False
    #: What was asked (need and surplus), to tell a grant that was capped.
    asked_micros: int = 0
    asked_slots: int = 0


def _lock(tx: Tx) -> str:
    return " FOR UPDATE" if tx.backend == "postgresql" else ""


@attrs.frozen
class _Row:
    reserved: int
    minute: int
    surplus_slots: int
    recall: bool


def _leases(tx: Tx, key_name: str) -> dict[str, _Row]:
    return {
        str(row[0]): _Row(int(row[1]) - int(row[2]), int(row[3]), int(row[4]), bool(row[5]))
        for row in tx.execute(
            "SELECT lease_id, amount_micros, settled_micros, minute, slots, recall FROM quota_leases"
            " WHERE key_name = ?",
            (key_name,),
        )
    }


def _reservations(tx: Tx, key_name: str) -> dict[str, int]:
    return {lease_id: row.reserved for lease_id, row in _leases(tx, key_name).items()}


def _recall(tx: Tx, key_name: str, mine: str | None) -> None:
    tx.execute("UPDATE quota_leases SET recall = 1 WHERE key_name = ? AND lease_id <> ?", (key_name, mine or ""))


def take(tx: Tx, ask: Take) -> Grant:
    """Renew (or make) the caller's lease on one key and add to it what it asks and the store can give.

    Refused (``quota``: the need is more than no lease reserves; ``rpm``/``tpm``: the sliding minute is full):
    nothing is written, the lease keeps what it had.
    """
    now, key_name = ask.now, ask.key_name
    rows = tx.execute("SELECT quota_micros FROM keys WHERE name = ?" + _lock(tx), (key_name,))
    if not rows:
        return Grant("unknown_key")
    quota = None if rows[0][0] is None else int(rows[0][0])
    # A lease whose owner stopped renewing it (it crashed, or stalled past its ttl) is reclaimed: its
    # reservation lapses, so what it held and had not charged is the balance's again.
    tx.execute("DELETE FROM quota_leases WHERE key_name = ? AND expires_at < ?", (key_name, now))
    rows = _leases(tx, key_name)
    mine = ask.lease_id if ask.lease_id in rows else None
    others = [row for lease_id, row in rows.items() if lease_id != mine]
    # A recalled lease means the key ran short somewhere: every process takes only what it needs, until the
    # recalled owners gave back what they had free.
    contended = any(row.recall for row in rows.values())
    minute = math.floor(now / 60)
    micros = 0
    available: int | None = None
    if quota is not None:
        available = quota - sum(row.reserved for row in rows.values())
        if ask.need_micros is not None:
            if ask.need_micros > available:
                recalled = ask.recall and any(row.reserved > 0 for row in others)
                if recalled:
                    _recall(tx, key_name, mine)
                return Grant("quota", mine, available=available, recalled=recalled)
            rest = available - ask.need_micros
            surplus = 0 if contended else min(max(0, ask.surplus_micros), math.floor(rest * SURPLUS_SHARE))
            micros = ask.need_micros + surplus
            available -= micros
    slots = 0
    requests = tokens = (0, 0)
    if ask.rated and (ask.rpm is not None or ask.tpm is not None):
        if ask.give_back is not None and ask.give_back[1] > 0 and ask.give_back[0] >= minute - 1:
            back_minute, back = ask.give_back
            tx.execute(
                "UPDATE rate_windows SET requests = CASE WHEN requests > ? THEN requests - ? ELSE 0 END"
                " WHERE key_name = ? AND minute = ?",
                (back, back, key_name, back_minute),
            )
        windows = {
            int(row[0]): (int(row[1]), int(row[2]))
            for row in tx.execute(
                "SELECT minute, requests, tokens FROM rate_windows WHERE key_name = ? AND minute IN (?, ?)",
                (key_name, minute - 1, minute),
            )
        }
        (prev_requests, prev_tokens), (current, current_tokens) = (
            windows.get(minute - 1, (0, 0)),
            windows.get(minute, (0, 0)),
        )
        tokens = (prev_tokens, current_tokens)
        if ask.rpm is not None:
            room = math.floor(ask.rpm - estimate(prev_requests, current, now))
            if room < ask.need_slots:
                recalled = ask.recall and any(row.minute == minute and row.surplus_slots > 0 for row in others)
                if recalled:
                    _recall(tx, key_name, mine)
                return Grant(
                    "rpm", mine, available=available, minute=minute, requests=(prev_requests, current),
                    tokens=tokens, retry_after=retry_after(now), recalled=recalled,
                )  # fmt: skip
            if ask.need_slots or ask.surplus_slots:
                rest = room - ask.need_slots
                surplus = 0 if contended else min(max(0, ask.surplus_slots), math.floor(rest * SURPLUS_SHARE))
                slots = ask.need_slots + surplus
        if ask.tpm is not None and ask.need_slots and estimate(prev_tokens, current_tokens, now) >= ask.tpm:
            return Grant(
                "tpm", mine, available=available, minute=minute, requests=(prev_requests, current),
                tokens=tokens, retry_after=retry_after(now),
            )  # fmt: skip
        if slots:
            tx.execute(
                "INSERT INTO rate_windows (key_name, minute, requests) VALUES (?, ?, ?)"
                " ON CONFLICT (key_name, minute) DO UPDATE SET requests = rate_windows.requests + excluded.requests",
                (key_name, minute, slots),
            )
            if minute not in windows:  # the first slots of a minute sweep the minutes no estimate reads
                tx.execute("DELETE FROM rate_windows WHERE key_name = ? AND minute < ?", (key_name, minute - 1))
        requests = (prev_requests, current + slots)
    lease_id = mine
    # The row shows the slots taken beyond need in its minute: only those can sit unused.
    spare = max(0, slots - ask.need_slots)
    if mine is not None:
        tx.execute(
            "UPDATE quota_leases SET amount_micros = amount_micros + ?, expires_at = ?,"
            " slots = CASE WHEN minute = ? THEN slots + ? ELSE ? END, minute = ? WHERE lease_id = ?",
            (micros, now + ask.ttl, minute, spare, spare, minute, mine),
        )
    elif micros or slots or (quota is not None and ask.need_micros is not None):
        lease_id = secrets.token_hex(12)
        tx.execute(
            "INSERT INTO quota_leases (lease_id, key_name, owner, amount_micros, settled_micros, minute, slots,"
            " created_at, expires_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)",
            (lease_id, key_name, ask.owner, micros, minute, spare, now, now + ask.ttl),
        )
    return Grant(
        "ok", lease_id, micros, quota is None, available, minute, slots, requests, tokens,
        asked_micros=(ask.need_micros or 0) + ask.surplus_micros if quota is not None else 0,
        asked_slots=ask.need_slots + ask.surplus_slots if ask.rpm is not None and ask.rated else 0,
    )  # fmt: skip


def renew(tx: Tx, owner: str, now: float, ttl: float) -> dict[str, bool]:
    """Extend every lease of ``owner`` to ``now + ttl``; the ids of those still there (the rest were reclaimed),
    each with whether another process recalled it."""
    rows = tx.execute(
        "UPDATE quota_leases SET expires_at = ? WHERE owner = ? RETURNING lease_id, recall", (now + ttl, owner)
    )
    return {str(row[0]): bool(row[1]) for row in rows}


def shrink(
    tx: Tx, lease_id: str, micros: int, *, drop: bool = False, slots: tuple[str, int, int] | None = None
) -> None:
    """Give ``micros`` of a lease back to its key's balance (at most what it has free), and ``slots`` (key name,
    minute, count) unused back to that minute's window; the lease is no longer recalled. ``drop``: the lease
    holds nothing any more (no request in flight, every charge written): delete it."""
    if slots is not None and slots[2] > 0:
        key_name, minute, count = slots
        tx.execute(
            "UPDATE rate_windows SET requests = CASE WHEN requests > ? THEN requests - ? ELSE 0 END"
            " WHERE key_name = ? AND minute = ?",
            (count, count, key_name, minute),
        )
    if drop:
        tx.execute("DELETE FROM quota_leases WHERE lease_id = ?", (lease_id,))
    else:
        tx.execute(
            "UPDATE quota_leases SET amount_micros = amount_micros - ?, recall = 0,"
            " slots = CASE WHEN slots > ? THEN slots - ? ELSE 0 END WHERE lease_id = ? AND amount_micros >= ?",
            (micros, slots[2] if slots else 0, slots[2] if slots else 0, lease_id, micros),
        )


def release_owner(tx: Tx, owner: str) -> int:
    """Delete every lease of ``owner`` (at its shutdown, once every charge is written); how many."""
    return len(tx.execute("DELETE FROM quota_leases WHERE owner = ? RETURNING lease_id", (owner,)))


def reap(tx: Tx, now: float) -> int:
    """Reclaim every lease past its expiry (its owner crashed or stalled); how many. Deleting a reservation
    only gives the balance back to the others, so no key row needs locking."""
    return len(tx.execute("DELETE FROM quota_leases WHERE expires_at < ? RETURNING lease_id", (now,)))


def reserved(tx: Tx, key_name: str) -> int:
    """Micro-credits of the key's balance its leases reserve (expired ones included until reclaimed)."""
    return sum(_reservations(tx, key_name).values())

"""Settlements of requests admitted against quota leases (``relay.store.leases``): the recorder's batch writes
each request's ``hold`` and ``settle`` (or ``release``) rows together, charges the balance and counts the charge
as settled on the request's lease, so the lease's reservation shrinks by exactly what the balance lost
(docs/store.md, "Leases"). On a pipelined PostgreSQL transaction the writes are single statements over
``unnest`` arrays, sent with the commit.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from relay.store.base import Tx
from relay.store.ledger import ADD_TOKENS, token_windows

__all__ = ["LeaseSettle", "settle"]

#: Rows per INSERT (5 parameters each).
_CHUNK = 400


@attrs.frozen
class LeaseSettle:
    """A request admitted against a lease, ended: its hold and its charge (both decided by the process)."""

    key_name: str
    #: The lease it was admitted against (None: nothing held, its key unlimited).
    lease_id: str | None
    request_id: str
    #: What was held for it (None: nothing: the key is unlimited).
    held: int | None
    #: What it is charged: at most its hold plus what its lease had free when it ended.
    charge: int
    tokens: int = 0
    tpm_counted: bool = False
    now: float = 0.0


def settle(tx: Tx, items: Sequence[LeaseSettle]) -> list[int]:
    """Write the ledger rows of requests admitted against leases; what each was charged, in order.

    Per request, its ``hold`` row and then its ``settle`` row (or ``release``, when it cost nothing), next to
    each other; the balance loses the charges and each lease counts them as settled. A request already written
    (a batch retried after a failure) is skipped. A request whose lease was reclaimed meanwhile (its process
    stalled past the ttl) is charged at most what no lease reserves now: the balance is never over-spent. Tokens
    of ``tpm_counted`` requests go into their key's minute.

    Statements: one read (the batch's keys, locked in name order, with their leases), then writes only, which a
    pipelined PostgreSQL transaction sends with its commit (one statement each for the ledger rows, the balances
    and the leases, the token windows).
    """
    held = [i for i, item in enumerate(items) if item.held is not None]
    charged = [max(0, item.charge) for item in items]
    names = sorted({items[i].key_name for i in held})
    quotas: dict[str, int | None] = {}
    leases: dict[str, int] = {}
    key_of: dict[str, str] = {}
    if names:
        # Keys locked in one order in every process (no deadlock); their leases' reservations with them.
        for name, quota, lease_id, amount, settled in tx.execute(
            "SELECT k.name, k.quota_micros, l.lease_id, l.amount_micros, l.settled_micros FROM keys k"
            " LEFT JOIN quota_leases l ON l.key_name = k.name"
            f" WHERE k.name IN ({', '.join('?' * len(names))}) ORDER BY k.name"
            + (" FOR UPDATE OF k" if tx.backend == "postgresql" else ""),
            names,
        ):
            quotas[str(name)] = None if quota is None else int(quota)
            if lease_id is not None:
                leases[str(lease_id)] = int(amount) - int(settled)
                key_of[str(lease_id)] = str(name)
    # What no lease of the key reserves: a charge beyond its lease's reservation can come only from there.
    free = {
        name: None if quota is None else quota - sum(r for lid, r in leases.items() if key_of[lid] == name)
        for name, quota in quotas.items()
    }
    rows: list[tuple[str, str, str, int, float, str | None, int]] = []  # + the lease and its reserved part
    for i in held:
        item = items[i]
        if item.key_name not in quotas:
            charged[i] = 0  # the key was deleted, with its ledger and its leases
            continue
        charge = charged[i]
        room = leases.get(item.lease_id, 0) if item.lease_id is not None else 0
        rest = free[item.key_name]
        if rest is not None and charge > room:  # only when its lease was reclaimed: no more than is free
            charge = room + min(charge - room, max(0, rest))
            free[item.key_name] = rest - (charge - room)
        part = min(charge, room)
        if item.lease_id in leases:
            leases[item.lease_id] = room - part
        charged[i] = charge
        hold = item.held or 0
        rows.append((item.key_name, item.request_id, "hold", hold, item.now, None, 0))
        if charge > 0:
            rows.append((item.key_name, item.request_id, "settle", charge, item.now, item.lease_id, part))
        else:
            rows.append((item.key_name, item.request_id, "release", hold, item.now, None, 0))
    if rows:
        (_write_postgres if tx.pipelined else _write_rows)(tx, rows, quotas)
    _add_tokens(tx, items)
    return charged


def _write_rows(
    tx: Tx, rows: Sequence[tuple[str, str, str, int, float, str | None, int]], quotas: dict[str, int | None]
) -> None:
    """The ledger rows, then the balances and the leases of the rows actually inserted (a retried batch's are not)."""
    inserted: set[tuple[str, str]] = set()
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        inserted |= {
            (str(r[0]), str(r[1]))
            for r in tx.execute(
                "INSERT INTO quota_ledger (key_name, request_id, kind, amount_micros, created_at) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
                + " ON CONFLICT (request_id, kind) DO NOTHING RETURNING request_id, kind",
                [value for row in chunk for value in row[:5]],
            )
        }
    totals: dict[str, int] = {}
    parts: dict[str, int] = {}
    for key_name, request_id, kind, amount, _, lease_id, part in rows:
        if kind == "settle" and (request_id, kind) in inserted:
            totals[key_name] = totals.get(key_name, 0) + amount
            if lease_id is not None and part:
                parts[lease_id] = parts.get(lease_id, 0) + part
    for key_name in sorted(totals):
        if quotas.get(key_name) is not None:
            tx.execute("UPDATE keys SET quota_micros = quota_micros - ? WHERE name = ?", (totals[key_name], key_name))
    for lease_id in sorted(parts):
        tx.execute(
            "UPDATE quota_leases SET settled_micros = settled_micros + ? WHERE lease_id = ?",
            (parts[lease_id], lease_id),
        )


#: PostgreSQL: the ledger rows, the balances and the leases in one statement (``unnest`` of arrays), so that a
#: pipelined transaction sends it without waiting; only the rows inserted (not a retried batch's) count.
_POSTGRES_SETTLE = """
WITH items AS (
    SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::bigint[], ?::float8[], ?::text[], ?::bigint[],
                         ?::int[])
        AS t(key_name, request_id, kind, amount, created_at, lease_id, part, ord)
), inserted AS (
    INSERT INTO quota_ledger (key_name, request_id, kind, amount_micros, created_at)
    SELECT key_name, request_id, kind, amount, created_at FROM items ORDER BY ord
    ON CONFLICT (request_id, kind) DO NOTHING
    RETURNING request_id, kind
), charged AS (
    SELECT i.key_name, i.lease_id, i.part, i.amount FROM inserted n
    JOIN items i ON i.request_id = n.request_id AND i.kind = n.kind WHERE n.kind = 'settle'
), leases AS (
    UPDATE quota_leases l SET settled_micros = l.settled_micros + c.part
    FROM (SELECT lease_id, SUM(part) AS part FROM charged WHERE lease_id IS NOT NULL GROUP BY lease_id) c
    WHERE l.lease_id = c.lease_id
)
UPDATE keys k SET quota_micros = k.quota_micros - c.total
FROM (SELECT key_name, SUM(amount) AS total FROM charged GROUP BY key_name) c
WHERE k.name = c.key_name AND k.quota_micros IS NOT NULL
"""


def _write_postgres(
    tx: Tx, rows: Sequence[tuple[str, str, str, int, float, str | None, int]], quotas: dict[str, int | None]
) -> None:
    columns = list(zip(*rows, strict=True))
    tx.send(_POSTGRES_SETTLE, [list(column) for column in columns] + [list(range(len(rows)))])


def _add_tokens(tx: Tx, items: Sequence[LeaseSettle]) -> None:
    for params in token_windows(items):
        tx.send(ADD_TOKENS, params)

"""The store's Prometheus metrics (docs/metrics.md): how long its transactions take and how many fail, by kind and
backend, recorded by ``relay.store.base.Store`` for every transaction.

They live here rather than in ``relay.metrics`` because that module names gateway types (which import the store);
this one imports nothing of Relay's. A scrape exports them with the rest: same registry, same multiprocess folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

if TYPE_CHECKING:
    from prometheus_client.metrics import MetricWrapperBase

#: The kinds of transaction: ``Store.transaction``, ``transaction_now`` and ``transaction_background``.
KINDS = ("transaction", "now", "background")
#: Seconds: a short SQLite transaction on the event loop takes tens of microseconds; a store in trouble, seconds.
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SECONDS = Histogram(
    "relay_store_transaction_seconds", "Seconds a store transaction took, waits for a thread or the lock included.",
    ("kind", "backend"), buckets=_BUCKETS,
)  # fmt: skip
ERRORS = Counter(
    "relay_store_errors", "Store transactions that failed in the database (not a constraint's refusal).",
    ("kind", "backend"),
)  # fmt: skip


class StoreTimer:
    """One store's transactions timed: the seconds each took and the failures, by kind, under the store's backend.
    The labelled children are made once, so a transaction costs a dict lookup and the observation."""

    def __init__(self, backend: str) -> None:
        self._seconds: dict[str, MetricWrapperBase] = {kind: SECONDS.labels(kind, backend) for kind in KINDS}
        self._errors: dict[str, MetricWrapperBase] = {kind: ERRORS.labels(kind, backend) for kind in KINDS}

    def observe(self, kind: str, seconds: float) -> None:
        self._seconds[kind].observe(seconds)  # type: ignore[attr-defined]

    def failed(self, kind: str) -> None:
        self._errors[kind].inc()  # type: ignore[attr-defined]

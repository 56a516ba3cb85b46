"""The store calls of requests arriving together on the hot path, run in one store transaction.

The gateway admits requests against quota leases in memory (``relay.gateway.leases``); it calls the store only
to take or renew a lease a request waits for (``leases.take``), and the calls of requests waiting at the same
moment share this transaction. The same holds for per-request admissions (``ledger.admit``), for which it was
written: admitting a request (take the hold, count the rate windows) is a handful of statements; its
transaction's commit cost as much again (on SQLite, the commit alone was 15% of a worker's time at concurrency 64
with a quota key). ``Admissions.admit`` queues the request's admission; the first request to find the queue idle
lets the scheduler run once (when other requests are being served), so that the requests ready at the same
moment queue theirs too, then runs them all, in arrival order, in one transaction (a group commit). Each
admission is the same statements it would be alone and sees the holds of those before it in the same
transaction, so no balance is ever over-spent and the outcome of each is what it would have been in a
transaction of its own, in that order. A store failure fails every admission of the batch (each request gets
the store-unavailable error it would have got alone).

A request waiting for its batch is shielded from cancellation: a hold must never be taken for a request that
went away without its settlement. The wait is bounded by the store's own busy timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import trio

from relay.store import Store, Tx

T = TypeVar("T")


@attrs.define
class _Pending:
    admit: Callable[[Tx], Any]
    done: trio.Event = attrs.field(factory=trio.Event)
    result: Any = None
    finished: bool = False
    error: BaseException | None = None


class Admissions:
    def __init__(self, store: Store) -> None:
        self._store = store
        #: How many requests the process is serving (Relay's in-flight count): alone, a request does not wait
        #: for company.
        self.serving: Callable[[], int] = lambda: 1
        self._queue: list[_Pending] = []
        self._running = False
        #: Transactions run, and admissions they held (for tests and the curious).
        self.batches = 0
        self.admitted = 0

    async def admit(self, admit: Callable[[Tx], T]) -> T:
        """``admit(tx)``'s result, run in a transaction shared with the admissions that came with it."""
        pending = _Pending(admit)
        self._queue.append(pending)
        with trio.CancelScope(shield=True):
            if self._running:
                await pending.done.wait()
            else:
                await self._run()
        if pending.error is not None:
            raise pending.error
        assert pending.finished
        return pending.result  # type: ignore[no-any-return]

    async def _run(self) -> None:
        self._running = True
        try:
            if self.serving() > 1:
                await trio.lowlevel.cancel_shielded_checkpoint()  # the requests ready now queue theirs
            while self._queue:
                batch, self._queue = self._queue, []
                await self._transaction(batch)
        finally:
            self._running = False

    async def _transaction(self, batch: list[_Pending]) -> None:
        def run(tx: Tx) -> list[Any]:
            return [pending.admit(tx) for pending in batch]

        try:
            results = await self._store.transaction_now(run)
        except BaseException as error:  # the store failed: every admission of the batch did
            for pending in batch:
                pending.error = error
                pending.done.set()
            if not isinstance(error, Exception):
                raise
            return
        self.batches += 1
        self.admitted += len(batch)
        for pending, result in zip(batch, results, strict=True):
            pending.result, pending.finished = result, True
            pending.done.set()

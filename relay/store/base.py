"""The backend-neutral ``Store``: blocking database work in worker threads, behind a dedicated limiter.

Every transaction, whichever backend and kind runs it, is timed here and only here (``relay.store.metrics``,
docs/metrics.md): the public ``transaction``, ``transaction_now`` and ``transaction_background`` measure, and the
backends implement the ``_transaction…`` methods under them.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar, TypeVar

import trio

from relay.store import migrations
from relay.store.errors import IntegrityError, StoreError
from relay.store.metrics import StoreTimer
from relay.store.tx import Row, Tx

T = TypeVar("T")


class Store(abc.ABC):
    """A database behind worker threads; every method is async and safe to call from many tasks."""

    backend: ClassVar[str]

    def __init__(self, url: str, max_threads: int) -> None:
        self.url = url  # with any password removed: safe to log
        self._limiter = trio.CapacityLimiter(max_threads)
        self._closed = False
        self._timer = StoreTimer(self.backend)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise StoreError(f"store {self.url} is closed")
        # Not abandoned on cancel: a transaction, once begun, is committed or rolled back in its thread.
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    @abc.abstractmethod
    def _transaction_sync(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in one transaction (committed if it returns, rolled back if it raises)."""

    @abc.abstractmethod
    def _close_sync(self) -> None: ...

    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        """Run the blocking ``fn(tx)`` in a worker thread, inside one write transaction."""
        return await self._timed("transaction", self._transaction(fn))

    async def transaction_now(self, fn: Callable[[Tx], T]) -> T:
        """``transaction(fn)`` for short transactions on the hot path: a backend may run it without a thread
        hop when it cannot block (SQLite with its write lock free); others run ``transaction``."""
        return await self._timed("now", self._transaction_now(fn))

    async def transaction_background(self, fn: Callable[[Tx], T]) -> T:
        """``transaction(fn)`` for writes nobody waits for (the request log, settlements): a backend may run it
        where it takes CPU only from idle time (SQLite: ``relay.store.background``)."""
        return await self._timed("background", self._transaction_background(fn))

    async def _timed(self, kind: str, work: Awaitable[T]) -> T:
        """``work``'s result, its seconds observed under ``kind`` (waits for a thread or the lock included, as a
        request sees them) and its failure counted: a ``StoreError`` but a constraint's refusal, an answer."""
        started = time.perf_counter()
        try:
            return await work
        except IntegrityError:
            raise
        except StoreError:
            self._timer.failed(kind)
            raise
        finally:
            self._timer.observe(kind, time.perf_counter() - started)

    async def _transaction(self, fn: Callable[[Tx], T]) -> T:
        return await self._run(self._transaction_sync, fn)

    async def _transaction_now(self, fn: Callable[[Tx], T]) -> T:
        return await self._transaction(fn)

    async def _transaction_background(self, fn: Callable[[Tx], T]) -> T:
        return await self._transaction(fn)

    async def maintain(self) -> None:
        """Background upkeep while the store is in use (SQLite: checkpoints); cancelled at the end."""
        await trio.sleep_forever()

    async def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """One statement in its own transaction; its rows, if it returns any."""
        return await self.transaction(lambda tx: tx.execute(sql, params))

    async def migrate(self) -> int:
        """Bring the schema up to date (idempotent, safe across processes); the version it is now at."""
        return await self.transaction(migrations.apply)

    async def schema_version(self) -> int:
        """The version the schema is at (0: never migrated)."""
        return await self.transaction(migrations.current_version)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True  # nothing new starts; the close waits in the limiter for work in flight
        await trio.to_thread.run_sync(self._close_sync, limiter=self._limiter)

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

"""PostgreSQL: for a fleet. psycopg 3 in worker threads, through a bounded connection pool."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg
import psycopg_pool

from relay.store.base import Store, Tx
from relay.store.errors import IntegrityError, StoreError

T = TypeVar("T")

MAX_CONNECTIONS = 8


class PostgresStore(Store):
    """``postgresql://…``: at most ``max_connections`` connections, and as many worker threads.

    The pool opens in the background; a database that cannot be reached within ``timeout`` seconds
    fails the call that needed it with a ``StoreError``.
    """

    backend = "postgresql"

    def __init__(self, url: str, conninfo: str, *, timeout: float, max_connections: int = MAX_CONNECTIONS) -> None:
        super().__init__(url, max_threads=max_connections)
        self.timeout = timeout
        self._pool = psycopg_pool.ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_connections,
            timeout=timeout,
            open=False,
            name="relay-store",
        )
        self._conninfo = conninfo
        self._open_lock = threading.Lock()
        self._opened = False

    async def _transaction_background(self, fn: Callable[[Tx], T]) -> T:
        """``fn`` in one transaction in pipeline mode: what it ``send``s waits for no round trip, so the
        recorder's batch (settlements, request log, daily totals) costs one round trip for its reads (the
        keys it locks) and one for all its writes and the commit."""
        return await self._run(self._transaction_sync, fn, True)

    def _transaction_sync(self, fn: Callable[[Tx], T], pipeline: bool = False) -> T:
        with self._open_lock:
            if not self._opened:
                self._pool.open(wait=False)  # connects in the pool's own threads
                self._opened = True
        try:
            with self._pool.connection() as conn:
                if pipeline:
                    with conn.pipeline() as pipe, conn.transaction(), conn.cursor() as cursor:
                        return fn(Tx(cursor, self.backend, pipe.sync))
                with conn.transaction(), conn.cursor() as cursor:
                    return fn(Tx(cursor, self.backend))
        except psycopg_pool.PoolTimeout as e:
            raise StoreError(f"PostgreSQL {self.url}: no connection within {self.timeout:g} s: {self._why()}") from e
        except psycopg.errors.IntegrityError as e:
            raise IntegrityError(str(e).strip()) from e
        except psycopg.Error as e:
            raise StoreError(f"PostgreSQL {self.url}: {str(e).strip()}") from e

    def _why(self) -> str:
        """Why the pool could not connect: the pool logs it, so ask once more, directly."""
        try:
            psycopg.connect(self._conninfo, connect_timeout=max(2, int(self.timeout))).close()
        except psycopg.Error as e:
            return str(e).strip()
        return "the pool is exhausted"

    def _close_sync(self) -> None:
        if self._opened:
            self._pool.close(timeout=5)

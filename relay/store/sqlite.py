"""SQLite: the embedded default. One serialized connection (WAL mode), used from worker threads."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from relay.store.base import Store, Tx
from relay.store.errors import IntegrityError, StoreError

T = TypeVar("T")

BUSY_TIMEOUT_S = 5.0


class SQLiteStore(Store):
    """``sqlite:///path``: one connection, opened lazily in a worker thread, used by one thread at a time.

    SQLite has a single writer anyway, so the limiter holds one thread; other processes on the same
    file wait for the write lock up to ``BUSY_TIMEOUT_S`` (busy_timeout). Every transaction begins with
    ``BEGIN IMMEDIATE``: it takes the write lock up front, so two writers never deadlock on an upgrade.
    """

    backend = "sqlite"

    def __init__(self, url: str, path: str) -> None:
        super().__init__(url, max_threads=1)
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as e:
                raise StoreError(f"cannot open SQLite database {self.path!r}: {e}") from e
            self._conn = conn
        return self._conn

    def _transaction_sync(self, fn: Callable[[Tx], T]) -> T:
        conn = self._connect()
        cursor = conn.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                result = fn(Tx(cursor, self.backend))
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            return result
        except sqlite3.IntegrityError as e:
            raise IntegrityError(str(e)) from e
        except sqlite3.Error as e:
            raise StoreError(f"SQLite {self.path!r}: {e}") from e
        finally:
            cursor.close()

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

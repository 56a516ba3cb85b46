"""SQLite: the embedded default. One serialized connection (WAL mode), used from worker threads."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

import trio

from relay.store.background import Background
from relay.store.base import Store, Tx
from relay.store.errors import IntegrityError, StoreError

T = TypeVar("T")

BUSY_TIMEOUT_S = 5.0
#: Seconds between two checkpoints of the write-ahead log.
CHECKPOINT_EVERY = 1.0

log = logging.getLogger("relay.store")


class SQLiteStore(Store):
    """``sqlite:///path``: one connection, opened lazily in a worker thread, used by one thread at a time;
    and one more for short transactions run on the event loop itself (``transaction_now``).

    SQLite has a single writer anyway, so the limiter holds one thread; other processes on the same
    file wait for the write lock up to ``BUSY_TIMEOUT_S`` (busy_timeout). Every transaction begins with
    ``BEGIN IMMEDIATE``: it takes the write lock up front, so two writers never deadlock on an upgrade.

    Checkpoints (copying the write-ahead log into the database, with an fsync) are never run by a commit
    (``wal_autocheckpoint = 0``): ``maintain()`` runs them every ``CHECKPOINT_EVERY`` seconds in the worker
    thread, so a commit on the event loop never waits for the disk.
    """

    backend = "sqlite"

    def __init__(self, url: str, path: str) -> None:
        super().__init__(url, max_threads=1)
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._now_conn: sqlite3.Connection | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        #: The request log's and settlements' writer: a connection on a thread of lowest priority.
        self._background = Background("relay-store-writer")
        self._background_conn: sqlite3.Connection | None = None

    def _open(self, busy_timeout: float) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            _switch_to_wal(conn, busy_timeout)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        except sqlite3.Error as e:
            raise StoreError(f"cannot open SQLite database {self.path!r}: {e}") from e
        return conn

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open(BUSY_TIMEOUT_S)
        return self._conn

    def _transaction_sync(self, fn: Callable[[Tx], T]) -> T:
        return self._transaction_on(self._connect(), fn)

    def _transaction_on(self, conn: sqlite3.Connection, fn: Callable[[Tx], T]) -> T:
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
        except sqlite3.OperationalError as e:
            if _busy(e):
                raise _Busy from e
            raise StoreError(f"SQLite {self.path!r}: {e}") from e
        except sqlite3.Error as e:
            raise StoreError(f"SQLite {self.path!r}: {e}") from e
        finally:
            cursor.close()

    async def _transaction_now(self, fn: Callable[[Tx], T]) -> T:
        """``fn`` in one transaction on the event loop's own thread (a thread hop costs more than a short
        SQLite transaction). It never waits inside SQLite: when another connection (the worker thread's, or
        another process's) holds the write lock, it sleeps a little and tries again, the loop free meanwhile.
        No lock of Relay's own is taken: waiting tasks handed a lock one by one formed convoys under load."""
        if self.path == ":memory:":
            return await self._transaction(fn)
        if self._closed:
            raise StoreError(f"store {self.url} is closed")
        if self._now_conn is None:
            self._now_conn = self._open(0.0)
        deadline = trio.current_time() + BUSY_TIMEOUT_S
        pause = 0.0005
        while True:
            try:
                return self._transaction_on(self._now_conn, fn)
            except _Busy:
                if trio.current_time() >= deadline:
                    raise StoreError(f"SQLite {self.path!r}: database is locked") from None
            await trio.sleep(pause)
            pause = min(pause * 2, 0.01)

    async def _transaction_background(self, fn: Callable[[Tx], T]) -> T:
        """``fn`` in one transaction on the writer thread, which runs only when the event loop is idle
        (``relay.store.background``), on a connection of its own."""
        if self.path == ":memory:":  # another connection would open another database
            return await self._transaction(fn)
        if self._closed:
            raise StoreError(f"store {self.url} is closed")
        return await self._background.run(lambda: self._transaction_on(self._writer(), fn))

    def _writer(self) -> sqlite3.Connection:
        if self._background_conn is None:
            self._background_conn = self._open(BUSY_TIMEOUT_S)
        return self._background_conn

    async def aclose(self) -> None:
        if not self._closed:
            await self._background.aclose()  # what the writer was given is written first
        await super().aclose()

    def _checkpoint_sync(self) -> None:
        try:
            if self._checkpoint_conn is None:
                self._checkpoint_conn = self._open(BUSY_TIMEOUT_S)
            self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as e:
            raise StoreError(f"SQLite {self.path!r}: checkpoint: {e}") from e

    async def maintain(self) -> None:
        """Checkpoints, on a connection and a thread of their own: a PASSIVE checkpoint takes no write lock,
        so transactions go on while it copies and syncs."""
        if self.path == ":memory:":
            await trio.sleep_forever()
        limiter = trio.CapacityLimiter(1)
        try:
            while True:
                await trio.sleep(CHECKPOINT_EVERY)
                try:
                    await trio.to_thread.run_sync(self._checkpoint_sync, limiter=limiter)
                except StoreError as error:
                    log.warning("%s", error)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._close_checkpointer, limiter=limiter)

    def _close_checkpointer(self) -> None:
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None

    def _close_sync(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # another process reads or writes: its own close or a later checkpoint will do it
            self._conn.close()
            self._conn = None
        if self._now_conn is not None:
            self._now_conn.close()
            self._now_conn = None
        if self._background_conn is not None:
            self._background_conn.close()
            self._background_conn = None


def _switch_to_wal(conn: sqlite3.Connection, wait: float) -> None:
    """``journal_mode = WAL``, retried: the switch may fail at once with "locked" while another process
    creates or switches the same file, without SQLite's busy handler waiting for it."""
    deadline = time.monotonic() + max(wait, 1.0)
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if not _busy(e) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class _Busy(StoreError):
    """Another connection holds the write lock (only raised where the caller waits no longer)."""


def _busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or (
        "locked" in str(error)
    )

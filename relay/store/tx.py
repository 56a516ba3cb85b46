"""``Tx``, one open transaction: what every table module (and relay.store.migrations) writes through.

Its own module, underneath relay.store.base (whose ``Store`` opens transactions and runs the migrations), so the
migrations need not import the store that runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

Row = tuple[Any, ...]


class _Cursor(Protocol):
    description: Any

    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Tx:
    """One open transaction, handed to the function given to ``Store.transaction`` (in a worker thread).

    SQL uses ``?`` placeholders on every backend; for PostgreSQL they become ``%s`` (so write a literal
    ``%`` as ``%%`` there, or better, pass it as a parameter).
    """

    def __init__(self, cursor: _Cursor, backend: str, sync: Callable[[], None] | None = None) -> None:
        self._cursor = cursor
        self.backend = backend
        #: PostgreSQL in pipeline mode (``Store.transaction_background``): flushes what was sent and waits for
        #: the results, one round trip.
        self._sync = sync

    @property
    def pipelined(self) -> bool:
        """Statements given to ``send`` wait for no round trip (they go with the next ``execute`` or the commit)."""
        return self._sync is not None

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        self.send(sql, params)
        if self._sync is not None:
            self._sync()  # the rows are needed now: one round trip, with every statement sent before
        return [tuple(row) for row in self._cursor.fetchall()] if self._cursor.description else []

    def send(self, sql: str, params: Sequence[object] = ()) -> None:
        """Run a statement whose result nobody reads. Pipelined, it is only queued: a batch of writes then costs
        PostgreSQL one round trip (with the commit) instead of one each."""
        if self.backend == "postgresql":
            # No parameters: None, so that psycopg leaves any ``%`` in the SQL alone.
            self._cursor.execute(sql.replace("?", "%s"), tuple(params) if params else None)
        else:
            self._cursor.execute(sql, tuple(params))

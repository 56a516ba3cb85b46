"""Writes settlements and the request log off the hot path, in batches, and flushes them at shutdown.

A request ends by handing its settlement (for a request admitted against a quota lease, its hold and its
charge: both ledger rows are written together, and ``Leases.written`` is told once they are) and its log
record to the recorder, which costs an append:
no await, so it works even in a request cancelled because its client went away. One background
task writes them, each write one transaction (settlements first, then up to ``log_batch`` records),
within ``SETTLE_GATHER`` seconds of a settlement and every ``log_interval`` seconds (or when a batch is
full) for the log. The writes go through ``Store.transaction_background`` (SQLite: a thread that runs only
when the event loop is idle, so they never delay a request), unless ``BACKLOG_BATCHES`` batches wait: then
at the normal priority, so a worker busy without pause still writes its log. While the store cannot be
written, it retries with a growing pause; settlements are kept whatever happens (they are bounded by the
requests in flight), log records up to ``log_buffer``, past which the oldest are dropped and counted in
``dropped``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable

import trio

from relay.config import StoreConfig
from relay.store import Store, StoreError, Tx
from relay.store.ledger import Settle, settle_all
from relay.store.records import LogRecord, write_logs
from relay.store.settlements import LeaseSettle
from relay.store.settlements import settle as settle_leased

log = logging.getLogger("relay.gateway")

#: Seconds a settlement waits for others to share its transaction (the balance lags by no more).
SETTLE_GATHER = 0.05
#: Batches of backlog past which writes stop waiting for idle time: a worker busy without pause would
#: otherwise starve the low-priority writer (``Store.transaction_background``) and the log would lag.
BACKLOG_BATCHES = 2
#: Pause after a failed write, doubled up to MAX_PAUSE while the store keeps failing.
FIRST_PAUSE = 0.2
MAX_PAUSE = 5.0
#: Tokens to add to an outside rate limiter (Redis): (key name, tokens, time).
TokenSink = Callable[[str, int, float], Awaitable[None]]
#: Told of the lease settlements of each batch once it is written (``Leases.written``).
Written = Callable[[list[LeaseSettle]], None]


class Recorder:
    def __init__(
        self, store: Store, config: StoreConfig, tokens: TokenSink | None = None, written: Written | None = None
    ) -> None:
        self._store = store
        self._batch = config.log_batch
        self._interval = config.log_interval
        self._buffer = config.log_buffer
        self._token_sink = tokens
        self._settles: list[Settle] = []
        self._leased: list[LeaseSettle] = []
        self._written = written
        self._logs: deque[LogRecord] = deque()
        self._tokens: list[tuple[str, int, float]] = []
        self._wake = trio.Event()
        #: Log records dropped because the buffer was full while the store could not be written.
        self.dropped = 0
        #: Log records written.
        self.written = 0
        self.failing = False

    @property
    def pending(self) -> int:
        return len(self._settles) + len(self._leased) + len(self._logs) + len(self._tokens)

    def settle(self, settle: Settle) -> None:
        """A request admitted by ``ledger.admit`` (its hold row written then) ended."""
        self._settles.append(settle)
        self._wake.set()

    def settle_leased(self, settle: LeaseSettle) -> None:
        """A request admitted against a lease ended: its hold and settle rows are written together."""
        self._leased.append(settle)
        self._wake.set()

    def add_tokens(self, key_name: str, tokens: int, now: float) -> None:
        """Tokens for the outside rate limiter (the store's own are added with the settlement)."""
        self._tokens.append((key_name, tokens, now))
        self._wake.set()

    def log(self, record: LogRecord) -> None:
        if len(self._logs) >= self._buffer:
            self._logs.popleft()
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.error("request log buffer full (%d records): %d records dropped so far", self._buffer, self.dropped)
        self._logs.append(record)
        if len(self._logs) >= self._batch:
            self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write until cancelled (then ``flush`` writes what is left)."""
        task_status.started()
        pause = FIRST_PAUSE
        while True:
            with trio.move_on_after(self._interval):
                await self._wake.wait()
                if len(self._logs) < self._batch:
                    await trio.sleep(SETTLE_GATHER)  # let a few more settlements join this transaction
            self._wake = trio.Event()
            while self.pending:
                if await self.write_once():
                    pause = FIRST_PAUSE
                    if len(self._logs) < self._batch:
                        break  # what came during the write waits for the next round, to join others
                    await trio.sleep(0)  # requests run between two chunks
                else:
                    await trio.sleep(pause)
                    pause = min(pause * 2, MAX_PAUSE)
            if self.pending:
                self._wake.set()

    async def write_once(self) -> bool:
        """One transaction of what is pending; False when the store failed (everything is kept)."""
        settles, self._settles = self._settles, []
        leased, self._leased = self._leased, []
        logs = [self._logs.popleft() for _ in range(min(self._batch, len(self._logs)))]
        tokens, self._tokens = self._tokens, []
        try:
            if settles or leased or logs:

                def write(tx: Tx) -> int:
                    if settles:
                        settle_all(tx, settles)
                    if leased:
                        settle_leased(tx, leased)
                    return write_logs(tx, logs)

                behind = len(self._logs) >= BACKLOG_BATCHES * self._batch
                transaction = self._store.transaction if behind else self._store.transaction_background
                with trio.CancelScope(shield=True):  # a batch taken out is written or put back, never lost
                    self.written += await transaction(write)
                if leased and self._written is not None:
                    self._written(leased)
            if tokens and self._token_sink is not None:
                await self._send_tokens(tokens)
        except StoreError as error:
            self._settles[:0] = settles
            self._leased[:0] = leased
            self._tokens[:0] = tokens
            room = max(0, self._buffer - len(self._logs))
            self.dropped += max(0, len(logs) - room)
            self._logs.extendleft(reversed(logs[len(logs) - room :] if room < len(logs) else logs))
            if not self.failing:
                log.error("request log and settlements not written (kept, retrying): %s", error)
            self.failing = True
            return False
        if self.failing:
            log.warning("store writable again: request log and settlements caught up")
        self.failing = False
        return True

    async def _send_tokens(self, tokens: list[tuple[str, int, float]]) -> None:
        assert self._token_sink is not None
        for key_name, count, now in tokens:
            try:
                await self._token_sink(key_name, count, now)
            except Exception as error:  # the rate limiter is best effort: it fails open
                log.warning("tokens not counted in the rate limiter: %s", error)
                return

    async def flush(self, timeout: float) -> bool:
        """Write everything pending within ``timeout`` seconds; False (and an error logged) if it could not."""
        with trio.move_on_after(timeout):
            while self.pending:
                if not await self.write_once():
                    await trio.sleep(FIRST_PAUSE)
            return True
        log.error(
            "shutdown: %d settlements and %d request-log records could not be written",
            len(self._settles) + len(self._leased),
            len(self._logs),
        )
        return False

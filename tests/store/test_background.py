"""The store's low-priority writer thread (``relay.store.background``) and the recorder's use of it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from relay.config import StoreConfig
from relay.gateway import recorder as recorder_module
from relay.store import Tx, open_store
from relay.store.background import NICE, Background
from relay.store.records import read_logs
from tests.gateway_e2e.test_request_log import record

T = TypeVar("T")


async def test_a_call_runs_on_one_thread_of_lowest_priority_and_gives_back_its_result_or_error() -> None:
    background = Background("test-writer")
    seen: list[tuple[int, int]] = []

    def where() -> tuple[int, int]:
        tid = threading.get_native_id()
        seen.append((tid, os.getpriority(os.PRIO_PROCESS, tid)))
        return seen[-1]

    first, second = await background.run(where), await background.run(where)
    assert first == second and first[0] != threading.get_native_id()  # one thread, not the loop's
    assert first[1] == NICE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) != NICE  # the loop's own is untouched

    def fails() -> None:
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        await background.run(fails)
    await background.aclose()
    assert await background.run(lambda: 7) == 7  # a closed one starts a new thread when used again
    await background.aclose()


async def test_sqlite_writes_in_the_background_go_to_the_same_file(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path}/relay.db") as store:
        await store.migrate()
        await store.transaction_background(lambda tx: tx.execute("CREATE TABLE t (x INTEGER)"))
        await store.transaction_background(lambda tx: tx.execute("INSERT INTO t VALUES (1)"))
        assert await store.transaction(lambda tx: tx.execute("SELECT x FROM t")) == [(1,)]


class CountingStore:
    """A real store that counts which of its transaction kinds the recorder used."""

    def __init__(self, url: str) -> None:
        self.store = open_store(url)
        self.backend = self.store.backend
        self.used: list[str] = []

    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        self.used.append("normal")
        return await self.store.transaction(fn)

    async def transaction_background(self, fn: Callable[[Tx], T]) -> T:
        self.used.append("background")
        return await self.store.transaction_background(fn)


async def test_the_recorder_writes_in_the_background_until_a_backlog_builds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/relay.db"
    counting = CountingStore(url)
    await counting.store.migrate()
    recorder: Any = recorder_module.Recorder(counting, StoreConfig(url=url, log_batch=4))  # type: ignore[arg-type]
    for i in range(3):
        recorder.log(record(f"r{i}"))
    assert await recorder.write_once()
    assert counting.used == ["background"]
    for i in range(3, 3 + 4 * recorder_module.BACKLOG_BATCHES + 4):  # more than the backlog bound waits
        recorder.log(record(f"r{i}"))
    assert await recorder.write_once()
    assert counting.used[-1] == "normal"
    while recorder.pending:
        assert await recorder.write_once()
    assert counting.used[-1] == "background"  # caught up: back to idle time
    rows = await counting.store.transaction(lambda tx: read_logs(tx, limit=100))
    assert len(rows) == 3 + 4 * recorder_module.BACKLOG_BATCHES + 4
    await counting.store.aclose()

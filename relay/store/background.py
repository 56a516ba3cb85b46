"""One OS thread at the lowest CPU priority, running blocking work for the event loop one call at a time.

The request log and settlements are written off the request path, but on a worker pinned to one core a
writer thread still takes CPU from the event loop whenever both are ready to run: a batch of a few hundred
log rows then delays the requests that arrive meanwhile (measured: half of the added p99 at concurrency 1).
At nice 19 the kernel runs this thread only when the event loop's thread has nothing to do, so the writes
fill the loop's idle time instead. The GIL cannot invert that for long: SQLite releases it for every
statement step, and the thread holds it only for the short Python between.

Lowering a thread's own priority needs no privilege; where the system refuses, the thread runs at the
normal priority and nothing else changes.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import trio

T = TypeVar("T")

#: The nice value of the thread: the lowest priority Linux has.
NICE = 19


@attrs.define
class _Call:
    fn: Callable[[], Any]
    token: trio.lowlevel.TrioToken
    done: trio.Event
    value: Any = None
    error: BaseException | None = None


class Background:
    """``await background.run(fn)``: ``fn()`` in the thread; its result, or its exception raised here.

    A call, once handed over, runs to its end even if the caller is cancelled (its result is then lost):
    callers that must not lose a write shield it, as the recorder does.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def run(self, fn: Callable[[], T]) -> T:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()
        call = _Call(fn, trio.lowlevel.current_trio_token(), trio.Event())
        self._queue.put(call)
        await call.done.wait()
        if call.error is not None:
            raise call.error
        return call.value  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop the thread once what it was given is done."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            await trio.to_thread.run_sync(thread.join)

    def _serve(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        except (OSError, AttributeError):  # not permitted, or not Linux: the normal priority
            pass
        while (call := self._queue.get()) is not None:
            try:
                call.value = call.fn()
            except BaseException as error:  # handed to the caller
                call.error = error
            try:
                call.token.run_sync_soon(call.done.set)
            except trio.RunFinishedError:
                return

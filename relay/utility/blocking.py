"""Blocking work (document conversion, HTML extraction, token-aware splitting) in worker threads, never on the
event loop: ``run_blocking`` runs a function in a thread behind one ``trio.CapacityLimiter`` per process, so a
burst of uploads queues for ``[utility] threads`` threads instead of starting one each."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")

#: The threads of this process's blocking work: sized by ``configure`` (``[utility] threads``) at the first use.
_limiter: trio.CapacityLimiter | None = None


def configure(threads: int) -> trio.CapacityLimiter:
    """The process's limiter, made with ``threads`` places at the first call (later calls resize it)."""
    global _limiter
    if _limiter is None:
        _limiter = trio.CapacityLimiter(max(1, threads))
    elif _limiter.total_tokens != max(1, threads):
        _limiter.total_tokens = max(1, threads)
    return _limiter


async def run_blocking(fn: Callable[..., T], *args: object, threads: int = 4) -> T:
    """``fn(*args)`` in a worker thread, at most ``threads`` at once in this process (the first call's number
    sizes the limiter unless ``configure`` did). A cancelled caller leaves the thread to finish on its own
    (``abandon_on_cancel``): the work is pure computation on bytes it was given, and its result is dropped."""
    limiter = _limiter if _limiter is not None else configure(threads)
    return await trio.to_thread.run_sync(fn, *args, limiter=limiter, abandon_on_cancel=True)

"""Giving the heap back to the system after large requests (or answers): glibc keeps what a burst freed, so RSS
would stay high.

A large request (a body of ``LARGE`` bytes or more) makes copies of its size: the body, its parsed payload, the
body written for the upstream, the answer. Python hands objects of more than 512 bytes to ``malloc``; glibc serves
them from its heaps (its mmap threshold rises to the size of the largest block freed, up to 32 MiB, so after the
first large block even multi-megabyte ones come from the heap) and, once they are freed, keeps the pages: only the
top of each heap is ever returned by ``free``. After a burst of 64 requests of 2 MB, RSS stayed at 8x its level
before (docs/performance.md, RSS after a burst). ``malloc_trim(0)`` returns every free page of every heap.

The trim is not on any request's path: a background task of the server (``run``) waits until large requests
were seen and none is in flight (a stream's request stops being in flight when its answer starts: its copies
are freed then, ``Request.let_go``), then ``QUIET`` seconds more, and calls ``malloc_trim(0)`` in a worker thread
(ctypes lets go of the GIL; glibc locks each heap in turn, so the event loop's own ``malloc`` calls wait at most for
one heap's pass). At most once per ``EVERY`` seconds: a steady flow of large requests costs one trim per period.
Where there is no glibc (``malloc_trim`` absent), nothing is done.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import trio

from relay.http.messages import Request

#: A request body of at least this many bytes is large: its copies (several, each of its size) are what a trim
#: gives back. Smaller ones are served from blocks freed by the requests before them.
LARGE = 64 * 1024
#: Seconds without a large request in flight before the trim.
QUIET = 1.0
#: Seconds at least between two trims.
EVERY = 5.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class HeapTrimmer:
    """Counts large requests in flight; ``run`` trims the heap once they are over and the server is quiet."""

    __slots__ = ("_changed", "_in_flight", "_last", "_pending", "_trim", "every", "quiet", "trims")

    def __init__(self, *, quiet: float = QUIET, every: float = EVERY, trim: Callable[[int], int] | None = None) -> None:
        self.quiet = quiet
        self.every = every
        self._trim = trim if trim is not None else _malloc_trim()
        self._in_flight = 0
        #: Large requests ended since the last trim.
        self._pending = False
        self._changed = trio.Event()
        self._last = -float("inf")
        #: Trims done (for the tests and the logs).
        self.trims = 0

    def large(self, request: Request) -> _Large:
        """``request`` is large: counted in flight until its copies are freed, when its answer starts (a stream's
        request is let go of then, ``Request.let_go``) or at the latest when it is over (``release``)."""
        self.begin()
        held = _Large(self)
        request.retain(held)
        return held

    def begin(self) -> None:
        """A large request is being served."""
        self._in_flight += 1

    def end(self) -> None:
        """A large request's copies are freed."""
        self._in_flight -= 1
        self.freed()

    def freed(self) -> None:
        """Large blocks were freed (a large request's, or a large answer's): a trim is due once quiet."""
        self._pending = True
        self._changed.set()

    async def run(self) -> None:
        """Trim after each wave of large requests, once none is in flight and ``quiet`` seconds passed; forever."""
        if self._trim is None:
            return
        while True:
            await self._changed.wait()
            self._changed = trio.Event()
            if not self._pending or self._in_flight:
                continue
            with trio.move_on_after(self.quiet) as quiet:
                await self._changed.wait()
            if not quiet.cancelled_caught or self._in_flight:
                continue  # another one ended (the quiet period starts over) or began (its end is awaited)
            await trio.sleep_until(self._last + self.every)
            if self._in_flight:
                continue
            self._pending = False
            self._last = trio.current_time()
            await trio.to_thread.run_sync(self._trim, 0)
            self.trims += 1


class _Large:
    """A large request in flight; ``release`` (once, whoever calls it first) ends it."""

    __slots__ = ("_heap",)

    def __init__(self, heap: HeapTrimmer) -> None:
        self._heap: HeapTrimmer | None = heap

    def release(self) -> None:
        if self._heap is not None:
            self._heap.end()
            self._heap = None

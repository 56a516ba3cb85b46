"""Background Responses jobs: their owner (a nursery that lives with the app) and one job's event log.

A ``Job`` holds a background response being generated in this process: its current Response object, the events
of its stream so far (sequence numbers from 0), and the cancel scope of its run. Readers wait on it for new
events (``wait``). ``BackgroundJobs.running`` opens the nursery the jobs run in; at the app's end it cancels them
all (each marks itself ``failed`` with ``server_shutting_down`` and is saved, see ``background_responses``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

#: A background response's statuses that will not change again.
FINISHED = frozenset({"completed", "incomplete", "failed", "cancelled"})


class Job:
    """One background response generated in this process."""

    def __init__(self, id: str, key_name: str, response: dict[str, Any]) -> None:
        self.id = id
        self.key_name = key_name
        #: The Response object as it is now (``queued``, ``in_progress``, then its final status).
        self.response = response
        #: The stream's events so far; an event's ``sequence_number`` is its index.
        self.events: list[dict[str, Any]] = []
        self.scope = trio.CancelScope()
        #: The client asked to cancel it (``POST /v1/responses/{id}/cancel``).
        self.cancel_requested = False
        self.done = False
        self._changed = trio.Event()

    def add(self, event: dict[str, Any]) -> None:
        """Append ``event`` to the log (numbered), and take its Response object as the current one."""
        event["sequence_number"] = len(self.events)
        self.events.append(event)
        response = event.get("response")
        if isinstance(response, dict):
            self.response = response
        self._notify()

    def finish(self, response: dict[str, Any]) -> None:
        self.response = response
        self.done = True
        self._notify()

    def cancel(self) -> None:
        self.cancel_requested = True
        self.scope.cancel()

    async def wait(self, seen: int) -> None:
        """Return once the log has more than ``seen`` events, or the job is done."""
        while len(self.events) <= seen and not self.done:
            await self._changed.wait()

    def _notify(self) -> None:
        changed, self._changed = self._changed, trio.Event()
        changed.set()


class BackgroundJobs:
    """The jobs running in this process, by response id, and the nursery they run in."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._nursery: trio.Nursery | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Jobs can be started for the body; at its end every job still running is cancelled (and saves itself)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                yield
            finally:
                self._nursery = None
                nursery.cancel_scope.cancel()

    def start(self, job: Job, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run`` (the job's generation) detached; the job is listed until it returns."""
        if self._nursery is None:
            raise RuntimeError("background jobs are not running")
        self.jobs[job.id] = job

        async def owned() -> None:
            try:
                await run()
            finally:
                self.jobs.pop(job.id, None)

        self._nursery.start_soon(owned)

    @property
    def open(self) -> bool:
        return self._nursery is not None

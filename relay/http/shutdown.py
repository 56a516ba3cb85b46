"""``Shutdown``: the server's stop signal, shared by its connections and what streams responses on them.

Its own module, underneath relay.http.connection, relay.http.messages and relay.http.writer alike.
"""

from __future__ import annotations

import math

import trio


class Shutdown:
    """Shared by a server's connections: once begun, idle connections close and busy ones finish.

    Idle means waiting for a request's first byte: between keep-alive requests, or before the first.
    """

    def __init__(self) -> None:
        self.begun = False
        self.event = trio.Event()
        self._idle: set[trio.CancelScope] = set()
        self._draining: set[trio.CancelScope] = set()
        #: ``trio.current_time()`` by which streaming responses end themselves (set when shutdown begins).
        self.drain_at = math.inf

    def begin(self) -> None:
        self.begun = True
        self.event.set()
        for scope in self._idle:
            scope.cancel()

    def watch_idle(self, scope: trio.CancelScope) -> None:
        if self.begun:
            scope.cancel()
        self._idle.add(scope)

    def unwatch_idle(self, scope: trio.CancelScope) -> None:
        self._idle.discard(scope)

    def drain_by(self, deadline: float) -> None:
        """Responses still streaming must end themselves by ``deadline`` (``trio.current_time()``): the server
        calls it when shutdown begins, a moment before the grace runs out, so a stream gets its last word."""
        self.drain_at = deadline
        for scope in self._draining:
            scope.deadline = min(scope.deadline, deadline)

    def watch_draining(self, scope: trio.CancelScope) -> None:
        """``scope`` (a stream's wait for its next piece) is cancelled at the drain deadline."""
        scope.deadline = min(scope.deadline, self.drain_at)
        self._draining.add(scope)

    def unwatch_draining(self, scope: trio.CancelScope) -> None:
        self._draining.discard(scope)

"""The in-flight cap: how many upstream-bound requests one process serves at once; beyond it, a fast 503.

Every request that goes upstream (the POST routes: generation and token counting) holds a place from the
moment its route is known until its answer, stream included, is over. When ``[server] max_in_flight``
places are taken, the next such request is refused at once with 503 ``overloaded`` and ``retry-after``, in
the client's dialect, instead of waiting for an upstream connection. Model lists and ``/healthz`` never
count and are never refused.

The default cap is the upstream pool's ``max_connections``: a request holds at most one pooled connection
at a time, so under the cap the pool never makes a request wait. The cap is per process (each worker has
its own, as it has its own pool). Trio runs one task at a time, so a plain counter is exact.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING

from relay.errors import RelayError

if TYPE_CHECKING:
    from relay.route import Route

#: Seconds a refused client is told to wait (``retry-after``).
RETRY_AFTER = 1
#: The code of the 503 an overloaded process answers.
OVERLOADED = "overloaded"


def counted(route: Route) -> bool:
    """Whether ``route`` goes upstream, so holds a place: every POST route does; the GET ones never."""
    return route.method == "POST"


class InFlight:
    """The places of one process: ``with in_flight.enter(route): ...`` around the route's endpoint."""

    __slots__ = ("_release", "count", "limit", "refused")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the in-flight limit must be at least 1")
        self.limit = limit
        #: Places taken now.
        self.count = 0
        #: Requests refused since the start.
        self.refused = 0
        self._release = _Release(self)

    def enter(self, route: Route) -> AbstractContextManager[None]:
        """A place for a request to ``route`` (to use in a ``with``); RelayError 503 when all are taken."""
        if not counted(route):
            return _FREE
        if self.count >= self.limit:
            self.refused += 1
            raise RelayError(
                503,
                "overloaded",
                f"Relay is serving as many requests as it can; retry in {RETRY_AFTER} s",
                code=OVERLOADED,
                headers=((b"retry-after", str(RETRY_AFTER).encode()),),
            )
        self.count += 1
        return self._release


class _Release:
    """Gives the place back when the ``with`` ends, however it ends."""

    __slots__ = ("_flight",)

    def __init__(self, flight: InFlight) -> None:
        self._flight = flight

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._flight.count -= 1


#: The ``with`` of a route that takes no place.
_FREE: AbstractContextManager[None] = nullcontext()

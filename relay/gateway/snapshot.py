"""The configuration that changes live (relay/gateway/live.py) as one immutable snapshot, and the swap point.

A snapshot is the configuration in force with what is built from it: the router (its breakers and key pools), the
prices and the channels. A reload builds a new one and swaps it in at once, between two requests; a request pins
the snapshot it started with (``Current.pinned``, a context variable, so the tasks it starts inherit it), and keeps
its channels, router and prices to its end even when a reload swaps another in meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

import attrs

from relay.config import Config
from relay.gateway.pricing import Pricing
from relay.gateway.routing import Router
from relay.upstream.channels import Channel

__all__ = ["Current", "Snapshot"]


@attrs.frozen(eq=False)
class Snapshot:
    #: The configuration in force: relay.toml's, with the channels enabled now (store channels among them).
    config: Config
    router: Router
    pricing: Pricing
    #: The channels in ``config.channels``, by name.
    channels: Mapping[str, Channel]


#: The snapshot a request started with, with the ``Current`` it came from (tests may run two relays in a process).
_PINNED: ContextVar[tuple[Current, Snapshot] | None] = ContextVar("relay_pinned_snapshot", default=None)


class Current:
    """The swap point: the snapshot in force, or the one the running request pinned."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._latest = snapshot

    @property
    def latest(self) -> Snapshot:
        """The snapshot new requests get (whatever the caller pinned)."""
        return self._latest

    def get(self) -> Snapshot:
        """The snapshot of the running request (``pinned``), else the latest."""
        pinned = _PINNED.get()
        if pinned is not None and pinned[0] is self:
            return pinned[1]
        return self._latest

    def swap(self, snapshot: Snapshot) -> None:
        self._latest = snapshot

    @contextmanager
    def pinned(self) -> Iterator[Snapshot]:
        """The latest snapshot, pinned for the body (one request): ``get`` answers it even after a swap."""
        snapshot = self._latest
        token = _PINNED.set((self, snapshot))
        try:
            yield snapshot
        finally:
            _PINNED.reset(token)

"""Connections still sending their request head, counted per client address (``max_pending_per_address``).

A connection is pending from its accept until its first request head is complete, and again from the
first byte of each later head until that head is complete. One address may hold at most
``limit`` pending connections: a slow-loris client that opens hundreds and dribbles their heads gets the
rest closed at once, before Relay spends anything on them, while its (and everyone's) complete requests
are served as usual.
"""

from __future__ import annotations


class PendingHeads:
    """Pending connections per address; ``limit`` 0 counts nothing and refuses nothing."""

    __slots__ = ("_count", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count: dict[str, int] = {}

    def enter(self, address: str) -> bool:
        """Count one more pending connection of ``address``; False (and nothing counted) when over the cap."""
        if not self.limit:
            return True
        count = self._count.get(address, 0)
        if count >= self.limit:
            return False
        self._count[address] = count + 1
        return True

    def leave(self, address: str) -> None:
        if not self.limit:
            return
        count = self._count.get(address, 0) - 1
        if count > 0:
            self._count[address] = count
        else:
            self._count.pop(address, None)

"""A channel's pool of upstream keys, used in turn; pure and synchronous, with an injectable clock.

``take()`` hands out the keys round robin, skipping the ones that rest: a key the upstream refused (401 or
403) is set aside for ``set_aside`` seconds, one it rate-limited (429) rests for the ``retry-after`` the
upstream named, or ``default_rest`` seconds when it named none. A rested key comes back by itself when its
time is over; nothing else changes the order.

A channel without any key (a local server that needs none) has a pool that always gives ``""`` and never
rests: its health is its breaker's business.

The state is in-process: each worker process has its own pools (docs/routing.md says why).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


class KeyPool:
    def __init__(
        self,
        keys: Sequence[str],
        clock: Callable[[], float] = time.monotonic,
        set_aside: float = 600.0,
        default_rest: float = 10.0,
    ) -> None:
        self.keys = tuple(dict.fromkeys(k for k in keys if k))
        self.set_aside = set_aside
        self.default_rest = default_rest
        self._clock = clock
        #: Key -> the clock reading when it may be used again (absent: now).
        self._until: dict[str, float] = {}
        #: Index of the key the next ``take()`` tries first.
        self._next = 0

    def take(self) -> str | None:
        """The next usable key in turn; ``""`` for a pool without keys; None when every key rests."""
        if not self.keys:
            return ""
        now = self._clock()
        count = len(self.keys)
        for step in range(count):
            index = (self._next + step) % count
            key = self.keys[index]
            if self._until.get(key, now) <= now:
                self._next = (index + 1) % count
                return key
        return None

    def refused(self, key: str) -> None:
        """The upstream refused ``key`` (401 or 403): set it aside for ``set_aside`` seconds."""
        self._rest(key, self.set_aside)

    def rest(self, key: str, seconds: float | None = None) -> None:
        """The upstream rate-limited ``key`` (429): rest it ``seconds`` (its retry-after), or
        ``default_rest`` when None."""
        self._rest(key, self.default_rest if seconds is None else seconds)

    def _rest(self, key: str, seconds: float) -> None:
        if key not in self.keys:  # "" of a keyless pool, or a key no longer in the pool: nothing to rest
            return
        until = self._clock() + max(0.0, seconds)
        self._until[key] = max(until, self._until.get(key, until))

    def retry_in(self) -> float:
        """Seconds until some key is usable (0: one is now)."""
        if not self.keys:
            return 0.0
        now = self._clock()
        return max(0.0, min(self._until.get(key, now) - now for key in self.keys))

    def usable(self) -> bool:
        return self.retry_in() == 0.0

    def resting(self) -> int:
        """How many keys rest now (never which: they are secrets)."""
        now = self._clock()
        return sum(1 for until in self._until.values() if until > now)

    def __repr__(self) -> str:
        return f"<KeyPool {len(self.keys)} keys, {self.resting()} resting>"

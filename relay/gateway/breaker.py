"""A channel's circuit breaker: closed, open, half-open; pure and synchronous, with an injectable clock.

- **closed**: every request may go. ``failures`` consecutive failures open it; a success resets the count.
- **open**: no request goes until ``cooldown`` seconds have passed since it opened.
- **half_open** (the cool-down is over): exactly one request, the probe, may go. Its success closes the
  breaker; its failure opens it again for another cool-down. Until it reports, everyone else is refused.
  A probe that never reports (its request was cancelled) is given up with ``abandon()``, or counts as lost
  once it is ``cooldown`` seconds old, so the breaker can never be wedged half-open.

Reports that arrive while the breaker is open (from requests that started before it opened) are ignored:
they neither extend the cool-down nor close it early.

The state is in-process: each worker process has its own breakers (docs/routing.md says why).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class Breaker:
    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        if cooldown <= 0:
            raise ValueError("cooldown must be greater than 0")
        self.threshold = failures
        self.cooldown = cooldown
        self._clock = clock
        #: Consecutive failures (reset by a success; the count that opened the breaker stays while open).
        self.failures = 0
        #: When the breaker last opened; None while closed.
        self._opened_at: float | None = None
        #: When the half-open probe was let through; None when no probe is out.
        self._probe_at: float | None = None

    @property
    def state(self) -> BreakerState:
        return self._state(self._clock())

    def _state(self, now: float) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        return "open" if now - self._opened_at < self.cooldown else "half_open"

    def _probe_out(self, now: float) -> bool:
        return self._probe_at is not None and now - self._probe_at < self.cooldown

    def available(self) -> bool:
        """Whether ``allow()`` would say yes now; takes nothing (the probe stays free)."""
        now = self._clock()
        state = self._state(now)
        return state == "closed" or (state == "half_open" and not self._probe_out(now))

    def allow(self) -> bool:
        """May a request go to the channel now? Half-open, a yes makes the caller the probe: it must
        report ``success()``, ``failure()`` or ``abandon()``."""
        now = self._clock()
        state = self._state(now)
        if state == "closed":
            return True
        if state == "open" or self._probe_out(now):
            return False
        self._probe_at = now
        return True

    def success(self) -> None:
        now = self._clock()
        state = self._state(now)
        if state == "open":
            return
        self.failures = 0
        self._opened_at = None
        self._probe_at = None

    def failure(self) -> None:
        now = self._clock()
        state = self._state(now)
        if state == "open":
            return
        if state == "half_open":
            self._open(now)
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self._open(now)

    def abandon(self) -> None:
        """The probe will not report (its request was cancelled): let another request probe now."""
        if self._state(self._clock()) == "half_open":
            self._probe_at = None

    def retry_in(self) -> float:
        """Seconds until ``allow()`` can say yes again (0: now)."""
        now = self._clock()
        state = self._state(now)
        if state == "closed":
            return 0.0
        assert self._opened_at is not None
        if state == "open":
            return self._opened_at + self.cooldown - now
        if self._probe_at is not None and self._probe_out(now):
            return self._probe_at + self.cooldown - now
        return 0.0

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._probe_at = None

    def __repr__(self) -> str:
        return f"<Breaker {self.state} failures={self.failures}/{self.threshold}>"

"""Rate limits (rpm, tpm per key) counted in Redis: one atomic script per request, shared by every process.

The algorithm is the store's (``relay.store.ledger``), counted in the same minute windows so either backend
gives the same verdicts for the same history (docs/ratelimits.md):

- ``window = floor(now / 60)``; a window holds ``requests`` and ``tokens``;
- ``estimate(x) = previous.x * (1 - (now % 60) / 60) + current.x``;
- refused for rpm when ``estimate(requests) + 1 > rpm``, for tpm when ``estimate(tokens) >= tpm`` (rpm is
  checked first); ``retry_after = max(1, ceil(60 - now % 60))`` seconds;
- an admitted request adds 1 to the current window's ``requests``; its tokens are added after it, at settle
  (``add_tokens``), to the window of that moment.

A window is the hash ``relay:rl:{KEY}:WINDOW`` (fields ``requests``, ``tokens``), which expires 120 s after
its last write: by then no estimate reads it. The braces are a Redis Cluster hash tag: both windows of a key
live in one slot, as a script that reads both must have them.

``now`` comes from the caller, not from Redis's TIME: tests are exact, and the verdict is the one the store
would give for the same ``now``. Every Relay process is assumed to share one clock source (NTP-synced hosts);
a host whose clock is off by s seconds counts up to s seconds of requests into the neighbouring window.

When Redis cannot answer (down, slow past the timeout, or answering with an error), ``admit`` and
``add_tokens`` raise ``RateLimitUnavailable``; the caller decides (the gateway fails open and logs it).
"""

from __future__ import annotations

import math
from typing import Literal

import attrs

from relay.gateway.resp import RedisClient, RedisError

WINDOW = 60
#: Seconds a window's hash lives after its last write: the window itself and the one after it.
TTL = 2 * WINDOW
PREFIX = "relay:rl:"

# KEYS: previous window, current window. ARGV: rpm (-1: none), tpm (-1: none), weight of the previous
# window, TTL. Returns 0 (admitted, counted), 1 (refused: rpm) or 2 (refused: tpm).
ADMIT = """
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local weight = tonumber(ARGV[3])
local previous = redis.call('HMGET', KEYS[1], 'requests', 'tokens')
local current = redis.call('HMGET', KEYS[2], 'requests', 'tokens')
local function n(value) return tonumber(value) or 0 end
if rpm >= 0 and n(previous[1]) * weight + n(current[1]) + 1 > rpm then return 1 end
if tpm >= 0 and n(previous[2]) * weight + n(current[2]) >= tpm then return 2 end
redis.call('HINCRBY', KEYS[2], 'requests', 1)
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 0
"""

# KEYS: current window. ARGV: tokens, TTL.
ADD_TOKENS = """
redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
"""

_REFUSED: dict[int, Literal["rpm", "tpm"]] = {1: "rpm", 2: "tpm"}


class RateLimitUnavailable(Exception):
    """The rate-limit backend could not give a verdict (or count tokens)."""


@attrs.frozen
class Verdict:
    allowed: bool
    #: The limit that refused the request (None when allowed).
    limit: Literal["rpm", "tpm"] | None = None
    #: Seconds until the current window ends (0.0 when allowed): the ``retry-after`` to send.
    retry_after: float = 0.0


ALLOWED = Verdict(True)


def window_of(now: float) -> int:
    return math.floor(now / WINDOW)  # as relay.store.ledger computes it


def window_key(key_name: str, window: int) -> str:
    return f"{PREFIX}{{{key_name}}}:{window}"


def previous_weight(now: float) -> float:
    """How much of the previous window still counts: 1 at the start of a window, near 0 at its end."""
    return 1 - (now % WINDOW) / WINDOW


def retry_after(now: float) -> float:
    return float(max(1, math.ceil(WINDOW - now % WINDOW)))


class RedisLimiter:
    """rpm and tpm per key in the Redis at ``url`` (``redis://host:port/db``); see the module docstring."""

    def __init__(self, url: str, *, timeout: float = 1.0, pool_size: int = 4) -> None:
        self._client = RedisClient(url, timeout=timeout, pool_size=pool_size)

    async def admit(self, key_name: str, rpm: int | None, tpm: int | None, now: float) -> Verdict:
        """Check both limits and count the request if allowed: one round trip, atomic."""
        if rpm is None and tpm is None:
            return ALLOWED
        window = window_of(now)
        keys = (window_key(key_name, window - 1), window_key(key_name, window))
        args = (-1 if rpm is None else rpm, -1 if tpm is None else tpm, repr(previous_weight(now)), TTL)
        try:
            outcome = await self._client.evalsha(ADMIT, keys, args)
        except RedisError as exc:
            raise RateLimitUnavailable(f"rate limits in Redis: {exc}") from exc
        if outcome == 0:
            return ALLOWED
        if outcome not in _REFUSED:
            raise RateLimitUnavailable(f"rate limits in Redis: the admit script answered {outcome!r}")
        return Verdict(False, _REFUSED[outcome], retry_after(now))

    async def add_tokens(self, key_name: str, tokens: int, now: float) -> None:
        """Count a settled request's tokens (input plus output) in the window of ``now``."""
        if tokens <= 0:
            return
        try:
            await self._client.evalsha(ADD_TOKENS, (window_key(key_name, window_of(now)),), (tokens, TTL))
        except RedisError as exc:
            raise RateLimitUnavailable(f"rate limits in Redis: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()

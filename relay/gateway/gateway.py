"""The gateway's policy around one request: admission (rate limits, the quota hold) and its end
(settlement, request log), with the store, the key cache, the limiter, the leases and the recorder they use.

Admission is decided in memory against the process's quota leases (``relay.gateway.leases``): no store call
in the steady state, and none ever for a key with neither quota nor store-kept rate limits. The end costs
appends to the recorder, which writes the settlements (hold and settle rows) and the log in batches off the
hot path.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from relay.config import Config
from relay.dialects import ir
from relay.errors import RelayError
from relay.gateway.admissions import Admissions
from relay.gateway.auth import KeyCache
from relay.gateway.leases import Leases, Refused, Ticket
from relay.gateway.pricing import Pricing, input_estimate, max_output
from relay.gateway.ratelimit import RateLimitUnavailable, RedisLimiter
from relay.gateway.recorder import Recorder
from relay.gateway.routing import Candidate, Router
from relay.gateway.snapshot import Current, Snapshot
from relay.gateway.tally import Tally
from relay.store import Store, StoreError, open_store
from relay.store import keys as stored_keys
from relay.store.records import LogRecord
from relay.upstream.channels import Channel

log = logging.getLogger("relay.gateway")


@attrs.define
class Holds:
    """This process's quota holds, for the metrics (``relay.metrics``): kept as requests are admitted and end."""

    #: Requests admitted with a quota hold and not settled yet, and the micro-credits those holds reserve.
    in_flight: int = 0
    micros: int = 0
    #: Holds taken, and requests refused (402) because their key's quota could not hold them, since the start.
    taken: int = 0
    refused: int = 0


class Gateway:
    def __init__(self, config: Config, channels: Mapping[str, Channel] | None = None) -> None:
        #: The configuration the gateway started with (its store, limiter and recorder settings stay these).
        self.config = config
        self.store: Store = open_store(config.store.url)
        self.keys = KeyCache(self.store, config.store.key_refresh)
        #: The configuration that changes live, with its router, prices and channels (relay/gateway/live.py swaps it).
        self.current = Current(Snapshot(config, Router(config), Pricing(config.prices), dict(channels or {})))
        self.limiter = RedisLimiter(config.ratelimit.url) if config.ratelimit.url else None
        self.admissions = Admissions(self.store)
        self.leases = Leases(self.store, self.admissions.admit)
        self.keys.changed = self.leases.keys_changed
        self.recorder = Recorder(
            self.store, config.store, self.limiter.add_tokens if self.limiter else None, self.leases.written
        )
        #: The tickets of the requests admitted and not ended, by request id.
        self._tickets: dict[str, Ticket] = {}
        self.holds = Holds()

    @property
    def router(self) -> Router:
        """The router of the request's snapshot (``Current.get``)."""
        return self.current.get().router

    @property
    def pricing(self) -> Pricing:
        """The prices of the request's snapshot (``Current.get``)."""
        return self.current.get().pricing

    async def start(self) -> None:
        """Migrate the store, put relay.toml's keys in it, and load every key."""
        await self.store.migrate()
        keys = self.config.keys
        await self.store.transaction(lambda tx: stored_keys.sync_config(tx, keys, time.time()))
        await self.keys.reload(force=True)

    @asynccontextmanager
    async def running(self, flush_timeout: float = 10.0) -> AsyncIterator[None]:
        """Started, with its background work (the recorder, key reloads) running for the body; at the end
        everything recorded is written (within ``flush_timeout``) and the store closed."""
        try:
            await self.start()
            async with trio.open_nursery() as nursery:
                await nursery.start(self.recorder.run)
                await nursery.start(self.leases.run)
                nursery.start_soon(self.keys.refresh_forever)
                nursery.start_soon(self.store.maintain)
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                if await self.recorder.flush(flush_timeout):
                    try:  # every charge is written: what the leases still reserve is the balance's again
                        await self.leases.release_all()
                    except StoreError as error:
                        log.warning("quota leases not returned (they expire in %g s): %s", self.leases.ttl, error)
                await self.store.aclose()
                if self.limiter is not None:
                    await self.limiter.aclose()

    async def admit(
        self,
        tally: Tally,
        request_id: str,
        body: bytes,
        payload: Mapping[str, Any] | None,
        plan: Sequence[Candidate],
        units: ir.Usage | None = None,
        input_tokens: int | None = None,
    ) -> None:
        """Count the request against its key's rate limits and hold the most it can cost (its tokens, and the
        most ``units`` it may be billed for: images, seconds, characters, requests); 429 or 402 if not.
        ``input_tokens``: the input the hold counts, when the caller knows better than ``body`` (Realtime)."""
        key = tally.key
        assert key is not None and tally.requested_model is not None
        rated = key.rpm is not None or key.tpm is not None
        now = time.time()
        if rated and self.limiter is not None:
            try:
                verdict = await self.limiter.admit(key.name, key.rpm, key.tpm, now)
            except RateLimitUnavailable as error:
                log.warning("rate limits not checked (Redis unavailable): %s", error)
            else:
                if not verdict.allowed:
                    limit = verdict.limit or "rpm"
                    raise _rate_error(limit, key.rpm if limit == "rpm" else key.tpm, verdict.retry_after)
        hold: int | None = None
        if key.quota_micros is not None:
            multiplier = max((c.channel.price_multiplier for c in plan), default=1.0)  # no plan: an MCP tool call
            output = max_output(payload, self.current.get().config.quota.default_max_output_tokens)
            tokens = input_estimate(body) if input_tokens is None else input_tokens
            hold = self.pricing.hold(tally.requested_model, tokens, output, multiplier, units) or None
        store_rated = rated and self.limiter is None
        tally.admitted = True
        if hold is None and not store_rated:
            return
        try:
            ticket = await self.leases.admit(key, hold, store_rated, now)
        except Refused as refused:
            admission = refused.admission
        except StoreError as error:
            if hold is None:
                log.warning("rate limits not checked (store unavailable): %s", error)
                return
            tally.admitted = False
            raise RelayError(
                503,
                "upstream",
                "the quota store is unavailable; try again shortly",
                code="store_unavailable",
                headers=((b"retry-after", b"1"),),
            ) from None
        else:
            self._tickets[request_id] = ticket
            tally.held = ticket.hold
            if ticket.hold:
                self.holds.in_flight += 1
                self.holds.micros += ticket.hold
                self.holds.taken += 1
            return
        tally.admitted = False
        if admission.reason == "quota":
            self.holds.refused += 1
            balance = (admission.balance or 0) / 1_000_000
            raise RelayError(
                402,
                "quota",
                f"this key's quota cannot cover the request: it may cost up to {hold / 1_000_000:g} credits "
                f"and {balance:g} remain",
                code="insufficient_quota",
            )
        if admission.reason == "unknown_key":
            raise RelayError(401, "authentication", "invalid API key", code="invalid_api_key")
        limit = admission.reason
        raise _rate_error(limit, key.rpm if limit == "rpm" else key.tpm, admission.retry_after)

    def finish(self, tally: Tally, request_id: str, status: int, started: float, client: str, principal: str) -> None:
        """Settle the request (what it cost, its tokens) and log it (its tokens and units): appends, no await."""
        now = time.time()
        usage = tally.usage
        key = tally.key
        model = tally.requested_model or ""
        cost = self.pricing.cost(model, usage, tally.multiplier) if usage is not None else 0
        tally.cost = cost
        tokens = usage.input_tokens + usage.output_tokens if usage is not None else 0
        if key is not None and tally.admitted:
            store_tpm = key.tpm is not None and self.limiter is None
            ticket = self._tickets.pop(request_id, None)
            if ticket is not None and ticket.hold:
                self.holds.in_flight -= 1
                self.holds.micros -= ticket.hold
            if tally.held is not None or (store_tpm and tokens):
                self.recorder.settle_leased(
                    self.leases.finish(ticket, key.name, request_id, cost, tokens, store_tpm, now)
                )
            if key.tpm is not None and self.limiter is not None and tokens:
                self.recorder.add_tokens(key.name, tokens, now)
        if not tally.logged:
            return
        finished = time.perf_counter()
        self.recorder.log(
            LogRecord(
                time=now,
                request_id=request_id,
                key_name=key.name if key is not None else principal if principal not in ("-", "(invalid)") else None,
                dialect=tally.dialect,
                route=tally.route,
                requested_model=tally.requested_model,
                upstream_model=tally.upstream_model,
                channel=tally.channel,
                attempts=tuple(tally.attempts),
                status=status,
                error_kind=tally.error_kind,
                stream=tally.stream,
                latency_ms=(finished - started) * 1000,
                ttft_ms=(tally.first_byte - started) * 1000 if tally.first_byte is not None else None,
                input_tokens=usage.input_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
                cached_tokens=usage.cached_tokens if usage else 0,
                reasoning_tokens=usage.reasoning_tokens if usage else 0,
                cost_micros=cost,
                client_addr=client,
                end_kind=tally.end,
                error_detail=tally.error_detail,
                images=usage.images if usage else 0,
                image_size=(usage.image_size or None) if usage and usage.images else None,
                seconds=usage.seconds if usage else 0.0,
                characters=usage.characters if usage else 0,
                request_units=usage.requests if usage else 0,
                parent_id=tally.parent_id,
            )
        )


def _rate_error(limit: str, value: int | None, retry_after: float) -> RelayError:
    what = "requests" if limit == "rpm" else "tokens"
    seconds = max(1, math.ceil(retry_after))
    return RelayError(
        429,
        "rate_limit",
        f"rate limit reached: this key may use {value} {what} per minute; retry in {seconds} s",
        code="rate_limit_exceeded",
        headers=((b"retry-after", str(seconds).encode()),),
    )


def add_usage(one: ir.Usage | None, other: ir.Usage) -> ir.Usage:
    """The sum of two usages (a task's model calls: relay.utility.calls); the image size is the first one named."""
    if one is None:
        return other
    return ir.Usage(
        input_tokens=one.input_tokens + other.input_tokens,
        output_tokens=one.output_tokens + other.output_tokens,
        cached_tokens=one.cached_tokens + other.cached_tokens,
        cache_write_tokens=one.cache_write_tokens + other.cache_write_tokens,
        reasoning_tokens=one.reasoning_tokens + other.reasoning_tokens,
        images=one.images + other.images,
        image_size=one.image_size or other.image_size,
        seconds=one.seconds + other.seconds,
        characters=one.characters + other.characters,
        requests=one.requests + other.requests,
        audio_input_tokens=one.audio_input_tokens + other.audio_input_tokens,
        cached_audio_tokens=one.cached_audio_tokens + other.cached_audio_tokens,
        audio_output_tokens=one.audio_output_tokens + other.audio_output_tokens,
    )

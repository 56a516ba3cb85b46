"""Admission against quota leases: the quota hold and the store-kept rate limits of a request, decided in memory.

Each process leases a slice of a key's balance, and slots of its rpm for the current minute, from the store
(``relay.store.leases.take``, one transaction) and admits requests against that slice with no store call.
When a slice runs low it is topped up in the background, before it runs dry, so that in the steady state no
request waits for the store; a request waits only when its key has no slice yet, when the minute turned (the
slots of a new minute), or when its hold is more than the slice has free (a top-up sized for it). Unused
slices go back to the balance when a key is idle, when the keys change (a top-up, a disabled key), and at
shutdown; a process that crashed loses its slices when their lease expires (``TTL``) and another process
reclaims them. docs/store.md ("Leases") has the exactness argument; docs/gateway.md the request's view.

Slice size: ``SECONDS`` seconds of the key's recent spend in this process (the sum of its holds, decayed with
time constant ``TAU``), and at most ``SURPLUS_SHARE`` of what no lease reserves (``relay.store.leases``): a
key's first requests, and the last of a small balance, are leased a request at a time.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

from relay.store import Store, StoreError, Tx
from relay.store import leases as stored
from relay.store.keys import KeyRecord
from relay.store.ledger import Admission, estimate, retry_after
from relay.store.settlements import LeaseSettle

log = logging.getLogger("relay.gateway")

#: Runs a store call a request waits for (``Admissions.admit``: shared with the calls of requests waiting with it).
Run = Callable[[Callable[[Tx], stored.Grant]], Awaitable[stored.Grant]]

#: Seconds a lease lives in the store unless renewed; renewed every ``TICK`` seconds while the process lives.
TTL = 30.0
TICK = 1.0
#: Seconds without an admission after which a key's lease gives back its free part (and, holding nothing,
#: is deleted).
IDLE = 10.0
#: A slice covers this many seconds of the key's recent spend (decayed with time constant ``TAU`` seconds).
SECONDS = 2.0
TAU = 1.0
#: Top up in the background once the free part falls below this share of the wanted slice.
LOW_WATER = 0.5
#: Seconds the store's count of a key's tokens (other processes') may be old before a background refresh.
TOKENS_FRESH = 0.5
#: A request the store refused while other processes' leases reserve what it needs waits this long for them
#: to give back their free parts (they do at their next tick), then asks again; at most once per key in
#: ``RECALL_HOLDOFF`` seconds, so a key that is truly used up answers its refusals at once.
RECALL_WAIT = 1.5 * TICK
RECALL_HOLDOFF = IDLE
#: Seconds between background top-ups of a key whose last top-up got less than it asked.
CAPPED_PAUSE = 0.25


class Refused(Exception):
    """The request cannot be admitted: ``admission`` says why (quota with the balance, rpm/tpm, unknown key)."""

    def __init__(self, admission: Admission) -> None:
        super().__init__(admission.reason)
        self.admission = admission


@attrs.define(eq=False)
class _Lease:
    """One lease of this process on one key, as the process knows it (exactly: only it moves ``amount``)."""

    lease_id: str
    #: Micro-credits the lease took from the balance (the store's ``amount_micros``).
    amount: int = 0
    #: Σ holds of the requests admitted on it and not ended.
    holding: int = 0
    #: Σ charges of the requests that ended; ``written``: the part the store has recorded.
    charged: int = 0
    written: int = 0
    #: The store reclaimed it (the process stalled past ``TTL``): nothing more is admitted on it.
    lost: bool = False

    @property
    def free(self) -> int:
        return self.amount - self.holding - self.charged


@attrs.define(eq=False)
class _Key:
    """This process's state of one key: its lease, its slots, its recent demand."""

    name: str
    lease: _Lease | None = None
    #: The store says the key is unlimited (the copy of the keys was stale): nothing to hold.
    unlimited: bool = False
    #: Slots left of ``minute`` (rpm), and the store's token counts of the previous and this minute.
    minute: int = -1
    slots: int = 0
    tokens: tuple[int, int] = (0, 0)
    #: This process's tokens not yet written to the store, and those written since ``tokens`` was read.
    tokens_unwritten: int = 0
    tokens_since: int = 0
    refreshed: float = 0.0
    #: Decayed sums of holds and of requests (rate * TAU in the steady state), as of ``last``.
    spend: float = 0.0
    requests: float = 0.0
    last: float = 0.0
    #: A store call for this key is under way; requests that need it wait for this event.
    refilling: trio.Event | None = None
    #: The keys changed, or another process recalled the lease: give the free part back at the next tick.
    give_back: bool = False
    #: When a refusal last waited for other processes' leases to come back (``RECALL_WAIT``).
    recalled_at: float = -math.inf
    #: The last top-up got less than it asked (the key is near its balance or its rpm): no background top-up
    #: before this time, so that such a key does not cost a store call per request for nothing.
    capped_until: float = 0.0


@attrs.define(slots=True, eq=False)
class Ticket:
    """A request admitted: what it holds, and on which lease."""

    key: _Key
    lease: _Lease | None
    hold: int | None


class Leases:
    """This process's leases; ``run`` keeps them (renewal, top-ups, returns) until cancelled."""

    def __init__(self, store: Store, run: Run | None = None) -> None:
        self._store = store
        #: How a store call a request waits for is run (the gateway's ``Admissions.admit``).
        self._run = run
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._keys: dict[str, _Key] = {}
        self._by_id: dict[str, _Lease] = {}
        self._nursery: trio.Nursery | None = None
        self.ttl = TTL
        #: Store calls made (for tests and the curious): those a request waited for, and in the background.
        self.waited = 0
        self.background = 0

    # ---- admission --------------------------------------------------------------------------------------

    async def admit(self, key: KeyRecord, hold: int | None, rated: bool, now: float) -> Ticket:
        """Admit a request of ``key`` holding ``hold`` (None: nothing), counting it against the store-kept rate
        limits when ``rated``; Refused when it cannot be. Waits for the store only when the lease cannot cover it."""
        state = self._keys.get(key.name)
        if state is None:
            state = self._keys[key.name] = _Key(key.name, last=now)
        refilled = False
        while True:
            lease = state.lease
            money = hold is not None and not state.unlimited
            wanted = hold if hold is not None and money else 0
            money_short = money and (lease is None or lease.lost or lease.free < wanted)
            minute = math.floor(now / 60)
            rate_short = rated and (state.minute != minute or (key.rpm is not None and state.slots <= 0))
            if not money_short and not rate_short:
                if rated and key.tpm is not None and self._tokens_used(state, now) >= key.tpm:
                    if refilled or now - state.refreshed < TOKENS_FRESH:
                        raise Refused(Admission(False, "tpm", retry_after(now)))
                    rate_short = True
                else:
                    return self._take(state, key, lease if money else None, hold if money else None, rated, now)
            if state.refilling is not None:
                await state.refilling.wait()
                continue
            need = None
            if money:
                usable = lease.free if lease is not None and not lease.lost else 0
                need = max(0, wanted - usable) if money_short else 0
            grant = await self._refill(state, key, need, rated, 1 if rate_short else 0, now, wait=True)
            refilled = True
            if grant.recalled and now - state.recalled_at >= RECALL_HOLDOFF:
                # Other processes reserve what this request needs: they give back what they have free at
                # their next renewal; ask once more after it (and not again for a while: no waiting 402s).
                state.recalled_at = now
                await trio.sleep(RECALL_WAIT)
                now = time.time()
                continue
            if grant.reason == "quota":
                lease = state.lease
                usable = lease.free if lease is not None and not lease.lost else 0
                raise Refused(Admission(False, "quota", balance=usable + (grant.available or 0)))
            if grant.reason != "ok":
                raise Refused(Admission(False, grant.reason, grant.retry_after))

    def _tokens_used(self, state: _Key, now: float) -> float:
        previous, current = state.tokens
        return estimate(previous, current + state.tokens_unwritten + state.tokens_since, now)

    def _take(
        self, state: _Key, key: KeyRecord, lease: _Lease | None, hold: int | None, rated: bool, now: float
    ) -> Ticket:
        """Admit on what the process has; start a top-up when it runs low."""
        elapsed = now - state.last
        if elapsed > 0:
            decay = math.exp(-elapsed / TAU)
            state.spend *= decay
            state.requests *= decay
            state.last = now
        state.requests += 1
        low = False
        if lease is not None and hold is not None:
            lease.holding += hold
            state.spend += hold
            low = lease.free < state.spend * (SECONDS / TAU) * LOW_WATER
        if rated and key.rpm is not None:
            state.slots -= 1
            low = low or state.slots < state.requests * (SECONDS / TAU) * LOW_WATER
        if rated and key.tpm is not None and now - state.refreshed >= TOKENS_FRESH:
            low = True
        if low and state.refilling is None and self._nursery is not None and now >= state.capped_until:
            self._nursery.start_soon(self._top_up, state, key, rated, now)
        return Ticket(state, lease, hold)

    async def _top_up(self, state: _Key, key: KeyRecord, rated: bool, now: float) -> None:
        if state.refilling is not None:
            return
        money = not state.unlimited and key.quota_micros is not None
        try:
            grant = await self._refill(state, key, 0 if money else None, rated, 0, now, wait=False)
            if grant.micros < grant.asked_micros or grant.slots < grant.asked_slots:
                state.capped_until = now + CAPPED_PAUSE
        except StoreError as error:
            log.warning("quota lease of key %r not topped up (retried when needed): %s", key.name, error)

    async def _refill(
        self, state: _Key, key: KeyRecord, need: int | None, rated: bool, need_slots: int, now: float, *, wait: bool
    ) -> stored.Grant:
        """One store call for the key: renew or make its lease, add ``need`` and a slice, take slots."""
        lease = state.lease
        if lease is not None and lease.lost:
            lease = None
        minute = math.floor(now / 60)
        give_back = (state.minute, state.slots) if rated and state.minute != minute and state.slots > 0 else None
        # The slice: SECONDS of the recent spend free after the request that waits (if any) took its part.
        want = int(state.spend * (SECONDS / TAU))
        free = lease.free if lease is not None else 0
        surplus = (want if need else max(0, want - free)) if need is not None else 0
        slots_want = int(state.requests * (SECONDS / TAU))
        slots = state.slots if state.minute == minute else 0
        surplus_slots = slots_want if need_slots else max(0, slots_want - slots)
        ask = stored.Take(
            key.name,
            self.owner,
            lease.lease_id if lease is not None else None,
            need,
            surplus,
            rated,
            key.rpm,
            key.tpm,
            need_slots,
            surplus_slots if rated and key.rpm is not None else 0,
            give_back,
            now,
            self.ttl,
            recall=wait,
        )
        event = state.refilling = trio.Event()
        try:
            with trio.CancelScope(shield=True):  # what the store grants is always recorded here
                if wait and self._run is not None:
                    self.waited += 1
                    grant = await self._run(lambda tx: stored.take(tx, ask))
                else:
                    self.background += 1
                    grant = await self._store.transaction_now(lambda tx: stored.take(tx, ask))
            self._apply(state, lease, grant, rated, now)
            return grant
        finally:
            state.refilling = None
            event.set()

    def _apply(
        self,
        state: _Key,
        lease: _Lease | None,
        grant: stored.Grant,
        rated: bool,
        now: float,
    ) -> None:
        minute = math.floor(now / 60)
        if grant.reason == "unknown_key":
            return
        state.unlimited = grant.unlimited
        if grant.lease_id is not None and (lease is None or grant.lease_id != lease.lease_id):
            if lease is not None:
                lease.lost = True  # reclaimed: its requests settle against what no lease reserves
            lease = state.lease = self._by_id[grant.lease_id] = _Lease(grant.lease_id)
        if lease is not None:
            lease.amount += grant.micros
        if rated and grant.reason in ("ok", "rpm", "tpm"):  # the store's windows were read (and slots given back)
            if state.minute != minute:
                state.minute, state.slots = minute, 0
            state.slots += grant.slots
            state.tokens = grant.tokens
            state.tokens_since = 0
            state.refreshed = now

    # ---- the end of a request ---------------------------------------------------------------------------

    def finish(
        self, ticket: Ticket | None, key_name: str, request_id: str, cost: int, tokens: int, tpm: bool, now: float
    ) -> LeaseSettle:
        """What the request is charged (at most its hold plus what its lease has free), for the recorder."""
        charge = max(0, cost)
        lease = ticket.lease if ticket is not None else None
        hold = ticket.hold if ticket is not None else None
        if lease is not None and hold is not None:
            lease.holding -= hold
            charge = min(charge, max(0, lease.free))  # its hold, and beyond it what the lease has free
            lease.charged += charge
        if tpm and tokens > 0 and ticket is not None:
            ticket.key.tokens_unwritten += tokens
        return LeaseSettle(
            key_name, lease.lease_id if lease is not None else None, request_id, hold, charge, tokens, tpm, now
        )

    def written(self, items: Sequence[LeaseSettle]) -> None:
        """The recorder wrote ``items``: their charges are settled, their tokens in the store."""
        for item in items:
            if item.lease_id is not None and item.held is not None:
                lease = self._by_id.get(item.lease_id)
                if lease is not None:
                    lease.written += item.charge
            if item.tpm_counted and item.tokens > 0:
                state = self._keys.get(item.key_name)
                if state is not None:
                    state.tokens_unwritten = max(0, state.tokens_unwritten - item.tokens)
                    state.tokens_since += item.tokens

    def keys_changed(self) -> None:
        """The keys were reloaded (one was topped up, changed, disabled): every lease gives its free part
        back at the next tick, and is sized again from the balance as it is now."""
        for state in self._keys.values():
            state.give_back = True
            state.unlimited = False

    # ---- upkeep -----------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Renew the leases every ``TICK`` seconds, give back idle ones, reclaim expired ones; top-ups run here."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                last = time.time()
                while True:
                    await trio.sleep(TICK)
                    now = time.time()
                    if not self._keys and not self._by_id and now - last < IDLE:
                        continue  # nothing of ours to renew: reclaim others' expired leases now and then only
                    last = now
                    try:
                        await self.tick(now)
                    except StoreError as error:
                        log.warning("quota leases not renewed (retried in %g s): %s", TICK, error)
            finally:
                self._nursery = None

    async def tick(self, now: float, *, again: bool = True) -> None:
        """One round of upkeep in one transaction: give back what idle, changed or recalled leases have free,
        renew the rest, reclaim expired ones. A lease recalled by another process gives back at once."""
        returns: list[tuple[_Key, _Lease, int, bool, tuple[str, int, int] | None]] = []
        minute = math.floor(now / 60)
        for state in list(self._keys.values()):
            lease = state.lease
            if lease is None or lease.lost or state.refilling is not None:
                continue
            idle = now - state.last >= IDLE
            if not (idle or state.give_back) or lease.written != lease.charged:
                continue  # the hold and settle rows of its requests go first (docs/store.md)
            slots = (state.name, state.minute, state.slots) if state.minute == minute and state.slots > 0 else None
            state.slots = 0 if slots is not None else state.slots
            if idle and lease.holding == 0:
                returns.append((state, lease, lease.free, True, slots))
                state.lease = None
                del self._by_id[lease.lease_id]
                if state.tokens_unwritten == 0 and self._keys.get(state.name) is state:
                    del self._keys[state.name]
            else:
                returns.append((state, lease, lease.free, False, slots))
                lease.amount -= lease.free
            state.give_back = False
        owner, ttl = self.owner, self.ttl

        def upkeep(tx: Tx) -> dict[str, bool]:
            for _, lease, micros, drop, slots in returns:
                stored.shrink(tx, lease.lease_id, micros, drop=drop, slots=slots)
            alive = stored.renew(tx, owner, now, ttl)
            stored.reap(tx, now)
            return alive

        try:
            alive = await self._store.transaction(upkeep)
        except BaseException:
            for state, lease, micros, drop, slots in returns:  # not given back after all: the lease keeps it
                if slots is not None and state.minute == slots[1]:
                    state.slots += slots[2]
                if drop:
                    if state.lease is None:
                        state.lease = lease
                        self._by_id[lease.lease_id] = lease
                        self._keys.setdefault(state.name, state)
                    else:
                        lease.lost = True  # a new one replaced it meanwhile: this one expires unrenewed
                else:
                    lease.amount += micros
            raise
        recalled = False
        for lease in list(self._by_id.values()):
            if lease.lease_id not in alive:
                lease.lost = True
                if lease.holding == 0 and lease.written == lease.charged:
                    del self._by_id[lease.lease_id]
            elif alive[lease.lease_id]:
                recalled = True
        if recalled:
            for state in self._keys.values():
                if state.lease is not None and alive.get(state.lease.lease_id):
                    state.give_back = True
            if again:
                await self.tick(now, again=False)

    async def release_all(self) -> None:
        """At shutdown, once every charge is written: delete this process's leases (their rest is the balance's)."""
        if not self._by_id and not self._keys:
            return
        owner = self.owner
        await self._store.transaction(lambda tx: stored.release_owner(tx, owner))
        self._keys.clear()
        self._by_id.clear()

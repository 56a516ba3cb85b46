"""Which channels may serve a request, in the order to try them, and under what name each knows the model.

A channel serves a public model name when its ``model_map`` has it (the upstream sees the mapped name) or
one of its ``models`` patterns matches it (the upstream sees the same name). ``Router.plan`` keeps the
channels that serve the model and serve the key's group, orders them by ``priority`` (higher first) and, within
one priority, in a weighted random order (``weight`` is the share of first picks), and leaves out the ones
that are unfit right now: breaker open, or every upstream key resting. The failover loop walks the plan.

The breakers and key pools live here, one of each per channel, in process memory (docs/routing.md).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase

import attrs

from relay.config import ChannelConfig, Config
from relay.errors import RelayError

from .breaker import Breaker
from .keypool import KeyPool

#: Plans are cached per (model, group) before the health filter; models are client strings, so bound it.
_CACHE_SIZE = 4096
#: Longest model name a request may give (longer: 400 before anything is held or logged under that name).
MAX_MODEL_NAME = 256


@attrs.frozen
class Candidate:
    channel: ChannelConfig
    upstream_model: str


#: The name ``resolve()`` callers know.
Route = Candidate


def upstream_name(channel: ChannelConfig, model: str) -> str | None:
    if model in channel.model_map:
        return channel.model_map[model]
    if any(fnmatchcase(model, pattern) for pattern in channel.models):
        return model
    return None


def check_model_name(name: str) -> None:
    """A 400 naming ``model`` when ``name`` is longer than ``MAX_MODEL_NAME`` or has a character that is not
    printable (control characters, line breaks, tabs): no model is named so, and such names would each make a
    request-log and daily-totals entry of their own."""
    if len(name) > MAX_MODEL_NAME:
        raise RelayError(
            400,
            "invalid_request",
            f"'model' must be at most {MAX_MODEL_NAME} characters long",
            param="model",
            code="invalid_model_name",
        )
    if not name.isprintable():
        raise RelayError(
            400,
            "invalid_request",
            "'model' must consist of printable characters (no control characters or line breaks)",
            param="model",
            code="invalid_model_name",
        )


def _pin_refused(pin: str, model: str, group: str, why: str) -> RelayError:
    """One answer whatever is wrong with a pinned channel, so that a client cannot tell a channel that does
    not exist from one it may not use or one that does not serve the model (channel names stay private)."""
    return RelayError(
        404,
        "not_found",
        "The pinned channel (X-Relay-Channel or KEY#CHANNEL) cannot serve this model for this key",
        code="channel_not_found",
        detail=f"pinned channel {pin[:MAX_MODEL_NAME]!r}, model {model!r}, key group {group!r}: {why}",
    )


def _model_not_found(model: str) -> RelayError:
    return RelayError(
        404,
        "not_found",
        f"The model '{model}' does not exist or no channel serves it",
        param="model",
        code="model_not_found",
    )


def _disabled(model: str) -> RelayError:
    return RelayError(
        503,
        "upstream",
        f"The model '{model}' is served only by channels that are disabled now",
        code="channel_disabled",
    )


class Router:
    """Model names, channel plans, and the health state (breakers, key pools) of every channel."""

    def __init__(
        self,
        config: Config,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        previous: Router | None = None,
        disabled: Sequence[ChannelConfig] = (),
    ) -> None:
        """``previous``: the router this one replaces (a reload, relay/gateway/live.py): a channel whose
        configuration (and ``[routing]``) is unchanged keeps its breaker and key pool, their state with them.
        ``disabled``: channels switched off at run time; a model only they serve is a 503 ``channel_disabled``,
        not a 404."""
        self.config = config
        self._rng = rng if rng is not None else previous._rng if previous is not None else random.Random()
        routing = config.routing
        self._channels = {channel.name: channel for channel in config.channels}
        self._disabled = tuple(disabled)
        kept = previous is not None and previous.config.routing == routing
        self._breakers: dict[str, Breaker] = {}
        self._pools: dict[str, KeyPool] = {}
        for name, channel in self._channels.items():
            if kept and previous is not None and previous._channels.get(name) == channel:
                self._breakers[name], self._pools[name] = previous._breakers[name], previous._pools[name]
            else:
                self._breakers[name] = Breaker(routing.breaker_failures, routing.breaker_cooldown, clock)
                self._pools[name] = KeyPool(channel.keys, clock, routing.key_set_aside, routing.key_rest)
        self._tiers: dict[tuple[str, str], tuple[tuple[Candidate, ...], ...]] = {}

    def breaker(self, name: str) -> Breaker:
        return self._breakers[name]

    def keys(self, name: str) -> KeyPool:
        return self._pools[name]

    def model(self, requested: str | None) -> str:
        """The model a request is served as: its own (or ``[server] default_model`` when it names none),
        through ``[aliases]`` (one level)."""
        name = requested or self.config.server.default_model
        if not name:
            raise RelayError(
                400,
                "invalid_request",
                "The request names no model, and this server has no default model: set 'model'",
                param="model",
            )
        check_model_name(name)
        return self.config.aliases.get(name, name)

    def plan(self, model: str, group: str, pin: str | None = None) -> list[Candidate]:
        """The channels to try for ``model``, in order, for a key of ``group``; ``pin``: only that channel.

        Raises RelayError: 404 ``model_not_found`` (no channel of the group serves the model), 404
        ``channel_not_found`` (a bad pin: no such channel, not the key's group's, or not serving the model, one
        answer for all three), 503 ``no_healthy_channel`` with a ``retry-after`` (channels serve it, but none
        is fit now), 503 ``channel_disabled`` (only channels disabled at run time serve it)."""
        if pin is not None:
            tiers: Sequence[Sequence[Candidate]] = ((self._pinned(model, group, pin),),)
        else:
            tiers = self._tiers_for(model, group)
            if not tiers:
                if any(group in c.groups and upstream_name(c, model) is not None for c in self._disabled):
                    raise _disabled(model)
                raise _model_not_found(model)
        plan: list[Candidate] = []
        for tier in tiers:
            fit = [candidate for candidate in tier if self._fit(candidate.channel.name)]
            plan += self._weighted_order(fit) if len(fit) > 1 else fit
        if not plan:
            raise self.unavailable(model, [c for tier in tiers for c in tier])
        return plan

    def _pinned(self, model: str, group: str, pin: str) -> Candidate:
        channel = self._channels.get(pin)
        if channel is None:
            raise _pin_refused(pin, model, group, "no channel has that name")
        if group not in channel.groups:
            raise _pin_refused(pin, model, group, "the channel does not serve the key's group")
        name = upstream_name(channel, model)
        if name is None:
            raise _pin_refused(pin, model, group, "the channel does not serve the model")
        return Candidate(channel, name)

    def _tiers_for(self, model: str, group: str) -> tuple[tuple[Candidate, ...], ...]:
        """The channels of ``group`` that serve ``model``, by priority (higher first), in file order."""
        cached = self._tiers.get((model, group))
        if cached is not None:
            return cached
        by_priority: dict[int, list[Candidate]] = {}
        for channel in self.config.channels:
            if group not in channel.groups:
                continue
            name = upstream_name(channel, model)
            if name is not None:
                by_priority.setdefault(channel.priority, []).append(Candidate(channel, name))
        tiers = tuple(tuple(by_priority[p]) for p in sorted(by_priority, reverse=True))
        if len(self._tiers) >= _CACHE_SIZE:
            self._tiers.clear()
        self._tiers[(model, group)] = tiers
        return tiers

    def _fit(self, name: str) -> bool:
        return self._breakers[name].available() and self._pools[name].usable()

    def _retry_in(self, name: str) -> float:
        """Seconds until the channel is fit: its breaker lets a request through and one of its keys is back."""
        return max(self._breakers[name].retry_in(), self._pools[name].retry_in())

    def _weighted_order(self, tier: list[Candidate]) -> list[Candidate]:
        """Weighted random order without replacement: each pick is drawn among the channels not yet
        picked with a chance proportional to its weight."""
        rest = list(tier)
        total = sum(candidate.channel.weight for candidate in rest)
        order: list[Candidate] = []
        while len(rest) > 1:
            point = self._rng.random() * total
            index = len(rest) - 1  # float rounding at the very end of the range lands on the last one
            for i, candidate in enumerate(rest):
                point -= candidate.channel.weight
                if point < 0:
                    index = i
                    break
            picked = rest.pop(index)
            total -= picked.channel.weight
            order.append(picked)
        return order + rest

    def unavailable(self, model: str, candidates: Sequence[Candidate]) -> RelayError:
        """The 503 for ``model`` when none of ``candidates`` is fit (also for the failover loop, when every
        channel of a plan refused at ``allow()`` or ``take()``): retry-after = the soonest comeback."""
        wait = min((self._retry_in(c.channel.name) for c in candidates), default=0.0)
        seconds = max(1, math.ceil(wait))
        return RelayError(
            503,
            "upstream",
            f"No channel can serve the model '{model}' now (breakers open or upstream keys resting); "
            f"retry in {seconds} s",
            code="no_healthy_channel",
            headers=((b"retry-after", str(seconds).encode()),),
        )


def resolve(channels: Sequence[ChannelConfig], model: str) -> Candidate:
    """The first channel in file order that serves ``model`` (no priority, group or health): the routing
    before ``Router``, kept until every caller uses ``Router.plan``."""
    for channel in channels:
        name = upstream_name(channel, model)
        if name is not None:
            return Candidate(channel, name)
    raise _model_not_found(model)


def listed_models(channels: Sequence[ChannelConfig]) -> list[str]:
    """Public model names, in channel order, without duplicates; glob patterns cannot be listed."""
    seen: dict[str, None] = {}
    for channel in channels:
        for name in (*channel.model_map, *channel.list_models, *channel.models):
            if not any(ch in name for ch in "*?["):
                seen.setdefault(name, None)
    return list(seen)

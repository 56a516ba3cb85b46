"""What a request costs: per-model prices from relay.toml, a channel's multiplier, and the hold.

Prices are credits per million tokens, so a price of P is P micro-credits per token; every amount
here is an integer of micro-credits (1 credit = 1,000,000), so sums in the ledger are exact. The
first ``[[prices]]`` entry whose glob matches the model the client asked for (after aliases) wins; a
model no entry matches costs nothing (docs/configuration.md, `[[prices]]`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from relay.config import Price
from relay.dialects import ir

MICROS = 1_000_000
#: Model names whose price is remembered, at most.
CACHE_SIZE = 4096
#: Runs of base64 this long are attachments (images, documents), not text: counted as ATTACHMENT_TOKENS.
_BASE64 = re.compile(rb"[A-Za-z0-9+/=]{2048,}")
ATTACHMENT_TOKENS = 2048
#: Where each client API puts the request's output ceiling.
_MAX_OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


class Pricing:
    def __init__(self, prices: Sequence[Price]) -> None:
        self._prices = tuple(prices)
        self._cache: dict[str, Price | None] = {}

    def price(self, model: str) -> Price | None:
        if model not in self._cache:
            if len(self._cache) >= CACHE_SIZE:  # model names come from clients: keep the memory bounded
                self._cache.clear()
            self._cache[model] = next((p for p in self._prices if fnmatchcase(model, p.model)), None)
        return self._cache[model]

    def cost(self, model: str, usage: ir.Usage | None, multiplier: float = 1.0) -> int:
        """The micro-credits ``usage`` costs on a channel of ``multiplier``."""
        price = self.price(model)
        if price is None or usage is None:
            return 0
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_price = price.input if price.cached_input is None else price.cached_input
        uncached = usage.input_tokens - cached
        micros = uncached * price.input + cached * cached_price + usage.output_tokens * price.output
        if usage.audio_input_tokens or usage.audio_output_tokens:
            micros += audio_extra(price, usage)
        return round((micros + units_cost(price, usage)) * multiplier)

    def hold(
        self, model: str, input_tokens: int, max_output: int, multiplier: float, units: ir.Usage | None = None
    ) -> int:
        """The most a request can cost: its input (all uncached) plus its whole output ceiling, plus the most
        its ``units`` (images, seconds, characters, requests it may be billed for) can cost."""
        price = self.price(model)
        if price is None:
            return 0
        input_price = max(price.input, price.audio_input or 0.0)  # audio may cost more than text (Realtime)
        micros = input_tokens * input_price + max_output * max(price.output, price.audio_output or 0.0)
        return round((micros + (units_cost(price, units) if units is not None else 0)) * multiplier)


def audio_extra(price: Price, usage: ir.Usage) -> float:
    """What ``usage``'s audio tokens cost beyond the text prices ``cost`` counted them at (Realtime): each of
    audio input, cached audio input and audio output at its own price when ``[[prices]]`` gives one."""
    audio_in = min(usage.audio_input_tokens, usage.input_tokens)
    cached_audio = min(usage.cached_audio_tokens, audio_in, usage.cached_tokens)
    audio_out = min(usage.audio_output_tokens, usage.output_tokens)
    extra = 0.0
    if price.audio_input is not None:
        extra += (audio_in - cached_audio) * (price.audio_input - price.input)
    if price.cached_audio_input is not None:
        cached_price = price.input if price.cached_input is None else price.cached_input
        extra += cached_audio * (price.cached_audio_input - cached_price)
    if price.audio_output is not None:
        extra += audio_out * (price.audio_output - price.output)
    return extra


def units_cost(price: Price, usage: ir.Usage) -> float:
    """The micro-credits of ``usage``'s units (not its tokens) at ``price``: prices are credits per unit."""
    if not (usage.images or usage.seconds or usage.characters or usage.requests):
        return 0.0
    credits = usage.images * image_price(price, usage.image_size)
    credits += usage.seconds * price.second + usage.characters * price.character + usage.requests * price.request
    return credits * MICROS


def image_price(price: Price, size: str) -> float:
    """Credits per image of ``size`` (``"SIZE"`` or ``"SIZE/QUALITY"``): its own entry, its size's, or ``image``."""
    sizes = price.image_sizes
    if size in sizes:
        return sizes[size]
    return sizes.get(size.partition("/")[0], price.image)


def input_estimate(body: bytes) -> int:
    """An upper estimate of a request body's input tokens: a token per three bytes of its JSON, base64
    attachments counted flat (a 1 MB image is not 300k tokens)."""
    if len(body) < 2048:
        return len(body) // 3 + 1
    attachments = 0
    size = len(body)
    for run in _BASE64.finditer(body):
        attachments += 1
        size -= run.end() - run.start()
    return size // 3 + 1 + attachments * ATTACHMENT_TOKENS


def max_output(payload: Mapping[str, Any] | None, default: int) -> int:
    """The output ceiling the request sets (any client API), else ``default``."""
    if payload is None:
        return default
    for field in _MAX_OUTPUT_FIELDS:
        value = payload.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    config = payload.get("generationConfig") or payload.get("generation_config")
    if isinstance(config, dict):
        value = config.get("maxOutputTokens", config.get("max_output_tokens"))
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default

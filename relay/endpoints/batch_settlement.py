"""A batch's usage, charged once: when its results are first downloaded through Relay.

A batch runs upstream long after the request that created it ended, so it is charged when its results come
back: the first download of an OpenAI batch's output file (``GET /v1/files/{id}/content``) or of an Anthropic
message batch's results (``GET /v1/messages/batches/{id}/results``) reads every result's usage, prices it at the
``[[prices]]`` entry of the model the batch's requests asked for (after aliases; the channel's price multiplier
applies), and charges the key. The store's ``upstream_objects.settled_at`` is claimed first, in one transaction,
so that a second download (in any process) charges nothing. A key whose balance cannot cover the charge gets a
402 and no results; the claim is given back, and a download after a top-up settles.

The charge goes through the key's quota lease as a request's does (a hold of exactly the cost, settled at once),
so it is in the ledger (``hold`` and ``settle`` rows under the download's request id). The download's request
log row carries the batch's tokens and model, and its cost.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects import ir
from relay.errors import RelayError
from relay.gateway.leases import Refused
from relay.http.messages import Request
from relay.store import StoreError, upstream_objects
from relay.store.upstream_objects import UpstreamObject

from .forward import tally

if TYPE_CHECKING:
    from relay.app import Relay


def _lines(data: bytes) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # a line Relay cannot read costs nothing (the upstream's file is what the client gets)
        if isinstance(line, dict):
            out.append(line)
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _details(usage: Mapping[str, Any], name: str, field: str) -> int:
    details = usage.get(name)
    return _int(details.get(field)) if isinstance(details, dict) else 0


def openai_usage(usage: Any) -> ir.Usage:
    """The usage of one OpenAI answer (Chat Completions, Responses, Embeddings, Completions)."""
    if not isinstance(usage, dict):
        return ir.Usage()
    if "input_tokens" in usage or "output_tokens" in usage:  # Responses
        return ir.Usage(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cached_tokens=_details(usage, "input_tokens_details", "cached_tokens"),
            reasoning_tokens=_details(usage, "output_tokens_details", "reasoning_tokens"),
        )
    return ir.Usage(
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
        cached_tokens=_details(usage, "prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=_details(usage, "completion_tokens_details", "reasoning_tokens"),
    )


def anthropic_usage(usage: Any) -> ir.Usage:
    """The usage of one Anthropic message (cache reads count as cached input, cache writes as input)."""
    if not isinstance(usage, dict):
        return ir.Usage()
    cached = _int(usage.get("cache_read_input_tokens"))
    written = _int(usage.get("cache_creation_input_tokens"))
    return ir.Usage(
        input_tokens=_int(usage.get("input_tokens")) + cached + written,
        output_tokens=_int(usage.get("output_tokens")),
        cached_tokens=cached,
        cache_write_tokens=written,
    )


def _add(total: ir.Usage | None, usage: ir.Usage) -> ir.Usage:
    if total is None:
        return usage
    return ir.Usage(
        input_tokens=total.input_tokens + usage.input_tokens,
        output_tokens=total.output_tokens + usage.output_tokens,
        cached_tokens=total.cached_tokens + usage.cached_tokens,
        cache_write_tokens=total.cache_write_tokens + usage.cache_write_tokens,
        reasoning_tokens=total.reasoning_tokens + usage.reasoning_tokens,
    )


def openai_output(data: bytes, model: str) -> dict[str, ir.Usage]:
    """The usage in an OpenAI batch output file (each line's ``response.body.usage``), all under ``model``."""
    total: ir.Usage | None = None
    for line in _lines(data):
        response = line.get("response")
        body = response.get("body") if isinstance(response, dict) else None
        if isinstance(body, dict):
            total = _add(total, openai_usage(body.get("usage")))
    return {model: total} if total is not None else {}


def anthropic_results(data: bytes, models: Mapping[str, str], default: str) -> dict[str, ir.Usage]:
    """The usage in an Anthropic batch's results, by the model each request asked for (``models``: by
    ``custom_id``; ``default`` for one Relay does not know)."""
    totals: dict[str, ir.Usage] = {}
    for line in _lines(data):
        result = line.get("result")
        if not isinstance(result, dict) or result.get("type") != "succeeded":
            continue
        message = result.get("message")
        if not isinstance(message, dict):
            continue
        custom_id = line.get("custom_id")
        model = models.get(custom_id, default) if isinstance(custom_id, str) else default
        totals[model] = _add(totals.get(model), anthropic_usage(message.get("usage")))
    return totals


async def settle(relay: Relay, request: Request, obj: UpstreamObject, usages: Mapping[str, ir.Usage]) -> None:
    """Charge the key for ``usages`` unless ``obj`` was settled before (then nothing); 402 when the key's balance
    cannot cover it (nothing charged, the object left unsettled)."""
    record = tally(request)
    key = record.key
    assert key is not None
    gateway = relay.gateway
    store = gateway.store
    now = time.time()
    if not await store.transaction(lambda tx: upstream_objects.claim_settlement(tx, obj.id, key.name, now)):
        return
    config = next((c for c in relay.config.channels if c.name == obj.channel), None)
    multiplier = config.price_multiplier if config is not None else 1.0
    cost = sum(gateway.pricing.cost(model, usage, multiplier) for model, usage in usages.items())
    total: ir.Usage | None = None
    for usage in usages.values():
        total = _add(total, usage)
    tokens = total.input_tokens + total.output_tokens if total is not None else 0
    if key.quota_micros is not None and cost > 0:
        try:
            ticket = await gateway.leases.admit(key, cost, False, now)
        except (Refused, StoreError) as failure:
            await store.transaction(lambda tx: upstream_objects.release_settlement(tx, obj.id, key.name))
            raise _refusal(failure, cost) from None
        gateway.recorder.settle_leased(gateway.leases.finish(ticket, key.name, request.id, cost, tokens, False, now))
    # The request log: the batch's tokens and model; its cost is the charge (one model), else
    # the tokens priced as the costliest model's (the ledger has the exact charge).
    record.requested_model = max(usages, key=lambda m: gateway.pricing.cost(m, usages[m]), default=obj.model)
    record.multiplier = multiplier
    request.usage = total


def _refusal(failure: Refused | StoreError, cost: int) -> RelayError:
    if isinstance(failure, StoreError):
        return RelayError(
            503,
            "upstream",
            "the quota store is unavailable; try again shortly",
            code="store_unavailable",
            headers=((b"retry-after", b"1"),),
        )
    if failure.admission.reason == "unknown_key":
        return RelayError(401, "authentication", "invalid API key", code="invalid_api_key")
    balance = (failure.admission.balance or 0) / 1_000_000
    return RelayError(
        402,
        "quota",
        f"this key's quota cannot cover the batch's results: they cost {cost / 1_000_000:g} credits and "
        f"{balance:g} remain; top the key up and download them again",
        code="insufficient_quota",
    )

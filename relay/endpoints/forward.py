"""The pipeline of the APIs beside generation (embeddings, completions, rerank, moderations, …).

Each such endpoint reads its request, says which model it is for, and gives an ``Attempt`` (one try on one
channel: ``relay.endpoints.failover``); ``forward`` does the rest as generation does: the key, its models, the
route to a plan of channels, the quota hold and rate limits, failover, and (through the request's usage, read
at its end) the settlement and the request log. ``fetch`` is the usual body of an attempt: send, read the whole
answer, and turn an upstream error into the client's dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from relay.dialects import ir
from relay.gateway.auth import check_model
from relay.gateway.tally import Tally
from relay.http.messages import Request, Response, StreamResponse
from relay.upstream.channels import Channel
from relay.upstream.exchange import Exchange
from relay.upstream.response import StreamedBody

from .failover import Attempt, Failover
from .relayed import success
from .upstream_error import error_answer

if TYPE_CHECKING:
    from relay.app import Relay


class Kept:
    """What a request keeps for its failover until its answer starts (``Request.retain``)."""

    __slots__ = ("body", "payload")

    def __init__(self, body: bytes, payload: Any) -> None:
        self.body = body
        self.payload = payload

    def release(self) -> None:
        self.body = b""
        self.payload = None


async def forward(
    relay: Relay,
    request: Request,
    out: StreamResponse,
    model: str,
    attempt: Attempt,
    *,
    body: bytes = b"",
    payload: Mapping[str, Any] | None = None,
    stream: bool = False,
    units: ir.Usage | None = None,
) -> Response | None:
    """Authenticate, route ``model``, hold what the request may cost (its input estimated from ``body``, its
    output ceiling from ``payload``, as for generation, and the most ``units`` it may be billed for: images,
    seconds, characters, requests) and try ``attempt`` on the plan's channels in turn."""
    key, pin = await relay.gateway.keys.authenticate(request)
    record = tally(request)
    record.key = key
    gateway = relay.gateway
    model = gateway.router.model(model)
    record.requested_model = model
    record.stream = stream
    check_model(key, model)
    plan = gateway.router.plan(model, key.group, pin)
    request.retain(Kept(body, payload))
    await gateway.admit(record, request.id, body, payload, plan, units)
    return await Failover(relay, request, out, plan, attempt).run()


def tally(request: Request) -> Tally:
    return request.record  # type: ignore[return-value]


async def fetch(
    request: Request,
    channel: Channel,
    api_key: str,
    path: str,
    body: bytes | StreamedBody,
    *,
    source: ModuleType,
    client: ModuleType,
    method: str = "POST",
    content_type: str | None = None,
) -> bytes | Response:
    """Send ``body`` to ``path`` on ``channel`` and read the whole answer: its body when the upstream succeeded,
    else the upstream's error (read in the ``source`` codec's dialect) as the client's (the ``client`` codec's):
    a ``Response`` the attempt returns as it is, which failover judges by its status."""
    record = tally(request)
    exchange = Exchange(channel, api_key)
    upstream = await exchange.open(path, body, method=method, content_type=content_type)
    try:
        record.upstream_status = upstream.status
        if not success(upstream.status):
            return await error_answer(record, upstream, exchange, source, client)
        data = await exchange.read_body(upstream)
    finally:
        await exchange.close(upstream)
    record.end = "completed"
    return data

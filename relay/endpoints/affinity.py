"""What the Files and Batches endpoints share: the key, the channel an object lives on, and the store's record of it.

An object an upstream keeps (a file, a batch, a message batch) lives on one channel: the calls about it go to that
channel ("affinity"), through the failover loop with a plan of that one channel (so its upstream key pool,
breaker and request log work as for any request). The store's ``upstream_objects`` row says which channel, and
whose the object is: a key sees its own objects only, and any other id is a 404 in the client's dialect.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import orjson

from relay.config import ChannelConfig
from relay.errors import RelayError
from relay.gateway.routing import Candidate, upstream_name
from relay.http.messages import Request, Response, StreamResponse
from relay.store import upstream_objects
from relay.store.keys import KeyRecord
from relay.store.upstream_objects import Kind, UpstreamObject

from .failover import Attempt, Failover
from .forward import fetch, tally

if TYPE_CHECKING:
    from relay.app import Relay

#: The JSON answers' content type.
JSON = ((b"content-type", b"application/json"),)


async def authenticate(relay: Relay, request: Request) -> tuple[KeyRecord, str | None]:
    """The request's key (noted for the log) and the channel it pins (``x-relay-channel``, ``KEY#CHANNEL``)."""
    key, pin = await relay.gateway.keys.authenticate(request)
    tally(request).key = key
    return key, pin


def family_channels(relay: Relay, key: KeyRecord, family: str, pin: str | None) -> list[ChannelConfig]:
    """The channels of ``key``'s group that speak ``family``'s API, highest priority first (then file order);
    with a pin, only the pinned one (a 404 when it is not such a channel)."""
    channels = [
        c
        for c in relay.config.channels
        if key.group in c.groups and c.name in relay.channels and relay.channels[c.name].family == family
    ]
    if pin is not None:
        channels = [c for c in channels if c.name == pin]
        if not channels:
            raise RelayError(
                404,
                "not_found",
                "The pinned channel (X-Relay-Channel or KEY#CHANNEL) cannot serve this request for this key",
                code="channel_not_found",
            )
    return sorted(channels, key=lambda c: -c.priority)


def serving(channels: Sequence[ChannelConfig], models: Sequence[str]) -> list[Candidate]:
    """The channels that serve every one of ``models``, each with the first model's upstream name."""
    found: list[Candidate] = []
    for channel in channels:
        names = [upstream_name(channel, model) for model in models]
        if all(name is not None for name in names):
            found.append(Candidate(channel, (names[0] if names else None) or ""))
    return found


def renamed(channel: ChannelConfig, model: str) -> str:
    """The name ``channel`` knows ``model`` by (the model itself when the channel does not map it)."""
    return upstream_name(channel, model) or model


def channel_of(relay: Relay, obj: UpstreamObject, model: str | None = None) -> Candidate:
    """The plan entry of the channel that keeps ``obj``; a 404 when that channel is no longer configured."""
    config = next((c for c in relay.config.channels if c.name == obj.channel), None)
    if config is None or obj.channel not in relay.channels:
        raise RelayError(
            404,
            "not_found",
            f"'{obj.id}' was kept by an upstream this server no longer relays to",
            code="object_unavailable",
        )
    return Candidate(config, model or obj.model or "")


async def run(
    relay: Relay,
    request: Request,
    out: StreamResponse,
    plan: Sequence[Candidate],
    attempt: Attempt,
    model: str | None = None,
) -> Response | None:
    """``attempt`` on ``plan``'s channels in turn (failover, breakers, key pools, the log's channel)."""
    if not plan:
        raise RelayError(
            400,
            "invalid_request",
            "No channel of this key's group can serve this request",
            code="no_channel",
        )
    tally(request).requested_model = model
    return await Failover(relay, request, out, plan, attempt).run()


async def send(
    request: Request,
    relay: Relay,
    channel_name: str,
    api_key: str,
    path: str,
    body: bytes = b"",
    *,
    codec: ModuleType,
    method: str = "GET",
    content_type: str | None = None,
) -> bytes | Response:
    """``relay.endpoints.forward.fetch`` on the named channel, the upstream's errors told in ``codec``'s dialect."""
    channel = relay.channels[channel_name]
    return await fetch(
        request, channel, api_key, path, body, source=codec, client=codec, method=method, content_type=content_type
    )


def parsed(data: bytes, what: str) -> dict[str, Any]:
    """The upstream's JSON object answer; a 502 when it is not one."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise RelayError(502, "upstream", f"the upstream answered {what} with something else than its object")
    return value


async def find(relay: Relay, id: str, kind: Kind, key: KeyRecord) -> UpstreamObject | None:
    return await relay.gateway.store.transaction(lambda tx: upstream_objects.find(tx, id, kind, key.name))


async def listing(relay: Relay, kind: Kind, key: KeyRecord, newest_first: bool = True) -> list[UpstreamObject]:
    return await relay.gateway.store.transaction(
        lambda tx: upstream_objects.listing(tx, kind, key.name, newest_first=newest_first)
    )


async def keep(
    relay: Relay,
    id: str,
    kind: Kind,
    key: KeyRecord,
    channel: str,
    obj: dict[str, Any],
    *,
    model: str | None = None,
    parent: str | None = None,
) -> None:
    """Note (or refresh) an object the upstream keeps for ``key`` on ``channel``."""
    record = UpstreamObject(id, kind, key.name, channel, time.time(), obj, model, parent)
    await relay.gateway.store.transaction(lambda tx: upstream_objects.save(tx, record))


async def forget(relay: Relay, id: str, kind: Kind, key: KeyRecord) -> None:
    await relay.gateway.store.transaction(lambda tx: upstream_objects.delete(tx, id, kind, key.name))


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(obj), JSON)


def limit_of(request: Request, low: int, high: int, default: int) -> int:
    """The ``limit`` query parameter, ``low`` to ``high``; a 400 otherwise."""
    raw = request.query_params().get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise RelayError(
            400,
            "invalid_request",
            f"'limit' must be an integer from {low} to {high}",
            param="limit",
            code="invalid_limit",
        )
    return int(raw)

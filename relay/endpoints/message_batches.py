"""Anthropic Message Batches (``/v1/messages/batches…``, also under ``/claude``), on Anthropic channels.

A batch goes to the channels of the key's group that speak Anthropic's API and serve every model its requests
ask for (after aliases; the key must be allowed each), in routing order of the first request's model; each
request's ``params.model`` is renamed to the channel's name for it. The create is admitted like a request of the
first model (rate limits, a hold of one default request given back at its end). The store keeps the batch for
the key with the model of each request (by ``custom_id``); the results are charged when first downloaded
(``relay.endpoints.batch_settlement``). ``results_url`` points at Relay (the SDK downloads from it), built from the
request's ``Host`` (and ``X-Forwarded-Proto``, else ``http``). ``GET /v1/messages/batches`` lists the key's
batches from the store, as last seen through Relay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from relay.dialects.anthropic import codec as anthropic
from relay.errors import RelayError
from relay.gateway.auth import check_model
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.store.upstream_objects import UpstreamObject
from relay.upstream.channels import Channel

from . import affinity, batch_settlement

if TYPE_CHECKING:
    from relay.app import Relay

MAX_REQUESTS = 100_000
PATH = "/v1/messages/batches"


def _invalid(message: str) -> RelayError:
    return RelayError(400, "invalid_request", message)


def not_found(id: str) -> RelayError:
    return RelayError(404, "not_found", f"No message batch with id '{id}' was found")


def read_requests(body: bytes) -> list[dict[str, Any]]:
    """The batch's requests; a 400 naming what is wrong otherwise (the params themselves are the upstream's to
    judge, each request's own result)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _invalid("The request body is not valid JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise _invalid("requests: Field required (a list of {custom_id, params})")
    requests = payload["requests"]
    if not requests or len(requests) > MAX_REQUESTS:
        raise _invalid(f"requests: a batch has 1 to {MAX_REQUESTS} requests")
    for index, item in enumerate(requests):
        if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str):
            raise _invalid(f"requests.{index}.custom_id: Field required")
        params = item.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("model"), str):
            raise _invalid(f"requests.{index}.params.model: Field required")
    return requests


def _prefix(request: Request) -> str:
    return "/claude" if request.path.startswith("/claude/") else ""


def shown(request: Request, batch: dict[str, Any]) -> dict[str, Any]:
    """The batch as the client sees it: its ``results_url`` on Relay."""
    if not batch.get("results_url"):
        return batch
    scheme = request.header(b"x-forwarded-proto") or "http"
    host = request.header(b"host") or "localhost"
    url = f"{scheme}://{host}{_prefix(request)}{PATH}/{quote(batch['id'], safe='')}/results"
    return {**batch, "results_url": url}


async def create(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key, pin = await affinity.authenticate(relay, request)
    requests = read_requests(request.body)
    router = relay.gateway.router
    models = {item["custom_id"]: router.model(item["params"]["model"]) for item in requests}
    distinct = list(dict.fromkeys(models.values()))
    for model in distinct:
        check_model(key, model)
    plan = affinity.serving(affinity.family_channels(relay, key, "anthropic", pin), distinct)
    if not plan:
        raise _invalid(f"No channel can run a message batch of {', '.join(map(repr, distinct))} for this key")
    record = affinity.tally(request)
    record.requested_model = distinct[0]
    await relay.gateway.admit(record, request.id, b"", None, plan)

    async def attempt(channel: Channel, upstream_model: str, api_key: str) -> Response | None:
        config = channel.config
        renamed = [
            {**item, "params": {**item["params"], "model": affinity.renamed(config, models[item["custom_id"]])}}
            for item in requests
        ]
        body = orjson.dumps({"requests": renamed})
        data = await affinity.send(request, relay, channel.name, api_key, PATH, body, codec=anthropic, method="POST")
        if isinstance(data, Response):
            return data
        batch = affinity.parsed(data, "a message batch creation")
        kept = {"batch": batch, "models": models}
        await affinity.keep(relay, batch["id"], "message_batch", key, channel.name, kept, model=distinct[0])
        return affinity.json_response(shown(request, batch))

    return await affinity.run(relay, request, out, plan, attempt, distinct[0])


async def _owned(relay: Relay, request: Request) -> UpstreamObject:
    key, _ = await affinity.authenticate(relay, request)
    obj = await affinity.find(relay, request.params["batch_id"], "message_batch", key)
    if obj is None:
        raise not_found(request.params["batch_id"])
    return obj


async def _call(
    relay: Relay, request: Request, out: StreamResponse, method: str, suffix: str = "", *, delete: bool = False
) -> Response | None:
    obj = await _owned(relay, request)
    key = affinity.tally(request).key
    assert key is not None

    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        path = f"{PATH}/{quote(obj.id, safe='')}{suffix}"
        data = await affinity.send(request, relay, channel.name, api_key, path, codec=anthropic, method=method)
        if isinstance(data, Response):
            return data
        answer = affinity.parsed(data, "a message batch request")
        if delete:
            await affinity.forget(relay, obj.id, "message_batch", key)
            return affinity.json_response(answer)
        kept = {**obj.object, "batch": answer}
        await affinity.keep(relay, obj.id, "message_batch", key, channel.name, kept)
        return affinity.json_response(shown(request, answer))

    return await affinity.run(relay, request, out, [affinity.channel_of(relay, obj)], attempt, obj.model)


async def retrieve(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    return await _call(relay, request, out, "GET")


async def cancel(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    return await _call(relay, request, out, "POST", "/cancel")


async def delete(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    return await _call(relay, request, out, "DELETE", delete=True)


async def listing(relay: Relay, request: Request, out: StreamResponse) -> Response:
    key, _ = await affinity.authenticate(relay, request)
    limit = affinity.limit_of(request, 1, 1000, 20)
    query = request.query_params()
    items = [shown(request, row.object["batch"]) for row in await affinity.listing(relay, "message_batch", key)]
    ids = [item["id"] for item in items]
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None:
        items = items[ids.index(after) + 1 :] if after in ids else []
    elif before is not None:
        items = (items[: ids.index(before)] if before in ids else [])[-limit:]
    page = items[:limit]
    return affinity.json_response(
        {
            "data": page,
            "has_more": len(items) > limit,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
    )


async def results(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    obj = await _owned(relay, request)
    answered: dict[str, bytes] = {}

    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        path = f"{PATH}/{quote(obj.id, safe='')}/results"
        data = await affinity.send(request, relay, channel.name, api_key, path, codec=anthropic)
        if isinstance(data, Response):
            return data
        answered["body"] = data
        return None

    failed = await affinity.run(relay, request, out, [affinity.channel_of(relay, obj)], attempt, obj.model)
    if failed is not None:
        return failed
    data = answered["body"]
    if obj.settled_at is None:
        models = obj.object.get("models") or {}
        usages = batch_settlement.anthropic_results(data, models, obj.model or "")
        await batch_settlement.settle(relay, request, obj, usages)
    return Response(200, data, ((b"content-type", b"application/x-jsonl"),))


def _routes(prefix: str) -> tuple[Route, ...]:
    base = prefix + PATH
    return (
        Route("POST", base, create, "anthropic"),
        Route("GET", base, listing, "anthropic"),
        Route("GET", base + "/{batch_id}", retrieve, "anthropic"),
        Route("DELETE", base + "/{batch_id}", delete, "anthropic"),
        Route("POST", base + "/{batch_id}/cancel", cancel, "anthropic"),
        Route("GET", base + "/{batch_id}/results", results, "anthropic"),
    )


ROUTES: tuple[Route, ...] = (*_routes(""), *_routes("/claude"))

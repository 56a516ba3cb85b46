"""OpenAI Batches (create, retrieve, list, cancel) on the channel that keeps the input file; Anthropic's Message
Batches' routes too (``relay.endpoints.message_batches``).

A batch goes to the channel that has its input file, under the model that file's lines ask for (noted at
upload): the key must still be allowed that model, and the create is admitted like a request of it (rate limits,
and a quota hold of one default request, given back at its end: a key that cannot afford one request cannot start
a batch). The batch is charged when its output file is downloaded (``relay.endpoints.batch_settlement``). Each
batch and the output and error files it names are kept in the store for the key (so that the key, and only it,
may retrieve, cancel and download them); ``GET /v1/batches`` lists the key's batches from the store, as last
seen through Relay (retrieve one for its current state).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from relay.dialects.openai.chat import codec as openai_chat
from relay.errors import RelayError
from relay.gateway.auth import check_model
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.store.keys import KeyRecord
from relay.upstream.channels import Channel

from . import affinity, message_batches
from .files import not_found as file_not_found
from .files import page

if TYPE_CHECKING:
    from relay.app import Relay

ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations")
_FIELDS = frozenset({"input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"})


def _invalid(message: str, param: str, code: str = "invalid_value") -> RelayError:
    return RelayError(400, "invalid_request", message, param=param, code=code)


def not_found(id: str) -> RelayError:
    return RelayError(404, "not_found", f"No batch found with id '{id}'", param="batch_id", code="batch_not_found")


def read_request(body: bytes) -> dict[str, Any]:
    """The create request's body, checked as OpenAI checks it; a 400 naming the field otherwise."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _invalid("The request body is not valid JSON", "body", "invalid_json") from None
    if not isinstance(payload, dict):
        raise _invalid("The request body must be a JSON object", "body", "invalid_json")
    for name in sorted(set(payload) - _FIELDS):
        raise _invalid(f"Unrecognized request argument supplied: {name}", name, "unknown_parameter")
    for name in ("input_file_id", "endpoint", "completion_window"):
        if not isinstance(payload.get(name), str) or not payload[name]:
            raise _invalid(f"Missing required parameter: '{name}'", name, "missing_param")
    if payload["endpoint"] not in ENDPOINTS:
        raise _invalid(
            f"Invalid value for 'endpoint': '{payload['endpoint']}'; expected one of {', '.join(ENDPOINTS)}", "endpoint"
        )
    if payload["completion_window"] != "24h":
        raise _invalid("Invalid value for 'completion_window': only '24h' is supported", "completion_window")
    metadata = payload.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and len(metadata) <= 16
        and all(len(k) <= 64 and isinstance(v, str) and len(v) <= 512 for k, v in metadata.items())
    ):
        raise _invalid("'metadata' must be at most 16 pairs of keys (64 characters) and strings (512)", "metadata")
    return payload


async def keep_batch(
    relay: Relay,
    request: Request,
    channel: Channel,
    api_key: str,
    key: KeyRecord,
    batch: dict[str, Any],
    model: str | None,
) -> None:
    """Note ``batch`` for ``key`` on ``channel``, with the output and error files it names (their objects asked
    for once, when first seen)."""
    await affinity.keep(relay, batch["id"], "batch", key, channel.name, batch, model=model)
    for field in ("output_file_id", "error_file_id"):
        file_id = batch.get(field)
        if not isinstance(file_id, str) or await affinity.find(relay, file_id, "file", key) is not None:
            continue
        data = await affinity.send(
            request, relay, channel.name, api_key, f"/files/{quote(file_id, safe='')}", codec=openai_chat
        )
        obj = (
            affinity.parsed(data, "a file retrieval") if isinstance(data, bytes) else {"id": file_id, "object": "file"}
        )
        await affinity.keep(relay, file_id, "file", key, channel.name, obj, model=model, parent=batch["id"])


def _shown(batch: dict[str, Any], model: str | None) -> dict[str, Any]:
    """The batch as the client sees it: under the model name it asked for."""
    if model is not None and batch.get("model") is not None:
        return {**batch, "model": model}
    return batch


async def create_batch(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key, _ = await affinity.authenticate(relay, request)
    payload = read_request(request.body)
    file = await affinity.find(relay, payload["input_file_id"], "file", key)
    if file is None:
        raise file_not_found(payload["input_file_id"])
    if file.model is None or file.parent is not None:
        raise _invalid(
            "The input file must be one uploaded with purpose 'batch'", "input_file_id", "invalid_input_file"
        )
    model = file.model
    check_model(key, model)
    candidate = affinity.channel_of(relay, file, affinity.renamed(affinity.channel_of(relay, file).channel, model))
    record = affinity.tally(request)
    record.requested_model = model
    await relay.gateway.admit(record, request.id, b"", None, [candidate])

    async def attempt(channel: Channel, upstream_model: str, api_key: str) -> Response | None:
        data = await affinity.send(
            request, relay, channel.name, api_key, "/batches", request.body, codec=openai_chat, method="POST"
        )
        if isinstance(data, Response):
            return data
        batch = affinity.parsed(data, "a batch creation")
        await keep_batch(relay, request, channel, api_key, key, batch, model)
        return affinity.json_response(_shown(batch, model))

    return await affinity.run(relay, request, out, [candidate], attempt, model)


async def _on_batch(
    relay: Relay, request: Request, out: StreamResponse, method: str, suffix: str = ""
) -> Response | None:
    key, _ = await affinity.authenticate(relay, request)
    id = request.params["batch_id"]
    obj = await affinity.find(relay, id, "batch", key)
    if obj is None:
        raise not_found(id)

    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        path = f"/batches/{quote(id, safe='')}{suffix}"
        data = await affinity.send(request, relay, channel.name, api_key, path, codec=openai_chat, method=method)
        if isinstance(data, Response):
            return data
        batch = affinity.parsed(data, "a batch request")
        await keep_batch(relay, request, channel, api_key, key, batch, obj.model)
        return affinity.json_response(_shown(batch, obj.model))

    return await affinity.run(relay, request, out, [affinity.channel_of(relay, obj)], attempt, obj.model)


async def retrieve_batch(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    return await _on_batch(relay, request, out, "GET")


async def cancel_batch(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    return await _on_batch(relay, request, out, "POST", "/cancel")


async def list_batches(relay: Relay, request: Request, out: StreamResponse) -> Response:
    key, _ = await affinity.authenticate(relay, request)
    limit = affinity.limit_of(request, 1, 100, 20)
    rows = await affinity.listing(relay, "batch", key)
    items = [_shown(row.object, row.model) for row in rows]
    return affinity.json_response(page(items, request.query_params().get("after"), limit))


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/batches", create_batch),
    Route("GET", "/v1/batches", list_batches),
    Route("GET", "/v1/batches/{batch_id}", retrieve_batch),
    Route("POST", "/v1/batches/{batch_id}/cancel", cancel_batch),
    *message_batches.ROUTES,
)

"""OpenAI Files: upload, list, retrieve, download, delete, on the channel that keeps each file
(docs/apis/files_batches.md).

Where an upload goes (a file request names no model):

- ``purpose=batch``: the file's lines name the model (one per file, as OpenAI requires); the key must be allowed
  it, and the file goes to the channels that serve it for the key's group and speak OpenAI's API, in routing
  order (failover as for generation). Each line's ``body.model`` is renamed to the channel's name for it.
- any other purpose: the first channel of the key's group that speaks OpenAI's API (highest priority, then file
  order); ``x-relay-channel: NAME`` (or ``KEY#NAME``) picks another.

The store then keeps the file id, its owner (the key), its channel and the file object; later calls about the
file go to that channel, and another key's file id is a 404. ``GET /v1/files`` lists the key's own files from
the store (their objects as last seen through Relay). A download is read whole from the upstream, then sent
(bounded by the upstream answer limit, 64 MiB); downloading a batch's output file settles the batch's usage
(``relay.endpoints.batch_settlement``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from relay.config import ChannelConfig
from relay.dialects.openai.chat import codec as openai_chat
from relay.errors import RelayError
from relay.gateway.auth import check_model
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.store.keys import KeyRecord
from relay.upstream.channels import Channel

from . import affinity, batch_settlement, multipart_form
from .affinity import json_response
from .forward import fetch
from .multipart_stream import StreamedForm

if TYPE_CHECKING:
    from relay.app import Relay

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


def _missing(name: str) -> RelayError:
    return RelayError(400, "invalid_request", f"Missing required parameter: '{name}'", param=name, code="missing_param")


def not_found(id: str) -> RelayError:
    return RelayError(404, "not_found", f"No such File object: {id}", param="file_id", code="file_not_found")


def batch_model(data: bytes) -> str:
    """The one model a batch input file's lines ask for; a 400 naming what is wrong otherwise."""
    models: set[str] = set()
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _bad_file(f"line {number} is not JSON") from None
        body = line.get("body") if isinstance(line, dict) else None
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise _bad_file(f"line {number} has no 'body' object with a 'model'")
        models.add(body["model"])
    if len(models) != 1:
        raise _bad_file("its lines name no model" if not models else "its lines name more than one model")
    return models.pop()


def _bad_file(why: str) -> RelayError:
    return RelayError(
        400, "invalid_request", f"The batch input file is not valid: {why}", param="file", code="invalid_batch_file"
    )


def renamed_lines(data: bytes, upstream: str) -> bytes:
    """The input file with each line's ``body.model`` set to ``upstream`` (the lines are re-written compactly)."""
    out: list[bytes] = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        line = orjson.loads(raw)
        line["body"]["model"] = upstream
        out.append(orjson.dumps(line))
    return b"\n".join(out) + b"\n"


async def upload(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    """An upload, streamed to its channel as it arrives (``relay.endpoints.multipart_stream``; ``purpose`` must
    come before the file, or within the form's first 8 MiB); a batch input file is read whole (its lines name
    the model, which decides the channel, and are renamed for it)."""
    key, pin = await affinity.authenticate(relay, request)
    kind = request.header(b"content-type") or ""
    form = StreamedForm(request, kind, ("purpose", "file"))
    await form.read_head(("purpose",))
    files = [f for f in form.files if f.name in ("file", "file[]")]
    if not files:
        raise _missing("file")
    if len(files) > 1:
        raise RelayError(400, "invalid_request", "Send one 'file' per upload", param="file", code="too_many_files")
    purpose = form.field("purpose")
    if purpose is None:
        raise _missing("purpose")
    if purpose not in PURPOSES:
        raise RelayError(
            400,
            "invalid_request",
            f"Invalid value for 'purpose': '{purpose}'; expected one of {', '.join(PURPOSES)}",
            param="purpose",
            code="invalid_value",
        )
    channels = affinity.family_channels(relay, key, "openai", pin)
    if purpose == "batch":
        body = await form.rest()
        return await _upload_batch(relay, request, out, key, channels, body, multipart_form.parse(body, kind))
    plan = affinity.serving(channels, [])[:1]
    request.retain(form)

    async def attempt(channel: Channel, upstream_model: str, api_key: str) -> Response | None:
        body = form.body({})
        answer = await fetch(
            request, channel, api_key, "/files", body, source=openai_chat, client=openai_chat, content_type=kind
        )
        if isinstance(answer, Response):
            return answer
        obj = affinity.parsed(answer, "an upload")
        await affinity.keep(relay, obj["id"], "file", key, channel.name, obj)
        return json_response(obj)

    return await affinity.run(relay, request, out, plan, attempt, None)


async def _upload_batch(
    relay: Relay,
    request: Request,
    out: StreamResponse,
    key: KeyRecord,
    channels: Sequence[ChannelConfig],
    whole: bytes,
    form: multipart_form.Form,
) -> Response | None:
    """A batch input file, read whole: to the channels that serve its lines' model, each line renamed for it."""
    part = form.files("file")[0]
    model = relay.gateway.router.model(batch_model(part.data))
    check_model(key, model)
    plan = affinity.serving(channels, [model])
    if not plan:
        raise RelayError(
            400,
            "invalid_request",
            f"No channel can run batches of the model '{model}' for this key",
            param="file",
            code="model_not_supported",
        )

    async def attempt(channel: Channel, upstream_model: str, api_key: str) -> Response | None:
        body, content_type = whole, request.header(b"content-type")
        if upstream_model != model:
            data = renamed_lines(part.data, upstream_model)
            kept = [p for p in form.parts if p is not part]
            body, content_type = multipart_form.encode(
                [*kept, multipart_form.Part(part.name, data, part.filename, part.content_type)]
            )
        answer = await affinity.send(
            request,
            relay,
            channel.name,
            api_key,
            "/files",
            body,
            codec=openai_chat,
            method="POST",
            content_type=content_type,
        )
        if isinstance(answer, Response):
            return answer
        obj = affinity.parsed(answer, "an upload")
        await affinity.keep(relay, obj["id"], "file", key, channel.name, obj, model=model)
        return json_response(obj)

    return await affinity.run(relay, request, out, plan, attempt, model)


async def list_files(relay: Relay, request: Request, out: StreamResponse) -> Response:
    key, _ = await affinity.authenticate(relay, request)
    query = request.query_params()
    limit = affinity.limit_of(request, 1, 10_000, 10_000)
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise RelayError(400, "invalid_request", "'order' must be 'asc' or 'desc'", param="order", code="invalid_value")
    purpose = query.get("purpose")
    rows = await affinity.listing(relay, "file", key, newest_first=order == "desc")
    items = [row.object for row in rows if purpose is None or row.object.get("purpose") == purpose]
    return json_response(page(items, query.get("after"), limit))


def page(items: list[dict[str, Any]], after: str | None, limit: int) -> dict[str, Any]:
    """OpenAI's list page of ``items`` after the id ``after``."""
    if after is not None:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    shown = items[:limit]
    return {
        "object": "list",
        "data": shown,
        "first_id": shown[0]["id"] if shown else None,
        "last_id": shown[-1]["id"] if shown else None,
        "has_more": len(items) > limit,
    }


async def _on_file(
    relay: Relay, request: Request, out: StreamResponse, method: str, suffix: str = ""
) -> tuple[Any, Response | None]:
    key, _ = await affinity.authenticate(relay, request)
    id = request.params["file_id"]
    obj = await affinity.find(relay, id, "file", key)
    if obj is None:
        raise not_found(id)
    answered: dict[str, bytes] = {}

    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        path = f"/files/{quote(id, safe='')}{suffix}"
        data = await affinity.send(request, relay, channel.name, api_key, path, codec=openai_chat, method=method)
        if isinstance(data, Response):
            if data.status == 404:
                await affinity.forget(relay, id, "file", key)  # gone upstream (expired, deleted elsewhere)
            return data
        answered["body"] = data
        return None

    result = await affinity.run(relay, request, out, [affinity.channel_of(relay, obj, "")], attempt, obj.model)
    if result is not None:
        return obj, result
    return obj, Response(200, answered["body"])


async def retrieve_file(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    obj, answer = await _on_file(relay, request, out, "GET")
    if answer is None or answer.status != 200:
        return answer
    fresh = affinity.parsed(answer.body, "a file retrieval")
    key = affinity.tally(request).key
    assert key is not None
    await affinity.keep(relay, obj.id, "file", key, obj.channel, fresh)
    return json_response(fresh)


async def delete_file(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    obj, answer = await _on_file(relay, request, out, "DELETE")
    if answer is None or answer.status != 200:
        return answer
    key = affinity.tally(request).key
    assert key is not None
    await affinity.forget(relay, obj.id, "file", key)
    return Response(200, answer.body, affinity.JSON)


async def file_content(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    obj, answer = await _on_file(relay, request, out, "GET", "/content")
    if answer is None or answer.status != 200:
        return answer
    if obj.parent is not None and obj.settled_at is None:
        usages = batch_settlement.openai_output(answer.body, obj.model or "")
        await batch_settlement.settle(relay, request, obj, usages)
    return Response(200, answer.body, ((b"content-type", b"application/octet-stream"),))


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/files", upload, uploads=True, streamed=True),
    Route("GET", "/v1/files", list_files),
    Route("GET", "/v1/files/{file_id}", retrieve_file),
    Route("DELETE", "/v1/files/{file_id}", delete_file),
    Route("GET", "/v1/files/{file_id}/content", file_content),
)

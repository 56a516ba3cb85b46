"""Stored responses: ``GET`` and ``DELETE /v1/responses/{response_id}``, ``GET …/{response_id}/input_items``.

A key sees only the responses it created. Those Relay keeps (``relay.endpoints.kept_responses``) are answered
from the store; for those an OpenAI Responses upstream keeps, the request goes to the channel that keeps them,
with that channel's key, and its answer (or its error, in Relay's words) comes back. Any other id (unknown,
expired, another key's) is a 404.

``GET …?stream=true&starting_after=N`` replays a response as a stream (``background_responses.follow`` / ``replay``:
live while a background job runs here, else its kept events, else those of its Response object);
``POST …/{response_id}/cancel`` cancels a background response (a 400 for one that is not).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING
from urllib.parse import quote

import orjson
import trio

from relay.dialects.openai.responses import codec as openai_responses
from relay.dialects.openai.responses.listing import listed, page
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.store import StoreError
from relay.store import responses as kept

from .background_jobs import FINISHED, Job
from .background_responses import follow, replay, starting_after
from .compact_responses import compact
from .forward import fetch, tally
from .kept_responses import cutoff, not_found
from .relayed import JSON, SSE

if TYPE_CHECKING:
    from relay.app import Relay

#: Seconds a cancel waits for the job it cancelled to end (it ends at its next await: at once in practice).
CANCEL_WAIT = 5.0


async def _find(relay: Relay, request: Request) -> tuple[str, str, kept.StoredResponse | kept.Affinity]:
    """The key's name, the response id and what Relay knows of it; a 404 when the key has no such response."""
    key, _ = await relay.gateway.keys.authenticate(request)
    tally(request).key = key
    response_id = request.params["response_id"]
    limit = cutoff(relay)
    try:
        found = await relay.gateway.store.transaction(lambda tx: kept.find(tx, response_id, key.name, limit))
    except StoreError:
        raise RelayError(
            503, "upstream", "the response store is unavailable; try again shortly", code="store_unavailable"
        ) from None
    if found is None:
        raise not_found(response_id)
    return key.name, response_id, found


async def _proxy(relay: Relay, request: Request, affinity: kept.Affinity, path: str, method: str) -> Response | bytes:
    """``method path`` on the channel keeping the response: its body, or its error as a Response."""
    channel = relay.channels.get(affinity.channel)
    if channel is None or channel.dialect_for("openai_responses") != "openai_responses":
        raise not_found(affinity.id)  # the channel is gone from the configuration, or speaks Responses no more
    api_key = relay.gateway.router.keys(channel.name).take()
    if api_key is None:
        raise RelayError(
            503, "upstream", "the upstream keeping this response is unavailable; try again shortly", code="no_key"
        )
    record = tally(request)
    record.channel = channel.name
    target = f"{path}?{request.query}" if request.query else path
    codec = openai_responses
    return await fetch(request, channel, api_key, target, b"", source=codec, client=codec, method=method)


def _relayed(answer: Response | bytes) -> Response:
    return answer if isinstance(answer, Response) else Response(200, answer, JSON)


def _job(relay: Relay, key_name: str, response_id: str) -> Job | None:
    """The background job of ``response_id`` running in this process for ``key_name``."""
    job = relay.background.jobs.get(response_id)
    return job if job is not None and job.key_name == key_name else None


def _streamed(request: Request) -> bool:
    flag = request.query_params().get("stream", "false").lower()
    if flag not in ("true", "1", "false", "0"):
        raise RelayError(400, "invalid_request", "'stream' must be true or false", param="stream")
    return flag in ("true", "1")


async def retrieve(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key_name, response_id, found = await _find(relay, request)
    stream = _streamed(request)
    after = starting_after(request)
    if isinstance(found, kept.StoredResponse):
        job = _job(relay, key_name, response_id)
        if not stream:
            return Response(200, orjson.dumps(job.response if job is not None else found.response), JSON)
        if job is not None:
            await follow(relay, out, job, after)
        else:
            await replay(relay, out, found, after)
        return None
    answer = await _proxy(relay, request, found, f"/responses/{quote(response_id, safe='')}", "GET")
    if stream and not isinstance(answer, Response):
        return Response(200, answer, SSE)  # the upstream's replay, relayed once it ended
    return _relayed(answer)


async def cancel(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key_name, response_id, found = await _find(relay, request)
    if isinstance(found, kept.Affinity):
        path = f"/responses/{quote(response_id, safe='')}/cancel"
        return _relayed(await _proxy(relay, request, found, path, "POST"))
    job = _job(relay, key_name, response_id)
    if job is not None:
        job.cancel()
        with trio.move_on_after(CANCEL_WAIT):
            await job.wait(sys.maxsize)  # until it is done: its final object, saved
        return Response(200, orjson.dumps(job.response), JSON)
    if found.response.get("background") is not True:
        raise RelayError(
            400,
            "invalid_request",
            "Only responses created with background=true can be cancelled.",
            param="response_id",
        )
    if found.status in FINISHED:
        return Response(200, orjson.dumps(found.response), JSON)  # nothing left to cancel: as it is
    raise RelayError(
        409,
        "invalid_request",
        "this background response is being generated by another Relay process, which alone can cancel it; "
        "retry shortly",
        code="conflict",
    )


async def delete(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key_name, response_id, found = await _find(relay, request)
    if isinstance(found, kept.Affinity):
        answer = await _proxy(relay, request, found, f"/responses/{quote(response_id, safe='')}", "DELETE")
        if isinstance(answer, Response) and answer.status != 404:
            return answer  # the upstream still has it: so does Relay's note of where
    try:
        await relay.gateway.store.transaction(lambda tx: kept.delete(tx, response_id, key_name))
    except StoreError:
        raise RelayError(
            503, "upstream", "the response store is unavailable; try again shortly", code="store_unavailable"
        ) from None
    if isinstance(found, kept.Affinity):
        return _relayed(answer)
    return Response(200, orjson.dumps({"id": response_id, "object": "response.deleted", "deleted": True}), JSON)


async def input_items(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    _, response_id, found = await _find(relay, request)
    if isinstance(found, kept.StoredResponse):
        items = listed(response_id, found.input_items)
        return Response(200, orjson.dumps(page(items, request.query_params())), JSON)
    path = f"/responses/{quote(response_id, safe='')}/input_items"
    return _relayed(await _proxy(relay, request, found, path, "GET"))


#: ``relay.routes`` includes these; with and without ``/v1`` as the other Responses routes. The static
#: ``/v1/responses/input_tokens`` is matched first, so a GET there stays a 405.
ROUTES: tuple[Route, ...] = tuple(
    route
    for prefix in ("/v1", "")
    for route in (
        Route("GET", prefix + "/responses/{response_id}", retrieve),
        Route("DELETE", prefix + "/responses/{response_id}", delete),
        Route("GET", prefix + "/responses/{response_id}/input_items", input_items),
        Route("POST", prefix + "/responses/{response_id}/cancel", cancel),
        Route("POST", prefix + "/responses/compact", compact),
    )
)

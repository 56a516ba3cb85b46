"""Rerank (``/v1/rerank``) and Moderations (``/v1/moderations``, ``relay.endpoints.moderations``).

A rerank request (Cohere's and Jina's shape, or wingman's: ``relay.dialects.rerank.codec``) goes to an ``openai``
channel in the API its ``rerank_api`` names (``relay.dialects.rerank.upstream``); the answer is Jina's and
Cohere's shape whatever the upstream's. A model served by a channel of another family is a 400: Anthropic and
Gemini have no rerank API. The request is billed for the tokens the upstream reports, else for an estimate.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs

from relay.dialects import ir
from relay.dialects.openai.chat import codec as openai_chat
from relay.dialects.rerank import upstream as rerank_upstream
from relay.dialects.rerank.codec import answer as rerank_answer
from relay.dialects.rerank.codec import read_request
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.upstream.channels import Channel
from relay.upstream.response import Transport

from . import moderations
from .forward import fetch, forward
from .openai_only import refuse_other_families
from .relayed import JSON

if TYPE_CHECKING:
    from relay.app import Relay

#: Each channel as seen at its base URL's origin (Cohere's ``/v2/rerank`` is not under its ``/v1``).
_AT_ORIGIN: weakref.WeakKeyDictionary[Channel, Channel] = weakref.WeakKeyDictionary()


async def rerank(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    req = read_request(request.body)

    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        refuse_other_families(channel, req.model, "rerank")
        api = channel.config.rerank_api
        target = at_origin(channel, relay.pool) if api == "cohere" else channel
        body = rerank_upstream.encode(api, req, model)
        data = await fetch(
            request, target, api_key, rerank_upstream.path(api), body, source=openai_chat, client=openai_chat
        )
        if isinstance(data, Response):
            return data
        ranked = rerank_upstream.decode(api, data)
        tokens = ranked.total_tokens
        if tokens is None:
            tokens = rerank_upstream.estimate_tokens(req)
        answer = rerank_answer(req, ranked, ranked.id or f"rerank-{request.id}", tokens)
        request.usage = ir.Usage(input_tokens=tokens)
        return Response(200, answer, JSON)

    return await forward(relay, request, out, req.model, attempt, body=request.body)


def at_origin(channel: Channel, transport: Transport) -> Channel:
    """``channel`` with its base URL cut to its origin (``https://h/compatibility/v1`` -> ``https://h``), sending
    on ``transport`` (Relay's pool); a mock channel as it is (the in-process mock routes by the path's end)."""
    if channel.config.type == "mock":
        return channel
    found = _AT_ORIGIN.get(channel)
    if found is None:
        parts = urlsplit(channel.base_url)
        config = attrs.evolve(channel.config, base_url=f"{parts.scheme}://{parts.netloc}")
        found = _AT_ORIGIN[channel] = Channel(config, transport)
    return found


#: This module's routes (``relay.routes.ROUTES`` takes them in), the Moderations API's among them.
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/rerank", rerank),
    Route("POST", "/rerank", rerank),
    *moderations.ROUTES,
)

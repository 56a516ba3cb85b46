"""Moderations (``/v1/moderations``): passed through to an ``openai`` channel's ``/moderations``.

The request is checked (``relay.dialects.openai.moderation``) and routed by its ``model``, ``omni-moderation-latest``
when it names none; the upstream's answer reaches the client as it is. Moderation is free: the request is billed
only when the upstream reports tokens (OpenAI's does not). Anthropic and Gemini channels: a 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay.dialects.openai import moderation
from relay.dialects.openai.chat import codec as openai_chat
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.upstream.channels import Channel

from .forward import fetch, forward
from .openai_only import refuse_other_families
from .relayed import JSON

if TYPE_CHECKING:
    from relay.app import Relay


async def moderations(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    req = moderation.read_request(request.body)

    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        refuse_other_families(channel, req.model, "moderations")
        body = moderation.upstream_body(req, model)
        data = await fetch(request, channel, api_key, "/moderations", body, source=openai_chat, client=openai_chat)
        if isinstance(data, Response):
            return data
        usage = moderation.read_answer(data)
        if usage is not None:
            request.usage = usage
        return Response(200, data, JSON)

    return await forward(relay, request, out, req.model, attempt, body=request.body)


#: This module's routes (``relay.endpoints.rerank.ROUTES`` takes them in).
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/moderations", moderations),
    Route("POST", "/moderations", moderations),
)

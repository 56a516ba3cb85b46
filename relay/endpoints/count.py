"""Counting a request's input tokens, in the three dialects that have an endpoint for it.

Anthropic ``/v1/messages/count_tokens``, Gemini ``:countTokens`` and OpenAI
``/v1/responses/input_tokens``. The channel serving the model counts: the request is converted to
its dialect's counting endpoint (an OpenAI channel counts with ``/responses/input_tokens``) and the
count converted back. An OpenAI-compatible server without that endpoint (it answers 404 or 405)
gets an estimate instead: a token per four bytes of the request's text (``relay.dialects.estimate``).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import orjson

from relay.dialects import estimate, foreign_proofs, ir
from relay.dialects.codecs import CODECS
from relay.dialects.common import load_object
from relay.dialects.openai.responses import codec as openai_responses
from relay.errors import RelayError
from relay.gateway.auth import check_model
from relay.http.messages import Request, Response, StreamResponse
from relay.upstream.channels import forwarded
from relay.upstream.exchange import Exchange

from .generate import authenticate, tally
from .relayed import JSON, success
from .upstream_error import upstream_error

if TYPE_CHECKING:
    from relay.app import Relay


async def anthropic_count(relay: Relay, request: Request, out: StreamResponse) -> Response:
    pin = await authenticate(relay, request)
    return await _count(relay, request, pin, "anthropic", _model_of(relay, request.body))


async def gemini_count(relay: Relay, request: Request, out: StreamResponse) -> Response:
    pin = await authenticate(relay, request)
    load_object(request.body)
    return await _count(relay, request, pin, "gemini", request.params["model"])


async def responses_count(relay: Relay, request: Request, out: StreamResponse) -> Response:
    pin = await authenticate(relay, request)
    return await _count(relay, request, pin, "openai_responses", _model_of(relay, request.body))


def _model_of(relay: Relay, body: bytes) -> str:
    model = load_object(body).get("model") or relay.config.server.default_model
    if not isinstance(model, str) or not model:
        raise RelayError(400, "invalid_request", "'model' must be a non-empty string", param="model")
    return model


async def _count(relay: Relay, request: Request, pin: str | None, dialect: ir.Dialect, model: str) -> Response:
    """Counted by the first channel of the request's plan (no failover, no quota: counting is free)."""
    key = tally(request).key
    assert key is not None
    router = relay.gateway.router
    model = router.model(model)
    check_model(key, model)
    route = router.plan(model, key.group, pin)[0]
    channel = relay.channels[route.channel.name]
    client = CODECS[dialect]
    target = channel.dialect_for(dialect)
    if target == "openai_chat":
        target = "openai_responses"  # the OpenAI API counts only through Responses
    upstream_codec = CODECS[target]
    if target == dialect:  # the same API: the request passes unchanged, but for an aliased model's name
        req = None
        body = request.body
        scrubbed = foreign_proofs.in_body(dialect, body)
        if scrubbed is not None:  # other providers' proofs, wrapped by Relay: unwrapped or dropped
            body = scrubbed[0]
        if dialect != "gemini" and route.upstream_model != model:
            body = orjson.dumps({**orjson.loads(body), "model": route.upstream_model})
    else:
        req = _decode(client, dialect, request.body, model)
        if dialect == "openai_responses":
            openai_responses.require_convertible(req)
        body = upstream_codec.encode_count_request(req, route.upstream_model)
    headers = forwarded(request.headers, dialect) if target == dialect else ()  # Anthropic's betas, passing through
    exchange = Exchange(channel, router.keys(channel.name).take() or "", headers)
    upstream = await exchange.open(channel.count_path(target, route.upstream_model), body)
    try:
        if upstream.status in (404, 405) and target == "openai_responses":
            req = req or _decode(client, dialect, request.body, model)
            return Response(200, client.encode_count_response(estimate.input_tokens(req)), JSON)
        if not success(upstream.status):
            answer = await upstream_error(upstream, exchange, upstream_codec, client)
            if exchange.error is not None:
                tally(request).error_detail = exchange.error.detail
            return answer
        data = await exchange.read_body(upstream)
    finally:
        await exchange.close(upstream)
    if target == dialect:
        return Response(200, data, JSON)
    return Response(200, client.encode_count_response(upstream_codec.decode_count_response(data)), JSON)


def _decode(client: ModuleType, dialect: ir.Dialect, body: bytes, model: str) -> ir.Request:
    if dialect == "gemini":  # the model is in the path, not the body
        return client.decode_count_request(body, model=model)
    return client.decode_count_request(body)

"""OpenAI Embeddings and Gemini embedContent / batchEmbedContents, converted both ways.

=========================  ======================  ==========================================================
client                     channel                 what goes upstream
=========================  ======================  ==========================================================
OpenAI ``/v1/embeddings``  openai                  the body as sent (``model`` renamed to the channel's name)
OpenAI                     gemini                  ``:batchEmbedContents``, one request per input string
Gemini ``:embedContent``   gemini                  the body as sent, to the channel's model and api_version
Gemini (either verb)       openai                  ``/embeddings``, one input per content
either                     anthropic               nothing: a 400 ``model_not_supported``
=========================  ======================  ==========================================================

Billing: ``request.usage`` holds the input tokens, the upstream's ``prompt_tokens`` where it reports them
(OpenAI), else a token per four bytes of UTF-8 text (Gemini reports none). The hold is the request's input
estimate plus one output token (an embedding has no output).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects import ir
from relay.dialects.common import dumps_kept
from relay.dialects.gemini import codec as gemini
from relay.dialects.gemini import embeddings as embeddings_gemini
from relay.dialects.openai import embeddings as embeddings_openai
from relay.dialects.openai.chat import codec as openai_chat
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.upstream.channels import Channel

from .forward import fetch, forward

if TYPE_CHECKING:
    from relay.app import Relay

#: What an embeddings request holds for output (an embedding has none; the hold's ceiling is one token).
NO_OUTPUT: dict[str, Any] = {"max_output_tokens": 1}


def _unsupported(model: str) -> RelayError:
    return RelayError(
        400,
        "invalid_request",
        f"The model '{model}' does not support embeddings",
        code="model_not_supported",
        param="model",
    )


def _json(data: bytes) -> Response:
    return Response(200, data, ((b"content-type", b"application/json"),))


# ---- OpenAI ``/v1/embeddings`` ---------------------------------------------------------------------------


async def create_embeddings(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    await relay.gateway.keys.authenticate(request)  # a bad key is a 401 before any complaint about the body
    call = embeddings_openai.read_request(request.body)

    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        if channel.family == "openai":
            return await _openai_on_openai(request, call, channel, model, api_key)
        if channel.family == "gemini":
            return await _openai_on_gemini(request, call, channel, model, api_key)
        raise _unsupported(call.model)

    return await forward(relay, request, out, call.model, attempt, body=request.body, payload=NO_OUTPUT)


async def _openai_on_openai(
    request: Request, call: embeddings_openai.EmbeddingsRequest, channel: Channel, model: str, api_key: str
) -> Response:
    body = request.body if model == call.model else dumps_kept({**call.payload, "model": model})
    data = await fetch(request, channel, api_key, "/embeddings", body, source=openai_chat, client=openai_chat)
    if isinstance(data, Response):
        return data
    payload, vectors, tokens = embeddings_openai.read_answer(data, len(call.inputs))
    request.usage = ir.Usage(input_tokens=tokens)
    changed = call.encoding_given and embeddings_openai.reencoded(payload, vectors, call.encoding_format)
    aliased = model != call.model and "model" in payload
    if not changed and not aliased:
        return _json(data)
    if aliased:
        payload["model"] = call.model  # the name the client asked for, as a passthrough of generation does
    return _json(orjson.dumps(payload))


async def _openai_on_gemini(
    request: Request, call: embeddings_openai.EmbeddingsRequest, channel: Channel, model: str, api_key: str
) -> Response:
    if call.tokens:
        raise RelayError(
            400,
            "invalid_request",
            f"The model '{call.model}' embeds text only: 'input' must be a string or an array of strings, "
            "not token ids",
            param="input",
            code="unsupported_input",
        )
    unknown = [name for name in call.payload if name not in embeddings_openai.FIELDS]
    if unknown:  # an OpenAI-family channel judges these itself; Gemini has no counterpart
        raise embeddings_gemini.unsupported(unknown[0])
    texts = call.texts
    body = embeddings_gemini.batch_from_texts(texts, model, call.dimensions)
    path = embeddings_gemini.path(channel.config.api_version, model, "batchEmbedContents")
    data = await fetch(request, channel, api_key, path, body, source=gemini, client=openai_chat)
    if isinstance(data, Response):
        return data
    vectors = embeddings_gemini.read_batch_answer(data, len(texts))
    tokens = embeddings_gemini.estimate_tokens(texts)
    request.usage = ir.Usage(input_tokens=tokens)
    return _json(orjson.dumps(embeddings_openai.answer(vectors, call.model, tokens, call.encoding_format)))


# ---- Gemini ``:embedContent`` and ``:batchEmbedContents`` ----------------------------------------------


async def embed_content(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    await relay.gateway.keys.authenticate(request)  # a bad key is a 401 before any complaint about the body
    model = request.params["model"]
    return await _gemini(relay, request, out, embeddings_gemini.read_embed(request.body, model), model)


async def batch_embed_contents(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    await relay.gateway.keys.authenticate(request)
    model = request.params["model"]
    return await _gemini(relay, request, out, embeddings_gemini.read_batch(request.body, model), model)


async def _gemini(
    relay: Relay, request: Request, out: StreamResponse, call: embeddings_gemini.EmbedRequest, public: str
) -> Response | None:
    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        if channel.family == "gemini":
            return await _gemini_on_gemini(request, call, channel, model, api_key)
        if channel.family == "openai":
            return await _gemini_on_openai(request, call, channel, model, api_key)
        raise _unsupported(public)

    return await forward(relay, request, out, public, attempt, body=request.body, payload=NO_OUTPUT)


async def _gemini_on_gemini(
    request: Request, call: embeddings_gemini.EmbedRequest, channel: Channel, model: str, api_key: str
) -> Response:
    body = embeddings_gemini.passthrough_body(call, request.body, model)
    path = embeddings_gemini.path(channel.config.api_version, model, call.verb)
    data = await fetch(request, channel, api_key, path, body, source=gemini, client=gemini)
    if isinstance(data, Response):
        return data
    texts = [text for item in call.items for text in item.texts()]
    request.usage = ir.Usage(input_tokens=embeddings_gemini.estimate_tokens(texts))
    return _json(data)


async def _gemini_on_openai(
    request: Request, call: embeddings_gemini.EmbedRequest, channel: Channel, model: str, api_key: str
) -> Response:
    body = embeddings_gemini.openai_body(call, model)
    data = await fetch(request, channel, api_key, "/embeddings", body, source=openai_chat, client=gemini)
    if isinstance(data, Response):
        return data
    _, vectors, tokens = embeddings_openai.read_answer(data, len(call.items))
    request.usage = ir.Usage(input_tokens=tokens)
    return _json(orjson.dumps(embeddings_gemini.answer(vectors, call.batch)))


def _gemini_routes(prefix: str) -> tuple[Route, ...]:
    """Gemini's embedding verbs under ``prefix`` (``relay.routes`` puts them before Gemini's model lists, whose
    ``GET …/models/{model:path}`` would otherwise match ``…/models/M:embedContent`` first)."""
    return (
        Route("POST", prefix + "/models/{model}:embedContent", embed_content, "gemini"),
        Route("POST", prefix + "/models/{model}:batchEmbedContents", batch_embed_contents, "gemini"),
    )


#: This module's routes (``relay.routes.ROUTES`` takes them in).
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/embeddings", create_embeddings),
    Route("POST", "/embeddings", create_embeddings),
    Route("POST", "/v1beta/openai/embeddings", create_embeddings),
    *_gemini_routes("/v1beta"),
    *_gemini_routes("/v1"),
    *_gemini_routes("/gemini/{version}"),
)

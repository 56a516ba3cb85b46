"""Generation in every client dialect, relayed to a channel of any dialect, streaming and not.

One pipeline for the four client APIs (Chat Completions, Responses, Anthropic Messages, Gemini
generateContent): authenticate, resolve the model to a channel, then either pass the bytes through
(the channel speaks the client's dialect) or convert request, answer and stream through the IR.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from relay.dialects import gemini, ir, openai_chat, openai_responses
from relay.dialects.codecs import CODECS
from relay.dialects.common import load_object, refuse_ambiguous
from relay.dialects.convert import StreamConverter, convert_response
from relay.errors import RelayError
from relay.gateway.auth import Key, check_model
from relay.gateway.routing import resolve
from relay.http.messages import Request, Response, StreamResponse
from relay.upstream.channels import Channel
from relay.upstream.exchange import Exchange

from .passthrough import ArrayPassthrough, Passthrough
from .relayed import JSON, SSE, Relayed, success, upstream_error

if TYPE_CHECKING:
    from relay.app import Relay


@attrs.define
class Call:
    """What the pipeline knows of a client request before it picks a channel."""

    dialect: ir.Dialect
    body: bytes
    model: str
    stream: bool
    #: The parsed body (None for Gemini, whose model is in the URL and whose body passes unread).
    payload: dict[str, Any] | None = None
    #: Gemini streams: server-sent events (``?alt=sse``), else a JSON array streamed element by element.
    sse: bool = True


async def chat_completions(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key = relay.keyring.authenticate(request)
    info = openai_chat.read_request(request.body)
    call = Call("openai_chat", request.body, info.model, info.stream, info.payload)
    return await _generate(relay, request, out, key, call)


async def responses(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key = relay.keyring.authenticate(request)
    return await _generate(relay, request, out, key, _peek("openai_responses", request.body))


async def messages(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key = relay.keyring.authenticate(request)
    return await _generate(relay, request, out, key, _peek("anthropic", request.body))


async def generate_content(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key = relay.keyring.authenticate(request)
    load_object(request.body)
    call = Call("gemini", request.body, request.params["model"], False)
    return await _generate(relay, request, out, key, call)


async def stream_generate_content(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    key = relay.keyring.authenticate(request)
    load_object(request.body)
    sse = request.query_params().get("alt") == "sse"
    call = Call("gemini", request.body, request.params["model"], True, sse=sse)
    return await _generate(relay, request, out, key, call)


def _peek(dialect: ir.Dialect, body: bytes) -> Call:
    """The model and stream flag of a JSON body (the full decode waits until conversion needs it)."""
    payload = load_object(body)
    refuse_ambiguous(body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise RelayError(400, "invalid_request", "'model' must be a non-empty string", param="model")
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RelayError(400, "invalid_request", "'stream' must be a boolean", param="stream")
    return Call(dialect, body, model, bool(stream), payload)


async def _generate(relay: Relay, request: Request, out: StreamResponse, key: Key, call: Call) -> Response | None:
    check_model(key, call.model)
    route = resolve(relay.config.channels, call.model)
    channel = relay.channels[route.channel.name]
    target = channel.dialect_for(call.dialect)
    if target == call.dialect:
        return await _passthrough(request, out, call, channel, route.upstream_model)
    return await _convert(request, out, call, channel, target, route.upstream_model)


async def _passthrough(
    request: Request, out: StreamResponse, call: Call, channel: Channel, model: str
) -> Response | None:
    codec = CODECS[call.dialect]
    body = call.body
    if call.payload is not None and model != call.model:
        body = orjson.dumps({**call.payload, "model": model})
    exchange = Exchange(channel)
    relayed = Relayed(out, exchange, SSE if call.sse else JSON)
    path = channel.path(call.dialect, model, call.stream, sse=call.sse)
    watch: Passthrough | ArrayPassthrough | None = None
    try:
        upstream = await exchange.open(path, body)
        try:
            if not success(upstream.status_code):
                return await upstream_error(upstream, exchange, codec, codec, same=True)
            if not call.stream:
                data = await exchange.read_body(upstream)
                reader = codec.UsageReader()
                reader.feed(data)
                request.usage = reader.usage
                if model != call.model:
                    data = codec.rename_model(data, call.model, model)
                return Response(upstream.status_code, data, JSON)
            if call.sse:
                watch = Passthrough(call.dialect, codec, exchange, call.model, model)
            else:
                watch = ArrayPassthrough(codec, gemini.ArraySplitter(), exchange, call.model, model)
            try:
                await relayed.pump(upstream, watch.step, watch.end)
            finally:
                request.usage = watch.usage
        finally:
            await exchange.close(upstream)
    except RelayError as error:
        if not out.started:
            raise
        if isinstance(watch, ArrayPassthrough):
            await relayed.fail(codec.encode_stream_error(error, sse=False, after_element=watch.count > 0))
        else:
            await relayed.fail(codec.encode_stream_error(error))
    return None


async def _convert(
    request: Request, out: StreamResponse, call: Call, channel: Channel, target: ir.Dialect, model: str
) -> Response | None:
    client = CODECS[call.dialect]
    upstream_codec = CODECS[target]
    req = _decode(client, call)
    body = upstream_codec.encode_request(req, model)
    exchange = Exchange(channel)
    relayed = Relayed(out, exchange, SSE if call.sse else JSON)
    now = int(time.time())
    converter: StreamConverter | None = None
    try:
        upstream = await exchange.open(channel.path(target, model, req.stream), body)
        try:
            if not success(upstream.status_code):
                return await upstream_error(upstream, exchange, upstream_codec, client, same=False)
            if not req.stream:
                data, response = convert_response(await exchange.read_body(upstream), upstream_codec, client, req, now)
                request.usage = response.usage
                return Response(200, data, JSON)
            encoder = client.StreamEncoder(req, sse=call.sse) if call.dialect == "gemini" else client.StreamEncoder(req)
            converter = StreamConverter(upstream_codec.StreamDecoder(), encoder, now)
            try:
                await relayed.pump(upstream, lambda chunk: (converter.feed(chunk), converter.done), converter.close)
            finally:
                request.usage = converter.usage
        finally:
            await exchange.close(upstream)
    except RelayError as error:
        if not out.started:
            raise
        await relayed.fail(converter.fail(error) if converter is not None else client.encode_stream_error(error))
    return None


def _decode(client: ModuleType, call: Call) -> ir.Request:
    """The client's request as IR; a 400 naming what cannot be converted to another dialect."""
    if call.dialect == "gemini":
        return client.decode_request(call.body, model=call.model, stream=call.stream)
    req: ir.Request = client.decode_request(call.body)
    if call.dialect == "openai_responses":
        openai_responses.require_convertible(req)
    return req

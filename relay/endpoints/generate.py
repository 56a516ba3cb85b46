"""Generation in every client dialect, relayed to a channel of any dialect, streaming and not.

One pipeline for the four client APIs (Chat Completions, Responses, Anthropic Messages, Gemini
generateContent): authenticate, resolve the model to a channel, then either pass the bytes through
(the channel speaks the client's dialect) or convert request, answer and stream through the IR.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from relay.dialects import context_edits, estimate, foreign_proofs, hosted_tools, ir
from relay.dialects.anthropic import codec as anthropic
from relay.dialects.codecs import CODECS
from relay.dialects.common import dumps_kept, load_object, refuse_ambiguous
from relay.dialects.convert import StreamConverter, as_error, convert_response
from relay.dialects.gemini import codec as gemini
from relay.dialects.openai.chat import codec as openai_chat
from relay.dialects.openai.responses import codec as openai_responses
from relay.errors import RelayError
from relay.gateway.auth import check_model
from relay.gateway.routing import Candidate
from relay.gateway.tally import Tally
from relay.http.messages import Headers, Request, Response, StreamResponse
from relay.upstream.channels import Channel, forwarded
from relay.upstream.exchange import Exchange

from . import (
    background_responses,
    compact_responses,
    context_compaction,
    conversation_responses,
    gemini_images,
    kept_responses,
)
from .call import Call
from .ending import record_stream_end
from .failover import Attempt, Failover
from .kept_responses import Keeper
from .passthrough import ArrayPassthrough, Passthrough, parse_object
from .relayed import JSON, SSE, Relayed, Steps, success
from .unfinished import BYTES_PER_TOKEN, charged
from .upstream_error import error_answer

if TYPE_CHECKING:
    from relay.app import Relay


async def chat_completions(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    pin = await authenticate(relay, request)
    return await chat_completions_of_key(relay, request, out, pin)


async def chat_completions_of_key(
    relay: Relay, request: Request, out: StreamResponse, pin: str | None
) -> Response | None:
    """Chat Completions for a request whose key is already in its tally: the endpoint's own, after
    ``authenticate``, and the dashboard's playground (relay.endpoints.playground), which bills a key it names."""
    return await _generate(relay, request, out, _chat_call(relay, request.body), pin)


def _chat_call(relay: Relay, body: bytes) -> Call:
    """A Chat Completions call (no local of the endpoint's frame keeps the body or payload past ``release``)."""
    body = with_default_model(relay, body)
    info = openai_chat.read_request(body)
    return Call("openai_chat", body, info.model, info.stream, info.payload)


async def responses(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    """``POST /v1/responses``, with ``previous_response_id`` and ``store`` on every channel (``kept_responses``)."""
    pin = await authenticate(relay, request)
    call = _peek(relay, "openai_responses", request.body)
    key = tally(request).key
    assert key is not None and call.payload is not None
    background = background_responses.requested(call.payload)
    resolved, conversation = await conversation_responses.resolve(relay, key.name, call.payload)
    keeper = await kept_responses.prepare(relay, key.name, compact_responses.expand(resolved))
    keeper.conversation = conversation
    del resolved
    payload = keeper.take()
    if payload is not call.payload:  # the chain Relay keeps, put before the request's input
        call = attrs.evolve(call, body=dumps_kept(payload), payload=payload)
    del payload
    return await _generate(relay, request, out, call, keeper.pin or pin, keeper, background)


async def messages(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    pin = await authenticate(relay, request)
    return await _generate(relay, request, out, _peek(relay, "anthropic", request.body), pin)


async def generate_content(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    pin = await authenticate(relay, request)
    call = Call("gemini", request.body, request.params["model"], False, seen=load_object(request.body))
    return await _generate(relay, request, out, call, pin)


async def stream_generate_content(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    pin = await authenticate(relay, request)
    sse = request.query_params().get("alt") == "sse"
    call = Call("gemini", request.body, request.params["model"], True, sse=sse, seen=load_object(request.body))
    return await _generate(relay, request, out, call, pin)


async def authenticate(relay: Relay, request: Request) -> str | None:
    """The key (kept in the request's tally) and the channel it pins, if any."""
    key, pin = await relay.gateway.keys.authenticate(request)
    tally(request).key = key
    return pin


def tally(request: Request) -> Tally:
    return request.record  # type: ignore[return-value]


def with_default_model(relay: Relay, body: bytes) -> bytes:
    """``body`` with ``[server] default_model`` filled in when it names no model (and one is set)."""
    default = relay.config.server.default_model
    if not default:
        return body
    payload = load_object(body)
    if payload.get("model") in (None, ""):
        return dumps_kept({**payload, "model": default})
    return body


def _asks_usage(payload: dict[str, Any] | None) -> bool:
    """Whether a Chat Completions stream request asks for the usage chunk (``stream_options.include_usage``),
    so that Relay need not ask for it."""
    options = payload.get("stream_options") if payload is not None else None
    # A stream_options that is not an object is the upstream's to refuse: passed on as it is.
    return not isinstance(options, dict | None) or (isinstance(options, dict) and options.get("include_usage") is True)


def _peek(relay: Relay, dialect: ir.Dialect, body: bytes) -> Call:
    """The model and stream flag of a JSON body (the full decode waits until conversion needs it)."""
    payload = load_object(body)
    refuse_ambiguous(body)
    default = relay.config.server.default_model
    if default and payload.get("model") in (None, ""):
        payload = {**payload, "model": default}
        body = dumps_kept(payload)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise RelayError(400, "invalid_request", "'model' must be a non-empty string", param="model")
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RelayError(400, "invalid_request", "'stream' must be a boolean", param="stream")
    return Call(dialect, body, model, bool(stream), payload)


async def _generate(
    relay: Relay,
    request: Request,
    out: StreamResponse,
    call: Call,
    pin: str | None,
    keeper: Keeper | None = None,
    background: bool = False,
) -> Response | None:
    gateway = relay.gateway
    record = tally(request)
    key = record.key
    assert key is not None
    model = gateway.router.model(call.model)
    record.requested_model = model
    record.stream = call.stream
    check_model(key, model)
    plan = gateway.router.plan(model, key.group, pin)
    if background and keeper is not None and background_responses.converted(relay, plan[0]):
        return await _background(relay, request, out, call, plan, keeper)
    request.retain(call)  # the body and payload, kept for failover until the answer starts
    units = gemini_images.hold(call.seen)  # Gemini image output: one image per candidate held
    await gateway.admit(record, request.id, call.body, call.payload or call.seen, plan, units)
    return await Failover(relay, request, out, plan, _generation(request, out, call, keeper)).run()


async def _background(
    relay: Relay, request: Request, out: StreamResponse, call: Call, plan: list[Candidate], keeper: Keeper
) -> Response | None:
    """``background: true`` where Relay keeps the state: a job on the plan's converted channels
    (``background_responses``)."""
    if keeper.unresolved:  # a response Relay does not keep, continued on a channel that keeps nothing
        assert keeper.previous is not None
        raise kept_responses.not_found(keeper.previous, "previous_response_id")
    assert call.payload is not None
    plan = [candidate for candidate in plan if background_responses.converted(relay, candidate)]

    def generation(job: Request, job_out: StreamResponse, body: bytes, payload: dict[str, Any]) -> Attempt:
        return _generation(job, job_out, Call("openai_responses", body, call.model, True, payload), None)

    return await background_responses.detach(relay, request, out, call.payload, plan, keeper, generation)


def _generation(request: Request, out: StreamResponse, call: Call, keeper: Keeper | None) -> Attempt:
    """One attempt at generating ``call`` on a channel: passed through when the channel speaks the client's
    dialect, else converted; ``keeper`` (Responses) keeps what it answered."""

    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        target = channel.dialect_for(call.dialect)
        if target != call.dialect and call.dialect == "openai_responses" and call.payload is not None:
            if context_compaction.threshold(call.payload) is not None:  # Relay compacts, where it converts
                if keeper is not None:
                    keeper.begin(channel.name, converted=True)  # a previous response it cannot see: 404 first
                done = await context_compaction.compacted(request, call, channel, target, model, api_key)
                if isinstance(done, Response):
                    return done
                answer = await _converted(request, out, done[0], channel, target, model, api_key, keeper)
                request.usage = context_compaction.added(done[1], request.usage)  # the summary is charged too
                return answer
        if keeper is None:
            if target == call.dialect:
                return await _passthrough(request, out, call, channel, model, api_key)
            return await _convert(request, out, call, channel, target, model, api_key)
        keeper.begin(channel.name, converted=target != call.dialect)
        if target == call.dialect:
            answer = await _passthrough(request, out, call, channel, model, api_key, keeper.watch)
        else:
            answer = await _convert(request, out, call, channel, target, model, api_key, keeper.watch)
        return await keeper.settle(answer)

    return attempt


async def _converted(
    request: Request,
    out: StreamResponse,
    call: Call,
    channel: Channel,
    target: ir.Dialect,
    model: str,
    api_key: str,
    keeper: Keeper | None,
) -> Response | None:
    """``call`` converted for ``channel``, ``keeper`` (if any, its attempt begun) keeping what it answered."""
    if keeper is None:
        return await _convert(request, out, call, channel, target, model, api_key)
    return await keeper.settle(await _convert(request, out, call, channel, target, model, api_key, keeper.watch))


async def _passthrough(
    request: Request,
    out: StreamResponse,
    call: Call,
    channel: Channel,
    model: str,
    api_key: str,
    watch_steps: Callable[[Steps], Steps] | None = None,
) -> Response | None:
    codec = CODECS[call.dialect]
    record = tally(request)
    scrubbed = _without_foreign_proofs(call)
    if scrubbed is not call:
        call = scrubbed
        request.retain(call)
    body = call.body
    body_tokens = len(body) // BYTES_PER_TOKEN  # the input estimate of a stream cut short, once the body is gone
    hide_usage = call.dialect == "openai_chat" and call.stream and not _asks_usage(call.payload)
    if hide_usage:  # the usage is what the request is charged: ask for it, and keep it from the client
        assert call.payload is not None
        options = call.payload.get("stream_options", {})
        body = orjson.dumps({**call.payload, "model": model, "stream_options": {**options, "include_usage": True}})
    elif call.payload is not None and model != call.model:
        body = orjson.dumps({**call.payload, "model": model})
    exchange = Exchange(channel, api_key, forwarded(request.headers, call.dialect))  # Anthropic's betas
    relayed = Relayed(out, exchange, SSE if call.sse else JSON)
    path = channel.path(call.dialect, model, call.stream, sse=call.sse)
    watch: Passthrough | ArrayPassthrough | None = None
    failure: BaseException | None = None
    try:
        upstream = await exchange.open(path, body)
        del body  # sent: a stream must not keep it (orjson's output holds 32 KiB whatever its length)
        try:
            record.upstream_status = upstream.status
            if not success(upstream.status):
                return await error_answer(record, upstream, exchange, codec, codec)
            if not call.stream:
                data = await exchange.read_body(upstream)
                answer = parse_object(data, exchange)  # a 200 must carry the dialect's JSON answer
                reader = codec.UsageReader()
                reader.feed(data)
                request.usage = reader.usage
                if call.dialect == "gemini":  # images made are billed beside the tokens
                    request.usage = gemini_images.billed(request.usage, gemini_images.count(answer))
                if model != call.model:
                    data = codec.rename_model(data, call.model, model)
                record.end = "completed"
                return Response(upstream.status, data, JSON)
            if call.sse:
                watch = Passthrough(call.dialect, codec, exchange, call.model, model, hide_usage=hide_usage)
            else:
                watch = ArrayPassthrough(codec, gemini.ArraySplitter(), exchange, call.model, model)
            await relayed.pump(upstream, watch_steps(watch) if watch_steps is not None else watch)
        finally:
            await exchange.close(upstream)
    except RelayError as error:
        failure = error
        if not out.started:
            raise
        if isinstance(watch, ArrayPassthrough):
            await relayed.fail(codec.encode_stream_error(error, sse=False, after_element=watch.count > 0))
        else:
            await relayed.fail(codec.encode_stream_error(error))
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if watch is not None:
            finished = relayed.finished and watch.failed is None
            request.usage = charged(watch.usage, finished, watch.produced, lambda: body_tokens)
            request.usage = gemini_images.billed(request.usage, watch.images)
            record_stream_end(record, relayed.finished, failure, watch.failed)
    return None


def _without_foreign_proofs(call: Call) -> Call:
    """``call`` with the reasoning envelopes in its body unwrapped or dropped (``foreign_proofs``): other
    providers' proofs never pass through; the body is the same bytes when it holds none."""
    scrubbed = foreign_proofs.in_body(call.dialect, call.body, call.payload)  # (Gemini's payload: read there)
    if scrubbed is None:
        return call
    body, cleaned = scrubbed
    return attrs.evolve(call, body=body, payload=cleaned if call.payload is not None else None)


async def _convert(
    request: Request,
    out: StreamResponse,
    call: Call,
    channel: Channel,
    target: ir.Dialect,
    model: str,
    api_key: str,
    watch_steps: Callable[[Steps], Steps] | None = None,
) -> Response | None:
    client = CODECS[call.dialect]
    upstream_codec = CODECS[target]
    record = tally(request)
    req = _decode(client, call)
    notice = _dropped_tools(record, req, target)
    body = upstream_codec.encode_request(req, model)
    exchange = Exchange(channel, api_key, anthropic.upstream_headers(req) if target == "anthropic" else ())
    relayed = Relayed(out, exchange, (SSE if call.sse else JSON) + notice)
    now = int(time.time())
    converter: StreamConverter | None = None
    failure: BaseException | None = None
    try:
        upstream = await exchange.open(channel.path(target, model, req.stream), body)
        del body  # sent: a stream must not keep it (orjson's output holds 32 KiB whatever its length)
        try:
            record.upstream_status = upstream.status
            if not success(upstream.status):
                return await error_answer(record, upstream, exchange, upstream_codec, client)
            if not req.stream:
                data, response = convert_response(await exchange.read_body(upstream), upstream_codec, client, req, now)
                request.usage = response.usage
                record.end = "completed"
                return Response(200, data, JSON + notice)
            encoder = client.StreamEncoder(req, sse=call.sse) if call.dialect == "gemini" else client.StreamEncoder(req)
            converter = StreamConverter(upstream_codec.StreamDecoder(), encoder, now)
            input_estimate = estimate.input_tokens(req)  # for a stream cut short: the IR (the prompt) goes now
            del req
            steps = Converting(converter)
            await relayed.pump(upstream, watch_steps(steps) if watch_steps is not None else steps)
        finally:
            await exchange.close(upstream)
    except RelayError as error:
        failure = error
        if not out.started:
            raise
        await relayed.fail(converter.fail(error) if converter is not None else client.encode_stream_error(error))
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if converter is not None:
            event = converter.failed
            failed = as_error(event, detail=f"channel '{channel.name}': {event.message}") if event else None
            finished = relayed.finished and failed is None
            request.usage = charged(converter.reported, finished, converter.produced, lambda: input_estimate)
            record_stream_end(record, relayed.finished, failure, failed)
    return None


def _dropped_tools(record: Tally, req: ir.Request, target: ir.Dialect) -> Headers:
    """The header naming the hosted tools the upstream will not run (noted in the request log too); a 400 when
    the tool choice forces one of them (``relay.dialects.hosted_tools``)."""
    dropped = hosted_tools.dropped(req, target)
    if not dropped:
        return ()
    value = hosted_tools.header_value(dropped)
    record.error_detail = f"tools not sent to the {target} upstream (no equivalent there): {value.decode()}"
    return ((hosted_tools.HEADER, value),)


class Converting:
    """The steps of a converted stream (``Relayed.pump``): each upstream chunk through the converter."""

    __slots__ = ("converter",)

    def __init__(self, converter: StreamConverter) -> None:
        self.converter = converter

    def step(self, chunk: bytes) -> tuple[bytes, bool]:
        return self.converter.feed(chunk), self.converter.done

    def end(self) -> bytes:
        return self.converter.close()


def _decode(client: ModuleType, call: Call) -> ir.Request:
    """The client's request as IR; a 400 naming what cannot be converted to another dialect."""
    if call.dialect == "gemini":
        req: ir.Request = client.decode_request(call.body, model=call.model, stream=call.stream)
    else:
        req = client.decode_request(call.body)
    if call.dialect == "openai_responses":
        openai_responses.require_convertible(req)
    elif call.dialect == "anthropic":
        req = context_edits.apply(req)  # what an Anthropic upstream would do, done here for another
    client.require_kept(req)  # a field the conversion would drop is a 400, never lost silently
    return req

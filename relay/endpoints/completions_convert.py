"""Legacy Completions on a channel of another API: each (prompt, sample) one Chat request converted to it.

Choice ``i * n + j`` is sample ``j`` of prompt ``i`` (OpenAI's order). Each is a Chat request
(``relay.dialects.openai.completions.request.chat_body``) decoded to the IR (the Chat conversion's checks apply)
and encoded in the channel's API; the calls run one after another on the same channel and upstream key. A whole
answer is written once every call answered; a stream relays each call's stream in turn, converted chunk by chunk
(``relay.dialects.convert.StreamConverter`` with ``ChoiceEncoder``), then the usage chunk and ``data: [DONE]``.

An upstream error before anything reached the client is the attempt's answer (failover may try the next channel;
what earlier calls used is charged only if no other attempt answers). After the stream started it is the
stream's last frame, in the client's shape.
"""

from __future__ import annotations

import time

from relay.dialects import estimate, ir
from relay.dialects.anthropic import codec as anthropic
from relay.dialects.codecs import CODECS
from relay.dialects.convert import StreamConverter, as_error
from relay.dialects.openai.chat import codec as openai_chat
from relay.dialects.openai.completions.request import CompletionRequest, chat_body
from relay.dialects.openai.completions.response import (
    DONE,
    ChoiceEncoder,
    Chunks,
    add,
    choice,
    completion,
    text_of,
)
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.upstream.channels import Channel
from relay.upstream.exchange import Exchange

from .ending import record_stream_end
from .forward import tally
from .generate import Converting
from .relayed import JSON, SSE, Relayed, success
from .unfinished import charged
from .upstream_error import error_answer


async def converted(
    request: Request,
    out: StreamResponse,
    req: CompletionRequest,
    channel: Channel,
    target: ir.Dialect,
    model: str,
    api_key: str,
) -> Response | None:
    """The completion of ``req`` by ``channel``, which speaks ``target``: a whole answer, or None once streamed."""
    decoded: dict[str, ir.Request] = {}
    for prompt in req.prompts:  # every prompt checked before the first call
        if prompt not in decoded:
            chat = openai_chat.decode_request(chat_body(req, prompt))
            openai_chat.require_kept(chat)
            decoded[prompt] = chat
    calls = [(i * req.n + j, prompt) for i, prompt in enumerate(req.prompts) for j in range(req.n)]
    if req.stream:
        return await _stream(request, out, req, channel, target, model, api_key, calls, decoded)
    return await _whole(request, req, channel, target, model, api_key, calls, decoded)


def _exchange(channel: Channel, api_key: str, target: ir.Dialect, chat: ir.Request) -> Exchange:
    return Exchange(channel, api_key, anthropic.upstream_headers(chat) if target == "anthropic" else ())


async def _whole(
    request: Request,
    req: CompletionRequest,
    channel: Channel,
    target: ir.Dialect,
    model: str,
    api_key: str,
    calls: list[tuple[int, str]],
    decoded: dict[str, ir.Request],
) -> Response:
    codec = CODECS[target]
    record = tally(request)
    now = int(time.time())
    choices = []
    usage: ir.Usage | None = None
    first: ir.Response | None = None
    for index, prompt in calls:
        chat = decoded[prompt]
        exchange = _exchange(channel, api_key, target, chat)
        upstream = await exchange.open(channel.path(target, model, False), codec.encode_request(chat, model))
        try:
            record.upstream_status = upstream.status
            if not success(upstream.status):
                request.usage = usage  # what the earlier calls used, should no other attempt answer
                return await error_answer(record, upstream, exchange, codec, openai_chat)
            data = await exchange.read_body(upstream)
        finally:
            await exchange.close(upstream)
        response = codec.decode_response(data)
        first = first or response
        usage = add(usage, response.usage)
        choices.append(choice(index, (prompt if req.echo else "") + text_of(response), response.finish_reason))
    assert first is not None
    request.usage = usage
    record.end = "completed"
    return Response(200, completion(first.id, first.created or now, req.model, choices, usage), JSON)


async def _stream(
    request: Request,
    out: StreamResponse,
    req: CompletionRequest,
    channel: Channel,
    target: ir.Dialect,
    model: str,
    api_key: str,
    calls: list[tuple[int, str]],
    decoded: dict[str, ir.Request],
) -> Response | None:
    codec = CODECS[target]
    record = tally(request)
    now = int(time.time())
    chunks = Chunks(req.model, now, f"cmpl-{request.id}")
    input_estimate = sum(estimate.input_tokens(decoded[prompt]) for _, prompt in calls)
    used: ir.Usage | None = None  # what the calls done so far reported
    made = 0  # and the bytes of output they produced
    converter: StreamConverter | None = None  # the call under way
    relayed: Relayed | None = None
    finished = False
    failure: BaseException | None = None
    try:
        for index, prompt in calls:
            chat = decoded[prompt]
            exchange = _exchange(channel, api_key, target, chat)
            relayed = Relayed(out, exchange, SSE)
            upstream = await exchange.open(channel.path(target, model, True), codec.encode_request(chat, model))
            try:
                record.upstream_status = upstream.status
                if not success(upstream.status):
                    answer = await error_answer(record, upstream, exchange, codec, openai_chat)
                    if not out.started:
                        request.usage = used
                        return answer
                    assert exchange.error is not None
                    raise exchange.error
                encoder = ChoiceEncoder(chunks, index, prompt if req.echo else None)
                converter = StreamConverter(codec.StreamDecoder(), encoder, now)
                await relayed.pump(upstream, Converting(converter))
            finally:
                await exchange.close(upstream)
            if converter.failed is not None:
                break  # its error frame ended the stream
            used, made, converter = add(used, converter.reported), made + converter.produced, None
        else:
            assert relayed is not None
            await relayed.send((chunks.usage(used) if req.include_usage else b"") + DONE, exchange.deadline)
            finished = True
    except RelayError as error:
        failure = error
        if not out.started:
            raise
        assert relayed is not None
        if converter is not None and converter.emitted:
            await relayed.fail(converter.fail(error))
        else:  # between two calls, or before this call's first chunk
            await relayed.fail(openai_chat.encode_stream_error(error))
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if out.started and relayed is not None:
            event = converter.failed if converter is not None else None
            failed = as_error(event, detail=f"channel '{channel.name}': {event.message}") if event else None
            if converter is not None:
                used, made = add(used, converter.reported), made + converter.produced
            relayed.finished = finished
            request.usage = charged(used, finished and failed is None, made, lambda: input_estimate)
            record_stream_end(record, relayed.finished, failure, failed)
    return None

"""OpenAI's legacy Completions (``/v1/completions``), passed through or converted to Chat.

An OpenAI channel (Chat API) gets the request as it came (its model renamed when the channel knows it by another
name) at ``POST /completions``; its answer, or its stream frame by frame, comes back unchanged but for the model
name. A stream always asks the upstream for the usage chunk, which is what the request is charged; the client
sees it only when it asked for it (``stream_options.include_usage``), as for Chat.

Any other channel (Anthropic, Gemini, an OpenAI one with ``api = "responses"``) is sent each (prompt, sample) as
a Chat request converted to its API (``relay.endpoints.completions_convert``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects.openai.chat import codec as openai_chat
from relay.dialects.openai.completions.request import CompletionRequest, read_request, require_convertible
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.upstream.channels import Channel
from relay.upstream.exchange import Exchange

from .completions_convert import converted
from .ending import record_stream_end
from .failover import Attempt
from .forward import forward, tally
from .generate import with_default_model
from .passthrough import Passthrough, parse_object
from .relayed import JSON, SSE, Relayed, success
from .unfinished import BYTES_PER_TOKEN, charged
from .upstream_error import error_answer

if TYPE_CHECKING:
    from relay.app import Relay

#: Where an OpenAI channel answers Completions, under its base URL (which ends in ``/v1``).
PATH = "/completions"


async def completions(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    await relay.gateway.keys.authenticate(request)  # a bad key is a 401 before any complaint about the body
    body = with_default_model(relay, request.body)
    req = read_request(body)
    attempt = _attempt(request, out, req, body)
    return await forward(relay, request, out, req.model, attempt, body=body, payload=req.payload, stream=req.stream)


def _attempt(request: Request, out: StreamResponse, req: CompletionRequest, body: bytes) -> Attempt:
    async def attempt(channel: Channel, model: str, api_key: str) -> Response | None:
        target = channel.dialect_for("openai_chat")
        if target == "openai_chat":
            return await _passthrough(request, out, req, body, channel, model, api_key)
        require_convertible(req)
        return await converted(request, out, req, channel, target, model, api_key)

    return attempt


def produced(chunk: dict[str, Any]) -> int:
    """Bytes of text one Completions chunk carries (to charge a stream cut short)."""
    choices = chunk.get("choices")
    return sum(
        len(c["text"].encode())
        for c in (choices if isinstance(choices, list) else ())
        if isinstance(c, dict) and isinstance(c.get("text"), str)
    )


class CompletionPassthrough(Passthrough):
    """A Completions stream relayed as it comes: Chat's stream machinery (``data: [DONE]`` ends it, an
    ``{"error": …}`` event is its last word, the usage chunk Relay asked for is hidden), its text counted."""

    def __init__(self, exchange: Exchange, public: str, upstream: str, *, hide_usage: bool) -> None:
        super().__init__("openai_chat", openai_chat, exchange, public, upstream, hide_usage=hide_usage)
        self._output = produced


async def _passthrough(
    request: Request,
    out: StreamResponse,
    req: CompletionRequest,
    body: bytes,
    channel: Channel,
    model: str,
    api_key: str,
) -> Response | None:
    record = tally(request)
    payload = req.payload
    hide_usage = req.stream and not req.include_usage
    if hide_usage:  # the usage is what the request is charged: ask for it, and keep it from the client
        options = payload.get("stream_options") or {}
        body = orjson.dumps({**payload, "model": model, "stream_options": {**options, "include_usage": True}})
    elif model != req.model:
        body = orjson.dumps({**payload, "model": model})
    body_tokens = len(body) // BYTES_PER_TOKEN
    exchange = Exchange(channel, api_key)
    relayed = Relayed(out, exchange, SSE)
    watch: CompletionPassthrough | None = None
    failure: BaseException | None = None
    try:
        upstream = await exchange.open(PATH, body)
        try:
            record.upstream_status = upstream.status
            if not success(upstream.status):
                return await error_answer(record, upstream, exchange, openai_chat, openai_chat)
            if not req.stream:
                data = await exchange.read_body(upstream)
                parse_object(data, exchange)  # a 200 must carry a JSON answer
                reader = openai_chat.UsageReader()
                reader.feed(data)
                request.usage = reader.usage
                if model != req.model:
                    data = openai_chat.rename_model(data, req.model, model)
                record.end = "completed"
                return Response(upstream.status, data, JSON)
            watch = CompletionPassthrough(exchange, req.model, model, hide_usage=hide_usage)
            await relayed.pump(upstream, watch)
        finally:
            await exchange.close(upstream)
    except RelayError as error:
        failure = error
        if not out.started:
            raise
        await relayed.fail(openai_chat.encode_stream_error(error))
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if watch is not None:
            finished = relayed.finished and watch.failed is None
            request.usage = charged(watch.usage, finished, watch.produced, lambda: body_tokens)
            record_stream_end(record, relayed.finished, failure, watch.failed)
    return None


#: This module's routes (``relay.routes.ROUTES`` takes them in).
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/completions", completions),
    Route("POST", "/completions", completions),
)

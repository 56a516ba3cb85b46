"""OpenAI's Images API: generations, edits and variations, on OpenAI-family channels and (generations) Gemini.

- OpenAI-family channels: passed through. A JSON body goes as it came, or with ``model`` set to the channel's
  name for the model when that differs; a form goes as it came (the client's content type), or written again
  with that ``model`` field. ``stream: true`` answers are relayed event by event (``images_stream``).
- Gemini channels (generations only): one ``generateContent`` with image output per image asked for
  (``relay.dialects.gemini.images``), the answers' images returned as ``b64_json`` (or ``data:`` URLs when
  ``url`` was asked); ``stream: true`` gets one ``image_generation.completed`` event per image.
- Anthropic channels make no images, and edits and variations need an OpenAI-family channel: a 400.

Billing: the images made (``ir.Usage.images`` at ``SIZE`` or ``SIZE/QUALITY``) and the tokens the upstream
reports (gpt-image's ``usage``, Gemini's ``usageMetadata``); ``[[prices]]`` image prices and token prices add.
The hold covers ``n`` images at the size asked for and ``n`` times ``HELD_TOKENS_PER_IMAGE`` output tokens.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from relay.dialects import ir
from relay.dialects.common import json_body, load_object
from relay.dialects.gemini import codec as gemini
from relay.dialects.gemini import images as images_gemini
from relay.dialects.openai.chat import codec as openai_chat
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.upstream.channels import Channel
from relay.upstream.exchange import Exchange

from .ending import record_stream_end
from .forward import fetch, forward, tally
from .images_request import DEFAULT_MODEL, ImageCall, Kind, read_form, read_generation
from .images_stream import ImageStream
from .multipart_form import encode
from .relayed import JSON, SSE, Relayed, success
from .upstream_error import error_answer

if TYPE_CHECKING:
    from relay.app import Relay

#: Output tokens held per image asked for (priced only where ``[[prices]]`` gives the model an output price):
#: a gpt-image-1 image of the highest quality at its largest size.
HELD_TOKENS_PER_IMAGE = 6240


async def generations(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    await relay.gateway.keys.authenticate(request)  # a bad key is a 401 before any complaint about the body
    return await forward_images(relay, request, out, read_generation(request.body))


async def edits(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    await relay.gateway.keys.authenticate(request)
    return await forward_images(relay, request, out, _form_call(request, "edits"))


async def variations(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    await relay.gateway.keys.authenticate(request)
    return await forward_images(relay, request, out, _form_call(request, "variations"))


def _form_call(request: Request, kind: Kind) -> ImageCall:
    content_type = next((v for k, v in request.headers if k == b"content-type"), b"").decode("latin-1")
    return read_form(kind, request.body, content_type)


async def forward_images(relay: Relay, request: Request, out: StreamResponse, call: ImageCall) -> Response | None:
    """One Images API call (generation, edit or variation) through the channels that serve its model, with
    failover; also the task endpoint ``/v1/render``'s way to an image."""

    async def attempt(channel: Channel, upstream_model: str, api_key: str) -> Response | None:
        if channel.family == "openai":
            return await _openai(request, out, call, channel, upstream_model, api_key)
        if channel.family == "gemini" and call.kind == "generations":
            return await _gemini(request, call, channel, upstream_model, api_key)
        what = "makes no images" if channel.family == "anthropic" else f"makes no image {call.kind}"
        raise RelayError(
            400,
            "invalid_request",
            f"the model '{call.model}' is served by a {channel.family.capitalize()} channel, which {what}; "
            "image generations need an OpenAI or Gemini channel, edits and variations an OpenAI one",
            param="model",
            code="unsupported_model",
        )

    held = call.body if call.payload is not None else call.prompt.encode()  # a form's files are not text
    return await forward(
        relay,
        request,
        out,
        call.model,
        attempt,
        body=held,
        payload={"max_output_tokens": call.n * HELD_TOKENS_PER_IMAGE},
        stream=call.stream,
        units=ir.Usage(images=call.n, image_size=call.billed_size()),
    )


# ---- OpenAI-family channels ------------------------------------------------------------------------


def _upstream_body(call: ImageCall, upstream_model: str) -> tuple[bytes, str | None]:
    """The body for the upstream and its content type (None: JSON, the channel's default)."""
    same = upstream_model == call.model if call.named else upstream_model == DEFAULT_MODEL
    json = None if call.payload is not None else call.content_type
    if same:
        return call.body, json
    if call.payload is not None:
        return json_body({**call.payload, "model": upstream_model}), None
    assert call.form is not None
    return encode(call.form.replaced("model", upstream_model).parts)


async def _openai(
    request: Request, out: StreamResponse, call: ImageCall, channel: Channel, upstream_model: str, api_key: str
) -> Response | None:
    body, content_type = _upstream_body(call, upstream_model)
    path = "/images/" + call.kind
    if not call.stream:
        data = await fetch(
            request,
            channel,
            api_key,
            path,
            body,
            source=openai_chat,
            client=openai_chat,
            content_type=content_type,
        )
        if isinstance(data, Response):
            return data
        request.usage = _usage_of(call, load_object(data, upstream=True))
        return Response(200, data, JSON)
    return await _stream(request, out, call, Exchange(channel, api_key), path, body, content_type)


def _usage_of(call: ImageCall, payload: dict[str, Any]) -> ir.Usage:
    """What an Images answer is billed: its images at the size and quality it reports, and its tokens."""
    data = payload.get("data")
    usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
    size = payload.get("size") if isinstance(payload.get("size"), str) else None
    quality = payload.get("quality") if isinstance(payload.get("quality"), str) else None
    return ir.Usage(
        input_tokens=_count(usage.get("input_tokens")),
        output_tokens=_count(usage.get("output_tokens")),
        images=len(data) if isinstance(data, list) else 0,
        image_size=call.billed_size(size, quality),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


async def _stream(
    request: Request,
    out: StreamResponse,
    call: ImageCall,
    exchange: Exchange,
    path: str,
    body: bytes,
    content_type: str | None,
) -> Response | None:
    """A ``stream: true`` request: the upstream's events relayed as they come."""
    record = tally(request)
    relayed = Relayed(out, exchange, SSE)
    watch: ImageStream | None = None
    failure: BaseException | None = None
    try:
        upstream = await exchange.open(path, body, content_type=content_type)
        try:
            record.upstream_status = upstream.status
            if not success(upstream.status):
                return await error_answer(record, upstream, exchange, openai_chat, openai_chat)
            if not _is_sse(upstream.headers):  # the upstream answered whole: relayed whole
                data = await exchange.read_body(upstream)
                request.usage = _usage_of(call, load_object(data, upstream=True))
                record.end = "completed"
                return Response(200, data, JSON)
            watch = ImageStream(exchange, call.n)
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
            request.usage = watch.usage(call.billed_size(watch.size, watch.quality))
            record_stream_end(tally(request), relayed.finished, failure, watch.failed)
    return None


def _is_sse(headers: Any) -> bool:
    return any(k.lower() == b"content-type" and v.lower().startswith(b"text/event-stream") for k, v in headers)


# ---- Gemini channels -------------------------------------------------------------------------------


async def _gemini(
    request: Request, call: ImageCall, channel: Channel, upstream_model: str, api_key: str
) -> Response | None:
    """``n`` images, one ``generateContent`` each (Gemini's image models make one candidate a request)."""
    body = images_gemini.encode_request(call.prompt, call.size)
    path = f"/{channel.config.api_version}/models/{quote(upstream_model, safe='')}:generateContent"
    pictures: list[images_gemini.Picture] = []
    input_tokens = output_tokens = 0
    for _ in range(call.n):
        data = await fetch(request, channel, api_key, path, body, source=gemini, client=openai_chat)
        if isinstance(data, Response):
            return data
        made = images_gemini.decode_response(data)
        pictures.append(made.pictures[0])
        input_tokens += made.usage.input_tokens
        output_tokens += made.usage.output_tokens
    tokens = ir.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    request.usage = ir.Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        images=len(pictures),
        image_size=call.billed_size(),
    )
    created = int(time.time())
    if call.stream:
        return Response(200, images_gemini.completed_events(pictures, tokens, created), SSE)
    answer = images_gemini.images_answer(pictures, tokens, call.response_format, created)
    return Response.json(200, answer)


#: This module's routes (``relay.routes.ROUTES`` takes them in).
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/images/generations", generations),
    Route("POST", "/images/generations", generations),
    Route("POST", "/v1/images/edits", edits, uploads=True),
    Route("POST", "/images/edits", edits, uploads=True),
    Route("POST", "/v1/images/variations", variations, uploads=True),
    Route("POST", "/images/variations", variations, uploads=True),
)

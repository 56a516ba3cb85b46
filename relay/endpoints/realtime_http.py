"""The Realtime API's plain HTTP endpoints, relayed to an OpenAI-compatible channel with the key's auth:
``POST /v1/realtime/client_secrets`` (ephemeral keys, GA), ``POST /v1/realtime/sessions`` (beta) and
``POST /v1/realtime/calls`` (WebRTC: an SDP offer in, the SDP answer out).

Each is routed by its model: ``session.model`` in a client secret's body, ``model`` in a beta session's, and for
a call ``?model=`` or the ``session`` part of its multipart form. The model is renamed to the channel's name for it
and the upstream's answer reaches the client as it is (its status and content type; a call's ``Location`` too).
Nothing is billed here: what costs is the session, and a session opened with the upstream's ephemeral key (or over
WebRTC) goes to the provider directly, not through Relay (docs/apis/realtime.md says what that means for an
operator).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from relay.dialects.openai.chat import codec as openai_chat
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.upstream.channels import Channel
from relay.upstream.exchange import Exchange

from . import multipart_form
from .forward import fetch, forward, tally
from .openai_only import refuse_other_families
from .relayed import JSON, success
from .upstream_error import error_answer

if TYPE_CHECKING:
    from relay.app import Relay


#: The headers of an SDP answer passed on: ``Location`` names the call (for its control endpoints).
_CALL_HEADERS = (b"location",)


def _json_body(request: Request) -> dict[str, Any]:
    try:
        payload = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError:
        raise RelayError(400, "invalid_request", "the request body is not JSON", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise RelayError(400, "invalid_request", "the request body must be a JSON object", code="invalid_json")
    return payload


def _model(value: object, param: str) -> str:
    if not isinstance(value, str) or not value:
        raise RelayError(400, "invalid_request", f"name the model in '{param}'", param=param, code="missing_model")
    return value


async def client_secrets(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    payload = _json_body(request)
    session = payload.get("session")
    model = _model(session.get("model") if isinstance(session, dict) else None, "session.model")

    def renamed(upstream: str) -> bytes:
        assert isinstance(session, dict)
        return orjson.dumps({**payload, "session": {**session, "model": upstream}})

    return await _relay_json(relay, request, out, model, "/realtime/client_secrets", renamed)


async def sessions(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    payload = _json_body(request)
    model = _model(payload.get("model"), "model")
    return await _relay_json(
        relay, request, out, model, "/realtime/sessions", lambda upstream: orjson.dumps({**payload, "model": upstream})
    )


async def _relay_json(relay: Relay, request: Request, out: StreamResponse, model: str, path: str, body: Any) -> Any:
    async def attempt(channel: Channel, upstream: str, api_key: str) -> Response | None:
        refuse_other_families(channel, model, "Realtime")
        data = await fetch(request, channel, api_key, path, body(upstream), source=openai_chat, client=openai_chat)
        if isinstance(data, Response):
            return data
        return Response(tally(request).upstream_status or 200, data, JSON)

    return await forward(relay, request, out, model, attempt, body=request.body)


async def calls(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    content_type = request.header(b"content-type") or ""
    model = request.query_params().get("model")
    if content_type.startswith("multipart/form-data"):
        form = multipart_form.parse(request.body, content_type)
        session = form.field("session")
        if model is None and session is not None:
            try:
                parsed = orjson.loads(session)
            except orjson.JSONDecodeError:
                parsed = None
            model = parsed.get("model") if isinstance(parsed, dict) else None
    elif not content_type.startswith("application/sdp"):
        raise RelayError(
            400,
            "invalid_request",
            "send the SDP offer as 'application/sdp' (or a multipart form with 'sdp' and 'session')",
            code="invalid_content_type",
        )
    model = _model(model, "model")

    async def attempt(channel: Channel, upstream: str, api_key: str) -> Response | None:
        refuse_other_families(channel, model, "Realtime")
        path = "/realtime/calls?model=" + quote(upstream, safe="")
        record = tally(request)
        exchange = Exchange(channel, api_key)
        answer = await exchange.open(path, request.body, content_type=content_type)
        try:
            record.upstream_status = answer.status
            if not success(answer.status):
                return await error_answer(record, answer, exchange, openai_chat, openai_chat)
            data = await exchange.read_body(answer)
        finally:
            await exchange.close(answer)
        record.end = "completed"
        kept = tuple((name, value) for name, value in answer.headers if name.lower() in _CALL_HEADERS)
        return Response(answer.status, data, ((b"content-type", b"application/sdp"), *kept))

    return await forward(relay, request, out, model, attempt)

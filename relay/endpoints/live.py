"""Gemini Live over WebSocket: ``/ws/google.ai.generativelanguage.{v1beta,v1alpha,v1}.GenerativeService.
BidiGenerateContent`` relayed to a Gemini channel, each turn metered from its ``usageMetadata``.

The key is read before the upgrade (``x-goog-api-key``, or ``?key=``: a refusal is plain HTTP in Gemini's shape),
but the model is not in the URL: it is in the session's first message (``setup.model``). So the WebSocket is
accepted first, the ``setup`` read (within ``[limits] body_timeout``), and then, as for Realtime
(``relay.endpoints.realtime``): the key's right to the model, the plan (``gemini`` channels, and in-process
``mock`` ones of the Gemini dialect), the first turn's hold, failover over the channels' Live endpoints
(``relay.endpoints.realtime_upstream``; the ``setup`` is sent on, its model renamed to the channel's). A refusal
after the upgrade closes the WebSocket with 1008 (the key's), 1007 (a malformed ``setup``) or 1011 (no upstream),
its reason saying why, as Google's own server does; the session's log row carries the status the refusal would
have had.

Metering, as for Realtime (``relay.endpoints.realtime_meter``): each server message with ``usageMetadata`` settles
the turn it ends (prompt, cached, response and thoughts tokens; the audio among them by ``*TokensDetails``
modality) and admits the next; one that cannot be admitted closes the session with 1008 after that message.
Gemini Live has no error event, so the close's reason is what the client reads.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
import trio

from relay.dialects import ir
from relay.errors import RelayError
from relay.gateway.auth import check_model
from relay.gateway.routing import Candidate
from relay.http import websocket
from relay.http.messages import Request, Response, StreamResponse
from relay.http.websocket import WebSocket
from relay.route import Route
from relay.upstream.channels import Channel

from .failover import Failover
from .forward import tally
from .realtime_meter import Meter
from .realtime_session import Session
from .realtime_upstream import connect

if TYPE_CHECKING:
    from relay.app import Relay

#: Close code for a malformed first message (Google's own: invalid frame payload data).
INVALID = 1007


async def live(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    upgrade = request.websocket
    if upgrade is None:
        raise RelayError(
            426,
            "invalid_request",
            "Gemini Live is a WebSocket: connect with 'Upgrade: websocket'",
            code="websocket_required",
            headers=((b"upgrade", b"websocket"),),
        )
    key, pin = await relay.gateway.keys.authenticate(request)
    record = tally(request)
    record.key = key
    record.stream = True
    async with upgrade.accept(started=False) as ws:
        status = await _serve(relay, request, out, ws, pin)
    return Response(status)


async def _serve(relay: Relay, request: Request, out: StreamResponse, ws: WebSocket, pin: str | None) -> int:
    """The session on the accepted WebSocket; the status its log row carries."""
    record = tally(request)
    setup = await _setup(relay, ws)
    if isinstance(setup, RelayError):
        return await _refused(ws, record, setup, INVALID)
    gateway = relay.gateway
    try:
        model = gateway.router.model(_model_name(setup["setup"]["model"]))
        record.requested_model = model
        assert record.key is not None
        check_model(record.key, model)
        plan = [c for c in gateway.router.plan(model, record.key.group, pin) if _speaks_live(c)]
        if not plan:
            raise RelayError(404, "not_found", f"no channel serves Gemini Live for '{model}'", code="model_not_found")
        meter = Meter(relay, request, record, plan)
        await meter.admit()
    except RelayError as error:
        return await _refused(ws, record, error, websocket.POLICY)

    async def attempt(channel: Channel, upstream_model: str, api_key: str) -> Response | None:
        failure: RelayError | None = None
        async with trio.open_nursery() as nursery:  # the upstream connection's own tasks
            try:
                upstream = await connect(nursery, channel, upstream_model, api_key, request.headers, record, live=True)
                renamed = {**setup, "setup": {**setup["setup"], "model": f"models/{upstream_model}"}}
                await upstream.send(orjson.dumps(renamed).decode())
            except RelayError as error:
                failure = error
                nursery.cancel_scope.cancel()
            else:
                try:
                    upgrade = request.websocket
                    if upgrade is not None and upgrade.writer is not None:
                        upgrade.writer.started = True  # the session begins: no other attempt may follow
                    record.first_byte = time.perf_counter()
                    await LiveSession(relay, record, ws, upstream, meter, channel).run()
                finally:
                    await upstream.aclose()
                    nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return Response(101)

    try:
        await Failover(relay, request, out, plan, attempt).run()
    except RelayError as error:  # no channel opened the session
        return await _refused(ws, record, error, websocket.INTERNAL)
    finally:
        meter.release()
    return 101


async def _setup(relay: Relay, ws: WebSocket) -> dict[str, Any] | RelayError:
    """The session's first message, which must be a ``setup`` naming a model."""
    with trio.move_on_after(relay.config.limits.body_timeout):
        message = await ws.receive()
        if message is None:
            return RelayError(400, "invalid_request", "the client closed before its setup", code="no_setup")
        try:
            payload = orjson.loads(message)
        except orjson.JSONDecodeError:
            payload = None
        setup = payload.get("setup") if isinstance(payload, dict) else None
        if not isinstance(setup, dict) or not isinstance(setup.get("model"), str) or not setup["model"]:
            return RelayError(
                400, "invalid_request", "the first message must be a setup naming its model", code="invalid_setup"
            )
        return payload  # type: ignore[return-value]
    return RelayError(408, "request_timeout", "no setup message in time", code="setup_timeout")


async def _refused(ws: WebSocket, record: Any, error: RelayError, code: int) -> int:
    record.error_kind = record.error_kind or error.kind
    record.error_detail = record.error_detail or (error.detail or error.message)
    record.end = record.end or ("client_closed" if ws.close_code == websocket.ABNORMAL else "error")
    await ws.close(code, error.message)
    return error.status


def _model_name(value: str) -> str:
    return value.removeprefix("models/")


def _speaks_live(candidate: Candidate) -> bool:
    channel = candidate.channel
    return channel.type == "gemini" or (channel.type == "mock" and channel.mock.dialect == "gemini")


def usage_of(metadata: Any) -> ir.Usage | None:
    """A Live turn's ``usageMetadata`` (prompt, cached, response, thoughts; audio by modality), or None."""
    if not isinstance(metadata, dict):
        return None
    thoughts = _count(metadata.get("thoughtsTokenCount"))
    return ir.Usage(
        input_tokens=_count(metadata.get("promptTokenCount")) + _count(metadata.get("toolUsePromptTokenCount")),
        output_tokens=_count(metadata.get("responseTokenCount")) + thoughts,
        cached_tokens=_count(metadata.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
        audio_input_tokens=_audio(metadata.get("promptTokensDetails"))
        + _audio(metadata.get("toolUsePromptTokensDetails")),
        cached_audio_tokens=_audio(metadata.get("cacheTokensDetails")),
        audio_output_tokens=_audio(metadata.get("responseTokensDetails")),
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _audio(details: object) -> int:
    if not isinstance(details, list):
        return 0
    return sum(_count(d.get("tokenCount")) for d in details if isinstance(d, dict) and d.get("modality") == "AUDIO")


class LiveSession(Session):
    """Gemini Live's reading of a session: a turn's output, its end, its ``usageMetadata``."""

    async def upstream_message(self, message: str | bytes) -> RelayError | None:
        data = message if isinstance(message, bytes) else message.encode()
        if b'"usageMetadata"' in data:
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                payload = None
            metadata = payload.get("usageMetadata") if isinstance(payload, dict) else None
            return await self.settled(usage_of(metadata))
        if b'"modelTurn"' in data:
            if self.idle:
                self.meter.started()
                self.began()
            self.meter.first_output()
        elif b'"turnComplete"' in data or b'"interrupted"' in data:
            self.finished()
        return None

    async def refuse(self, error: RelayError) -> None:
        await self.ws.close(websocket.POLICY, error.message)  # Live has no error event: the reason says it


#: This module's routes (``relay.routes`` takes them in).
ROUTES: tuple[Route, ...] = tuple(
    Route("GET", f"/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent", live, "gemini")
    for version in ("v1beta", "v1alpha", "v1")
)

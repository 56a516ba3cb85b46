"""OpenAI Realtime over WebSocket: ``GET /v1/realtime?model=…`` relayed to a channel, each response metered.

Before the upgrade, as for any request: the key (``Authorization: Bearer``, or the browser's subprotocols
``realtime`` + ``openai-insecure-api-key.KEY``), the model (``?model=``) and the key's right to it, a plan of
the channels that serve it (OpenAI-type channels, and in-process ``mock`` channels of the OpenAI dialect), and
the first response's quota hold (``relay.endpoints.realtime_meter``): a refusal is plain HTTP in OpenAI's shape.
Then failover opens the upstream WebSocket (``relay.endpoints.realtime_upstream``) channel by channel; once one
accepts, the client's WebSocket is accepted (``realtime`` chosen when offered) and the two are relayed.

Relaying is ``relay.endpoints.realtime_session`` (two tasks, one per direction, each passing one message at a time:
backpressure, nothing piles up); ``RealtimeSession`` reads on the way:

- from the client, ``session.update`` with a ``session.model``: a model the key may not use, or that the
  session's channel does not serve, gets an ``error`` event and the frame is not forwarded; an allowed one is
  renamed to the channel's name for it and billed from then on;
- from the upstream, ``response.created`` (a response's start), ``session.created``/``session.updated`` (the
  session's ``max_output_tokens``, for holds) and ``response.done``, whose usage is settled at once, and the
  next response admitted: when it cannot be (quota, rate limit) the client gets an ``error`` event and the
  session closes (1008) after the response that just finished.

When the server shuts down, a response in progress may finish (until a moment before the grace runs out); then
the client is closed with 1001. The session's own row in the request log (status 101, no tokens) records how it
ended: ``completed`` (the client closed it), ``client_closed`` (the client vanished without a close frame),
``upstream_closed``, ``quota``, ``rate_limited``, ``shutdown``, ``error`` (a message too big, a client too slow).
Each response has a row of its own with its tokens and cost.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
import trio

from relay.errors import RelayError
from relay.gateway.auth import allows, check_model
from relay.gateway.routing import Candidate, upstream_name
from relay.http import websocket
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.upstream.channels import Channel

from . import realtime_http
from .failover import Failover
from .forward import tally
from .realtime_meter import Meter, usage_of
from .realtime_session import Session
from .realtime_upstream import connect

if TYPE_CHECKING:
    from relay.app import Relay

KEY_PROTOCOL = "openai-insecure-api-key."


async def realtime(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    upgrade = request.websocket
    if upgrade is None:
        raise RelayError(
            426,
            "invalid_request",
            "the Realtime API is a WebSocket: connect with 'Upgrade: websocket'",
            code="websocket_required",
            headers=((b"upgrade", b"websocket"),),
        )
    secret = websocket.offered(upgrade.subprotocols, KEY_PROTOCOL)
    if secret and request.header(b"authorization") is None:
        request.headers.append((b"authorization", b"Bearer " + secret.encode("latin-1")))
    key, pin = await relay.gateway.keys.authenticate(request)
    record = tally(request)
    record.key = key
    record.stream = True
    params = request.query_params()
    if "call_id" in params and "model" not in params:
        raise RelayError(
            400,
            "invalid_request",
            "joining a WebRTC call (call_id) is not relayed",
            param="call_id",
            code="unsupported",
        )
    gateway = relay.gateway
    model = gateway.router.model(params.get("model"))
    record.requested_model = model
    check_model(key, model)
    plan = [c for c in gateway.router.plan(model, key.group, pin) if _speaks_realtime(c)]
    if not plan:
        raise RelayError(
            404, "not_found", f"no channel serves the Realtime API for the model '{model}'", code="model_not_found"
        )
    meter = Meter(relay, request, record, plan)
    await meter.admit()
    chosen = "realtime" if "realtime" in upgrade.subprotocols else None

    async def attempt(channel: Channel, upstream_model: str, api_key: str) -> Response | None:
        failure: RelayError | None = None
        async with trio.open_nursery() as nursery:  # the upstream connection's own tasks
            try:
                upstream = await connect(nursery, channel, upstream_model, api_key, request.headers, record)
            except RelayError as error:
                failure = error  # raised outside the nursery, whole (failover reads it)
                nursery.cancel_scope.cancel()
            else:
                try:
                    async with upgrade.accept(chosen) as ws:
                        record.first_byte = time.perf_counter()
                        await RealtimeSession(relay, record, ws, upstream, meter, channel).run()
                finally:
                    await upstream.aclose()
                    nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return Response(101)

    try:
        return await Failover(relay, request, out, plan, attempt).run()
    finally:
        meter.release()


def _speaks_realtime(candidate: Candidate) -> bool:
    channel = candidate.channel
    return channel.type == "openai" or (channel.type == "mock" and channel.mock.dialect == "openai")


class RealtimeSession(Session):
    """OpenAI Realtime's reading of a session: ``session.update``'s model, the responses' start and end."""

    async def client(self, message: str | bytes) -> str | bytes | None:
        if isinstance(message, str) and '"session.update"' in message:
            return await self._session_update(message)
        return message

    async def _session_update(self, message: str) -> str | None:
        """The ``session.update`` to forward (its model checked and renamed), or None when it is refused."""
        try:
            event = orjson.loads(message)
        except orjson.JSONDecodeError:
            return message  # the upstream says what is wrong with it
        session = event.get("session") if isinstance(event, dict) else None
        if not isinstance(session, dict) or event.get("type") != "session.update":
            return message
        self._note_limit(session)
        wanted = session.get("model")
        if not isinstance(wanted, str):
            return message
        try:
            model = self.relay.gateway.router.model(wanted) if wanted else wanted
        except RelayError:
            model = ""
        key = self.record.key
        upstream = upstream_name(self.channel.config, model) if model else None
        if not model or key is None or not allows(key, model) or upstream is None:
            reason = "this key may not use the model" if key is None or not allows(key, model) else "not served here"
            await self._error(
                f"session.update refused: {reason} '{wanted}'",
                "model_not_allowed",
                event.get("event_id"),
                "session.model",
            )
            return None
        self.meter.model = model
        self.record.upstream_model = upstream
        self.meter.session.upstream_model = upstream
        if upstream == wanted:
            return message
        return orjson.dumps({**event, "session": {**session, "model": upstream}}).decode()

    def _note_limit(self, session: dict[str, Any]) -> None:
        limit = session.get("max_output_tokens")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            self.meter.max_output = limit
        elif limit == "inf":
            self.meter.max_output = None

    async def upstream_message(self, message: str | bytes) -> RelayError | None:
        """Meter what the upstream said: a response's start, its output, its end (then the next admission)."""
        if not isinstance(message, str):
            return None
        head = message[:80]
        if '"response.done"' in head:
            response = _parse(message).get("response")
            failed = isinstance(response, dict) and response.get("status") == "failed"
            return await self.settled(usage_of(response), failed=failed)
        if '"response.created"' in head:
            self.meter.started()
            self.began()
        elif '"response.output_' in head:
            self.meter.first_output()
        elif '"session.created"' in head or '"session.updated"' in head:
            session = _parse(message).get("session")
            if isinstance(session, dict):
                self._note_limit(session)
        return None

    async def refuse(self, error: RelayError) -> None:
        await self._error(error.message, error.code or error.kind, None, None)

    async def _error(self, message: str, code: str, event_id: str | None, param: str | None) -> None:
        payload = {
            "type": "error",
            "event_id": f"event_relay_{self.meter.responses}_{trio.current_time():.0f}",
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": param,
                "event_id": event_id,
            },
        }
        try:
            await self.ws.send(orjson.dumps(payload).decode())
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def _parse(message: str) -> dict[str, Any]:
    try:
        event = orjson.loads(message)
    except orjson.JSONDecodeError:
        return {}
    return event if isinstance(event, dict) else {}


#: This module's routes (``relay.routes`` takes them in).
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/realtime", realtime),
    Route("POST", "/v1/realtime/client_secrets", realtime_http.client_secrets),
    Route("POST", "/v1/realtime/sessions", realtime_http.sessions),
    Route("POST", "/v1/realtime/calls", realtime_http.calls),
)

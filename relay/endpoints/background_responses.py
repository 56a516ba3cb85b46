"""``background: true`` on ``POST /v1/responses`` where Relay keeps the state (a converted channel).

The request is admitted (rate limits, the quota hold) under the job's own request id before anything is
answered, so a key that cannot pay gets its 402 at once. Then the answer is the Response object, ``queued``,
under an id Relay makes (``resp_`` and 48 hex digits), saved in the store at once; the generation runs
detached in ``BackgroundJobs`` as a stream (whatever the request's ``stream``), its events rewritten to carry
that id and ``background: true`` and numbered from 0 in the job's log. When it ends (whatever the end) the run
is settled and logged under the job's request id, as one request (the POST that created it is logged with no
tokens and no charge), and the final Response object is saved with its events:

- ``completed`` / ``incomplete``: as a converted answer is kept (its input and output items);
- ``failed``: the upstream refused it or the stream broke (the Response's ``error`` says why);
- ``cancelled``: ``POST /v1/responses/{id}/cancel``; what was generated until then is charged, as for a client
  that leaves a stream;
- Relay stopping: ``failed``, code ``server_shutting_down``.

With ``stream: true`` the POST streams the job's events live, and ``GET …?stream=true&starting_after=N``
streams them from ``N + 1``, live while the job runs in this process. Failover stays among the plan's converted
channels (an OpenAI Responses channel first in the plan takes the request as a passthrough instead).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
import trio

from relay.dialects import ir
from relay.dialects.openai.responses import codec as openai_responses
from relay.dialects.openai.responses.replay import events as replayed_events
from relay.dialects.openai.responses.replay import frame
from relay.errors import RelayError
from relay.gateway.routing import Candidate
from relay.gateway.tally import Tally
from relay.http import sse
from relay.http.connection import Shutdown
from relay.http.messages import Headers, Request, Response, StreamResponse
from relay.store import StoreError
from relay.store import responses as kept

from .background_jobs import FINISHED, Job
from .conversation_responses import Link, echoed, record
from .failover import Attempt, Failover
from .kept_responses import Keeper, not_found
from .relayed import JSON, SSE

if TYPE_CHECKING:
    from relay.app import Relay

log = logging.getLogger("relay.responses")

#: Seconds between two reads of the store by a stream following a job that runs in another process.
POLL_EVERY = 0.5


def requested(payload: dict[str, Any]) -> bool:
    """Whether the request asks for ``background``; a 400 when the field is not a boolean."""
    flag = payload.get("background")
    if flag is not None and not isinstance(flag, bool):
        raise RelayError(400, "invalid_request", "'background' must be a boolean", param="background")
    return flag is True


def converted(relay: Relay, candidate: Candidate) -> bool:
    return relay.channels[candidate.channel.name].dialect_for("openai_responses") != "openai_responses"


async def detach(
    relay: Relay,
    request: Request,
    out: StreamResponse,
    payload: dict[str, Any],
    plan: Sequence[Candidate],
    keeper: Keeper,
    generation: Callable[[Request, StreamResponse, bytes, dict[str, Any]], Attempt],
) -> Response | None:
    """Start the background job of ``payload`` on ``plan`` (converted channels) and answer the client."""
    if not keeper.store:
        raise RelayError(400, "invalid_request", "background responses require 'store' to be true", param="store")
    if not relay.background.open:
        raise RelayError(503, "upstream", "Relay is shutting down; retry the request", code="server_shutting_down")
    record: Tally = request.record  # type: ignore[assignment]
    stream = payload.get("stream") is True
    body_payload = {k: v for k, v in payload.items() if k != "background"}
    body_payload["stream"] = True
    body = orjson.dumps(body_payload)
    req = openai_responses.decode_request(body)
    openai_responses.require_convertible(req)
    job_id = "resp_" + os.urandom(24).hex()
    echo = openai_responses.response_echo(req)
    echo["previous_response_id"] = keeper.previous
    queued = openai_responses.response_object(
        job_id, str(payload.get("model")), int(time.time()), echo, status="queued", output=[]
    )
    queued["background"] = True
    if keeper.conversation is not None:
        queued = echoed(queued, keeper.conversation)
    tally = Tally(
        record.dialect,
        f"{record.route} (background)",
        key=record.key,
        requested_model=record.requested_model,
        stream=True,
    )
    job_request = Request(
        "POST", request.path, "", [], body, request.client, id=os.urandom(12).hex(), principal=request.principal
    )
    job_request.record = tally
    await relay.gateway.admit(tally, job_request.id, body, body_payload, plan)  # refused: the client's 402/429
    job = Job(job_id, keeper.key_name, queued)
    try:
        await _save(relay, job, keeper, time.time())
    except BaseException:
        relay.gateway.finish(tally, job_request.id, 503, time.perf_counter(), request.client, request.principal)
        raise
    capture = _Capture(job, keeper.previous, out.shutdown, keeper.conversation)
    attempt = generation(job_request, capture, body, body_payload)
    relay.background.start(job, lambda: _run(relay, job, job_request, capture, plan, attempt, keeper))
    if stream:
        await follow(relay, out, job, -1)
        return None
    return Response(200, orjson.dumps(queued), JSON)


async def _run(
    relay: Relay,
    job: Job,
    request: Request,
    capture: _Capture,
    plan: Sequence[Candidate],
    attempt: Attempt,
    keeper: Keeper,
) -> None:
    """The job's generation, then its settlement and its final Response saved, however it ends."""
    tally: Tally = request.record  # type: ignore[assignment]
    started = time.perf_counter()
    status = 200
    failure: dict[str, Any] | None = None
    try:
        with job.scope:
            job.response = {**job.response, "status": "in_progress"}
            answer = await Failover(relay, request, capture, plan, attempt).run()
            if answer is not None and answer.status >= 400:
                status, failure = answer.status, _error_of(answer.body)
    except RelayError as error:
        status, failure = error.status, {"code": error.code or error.kind, "message": error.message}
        tally.error_kind = tally.error_kind or error.kind
    finally:
        with trio.CancelScope(shield=True):
            final = dict(job.response)
            if failure is not None:
                final.update(status="failed", error=failure)
            elif final.get("status") not in FINISHED:
                if job.cancel_requested:
                    final["status"] = "cancelled"
                    tally.end = tally.end or "client_closed"
                else:
                    final.update(status="failed", error={"code": "server_shutting_down", "message": "Relay stopped"})
                status = 499
            if final["status"] != job.response.get("status") or final.get("error") != job.response.get("error"):
                job.add({"type": f"response.{final['status']}", "response": final})
            tally.usage = request.usage if isinstance(request.usage, ir.Usage) else None
            relay.gateway.finish(tally, request.id, status, started, request.client, request.principal)
            job.finish(final)
            try:
                await _save(relay, job, keeper, time.time(), tally.channel or "")
            except StoreError as error:
                log.warning("background response %s not saved (store unavailable): %s", job.id, error)
            if keeper.conversation is not None:
                await record(relay, keeper.key_name, keeper.conversation, job.response)


def _error_of(body: bytes) -> dict[str, Any]:
    """The Response's ``error`` of an error answer in OpenAI's shape."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    if not isinstance(error, dict):
        return {"code": "server_error", "message": "the upstream failed"}
    return {"code": error.get("code") or error.get("type") or "server_error", "message": str(error.get("message"))}


async def _save(relay: Relay, job: Job, keeper: Keeper, now: float, channel: str = "") -> None:
    response = job.response
    usage = response.get("usage")
    record = kept.StoredResponse(
        id=job.id,
        key_name=job.key_name,
        channel=channel,
        model=str(response.get("model") or ""),
        created_at=now,
        status=str(response.get("status")),
        previous_response_id=keeper.previous,
        instructions=keeper.instructions,
        input_items=keeper.input_items,
        output_items=list(response.get("output") or []),
        usage=usage if isinstance(usage, dict) else None,
        response=response,
        events=job.events if job.done else None,
    )
    await relay.gateway.store.transaction(lambda tx: kept.save(tx, record))


class _Capture:
    """The ``StreamResponse`` a job's generation writes to: each event rewritten (the job's id, ``background``,
    the ``previous_response_id`` asked) and appended to the job's log."""

    def __init__(self, job: Job, previous: str | None, shutdown: Shutdown, conversation: Link | None = None) -> None:
        self._job = job
        self._previous = previous
        self._conversation = {"id": conversation.id} if conversation is not None else None
        self._parser = sse.Parser()
        self._shutdown = shutdown
        self.started = False
        self.gone = False

    @property
    def shutdown(self) -> Shutdown:
        return self._shutdown

    async def start(self, status: int, headers: Headers) -> None:
        self.started = True

    async def send(self, data: bytes) -> None:
        self.send_nowait(data)

    def send_nowait(self, data: bytes) -> bool:
        for event in self._parser.feed(data):
            if event.data is None:
                continue
            try:
                payload = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(payload, dict):
                continue
            response = payload.get("response")
            if isinstance(response, dict):
                response["id"] = self._job.id
                response["background"] = True
                response["previous_response_id"] = self._previous
                if self._conversation is not None:
                    response["conversation"] = self._conversation
            self._job.add(payload)
        return True


def starting_after(request: Request) -> int:
    """``starting_after`` of the query (-1 when absent); a 400 unless it is a whole number from 0."""
    raw = request.query_params().get("starting_after")
    if raw is None or raw == "":
        return -1
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise RelayError(
            400, "invalid_request", "'starting_after' must be a whole number from 0", param="starting_after"
        )
    return value


async def follow(relay: Relay, out: StreamResponse, job: Job, after: int) -> None:
    """Stream ``job``'s events after sequence number ``after``, live until the job is done."""
    await out.start(200, SSE)
    seen = after + 1
    while True:
        await job.wait(seen)
        while seen < len(job.events):
            await out.send(frame(job.events[seen]))
            seen += 1
        if job.done and seen >= len(job.events):
            return


async def replay(relay: Relay, out: StreamResponse, stored: kept.StoredResponse, after: int) -> None:
    """Stream a response Relay keeps from its events after ``after``: those kept (a background response's), or
    those of its Response object (``openai.responses.replay``). A background response still running in another
    process is followed through the store until it ends."""
    key_name, response_id = stored.key_name, stored.id
    while stored.status not in FINISHED:
        await trio.sleep(POLL_EVERY)
        found = await relay.gateway.store.transaction(lambda tx: kept.load(tx, response_id, key_name, None))
        if found is None:
            raise not_found(response_id)
        stored = found
    events = stored.events if stored.events is not None else replayed_events(stored.response)
    await out.start(200, SSE)
    for event in events[after + 1 :]:
        await out.send(frame(event))

"""``POST /v1/summarize``: a text (``input``), a ``file`` or a ``url`` in, a summary out.

1. The material is read as Markdown (``relay.utility.documents``) and split on its structure into parts of at
   most ``segment_length`` tokens (``[utility] segment_tokens`` by default).
2. One part: one model call summarizes it. Several (map-reduce): each part is summarized (up to four calls at
   once), then the parts' summaries are combined, in groups of ``REDUCE_GROUP`` while there are more, into one.
3. The answer: ``{"object": "summary", "id", "model", "summary", "segments", "usage"}``; with ``stream: true``,
   the last call (the only one, or the last combination) is streamed as server-sent events, once it starts:
   ``{"object": "summary.delta", "delta": "…"}`` per piece, then ``{"object": "summary.done", "summary", …,
   "usage"}`` and ``[DONE]``. A failure before then is an error status (a channel down: 502, in OpenAI's shape).

``focus`` (optional) names what the summary should dwell on. Every model call is billed to the key and logged
with this request as its parent; this request's row shows their sum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects.openai.chat import codec as openai_chat
from relay.endpoints.forward import tally
from relay.endpoints.relayed import SSE
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.http.sse import frame
from relay.route import Route

from . import calls, prompts, segments, task
from .blocking import run_blocking

if TYPE_CHECKING:
    from relay.app import Relay

#: Summaries combined by one call; more are combined in groups first.
REDUCE_GROUP = 8


async def summarize(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    given = await task.begin(relay, request, out)
    stream = given.boolean("stream")
    focus = given.string("focus")
    length = task.segment_tokens(relay, given)
    document = task.with_text(await task.document(relay, given, "input"), "summarize")
    model = task.model(relay, request, given)
    tally(request).stream = stream
    parts = [s.text for s in await run_blocking(segments.split, document.text, length, 0)] or [document.text]
    if len(parts) == 1:
        final = prompts.summarize(parts[0], focus)
    else:
        summaries = await task.in_order(
            [_summary_of(relay, request, model, prompts.summarize(part, focus)) for part in parts]
        )
        while len(summaries) > REDUCE_GROUP:
            groups = [summaries[i : i + REDUCE_GROUP] for i in range(0, len(summaries), REDUCE_GROUP)]
            summaries = await task.in_order(
                [_summary_of(relay, request, model, prompts.summarize_reduce(g, focus)) for g in groups]
            )
        final = prompts.summarize_reduce(summaries, focus)
    head = {"id": f"summary_{request.id}", "model": model, "segments": len(parts)}
    if not stream:
        answer = await calls.complete(relay, request, model, final)
        return Response.json(
            200, {"object": "summary", **head, "summary": answer.text, "usage": task.usage_json(request)}
        )
    await _stream(relay, request, out, model, final, head)
    return None


def _summary_of(relay: Relay, request: Request, model: str, messages: list[dict[str, Any]]) -> task.Job[str]:
    async def job() -> str:
        return (await calls.complete(relay, request, model, messages)).text

    return job


async def _stream(
    relay: Relay,
    request: Request,
    out: StreamResponse,
    model: str,
    messages: list[dict[str, Any]],
    head: dict[str, Any],
) -> None:
    """The last call streamed to the client: the response starts with its first piece (an error before it is
    raised, so the client gets its status); a failure after it ends the stream with an error event."""
    pieces: list[str] = []
    try:
        async with calls.stream_complete(relay, request, model, messages) as deltas:
            async for delta in deltas:
                if not out.started:
                    await out.start(200, SSE)
                pieces.append(delta)
                await out.send(frame(orjson.dumps({"object": "summary.delta", "delta": delta})))
    except RelayError as error:
        if not out.started:
            raise
        record = tally(request)  # the stream ends with the error as its last event, and the log says so
        record.error_kind, record.error_detail = error.kind, error.detail or error.message
        await out.send(frame(openai_chat.encode_error(error)[2]) + frame(b"[DONE]"))  # OpenAI's error object
        return
    if not out.started:
        await out.start(200, SSE)
    done = {"object": "summary.done", **head, "summary": "".join(pieces), "usage": task.usage_json(request)}
    await out.send(frame(orjson.dumps(done)) + frame(b"[DONE]"))


#: This module's routes (``relay.routes.ROUTES`` takes them in).
ROUTES: tuple[Route, ...] = (Route("POST", "/v1/summarize", summarize, uploads=True),)

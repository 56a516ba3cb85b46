"""``POST /v1/research``: a question (``instructions``, or ``input``) in, a cited report out
(``relay.utility.research.pipeline``: plan, searches, pages, summaries, report).

Fields: ``instructions`` (required), ``model`` (the model of the plan, the summaries and the report: else
``[utility] model``, else ``[server] default_model``), ``search_model`` (else ``[utility] search_model``),
``max_searches`` (1-5, default 3), ``results_per_search`` (1-10, default 3), ``max_sources`` (1-10, default 5),
``stream``.

With ``stream: true`` the answer is server-sent events, each ``event: NAME`` with a JSON ``data`` line:
``research.plan`` (``queries``), ``research.search`` (one per search: ``query``, ``results``), ``research.source``
(one per source: ``index``, ``url``, ``fetched``, and ``error`` when the page could not be had),
``research.summary`` (``index``, ``summary``), ``research.report.delta`` (``delta``: the report as it is written),
then ``research.completed`` with the whole answer; a failure after the stream began is an ``error`` event
(``{"error": {…}}``, OpenAI's shape) and the stream ends. Without ``stream`` the answer is that last object::

    {"object": "research.report", "id": "research_…", "model": "…", "search_model": "…", "instructions": "…",
     "queries": ["…"], "sources": [{"index": 1, "title": "…", "url": "…", "snippet": "…", "fetched": true,
     "summary": "…"}], "citations": [1, 2], "report": "# …\\n… [1] …\\n\\n## Sources\\n\\n1. [title](https://…)",
     "usage": {"input_tokens": …, "output_tokens": …, "total_tokens": …, "searches": 3}}

Billing: each model call and each search is a request of its own, charged and logged under the research
(``parent_id``); the research's row shows their sum and charges nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects.openai.chat import codec as openai_chat
from relay.endpoints.forward import tally
from relay.endpoints.relayed import SSE
from relay.errors import RelayError
from relay.gateway.auth import presented_key
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route

from . import task
from .form import invalid
from .research.pipeline import Ask, Report, Research

if TYPE_CHECKING:
    from relay.app import Relay

#: Characters of the question, at most.
MAX_INSTRUCTIONS = 4000


async def research(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    given = await task.begin(relay, request, out, "instructions")
    question = task.required(given, "instructions")
    if len(question) > MAX_INSTRUCTIONS:
        raise invalid("instructions", f"'instructions' is longer than {MAX_INSTRUCTIONS} characters")
    search_model = given.string("search_model") or relay.config.utility.search_model
    if not search_model:
        raise RelayError(
            400,
            "invalid_request",
            "'search_model' is required: name the search provider's model, or set [utility] search_model",
            param="search_model",
            code="missing_required_parameter",
        )
    ask = Ask(
        question=question,
        model=task.model(relay, request, given),
        search_model=search_model,
        searches=given.integer("max_searches", 3, 1, 5),
        results=given.integer("results_per_search", 3, 1, 10),
        sources=given.integer("max_sources", 5, 1, 10),
    )
    stream = given.boolean("stream")
    tally(request).stream = stream
    secret = presented_key(request) or ""

    async def emit(event: str, data: dict[str, Any]) -> None:
        if stream:
            if not out.started:
                await out.start(200, SSE)
            await out.send(_event(event, data))

    run = Research(relay, request, secret, out.shutdown, ask, emit)
    if not stream:
        return Response.json(200, _answer(request, ask, await run.run(stream=False)))
    try:
        report = await run.run(stream=True)
    except RelayError as error:
        if not out.started:
            raise
        _, _, body = openai_chat.encode_error(error)
        await out.send(b"event: error\ndata: " + body + b"\n\n")
        tally(request).error_kind = error.kind
        return None
    await emit("research.completed", _answer(request, ask, report))
    tally(request).end = "completed"
    return None


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _answer(request: Request, ask: Ask, report: Report) -> dict[str, Any]:
    references = "\n".join(f"{s.number}. [{s.title}]({s.url})" for s in report.sources)
    usage: dict[str, Any] = task.usage_json(request)
    children = tally(request).children_usage
    usage["searches"] = children.requests if children is not None else 0
    return {
        "object": "research.report",
        "id": f"research_{request.id}",
        "model": ask.model,
        "search_model": ask.search_model,
        "instructions": ask.question,
        "queries": report.queries,
        "sources": [source.as_json() for source in report.sources],
        "citations": report.cited,
        "report": f"{report.text.rstrip()}\n\n## Sources\n\n{references}\n",
        "usage": usage,
    }


#: This module's routes (``relay.routes.ROUTES`` takes them in).
ROUTES: tuple[Route, ...] = (Route("POST", "/v1/research", research),)

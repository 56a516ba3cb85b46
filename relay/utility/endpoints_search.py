"""``POST /v1/search`` (alias ``/v1/retrieve``): a query in, ranked results (title, URL, snippet, score) out.

The ``model`` names a search provider's model: a channel of type ``tavily``, ``exa``, ``brave`` or ``searxng`` (or
a ``mock`` channel speaking one) serves it, so the search is routed, failed over, held, priced (``[[prices]]
request``, per search answered) and logged like any request. A provider's error is the client's in OpenAI's shape
(``relay.endpoints.upstream_error``: a provider down or failing is a 502, 503 or 504). With ``rerank`` naming a rerank
model, the results are ordered again by it (``relay.utility.search.rerank``), billed as a request of its own.

The answer::

    {"object": "search.results", "id": "search_…", "model": "…", "query": "…",
     "results": [{"title": "…", "url": "…", "snippet": "…", "score": 0.93}, …], "usage": {"requests": 1}}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relay.dialects import ir
from relay.endpoints.forward import forward
from relay.gateway.auth import presented_key
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.upstream.channels import Channel

from .search.client import search_on
from .search.providers import Hit
from .search.request import read_search
from .search.rerank import reranked

if TYPE_CHECKING:
    from relay.app import Relay


def answer(request_id: str, model: str, query: str, hits: list[Hit], requests: int) -> dict[str, Any]:
    return {
        "object": "search.results",
        "id": f"search_{request_id}",
        "model": model,
        "query": query,
        "results": [hit.as_json() for hit in hits],
        "usage": {"requests": requests},
    }


async def search(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    await relay.gateway.keys.authenticate(request)  # a bad key is a 401 before any complaint about the body
    ask = read_search(request, relay.config.utility.search_model)
    found: list[Hit] = []

    async def attempt(channel: Channel, upstream_model: str, api_key: str) -> Response | None:
        hits = await search_on(request, channel, upstream_model, api_key, ask.model, ask.query, ask.max_results)
        if isinstance(hits, Response):
            return hits
        request.usage = ir.Usage(requests=1)
        found[:] = hits
        return None

    units = ir.Usage(requests=1)
    failed = await forward(relay, request, out, ask.model, attempt, body=ask.query.encode(), units=units)
    if failed is not None:
        return failed
    hits = found
    if ask.rerank is not None and len(hits) > 1:  # after the search: a rerank failing never tries another provider
        secret = presented_key(request) or ""
        hits = await reranked(relay, request, secret, out.shutdown, ask.rerank, ask.query, hits)
    return Response.json(200, answer(request.id, ask.model, ask.query, hits, 1))


#: This module's routes (``relay.routes.ROUTES`` takes them in).
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/search", search),
    Route("POST", "/v1/retrieve", search),
)

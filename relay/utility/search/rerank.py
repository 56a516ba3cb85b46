"""A search's results ordered again by a rerank model (``/v1/search``'s ``rerank``): a ``/v1/rerank`` request of
its own (``children``: its channel, price and log row, under the search), each result read as its title and
snippet; the answer's results in the reranker's order, their ``score`` its relevance score."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from relay.errors import RelayError
from relay.http.messages import Request
from relay.http.shutdown import Shutdown

from .children import call_json
from .providers import Hit

if TYPE_CHECKING:
    from relay.app import Relay

RERANK_PATH = "/v1/rerank"


async def reranked(
    relay: Relay, parent: Request, secret: str, shutdown: Shutdown, model: str, query: str, hits: list[Hit]
) -> list[Hit]:
    documents = [f"{hit.title}\n{hit.snippet}".strip() for hit in hits]
    payload = {"model": model, "query": query, "documents": documents, "top_n": len(hits)}
    answer = await call_json(relay, parent, secret, shutdown, RERANK_PATH, payload)
    results = answer.get("results")
    ordered: list[Hit] = []
    seen: set[int] = set()
    for item in results if isinstance(results, list) else []:
        index = item.get("index") if isinstance(item, dict) else None
        score = item.get("relevance_score") if isinstance(item, dict) else None
        if isinstance(index, int) and 0 <= index < len(hits) and index not in seen and isinstance(score, int | float):
            seen.add(index)
            ordered.append(attrs.evolve(hits[index], score=float(score)))
    if len(ordered) != len(hits):
        raise RelayError(502, "upstream", "the rerank answer does not rank every result", code="bad_upstream_answer")
    return ordered

"""The three rerank APIs an ``openai`` channel may speak upstream (its ``rerank_api``): requests and answers.

- ``jina`` (Jina, vLLM, Xinference, most OpenAI-compatible servers): ``POST /rerank`` under the base URL with
  ``model, query, documents, top_n, return_documents``; answers ``results[]`` (``index``, ``relevance_score``)
  and ``usage.total_tokens``.
- ``cohere``: ``POST /v2/rerank`` at the base URL's origin with ``model, query, documents, top_n``; answers
  ``results[]`` and ``meta.billed_units.search_units``, no tokens.
- ``voyage``: ``POST /rerank`` under the base URL with ``model, query, documents, top_k, return_documents``;
  answers ``data[]`` (``index``, ``relevance_score``) and ``usage.total_tokens``.

Documents go upstream as strings and are never asked back (``return_documents: false``): Relay answers with its
own copy of them. ``top_k`` is always sent to Voyage (the number of documents when the client set no ``top_n``).
When the upstream reports no tokens (Cohere, or a server that leaves ``usage`` out), they are estimated
(``estimate_tokens``).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from relay.dialects.common import bad_upstream, load_object
from relay.dialects.rerank.codec import Ranked, RerankRequest

RerankApi = Literal["jina", "cohere", "voyage"]
#: Bytes of UTF-8 text per estimated token.
BYTES_PER_TOKEN = 4


def path(api: RerankApi) -> str:
    """The path of the API's rerank endpoint: under the base URL, or at its origin for Cohere."""
    return "/v2/rerank" if api == "cohere" else "/rerank"


def encode(api: RerankApi, req: RerankRequest, model: str) -> bytes:
    """The upstream's request for ``model`` (the name the channel knows)."""
    body: dict[str, Any] = {"model": model, "query": req.query, "documents": list(req.documents)}
    if api == "voyage":
        body["top_k"] = min(req.top_n or len(req.documents), len(req.documents))
        body["return_documents"] = False
        return orjson.dumps(body)
    if req.top_n is not None:
        body["top_n"] = req.top_n
    if api == "jina":
        body["return_documents"] = False
    return orjson.dumps(body)


def decode(api: RerankApi, data: bytes) -> Ranked:
    """The upstream's answer; a 502 when it is not the API's shape."""
    payload = load_object(data, upstream=True)
    field = "data" if api == "voyage" else "results"
    items = payload.get(field)
    if not isinstance(items, list):
        raise bad_upstream(f"the upstream's rerank answer has no '{field}' array")
    scores: list[tuple[int, float]] = []
    for item in items:
        index = item.get("index") if isinstance(item, dict) else None
        score = item.get("relevance_score") if isinstance(item, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(score, int | float):
            raise bad_upstream(f"the upstream's rerank answer has a '{field}' item without index and relevance_score")
        if isinstance(score, bool):
            raise bad_upstream("the upstream gave a relevance score that is not a number")
        scores.append((index, float(score)))
    answer_id = payload.get("id")
    return Ranked(
        id=answer_id if isinstance(answer_id, str) and answer_id else None,
        scores=tuple(scores),
        total_tokens=None if api == "cohere" else _total_tokens(payload),
    )


def _total_tokens(payload: dict[str, Any]) -> int | None:
    usage = payload.get("usage")
    tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
    if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0:
        return tokens
    return None


def estimate_tokens(req: RerankRequest) -> int:
    """The tokens of a request whose upstream does not count them: each document is read with the query (as
    a cross-encoder reads them), a token per ``BYTES_PER_TOKEN`` bytes of UTF-8 text, rounded up per pair."""
    query = len(req.query.encode())
    return sum(-(-(query + len(document.encode())) // BYTES_PER_TOKEN) for document in req.documents)

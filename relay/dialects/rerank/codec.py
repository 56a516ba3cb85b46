"""A client's rerank request (``/v1/rerank``) and Relay's answer to it.

Two request shapes are read:

- Cohere's and Jina's: ``model``, ``query``, ``documents`` (strings, or objects with a ``text`` string),
  ``top_n``, ``return_documents``;
- wingman's (and Hugging Face TEI's): ``model``, ``query``, ``texts`` (strings), ``limit``.

``top_n`` and ``limit`` are one parameter under two names, as are ``documents`` and ``texts``; either name may
be used with either shape, not both at once. Other fields are ignored (never sent upstream). The answer is
Jina's and Cohere's shape: ``{"id", "model", "results": [{"index", "relevance_score", "document": {"text"}}],
"usage": {"total_tokens"}}``, most relevant first (ties in the order of the documents), at most ``top_n`` of
them; ``document`` is there unless ``return_documents`` is false, its text Relay's own copy of the request's.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import orjson

from relay.dialects.common import bad_request, bad_upstream, load_object, optional, want


@attrs.frozen
class RerankRequest:
    model: str
    query: str
    documents: tuple[str, ...]
    #: At most this many results; None: all of them.
    top_n: int | None
    return_documents: bool


@attrs.frozen
class Ranked:
    """What an upstream answered, in any of its shapes: a score per document it ranked."""

    #: The upstream's id of the answer, when it gave one.
    id: str | None
    #: (index of the document in the request, relevance score), in the upstream's order.
    scores: tuple[tuple[int, float], ...]
    #: The tokens the upstream says it read; None when it does not say (Cohere counts search units).
    total_tokens: int | None


def read_request(body: bytes) -> RerankRequest:
    """The request in either shape; a 400 naming the parameter otherwise."""
    payload = load_object(body)
    model = payload.get("model")
    if model is None:
        raise bad_request("'model' is required: the name of the rerank model", "model")
    want(model, str, "model", "a string")
    if not model:
        raise bad_request("'model' must be a non-empty string", "model")
    query = payload.get("query")
    if query is None:
        raise bad_request("'query' is required", "query")
    want(query, str, "query", "a string")
    if not query.strip():
        raise bad_request("'query' must not be empty", "query")
    return RerankRequest(
        model=model,
        query=query,
        documents=_documents(payload),
        top_n=_top_n(payload),
        return_documents=_return_documents(payload),
    )


def _one_of(payload: dict[str, Any], first: str, second: str) -> tuple[str, Any]:
    """(the name used, its value) of a parameter that has two names; a 400 when both are given."""
    if payload.get(first) is not None and payload.get(second) is not None:
        raise bad_request(f"give '{first}' or '{second}', not both: they are the same parameter", second)
    if payload.get(second) is not None:
        return second, payload[second]
    return first, payload.get(first)


def _documents(payload: dict[str, Any]) -> tuple[str, ...]:
    name, value = _one_of(payload, "documents", "texts")
    if value is None:
        raise bad_request("'documents' (or 'texts') is required: the list of texts to rank", "documents")
    want(value, list, name, "an array of strings")
    if not value:
        raise bad_request(f"'{name}' must hold at least one document", name)
    texts: list[str] = []
    for index, item in enumerate(value):
        param = f"{name}[{index}]"
        if isinstance(item, dict) and name == "documents":
            text = item.get("text")
            if not isinstance(text, str):
                raise bad_request(f"'{param}.text' must be a string (only text documents can be ranked)", param)
            texts.append(text)
            continue
        kind = "a string or an object with a 'text' string" if name == "documents" else "a string"
        texts.append(want(item, str, param, kind))
    return tuple(texts)


def _top_n(payload: dict[str, Any]) -> int | None:
    name, value = _one_of(payload, "top_n", "limit")
    if value is None:
        return None
    want(value, int, name, "an integer")
    if value < 1:
        raise bad_request(f"'{name}' must be at least 1", name)
    return int(value)


def _return_documents(payload: dict[str, Any]) -> bool:
    value = optional(payload, "return_documents", bool, "return_documents", "a boolean")
    return True if value is None else bool(value)


def ranking(req: RerankRequest, ranked: Ranked) -> list[tuple[int, float]]:
    """The upstream's scores, most relevant first (ties in document order), at most ``top_n``; a 502 when the
    upstream scored a document twice, one the request does not hold, or gave a score that is not a number."""
    seen: set[int] = set()
    for index, score in ranked.scores:
        if not 0 <= index < len(req.documents) or index in seen:
            raise bad_upstream(
                f"the upstream ranked document {index}, of {len(req.documents)}, more than once or out of range"
            )
        if not math.isfinite(score):
            raise bad_upstream("the upstream gave a relevance score that is not a finite number")
        seen.add(index)
    ordered = sorted(ranked.scores, key=lambda pair: (-pair[1], pair[0]))
    return ordered if req.top_n is None else ordered[: req.top_n]


def answer(req: RerankRequest, ranked: Ranked, id: str, total_tokens: int) -> bytes:
    """Relay's answer: Jina's and Cohere's shape, for the model the client named."""
    results: list[dict[str, Any]] = []
    for index, score in ranking(req, ranked):
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if req.return_documents:
            result["document"] = {"text": req.documents[index]}
        results.append(result)
    return orjson.dumps({"id": id, "model": req.model, "results": results, "usage": {"total_tokens": total_tokens}})

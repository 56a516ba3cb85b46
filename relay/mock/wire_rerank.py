"""The mock upstream's rerank, in each provider's shape, and (``wire_moderations``) OpenAI's moderations.

- ``POST …/rerank``: Jina's and vLLM's API. ``model``, ``query``, ``documents`` (strings or ``{"text"}``),
  ``top_n``, ``return_documents`` (default true); answers ``results[]`` (``index``, ``relevance_score``,
  ``document.text``) and ``usage.total_tokens``; errors in OpenAI's shape (vLLM's).
- ``POST …/rerank`` with ``top_k``: Voyage's API. ``model``, ``query``, ``documents`` (strings), ``top_k``,
  ``return_documents`` (default false), ``truncation``; answers ``{"object": "list", "data": [{"relevance_score",
  "index", "document"}], "model", "usage": {"total_tokens"}}``; errors ``{"detail"}``.
- ``POST …/v2/rerank``: Cohere's v2 API. ``model``, ``query``, ``documents`` (strings), ``top_n``,
  ``max_tokens_per_doc``; answers ``{"id", "results": [{"index", "relevance_score"}], "meta": {"billed_units":
  {"search_units"}}}``, no tokens; errors ``{"id", "message"}``.

Each checks its request as the provider does (the fields above, their types; a 400 otherwise). Relevance is
word overlap: the share of the query's distinct words (runs of letters and digits, lower-cased) the document
holds, rounded to 6 places. Results are most relevant first, ties in document order. A token is four
characters, rounded up, of each (query, document) pair; a search unit is up to 100 documents.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects.common import nested_deeper
from relay.mock import wire_chat, wire_moderations
from relay.mock.model import Answer, json_answer

if TYPE_CHECKING:
    from relay.mock.call import Call, Dialect, MockState, RouteEntry

#: The deepest nesting the mock reads (as ``relay.mock.router``).
MAX_DEPTH = 200
#: Documents one Cohere search unit covers.
SEARCH_UNIT_DOCUMENTS = 100

_WORD = re.compile(r"[^\W_]+")

Refuse = Callable[[int, str], Answer]


class Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _openai_error(status: int, message: str) -> Answer:
    return wire_chat.error(status, message)


def _voyage_error(status: int, message: str) -> Answer:
    return json_answer(status, {"detail": message})


def _cohere_error(status: int, message: str) -> Answer:
    return json_answer(status, {"id": _digest(message.encode()), "message": message})


def _digest(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def load(body: bytes, refuse: Refuse) -> Any:
    """The JSON object body, or an ``Answer`` refusing it in the provider's shape."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return refuse(400, "the request body is not JSON")
    if not isinstance(payload, dict):
        return refuse(400, "the request body must be a JSON object")
    if nested_deeper(payload, MAX_DEPTH):
        return refuse(400, f"the request body is nested too deeply: at most {MAX_DEPTH} levels")
    return payload


# ---- the request's fields, as the providers check them ---------------------------------------------------


def _string(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise Refused(f"'{name}' is required and must be a non-empty string")
    return value


def _positive(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Refused(f"'{name}' must be a positive integer")
    return value


def _flag(payload: dict[str, Any], name: str, default: bool) -> bool:
    value = payload.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise Refused(f"'{name}' must be a boolean")
    return value


def _documents(payload: dict[str, Any], *, objects: bool) -> list[str]:
    value = payload.get("documents")
    if not isinstance(value, list) or not value:
        raise Refused("'documents' is required and must be a non-empty array")
    texts: list[str] = []
    for index, item in enumerate(value):
        if objects and isinstance(item, dict) and isinstance(item.get("text"), str):
            texts.append(item["text"])
        elif isinstance(item, str):
            texts.append(item)
        else:
            raise Refused(f"'documents[{index}]' must be a string" + (" or an object with 'text'" if objects else ""))
    return texts


# ---- scoring ---------------------------------------------------------------------------------------------


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def relevance(query: str, document: str) -> float:
    """The share of the query's distinct words the document holds, rounded to 6 places."""
    wanted = words(query)
    return round(len(wanted & words(document)) / len(wanted), 6) if wanted else 0.0


def ranked(query: str, documents: list[str], top: int | None) -> list[tuple[int, float]]:
    """(index, score) of each document, most relevant first (ties in document order), at most ``top``."""
    scores = sorted(((i, relevance(query, d)) for i, d in enumerate(documents)), key=lambda p: (-p[1], p[0]))
    return scores if top is None else scores[:top]


def tokens(query: str, documents: list[str]) -> int:
    """A token per four characters, rounded up, of each (query, document) pair."""
    return sum(math.ceil((len(query) + len(document)) / 4) for document in documents)


# ---- the three APIs --------------------------------------------------------------------------------------


def _jina(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    payload = load(call.body, _openai_error)
    if isinstance(payload, Answer):
        return payload
    if "top_k" in payload:
        return _voyage(payload)
    try:
        model, query = _string(payload, "model"), _string(payload, "query")
        documents = _documents(payload, objects=True)
        top_n = _positive(payload, "top_n")
        keep = _flag(payload, "return_documents", True)
    except Refused as refused:
        return _openai_error(400, refused.message)
    results: list[dict[str, Any]] = []
    for index, score in ranked(query, documents, top_n):
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if keep:
            result["document"] = {"text": documents[index]}
        results.append(result)
    return json_answer(200, {"model": model, "usage": {"total_tokens": tokens(query, documents)}, "results": results})


def _voyage(payload: dict[str, Any]) -> Answer:
    try:
        model, query = _string(payload, "model"), _string(payload, "query")
        documents = _documents(payload, objects=False)
        top_k = _positive(payload, "top_k")
        keep = _flag(payload, "return_documents", False)
        _flag(payload, "truncation", True)
    except Refused as refused:
        return _voyage_error(400, refused.message)
    data: list[dict[str, Any]] = []
    for index, score in ranked(query, documents, top_k):
        item: dict[str, Any] = {"relevance_score": score, "index": index}
        if keep:
            item["document"] = documents[index]
        data.append(item)
    return json_answer(
        200, {"object": "list", "data": data, "model": model, "usage": {"total_tokens": tokens(query, documents)}}
    )


def _cohere(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    payload = load(call.body, _cohere_error)
    if isinstance(payload, Answer):
        return payload
    try:
        _string(payload, "model")
        query = _string(payload, "query")
        documents = _documents(payload, objects=False)
        top_n = _positive(payload, "top_n")
        _positive(payload, "max_tokens_per_doc")
    except Refused as refused:
        return _cohere_error(400, refused.message)
    results = [{"index": index, "relevance_score": score} for index, score in ranked(query, documents, top_n)]
    units = math.ceil(len(documents) / SEARCH_UNIT_DOCUMENTS)
    meta = {"api_version": {"version": "2"}, "billed_units": {"search_units": units}}
    return json_answer(200, {"id": _digest(call.body), "results": results, "meta": meta})


#: Routes ``relay.mock.router`` tries before its own: (method, path pattern, dialect or None, handler).
ROUTES: tuple[RouteEntry, ...] = (
    ("POST", re.compile(r"/v2/rerank$"), "openai", _cohere),
    ("POST", re.compile(r"/rerank$"), "openai", _jina),
    *wire_moderations.ROUTES,
)

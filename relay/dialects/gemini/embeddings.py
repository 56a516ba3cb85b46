"""Gemini ``embedContent`` and ``batchEmbedContents``: the request read strictly, and the answers in Gemini's shape.

An ``EmbedContentRequest`` is ``{"model"?, "content": {"parts": [...]}, "taskType"?, "title"?,
"outputDimensionality"?}`` (camelCase or snake_case, as proto JSON takes them); a batch is ``{"requests": [...]}``,
each request naming the URL's model (``models/NAME``). The answers: ``{"embedding": {"values": [...]}}`` and
``{"embeddings": [{"values": [...]}, ...]}``. Gemini reports no token count for either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import attrs
import orjson

from relay.dialects.common import bad_request, bad_upstream, dumps_kept, load_object
from relay.errors import RelayError

#: At most this many requests in one batch (Gemini's limit).
MAX_BATCH = 100
#: The task types Gemini knows (``TaskType``).
TASK_TYPES = frozenset(
    {
        "TASK_TYPE_UNSPECIFIED",
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
        "CODE_RETRIEVAL_QUERY",
    }
)
#: The fields of an ``EmbedContentRequest`` Relay reads (in camelCase; snake_case is taken too).
FIELDS = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})
#: What a content's text parts are joined with when it goes where one content is one text (OpenAI's ``input``).
PART_SEPARATOR = "\n"
#: Bytes of UTF-8 text per estimated token (the estimate of relay.dialects.estimate).
BYTES_PER_TOKEN = 4


@attrs.frozen
class EmbedItem:
    """One ``EmbedContentRequest``: its content's parts as sent, and its options."""

    parts: tuple[dict[str, Any], ...]
    task_type: str | None
    title: str | None
    dimensions: int | None
    #: Where it is in the body, for messages (``""`` for embedContent, ``requests[N].`` in a batch).
    where: str
    #: The fields it holds beyond ``FIELDS`` (the upstream's to judge on a passthrough; refused on a conversion).
    extra: tuple[str, ...] = ()

    def text(self) -> str:
        """The content as one text (its text parts joined); a 400 naming the first part that is not text."""
        texts: list[str] = []
        for index, part in enumerate(self.parts):
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request(
                    f"{self.where}content.parts[{index}]: only text parts can be embedded by this model",
                    f"{self.where}content.parts[{index}]",
                )
            texts.append(text)
        return PART_SEPARATOR.join(texts)

    def texts(self) -> list[str]:
        """The text of each text part (for the token estimate)."""
        return [part["text"] for part in self.parts if isinstance(part.get("text"), str)]


@attrs.frozen
class EmbedRequest:
    """An embedContent (one item) or batchEmbedContents request, its fields checked."""

    items: tuple[EmbedItem, ...]
    batch: bool
    payload: dict[str, Any]

    @property
    def verb(self) -> str:
        return "batchEmbedContents" if self.batch else "embedContent"


def field(node: dict[str, Any], name: str) -> Any:
    """``node[name]`` in camelCase or snake_case (``outputDimensionality`` or ``output_dimensionality``)."""
    if name in node:
        return node[name]
    return node.get("".join("_" + c.lower() if c.isupper() else c for c in name))


def read_embed(body: bytes, model: str) -> EmbedRequest:
    """An ``embedContent`` body for ``model`` (the URL's); a 400 saying what is wrong."""
    payload = load_object(body)
    return EmbedRequest((_item(payload, "", model, batch=False),), False, payload)


def read_batch(body: bytes, model: str) -> EmbedRequest:
    """A ``batchEmbedContents`` body for ``model`` (the URL's); a 400 saying what is wrong."""
    payload = load_object(body)
    requests = payload.get("requests")
    if not isinstance(requests, list) or not requests:
        raise bad_request("requests: a non-empty array of EmbedContentRequest is required", "requests")
    if len(requests) > MAX_BATCH:
        raise bad_request(f"requests: at most {MAX_BATCH} requests in one batch, not {len(requests)}", "requests")
    items = []
    for index, request in enumerate(requests):
        where = f"requests[{index}]."
        if not isinstance(request, dict):
            raise bad_request(f"{where[:-1]}: must be an EmbedContentRequest object", where[:-1])
        items.append(_item(request, where, model, batch=True))
    return EmbedRequest(tuple(items), True, payload)


def _item(request: dict[str, Any], where: str, model: str, *, batch: bool) -> EmbedItem:
    named = request.get("model")
    if batch and named is None:
        raise bad_request(f"{where}model: each request of a batch names its model ('models/{model}')", f"{where}model")
    if named is not None and named != f"models/{model}":
        raise bad_request(
            f"{where}model: '{named}' is not the model of the URL ('models/{model}')"
            if isinstance(named, str)
            else f"{where}model: must be a string",
            f"{where}model",
        )
    content = request.get("content")
    if not isinstance(content, dict):
        raise bad_request(f"{where}content: a Content object is required", f"{where}content")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise bad_request(f"{where}content.parts: a non-empty array of parts is required", f"{where}content.parts")
    for index, part in enumerate(parts):
        at = f"{where}content.parts[{index}]"
        if not isinstance(part, dict) or not part:
            raise bad_request(f"{at}: must be a Part object with data", at)
        if "text" in part and not isinstance(part["text"], str):
            raise bad_request(f"{at}.text: must be a string", f"{at}.text")
    if not any(isinstance(p.get("text"), str) and p["text"] for p in parts) and all("text" in p for p in parts):
        raise bad_request(f"{where}content: the text to embed is empty", f"{where}content")
    task_type = field(request, "taskType")
    if task_type is not None and task_type not in TASK_TYPES:
        raise bad_request(f"{where}taskType: must be one of {', '.join(sorted(TASK_TYPES))}", f"{where}taskType")
    title = field(request, "title")
    if title is not None and not isinstance(title, str):
        raise bad_request(f"{where}title: must be a string", f"{where}title")
    dimensions = field(request, "outputDimensionality")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise bad_request(f"{where}outputDimensionality: must be a positive integer", f"{where}outputDimensionality")
    extra = tuple(name for name in request if _camel(name) not in FIELDS)
    return EmbedItem(tuple(parts), task_type, title, dimensions, where, extra)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def estimate_tokens(texts: Sequence[str]) -> int:
    """Input tokens of ``texts`` where the upstream reports none (Gemini): a token per four bytes of UTF-8,
    rounded up, for each text."""
    return sum(-(-len(text.encode()) // BYTES_PER_TOKEN) for text in texts)


def path(api_version: str, model: str, verb: str) -> str:
    """The path of ``verb`` (``embedContent``, ``batchEmbedContents``) for ``model`` under a Gemini base URL."""
    return f"/{api_version}/models/{quote(model, safe='')}:{verb}"


# ---- passthrough (Gemini client, Gemini channel) -------------------------------------------------------


def passthrough_body(request: EmbedRequest, body: bytes, upstream_model: str) -> bytes:
    """``body`` as the channel gets it: each ``model`` it names set to the channel's name of the model."""
    named = f"models/{upstream_model}"
    payload = request.payload
    nodes = payload["requests"] if request.batch else [payload]
    if all(node.get("model") in (None, named) for node in nodes):
        return body

    def renamed(node: dict[str, Any]) -> dict[str, Any]:
        return {**node, "model": named} if node.get("model") is not None else node

    # copies: the request's payload stays as the client sent it, for the next channel of the failover
    if request.batch:
        return dumps_kept({**payload, "requests": [renamed(node) for node in nodes]})
    return dumps_kept(renamed(payload))


# ---- from OpenAI (an OpenAI client on a Gemini channel) ------------------------------------------------


def batch_from_texts(texts: Sequence[str], upstream_model: str, dimensions: int | None) -> bytes:
    """A ``batchEmbedContents`` body embedding each of ``texts`` on its own."""
    options = {"outputDimensionality": dimensions} if dimensions is not None else {}
    requests = [
        {"model": f"models/{upstream_model}", "content": {"parts": [{"text": text}]}, **options} for text in texts
    ]
    return orjson.dumps({"requests": requests})


def read_batch_answer(data: bytes, count: int) -> list[list[float]]:
    """The vectors of a ``batchEmbedContents`` answer; a 502 when it does not hold ``count`` of them."""
    payload = load_object(data, upstream=True)
    embeddings = payload.get("embeddings")
    if not isinstance(embeddings, list) or len(embeddings) != count:
        raise bad_upstream(f"the upstream's batchEmbedContents answer does not hold {count} embeddings")
    return [_values(embedding, index) for index, embedding in enumerate(embeddings)]


def _values(embedding: Any, index: int) -> list[float]:
    values = embedding.get("values") if isinstance(embedding, dict) else None
    if not isinstance(values, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise bad_upstream(f"the upstream's embedding {index} has no array of numbers in 'values'")
    return [float(v) for v in values]


# ---- to OpenAI (a Gemini client on an OpenAI-family channel) -------------------------------------------


def openai_body(request: EmbedRequest, upstream_model: str) -> bytes:
    """The OpenAI Embeddings body of ``request``: one input per content (its text parts joined), its
    ``outputDimensionality`` as ``dimensions``. A 400 naming the field for what OpenAI cannot express: a
    ``taskType`` (but ``TASK_TYPE_UNSPECIFIED``), a ``title``, a field Relay does not know, a part that is not
    text, and a batch asking for several dimensionalities (one OpenAI request has one)."""
    beside = [name for name in request.payload if name != "requests"] if request.batch else []
    if beside:
        raise unsupported(beside[0])
    for item in request.items:
        if item.extra:
            raise unsupported(f"{item.where}{item.extra[0]}")
        if item.task_type not in (None, "TASK_TYPE_UNSPECIFIED"):
            raise unsupported(f"{item.where}taskType")
        if item.title is not None:
            raise unsupported(f"{item.where}title")
    sizes = {item.dimensions for item in request.items}
    if len(sizes) > 1:
        raise bad_request(
            "requests[].outputDimensionality: every request of a batch must ask for the same dimensionality "
            "on this model",
            "requests[].outputDimensionality",
        )
    payload: dict[str, Any] = {
        "model": upstream_model,
        "input": [item.text() for item in request.items],
        "encoding_format": "float",
    }
    (dimensions,) = sizes
    if dimensions is not None:
        payload["dimensions"] = dimensions
    return orjson.dumps(payload)


def unsupported(param: str) -> RelayError:
    """The 400 for a field the channel's API has no counterpart for."""
    return RelayError(
        400,
        "invalid_request",
        f"{param}: not supported on this model (its channel's embeddings API has no such option)",
        param=param,
        code="unsupported_parameter",
    )


def answer(vectors: Sequence[Sequence[float]], batch: bool) -> dict[str, Any]:
    """Gemini's answer of ``vectors``: ``{"embedding": …}`` for embedContent, ``{"embeddings": […]}`` for a batch."""
    if batch:
        return {"embeddings": [{"values": list(vector)} for vector in vectors]}
    return {"embedding": {"values": list(vectors[0])}}

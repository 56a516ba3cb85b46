"""The mock upstream's embeddings, in each provider's shape: OpenAI ``/embeddings``, Gemini ``:embedContent`` and
``:batchEmbedContents``.

Every text gets the same unit vector whatever the route: its components come from SHA-256 of the text (counter
blocks, so a longer vector extends a shorter one), ``DIMENSIONS`` of them unless ``dimensions`` /
``outputDimensionality`` asks for another count (1 to ``MAX_DIMENSIONS``), then scaled to length 1 and rounded to
float32 (so the float and base64 forms carry the same numbers). A token-id array is embedded as the text
``tokens:ID,ID,…``. A Gemini content of several text parts is embedded as their texts joined by a newline.

Usage as the providers count it: OpenAI ``prompt_tokens`` (a token per four characters of each text, rounded up;
one per token id); Gemini none. ``mock:status=NNN`` in any text answers that error status instead. Requests are
refused (400) where the provider refuses them: no input, an empty string, mixed or wrong types, unknown fields
(Gemini), a batch request naming another model than the URL's, a dimensionality out of range.
"""

from __future__ import annotations

import array
import base64
import hashlib
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects.common import nested_deeper
from relay.mock import wire_chat, wire_gemini
from relay.mock.directives import parse_directives
from relay.mock.model import Answer, json_answer

if TYPE_CHECKING:
    from relay.mock.call import Call, Dialect, MockState, RouteEntry

#: The length of a vector when the request asks for none.
DIMENSIONS = 16
#: The longest vector the mock makes (text-embedding-3-large's and gemini-embedding-001's size).
MAX_DIMENSIONS = 3072
#: OpenAI's most inputs per request, Gemini's most requests per batch.
MAX_INPUTS = 2048
MAX_BATCH = 100
MAX_DEPTH = 200

_OPENAI_FIELDS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
_GEMINI_FIELDS = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})
_TASK_TYPES = frozenset(
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


class Refused(Exception):
    """A request the provider would refuse: the message of its 400."""


def vector(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """The unit vector of ``text``, ``dimensions`` long, in float32 precision."""
    raw: list[float] = []
    block = 0
    while len(raw) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        raw.extend(int.from_bytes(digest[i : i + 4], "little") / 2**31 - 1.0 for i in range(0, 32, 4))
        block += 1
    raw = raw[:dimensions]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return array.array("f", (v / norm for v in raw)).tolist()


def tokens_of(text: str) -> int:
    """The mock's token count of a text: a token per four characters, rounded up."""
    return -(-len(text) // 4)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _load(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Refused("the request body is not JSON") from None
    if not isinstance(payload, dict):
        raise Refused("the request body must be a JSON object")
    if nested_deeper(payload, MAX_DEPTH):
        raise Refused(f"the request body is nested too deeply: at most {MAX_DEPTH} levels")
    return payload


def _status(texts: Sequence[str]) -> int | None:
    """The status a ``mock:status=NNN`` directive in any of ``texts`` asks for."""
    for text in texts:
        if "mock:" in text:
            status = parse_directives(text).status
            if status:
                return status
    return None


# ---- OpenAI ``/embeddings`` ------------------------------------------------------------------------------


def _openai_inputs(value: Any) -> list[tuple[str, int]]:
    """Each input as (the text its vector derives from, its tokens)."""
    if isinstance(value, str):
        if not value:
            raise Refused("'$.input' is invalid: the input cannot be an empty string")
        return [(value, tokens_of(value))]
    if not isinstance(value, list) or not value:
        raise Refused("'$.input' is invalid: a string, an array of strings or an array of token arrays is required")
    if len(value) > MAX_INPUTS:
        raise Refused(f"'$.input' is invalid: at most {MAX_INPUTS} inputs per request")
    if all(isinstance(item, str) for item in value):
        if not all(value):
            raise Refused("'$.input' is invalid: an input cannot be an empty string")
        return [(item, tokens_of(item)) for item in value]
    if all(_is_int(item) and item >= 0 for item in value):
        return [(_token_text(value), len(value))]
    if all(isinstance(item, list) and item and all(_is_int(t) and t >= 0 for t in item) for item in value):
        return [(_token_text(item), len(item)) for item in value]
    raise Refused("'$.input' is invalid: mixed or unsupported input types")


def _token_text(ids: Sequence[int]) -> str:
    return "tokens:" + ",".join(map(str, ids))


def openai_embeddings(payload: dict[str, Any]) -> Answer:
    unknown = sorted(set(payload) - _OPENAI_FIELDS)
    if unknown:
        raise Refused(f"Unrecognized request argument supplied: {unknown[0]}")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise Refused("you must provide a model parameter")
    if "input" not in payload:
        raise Refused("'input' is a required property")
    inputs = _openai_inputs(payload["input"])
    dimensions = payload.get("dimensions", DIMENSIONS)
    if not _is_int(dimensions) or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise Refused(f"'$.dimensions' is invalid: an integer from 1 to {MAX_DIMENSIONS}")
    encoding = payload.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise Refused("'$.encoding_format' is invalid: 'float' or 'base64'")
    if "user" in payload and not isinstance(payload["user"], str):
        raise Refused("'$.user' is invalid: a string")
    status = _status([text for text, _ in inputs])
    if status is not None:
        return Answer(status, wire_chat.error_body(status))
    data = []
    for index, (text, _) in enumerate(inputs):
        values = vector(text, dimensions)
        embedding: Any = values
        if encoding == "base64":
            embedding = base64.b64encode(array.array("f", values).tobytes()).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(count for _, count in inputs)
    return json_answer(
        200,
        {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
    )


def _openai(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    try:
        return openai_embeddings(_load(call.body))
    except Refused as refused:
        return wire_chat.error(400, str(refused))


# ---- Gemini ``:embedContent`` / ``:batchEmbedContents`` ------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _gemini_request(request: Any, where: str, model: str, batch: bool) -> tuple[str, int]:
    """(the text of one EmbedContentRequest, its vector's length)."""
    if not isinstance(request, dict):
        raise Refused(f"* {where}: must be an EmbedContentRequest object")
    fields = {_camel(name): value for name, value in request.items()}
    for name in fields:
        if name not in _GEMINI_FIELDS:
            raise Refused(f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field.")
    named = fields.get("model")
    if batch and named is None:
        raise Refused(f"* {where}.model: unexpected model name format")
    if named is not None and named != f"models/{model}":
        raise Refused(f"* {where}.model: the model of each request must be the model of the URL (models/{model})")
    content = fields.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        raise Refused(f"* {where}.content.parts: contents.parts must not be empty")
    texts = []
    for index, part in enumerate(parts):
        text = part.get("text") if isinstance(part, dict) else None
        if not isinstance(text, str):
            raise Refused(f"* {where}.content.parts[{index}]: only text can be embedded by this model")
        texts.append(text)
    text = "\n".join(texts)
    if not text.strip():
        raise Refused(f"* {where}.content: the text to embed is empty")
    task = fields.get("taskType")
    if task is not None and task not in _TASK_TYPES:
        raise Refused(f"Invalid value at '{where}.task_type' (type.googleapis.com/google.ai.TaskType), {task!r}")
    if "title" in fields and not isinstance(fields["title"], str):
        raise Refused(f"Invalid value at '{where}.title' (TYPE_STRING)")
    dimensions = fields.get("outputDimensionality", DIMENSIONS)
    if not _is_int(dimensions) or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise Refused(f"* {where}.output_dimensionality: must be an integer from 1 to {MAX_DIMENSIONS}")
    return text, dimensions


def gemini_embeddings(payload: dict[str, Any], model: str, batch: bool) -> Answer:
    if batch:
        unknown = sorted(set(payload) - {"requests"})
        if unknown:
            raise Refused(f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.')
        requests = payload.get("requests")
        if not isinstance(requests, list) or not requests:
            raise Refused("* BatchEmbedContentsRequest.requests: requests must not be empty")
        if len(requests) > MAX_BATCH:
            raise Refused(f"* BatchEmbedContentsRequest.requests: at most {MAX_BATCH} requests are allowed")
        items = [
            _gemini_request(r, f"BatchEmbedContentsRequest.requests[{i}]", model, True) for i, r in enumerate(requests)
        ]
    else:
        items = [_gemini_request(payload, "EmbedContentRequest", model, False)]
    status = _status([text for text, _ in items])
    if status is not None:
        return wire_gemini.error(status, f"mock upstream error {status}")
    vectors = [{"values": vector(text, dimensions)} for text, dimensions in items]
    return json_answer(200, {"embeddings": vectors} if batch else {"embedding": vectors[0]})


def _gemini(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    try:
        payload = _load(call.body)
        return gemini_embeddings(payload, match["model"], match["verb"] == "batchEmbedContents")
    except Refused as refused:
        return wire_gemini.error(400, str(refused))


#: Routes ``relay.mock.router`` tries before its own: (method, path pattern, dialect or None, handler).
ROUTES: tuple[RouteEntry, ...] = (
    ("POST", re.compile(r"/embeddings$"), "openai", _openai),
    ("POST", re.compile(r"/models/(?P<model>[^/]+):(?P<verb>embedContent|batchEmbedContents)$"), "gemini", _gemini),
)

"""OpenAI Embeddings (``POST /v1/embeddings``): the request read strictly, and the answer in OpenAI's list shape.

A request's ``input`` is one of four forms (the openai SDK's ``EmbeddingCreateParams``): a string, an array of
strings, an array of token ids, or an array of token-id arrays. ``encoding_format`` is ``float`` (the API's
default) or ``base64``: the little-endian float32 bytes of each vector, base64-encoded, as OpenAI sends them
(and as the openai Python SDK, which asks for base64 unless told otherwise, decodes them).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from relay.dialects.common import bad_request, bad_upstream, load_object, refuse_ambiguous, token_count

#: At most this many inputs in one request (OpenAI's limit).
MAX_INPUTS = 2048
#: The fields of an Embeddings request Relay reads.
FIELDS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
#: The output formats OpenAI knows.
ENCODINGS = ("float", "base64")

Encoding = Literal["float", "base64"]


@attrs.frozen
class EmbeddingsRequest:
    """An OpenAI Embeddings request, its fields checked."""

    model: str
    #: The inputs, each a text or a list of token ids (never both kinds in one request).
    inputs: tuple[str | tuple[int, ...], ...]
    #: Whether ``input`` held token ids (an array of ids, or of id arrays).
    tokens: bool
    dimensions: int | None
    encoding_format: Encoding
    #: Whether ``encoding_format`` was sent (the answer's vectors are re-encoded to it only then).
    encoding_given: bool
    user: str | None
    #: The whole body, unknown fields included (an OpenAI-family channel gets them as sent).
    payload: dict[str, Any]

    @property
    def texts(self) -> list[str]:
        """The inputs as texts; only for a request whose inputs are texts (``tokens`` is False)."""
        return [text for text in self.inputs if isinstance(text, str)]


def read_request(body: bytes) -> EmbeddingsRequest:
    """The request in ``body``; a 400 naming the parameter at the first thing wrong."""
    payload = load_object(body)
    refuse_ambiguous(body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must be a non-empty string", "model")
    if "input" not in payload:
        raise bad_request("'input' is required: a string, an array of strings or an array of token ids", "input")
    inputs, tokens = _inputs(payload["input"])
    dimensions = payload.get("dimensions")
    if dimensions is not None and (not _is_int(dimensions) or dimensions < 1):
        raise bad_request("'dimensions' must be a positive integer", "dimensions")
    encoding = payload.get("encoding_format")
    if encoding is not None and encoding not in ENCODINGS:
        raise bad_request("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    user = payload.get("user")
    if user is not None and not isinstance(user, str):
        raise bad_request("'user' must be a string", "user")
    return EmbeddingsRequest(
        model, inputs, tokens, dimensions, encoding or "float", encoding is not None, user, payload
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _inputs(value: Any) -> tuple[tuple[str | tuple[int, ...], ...], bool]:
    """The inputs of ``input`` and whether they are token ids; a 400 for any other form."""
    if isinstance(value, str):
        if not value:
            raise bad_request("'input' cannot be an empty string", "input")
        return (value,), False
    if not isinstance(value, list):
        raise bad_request(
            "'input' must be a string, an array of strings, an array of token ids or an array of token-id arrays",
            "input",
        )
    if not value:
        raise bad_request("'input' cannot be an empty array", "input")
    if len(value) > MAX_INPUTS:
        raise bad_request(f"'input' holds {len(value)} items: at most {MAX_INPUTS} per request", "input")
    first = value[0]
    if isinstance(first, str):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise bad_request(f"'input[{index}]' must be a string, as the first item is", f"input[{index}]")
            if not item:
                raise bad_request(f"'input[{index}]' cannot be an empty string", f"input[{index}]")
        return tuple(value), False
    if _is_int(first):
        return (_token_ids(value, "input"),), True
    if isinstance(first, list):
        return tuple(_token_ids(item, f"input[{index}]") for index, item in enumerate(value)), True
    raise bad_request("'input[0]' must be a string, a token id or an array of token ids", "input[0]")


def _token_ids(value: Any, param: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise bad_request(f"'{param}' must be an array of token ids, as the first item is", param)
    if not value:
        raise bad_request(f"'{param}' cannot be an empty array of token ids", param)
    for index, item in enumerate(value):
        if not _is_int(item) or item < 0:
            raise bad_request(f"'{param}[{index}]' must be a token id: a non-negative integer", f"{param}[{index}]")
    return tuple(value)


# ---- the answer --------------------------------------------------------------------------------------


def encode_vector(values: Sequence[float], encoding: Encoding) -> list[float] | str:
    """A vector as OpenAI writes it: a list of floats, or base64 of its little-endian float32 bytes."""
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")
    return list(values)


def decode_vector(value: Any) -> list[float] | None:
    """A vector as OpenAI wrote it (floats, or base64 of little-endian float32), or None when it is neither."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            return None
        if len(raw) % 4:
            return None
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return [float(v) for v in value]
    return None


def answer(vectors: Sequence[Sequence[float]], model: str, prompt_tokens: int, encoding: Encoding) -> dict[str, Any]:
    """The OpenAI ``CreateEmbeddingResponse`` of ``vectors`` (in input order)."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": encode_vector(vector, encoding)}
            for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def read_answer(data: bytes, count: int) -> tuple[dict[str, Any], list[list[float]], int]:
    """An OpenAI-family upstream's answer: the object, its vectors in input order, and its ``prompt_tokens``;
    a 502 when it is not the list of ``count`` embeddings a request of ``count`` inputs gets."""
    payload = load_object(data, upstream=True)
    items = payload.get("data")
    if not isinstance(items, list) or len(items) != count:
        raise bad_upstream(f"the upstream's embeddings answer does not hold {count} embeddings in 'data'")
    vectors: list[list[float] | None] = [None] * count
    for position, item in enumerate(items):
        index = item.get("index", position) if isinstance(item, dict) else None
        vector = decode_vector(item.get("embedding")) if isinstance(item, dict) else None
        if not _is_int(index) or not 0 <= index < count or vectors[index] is not None or vector is None:
            raise bad_upstream(f"the upstream's embedding {position} is not an embedding of this request")
        vectors[index] = vector
    return payload, [v for v in vectors if v is not None], token_count(payload.get("usage"), "prompt_tokens")


def reencoded(payload: dict[str, Any], vectors: Sequence[Sequence[float]], encoding: Encoding) -> bool:
    """Write each vector of ``payload`` (an upstream's answer, read by ``read_answer``) in ``encoding`` where it
    is written otherwise (an OpenAI-compatible server may answer floats to a request for base64); whether any
    was."""
    changed = False
    for position, item in enumerate(payload["data"]):
        if isinstance(item["embedding"], str) != (encoding == "base64"):
            item["embedding"] = encode_vector(vectors[item.get("index", position)], encoding)
            changed = True
    return changed

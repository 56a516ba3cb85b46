"""OpenAI Chat Completions: what a relay needs of the dialect on the passthrough path.

Sans-IO: bytes and dicts in, bytes and dicts out. Errors take the shape
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from relay.errors import ErrorKind, RelayError
from relay.http.messages import Headers

_TYPES: dict[ErrorKind, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "method_not_allowed": "invalid_request_error",
    "request_timeout": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "upstream": "upstream_error",
    "timeout": "timeout_error",
    "internal": "server_error",
}


def error_payload(error: RelayError) -> dict[str, Any]:
    return {"error": {"message": error.message, "type": _TYPES[error.kind], "param": error.param, "code": error.code}}


def encode_error(error: RelayError) -> tuple[int, Headers, bytes]:
    headers = ((b"content-type", b"application/json"), *error.headers)
    return error.status, headers, orjson.dumps(error_payload(error))


def is_stream_error(data: bytes | None) -> bool:
    """Whether a stream event's data is a mid-stream error (``{"error": …}``), as OpenAI sends them."""
    if not data or b'"error"' not in data[:16]:
        return False  # the usual chunk starts {"id":"chatcmpl-…: no parsing on the way
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(payload, dict) and "error" in payload and "choices" not in payload


def encode_stream_error(error: RelayError) -> bytes:
    """The last frame of a stream that failed after it started; the SDK raises on it."""
    return b"data: " + orjson.dumps(error_payload(error)) + b"\n\n"


def is_error_body(body: bytes) -> bool:
    """Whether an upstream error body already has the OpenAI shape (then it is passed on as is)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    error = payload.get("error") if isinstance(payload, dict) else None
    return isinstance(error, dict) and isinstance(error.get("message"), str)


def complete_error_body(body: bytes) -> bytes:
    """An OpenAI-shaped error body with all four of message, type, param and code (unchanged when it has them)."""
    payload = orjson.loads(body)
    error = payload["error"]
    defaults = {"type": "upstream_error", "param": None, "code": None}
    if defaults.keys() <= error.keys():
        return body
    for name, value in defaults.items():
        error.setdefault(name, value)
    return orjson.dumps(payload)


def error_text(body: bytes) -> str:
    """A short, readable message from an upstream error body of any shape."""
    text = body.decode("utf-8", "replace").strip()
    return text[:1000] or "(empty body)"


class RequestInfo:
    """What the relay reads of a Chat Completions request body."""

    __slots__ = ("model", "payload", "stream")

    def __init__(self, payload: dict[str, Any], model: str, stream: bool) -> None:
        self.payload = payload
        self.model = model
        self.stream = stream


def read_request(body: bytes) -> RequestInfo:
    """Parse and check the fields the relay relies on; a 400 naming the parameter otherwise."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RelayError(400, "invalid_request", f"request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RelayError(400, "invalid_request", "request body must be a JSON object")
    _refuse_ambiguous(body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise RelayError(
            400, "invalid_request", "you must provide a model parameter (a non-empty string)", param="model"
        )
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RelayError(400, "invalid_request", "'messages' must be a non-empty array", param="messages")
    stream = payload.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise RelayError(400, "invalid_request", "'stream' must be a boolean", param="stream")
    return RequestInfo(payload, model, stream)


#: Top-level fields the relay acts on: sent twice, the relay and the upstream might each read another one.
_DECIDING = ("model", "stream")


def _refuse_ambiguous(body: bytes) -> None:
    """A 400 when a deciding field appears twice at the top level (a key's allow-list could be bypassed).

    JSON parsers differ on duplicate keys (last wins here, first wins elsewhere) and the original
    bytes go upstream. The full check runs only when the name occurs more than once anywhere.
    """
    if not any(body.count(b'"%s"' % name.encode()) > 1 for name in _DECIDING):
        return
    names: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        names[:] = [name for name, _ in items]  # the top-level object is the last one completed
        return {}

    try:
        json.loads(body, object_pairs_hook=pairs)
    except RecursionError:
        raise RelayError(400, "invalid_request", "request body is nested too deeply") from None
    except ValueError as exc:
        raise RelayError(400, "invalid_request", f"request body is not valid JSON: {exc}") from None
    for name in _DECIDING:
        if names.count(name) > 1:
            raise RelayError(400, "invalid_request", f"'{name}' appears more than once in the body", param=name)


def encode_request(info: RequestInfo, upstream_model: str, original: bytes) -> bytes:
    """The body for the upstream: the original bytes, unless the model name must change."""
    if upstream_model == info.model:
        return original
    return orjson.dumps({**info.payload, "model": upstream_model})


def rename_model(body: bytes, public_model: str, upstream_model: str) -> bytes:
    """A response body or stream chunk with the upstream's model name replaced by the public one."""
    if public_model == upstream_model:
        return body
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(payload, dict) and "model" in payload:
        payload["model"] = public_model
        return orjson.dumps(payload)
    return body

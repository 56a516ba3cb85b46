"""OpenAI Chat Completions: what a relay needs of the dialect on the passthrough path.

Sans-IO: bytes and dicts in, bytes and dicts out. Errors take the shape
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

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

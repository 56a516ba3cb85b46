"""Gemini responses and errors: GenerateContentResponse bodies, countTokens answers, errors, passthrough helpers.

Sans-IO: an upstream's answer to ``ir.Response`` and back (a candidate's parts by ``gemini.contents``),
``{"totalTokens": N}`` both ways, Relay's errors in Gemini's shape and an upstream's error answer as a
``RelayError``, the passthrough helpers (``rename_model``, ``UsageReader``), and the wire mappings
``gemini.stream`` shares (finish reasons, usage, RPC statuses, response ids, SSE frames). Re-exported by
``gemini``. docs/conversions/gemini.md has the tables below in full.

Choices made on the users' behalf:

- Responses: candidate 0 only; ``modelVersion`` is the client's model name, ``responseId`` the IR id without
  another dialect's prefix. Thoughts are shown as ``thought: true`` parts when the client asked for them;
  answer parts with no IR slot (images, code execution) are dropped. Usage: ``candidatesTokenCount``
  excludes thoughts, the IR's output includes them; a blocked prompt is ``content_filter``.
- Errors: ``{"error": {"code", "message", "status"}}``; an upstream's RPC status is kept as ``code``;
  Gemini's 400 ``API_KEY_INVALID`` is read as 401, ``RetryInfo.retryDelay`` as ``retry-after``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from relay.dialects import ir
from relay.dialects.common import ID_PREFIXES, bad_upstream, error_text, load_object, token_count, upstream_error
from relay.dialects.gemini.contents import decode_model_parts, encode_model_parts
from relay.errors import RelayError
from relay.http.messages import Headers

# ---- wire mappings shared with gemini.stream ---------------------------------------------------------------

_FILTERED = frozenset(
    {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "LANGUAGE", "MODEL_ARMOR",
    }
)  # fmt: skip
_FINISH_OUT: dict[str, str] = {"length": "MAX_TOKENS", "content_filter": "SAFETY"}

#: HTTP status → Google RPC status (google.rpc.Code's HTTP mapping). Other statuses:
#: INVALID_ARGUMENT below 500, INTERNAL from 500.
STATUS_BY_CODE: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "FAILED_PRECONDITION",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",  # Anthropic's overloaded: Google answers an overloaded model with 503 UNAVAILABLE
}
#: Google RPC status → the HTTP status Google answers it with.
CODE_BY_STATUS: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def finish_reason(value: Any, has_calls: bool) -> ir.FinishReason:
    """Gemini ``finishReason`` → IR: ``MAX_TOKENS`` stays ``length`` after calls; STOP after calls → tool_calls."""
    if value == "MAX_TOKENS":
        return "length"
    if value in _FILTERED:
        return "content_filter"
    return "tool_calls" if has_calls else "stop"


def finish_to_wire(reason: ir.FinishReason) -> str:
    """IR finish reason → Gemini ``finishReason`` (tool calls finish with ``STOP``, as Gemini's do)."""
    return _FINISH_OUT.get(reason, "STOP")


def usage_from_wire(meta: Mapping[str, Any]) -> ir.Usage:
    """``usageMetadata`` → IR usage: output = candidates + thoughts; input = prompt (+ server-tool prompt)."""
    thoughts = token_count(meta, "thoughtsTokenCount")
    return ir.Usage(
        input_tokens=token_count(meta, "promptTokenCount") + token_count(meta, "toolUsePromptTokenCount"),
        output_tokens=token_count(meta, "candidatesTokenCount") + thoughts,
        cached_tokens=token_count(meta, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def usage_to_wire(usage: ir.Usage) -> dict[str, Any]:
    """IR usage → ``usageMetadata``: ``candidatesTokenCount`` excludes the thoughts, as Gemini's does."""
    wire: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(0, usage.output_tokens - usage.reasoning_tokens),
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_tokens:
        wire["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        wire["thoughtsTokenCount"] = usage.reasoning_tokens
    return wire


def rpc_status(status: int, code: str | None = None) -> str:
    """The Google RPC status: ``code`` when it is one (an upstream's, kept), else by HTTP status."""
    if code in CODE_BY_STATUS:
        return code  # type: ignore[return-value]
    if status in STATUS_BY_CODE:
        return STATUS_BY_CODE[status]
    return "INVALID_ARGUMENT" if status < 500 else "INTERNAL"


def error_payload(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """``{"error": {"code", "message", "status"}}``."""
    return {"error": {"code": status, "message": message, "status": rpc_status(status, code)}}


def stream_error(error: Any) -> ir.StreamError:
    """A chunk's ``error`` object → ``StreamError`` (its HTTP ``code``, else the one of its RPC status)."""
    if not isinstance(error, dict):
        return ir.StreamError(502, str(error), code="upstream_error")
    rpc = error.get("status") if isinstance(error.get("status"), str) else None
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool) or not 400 <= code <= 599:
        code = CODE_BY_STATUS.get(rpc or "", 502)
    message = error.get("message")
    return ir.StreamError(code, message if isinstance(message, str) else rpc or "upstream error", code=rpc)


def response_id(id: str) -> str:
    """A Gemini ``responseId``: ``id`` without another dialect's prefix (Gemini's ids have none)."""
    for known in ID_PREFIXES:
        if id.startswith(known):
            return id[len(known) :]
    return id


def sse_frame(payload: bytes) -> bytes:
    """One SSE frame, with Gemini's CRLF line ends."""
    return b"data: " + payload + b"\r\n\r\n"


# ---- errors ------------------------------------------------------------------------------------------------


def encode_error(error: RelayError) -> tuple[int, Headers, bytes]:
    """Relay's error as a Gemini error answer: ``{"error": {"code", "message", "status"}}``."""
    headers = ((b"content-type", b"application/json"), *error.headers)
    return error.status, headers, orjson.dumps(error_payload(error.status, error.message, error.code))


def encode_stream_error(error: RelayError, *, sse: bool = True, after_element: bool = True) -> bytes:
    """The last frame of a stream that failed after it started (the SDK raises on ``{"error": …}``).

    In array mode (``sse=False``) the error is the last element and closes the array: after an element
    already sent (``,`` first), or as the only one (``[`` first) with ``after_element=False``.
    """
    payload = orjson.dumps(error_payload(error.status, error.message, error.code))
    if sse:
        return sse_frame(payload)
    return (b",\r\n" if after_element else b"[") + payload + b"]"


def decode_error(status: int, body: bytes) -> RelayError:
    """An upstream's error answer: status and message kept, the RPC status as ``code``.

    Gemini answers a bad API key with 400 ``API_KEY_INVALID``: that is read as 401. A ``RetryInfo``
    detail becomes a ``retry-after`` header (whole seconds, rounded up).
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload:  # streamed without alt=sse, the error is an array's element
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return upstream_error(status, error_text(body))
    rpc = error.get("status") if isinstance(error.get("status"), str) else None
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    if status == 400 and any(d.get("reason") == "API_KEY_INVALID" for d in details):
        status, rpc = 401, "UNAUTHENTICATED"
    result = upstream_error(status, error["message"], rpc)
    for detail in details:
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = math.ceil(float(delay[:-1]))
            except ValueError:
                continue
            result.headers = ((b"retry-after", str(max(0, seconds)).encode()),)
    return result


# ---- passthrough helpers -----------------------------------------------------------------------------------


def rename_model(data: bytes, public: str, upstream: str) -> bytes:
    """A body, chunk or array with ``modelVersion`` set to the ``public`` name (data without one: unparsed)."""
    if public == upstream or b'"modelVersion"' not in data:
        return data
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    items = payload if isinstance(payload, list) else [payload]
    changed = False
    for item in items:
        if isinstance(item, dict) and "modelVersion" in item:
            item["modelVersion"] = public
            changed = True
    return orjson.dumps(payload) if changed else data


class UsageReader:
    """Usage sniffed on the passthrough path: ``feed`` each chunk's data, or a whole body (object or array).

    Gemini's ``usageMetadata`` is cumulative: the last one wins. Data without the key is not parsed.
    """

    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage: ir.Usage | None = None

    def feed(self, data: bytes) -> None:
        if b'"usageMetadata"' not in data:
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        for item in payload if isinstance(payload, list) else (payload,):
            meta = item.get("usageMetadata") if isinstance(item, dict) else None
            if isinstance(meta, dict):
                self.usage = usage_from_wire(meta)


# ---- responses ---------------------------------------------------------------------------------------------


def decode_response(body: bytes) -> ir.Response:
    """An upstream's GenerateContentResponse; a malformed one is a 502, an ``error`` body its error."""
    payload = load_object(body, upstream=True)
    if "error" in payload and "candidates" not in payload:
        error = stream_error(payload["error"])
        raise upstream_error(error.status, error.message, error.code)
    rid = payload.get("responseId") if isinstance(payload.get("responseId"), str) else ""
    model = payload.get("modelVersion") if isinstance(payload.get("modelVersion"), str) else ""
    meta = payload.get("usageMetadata")
    usage = usage_from_wire(meta) if isinstance(meta, dict) else None
    created = _created(payload.get("createTime"))
    candidates = payload.get("candidates")
    if not candidates:
        feedback = payload.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            return ir.Response(rid, model, (), "content_filter", usage, created=created)
        raise bad_upstream("the upstream's answer has no candidates")
    candidate = candidates[0] if isinstance(candidates, list) else None
    if not isinstance(candidate, dict):
        raise bad_upstream("the upstream's candidates are not a list of objects")
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list | None):
        raise bad_upstream("the upstream's candidate parts are not a list")
    decoded = decode_model_parts(parts or [], "candidates[0].content.parts", rid, upstream=True)
    has_calls = any(isinstance(p, ir.ToolCall) for p in decoded)
    search = grounding_search(candidate.get("groundingMetadata"))
    return ir.Response(
        id=rid,
        model=model,
        parts=((search,) if search is not None else ()) + tuple(decoded),  # type: ignore[arg-type]  # no media
        finish_reason=finish_reason(candidate.get("finishReason"), has_calls),
        usage=usage,
        created=created,
    )


def grounding_search(meta: Any) -> ir.WebSearch | None:
    """A candidate's ``groundingMetadata`` as the web search Google ran: its queries and the sources' URLs
    (the spans of text each source supports are not carried)."""
    if not isinstance(meta, dict):
        return None
    raw_queries = meta.get("webSearchQueries")
    queries = tuple(q for q in raw_queries if isinstance(q, str)) if isinstance(raw_queries, list) else ()
    chunks = meta.get("groundingChunks")
    webs = [c.get("web") for c in chunks if isinstance(c, dict)] if isinstance(chunks, list) else []
    sources = tuple(w["uri"] for w in webs if isinstance(w, dict) and isinstance(w.get("uri"), str))
    if not queries and not sources:
        return None
    return ir.WebSearch(id="", queries=queries, sources=sources)


def _created(value: Any) -> int:
    """Vertex's ``createTime`` (RFC 3339) → Unix seconds; 0 when absent or unreadable."""
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        return 0


def encode_response(resp: ir.Response, req: ir.Request) -> bytes:
    """A GenerateContentResponse for the client: its model name, the IR id without a foreign prefix."""
    show = req.reasoning is not None and req.reasoning.include is True
    parts = encode_model_parts(resp.parts, request=False, show=show)
    candidate: dict[str, Any] = {}
    if parts:
        candidate["content"] = {"parts": parts, "role": "model"}
    candidate["finishReason"] = finish_to_wire(resp.finish_reason)
    candidate["index"] = 0
    body: dict[str, Any] = {"candidates": [candidate]}
    if resp.usage is not None:
        body["usageMetadata"] = usage_to_wire(resp.usage)
    body["modelVersion"] = req.model
    rid = response_id(resp.id)
    if rid:
        body["responseId"] = rid
    return orjson.dumps(body)


# ---- countTokens answers -----------------------------------------------------------------------------------


def decode_count_response(body: bytes) -> int:
    """``{"totalTokens": N}`` → N (absent: 0, as proto-JSON leaves zeros out); a 502 for anything else."""
    payload = load_object(body, upstream=True)
    count = payload.get("totalTokens", 0 if "error" not in payload else None)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise bad_upstream("the upstream's countTokens answer has no totalTokens count")
    return count


def encode_count_response(count: int) -> bytes:
    return orjson.dumps({"totalTokens": count, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": count}]})

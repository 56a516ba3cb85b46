"""The JSON-RPC the MCP proxy reads: what a client's POST asks for, and what the server answered to its tool calls.

The proxy forwards a client's message unchanged; it reads it only to find its ``tools/call`` requests (each is
counted against the key's rpm and logged) and to refuse what is not JSON-RPC at all. It reads the server's
answer (a JSON body, or the data of each event of a stream) only to learn how those calls ended: a result, a
result with ``isError: true`` (the tool failed), or a JSON-RPC error.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from relay.http.messages import Headers, Response
from relay.redact import redact

# JSON-RPC 2.0's error codes, and the one MCP's SDKs use for a request the transport gave up on.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
CONNECTION_CLOSED = -32000
#: Relay's own code for a tool call its rate limit or quota refused (in JSON-RPC's server-defined range).
RATE_LIMITED = -32029


class NotJsonRpc(Exception):
    """The client's body is not a JSON-RPC message (nor a batch of them): ``code`` and ``message`` say why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.define
class ToolCall:
    """One ``tools/call`` request of a client's POST, and how the server answered it."""

    id: Any
    tool: str
    #: None until its answer is seen; then ``ok``, ``tool_error`` (``isError: true``) or ``jsonrpc_error``.
    outcome: str | None = None
    #: What went wrong, for the operator (the tool's first text, or the JSON-RPC error's code and message).
    detail: str | None = None


@attrs.define
class Posted:
    """What a client's POST holds: its request ids, and its tool calls."""

    ids: list[Any]
    calls: list[ToolCall]

    @property
    def first_id(self) -> Any:
        return self.ids[0] if self.ids else None


def read_post(body: bytes) -> Posted:
    """The requests and tool calls of a POST's body (one message, or a batch: MCP's 2025-03-26 revision);
    ``NotJsonRpc`` when it is not JSON-RPC."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise NotJsonRpc(PARSE_ERROR, "Parse error: the body is not JSON") from None
    messages = payload if isinstance(payload, list) else [payload]
    if not messages:
        raise NotJsonRpc(INVALID_REQUEST, "Invalid Request: an empty batch")
    ids: list[Any] = []
    calls: list[ToolCall] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise NotJsonRpc(INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")
        method = message.get("method")
        if method is not None and not isinstance(method, str):
            raise NotJsonRpc(INVALID_REQUEST, "Invalid Request: method must be a string")
        if method is None or "id" not in message:
            continue  # a notification, or the client's answer to a request of the server's
        ids.append(message["id"])
        if method == "tools/call":
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            calls.append(ToolCall(message["id"], name if isinstance(name, str) and name else "(unnamed)"))
    return Posted(ids, calls)


class Outcomes:
    """Reads the server's messages (a JSON body, or one event's data at a time) for the answers to a POST's
    requests, and settles its tool calls with theirs."""

    def __init__(self, posted: Posted) -> None:
        self._waiting: dict[bytes, Any] = {_key(request_id): request_id for request_id in posted.ids}
        self._calls = {_key(call.id): call for call in posted.calls}

    @property
    def pending(self) -> list[Any]:
        """The ids of the requests no answer was seen for yet."""
        return list(self._waiting.values())

    def feed(self, data: bytes) -> None:
        if not self._waiting or (b'"result"' not in data and b'"error"' not in data):
            return  # not an answer (a notification, a progress event): not parsed
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        for message in payload if isinstance(payload, list) else [payload]:
            if isinstance(message, dict) and "id" in message:
                key = _key(message["id"])
                self._waiting.pop(key, None)
                call = self._calls.pop(key, None)
                if call is not None:
                    _settle(call, message)


def _key(request_id: Any) -> bytes:
    """A request id as a dict key that tells ``1`` and ``"1"`` apart (JSON-RPC does)."""
    return orjson.dumps(request_id)


def _settle(call: ToolCall, message: dict[str, Any]) -> None:
    error = message.get("error")
    if isinstance(error, dict):
        call.outcome = "jsonrpc_error"
        call.detail = redact(f"{error.get('code')}: {error.get('message')}")[:300]
        return
    result = message.get("result")
    if isinstance(result, dict) and result.get("isError") is True:
        call.outcome = "tool_error"
        content = result.get("content")
        first = content[0] if isinstance(content, list) and content else None
        text = first.get("text") if isinstance(first, dict) else None
        call.detail = redact(text if isinstance(text, str) else "isError")[:300]
        return
    call.outcome = "ok"


def error_body(code: int, message: str, request_id: Any = None, data: dict[str, Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data:
        error["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


def error_response(
    status: int,
    code: int,
    message: str,
    request_id: Any = None,
    *,
    data: dict[str, Any] | None = None,
    headers: Headers = (),
) -> Response:
    """A JSON-RPC error as an HTTP answer: MCP's SDKs show a JSON-RPC error body whatever the status."""
    return Response(
        status, error_body(code, message, request_id, data), ((b"content-type", b"application/json"), *headers)
    )


def error_event(code: int, message: str, request_id: Any) -> bytes:
    """A JSON-RPC error as an event of a stream (a stream that broke before the answer to ``request_id``)."""
    return b"event: message\ndata: " + error_body(code, message, request_id) + b"\n\n"

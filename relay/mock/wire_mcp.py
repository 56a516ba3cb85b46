"""The mock upstream's MCP server: streamable HTTP at ``…/mcp``, with three deterministic tools.

It speaks the initialize handshake of MCP's revisions 2024-11-05 to 2025-11-25 (JSON-RPC 2.0 over HTTP):

- ``POST …/mcp`` takes one JSON-RPC message. ``initialize`` opens a session (its id in the ``Mcp-Session-Id``
  response header, made from a hash of the body and a counter); every other message must name an open session
  (400 without the header, 404 for an unknown or ended one). Requests: ``initialize``, ``ping``, ``tools/list``,
  ``tools/call``; any other method is ``-32601``. A notification or a response is taken with 202 and no body.
  ``tools/call`` is answered as an event stream (a ``notifications/progress`` event first when the request's
  ``_meta`` names a ``progressToken``, then the result), everything else as JSON.
- ``GET …/mcp``: 405: this server sends no messages of its own (the spec lets a server decline the stream).
- ``DELETE …/mcp``: ends the session (200; 404 when there is none).

As a real server is, it is strict: a POST must accept both ``application/json`` and ``text/event-stream``
(else 406) and send ``application/json`` (else 415), a batch (a JSON array) is refused (``-32600``: batches left
MCP in 2025-06-18), and an ``MCP-Protocol-Version`` header must name a revision it speaks (else 400).

The tools: ``add`` (``a`` + ``b``, numbers; the sum as text and as ``structuredContent``), ``echo`` (``text``
back) and ``now_fixed`` (always ``2026-01-01T00:00:00Z``). Arguments that do not fit a tool's schema are a tool
error (``isError: true``, as the spec asks); an unknown tool is the JSON-RPC error ``-32602``.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from typing import TYPE_CHECKING, Any

import orjson

from relay.mock.model import JSON_HEADERS, SSE_HEADERS, Answer, json_answer

if TYPE_CHECKING:
    from relay.mock.call import Call, Dialect, MockState, RouteEntry

#: The revisions this server answers ``initialize`` with: the client's own when listed, else the newest.
VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
SERVER_INFO = {"name": "relay-mock", "version": "1.0.0"}
NOW_FIXED = "2026-01-01T00:00:00Z"

TOOLS: tuple[dict[str, Any], ...] = (
    {
        "name": "add",
        "title": "Add two numbers",
        "description": "The sum of a and b.",
        "inputSchema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
        "outputSchema": {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]},
    },
    {
        "name": "echo",
        "title": "Echo",
        "description": "Returns its text unchanged.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
            "additionalProperties": False,
        },
    },
    {
        "name": "now_fixed",
        "title": "A fixed clock",
        "description": f"Always {NOW_FIXED}: a clock for deterministic tests.",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
    },
)

# JSON-RPC error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602


class _Sessions:
    """One mock's MCP sessions: their ids, and a counter that keeps two identical ``initialize`` bodies apart."""

    def __init__(self) -> None:
        self.open: set[str] = set()
        self.made = 0

    def new(self, body: bytes) -> str:
        self.made += 1
        return "mock-" + hashlib.sha256(b"%d:" % self.made + body).hexdigest()[:32]


_sessions: weakref.WeakKeyDictionary[MockState, _Sessions] = weakref.WeakKeyDictionary()


def _of(mock: MockState) -> _Sessions:
    sessions = _sessions.get(mock)
    if sessions is None:
        sessions = _sessions[mock] = _Sessions()
    return sessions


def error_answer(status: int, code: int, message: str, request_id: Any = None) -> Answer:
    """A JSON-RPC error as the whole answer (``id`` null when the request's could not be read)."""
    return json_answer(status, {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


def _result(request_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _post(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    accept = call.headers.get(b"accept", "")
    if "application/json" not in accept or "text/event-stream" not in accept:
        return error_answer(406, INVALID_REQUEST, "Not Acceptable: accept both application/json and text/event-stream")
    if not call.headers.get(b"content-type", "").startswith("application/json"):
        return error_answer(415, INVALID_REQUEST, "Unsupported Media Type: send application/json")
    try:
        message = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        return error_answer(400, PARSE_ERROR, "Parse error: the body is not JSON")
    if isinstance(message, list):
        return error_answer(400, INVALID_REQUEST, "Invalid Request: batches are not supported")
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return error_answer(400, INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")
    version = call.headers.get(b"mcp-protocol-version")
    if version is not None and version not in VERSIONS:
        return error_answer(400, INVALID_REQUEST, f"Bad Request: unsupported protocol version {version!r}")
    method, request_id = message.get("method"), message.get("id")
    sessions = _of(mock)
    if method == "initialize" and "id" in message:
        return _initialize(sessions, call, message)
    session = call.headers.get(b"mcp-session-id")
    if session is None:
        return error_answer(400, INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required", request_id)
    if session not in sessions.open:
        return error_answer(404, INVALID_REQUEST, "Session not found", request_id)
    if not isinstance(method, str) or "id" not in message:
        return Answer(202, b"", ())  # a notification, or the client's response to a request of ours (none are sent)
    if method == "ping":
        return json_answer(200, _result(request_id, {}))
    if method == "tools/list":
        return json_answer(200, _result(request_id, {"tools": list(TOOLS)}))
    if method == "tools/call":
        return _tools_call(message)
    unknown = {"code": METHOD_NOT_FOUND, "message": f"Method not found: {method}"}
    return json_answer(200, {"jsonrpc": "2.0", "id": request_id, "error": unknown})


def _initialize(sessions: _Sessions, call: Call, message: dict[str, Any]) -> Answer:
    params = message.get("params") if isinstance(message.get("params"), dict) else {}
    asked = params.get("protocolVersion")
    session = sessions.new(call.body)
    sessions.open.add(session)
    result = {
        "protocolVersion": asked if asked in VERSIONS else VERSIONS[-1],
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": SERVER_INFO,
        "instructions": "Relay's mock MCP server: add, echo and now_fixed, always the same answers.",
    }
    headers = (*JSON_HEADERS, (b"mcp-session-id", session.encode()))
    return Answer(200, orjson.dumps(_result(message.get("id"), result)), headers)


def _tools_call(message: dict[str, Any]) -> Answer:
    request_id = message.get("id")
    params = message.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        return json_answer(200, {"jsonrpc": "2.0", "id": request_id, "error": _invalid("params.name is required")})
    name, arguments = params["name"], params.get("arguments", {})
    if name not in {tool["name"] for tool in TOOLS}:
        return json_answer(200, {"jsonrpc": "2.0", "id": request_id, "error": _invalid(f"Unknown tool: {name}")})
    result = run_tool(name, arguments if isinstance(arguments, dict) else None)
    frames: list[bytes] = []
    meta = params.get("_meta")
    token = meta.get("progressToken") if isinstance(meta, dict) else None
    if isinstance(token, (str, int)) and not isinstance(token, bool):
        progress = {"progressToken": token, "progress": 1, "total": 1, "message": f"{name}: done"}
        frames.append(_event({"jsonrpc": "2.0", "method": "notifications/progress", "params": progress}))
    frames.append(_event(_result(request_id, result)))
    return Answer(200, tuple(frames), SSE_HEADERS)


def _invalid(message: str) -> dict[str, Any]:
    return {"code": INVALID_PARAMS, "message": message}


def _event(message: dict[str, Any]) -> bytes:
    return b"event: message\ndata: " + orjson.dumps(message) + b"\n\n"


def run_tool(name: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
    """A tool's ``CallToolResult``; arguments that do not fit its schema give ``isError: true``."""
    if arguments is None:
        return _tool_error(f"{name}: arguments must be an object")
    if name == "add":
        a, b = arguments.get("a"), arguments.get("b")
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        if not numbers or set(arguments) - {"a", "b"}:
            return _tool_error("add: a and b must be numbers (and nothing else)")
        total = a + b  # type: ignore[operator]
        return {"content": [_text(str(total))], "structuredContent": {"sum": total}, "isError": False}
    if name == "echo":
        text = arguments.get("text")
        if not isinstance(text, str) or set(arguments) - {"text"}:
            return _tool_error("echo: text must be a string (and nothing else)")
        return {"content": [_text(text)], "isError": False}
    if arguments:
        return _tool_error("now_fixed: takes no arguments")
    return {"content": [_text(NOW_FIXED)], "isError": False}


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def _tool_error(message: str) -> dict[str, Any]:
    return {"content": [_text(message)], "isError": True}


def _get(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    headers = (*JSON_HEADERS, (b"allow", b"POST, DELETE"))
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": "Method Not Allowed"}}
    return Answer(405, orjson.dumps(body), headers)


def _delete(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    session = call.headers.get(b"mcp-session-id")
    sessions = _of(mock)
    if session is None:
        return error_answer(400, INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required")
    if session not in sessions.open:
        return error_answer(404, INVALID_REQUEST, "Session not found")
    sessions.open.discard(session)
    return Answer(200, b"", ())


#: Routes ``relay.mock.router`` tries before its own; the key (``--api-key``) is checked as OpenAI's (a bearer).
ROUTES: tuple[RouteEntry, ...] = (
    ("POST", re.compile(r"/mcp$"), "openai", _post),
    ("GET", re.compile(r"/mcp$"), "openai", _get),
    ("DELETE", re.compile(r"/mcp$"), "openai", _delete),
)

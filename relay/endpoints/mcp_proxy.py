"""The MCP proxy: each ``[[mcp]]`` server at ``/v1/mcp/{name}``, behind Relay's keys (docs/apis/mcp.md).

Streamable HTTP servers: ``POST /v1/mcp/{name}`` sends a JSON-RPC message on (the answer, JSON or an event
stream, comes back as it comes), ``GET`` opens the server's event stream, ``DELETE`` ends the session;
``Mcp-Session-Id`` and ``MCP-Protocol-Version`` pass both ways. Legacy HTTP+SSE servers: ``GET
/v1/mcp/{name}/sse`` relays the event stream, its ``endpoint`` event rewritten so that the client posts its
messages through Relay (``relay.endpoints.mcp_legacy``).

Every request needs a Relay key the server allows (401 and 403 in OpenAI's shape, as all of Relay's). A POST's
``tools/call`` requests are counted against the key's rpm (a refusal is HTTP 429 with a JSON-RPC error body,
which MCP's SDKs show as the call's error) and logged: one request-log row with the server as its channel
(``mcp:NAME``), ``mcp:NAME/TOOL`` as its model, its latency, status and outcome (``tool_error`` when the
result says ``isError``, ``jsonrpc_error`` for an error answer). Other messages pass without a row unless their
answer is an error status. What is not JSON-RPC gets a JSON-RPC error (``-32700``, ``-32600``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from relay.dialects import ir
from relay.errors import RelayError
from relay.gateway.tally import Tally
from relay.http import sse
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route

from . import mcp_legacy
from .mcp_messages import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    RATE_LIMITED,
    NotJsonRpc,
    Outcomes,
    Posted,
    error_event,
    error_response,
    read_post,
)
from .mcp_stream import close, end_kind, pump, read_whole
from .mcp_upstream import McpUpstream, returned_headers, upstream

if TYPE_CHECKING:
    from relay.app import Relay
    from relay.upstream.response import UpstreamResponse


async def mcp(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    """``/v1/mcp/{name}``: the server's streamable-HTTP endpoint (a legacy server's event stream on GET)."""
    server = await authorized(relay, request)
    if server.config.wire == "sse":
        if request.method == "GET":
            return await mcp_legacy.stream(relay, request, out, server)
        raise RelayError(
            405,
            "method_not_allowed",
            f"the MCP server '{server.name}' speaks the legacy HTTP+SSE transport: open its event stream with "
            f"GET /v1/mcp/{server.name}/sse and post to the endpoint it names",
            code="method_not_allowed",
            headers=((b"allow", b"GET"),),
        )
    target = server.target(server.path, server.query)
    if request.method == "POST":
        return await post(relay, request, out, server, target)
    return await passed(request, out, server, target)


async def mcp_path(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    """``/v1/mcp/{name}/…``: a legacy server's event stream (``…/sse``) and the message endpoint it names."""
    server = await authorized(relay, request)
    rest = request.params["rest"]
    if server.config.wire != "sse":
        raise RelayError(
            404,
            "not_found",
            f"the MCP server '{server.name}' speaks streamable HTTP at /v1/mcp/{server.name} only",
            code="unknown_route",
        )
    if request.method == "GET":
        if rest != "sse":
            raise RelayError(
                404, "not_found", f"open the event stream at /v1/mcp/{server.name}/sse", code="unknown_route"
            )
        return await mcp_legacy.stream(relay, request, out, server)
    parts = rest.removesuffix("/").split("/")
    if rest == "sse" or any(part in ("", ".", "..") for part in parts):
        raise RelayError(404, "not_found", f"no such MCP endpoint: /v1/mcp/{server.name}/{rest}", code="unknown_route")
    target = server.target(server.folder + rest, request.query)
    return await post(relay, request, out, server, target, legacy=True)


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/mcp/{name}", mcp),
    Route("GET", "/v1/mcp/{name}", mcp),
    Route("DELETE", "/v1/mcp/{name}", mcp),
    Route("POST", "/v1/mcp/{name}/{rest:path}", mcp_path),
    Route("GET", "/v1/mcp/{name}/{rest:path}", mcp_path),
)


def tally(request: Request) -> Tally:
    return request.record  # type: ignore[return-value]


async def authorized(relay: Relay, request: Request) -> McpUpstream:
    """The server the request names, once its key is known and allowed to use it (401, 404, 403 otherwise)."""
    record = tally(request)
    record.dialect = "mcp"
    key, _ = await relay.gateway.keys.authenticate(request)
    record.key = key
    name = request.params["name"]
    server = upstream(relay, name)
    if server is None:
        raise RelayError(404, "not_found", f"there is no MCP server named '{name}'", code="mcp_server_not_found")
    record.channel = server.label
    allowed = server.config
    if key.name not in allowed.keys and key.group not in allowed.groups:
        raise RelayError(
            403, "permission", f"this key may not use the MCP server '{name}'", code="mcp_server_not_allowed"
        )
    return server


async def post(
    relay: Relay, request: Request, out: StreamResponse, server: McpUpstream, target: bytes, *, legacy: bool = False
) -> Response | None:
    """A client's JSON-RPC message to the server; its tool calls counted and logged (the module's docstring)."""
    record = tally(request)
    try:
        posted = read_post(request.body)
    except NotJsonRpc as bad:
        record.error_kind, record.error_detail = "invalid_request", bad.message
        return error_response(400, bad.code, bad.message)
    calls = posted.calls
    if calls:
        tools = ",".join(dict.fromkeys(call.tool for call in calls))
        record.requested_model = f"{server.label}/{tools}"
        record.upstream_model = tools
        try:
            await relay.gateway.admit(record, request.id, b"", None, (), ir.Usage(requests=len(calls)))
        except RelayError as refused:
            record.error_kind, record.error_detail = refused.kind, refused.message
            if legacy:
                events = b"".join(error_event(RATE_LIMITED, refused.message, i) for i in posted.ids)
                if await mcp_legacy.inject(relay, server, request.query, events):
                    return Response(202, b"Accepted", ((b"content-type", b"text/plain"),))
            return error_response(
                refused.status,
                RATE_LIMITED if refused.status == 429 else INTERNAL_ERROR,
                refused.message,
                posted.first_id,
                data={"status": refused.status, "code": refused.code},
                headers=refused.headers,
            )
    else:
        record.logged = False  # no tool call: no row, unless the answer is an error (below)
    timeouts = server.config.timeouts
    deadline = trio.current_time() + timeouts.total
    try:
        response = await server.send("POST", target, request.body, request.headers)
    except RelayError as failed:
        return _failed(record, failed, posted)
    try:
        record.upstream_status = response.status
        if response.status in (401, 403):
            return await _refused_credentials(record, response, server, deadline, posted)
        headers = returned_headers(response.headers)
        outcomes = Outcomes(posted)
        answer: Response | None = None
        if _is_stream(response):
            record.stream = True
            await out.start(response.status, headers)
            await _relay_answer(out, response, record, server, outcomes, deadline)
        else:
            try:
                body = await read_whole(response, server.label, deadline, timeouts.idle)
            except RelayError as failed:
                return _failed(record, failed, posted)
            if (response.header(b"content-type") or b"").startswith(b"application/json"):
                outcomes.feed(body)
            record.end = "completed"
            record.logged = record.logged or response.status >= 400
            answer = Response(response.status, body, headers)
        return answer
    finally:  # also when the client left after its answer (SDKs close the stream): the handler is cancelled then
        _outcome(record, posted)
        if calls:
            request.usage = ir.Usage(requests=_answered(posted, legacy, response.status))
        await close(response)


def _answered(posted: Posted, legacy: bool, status: int) -> int:
    """The tool calls a ``[[prices]]`` entry's ``request`` price charges: those answered with a result (``isError``
    ones too; not a JSON-RPC error); on the legacy transport, whose answers this request does not see, those the
    server accepted."""
    if legacy:
        return len(posted.calls) if 200 <= status < 300 else 0
    return sum(1 for call in posted.calls if call.outcome in ("ok", "tool_error"))


async def _relay_answer(
    out: StreamResponse,
    response: UpstreamResponse,
    record: Tally,
    server: McpUpstream,
    outcomes: Outcomes,
    deadline: float,
) -> None:
    """The server's answer stream to a POST, relayed as it comes; should it end before the answer to each request,
    an error event for each (the client's SDK would otherwise wait on)."""
    parser = sse.Parser()

    def step(chunk: bytes) -> bytes:
        for event in parser.feed(chunk):
            if event.data:
                outcomes.feed(event.data)
        return chunk

    try:
        end, why = await pump(out, response, step, idle=server.config.timeouts.idle, deadline=deadline)
    except trio.Cancelled:  # the client left (SDKs close the stream once they read their answer), or Relay stops
        record.end = "completed" if not outcomes.pending else "client_closed" if out.gone else "shutdown"
        raise
    pending = outcomes.pending
    if pending:
        end = "upstream_truncated" if end == "completed" else end
        why = why or "the stream ended before the answer"
        message = f"the MCP server's answer stream ended early ({why})"
        await out.send(b"".join(error_event(CONNECTION_CLOSED, message, request_id) for request_id in pending))
    record.end = end
    if end != "completed":
        record.logged = True
        record.error_kind, record.error_detail = end_kind(end), f"{server.label}: {why}"


def _is_stream(response: UpstreamResponse) -> bool:
    return 200 <= response.status < 300 and (response.header(b"content-type") or b"").startswith(b"text/event-stream")


def _outcome(record: Tally, posted: Posted) -> None:
    """The request log's account of the tool calls: the first that failed, if any did."""
    for call in posted.calls:
        if call.outcome in ("tool_error", "jsonrpc_error"):
            record.error_kind = record.error_kind or call.outcome
            record.error_detail = record.error_detail or f"{call.tool}: {call.detail}"
            return


def _failed(record: Tally, failed: RelayError, posted: Posted) -> Response:
    """The server could not be reached or answered too slowly: a JSON-RPC error with Relay's status."""
    record.logged = True
    record.end = "timeout" if failed.status == 504 else "upstream_error"
    record.error_kind, record.error_detail = failed.kind, failed.detail or failed.message
    return error_response(
        failed.status,
        INTERNAL_ERROR,
        failed.message,
        posted.first_id,
        data={"code": failed.code},
        headers=failed.headers,
    )


async def _refused_credentials(
    record: Tally, response: UpstreamResponse, server: McpUpstream, deadline: float, posted: Posted
) -> Response:
    """The server refused Relay's credentials for it (401, 403): the operator's problem, a 502 to the client (a 401
    would tell the client its own key is wrong, and an MCP SDK would start an OAuth flow against Relay)."""
    with trio.move_on_at(min(deadline, trio.current_time() + 1.0)):
        try:
            await read_whole(response, server.label, deadline, 1.0)
        except RelayError:
            pass
    return _failed(
        record,
        RelayError(
            502,
            "upstream",
            "the MCP server refused Relay's credentials for it",
            code="upstream_auth_failed",
            detail=f"{server.label}: the server answered {response.status}: check its [[mcp]] headers",
        ),
        posted,
    )


async def passed(request: Request, out: StreamResponse, server: McpUpstream, target: bytes) -> Response | None:
    """GET (the server's event stream) and DELETE (the session's end), sent on as they are; no row unless the
    answer is an error."""
    record = tally(request)
    record.logged = False
    response = await server.send(request.method, target, b"", request.headers)
    try:
        record.upstream_status = response.status
        if response.status in (401, 403):
            raise RelayError(
                502,
                "upstream",
                "the MCP server refused Relay's credentials for it",
                code="upstream_auth_failed",
                detail=f"{server.label}: the server answered {response.status}: check its [[mcp]] headers",
            )
        headers = returned_headers(response.headers)
        if _is_stream(response):
            record.stream = True
            await out.start(response.status, headers)
            record.end, why = await pump(out, response, _unchanged)
            if record.end != "completed" and record.end != "shutdown":
                record.logged = True
                record.error_kind, record.error_detail = end_kind(record.end), f"{server.label}: {why}"
            return None
        timeouts = server.config.timeouts
        body = await read_whole(response, server.label, trio.current_time() + timeouts.total, timeouts.idle)
        record.end = "completed"
        # A server may decline the GET stream (405): MCP's clients expect that, so it is no failure to log.
        record.logged = response.status >= 400 and not (request.method == "GET" and response.status == 405)
        return Response(response.status, body, headers)
    except RelayError:
        record.logged = True
        raise
    finally:
        await close(response)


def _unchanged(chunk: bytes) -> bytes:
    return chunk

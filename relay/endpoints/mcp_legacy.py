"""MCP's legacy HTTP+SSE transport (revision 2024-11-05) through Relay.

The client opens ``GET /v1/mcp/{name}/sse``; Relay opens the server's SSE URL and relays its events. The first,
``endpoint``, names where the client posts its messages (``/messages/?session_id=…``, relative to the SSE URL):
Relay rewrites it to the same path under ``/v1/mcp/{name}/`` (taken relative to the folder of the SSE URL), so
the client's POSTs come through Relay (``relay.endpoints.mcp_proxy.mcp_path``), which sends them to that path on
the server. An endpoint outside the SSE URL's origin and folder is refused: Relay posts nowhere else.

The answers to those POSTs arrive on the event stream, not on the POST (which the server answers 202). So a
tool call refused by the key's rate limit is answered as the server would answer it: a JSON-RPC error event on
the client's stream, and 202 on its POST, when that stream runs in this process (``inject``); else (another
worker holds the stream) with HTTP 429 and the JSON-RPC error as its body.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import trio

from relay.errors import RelayError
from relay.gateway.tally import Tally
from relay.http import sse
from relay.http.messages import Request, Response, StreamResponse

from .mcp_stream import close, end_kind, pump, read_whole
from .mcp_upstream import McpUpstream, returned_headers

if TYPE_CHECKING:
    from relay.app import Relay
    from relay.http.shutdown import Shutdown

#: Seconds an error event written into another request's stream may take; past it the POST gets its 429.
INJECT_TIMEOUT = 5.0


class Session:
    """A legacy event stream running in this process: its writes (the relayed events, and errors Relay adds for
    refused calls) one at a time, each a whole event."""

    def __init__(self, out: StreamResponse) -> None:
        self._out = out
        self._lock = trio.Lock()
        #: The stream ended (its response is about to end): nothing more may be written.
        self.closed = False

    @property
    def shutdown(self) -> Shutdown:
        return self._out.shutdown

    async def send(self, data: bytes) -> None:
        async with self._lock:
            await self._out.send(data)

    async def add(self, data: bytes) -> bool:
        """Write ``data`` from another request's task, unless the stream ended or its client left."""
        async with self._lock:
            if self.closed or self._out.gone:
                return False
            try:
                await self._out.send(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return False
            return True

    async def close(self) -> None:
        """No more writes: once a write of ``add`` under way is done (briefly: the stream's response ends next)."""
        with trio.move_on_after(INJECT_TIMEOUT, shield=True):
            async with self._lock:
                self.closed = True
        self.closed = True


#: The legacy streams of each Relay in this process, by (server name, the endpoint's query).
_sessions: weakref.WeakKeyDictionary[Relay, dict[tuple[str, str], Session]] = weakref.WeakKeyDictionary()


async def inject(relay: Relay, server: McpUpstream, query: str, events: bytes) -> bool:
    """Write ``events`` into the legacy stream whose endpoint has ``query``, if this process runs it."""
    session = _sessions.get(relay, {}).get((server.name, query))
    if session is None:
        return False
    with trio.move_on_after(INJECT_TIMEOUT):
        return await session.add(events)
    return False


class _Endpoint:
    """Passes the server's events on, whole, the ``endpoint`` event rewritten to Relay's path for it."""

    def __init__(self, server: McpUpstream, opened: dict[tuple[str, str], Session], session: Session) -> None:
        self._server = server
        self._parser = sse.Parser()
        self._opened = opened
        self._session = session
        #: The endpoint's query (the server's session), once the ``endpoint`` event went by.
        self.query: str | None = None

    def step(self, chunk: bytes) -> bytes:
        pieces: list[bytes] = []
        for event in self._parser.feed(chunk):
            if event.name == b"endpoint" and event.data is not None:
                pieces.append(b"event: endpoint\ndata: " + self._rewrite(event.data).encode() + b"\n\n")
            else:
                pieces.append(event.raw)
        return b"".join(pieces)

    def _rewrite(self, data: bytes) -> str:
        server = self._server
        url = urljoin(server.config.url, data.decode("utf-8", "replace"))
        parts = urlsplit(url)
        if not server.same_origin(url) or not parts.path.startswith(server.folder) or parts.path == server.path:
            raise RelayError(
                502,
                "upstream",
                "the MCP server named a message endpoint Relay does not post to",
                code="upstream_malformed",
                detail=f"{server.label}: endpoint {url!r} is outside {server.folder!r} on the server's origin",
            )
        if self.query is not None:
            self._opened.pop((server.name, self.query), None)
        self.query = parts.query
        self._opened[(server.name, parts.query)] = self._session
        rest = parts.path[len(server.folder) :]
        return f"/v1/mcp/{server.name}/{rest}" + (f"?{parts.query}" if parts.query else "")

    def forget(self) -> None:
        if self.query is not None and self._opened.get((self._server.name, self.query)) is self._session:
            del self._opened[(self._server.name, self.query)]


async def stream(relay: Relay, request: Request, out: StreamResponse, server: McpUpstream) -> Response | None:
    """``GET /v1/mcp/{name}/sse``: the server's event stream, its endpoint rewritten; no row unless it fails."""
    record: Tally = request.record  # type: ignore[assignment]
    record.logged = False
    response = await server.send("GET", server.target(server.path, server.query), b"", request.headers)
    try:
        record.upstream_status = response.status
        content_type = response.header(b"content-type") or b""
        if response.status in (401, 403):
            raise RelayError(
                502,
                "upstream",
                "the MCP server refused Relay's credentials for it",
                code="upstream_auth_failed",
                detail=f"{server.label}: the server answered {response.status}: check its [[mcp]] headers",
            )
        headers = returned_headers(response.headers)
        if not (200 <= response.status < 300 and content_type.startswith(b"text/event-stream")):
            timeouts = server.config.timeouts
            body = await read_whole(response, server.label, trio.current_time() + timeouts.total, timeouts.idle)
            record.logged = response.status >= 400
            return Response(response.status, body, headers)
        record.stream = True
        await out.start(response.status, headers)
        session = Session(out)
        endpoint = _Endpoint(server, _sessions.setdefault(relay, {}), session)
        try:
            record.end, why = await pump(session, response, endpoint.step)
        finally:
            endpoint.forget()
            await session.close()
        if record.end not in ("completed", "shutdown"):
            record.logged = True
            record.error_kind, record.error_detail = end_kind(record.end), f"{server.label}: {why}"
        return None
    except RelayError:
        record.logged = True
        raise
    finally:
        await close(response)

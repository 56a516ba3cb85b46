"""One ``[[mcp]]`` server at run time: where its requests go, the headers they carry, and sending one.

A request to an MCP server goes over the process's upstream pool (``relay.upstream.pool``), as a channel's do;
``url = "mock"`` sends it to the mock's MCP server in process (``relay.mock.transport``). What goes with it:
the server's own headers from relay.toml (its credentials), and of the client's headers only those of MCP's
transport (``FORWARDED``); never the client's ``Authorization``, which is Relay's key.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import trio

from relay.config import McpServerConfig, MockOptions
from relay.errors import RelayError
from relay.mock.transport import MockTransport
from relay.upstream.channels import encode_target, pool_exhausted, split_base_url
from relay.upstream.errors import TransportError, relay_error
from relay.upstream.pool import PoolExhausted
from relay.upstream.response import RawHeaders, Transport, UpstreamRequest, UpstreamResponse

if TYPE_CHECKING:
    from relay.app import Relay

#: The client's request headers sent on to the server: MCP's own (``Mcp-Session-Id``, ``MCP-Protocol-Version``,
#: any other ``Mcp-…``), what the answer may be, and where a broken stream resumes.
FORWARDED = frozenset({b"accept", b"content-type", b"last-event-id"})
#: The server's response headers sent back to the client, besides every ``Mcp-…`` header.
RETURNED = frozenset({b"content-type", b"cache-control", b"retry-after", b"allow"})
#: Where ``url = "mock"`` points: the mock's MCP route, in process.
MOCK_URL = "http://mock.invalid/mcp"


class McpUpstream:
    """A configured MCP server: its URL split for the pool, its headers, its transport."""

    def __init__(self, config: McpServerConfig, pool: Transport) -> None:
        self.config = config
        self.name = config.name
        #: The name its exchanges go by in errors and the request log (apart from the channels').
        self.label = f"mcp:{config.name}"
        url = MOCK_URL if config.url == "mock" else config.url
        self._transport: Transport = MockTransport(MockOptions()) if config.url == "mock" else pool
        self._origin, self._authority, _ = split_base_url(url)
        parts = urlsplit(url)
        self.path = parts.path or "/"
        self.query = parts.query
        #: Legacy SSE servers: the folder of the SSE URL, under which the client's message POSTs go.
        self.folder = self.path.rpartition("/")[0] + "/"
        configured = {name.lower().encode("latin-1"): value.encode() for name, value in config.headers.items()}
        self._headers: RawHeaders = tuple({b"user-agent": b"relay", **configured}.items())
        self._own = frozenset(name for name, _ in self._headers)

    def target(self, path: str, query: str = "") -> bytes:
        """The request target of ``path`` (with ``query``) on the server's origin."""
        return encode_target(path + (f"?{query}" if query else ""))

    def same_origin(self, url: str) -> bool:
        """Whether ``url`` (absolute) is on the server's origin."""
        try:
            origin, _, _ = split_base_url(url)
        except ValueError:
            return False
        return origin == self._origin

    def headers_for(self, client: Sequence[tuple[bytes, bytes]]) -> RawHeaders:
        """The headers of a request to the server: its configured ones, and the client's MCP transport headers."""
        kept = [
            (name, value)
            for name, value in client
            if (name in FORWARDED or name.startswith(b"mcp-")) and name not in self._own
        ]
        return (*self._headers, *kept)

    async def send(
        self, method: str, target: bytes, body: bytes, client: Sequence[tuple[bytes, bytes]]
    ) -> UpstreamResponse:
        """The server's answer once its head is in (within ``first_byte``); the caller must ``aclose`` it.
        Failures are RelayErrors: 502 (unreachable, broken), 504 (slow), 503 (Relay's pool is full)."""
        timeouts = self.config.timeouts
        request = UpstreamRequest(
            self._origin, self._authority, target, self.headers_for(client), body, timeouts.connect, method.encode()
        )
        with trio.move_on_after(timeouts.first_byte):
            try:
                return await self._transport.send(request)
            except PoolExhausted as exc:
                raise pool_exhausted(f"{self.label}: {exc}") from None
            except TransportError as exc:
                raise relay_error(exc, self.label) from None
        raise RelayError(
            504,
            "timeout",
            f"no answer from the MCP server within {timeouts.first_byte:g}s",
            code="upstream_timeout",
            detail=f"{self.label}: no answer within {timeouts.first_byte:g}s",
        )


def returned_headers(headers: RawHeaders) -> list[tuple[bytes, bytes]]:
    """The server's response headers the client gets (``RETURNED`` and ``Mcp-…``)."""
    return [(name, value) for name, value in headers if name in RETURNED or name.startswith(b"mcp-")]


_built: weakref.WeakKeyDictionary[Relay, dict[str, McpUpstream]] = weakref.WeakKeyDictionary()


def upstream(relay: Relay, name: str) -> McpUpstream | None:
    """The server ``name`` of the configuration in force (built once per configuration of it), or None."""
    config = next((server for server in relay.config.mcp if server.name == name), None)
    if config is None:
        return None
    built = _built.setdefault(relay, {})
    server = built.get(name)
    if server is None or server.config != config:  # a reload that changed it (an unchanged one keeps the sessions)
        server = built[name] = McpUpstream(config, relay.pool)
    return server

"""What the body reader and the response writer use of their ``relay.http.connection.Connection``.

Protocols, underneath relay.http.body_stream and relay.http.writer, so the connection (which builds both) is the
only one of the three that imports the others.
"""

from __future__ import annotations

from typing import Protocol

import h11
import trio

from relay.http.limits import Limits
from relay.http.messages import BodyError
from relay.http.shutdown import Shutdown


class BodySource(Protocol):
    """Where a request body's events come from."""

    async def send_continue(self) -> None: ...
    async def next_body_event(self) -> h11.Event | type[h11.PAUSED] | BodyError: ...


class ResponseSink(Protocol):
    """Where a response goes: the connection's h11 state, socket stream, limits and shutdown."""

    h11: h11.Connection
    stream: trio.SocketStream
    limits: Limits
    shutdown: Shutdown
    client_gone: bool
    eof: bool

    def wants_close(self) -> bool: ...

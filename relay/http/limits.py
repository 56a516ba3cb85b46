"""Denial-of-service limits and timeouts of the HTTP server, each with its default.

docs/limits.md explains each one; relay.toml sets them under ``[limits]``.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Limits:
    #: Largest request head (request line plus headers), in bytes. Larger: 431.
    max_head_bytes: int = 16 * 1024
    #: Largest request body, in bytes. Larger: 413 (refused unread when Content-Length says so).
    max_body_bytes: int = 32 * 1024 * 1024
    #: Largest request body of the routes that take uploads (images to edit, audio, files), in bytes.
    max_upload_bytes: int = 64 * 1024 * 1024
    #: Seconds from a request's first byte (or the accept) until its head is complete. Then: 408.
    head_timeout: float = 10.0
    #: Seconds an idle keep-alive connection may wait for its next request. Then: closed.
    keepalive_timeout: float = 60.0
    #: Seconds to receive the whole request body once the head is in. Then: 408.
    body_timeout: float = 60.0
    #: Requests served on one connection before it is closed (``Connection: close``).
    max_requests_per_connection: int = 1000
    #: Seconds in-flight requests and streams get to finish after SIGTERM/SIGINT.
    shutdown_grace: float = 30.0
    #: Pending connections the kernel queues for accept().
    backlog: int = 1024
    #: Seconds a write to a client may make no progress (the client takes no bytes). Then: the connection is dropped.
    write_timeout: float = 30.0
    #: The kernel send buffer of a client socket (SO_SNDBUF), bounding the bytes queued for a slow client.
    send_buffer_bytes: int = 128 * 1024
    #: Connections of one client address still sending a request head. More: closed at once.
    max_pending_per_address: int = 256
    #: Largest WebSocket message a client may send, in bytes (its fragments together). Larger: closed with 1009.
    websocket_max_message_bytes: int = 16 * 1024 * 1024
    #: Seconds between the pings Relay sends on an open WebSocket.
    websocket_ping_interval: float = 20.0
    #: Seconds a WebSocket peer has to answer a ping (Relay waiting to read). Then: closed with 1011.
    websocket_ping_timeout: float = 20.0

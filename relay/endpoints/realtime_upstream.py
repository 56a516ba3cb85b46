"""The upstream side of a Realtime or Live session: a WebSocket to the channel (trio-websocket), or the in-process
mock.

The URL is the channel's ``base_url`` with ``ws://``/``wss://`` for ``http://``/``https://``, ``/realtime`` appended
to its path and ``model=`` (the channel's name for the model) in its query, as OpenAI's SDK builds it; a query
the base URL carries (``?api-version=…``) is kept. The key goes as ``Authorization: Bearer`` (OpenAI and any
Realtime-compatible server), or as ``api-key`` when the host is Azure's (``*.azure.com``: Azure OpenAI's
``/openai/v1`` API, whose ``model`` is the deployment's name). docs/apis/realtime.md lists the shapes. Gemini Live
goes to ``/ws/google.ai.generativelanguage.{api_version}.GenerativeService.BidiGenerateContent`` under the
channel's base URL, its key as ``x-goog-api-key`` (the model is in the session's first message, not the URL).

Frames wait in a queue of ``QUEUE`` messages each way (trio-websocket's own for the upstream's, no more): a
full queue stops the reading, so a slow side holds the other back rather than piling up frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    connect_websocket_url,
)

from relay.errors import RelayError, kind_for_status
from relay.gateway.tally import Tally
from relay.mock import wire_live, wire_realtime
from relay.redact import redact
from relay.upstream.channels import Channel

#: Messages buffered each way between Relay and the upstream.
QUEUE = 4
#: The largest message the upstream may send (its audio deltas are a few KiB; a session item a few MiB at most).
MAX_UPSTREAM_MESSAGE = 16 * 1024 * 1024
#: The client's headers passed upstream (an SDK of the beta API asks for it with ``OpenAI-Beta``).
FORWARDED = (b"openai-beta",)


class Upstream(Protocol):
    """The upstream end of a session."""

    async def receive(self) -> str | bytes | None:
        """The upstream's next message; None once it closed (``close_code`` then says how)."""
        ...

    async def send(self, data: str | bytes) -> None: ...

    async def aclose(self) -> None: ...

    @property
    def close_code(self) -> int | None: ...

    @property
    def close_reason(self) -> str: ...


class WsUpstream:
    """A trio-websocket connection to the channel."""

    def __init__(self, connection: WebSocketConnection) -> None:
        self._ws = connection

    @property
    def close_code(self) -> int | None:
        reason = self._ws.closed
        return reason.code if reason is not None else None

    @property
    def close_reason(self) -> str:
        reason = self._ws.closed
        return (reason.reason or "") if reason is not None else ""

    async def receive(self) -> str | bytes | None:
        try:
            return await self._ws.get_message()
        except ConnectionClosed:
            return None

    async def send(self, data: str | bytes) -> None:
        try:
            await self._ws.send_message(data)
        except ConnectionClosed:
            raise trio.ClosedResourceError("the upstream closed the session") from None

    async def aclose(self) -> None:
        with trio.move_on_after(1.0, shield=True):
            await self._ws.aclose()


class InProcess:
    """The in-process mock (a ``mock`` channel): ``relay.mock.wire_realtime`` or ``wire_live`` over two memory
    channels."""

    def __init__(self, nursery: trio.Nursery, channel: Channel, model: str, *, live: bool) -> None:
        self._to_mock, mock_in = trio.open_memory_channel[str | bytes](QUEUE)
        mock_out, self._from_mock = trio.open_memory_channel[str | bytes](QUEUE)
        self._code: int | None = None
        self.close_reason = ""
        end = _MockEnd(mock_in, mock_out, self)
        options = channel.config.mock
        session = wire_live.Session(end, options) if live else wire_realtime.Session(end, model, options)
        nursery.start_soon(self._serve, end, session)

    async def _serve(self, end: _MockEnd, session: wire_realtime.Session | wire_live.Session) -> None:
        try:
            await session.run()
        finally:
            await end.close()

    @property
    def close_code(self) -> int | None:
        return self._code

    async def receive(self) -> str | bytes | None:
        try:
            return await self._from_mock.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            self._code = self._code or 1000
            return None

    async def send(self, data: str | bytes) -> None:
        try:
            await self._to_mock.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise trio.ClosedResourceError("the upstream closed the session") from None

    async def aclose(self) -> None:
        self._code = self._code or 1000
        await self._to_mock.aclose()
        await self._from_mock.aclose()


class _MockEnd:
    """The mock's end of the pair (``wire_realtime.Transport``)."""

    def __init__(
        self,
        receiving: trio.MemoryReceiveChannel[str | bytes],
        sending: trio.MemorySendChannel[str | bytes],
        owner: InProcess,
    ) -> None:
        self._receiving = receiving
        self._sending = sending
        self._owner = owner

    async def receive(self) -> str | bytes | None:
        try:
            return await self._receiving.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return None

    async def send(self, data: str | bytes) -> None:
        await self._sending.send(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._owner._code is None:
            self._owner._code, self._owner.close_reason = code, reason
        await self._sending.aclose()
        await self._receiving.aclose()


def url_of(channel: Channel, model: str) -> str:
    """The channel's Realtime WebSocket URL for ``model``."""
    parts = urlsplit(channel.base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = "&".join(q for q in (parts.query, urlencode({"model": model})) if q)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/realtime", query, ""))


def live_url_of(channel: Channel) -> str:
    """The channel's Gemini Live WebSocket URL."""
    parts = urlsplit(channel.base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    method = f"google.ai.generativelanguage.{channel.config.api_version}.GenerativeService.BidiGenerateContent"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws/" + method, parts.query, ""))


def headers_of(channel: Channel, api_key: str, client: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream handshake's headers: the channel's key as its host expects, and the client's ``FORWARDED``."""
    headers = [(b"user-agent", b"relay")]
    if api_key and channel.family == "gemini":
        headers.append((b"x-goog-api-key", api_key.encode("latin-1")))
    elif api_key:
        host = urlsplit(channel.base_url).hostname or ""
        if host.endswith(".azure.com"):
            headers.append((b"api-key", api_key.encode("latin-1")))
        else:
            headers.append((b"authorization", b"Bearer " + api_key.encode("latin-1")))
    headers.extend((name, value) for name, value in client if name in FORWARDED)
    return headers


async def connect(
    nursery: trio.Nursery,
    channel: Channel,
    model: str,
    api_key: str,
    client_headers: Sequence[tuple[bytes, bytes]],
    record: Tally,
    *,
    live: bool = False,
) -> Upstream:
    """The session's upstream, open (its handshake done), its background tasks in ``nursery``; an upstream that
    cannot be reached or refuses is a ``RelayError`` with the upstream's status (failover judges it)."""
    if channel.config.type == "mock":
        record.upstream_status = 101
        return InProcess(nursery, channel, model, live=live)
    url = live_url_of(channel) if live else url_of(channel, model)
    timeouts = channel.config.timeouts
    try:
        with trio.fail_after(timeouts.connect + timeouts.first_byte):
            connection = await connect_websocket_url(
                nursery,
                url,
                extra_headers=headers_of(channel, api_key, client_headers),
                message_queue_size=QUEUE,
                max_message_size=MAX_UPSTREAM_MESSAGE,
            )
    except ConnectionRejected as rejected:
        record.upstream_status = rejected.status_code
        body = (rejected.body or b"")[:300].decode("utf-8", "replace")
        status = rejected.status_code if 400 <= rejected.status_code <= 599 else 502
        raise RelayError(
            status,
            kind_for_status(status),
            f"the upstream refused the session (HTTP {rejected.status_code})",
            code="upstream_refused" if status < 500 else "upstream_error",
            detail=f"channel '{channel.name}': {redact(body)}",
        ) from None
    except (OSError, HandshakeError, trio.TooSlowError) as exc:
        timeout = isinstance(exc, trio.TooSlowError)
        raise RelayError(
            504 if timeout else 502,
            "timeout" if timeout else "upstream",
            "the upstream did not open the session in time" if timeout else "could not reach the upstream",
            code="upstream_timeout" if timeout else "upstream_unreachable",
            detail=f"channel '{channel.name}': {redact(str(exc) or type(exc).__name__)}",
        ) from None
    record.upstream_status = 101
    return WsUpstream(connection)

"""A raw WebSocket client on wsproto for the tests: frames exactly as sent (bad ones too), a socket that can be
dropped without a close frame, a reader that can stop reading, and the close code as it came."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import trio
from wsproto import ConnectionState, ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)


class Rejected(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class RawClient:
    def __init__(self, stream: trio.SocketStream, ws: WSConnection, subprotocol: str | None) -> None:
        self.stream = stream
        self.ws = ws
        self.subprotocol = subprotocol
        self.close_code: int | None = None
        self.close_reason = ""
        self.received = 0
        self._parts: list[Any] = []
        self._pending: list[str | bytes] = []

    @classmethod
    async def connect(
        cls,
        address: str,
        target: str,
        headers: Sequence[tuple[str, str]] = (),
        subprotocols: Sequence[str] = (),
        early: bytes = b"",
    ) -> RawClient:
        """Open a WebSocket; ``early``: bytes written in the same write as the handshake (a first frame)."""
        host, port = address.rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        ws = WSConnection(ConnectionType.CLIENT)
        extra = [(k.encode(), v.encode()) for k, v in headers]
        await stream.send_all(
            ws.send(Request(host=address, target=target, extra_headers=extra, subprotocols=list(subprotocols))) + early
        )
        status, body = 0, b""
        while True:
            data = await stream.receive_some(65536)
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    return cls(stream, ws, event.subprotocol)
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise Rejected(status, b"")
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        await stream.aclose()
                        raise Rejected(status, body)
            if not data:
                raise Rejected(status, body)

    async def send(self, message: str | bytes | dict[str, Any]) -> None:
        if isinstance(message, dict):
            message = json.dumps(message)
        event = TextMessage(data=message) if isinstance(message, str) else BytesMessage(data=message)
        await self.stream.send_all(self.ws.send(event))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def message(self, timeout: float = 10) -> str | bytes | None:
        """The next whole message; None once closed (``close_code`` set: 1006 when the socket just ended)."""
        with trio.fail_after(timeout):
            while True:
                await self._take_events()  # the handshake's read may have brought frames already
                if self._pending:
                    return self._pending.pop(0)
                if self.close_code is not None:
                    return None
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
                self.received += len(data)
                if not data:
                    self.close_code = self.close_code or 1006
                    return None
                self.ws.receive_data(data)

    async def _take_events(self) -> None:
        for event in self.ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    joined = "".join(self._parts) if isinstance(event, TextMessage) else b"".join(self._parts)
                    self._parts = []
                    self._pending.append(joined)
            elif isinstance(event, Ping):
                await self.stream.send_all(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.close_code, self.close_reason = event.code, event.reason or ""
                if self.ws.state is ConnectionState.REMOTE_CLOSING:  # the server's close: answered
                    try:
                        await self.stream.send_all(self.ws.send(event.response()))
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass

    async def event(self, timeout: float = 10) -> dict[str, Any] | None:
        message = await self.message(timeout)
        return None if message is None else json.loads(message)

    async def until(self, kind: str, timeout: float = 10) -> list[dict[str, Any]]:
        """Every event up to and including the first of type ``kind``; AssertionError if the session ends first."""
        seen: list[dict[str, Any]] = []
        while True:
            event = await self.event(timeout)
            assert event is not None, f"closed ({self.close_code}) before {kind}: {[e['type'] for e in seen]}"
            seen.append(event)
            if event["type"] == kind:
                return seen

    async def closed(self, timeout: float = 10) -> int:
        """Read to the close; its code."""
        while await self.message(timeout) is not None:
            pass
        assert self.close_code is not None
        return self.close_code

    async def close(self, code: int = 1000) -> None:
        """Close (unless the server did first) and read to the server's close."""
        if self.close_code is None:
            await self.stream.send_all(self.ws.send(CloseConnection(code=code)))
        await self.closed()
        await self.stream.aclose()

    async def abort(self) -> None:
        """Drop the socket: no close frame."""
        await trio.aclose_forcefully(self.stream)

"""A raw HTTP/1.1 client over a real socket: the tests write bytes and read exactly what came back."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio

ERROR_FIELDS = {"message", "type", "param", "code"}


@attrs.define
class Head:
    status: int
    headers: dict[str, str]
    raw: bytes


@attrs.define
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    def assert_error(self, status: int) -> dict[str, Any]:
        """Assert an error of ``status`` with a ``{"error": {message, type, param, code}}`` JSON body."""
        assert self.status == status, (self.status, self.body)
        assert self.headers["content-type"] == "application/json"
        error = self.json()["error"]
        assert set(error) == ERROR_FIELDS
        assert isinstance(error["message"], str) and error["message"]
        return error


class Client:
    """One connection; reads are buffered so pipelined answers can be taken apart one by one."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    @classmethod
    async def open(cls, host: str, port: int) -> Client:
        return cls(await trio.open_tcp_stream(host, port))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError(f"connection closed; unparsed: {bytes(self.buffer)!r}")
        self.buffer += data

    async def _until(self, marker: bytes) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            await self._fill()
        data = bytes(self.buffer[: end + len(marker)])
        del self.buffer[: end + len(marker)]
        return data

    async def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            await self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def head(self) -> Head:
        raw = await self._until(b"\r\n\r\n")
        lines = raw[:-4].decode("latin-1").split("\r\n")
        version, status, _ = (lines[0] + " ").split(" ", 2)
        assert version == "HTTP/1.1", lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Head(int(status), headers, raw)

    async def chunk(self) -> bytes:
        """The next chunk of a chunked body; b"" for the terminating chunk (trailers consumed)."""
        size = int((await self._until(b"\r\n"))[:-2].split(b";")[0], 16)
        if size == 0:
            await self._until(b"\r\n")
            return b""
        data = await self._exactly(size + 2)
        assert data[-2:] == b"\r\n"
        return data[:-2]

    async def body(self, head: Head) -> bytes:
        if head.headers.get("transfer-encoding") == "chunked":
            parts = []
            while part := await self.chunk():
                parts.append(part)
            return b"".join(parts)
        if "content-length" in head.headers:
            return await self._exactly(int(head.headers["content-length"]))
        return await self.rest()

    async def response(self) -> RawResponse:
        head = await self.head()
        return RawResponse(head.status, head.headers, await self.body(head))

    async def rest(self) -> bytes:
        """Everything until the server closes its side."""
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                break
            self.buffer += data
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def closed(self) -> bool:
        """True when the server closed the connection with nothing more to say."""
        try:
            return await self.rest() == b""
        except trio.BrokenResourceError:
            return True

    def reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0) instead of a FIN."""
        self.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.stream.socket.close()

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


@asynccontextmanager
async def connect(host: str, port: int) -> AsyncIterator[Client]:
    client = await Client.open(host, port)
    try:
        yield client
    finally:
        with trio.move_on_after(1, shield=True):
            await client.aclose()


def request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """Request bytes with a Host header, and Content-Length when there is a body."""
    lines = [f"{method} {path} HTTP/1.1", "Host: relay.test"]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"

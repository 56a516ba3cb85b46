"""A small Redis client for Trio: RESP2 over TCP, a bounded pool, every call under a deadline.

Enough of Redis for rate limits (``relay.gateway.ratelimit``): commands and Lua scripts, nothing more.

- ``ReplyParser`` is sans-IO: ``feed(bytes) -> [replies]``, in any split. Simple strings come back as
  ``str``, bulk strings as ``bytes``, integers as ``int``, arrays as ``list``, nulls as ``None``, error
  replies as ``ReplyError`` values (raised by the client when they are the answer itself).
- ``RedisClient(url)`` connects lazily (``await RedisClient.connect(url)`` connects and pings at once).
  ``redis://[user:password@]host[:port][/db]``: a password sends AUTH, a db other than 0 sends SELECT,
  both pipelined in one round trip when a connection opens.
- At most ``pool_size`` connections; each serves one task at a time and goes back to the pool only after
  a complete reply. Any failure, timeout or cancellation mid-call drops the connection (its reply stream
  can no longer be trusted). A pooled connection the server closed while idle is replaced once, and the
  command sent again, when no byte of its reply had arrived: the server never saw the command.
- Each call, waiting for a free connection included, runs under ``timeout`` seconds (1 s by default);
  every failure is a ``RedisError``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import trio

#: What a command argument may be; str is sent as UTF-8, numbers in decimal.
Arg = bytes | str | int | float

MAX_BULK = 512 * 1024 * 1024  # Redis's own proto-max-bulk-len
MAX_LINE = 64 * 1024  # a status, error or length line longer than this is not Redis talking
RECEIVE_SIZE = 65536
_INTEGER = re.compile(rb"-?[0-9]+")


class RedisError(Exception):
    """Redis could not answer: unreachable, timed out, closed, spoke garbage, or replied with an error."""


class ReplyError(RedisError):
    """An error reply (``-ERR …``); ``code`` is its first word (``ERR``, ``NOSCRIPT``, ``WRONGTYPE``…)."""

    @property
    def code(self) -> str:
        return str(self).split(" ", 1)[0]


class RedisConnectionError(RedisError):
    """The connection could not be opened, or broke."""


class RedisTimeoutError(RedisConnectionError):
    """No complete reply within the call's timeout."""


class ProtocolError(RedisError):
    """The bytes received are not RESP2."""


def encode_command(*args: Arg) -> bytes:
    """A command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int | float) and not isinstance(arg, bool):
            data = repr(arg).encode()
        else:
            raise TypeError(f"a Redis argument must be bytes, str, int or float, not {type(arg).__name__}")
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


_INCOMPLETE = object()
_OPENED = object()


class ReplyParser:
    """Sans-IO RESP2 reply parser; raises ProtocolError (after which it must not be fed again)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._scan = 0  # where to look for the next CRLF: the line so far has none
        self._bulk: int | None = None  # length of the bulk string whose header was read
        self._arrays: list[tuple[list[Any], int]] = []  # arrays being filled: (items so far, size)

    def feed(self, data: bytes) -> list[Any]:
        """Take the bytes received; return every reply they complete, in order."""
        self._buf += data
        replies: list[Any] = []
        try:
            while (item := self._item()) is not _INCOMPLETE:
                if item is not _OPENED:
                    self._complete(item, replies)
        finally:
            del self._buf[: self._pos]
            self._scan -= self._pos
            self._pos = 0
        return replies

    @property
    def idle(self) -> bool:
        """True between replies: nothing partial is buffered."""
        return not self._buf and self._bulk is None and not self._arrays

    def _complete(self, value: Any, replies: list[Any]) -> None:
        while self._arrays:
            items, size = self._arrays[-1]
            items.append(value)
            if len(items) < size:
                return
            self._arrays.pop()
            value = items
        replies.append(value)

    def _item(self) -> Any:
        if self._bulk is not None:
            end = self._pos + self._bulk
            if len(self._buf) < end + 2:
                return _INCOMPLETE
            if self._buf[end : end + 2] != b"\r\n":
                raise ProtocolError("a bulk string is not followed by CRLF")
            value = bytes(self._buf[self._pos : end])
            self._pos, self._bulk = end + 2, None
            return value
        eol = self._buf.find(b"\r\n", max(self._pos, self._scan))
        if eol < 0:
            if len(self._buf) - self._pos > MAX_LINE:
                raise ProtocolError(f"no CRLF within {MAX_LINE} bytes")
            self._scan = len(self._buf) - 1  # a CR at the end may be half of the CRLF
            return _INCOMPLETE
        kind, line = self._buf[self._pos : self._pos + 1], bytes(self._buf[self._pos + 1 : eol])
        self._pos = eol + 2
        if kind == b"+":
            return line.decode("utf-8", "replace")
        if kind == b"-":
            return ReplyError(line.decode("utf-8", "replace"))
        if kind not in (b":", b"$", b"*"):
            raise ProtocolError(f"unknown reply type {bytes(kind)!r}")
        if not _INTEGER.fullmatch(line):
            raise ProtocolError(f"not an integer after {bytes(kind)!r}: {line[:40]!r}")
        number = int(line)
        if kind == b":":
            return number
        if number == -1:
            return None  # null bulk string or null array
        if number < -1 or (kind == b"$" and number > MAX_BULK):
            raise ProtocolError(f"bad length {number} after {bytes(kind)!r}")
        if kind == b"$":
            self._bulk = number
            return self._item()
        if number == 0:
            return []
        self._arrays.append(([], number))
        return _OPENED


@contextmanager
def _connection_errors(where: str) -> Iterator[None]:
    """The one place where socket exceptions become RedisConnectionError."""
    try:
        yield
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise RedisConnectionError(f"redis at {where}: {exc or type(exc).__name__}") from exc


class _Connection:
    def __init__(self, stream: trio.SocketStream, where: str) -> None:
        self.stream = stream
        self.where = where
        self.parser = ReplyParser()
        #: Taken from the pool and not yet used: the server may have closed it meanwhile.
        self.stale = False
        self.received = False

    async def execute(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Send the commands in one write; read until each has its reply."""
        self.received = False
        replies: list[Any] = []
        with _connection_errors(self.where):
            await self.stream.send_all(b"".join(encode_command(*command) for command in commands))
            while len(replies) < len(commands):
                data = await self.stream.receive_some(RECEIVE_SIZE)
                if not data:
                    raise RedisConnectionError(f"redis at {self.where}: connection closed by the server")
                self.received = True
                replies += self.parser.feed(data)
        if len(replies) > len(commands):
            raise ProtocolError(f"redis at {self.where}: more replies than commands")
        self.stale = False
        return replies

    async def drop(self) -> None:
        await trio.aclose_forcefully(self.stream)


@attrs.define
class _Lease:
    conn: _Connection


@attrs.frozen
class RedisURL:
    host: str
    port: int
    db: int
    username: str | None
    password: str | None = attrs.field(repr=False)  # never in logs

    @classmethod
    def parse(cls, url: str) -> RedisURL:
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ValueError(f"expected a redis://host:port/db URL, got {url!r}")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"the database in {url!r} must be a number")
        try:
            port = parts.port or 6379
        except ValueError as exc:
            raise ValueError(f"bad port in {url!r}") from exc
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            db=int(path or 0),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )


class RedisClient:
    """A bounded pool of RESP2 connections to one Redis server; see the module docstring."""

    def __init__(self, url: str, *, pool_size: int = 4, timeout: float = 1.0) -> None:
        self.url = RedisURL.parse(url)
        self.timeout = timeout
        self.where = f"{self.url.host}:{self.url.port}"
        #: Connections opened so far (handshake included): how often the pool had to connect.
        self.opened = 0
        self._slots = trio.Semaphore(pool_size)
        self._idle: list[_Connection] = []
        self._shas: dict[str, str] = {}  # script → SHA-1
        self._loaded: set[str] = set()  # SHA-1s this client has loaded (the server may have flushed them)
        self._closed = False

    @classmethod
    async def connect(cls, url: str, *, pool_size: int = 4, timeout: float = 1.0) -> RedisClient:
        """A client whose first connection is open and answered PING."""
        client = cls(url, pool_size=pool_size, timeout=timeout)
        try:
            await client.call("PING")
        except BaseException:
            await client.aclose()
            raise
        return client

    async def call(self, *args: Arg) -> Any:
        """Run one command; an error reply is raised as ReplyError."""
        with self._deadline():
            async with self._lease() as lease:
                (reply,) = await self._execute(lease, [args])
        return _unwrap(reply)

    async def evalsha(self, script: str, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """Run a Lua script by its SHA-1, loading it (in the same round trip) on first use or after NOSCRIPT."""
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
        command = ("EVALSHA", sha, len(keys), *keys, *args)
        load = ("SCRIPT", "LOAD", script)
        loaded: Any = None
        with self._deadline():
            async with self._lease() as lease:
                load_first = sha not in self._loaded
                if not load_first:
                    (reply,) = await self._execute(lease, [command])
                    load_first = isinstance(reply, ReplyError) and reply.code == "NOSCRIPT"
                if load_first:
                    loaded, reply = await self._execute(lease, [load, command])
        if load_first:
            if _unwrap(loaded) != sha.encode():
                raise ProtocolError(f"SCRIPT LOAD answered {loaded!r}, expected {sha}")
            self._loaded.add(sha)
        return _unwrap(reply)

    async def aclose(self) -> None:
        """Close the pooled connections; connections in use close when their call ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.drop()

    async def __aenter__(self) -> RedisClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @contextmanager
    def _deadline(self) -> Iterator[None]:
        if self._closed:
            raise RedisError("the Redis client is closed")
        try:
            with trio.fail_after(self.timeout):
                yield
        except trio.TooSlowError:
            raise RedisTimeoutError(f"redis at {self.where}: no reply within {self.timeout} s") from None

    @asynccontextmanager
    async def _lease(self) -> AsyncIterator[_Lease]:
        async with self._slots:
            if self._idle:
                conn = self._idle.pop()
                conn.stale = True
            else:
                conn = await self._open()
            lease = _Lease(conn)
            try:
                yield lease
            except BaseException:
                await lease.conn.drop()
                raise
            if self._closed or not lease.conn.parser.idle:
                await lease.conn.drop()
            else:
                self._idle.append(lease.conn)

    async def _execute(self, lease: _Lease, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        try:
            return await lease.conn.execute(commands)
        except RedisConnectionError:
            if not lease.conn.stale or lease.conn.received:
                raise
        # The server closed this pooled connection while it was idle: it never saw the commands.
        await lease.conn.drop()
        lease.conn = await self._open()
        return await lease.conn.execute(commands)

    async def _open(self) -> _Connection:
        with _connection_errors(self.where):
            stream = await trio.open_tcp_stream(self.url.host, self.url.port)
        conn = _Connection(stream, self.where)
        handshake: list[tuple[Arg, ...]] = []
        if self.url.password is not None:
            user = (self.url.username,) if self.url.username else ()
            handshake.append(("AUTH", *user, self.url.password))
        if self.url.db:
            handshake.append(("SELECT", self.url.db))
        try:
            for reply in await conn.execute(handshake) if handshake else ():
                _unwrap(reply)
        except BaseException:
            await conn.drop()
            raise
        self.opened += 1
        return conn


def _unwrap(reply: Any) -> Any:
    if isinstance(reply, ReplyError):
        raise ReplyError(str(reply))
    return reply

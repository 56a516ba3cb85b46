"""relay.gateway.resp: the sans-IO reply parser byte by byte, and the client against fake servers and real Redis."""

from __future__ import annotations

import functools
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trio

from relay.gateway.resp import (
    ProtocolError,
    RedisClient,
    RedisConnectionError,
    RedisError,
    RedisTimeoutError,
    RedisURL,
    ReplyError,
    ReplyParser,
    encode_command,
)

# Every RESP2 type, as bytes on the wire and as the parser's value (errors compared by type and text).
REPLIES: list[tuple[bytes, object]] = [
    (b"+OK\r\n", "OK"),
    (b"+\r\n", ""),
    (b"-ERR unknown command 'NOPE'\r\n", ReplyError("ERR unknown command 'NOPE'")),
    (b":0\r\n", 0),
    (b":-42\r\n", -42),
    (b":9223372036854775807\r\n", 9223372036854775807),
    (b"$5\r\nhello\r\n", b"hello"),
    (b"$0\r\n\r\n", b""),
    (b"$6\r\na\r\nb\x00c\r\n", b"a\r\nb\x00c"),
    (b"$-1\r\n", None),
    (b"*-1\r\n", None),
    (b"*0\r\n", []),
    (b"*3\r\n:1\r\n$1\r\nx\r\n+y\r\n", [1, b"x", "y"]),
    (
        b"*4\r\n*2\r\n:1\r\n*1\r\n$-1\r\n*0\r\n-WRONGTYPE no\r\n*-1\r\n",
        [[1, [None]], [], ReplyError("WRONGTYPE no"), None],
    ),
    (b"*1\r\n*1\r\n*1\r\n*1\r\n:7\r\n", [[[[7]]]]),
]
STREAM = b"".join(wire for wire, _ in REPLIES)


def normal(value: object) -> object:
    if isinstance(value, ReplyError):
        return ("error", str(value))
    if isinstance(value, list):
        return [normal(item) for item in value]
    return value


EXPECTED = [normal(value) for _, value in REPLIES]


def test_parser_every_type_in_one_feed() -> None:
    parser = ReplyParser()
    assert [normal(r) for r in parser.feed(STREAM)] == EXPECTED
    assert parser.idle


def test_parser_byte_by_byte() -> None:
    parser = ReplyParser()
    replies: list[object] = []
    for i in range(len(STREAM)):
        replies += parser.feed(STREAM[i : i + 1])
    assert [normal(r) for r in replies] == EXPECTED
    assert parser.idle


@pytest.mark.parametrize("wire,value", REPLIES, ids=[w.decode("latin-1")[:24] for w, _ in REPLIES])
def test_parser_split_at_every_byte(wire: bytes, value: object) -> None:
    for cut in range(len(wire) + 1):
        parser = ReplyParser()
        first = parser.feed(wire[:cut])
        assert first == [] or cut == len(wire), cut  # nothing is complete before its last byte
        assert [normal(r) for r in first + parser.feed(wire[cut:])] == [normal(value)], cut
        assert parser.idle


def test_parser_error_code() -> None:
    (error,) = ReplyParser().feed(b"-NOSCRIPT No matching script. Please use EVAL.\r\n")
    assert isinstance(error, ReplyError)
    assert error.code == "NOSCRIPT"
    assert str(error) == "NOSCRIPT No matching script. Please use EVAL."


@pytest.mark.parametrize(
    "wire",
    [
        b"!oops\r\n",  # unknown type
        b":12a\r\n",  # integer with junk
        b": 12\r\n",
        b":\r\n",
        b"$abc\r\n",
        b"$-2\r\n",
        b"*-5\r\n",
        b"$3\r\nabcXY",  # bulk not followed by CRLF
        b"$%d\r\n" % (512 * 1024 * 1024 + 1),
        b"+" + b"x" * (64 * 1024 + 10),  # a line that never ends
    ],
    ids=lambda wire: repr(wire[:12]),
)
def test_parser_protocol_errors(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        ReplyParser().feed(wire)
    parser = ReplyParser()  # the same, byte by byte
    with pytest.raises(ProtocolError):
        for i in range(len(wire)):
            parser.feed(wire[i : i + 1])


def test_encode_command() -> None:
    assert encode_command("SET", b"k\r\n", 12, 0.5) == b"*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n12\r\n$3\r\n0.5\r\n"
    assert encode_command("é") == b"*1\r\n$2\r\n\xc3\xa9\r\n"
    with pytest.raises(TypeError):
        encode_command("SET", True)
    with pytest.raises(TypeError):
        encode_command("SET", None)  # type: ignore[arg-type]


def test_url() -> None:
    assert RedisURL.parse("redis://h:7000/3") == RedisURL("h", 7000, 3, None, None)
    assert RedisURL.parse("redis://localhost") == RedisURL("localhost", 6379, 0, None, None)
    assert RedisURL.parse("redis://u:p%40ss@h/0") == RedisURL("h", 6379, 0, "u", "p@ss")
    assert RedisURL.parse("redis://:secret@h:1/") == RedisURL("h", 1, 0, None, "secret")
    for bad in ("rediss://h", "http://h", "redis://h/x", "redis://h:port"):
        with pytest.raises(ValueError):
            RedisURL.parse(bad)


# --- fake servers: no Redis needed -------------------------------------------------------------------------


async def fake_server(nursery: trio.Nursery, handler: Callable[[trio.SocketStream], Awaitable[None]]) -> str:
    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return f"redis://127.0.0.1:{listeners[0].socket.getsockname()[1]}/0"


async def test_timeout_against_a_server_that_never_answers() -> None:
    closed = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        while await stream.receive_some():  # read and never answer, until the client hangs up
            pass
        closed.set()

    async with trio.open_nursery() as nursery:
        client = RedisClient(await fake_server(nursery, silent), timeout=0.2)
        start = trio.current_time()
        with pytest.raises(RedisTimeoutError, match=r"no reply within 0\.2 s"):
            await client.call("PING")
        assert 0.2 <= trio.current_time() - start < 0.5
        with trio.fail_after(1):
            await closed.wait()  # the connection was dropped, not pooled
        await client.aclose()
        nursery.cancel_scope.cancel()


async def test_cancelled_call_drops_its_connection() -> None:
    closed = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        while await stream.receive_some():
            pass
        closed.set()

    async with trio.open_nursery() as nursery:
        client = RedisClient(await fake_server(nursery, silent), timeout=5)
        with trio.move_on_after(0.05):
            await client.call("PING")
        with trio.fail_after(1):
            await closed.wait()
        nursery.cancel_scope.cancel()


async def test_connection_refused_fails_quickly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed at once: nothing listens there
    client = RedisClient(f"redis://127.0.0.1:{port}/0", timeout=1)  # lazy: no I/O yet
    start = trio.current_time()
    with pytest.raises(RedisConnectionError, match=f"127.0.0.1:{port}"):
        await client.call("PING")
    assert trio.current_time() - start < 0.5
    with pytest.raises(RedisConnectionError):
        await RedisClient.connect(f"redis://127.0.0.1:{port}/0")


@pytest.mark.parametrize(
    "answer,error",
    [
        (b"", RedisConnectionError),
        (b"$5\r\nhe", RedisConnectionError),
        (b"!what\r\n", ProtocolError),
        (b"+OK\r\n+EXTRA\r\n", ProtocolError),
    ],
)
async def test_broken_answers(answer: bytes, error: type[RedisError]) -> None:
    async def broken(stream: trio.SocketStream) -> None:
        await stream.receive_some()
        await stream.send_all(answer)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        client = RedisClient(await fake_server(nursery, broken), timeout=1)
        with pytest.raises(error):
            await client.call("PING")
        nursery.cancel_scope.cancel()


# --- real Redis ---------------------------------------------------------------------------------------------


def with_db(url: str, db: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}" if url.count("/") > 2 else f"{url}/{db}"


@pytest.fixture
def client(redis: RedisClient) -> RedisClient:
    return redis


@pytest.fixture
async def prefix(client: RedisClient) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (nothing else is)."""
    prefix = f"relay:test:{uuid.uuid4().hex}:"
    yield prefix
    keys = await client.call("KEYS", prefix + "*")
    if keys:
        await client.call("DEL", *keys)


async def test_set_get_types(client: RedisClient, prefix: str) -> None:
    assert await client.call("SET", prefix + "a", b"\x00\r\nbin") == "OK"
    assert await client.call("GET", prefix + "a") == b"\x00\r\nbin"
    assert await client.call("GET", prefix + "missing") is None
    assert await client.call("INCRBY", prefix + "n", 5) == 5
    assert await client.call("RPUSH", prefix + "l", "x", "y") == 2
    assert await client.call("LRANGE", prefix + "l", 0, -1) == [b"x", b"y"]
    with pytest.raises(ReplyError, match="WRONGTYPE") as caught:
        await client.call("GET", prefix + "l")
    assert caught.value.code == "WRONGTYPE"
    assert await client.call("PING") == "PONG"  # the error left the connection usable
    assert client.opened == 1


async def test_select_db_from_url(redis_url: str, client: RedisClient, prefix: str) -> None:
    async with RedisClient(with_db(redis_url, 9)) as db9:
        assert b"db=9" in await db9.call("CLIENT", "INFO")
        await db9.call("SET", prefix + "x", "nine")
        try:
            assert await db9.call("GET", prefix + "x") == b"nine"
            assert await client.call("GET", prefix + "x") is None  # client is on the URL's db
        finally:
            await db9.call("DEL", prefix + "x")


async def test_auth_from_url(redis_url: str, client: RedisClient) -> None:
    user = f"relay-test-{uuid.uuid4().hex[:8]}"
    try:
        await client.call("ACL", "SETUSER", user, "on", ">s3cr@t", "~*", "+@all")
    except ReplyError as exc:
        pytest.skip(f"this Redis refuses ACL SETUSER: {exc}")
    try:
        host = redis_url.split("://", 1)[1]
        async with RedisClient(f"redis://{user}:s3cr%40t@{host}") as authed:
            assert await authed.call("ACL", "WHOAMI") == user.encode()
        with pytest.raises(ReplyError, match="WRONGPASS"):
            await RedisClient.connect(f"redis://{user}:wrong@{host}")
    finally:
        await client.call("ACL", "DELUSER", user)


SCRIPT = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}"


async def calls(client: RedisClient) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats)."""
    info = (await client.call("INFO", "commandstats")).decode()
    found = re.findall(r"^cmdstat_(\S+?):calls=(\d+)", info, re.MULTILINE)
    return {name: int(count) for name, count in found}


async def test_evalsha_loads_once_and_survives_script_flush(client: RedisClient, prefix: str) -> None:
    key = (prefix + "k").encode()
    before = await calls(client)
    assert await client.evalsha(SCRIPT, [prefix + "k"], ["a", 41]) == [key, b"a", 42]
    assert await client.evalsha(SCRIPT, [prefix + "k"], ["b", 1]) == [key, b"b", 2]
    after = await calls(client)
    assert after.get("script|load", 0) - before.get("script|load", 0) == 1
    assert after["evalsha"] - before.get("evalsha", 0) == 2
    await client.call("SCRIPT", "FLUSH")
    assert await client.evalsha(SCRIPT, [prefix + "k"], ["c", 2]) == [key, b"c", 3]  # NOSCRIPT, loaded again
    assert await client.evalsha(SCRIPT, [prefix + "k"], ["d", 3]) == [key, b"d", 4]
    final = await calls(client)
    assert final["script|load"] - after["script|load"] == 1
    assert final["evalsha"] - after["evalsha"] == 3
    with pytest.raises(ReplyError, match="oops"):
        await client.evalsha("return redis.error_reply('oops')", [], [])
    with pytest.raises(ReplyError):
        await client.evalsha("this is not lua", [], [])
    assert await client.call("PING") == "PONG"
    assert client.opened == 1


async def test_fifty_tasks_share_a_pool_of_four(redis_url: str, prefix: str) -> None:
    async with RedisClient(redis_url, pool_size=4) as pooled:
        results: dict[int, bytes | None] = {}

        async def worker(i: int) -> None:
            for round_ in range(10):
                value = f"{i}-{round_}".encode()
                await pooled.call("SET", f"{prefix}{i}", value)
                results[i] = await pooled.call("GET", f"{prefix}{i}")
                assert results[i] == value  # no reply went to the wrong task
                await pooled.call("INCR", prefix + "count")

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(worker, i)
        assert await pooled.call("GET", prefix + "count") == b"500"
        assert pooled.opened == 4


async def test_a_pooled_connection_killed_while_idle_is_replaced(client: RedisClient, redis_url: str) -> None:
    own_id = await client.call("CLIENT", "ID")
    async with RedisClient(redis_url) as killer:
        assert await killer.call("CLIENT", "KILL", "ID", own_id) == 1
    assert await client.call("PING") == "PONG"  # sent again on a new connection
    assert client.opened == 2
    assert await client.call("CLIENT", "ID") != own_id


async def test_closed_client_refuses_calls(redis_url: str) -> None:
    client = await RedisClient.connect(redis_url)
    await client.aclose()
    with pytest.raises(RedisError, match="closed"):
        await client.call("PING")

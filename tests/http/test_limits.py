"""Every [limits] key fires with its status and a JSON error body; malformed requests get 400."""

import inspect

import attrs
import trio

from relay.http import limits as limits_module
from relay.http.limits import Limits
from tests.conftest import KEY, ROOT, config_from, serve_relay
from tests.http.apps import chat_body
from tests.http.raw import connect, request

AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def sized_head(size: int) -> bytes:
    """A GET /healthz head of exactly ``size`` bytes, blank line included."""
    head = request("GET", "/healthz", headers={"X-Pad": ""})
    return head[:-4] + b"a" * (size - len(head)) + b"\r\n\r\n"


def test_every_limit_has_a_documented_default_and_a_config_key():
    fields = attrs.fields(Limits)
    source = inspect.getsource(limits_module).splitlines()
    docs = (ROOT / "docs" / "limits.md").read_text()
    for field in fields:
        assert field.default is not attrs.NOTHING, field.name
        line = next(i for i, text in enumerate(source) if text.strip().startswith(f"{field.name}:"))
        assert source[line - 1].strip().startswith("#:"), f"{field.name} has no doc comment"
        assert f"| `{field.name}` |" in docs, f"{field.name} is missing from docs/limits.md"
    values = {field.name: (i + 1) * (1.5 if field.type == "float" else 1) for i, field in enumerate(fields)}
    toml = "[limits]\n" + "".join(f"{name} = {value}\n" for name, value in values.items())
    assert attrs.asdict(config_from(toml).limits) == values


async def test_head_at_the_limit_is_served_and_one_byte_more_is_431():
    async with serve_relay(config_from(max_head_bytes=1024)) as relay:
        async with connect(relay.host, relay.port) as client:
            await client.send(sized_head(1024))
            assert (await client.response()).status == 200
        async with connect(relay.host, relay.port) as client:
            await client.send(sized_head(1025))  # one write: h11 sees the whole head at once
            (await client.response()).assert_error(431)
            assert await client.closed()


async def test_head_arriving_in_pieces_over_the_limit_is_431():
    head = sized_head(4000)
    async with serve_relay(config_from(max_head_bytes=1024)) as relay, connect(relay.host, relay.port) as client:
        for start in range(0, len(head), 500):
            try:
                await client.send(head[start : start + 500])
            except trio.BrokenResourceError:
                break  # the server answered and closed before the rest was sent
            await trio.sleep(0.01)
        (await client.response()).assert_error(431)


async def test_body_over_the_limit_is_refused_before_it_is_sent():
    head = request("POST", "/v1/chat/completions", headers={**AUTH, "Content-Length": "5000", "Expect": "100-continue"})
    async with serve_relay(config_from(max_body_bytes=1000)) as relay, connect(relay.host, relay.port) as client:
        await client.send(head)  # the head only: not one byte of the body
        with trio.fail_after(2):
            response = await client.response()
        error = response.assert_error(413)  # not a 100 Continue first
        assert "1000" in error["message"]
        assert response.headers["connection"] == "close"


async def test_chunked_body_over_the_limit_is_413():
    head = request("POST", "/v1/chat/completions", headers={**AUTH, "Transfer-Encoding": "chunked"})
    async with serve_relay(config_from(max_body_bytes=1000)) as relay, connect(relay.host, relay.port) as client:
        await client.send(head)
        try:
            for _ in range(5):
                await client.send(b"190\r\n" + b"x" * 400 + b"\r\n")
        except trio.BrokenResourceError:
            pass
        (await client.response()).assert_error(413)
        assert await client.closed()


async def test_body_at_the_limit_is_accepted():
    body = chat_body("fits")
    async with serve_relay(config_from(max_body_bytes=len(body))) as relay:
        async with connect(relay.host, relay.port) as client:
            await client.send(request("POST", "/v1/chat/completions", body, AUTH))
            assert (await client.response()).status == 200


async def test_slow_head_gets_408():
    async with serve_relay(config_from(head_timeout=0.3)) as relay, connect(relay.host, relay.port) as client:
        await client.send(b"GET /healthz HTTP/1.1\r\nHost: relay.test\r\n")  # no blank line yet
        with trio.fail_after(2):
            (await client.response()).assert_error(408)
            assert await client.closed()


async def test_slow_head_on_a_reused_connection_gets_408():
    async with serve_relay(config_from(head_timeout=0.3)) as relay, connect(relay.host, relay.port) as client:
        await client.send(request("GET", "/healthz"))
        assert (await client.response()).status == 200
        await client.send(b"GET /healthz HTTP/1.1\r\n")
        with trio.fail_after(2):
            (await client.response()).assert_error(408)


async def test_silent_connection_is_closed_without_an_answer():
    async with serve_relay(config_from(head_timeout=0.3)) as relay, connect(relay.host, relay.port) as client:
        with trio.fail_after(2):
            assert await client.closed()


async def test_slow_body_gets_408():
    head = request("POST", "/v1/chat/completions", headers={**AUTH, "Content-Length": "100"})
    async with serve_relay(config_from(body_timeout=0.3)) as relay, connect(relay.host, relay.port) as client:
        await client.send(head + b'{"model": ')
        with trio.fail_after(2):
            (await client.response()).assert_error(408)
            assert await client.closed()


async def test_malformed_request_line_gets_400_and_close():
    async with serve_relay() as relay, connect(relay.host, relay.port) as client:
        await client.send(b"NOT AN HTTP REQUEST\r\n\r\n")
        (await client.response()).assert_error(400)
        assert await client.closed()


async def test_bad_chunked_framing_gets_400_and_close():
    head = request("POST", "/v1/chat/completions", headers={**AUTH, "Transfer-Encoding": "chunked"})
    async with serve_relay() as relay, connect(relay.host, relay.port) as client:
        await client.send(head + b"zz\r\nhello\r\n0\r\n\r\n")
        (await client.response()).assert_error(400)
        assert await client.closed()

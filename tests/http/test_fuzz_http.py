"""Fuzzing the HTTP server: generated and mutated requests over a real loopback socket into Relay's Connection.

Whatever arrives, the server answers only well-formed HTTP/1.1 responses with a status from a known set
(never a 500), logs no traceback, and closes the connection after any error answer.
"""

import logging
import re

import orjson
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.http.limits import Limits
from relay.http.messages import Request, Response, StreamResponse
from tests.conftest import serve_app

STATUSES = {200, 400, 408, 413, 431, 501, 505}
_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n")
LIMITS = Limits(head_timeout=0.05, keepalive_timeout=0.05, body_timeout=0.05, max_head_bytes=2048, max_body_bytes=4096)


class Echo:
    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        return Response.json(200, {"method": request.method, "path": request.path, "size": len(request.body)})

    def error(self, status: int, message: str, path: str | None, *, code: str | None = None) -> Response:
        return Response.json(status, {"error": {"message": message, "type": "http", "param": None, "code": code}})


VALID = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
]
PIECES = [
    b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b",", b"0", b"5", b"-", b"+", b"chunked", b"gzip", b"identity",
    b"Content-Length: ", b"Transfer-Encoding: ", b"HTTP/1.1", b"HTTP/9.9", b"HTTP/2.0", b"\x00", b"\xff",
    b"Expect: 100-continue\r\n", b"Connection: close\r\n", b"0\r\n\r\n", b"ffffffffffffffff\r\n",
]  # fmt: skip
HEADERS = [
    b"Host: a", b"Content-Length: 3", b"Content-Length: 0", b"Content-Length: +3", b"Content-Length: 3, 4",
    b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked", b"Transfer-Encoding: chunked, chunked",
    b"Transfer-Encoding: identity", b"X-Fold: a\r\n b", b"X-Space : a", b"Connection: close",
    b"Expect: 100-continue", b"X-Long: " + b"a" * 3000, b"",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        if op == "insert":
            data[at:at] = draw(st.sampled_from(PIECES) | st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def generated(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"G\x00T", b""]))
    target = draw(st.sampled_from([b"/", b"/v1/messages", b"*", b"http://h/x", b"/a b", b"/?q=1"]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"http/1.1", b""]))
    headers = draw(st.lists(st.sampled_from(HEADERS), max_size=5))
    end = draw(st.sampled_from([b"\r\n", b"\n"]))
    body = draw(st.sampled_from([b"", b"abc", b"3\r\nabc\r\n0\r\n\r\n", b"zz\r\n"]))
    return method + b" " + target + b" " + version + end + end.join(headers) + end + end + body


async def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` and read everything until the server closes (or says nothing for a while)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    received = bytearray()
    async with stream:
        try:
            await stream.send_all(data)
        except trio.BrokenResourceError:
            pass
        with trio.move_on_after(2):
            try:
                while chunk := await stream.receive_some(65536):
                    received += chunk
            except trio.BrokenResourceError:
                pass
    return bytes(received)


def check(answer: bytes) -> None:
    """Every response well-formed with a known status; nothing after an error answer."""
    rest = answer
    while rest:
        if rest.startswith(b"HTTP/1.1 100 "):
            rest = rest[rest.index(b"\r\n\r\n") + 4 :]
            continue
        match = _STATUS_LINE.match(rest)
        assert match, rest[:200]
        status = int(match.group(1))
        assert status in STATUSES, rest[:300]
        end = rest.find(b"\r\n\r\n")
        assert end > 0, rest[:300]
        head = rest[:end].decode("latin-1").lower()
        length = re.search(r"\r\ncontent-length: (\d+)", head)
        assert length, head
        body = rest[end + 4 : end + 4 + int(length.group(1))]
        assert len(body) == int(length.group(1)), "truncated body"
        orjson.loads(body)
        rest = rest[end + 4 + len(body) :]
        if status >= 400:
            assert "connection: close" in head
            assert not rest, f"answered after an error: {rest[:200]!r}"


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.one_of(mutated(), generated()))
def test_any_request_gets_well_formed_answers_and_no_500(data: bytes, caplog) -> None:
    caplog.clear()

    async def main() -> bytes:
        async with serve_app(Echo(), LIMITS) as served:
            return await exchange(served.port, data)

    with caplog.at_level(logging.ERROR):
        answer = trio.run(main)
    check(answer)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text

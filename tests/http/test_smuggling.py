"""Request smuggling hygiene (RFC 9112): every head two parsers could read differently is refused, and closed.

Each test writes the suspicious request followed by a well-formed pipelined one: the first must be
refused with its status and the connection closed, the second never answered.
"""

import orjson
import pytest

from tests.conftest import KEY, serve_relay
from tests.http.apps import chat_body
from tests.http.raw import connect

BODY = chat_body("smuggled?")
HEAD = f"POST /v1/chat/completions HTTP/1.1\r\nHost: relay.test\r\nAuthorization: Bearer {KEY}\r\n"
NEXT = b"GET /healthz HTTP/1.1\r\nHost: relay.test\r\n\r\n"


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


async def refused(data: bytes, status: int) -> dict:
    """Send ``data`` then a pipelined GET; the first gets ``status`` and a close, the GET nothing."""
    async with serve_relay() as relay, connect(relay.host, relay.port) as client:
        try:
            await client.send(data + NEXT)
        except Exception:
            pass  # the server may have answered and closed before the rest was written
        response = await client.response()
        assert response.status == status, (response.status, response.body)
        assert response.headers["connection"] == "close"
        assert await client.closed(), "something was answered after the refusal"
        return response.json()


async def test_content_length_with_chunked_is_400_and_closes():
    head = HEAD + f"Content-Length: {len(BODY)}\r\nTransfer-Encoding: chunked\r\n\r\n"
    error = (await refused(head.encode() + chunked(BODY), 400))["error"]
    assert "Content-Length and Transfer-Encoding" in error["message"]


async def test_chunked_then_content_length_is_400_too():
    head = HEAD + f"Transfer-Encoding: chunked\r\nContent-Length: {len(BODY)}\r\n\r\n"
    await refused(head.encode() + chunked(BODY), 400)


@pytest.mark.parametrize("coding", ["gzip, chunked", "identity", "deflate", "chunked, gzip"])
async def test_unknown_transfer_coding_is_501_not_an_upstream_error(coding):
    head = HEAD + f"Transfer-Encoding: {coding}\r\n\r\n"
    error = (await refused(head.encode() + chunked(BODY), 501))["error"]
    assert error["type"] != "upstream_error"
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "unsupported_transfer_coding"


@pytest.mark.parametrize(
    "headers",
    ["Transfer-Encoding: chunked, chunked\r\n", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"],
)
async def test_chunked_twice_is_400_malformed(headers):
    error = (await refused((HEAD + headers + "\r\n").encode() + chunked(BODY), 400))["error"]
    assert "chunked" in error["message"]


@pytest.mark.parametrize("version", ["HTTP/9.9", "HTTP/2.0", "HTTP/0.9"])
async def test_other_major_versions_get_505(version):
    head = f"GET /healthz {version}\r\nHost: relay.test\r\n\r\n"
    error = (await refused(head.encode(), 505))["error"]
    assert error["code"] == "http_version_not_supported"


async def test_http_1_0_is_still_served():
    async with serve_relay() as relay, connect(relay.host, relay.port) as client:
        await client.send(b"GET /healthz HTTP/1.0\r\nHost: relay.test\r\n\r\n")
        assert (await client.response()).status == 200


@pytest.mark.parametrize(
    "head",
    [
        f"POST /v1/chat/completions HTTP/1.1\nHost: relay.test\nContent-Length: {len(BODY)}\n\n",  # bare LF
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: relay.test\nContent-Length: {len(BODY)}\r\n\r\n",
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: relay.test\rX: y\r\nContent-Length: {len(BODY)}\r\n\r\n",
        HEAD + f"X-Folded: a\r\n b\r\nContent-Length: {len(BODY)}\r\n\r\n",  # obs-fold
        HEAD + f"X-Folded: a\r\n\tb\r\nContent-Length: {len(BODY)}\r\n\r\n",
        HEAD + f"Content-Length : {len(BODY)}\r\n\r\n",  # space before colon
        HEAD + f"Content-Length: {len(BODY)}\r\nContent-Length: {len(BODY) + 1}\r\n\r\n",
        HEAD + f"Content-Length: {len(BODY)}, {len(BODY) + 1}\r\n\r\n",
        HEAD + f"Content-Length: +{len(BODY)}\r\n\r\n",
        HEAD + f"Content-Length: -{len(BODY)}\r\n\r\n",
        HEAD + f"Content-Length: 0x{len(BODY):x}\r\n\r\n",
        HEAD + f"Content-Length: {len(BODY)}abc\r\n\r\n",
        HEAD + "Transfer-Encoding: \r\n\r\n",
    ],
    ids=[
        "bare-lf",
        "one-bare-lf",
        "bare-cr",
        "obs-fold-space",
        "obs-fold-tab",
        "space-before-colon",
        "two-lengths",
        "length-list",
        "plus-sign",
        "minus-sign",
        "hex-length",
        "length-junk",
        "empty-coding",
    ],
)
async def test_ambiguous_framing_is_400_and_closes(head):
    payload = await refused(head.encode() + BODY, 400)
    assert set(payload["error"]) == {"message", "type", "param", "code"}


async def test_the_same_length_twice_is_one_length():
    head = HEAD + f"Content-Length: {len(BODY)}\r\nContent-Length: {len(BODY)}\r\n\r\n"
    async with serve_relay() as relay, connect(relay.host, relay.port) as client:
        await client.send(head.encode() + BODY + NEXT)
        assert (await client.response()).status == 200
        assert (await client.response()).status == 200


async def test_the_refusal_speaks_the_dialect_of_the_path():
    head = "POST /v1/messages HTTP/1.1\r\nHost: relay.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    payload = await refused(head.encode() + chunked(BODY), 501)
    assert payload["type"] == "error"  # Anthropic's shape
    assert isinstance(payload["error"]["message"], str)
    head = "POST /v1beta/models/mock-1:generateContent HTTP/1.1\r\nHost: relay.test\r\nTransfer-Encoding: gzip\r\n\r\n"
    payload = await refused(head.encode(), 501)
    assert payload["error"]["status"] == "UNIMPLEMENTED"  # Gemini's shape
    assert orjson.dumps(payload)

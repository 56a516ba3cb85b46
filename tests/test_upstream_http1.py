"""The upstream HTTP/1.1 response parser: every framing, every split point, every malformation."""

import pytest

from relay.upstream.http1 import END, NEED_DATA, Head, ProtocolError, ResponseParser, request_head


def parse(*pieces: bytes, eof: bool = False) -> tuple[list[Head], bytes, bool, ResponseParser]:
    """Feed ``pieces`` one by one; the heads, the body and whether END was reached."""
    parser = ResponseParser(max_head_bytes=1024)
    heads: list[Head] = []
    body = b""
    ended = False
    feeds = [p for p in pieces if p]  # a socket returns b"" only at EOF
    if eof:
        feeds.append(b"")
    for piece in feeds:
        parser.feed(piece)
        while True:
            event = parser.next()
            if event is NEED_DATA:
                break
            if event is END:
                ended = True
                break
            if isinstance(event, Head):
                heads.append(event)
            else:
                assert event, "an empty body piece"
                body += event
        if ended:
            break
    return heads, body, ended, parser


LENGTH = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a": "bc"}'
CHUNKED = (
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    b"5;ext=1\r\ndata:\r\n"
    b'A\r\n {"x":1}\n\n\r\n'
    b"0\r\nx-trailer: yes\r\n\r\n"
)


@pytest.mark.parametrize("split", range(len(LENGTH) + 1))
def test_content_length_at_every_split(split):
    heads, body, ended, parser = parse(LENGTH[:split], LENGTH[split:])
    assert [(h.status, h.reason) for h in heads] == [(200, b"OK")]
    assert heads[0].headers == [(b"content-type", b"application/json"), (b"content-length", b"11")]
    assert body == b'{"a": "bc"}'
    assert ended and parser.done and parser.reusable


@pytest.mark.parametrize("split", range(len(CHUNKED) + 1))
def test_chunked_at_every_split(split):
    heads, body, ended, parser = parse(CHUNKED[:split], CHUNKED[split:])
    assert heads[0].status == 200
    assert body == b'data: {"x":1}\n\n'
    assert ended and parser.reusable


def test_chunked_byte_by_byte_gives_data_as_it_comes():
    parser = ResponseParser()
    pieces = []
    for i in range(len(CHUNKED)):
        parser.feed(CHUNKED[i : i + 1])
        while (event := parser.next()) not in (NEED_DATA, END):
            pieces.append(event)
    assert b"".join(p for p in pieces if isinstance(p, bytes)) == b'data: {"x":1}\n\n'
    assert len([p for p in pieces if isinstance(p, bytes)]) == 15  # one byte at a time, never held back


def test_interim_100_then_final():
    heads, body, ended, _ = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")
    assert [h.status for h in heads] == [100, 201] and body == b"ok" and ended


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses(status):
    _, body, ended, parser = parse(b"HTTP/1.1 %d X\r\ncontent-length: 5\r\n\r\n" % status)
    assert body == b"" and ended and parser.reusable


def test_zero_length_body():
    _, body, ended, _ = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    assert body == b"" and ended


def test_body_until_close_is_not_reusable():
    _, body, ended, parser = parse(b"HTTP/1.1 200 OK\r\n\r\nab", b"cd", eof=True)
    assert body == b"abcd" and ended and not parser.reusable


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n",
    ],
)
def test_connection_close_and_http10_are_not_reusable(head):
    *_, ended, parser = parse(head)
    assert ended and not parser.reusable


def test_http10_keep_alive_is_reusable():
    *_, parser = parse(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n")
    assert parser.reusable


def test_reason_may_be_missing():
    heads, *_ = parse(b"HTTP/1.1 503\r\ncontent-length: 0\r\n\r\n")
    assert (heads[0].status, heads[0].reason) == (503, b"")


@pytest.mark.parametrize(
    ("data", "eof", "problem"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", False, "bad status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", False, "bad status line"),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", False, "bad header line"),
        (b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", False, "bad header line"),
        (b"HTTP/1.1 200 OK\r\nx: a\x00b\r\n\r\n", False, "bad value"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n", False, "bad content-length"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", False, "bad content-length"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", False, "unsupported transfer-encoding"),
        (b"HTTP/1.1 101 Switching\r\n\r\n", False, "switched protocols"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", False, "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n", False, "longer than its size"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab", True, "middle of a chunked body"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab", True, "3 bytes of the body missing"),
        (b"HTTP/1.1 200 OK\r\ncontent-le", True, "before a complete response head"),
        (b"HTTP/1.1 200 OK\r\nx: " + b"a" * 2000, False, "larger than 1024"),
        (b"HTTP/1.1 200 OK\r\nx: " + b"a" * 2000 + b"\r\n\r\n", False, "larger than 1024"),
    ],
)
def test_malformed_responses_name_the_problem(data, eof, problem):
    with pytest.raises(ProtocolError, match=problem):
        parse(data, eof=eof)


def test_request_head():
    head = request_head(b"POST", b"/v1/chat/completions", [(b"host", b"h:1"), (b"content-length", b"2")])
    assert head == b"POST /v1/chat/completions HTTP/1.1\r\nhost: h:1\r\ncontent-length: 2\r\n\r\n"


@pytest.mark.parametrize("header", [(b"x", b"a\r\nb"), (b"x", b"a\nb"), (b"bad name", b"v"), (b"x", b"\x01")])
def test_request_head_refuses_header_injection(header):
    with pytest.raises(ValueError, match="illegal characters"):
        request_head(b"POST", b"/", [header])

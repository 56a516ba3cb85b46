"""The SSE parser: complete events only, raw bytes kept, any split point, any line ending."""

import pytest

from relay.http.sse import Parser, frame, one_frame

STREAM = (
    b'data: {"a":1}\n\n'
    b"event: message_start\r\ndata: line one\r\ndata: line two\r\n\r\n"
    b": a comment\n\n"
    b"data:no-space\r\rdata: [DONE]\n\n"
)
EXPECTED = [b'{"a":1}', b"line one\nline two", None, b"no-space", b"[DONE]"]


@pytest.mark.parametrize("split", range(len(STREAM) + 1))
def test_every_split_point_gives_the_same_events(split):
    parser = Parser()
    events = parser.feed(STREAM[:split]) + parser.feed(STREAM[split:])
    assert [e.data for e in events] == EXPECTED
    assert b"".join(e.raw for e in events) == STREAM
    assert parser.close() == b""


def test_byte_by_byte():
    parser = Parser()
    events = [e for i in range(len(STREAM)) for e in parser.feed(STREAM[i : i + 1])]
    assert [e.data for e in events] == EXPECTED
    assert events[1].name == b"message_start"


def test_cr_at_chunk_end_waits_for_a_possible_lf():
    parser = Parser()
    assert parser.feed(b"data: x\r\n\r") == []
    events = parser.feed(b"\ndata: y\n\n")
    assert [e.raw for e in events] == [b"data: x\r\n\r\n", b"data: y\n\n"]


def test_unterminated_event_is_left_over():
    parser = Parser()
    assert parser.feed(b"data: [DONE]\n") == []
    assert parser.pending == len(b"data: [DONE]\n")
    assert parser.close() == b"data: [DONE]\n"


def test_frame():
    assert frame(b"{}") == b"data: {}\n\n"
    assert frame(b"{}", b"ping") == b"event: ping\ndata: {}\n\n"
    assert Parser().feed(frame(b'{"x":2}', b"e"))[0].data == b'{"x":2}'


def test_a_large_event_in_many_chunks_is_scanned_in_linear_time(monkeypatch):
    """16 MiB in 64 KiB chunks: the bytes searched for event ends stay a small multiple of the stream."""
    import relay.http.sse as sse_module

    scanned = 0
    real = sse_module._BLANK_LINE

    class Counting:
        def search(self, data, pos=0):
            nonlocal scanned
            found = real.search(data, pos)
            scanned += (found.end() if found else len(data)) - pos
            return found

    monkeypatch.setattr(sse_module, "_BLANK_LINE", Counting())
    payload = b"data: " + b"x" * (16 * 1024 * 1024) + b"\r\n\r\ndata: [DONE]\n\n"
    parser = Parser()
    events = [e for i in range(0, len(payload), 65536) for e in parser.feed(payload[i : i + 65536])]
    assert [len(e.data) for e in events] == [16 * 1024 * 1024, 6]
    assert parser.pending == 0
    assert scanned < 3 * len(payload), f"{scanned} bytes searched for a {len(payload)}-byte stream"


@pytest.mark.parametrize(
    ("chunk", "fast"),
    [
        (b'data: {"id":"c","choices":[]}\n\n', True),
        (b"data:  spaced\n\n", True),
        (b"data: [DONE]\n\n", True),
        (b"event: message_start\ndata: {}\n\n", True),
        (b'data: {"candidates":[]}\r\n\r\n', True),
        (b"event: a\r\ndata: {}\r\n\r\n", True),
        (b"data: {}\n\ndata: {}\n\n", False),  # two events
        (b"data: {}\r\n\r\ndata: {}\r\n\r\n", False),
        (b"data: {}\n", False),  # incomplete
        (b"data: {}\r\n", False),
        (b"data: a\ndata: b\n\n", False),  # two data lines
        (b"data: a\r\ndata: b\r\n\r\n", False),
        (b"data:{}\n\n", False),  # no space after the colon
        (b"event: a\ndata:{}\n\n", False),
        (b"event: a\n\n", False),
        (b"event: a\nid: 1\ndata: {}\n\n", False),
        (b": keep-alive\n\n", False),
        (b"data: {}\r\r\n\r\n", False),  # a lone CR
        (b"data: {}\n\r\n", False),  # mixed line ends
        (b"data: {}\r\n\r\n\r\n", False),
    ],
)
def test_one_frame_is_what_the_parser_reads(chunk: bytes, fast: bool) -> None:
    """The shortcut takes exactly the chunks that are one event, and reads them as the parser does."""
    one = one_frame(chunk)
    assert (one is not None) == fast
    if one is not None:
        (event,) = Parser().feed(chunk)
        assert one == (event.name, event.data)

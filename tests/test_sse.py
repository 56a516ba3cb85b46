"""The SSE parser: complete events only, raw bytes kept, any split point, any line ending."""

import pytest

from relay.http.sse import Parser, frame

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

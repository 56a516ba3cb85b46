"""The fast fan-out rig (bench/fastpeer): the Node mock's answers are well-formed SSE in both dialects, and the
Node client counts every frame of 8 streams x 5 chunks, through bench.fastpeer.rig as bench.fanout drives it.

A small Python server that dribbles a stream a few bytes at a time checks that the client's counts do not
depend on where the reads split the frames. Skipped when ``node`` is not installed.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import fanout
from bench.fastpeer.rig import PER_SOURCE, ClientRun, mock_argv, node, run_client, sources_for
from bench.procs import Server
from relay.http.limits import Limits

pytestmark = pytest.mark.skipif(node() is None, reason="node not found: apt-get install nodejs (Node 20 or later)")

STREAMS = 8
CHUNKS = 5
#: 5 chunks 20 ms apart: 100 ms streams, so that all 8 have their first frame before the first one ends (the
#: window the client marks) even on a loaded machine.
DELAY_MS = 20


def request(path: str, port: int, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode("ascii") + data


def chat_request(port: int, *, stream: bool = True, usage: bool = False) -> bytes:
    body: dict[str, object] = {
        "model": "mock-1",
        "stream": stream,
        "messages": [{"role": "user", "content": f"mock:chunks={CHUNKS} mock:delay_ms={DELAY_MS} hello"}],
    }
    if usage:
        body["stream_options"] = {"include_usage": True}
    return request("/v1/chat/completions", port, body)


def anthropic_request(port: int, *, stream: bool = True) -> bytes:
    text = [{"type": "text", "text": f"mock:chunks={CHUNKS} mock:delay_ms={DELAY_MS} hello"}]
    body = {"model": "mock-1", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": text}]}
    return request("/v1/messages", port, body)


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server("fastpeer-mock", mock_argv(), None, tmp_path_factory.mktemp("fastpeer")).start()
    try:
        yield server
    finally:
        server.stop()


class Reader:
    """One keep-alive connection: each response's status, headers and (de-chunked) body."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        assert data, "the mock closed the connection"
        self.buffer += data

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def response(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        self.sock.sendall(data)
        status = int(self._line().split()[1])
        headers: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            return status, headers, self._take(int(headers["content-length"]))
        assert headers.get("transfer-encoding") == "chunked"
        body = b""
        while size := int(self._line(), 16):
            body += self._take(size)
            assert self._take(2) == b"\r\n"
        assert self._line() == b""
        return status, headers, body


def events(body: bytes) -> list[tuple[str | None, object]]:
    """(event name, parsed data) of each SSE frame; ``[DONE]`` stays a string."""
    out: list[tuple[str | None, object]] = []
    for frame in body.decode().split("\n\n"):
        if not frame:
            continue
        name = None
        for line in frame.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            else:
                assert line.startswith("data: "), line
                data = line[6:]
                out.append((name, data if data == "[DONE]" else json.loads(data)))
    return out


def test_chat_stream_frames_parse_and_the_connection_is_kept(mock: Server) -> None:
    reader = Reader(mock.port)
    try:
        status, headers, body = reader.response(chat_request(mock.port, usage=True))
        assert status == 200 and headers["content-type"] == "text/event-stream"
        frames = events(body)
        assert frames[-1] == (None, "[DONE]")
        chunks = [data for _, data in frames[:-1]]
        assert all(isinstance(c, dict) and c["object"] == "chat.completion.chunk" for c in chunks)
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # type: ignore[index]
        content = [c["choices"][0]["delta"]["content"] for c in chunks[1 : 1 + CHUNKS]]  # type: ignore[index]
        assert len(content) == CHUNKS and all(content)
        assert chunks[1 + CHUNKS]["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]
        assert chunks[2 + CHUNKS]["usage"]["completion_tokens"] == CHUNKS  # type: ignore[index]
        assert len(frames) == CHUNKS + 4
        # The same connection answers again, a whole JSON message this time.
        status, _, whole = reader.response(chat_request(mock.port, stream=False))
        message = json.loads(whole)
        assert status == 200 and message["choices"][0]["message"]["content"] == "".join(content)
    finally:
        reader.close()


def test_anthropic_stream_frames_parse_in_order(mock: Server) -> None:
    reader = Reader(mock.port)
    try:
        status, _, body = reader.response(anthropic_request(mock.port))
        assert status == 200
        frames = events(body)
        names = [name for name, _ in frames]
        assert names == [
            "message_start",
            "content_block_start",
            *["content_block_delta"] * CHUNKS,
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        assert all(isinstance(data, dict) and data["type"] == name for name, data in frames)
        assert frames[-2][1]["usage"]["output_tokens"] == CHUNKS  # type: ignore[index]
        status, _, whole = reader.response(anthropic_request(mock.port, stream=False))
        assert status == 200 and json.loads(whole)["content"][0]["type"] == "text"
    finally:
        reader.close()


def test_the_mock_answers_a_bad_body_with_a_400(mock: Server) -> None:
    reader = Reader(mock.port)
    try:
        status, _, body = reader.response(request("/v1/chat/completions", mock.port, {"stream": True}))
        assert status == 400 and "model" in json.loads(body)["error"]["message"]
    finally:
        reader.close()


def run(port: int, data: bytes, tmp_path: Path, done: str = "[DONE]", ramp: float = 0.0) -> ClientRun:
    """client.mjs through ``run_client``; ``sample`` stands in for Relay's CPU and counts the marks."""
    sampled: list[int] = []

    def sample() -> float:
        sampled.append(1)
        return float(len(sampled))

    result = run_client(port, data, STREAMS, ramp=ramp, done=done, work=tmp_path, cpus=None, sample=sample, timeout=20)
    assert len(sampled) == len(result.marks)
    return result


@pytest.mark.parametrize("dialect", ["chat", "anthropic"])
def test_the_client_counts_every_frame_of_every_stream(mock: Server, tmp_path: Path, dialect: str) -> None:
    if dialect == "chat":
        result, per_stream = run(mock.port, chat_request(mock.port), tmp_path), CHUNKS + 3
    else:
        result, per_stream = run(mock.port, anthropic_request(mock.port), tmp_path, "message_stop"), CHUNKS + 5
    assert [row[:2] for row in result.rows] == [[200, per_stream]] * STREAMS
    assert all(row[4] is True and row[5] == "" for row in result.rows)
    assert all(0 < row[2] < row[3] for row in result.rows)  # the first frame before the last one
    assert result.frames == STREAMS * per_stream
    assert sorted(result.marks) == ["end", "start"]  # Relay's CPU sampled as the window opened and closed
    assert not result.missed and 0 < result.window_frames < result.frames
    # The span is at least the chunks' 100 ms, the window shorter than the span.
    assert CHUNKS * DELAY_MS / 1000 <= result.span_s < 5 and 0 < result.window_s < result.span_s
    assert result.cpu_s > 0


def dribbling_server(frames: bytes, piece: int) -> tuple[socket.socket, threading.Thread]:
    """Answers every connection's request with one chunked SSE body written ``piece`` bytes at a time."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(frames), frames)
    answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + body

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while b"\r\n\r\n" not in conn.recv(65536):
                pass
            try:
                for at in range(0, len(answer), piece):
                    conn.sendall(answer[at : at + piece])
                    threading.Event().wait(0.0005)  # a read per piece, so that frames split across reads
            except OSError:  # the client hangs up at [DONE], before the chunked body's last bytes
                pass

    def accept() -> None:
        for _ in range(STREAMS):
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.parametrize("piece", [1, 3, 7])
def test_frames_split_across_reads_are_counted_once(tmp_path: Path, piece: int) -> None:
    frames = b"".join(b'data: {"n": %d}\n\n' % i for i in range(CHUNKS)) + b"data: [DONE]\n\n"
    listener, thread = dribbling_server(frames, piece)
    try:
        port = listener.getsockname()[1]
        result = run(port, request("/v1/chat/completions", port, {"model": "m"}), tmp_path, ramp=0.0)
    finally:
        thread.join(timeout=10)
        listener.close()
    assert [row[:2] for row in result.rows] == [[200, CHUNKS + 1]] * STREAMS
    assert all(row[4] is True for row in result.rows)


def test_sources_keep_each_address_under_relays_pending_cap() -> None:
    assert sources_for(8) == 1
    assert sources_for(1024) == 1024 // PER_SOURCE
    assert PER_SOURCE < Limits().max_pending_per_address


@pytest.mark.parametrize(("path", "per_stream"), [("passthrough", CHUNKS + 3), ("converted", CHUNKS + 5)])
def test_bench_fanout_direct_figures_from_the_node_rig(
    mock: Server, tmp_path: Path, path: str, per_stream: int
) -> None:
    """bench.fanout's ``--direct`` on the node rig: the client's report turned into the figures the table reads."""
    args = argparse.Namespace(streams=STREAMS, chunks=CHUNKS, delay_ms=DELAY_MS, ramp=0.0)
    result = fanout.run_direct(path, args, tmp_path, fanout.Peers("node", mock, None))
    assert result["failed"] == 0 and result["span_frames"] == STREAMS * per_stream
    assert 0 < result["span_share"] <= 1.0 and result["span_frames_per_s"] > 0
    assert 0 < result["first_frame_p50_ms"] <= result["first_frame_p99_ms"]
    assert result["client_us_per_frame"] > 0
    assert result["mock_us_per_frame"] >= 0  # /proc counts in 10 ms ticks: a few dozen frames may read as 0
    assert math.isnan(result["span_us_per_frame"])  # no Relay: no Relay CPU

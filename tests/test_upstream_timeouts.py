"""Per-channel upstream timeouts, failures before and after the first byte, and upstream error statuses."""

import json
import logging
import socket
from contextlib import contextmanager

import h11
import pytest
import trio

from relay.http.messages import Response
from tests.conftest import openai_channel_config, process, serve_app, serve_relay
from tests.helpers import (
    AUTH,
    MOCK_ARGS,
    Upstream,
    assert_openai_error,
    chat,
    raw_request,
    shared_mock_upstream,  # noqa: F401  (a fixture)
    sse_data,
    sse_frame,
)

SSE = [(b"content-type", b"text/event-stream")]


def timeouts(connect: float = 2, first_byte: float = 2, idle: float = 2, total: float = 2.5) -> str:
    return f"[channels.timeouts]\nconnect = {connect}\nfirst_byte = {first_byte}\nidle = {idle}\ntotal = {total}\n"


async def ask(base_url: str, content: str, *, stream: bool, model: str = "mock-1", **limits: float):
    """One request through a relay whose channel is ``base_url`` with the given timeouts."""
    body = json.dumps(chat(content, model=model, stream=stream)).encode()
    async with serve_relay(openai_channel_config(base_url, extra=timeouts(**limits))) as relay:
        with trio.fail_after(3):
            return await raw_request(relay.url, "POST", "/v1/chat/completions", headers=AUTH, body=body)


def assert_error_response(r, status: int, code: str) -> dict:
    assert r.status == status, r.body
    assert r.complete
    assert r.headers[b"content-type"] == b"application/json"
    return assert_openai_error(r.json(), code=code)


def assert_stream_ends_with_error(r, code: str) -> list[dict]:
    """A 200 stream: some chunks, then one ``data: {"error": ...}`` event, then a proper end of the body."""
    assert r.status == 200, r.body
    assert r.complete, "the chunked terminator did not arrive"
    events = sse_data(r.body)
    assert "[DONE]" not in events
    *chunks, last = [json.loads(e) for e in events]
    assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert_openai_error(last, code=code)
    return chunks


# ---- before the first byte: an error status ---------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_first_byte_timeout_is_504(shared_mock_upstream, stream):  # noqa: F811
    r = await ask(shared_mock_upstream, "mock:first_byte_ms=2000", stream=stream, first_byte=0.3)
    error = assert_error_response(r, 504, "upstream_timeout")
    assert "0.3s" in error["message"]
    assert error["type"] == "timeout_error"


async def test_total_timeout_before_the_first_byte_is_504(shared_mock_upstream):  # noqa: F811
    r = await ask(shared_mock_upstream, "mock:first_byte_ms=2000", stream=True, first_byte=2, total=0.3)
    error = assert_error_response(r, 504, "upstream_timeout")
    assert "exceeded 0.3s" in error["message"]


async def test_stream_that_never_starts_is_504(shared_mock_upstream):  # noqa: F811
    # The mock stalls before its first frame, so not even the response head is sent.
    r = await ask(shared_mock_upstream, "mock:stall_after=0", stream=True, first_byte=0.3)
    assert_error_response(r, 504, "upstream_timeout")


async def test_idle_before_the_first_complete_event_is_504():
    # The head and half an event arrive, then nothing: the client has had no byte yet, so it gets a status.
    async def half_an_event(request, out):
        await out.start(200, SSE)
        await out.send(b'data: {"id": "x", ')
        await trio.sleep_forever()

    async with serve_app(Upstream(half_an_event)) as up:
        r = await ask(up.url, "hi", stream=True, idle=0.3)
    assert_error_response(r, 504, "upstream_idle_timeout")


async def test_idle_in_a_non_streamed_body_is_504():
    async def half_a_body(request, out):
        await out.start(200, [(b"content-type", b"application/json")])
        await out.send(b'{"id": "x", ')
        await trio.sleep_forever()

    async with serve_app(Upstream(half_a_body)) as up:
        r = await ask(up.url, "hi", stream=False, idle=0.3)
    assert_error_response(r, 504, "upstream_idle_timeout")


async def test_connection_refused_is_502():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    r = await ask(f"http://127.0.0.1:{port}", "hi", stream=False)
    error = assert_error_response(r, 502, "upstream_connect_error")
    assert "upstream" in error["message"]


@contextmanager
def full_accept_queue():
    """A port whose accept queue is full: the kernel drops further SYNs, so a connect times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


@pytest.mark.parametrize("stream", [False, True])
async def test_connect_timeout_is_504(stream):
    with full_accept_queue() as port:
        r = await ask(f"http://127.0.0.1:{port}", "hi", stream=stream, connect=0.3)
    error = assert_error_response(r, 504, "upstream_connect_timeout")
    assert "connecting" in error["message"]


# ---- after the first byte: a final error event, and a clean end --------------------------------


async def test_idle_gap_mid_stream_ends_with_an_error_event(shared_mock_upstream):  # noqa: F811
    r = await ask(shared_mock_upstream, "mock:stall_after=3 mock:chunks=6", stream=True, idle=0.3)
    chunks = assert_stream_ends_with_error(r, "upstream_idle_timeout")
    assert len(chunks) == 3


async def test_total_timeout_mid_stream_ends_with_an_error_event(shared_mock_upstream):  # noqa: F811
    content = "mock:chunks=30 mock:delay_ms=100 " + "x" * 60
    r = await ask(shared_mock_upstream, content, stream=True, idle=1, total=0.6)
    chunks = assert_stream_ends_with_error(r, "upstream_timeout")
    assert 1 <= len(chunks) < 30


async def test_stream_without_done_ends_with_an_error_event(shared_mock_upstream):  # noqa: F811
    r = await ask(shared_mock_upstream, "mock:drop_after=2", stream=True)
    chunks = assert_stream_ends_with_error(r, "upstream_truncated")
    assert len(chunks) == 2


async def test_stream_that_ends_before_any_event_is_502(shared_mock_upstream):  # noqa: F811
    r = await ask(shared_mock_upstream, "mock:drop_after=0", stream=True)
    assert_error_response(r, 502, "upstream_truncated")


async def test_upstream_connection_lost_mid_stream_ends_with_an_error_event():
    async def break_off(request, out):
        await out.start(200, SSE)
        await out.send(sse_frame({"object": "chat.completion.chunk", "model": "mock-1", "choices": []}))
        raise RuntimeError("upstream crashed")  # the HTTP layer cuts the connection mid-body

    async with serve_app(Upstream(break_off)) as up:
        r = await ask(up.url, "hi", stream=True)
    assert_stream_ends_with_error(r, "upstream_truncated")  # the connection broke mid-answer


async def test_an_upstream_error_event_is_the_last_word_of_its_stream():
    upstream_error = {"error": {"message": "overloaded", "type": "server_error", "param": None, "code": "busy"}}

    async def fail_mid_stream(request, out):
        await out.start(200, SSE)
        await out.send(sse_frame({"object": "chat.completion.chunk", "model": "mock-1", "choices": []}))
        await out.send(sse_frame(upstream_error))  # then the upstream ends, without [DONE]

    async with serve_app(Upstream(fail_mid_stream)) as up:
        r = await ask(up.url, "hi", stream=True)
    assert r.complete  # a clean end of the HTTP response
    events = sse_data(r.body)
    # The upstream's code kept, its text not (Relay's own words): no second error after it.
    relays = {"message": "the upstream failed while answering (busy)", "type": "upstream_error", "param": None}
    assert [json.loads(e).get("error") for e in events] == [None, {**relays, "code": "busy"}]


async def test_a_healthy_stream_is_unaffected(shared_mock_upstream):  # noqa: F811
    r = await ask(shared_mock_upstream, "mock:chunks=5 mock:delay_ms=20", stream=True, idle=0.5, total=2)
    assert r.status == 200 and r.complete
    events = sse_data(r.body)
    assert events[-1] == "[DONE]"
    assert not any("error" in json.loads(e) for e in events[:-1])


# ---- upstream error statuses -------------------------------------------------------------------


@pytest.mark.parametrize(("status", "relayed"), [(400, 400), (429, 429), (500, 502), (503, 503)])
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_status_reaches_the_client(shared_mock_upstream, status, relayed, stream):  # noqa: F811
    """The upstream status's class reaches the client (docs/routing.md section 9); its text only for a 400."""
    r = await ask(shared_mock_upstream, f"mock:status={status}", stream=stream)
    assert r.status == relayed and r.complete
    error = assert_openai_error(r.json())
    if status == 400:
        assert error["code"] == "400"
        assert error["message"] == "the upstream rejected the request: mock upstream error 400"
    else:
        assert "mock upstream error" not in error["message"]


def _answer(status: int, body: bytes, headers=()):
    async def handler(request, out):
        return Response(status, body, [(b"content-type", b"text/plain"), *headers])

    return handler


async def test_foreign_error_body_is_put_in_the_openai_shape_with_retry_after_kept():
    handler = _answer(429, b"slow down please", [(b"retry-after", b"7"), (b"retry-after-ms", b"7000")])
    async with serve_app(Upstream(handler)) as up:
        r = await ask(up.url, "hi", stream=True)
    assert r.status == 429
    assert r.headers[b"retry-after"] == b"7" and r.headers[b"retry-after-ms"] == b"7000"
    error = assert_openai_error(r.json(), code="upstream_rate_limited")
    assert "slow down please" not in error["message"]  # the upstream's text is the operator's
    assert error["type"] == "rate_limit_error"


async def test_partial_openai_error_body_is_completed():
    async with serve_app(Upstream(_answer(503, b'{"error": {"message": "busy"}}'))) as up:
        r = await ask(up.url, "hi", stream=False)
    assert r.status == 503
    error = assert_openai_error(r.json(), code="upstream_unavailable")
    assert "busy" not in error["message"]  # the upstream's text is the operator's


@pytest.mark.parametrize("status", [204, 302, 304])
async def test_upstream_status_that_is_no_answer_is_502(status):
    async with serve_app(Upstream(_answer(status, b"", [(b"location", b"http://elsewhere/")]))) as up:
        r = await ask(up.url, "hi", stream=False)
        assert_error_response(r, 502, "upstream_error")
        assert str(status) in r.json()["error"]["message"]
        # and the relay keeps serving
        r = await ask(up.url, "hi", stream=False)
        assert r.status == 502


async def test_total_timeout_while_the_client_is_not_reading_never_corrupts_the_stream(caplog):
    """A write overtaken by the total timeout may be cut anywhere: the relay must then close, not go on,
    and a cut write is no bug to log."""
    # A mock of its own: the relay drops this upstream mid-stream, and the HTTP layer's RST handling
    # (see test_backpressure.py) could take a shared mock down.
    with process(*MOCK_ARGS) as (_, address):
        prompt = "mock:chunks=50000 " + "x" * 1_000_000
        body = json.dumps(chat(prompt, stream=True)).encode()
        config = openai_channel_config(f"http://{address}", extra=timeouts(total=0.5))
        async with serve_relay(config) as relay:
            host, port = relay.url.removeprefix("http://").split(":")
            sock = trio.socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            await sock.connect((host, int(port)))
            async with trio.SocketStream(sock) as client:
                head = f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: {AUTH['authorization']}\r\n"
                await client.send_all(head.encode() + b"content-length: %d\r\n\r\n" % len(body) + body)
                await trio.sleep(1.0)  # not reading: the relay is blocked writing when the total timeout fires
                conn = h11.Connection(h11.CLIENT)
                conn.send(h11.Request(method="POST", target="/", headers=[("host", "x"), ("content-length", "0")]))
                conn.send(h11.EndOfMessage())
                data, ending = b"", None
                with trio.fail_after(2.5):
                    while ending is None:
                        try:
                            event = conn.next_event()
                        except h11.RemoteProtocolError as exc:
                            ending = str(exc)
                            break
                        if event is h11.NEED_DATA:
                            conn.receive_data(await client.receive_some(1 << 20))
                        elif isinstance(event, h11.Data):
                            data += event.data
                        elif isinstance(event, h11.EndOfMessage):
                            ending = "complete"
    # Either the error event made it and the body ended, or the connection was closed before the body's
    # end (a truncation the client sees); never a chunk with something else written into it.
    events = sse_data(data.rpartition(b"\n\n")[0] + b"\n\n")
    assert len(events) > 2
    if ending == "complete":
        assert_openai_error(json.loads(events[-1]), code="upstream_timeout")
    else:
        assert ending.startswith(("peer closed connection", "peer unexpectedly closed")), ending
        assert all(json.loads(e)["object"] == "chat.completion.chunk" for e in events)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("relay")]

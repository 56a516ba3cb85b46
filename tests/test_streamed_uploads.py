"""Uploads streamed to the upstream (``Route(streamed=True)``): the HTTP layer hands the request over once its head
is in, and the audio and files endpoints pass the multipart form on as it arrives (relay.http.body_stream,
relay.endpoints.multipart_stream). Real sockets both ways: a raw client paced by the test, Relay, and an in-test
upstream that itself reads its body as it arrives, so it can tell when the first bytes came."""

from __future__ import annotations

import socket
import textwrap
import tracemalloc
from collections.abc import Awaitable, Callable

import h11
import orjson
import trio

from relay.config import loads
from relay.endpoints import multipart_form
from relay.http.messages import Request, Response, StreamResponse
from tests.conftest import KEY, serve_app, serve_relay
from tests.helpers import Upstream

PIECE = 64 * 1024


class StreamingUpstream(Upstream):
    """An in-test upstream whose every route reads its body as it arrives (as Relay's upload routes do)."""

    def streams_body(self, path: str) -> bool:
        return True

    def body_limit(self, path: str) -> int:
        return 1 << 30


class Seen:
    """What the in-test upstream got: its head, the whole body (or its size), and when its first bytes came."""

    def __init__(self, keep: bool = True) -> None:
        self.first = trio.Event()
        self.requests: list[tuple[Request, bytes, int]] = []
        self.keep = keep

    async def read(self, request: Request) -> tuple[bytes, int]:
        assert request.body_stream is not None
        kept: list[bytes] = []
        size = 0
        while (piece := await request.body_stream.receive()) is not None:
            self.first.set()
            size += len(piece)
            if self.keep:
                kept.append(piece)
        body = b"".join(kept)
        self.requests.append((request, body, size))
        return body, size


def transcribed(seen: Seen, status: int = 200) -> Callable[[Request, StreamResponse], Awaitable[Response]]:
    async def handler(request: Request, stream: StreamResponse) -> Response:
        await seen.read(request)
        if status != 200:
            return Response.json(status, {"error": {"message": "down", "type": "server_error", "code": None}})
        if request.path.endswith("/files"):
            return Response.json(200, {"id": "file-1", "object": "file", "bytes": 1, "purpose": "assistants"})
        return Response.json(200, {"text": "heard", "usage": {"type": "duration", "seconds": 3}})

    return handler


def relay_toml(*bases: str, limit: int = 64 * 1024 * 1024, body_timeout: float = 60.0) -> str:
    channels = "".join(
        f"""
        [[channels]]
        name = "ch{n}"
        type = "openai"
        base_url = "{base}/v1"
        api_key = "sk-up"
        models = ["whisper-1"]
        priority = {10 - n}
        [channels.model_map]
        house-ears = "whisper-1"
        """
        for n, base in enumerate(bases)
    )
    return textwrap.dedent(
        f"""
        [server]
        listen = "127.0.0.1:0"
        access_log = false

        [limits]
        max_upload_bytes = {limit}
        body_timeout = {body_timeout}

        [store]
        url = "sqlite://:memory:"

        [routing]
        key_rest = 0.001
        breaker_failures = 1000

        [[keys]]
        name = "test"
        key = "{KEY}"
        """
    ) + textwrap.dedent(channels)


def form(model: str, audio: bytes) -> tuple[bytes, str]:
    return multipart_form.encode(
        [
            multipart_form.Part("model", model.encode()),
            multipart_form.Part("response_format", b"json"),
            multipart_form.Part("file", audio, "talk.mp3", "audio/mpeg"),
        ]
    )


def head(path: str, content_type: str, length: int, *extra: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "host: relay",
        f"authorization: Bearer {KEY}",
        f"content-type: {content_type}",
        f"content-length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def answer(stream: trio.SocketStream) -> tuple[int, dict[bytes, bytes], bytes]:
    """The response on ``stream`` (interim 1xx answers skipped), read by h11 as a client."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="POST", target="/", headers=[("host", "relay"), ("transfer-encoding", "chunked")]))
    status, headers, body = 0, {}, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(PIECE))
        elif isinstance(event, h11.Response):
            status, headers = event.status_code, dict(event.headers)
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return status, headers, bytes(body)


async def connect(url: str) -> trio.SocketStream:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return await trio.open_tcp_stream(host, int(port))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_upstream_gets_the_first_bytes_before_the_client_sent_the_last() -> None:
    audio = bytes(range(256)) * (4 * 1024 * 1024 // 256)  # 4 MiB: past the form's head many times over
    body, kind = form("house-ears", audio)
    seen = Seen()
    async with serve_app(StreamingUpstream(transcribed(seen))) as up, serve_relay(loads(relay_toml(up.url))) as relay:
        stream = await connect(relay.url)
        async with stream:
            await stream.send_all(head("/v1/audio/transcriptions", kind, len(body), "expect: 100-continue"))
            assert (await stream.receive_some(PIECE)).startswith(b"HTTP/1.1 100 Continue\r\n")
            half = len(body) // 2
            for at in range(0, half, PIECE):
                await stream.send_all(body[at : min(at + PIECE, half)])
                await trio.sleep(0.002)
            with trio.fail_after(5):
                await seen.first.wait()  # the upstream is reading while half the upload is still to come
            assert not seen.requests
            for at in range(half, len(body), PIECE):
                await stream.send_all(body[at : at + PIECE])
            status, _, answered = await answer(stream)
    assert status == 200, answered
    assert orjson.loads(answered)["text"] == "heard"
    request, got, _ = seen.requests[0]
    sent = multipart_form.parse(got, request.header(b"content-type") or "")
    assert sent.field("model") == "whisper-1"  # renamed for the channel, in the stream
    assert sent.field("response_format") == "json"
    assert sent.files("file")[0].data == audio
    assert request.header(b"content-length") == str(len(got))  # framed by length, not in chunks
    assert request.header(b"transfer-encoding") is None


async def test_a_declared_length_over_the_limit_is_a_413_before_a_byte_of_the_body() -> None:
    seen = Seen()
    config = loads(relay_toml("http://127.0.0.1:9", limit=1024 * 1024))
    async with serve_app(StreamingUpstream(transcribed(seen))), serve_relay(config) as relay:
        stream = await connect(relay.url)
        async with stream:
            _, kind = form("whisper-1", b"")
            await stream.send_all(head("/v1/audio/transcriptions", kind, 2 * 1024 * 1024, "expect: 100-continue"))
            with trio.fail_after(5):
                status, headers, answered = await answer(stream)  # no body byte was sent, nor asked for
    assert status == 413
    assert orjson.loads(answered)["error"]["type"]  # OpenAI's error shape
    assert headers.get(b"connection") == b"close"
    assert not seen.requests


async def test_a_stalled_upload_is_a_408_and_the_upstream_request_is_cut() -> None:
    seen = Seen()
    async with (
        serve_app(StreamingUpstream(transcribed(seen))) as up,
        serve_relay(loads(relay_toml(up.url, body_timeout=0.5))) as relay,
    ):
        body, kind = form("whisper-1", b"\x01" * (2 * 1024 * 1024))
        stream = await connect(relay.url)
        async with stream:
            await stream.send_all(head("/v1/audio/transcriptions", kind, len(body)))
            await stream.send_all(body[: 512 * 1024])  # then nothing more
            with trio.fail_after(5):
                status, headers, answered = await answer(stream)
            await trio.sleep(0.2)
    assert status == 408
    error = orjson.loads(answered)["error"]
    assert error["code"] == "request_timeout" and "in time" in error["message"]
    assert headers.get(b"connection") == b"close"
    assert not seen.requests  # the upstream's request was cut, never complete


async def test_a_connect_error_fails_over_to_the_next_channel() -> None:
    audio = b"\x02" * (3 * 1024 * 1024)
    body, kind = form("whisper-1", audio)
    seen = Seen()
    refused = f"http://127.0.0.1:{free_port()}"
    async with (
        serve_app(StreamingUpstream(transcribed(seen))) as up,
        serve_relay(loads(relay_toml(refused, up.url))) as relay,
    ):
        stream = await connect(relay.url)
        async with stream:
            await stream.send_all(head("/v1/audio/transcriptions", kind, len(body)) + body)
            status, _, answered = await answer(stream)
    assert status == 200, answered
    assert seen.requests[0][2] == len(body)


async def test_an_upload_already_sent_upstream_is_not_sent_to_another_channel() -> None:
    first, second = Seen(), Seen()
    async with (
        serve_app(StreamingUpstream(transcribed(first, status=503))) as one,
        serve_app(StreamingUpstream(transcribed(second))) as two,
        serve_relay(loads(relay_toml(one.url, two.url))) as relay,
    ):

        async def upload(size: int) -> int:
            body, kind = form("whisper-1", b"\x03" * size)
            stream = await connect(relay.url)
            async with stream:
                await stream.send_all(head("/v1/audio/transcriptions", kind, len(body)) + body)
                status, _, _ = await answer(stream)
            return status

        assert await upload(2 * 1024 * 1024) == 503  # past its head when the first channel failed: final
        assert len(first.requests) == 1 and not second.requests
        assert await upload(1000) == 200  # whole in Relay's hands when it failed: it goes to the next channel
        assert len(first.requests) == 2 and len(second.requests) == 1


async def test_a_file_upload_streams_and_its_purpose_is_checked_first() -> None:
    seen = Seen()
    async with serve_app(StreamingUpstream(transcribed(seen))) as up, serve_relay(loads(relay_toml(up.url))) as relay:

        async def upload(parts: list[multipart_form.Part]) -> tuple[int, bytes]:
            body, kind = multipart_form.encode(parts)
            stream = await connect(relay.url)
            async with stream:
                await stream.send_all(head("/v1/files", kind, len(body)) + body)
                status, _, answered = await answer(stream)
            return status, answered

        data = b"line\n" * 300_000
        status, answered = await upload([multipart_form.Part("purpose", b"nonsense"), file_part(data)])
        assert status == 400 and orjson.loads(answered)["error"]["param"] == "purpose"
        status, answered = await upload([multipart_form.Part("purpose", b"assistants")])
        assert status == 400 and orjson.loads(answered)["error"]["param"] == "file"
        assert not seen.requests
        status, answered = await upload([multipart_form.Part("purpose", b"assistants"), file_part(data)])
        assert status == 200 and orjson.loads(answered)["id"] == "file-1"
    request, got, _ = seen.requests[0]
    assert multipart_form.parse(got, request.header(b"content-type") or "").files("file")[0].data == data


def file_part(data: bytes) -> multipart_form.Part:
    return multipart_form.Part("file", data, "notes.txt", "text/plain")


async def test_a_model_field_after_the_file_is_refused_once_the_file_is_streaming() -> None:
    seen = Seen()
    async with serve_app(StreamingUpstream(transcribed(seen))) as up, serve_relay(loads(relay_toml(up.url))) as relay:
        body, kind = multipart_form.encode(
            [
                multipart_form.Part("model", b"house-ears"),
                multipart_form.Part("file", b"\x04" * (1024 * 1024), "a.mp3", "audio/mpeg"),
                multipart_form.Part("model", b"other"),
            ]
        )
        stream = await connect(relay.url)
        async with stream:
            await stream.send_all(head("/v1/audio/transcriptions", kind, len(body)) + body)
            status, _, answered = await answer(stream)
    assert status == 400 and orjson.loads(answered)["error"]["param"] == "model"
    assert not seen.requests  # its last piece held back: the upstream never got a whole form


async def test_a_large_upload_never_sits_whole_in_relays_memory() -> None:
    size = 24 * 1024 * 1024
    body, kind = form("whisper-1", b"\x05" * size)
    seen = Seen(keep=False)
    async with serve_app(StreamingUpstream(transcribed(seen))) as up, serve_relay(loads(relay_toml(up.url))) as relay:
        stream = await connect(relay.url)
        async with stream:
            await stream.send_all(head("/v1/audio/transcriptions", kind, len(body)))
            tracemalloc.start()
            try:
                for at in range(0, len(body), 1024 * 1024):
                    await stream.send_all(body[at : at + 1024 * 1024])
                status, _, _ = await answer(stream)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert status == 200 and seen.requests[0][2] == len(body)
    assert peak < 4 * 1024 * 1024, peak  # the client's 1 MiB writes, a few socket reads: never the 24 MiB


async def test_a_chunked_upload_goes_on_chunked_and_one_past_the_limit_is_a_413() -> None:
    seen = Seen()
    async with serve_app(StreamingUpstream(transcribed(seen))) as up:
        async with serve_relay(loads(relay_toml(up.url, limit=2 * 1024 * 1024))) as relay:

            async def chunked(body: bytes, kind: str) -> tuple[int, bytes]:
                stream = await connect(relay.url)
                async with stream:
                    lines = head("/v1/audio/transcriptions", kind, 0).replace(
                        b"content-length: 0", b"transfer-encoding: chunked"
                    )
                    await stream.send_all(lines)
                    for at in range(0, len(body), PIECE):
                        piece = body[at : at + PIECE]
                        await stream.send_all(b"%x\r\n%b\r\n" % (len(piece), piece))
                    await stream.send_all(b"0\r\n\r\n")
                    status, _, answered = await answer(stream)
                return status, answered

            body, kind = form("house-ears", b"\x06" * (1024 * 1024))
            status, answered = await chunked(body, kind)
            assert status == 200, answered
            request, got, _ = seen.requests[0]
            assert request.header(b"transfer-encoding") == "chunked" and request.header(b"content-length") is None
            assert multipart_form.parse(got, request.header(b"content-type") or "").field("model") == "whisper-1"
            status, answered = await chunked(*form("whisper-1", b"\x06" * (3 * 1024 * 1024)))
            assert status == 413 and orjson.loads(answered)["error"]["code"] == "request_too_large"
            assert len(seen.requests) == 1

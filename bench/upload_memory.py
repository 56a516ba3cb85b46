"""Memory of one large transcription upload through Relay: its peak RSS and its peak traced allocation.

    python -m bench.upload_memory [--mb 50] [--traced]

One process: Relay (its real HTTP server and upstream pool), a sink upstream that reads and drops what it gets,
and a client that writes the multipart form from a reused 1 MiB piece (so neither holds the upload). It prints
the process's peak RSS growth over the upload (``ru_maxrss``) and, with ``--traced``, tracemalloc's peak (which
slows Python, so it is a separate run). Run it against an older tree (``PYTHONPATH=<tree>``) for a before/after
(docs/limits.md, "Uploads").
"""

from __future__ import annotations

import argparse
import resource
import textwrap
import tracemalloc

import trio

from relay.app import Relay
from relay.config import loads
from relay.http.connection import Shutdown
from relay.http.limits import Limits
from relay.http.server import bind_socket, make_listener, serve

KEY = "sk-bench-upload"
PIECE = 1024 * 1024


async def sink(stream: trio.SocketStream) -> None:
    """An upstream that reads a request whole without keeping it, then answers a transcription."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    left = length - len(rest)
    while left > 0:
        left -= len(await stream.receive_some(65536))
    body = b'{"text": "heard", "usage": {"type": "duration", "seconds": 1}}'
    await stream.send_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)
    )
    await stream.aclose()


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def upload(url_port: int, megabytes: int) -> int:
    boundary = "bench-upload-boundary"
    before = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
        "Content-Type: audio/mpeg\r\n\r\n"
    ).encode()
    after = f"\r\n--{boundary}--\r\n".encode()
    length = len(before) + megabytes * PIECE + len(after)
    head = (
        f"POST /v1/audio/transcriptions HTTP/1.1\r\nhost: relay\r\nauthorization: Bearer {KEY}\r\n"
        f"content-type: multipart/form-data; boundary={boundary}\r\ncontent-length: {length}\r\n\r\n"
    ).encode()
    piece = b"\x07" * PIECE
    stream = await trio.open_tcp_stream("127.0.0.1", url_port)
    async with stream:
        await stream.send_all(head + before)
        for _ in range(megabytes):
            await stream.send_all(piece)
        await stream.send_all(after)
        answer = b""
        while not answer.endswith(b"}"):
            more = await stream.receive_some(65536)
            if not more:
                break
            answer += more
    return int(answer.split(b" ", 2)[1])


async def main(megabytes: int, traced: bool) -> None:
    upstream_sock = trio.socket.socket()
    await upstream_sock.bind(("127.0.0.1", 0))
    upstream_sock.listen(16)
    upstream_port = upstream_sock.getsockname()[1]
    config = loads(
        textwrap.dedent(
            f"""
            [server]
            listen = "127.0.0.1:0"
            access_log = false
            [limits]
            max_upload_bytes = {(megabytes + 8) * PIECE}
            [store]
            url = "sqlite://:memory:"
            [[channels]]
            name = "sink"
            type = "openai"
            base_url = "http://127.0.0.1:{upstream_port}/v1"
            api_key = "sk-up"
            models = ["whisper-1"]
            [[keys]]
            name = "bench"
            key = "{KEY}"
            """
        )
    )
    sock = bind_socket("127.0.0.1", 0, reuse_port=False, listen=True, backlog=16)
    port = sock.getsockname()[1]
    limits: Limits = config.limits
    async with Relay(config).running() as app, trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, sink, [trio.SocketListener(upstream_sock)])
        await nursery.start(serve, app, [make_listener(sock)], limits, Shutdown())
        rss_before = max_rss_bytes()
        if traced:
            tracemalloc.start()
        status = await upload(port, megabytes)
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        tracemalloc.stop()
        rss_after = max_rss_bytes()
        nursery.cancel_scope.cancel()
    print(f"upload of {megabytes} MiB: status {status}")
    print(f"peak RSS growth: {(rss_after - rss_before) / PIECE:.1f} MiB (peak RSS {rss_after / PIECE:.1f} MiB)")
    if traced:
        print(f"peak traced allocation: {peak / PIECE:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--traced", action="store_true")
    args = parser.parse_args()
    trio.run(main, args.mb, args.traced)

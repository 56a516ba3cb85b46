"""A server that answers every request with the same precomputed bytes: the load generator's ceiling.

``python -m bench.canned --port P`` prints ``canned: listening on HOST:PORT``. It reads each request's
head and ``content-length`` body and writes a fixed 200 answer the size of the mock's chat completion,
so a load generator aimed at it is limited by itself (or by this, whichever is slower), not by Relay.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from collections.abc import Sequence

_BODY = (
    b'{"id":"chatcmpl-canned","object":"chat.completion","created":1700000000,"model":"mock-1",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Echo: Hello from the benchmark.",'
    b'"refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":8,'
    b'"completion_tokens":8,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":0},'
    b'"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":"fp_mock"}'
)
ANSWER = (
    b"HTTP/1.1 200 OK\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n" % len(_BODY) + _BODY
)


class Canned(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buf = self.buf
        buf += data
        answers = 0
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            length = _content_length(bytes(buf[:end]).lower())
            if len(buf) < end + 4 + length:
                break
            del buf[: end + 4 + length]
            answers += 1
        if answers:
            self.transport.write(ANSWER * answers)


def _content_length(head: bytes) -> int:
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    stop = head.find(b"\r\n", at + 2)
    return int(head[at + 17 : stop if stop >= 0 else len(head)])


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Canned, host, port, backlog=1024)
    bound = server.sockets[0].getsockname()
    print(f"canned: listening on {bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.canned", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())

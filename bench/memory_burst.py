"""``python -m bench.stream_memory --burst K``: does Relay's RSS come back after a burst of large requests?

A fresh Relay (one worker, passthrough: Chat client, Chat upstream ``relay mock-upstream`` in a process of its
own) answers one short request (the warm-up), then sits idle: RSS ``before``. Then K requests at once, each with a
body of ``--burst-mb`` MB (one long user message), every other one streamed; the mock echoes the message, so each
answer is as large. RSS is sampled every 50 ms during the burst (``peak``) and ``--settle`` seconds after the last
answer (``after``). The target (issue 11): ``after`` within 20% of ``before``.

Exit status: 0 when every request got a 200, 1 otherwise, 2 when a process did not start.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
import trio

from bench.procs import BenchError, Server
from bench.stream_memory import KEY, imported_from, rss_kib, run_path

#: Seconds between two RSS samples during the burst.
SAMPLE_EVERY = 0.05
#: Seconds the whole burst may take.
BURST_TIMEOUT = 120.0


def burst_request(port: int, megabytes: float, stream: bool) -> bytes:
    """A chat completion with one user message of ``megabytes`` MB; ``Connection: close`` so that its end is EOF."""
    filler = "The quick brown fox jumps over the lazy dog. "
    size = int(megabytes * 1_000_000)
    text = (filler * (size // len(filler) + 1))[:size]
    body = orjson.dumps({"model": "mock-1", "stream": stream, "messages": [{"role": "user", "content": text}]})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def exchange(port: int, request: bytes, statuses: list[int]) -> None:
    """Send ``request``, read the answer to EOF, note its status (0 when it failed)."""
    status = 0
    try:
        sock = await trio.open_tcp_stream("127.0.0.1", port)
        async with sock:
            await sock.send_all(request)
            first = b""
            while True:
                data = await sock.receive_some(65536)
                if not data:
                    break
                if len(first) < 16:
                    first += data[:16]
            status = int(first.split(b" ", 2)[1]) if first.startswith(b"HTTP/1.1 ") else 0
    except (OSError, trio.BrokenResourceError, ValueError, IndexError):
        status = 0
    statuses.append(status)


async def measure(pid: int, port: int, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, sample RSS idle, run the burst while sampling, let it settle, sample again."""
    statuses: list[int] = []
    await exchange(port, burst_request(port, 0.001, False), statuses)
    await trio.sleep(1.0)
    before = rss_kib(pid)
    requests = [burst_request(port, args.burst_mb, i % 2 == 1) for i in range(args.burst)]
    statuses.clear()
    peak = before
    with trio.fail_after(BURST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            started = trio.current_time()
            for request in requests:
                nursery.start_soon(exchange, port, request, statuses)
            while len(statuses) < len(requests):
                peak = max(peak, rss_kib(pid))
                await trio.sleep(SAMPLE_EVERY)
            took = trio.current_time() - started
    del requests
    settled: dict[str, int] = {}
    for at in (1.0, args.settle / 2, args.settle):
        await trio.sleep_until(started + took + at)
        settled[f"{at:g}s"] = rss_kib(pid)
    after = settled[f"{args.settle:g}s"]
    return {
        "rss_before_kib": before,
        "rss_peak_kib": peak,
        "rss_after_kib": settled,
        "after_over_before": round(after / before, 3),
        "burst_took_s": round(took, 2),
        "statuses": sorted(set(statuses)),
        "ok": sum(1 for s in statuses if s == 200),
    }


def main(args: argparse.Namespace) -> int:
    args.code = args.code.resolve()
    print(f"relay imported from {imported_from(args.code)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="relay-memory-burst-") as folder:
        work = Path(folder)
        mock_argv = [sys.executable, "-m", "relay", "mock-upstream", "--port", "0", "--quiet"]
        mock = Server("mock", mock_argv, None, work, args.code)
        try:
            mock.start()
            result = run_path("passthrough", args, work, f"http://{mock.host}:{mock.port}", measure=measure)
        except BenchError as exc:
            print(f"stream_memory --burst: {exc}", file=sys.stderr)
            return 2
        finally:
            mock.stop()
    settled = ", ".join(f"@{at} {kib / 1024:.1f} MB" for at, kib in result["rss_after_kib"].items())
    print(
        f"code: {args.code}  burst: {args.burst} x {args.burst_mb:g} MB (every other one streamed)\n"
        f"RSS before {result['rss_before_kib'] / 1024:.1f} MB, peak {result['rss_peak_kib'] / 1024:.1f} MB, "
        f"after {settled}: {result['after_over_before']:.2f}x before (target <= 1.2x)\n"
        f"burst took {result['burst_took_s']} s, {result['ok']}/{args.burst} answered 200, statuses "
        f"{result['statuses']}"
    )
    if args.json:
        print(orjson.dumps({"burst": result}).decode())
    return 0 if result["ok"] == args.burst else 1

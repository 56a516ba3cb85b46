"""``python -m bench.fanout``: many streams at once through one Relay worker: frames delivered, CPU per frame.

One Relay worker (``relay serve``, pinned to CPU 1 where the machine has two) relays ``--streams`` streamed chat
completions at once from ``relay mock-upstream`` (a process of its own, with the client, on CPU 0); each stream is
``mock:chunks=N mock:delay_ms=D``, so the ideal frame rate is streams * 1000 / D. A trio client opens them all,
reads them on raw loopback sockets and counts the SSE frames it receives (``data:`` lines). Over the window from
the moment every stream has its first frame to the moment the first stream ends, it reports per path:

- frames delivered per second, and as a share of the ideal rate;
- Relay's CPU per delivered frame (process user + system time ÷ frames), in µs;
- time to first frame (send → first ``data:`` line), p50 and p99, over all streams;
- streams that failed (a status other than 200, a broken connection, an early end).

Two paths, each on a fresh Relay: ``passthrough`` (Chat client, OpenAI channel, relayed as is) and ``converted``
(Chat client, Anthropic channel, every event converted). ``--code DIR`` runs the Relay of another checkout, for a
before/after in one sitting (run it twice, once per checkout; figures from one machine and one run each).
Exit status: 0 when every stream completed, 1 otherwise, 2 when a process did not start.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from bench.cpu import process_seconds
from bench.procs import ROOT, BenchError, Server, affinity
from bench.stats import percentile
from bench.stream_memory import HEAD_END, run_path, stream_request

FRAME = b"data: "


@dataclass(eq=False)
class Stream:
    status: int = 0
    frames: int = 0
    first_frame: float | None = None
    ended: bool = False
    error: str = ""


class Window:
    """Counts frames while open: from every stream's first frame to the first stream's end."""

    def __init__(self, streams: int) -> None:
        self.waiting = streams
        self.open = False
        self.frames = 0
        self.started = trio.Event()
        self.closed = trio.Event()


async def read(port: int, request: bytes, stream: Stream, window: Window) -> None:
    sent = time.perf_counter()
    try:
        sock = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError as exc:
        stream.error = f"connect: {exc}"
        return
    async with sock:
        head = b""
        tail = b""
        try:
            await sock.send_all(request)
            while True:
                data = await sock.receive_some(65536)
                if not data:
                    break
                if not stream.status:
                    head += data
                    if HEAD_END not in head:
                        continue
                    stream.status = int(head.split(b" ", 2)[1])
                    data = head.split(HEAD_END, 1)[1]
                seen = (tail + data).count(FRAME) - tail.count(FRAME)
                tail = data[-len(FRAME) :]
                if seen and stream.first_frame is None:
                    stream.first_frame = time.perf_counter() - sent
                    window.waiting -= 1
                    if window.waiting == 0:
                        window.open = True
                        window.started.set()
                stream.frames += seen
                if window.open:
                    window.frames += seen
                if b"[DONE]" in data:
                    stream.ended = True
                    break
        except (OSError, trio.BrokenResourceError, ValueError, IndexError) as exc:
            stream.error = repr(exc)
        finally:
            if window.open:
                window.open = False
                window.closed.set()


async def measure(pid: int, port: int, args: argparse.Namespace) -> dict[str, Any]:
    request = stream_request(port, args.chunks, args.delay_ms, 20)
    warm = Window(1)
    await read(port, stream_request(port, 4, 1, 20), Stream(), warm)
    streams = [Stream() for _ in range(args.streams)]
    window = Window(args.streams)
    marks: dict[str, tuple[float, float | None]] = {}

    async def watch() -> None:
        await window.started.wait()
        marks["start"] = (time.perf_counter(), process_seconds(pid))
        await window.closed.wait()
        marks["end"] = (time.perf_counter(), process_seconds(pid))

    with trio.fail_after(args.chunks * args.delay_ms / 1000 * 4 + 60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            for stream in streams:
                nursery.start_soon(read, port, request, stream, window)
                await trio.sleep(args.ramp / args.streams)
            await window.closed.wait()
    (t0, cpu0), (t1, cpu1) = marks["start"], marks["end"]
    seconds = t1 - t0
    frames = window.frames
    ideal = args.streams * 1000 / args.delay_ms
    firsts = sorted(s.first_frame * 1000 for s in streams if s.first_frame is not None)
    failed = sum(1 for s in streams if s.status != 200 or s.error or not s.ended)
    cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else float("nan")
    return {
        "window_s": seconds,
        "frames": frames,
        "frames_per_s": frames / seconds if seconds > 0 else 0.0,
        "ideal_per_s": ideal,
        "share": frames / seconds / ideal if seconds > 0 else 0.0,
        "relay_cpu_cores": cpu / seconds if seconds > 0 else float("nan"),
        "us_per_frame": cpu / frames * 1e6 if frames else float("nan"),
        "first_frame_p50_ms": percentile(firsts, 50) if firsts else float("nan"),
        "first_frame_p99_ms": percentile(firsts, 99) if firsts else float("nan"),
        "failed": failed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=256, help="streams open at once (256)")
    parser.add_argument("--chunks", type=int, default=400, help="content chunks per stream (400)")
    parser.add_argument("--delay-ms", type=int, default=20, help="the mock's pause between two chunks (20)")
    parser.add_argument("--ramp", type=float, default=1.0, help="seconds over which the streams are opened (1)")
    parser.add_argument("--paths", default="passthrough,converted", help="passthrough,converted")
    parser.add_argument("--code", type=Path, default=ROOT, help="the Relay to run (a repository root)")
    args = parser.parse_args()
    args.code = args.code.resolve()
    os.environ["PYTHONPATH"] = str(args.code)
    two = (os.cpu_count() or 1) >= 2
    relay_cpus, other_cpus = ({1}, {0}) if two else (None, None)
    if other_cpus is not None:
        pin = affinity(other_cpus)
        if pin is not None:
            pin()  # the client (this process) beside the mock, away from Relay
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="relay-fanout-") as folder:
        work = Path(folder)
        argv = [sys.executable, "-m", "relay", "mock-upstream", "--port", "0", "--quiet"]
        try:
            mock = Server("mock", argv, other_cpus, work, args.code).start()
        except BenchError as exc:
            print(f"fanout: {exc}", file=sys.stderr)
            return 2
        try:
            for path in args.paths.split(","):
                results[path] = run_path(
                    path, args, work, f"http://{mock.host}:{mock.port}", measure=measure, cpus=relay_cpus
                )
        except BenchError as exc:
            print(f"fanout: {exc}", file=sys.stderr)
            return 2
        finally:
            mock.stop()
    print(f"code: {args.code}  streams: {args.streams} x {args.chunks} chunks, {args.delay_ms} ms apart")
    header = ("path", "frames/s", "of ideal", "us/frame", "relay cores", "TTF p50 ms", "TTF p99 ms", "failed")
    print("  ".join(f"{h:>11}" for h in header))
    for path, r in results.items():
        cells = (
            path,
            f"{r['frames_per_s']:.0f}",
            f"{r['share']:.0%}",
            f"{r['us_per_frame']:.1f}",
            f"{r['relay_cpu_cores']:.2f}",
            f"{r['first_frame_p50_ms']:.1f}",
            f"{r['first_frame_p99_ms']:.1f}",
            str(r["failed"]),
        )
        print("  ".join(f"{c:>11}" for c in cells))
    return 0 if all(r["failed"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

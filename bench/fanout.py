"""``python -m bench.fanout``: many streams at once through one Relay worker: frames delivered, CPU per frame.

One Relay worker (``relay serve``, pinned to a core of its own: ``placement``) relays ``--streams`` streamed chat
completions at once from a mock upstream (a process of its own, with the client, on CPU 0); each stream is
``mock:chunks=N mock:delay_ms=D``, so the ideal frame rate is streams * 1000 / D. A client opens them all, reads
them on raw loopback sockets and counts the SSE frames it receives (``data:`` lines). Two rigs (``--rig``):

- ``node`` (the default when ``node`` is installed): bench/fastpeer's mock.mjs and client.mjs, a few µs of CPU per
  frame each, so that 1,024 streams x 64 deltas (51,200 frames/s) measure Relay rather than the rig. The client
  connects every stream first and then sends the requests: time to first frame is from the request.
- ``python``: ``relay mock-upstream`` and a trio client in this process (tens of µs per frame each: sharing one
  core they deliver ~10,000 frames/s, whatever Relay does); time to first frame includes the connect.

Over the window from the moment every stream has its first frame to the moment the first stream ends, it reports
per path:

- frames delivered per second, and as a share of the ideal rate;
- Relay's CPU per delivered frame (process user + system time ÷ frames), in µs;
- time to first frame (send → first ``data:`` line), p50 and p99, over all streams;
- streams that failed (a status other than 200, a broken connection, an early end);
- and the whole run, from the first request sent to the last frame received (``span_*``): frames per second,
  the share of the pace (the time a relay keeping it would take over the time taken) and CPU per frame. It
  exists when the window does not: streams shorter than the time a busy Relay takes to start them all.

Two paths, each on a fresh Relay: ``passthrough`` (Chat client, OpenAI channel, relayed as is) and ``converted``
(Chat client, Anthropic channel, every event converted). ``--code DIR`` runs the Relay of another checkout, for a
before/after in one sitting (run it twice, once per checkout; figures from one machine and one run each).
``--workers N`` runs ``relay serve --workers N`` (Relay's CPU is then the supervisor's and its workers'),
``--no-pin`` lets the scheduler place every process, ``--json PATH`` writes the figures for ``python -m bench``.
``--direct`` points the client at the mock itself, no Relay: what the rig delivers alone, the ceiling of every
figure through Relay (with the node rig, the mock's and the client's CPU per frame are reported on every run).
Exit status: 0 when every stream completed, 1 otherwise, 2 when a process did not start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from bench.cpu import tree_seconds
from bench.fastpeer.rig import INSTALL_HINT, mock_argv, node, run_client
from bench.procs import ROOT, BenchError, Server, affinity
from bench.stats import percentile
from bench.stream_memory import HEAD_END, relay_toml, stream_request

FRAME = b"data: "
CHAT_DONE = "[DONE]"
ANTHROPIC_DONE = "message_stop"
#: Upstream connections one Relay process may hold (and so requests in flight, whose cap defaults to it):
#: above the 1,000 default, so that 1,024 streams at once are all served rather than the last ones refused.
MAX_CONNECTIONS = 4096


def many_streams_toml(path: str, upstream: str, store: Path) -> str:
    """bench.stream_memory's relay.toml with room for every stream (``[upstream] max_connections``)."""
    return relay_toml(path, upstream, store) + f"\n[upstream]\nmax_connections = {MAX_CONNECTIONS}\n"


@dataclass(eq=False)
class Stream:
    status: int = 0
    frames: int = 0
    first_frame: float | None = None
    #: ``time.perf_counter()`` when its last frame arrived.
    last_frame_at: float = 0.0
    ended: bool = False
    error: str = ""


class Window:
    """Counts frames while open: from every stream's first frame to the first stream's end."""

    def __init__(self, streams: int) -> None:
        self.waiting = streams
        self.open = False
        #: The first stream ended before the last one had its first frame: no moment had them all running.
        self.missed = False
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
                if seen:
                    stream.last_frame_at = time.perf_counter()
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
            elif not window.started.is_set():
                # Streams shorter than the ramp (or a Relay too slow to start them all in time): say so
                # rather than wait for a window that cannot open.
                window.missed = True
                window.started.set()
                window.closed.set()


async def warm(port: int) -> None:
    """One short stream before measuring: the connection pool, the imports and the caches of a fresh Relay."""
    await read(port, stream_request(port, 4, 1, 20), Stream(), Window(1))


async def measure(pid: int, port: int, args: argparse.Namespace) -> dict[str, Any]:
    """The python rig: this process opens the streams (trio, raw sockets) and counts their frames."""
    request = stream_request(port, args.chunks, args.delay_ms, 20)
    await warm(port)
    streams = [Stream() for _ in range(args.streams)]
    window = Window(args.streams)
    marks: dict[str, tuple[float, float | None]] = {}

    async def watch() -> None:
        await window.started.wait()
        marks["start"] = (time.perf_counter(), tree_seconds(pid))
        await window.closed.wait()
        marks["end"] = (time.perf_counter(), tree_seconds(pid))

    began, cpu_began = time.perf_counter(), tree_seconds(pid)
    with trio.fail_after(args.chunks * args.delay_ms / 1000 * 4 + 60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            for stream in streams:
                nursery.start_soon(read, port, request, stream, window)
                await trio.sleep(args.ramp / args.streams)
            await window.closed.wait()
    cpu_ended = tree_seconds(pid)
    span = max((s.last_frame_at for s in streams), default=began) - began
    seconds = marks["end"][0] - marks["start"][0]
    return figures(args, streams, Tally(window.frames, seconds, window.missed, span), marks, (cpu_began, cpu_ended))


@dataclass(frozen=True)
class Tally:
    """What a rig counted beyond each stream's own figures."""

    #: Frames received while every stream was running, and for how many seconds that lasted.
    window_frames: int
    window_s: float
    #: No such moment: the first stream ended before the last one had its first frame.
    missed: bool
    #: Seconds from the first request sent to the last frame received.
    span_s: float


def figures(
    args: argparse.Namespace,
    streams: list[Stream],
    tally: Tally,
    marks: dict[str, tuple[float, float | None]],
    cpu_span: tuple[float | None, float | None],
) -> dict[str, Any]:
    """The figures of one path from either rig: ``marks`` are (wall, Relay CPU) at the window's start and end,
    ``cpu_span`` Relay's CPU before the first request and after the last frame (None where unreadable)."""
    (t0, cpu0), (t1, cpu1) = marks.get("start", (0.0, None)), marks.get("end", (0.0, None))
    # No window: every rate below is 0 (``window_missed`` says why), and the frames the python rig counted once
    # the last stream started, after its marks were taken, are not a window's.
    seconds = 0.0 if tally.missed else tally.window_s
    frames = 0 if tally.missed else tally.window_frames
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
        "relay_cpu_cores": cpu / (t1 - t0) if seconds > 0 and t1 > t0 else float("nan"),
        "us_per_frame": cpu / frames * 1e6 if frames else float("nan"),
        "first_frame_p50_ms": percentile(firsts, 50) if firsts else float("nan"),
        "first_frame_p99_ms": percentile(firsts, 99) if firsts else float("nan"),
        "failed": failed,
        "window_missed": tally.missed,
        **span_figures(args, tally.span_s, sum(s.frames for s in streams), *cpu_span),
    }


def span_figures(
    args: argparse.Namespace, span: float, frames: int, cpu_began: float | None, cpu_ended: float | None
) -> dict[str, Any]:
    """The whole fan-out, from the first request sent to the last frame received: short streams (the issue's
    1,024 x 64 deltas last 1.28 s) end before a busy Relay has started the last ones, so no window has them
    all running; the span always exists. ``span_share`` is the time a relay that delivered every frame on
    time would take (chunks x delay) over the span: 1.0 when it kept the pace, 0.25 when it took 4 times as
    long. ``span_frames_per_s`` counts every ``data:`` frame (the role, finish and [DONE] ones too)."""
    cpu = cpu_ended - cpu_began if cpu_began is not None and cpu_ended is not None else float("nan")
    return {
        "span_s": span,
        "span_frames": frames,
        "span_frames_per_s": frames / span if span > 0 else 0.0,
        "span_share": args.chunks * args.delay_ms / 1000 / span if span > 0 else 0.0,
        "span_us_per_frame": cpu / frames * 1e6 if frames else float("nan"),
    }


@dataclass(frozen=True)
class Peers:
    """The rig around Relay: the upstream mock (a process of its own) and where the client runs."""

    rig: str
    mock: Server
    #: The mock's and the client's cores (None: unpinned).
    cpus: set[int] | None

    @property
    def upstream(self) -> str:
        return f"http://{self.mock.host}:{self.mock.port}"


def run_path(path: str, args: argparse.Namespace, work: Path, peers: Peers, cpus: set[int] | None) -> dict[str, Any]:
    """A fresh Relay (``--workers`` processes, on ``cpus``) for ``path``, measured by the rig's client."""
    folder = work / path
    folder.mkdir()
    config = folder / "relay.toml"
    config.write_text(many_streams_toml(path, peers.upstream, folder / "relay.db"), encoding="utf-8")
    if args.floor:
        argv = [sys.executable, "-m", "bench.floor", "--upstream", peers.upstream, "--listen", "127.0.0.1:0"]
        argv += ["--h11"] if args.floor_h11 else []
    else:
        argv = [sys.executable, "-m", "relay", "serve", "--config", str(config), "--listen", "127.0.0.1:0"]
        argv += ["--workers", str(args.workers)]
    relay = Server(f"relay-{path}", argv, cpus, folder, ROOT if args.floor else args.code).start()
    try:
        if peers.rig == "node":
            trio.run(warm, relay.port)
            request = stream_request(relay.port, args.chunks, args.delay_ms, 20)
            result = measure_node(relay.port, relay.pid, peers, args, folder, request, CHAT_DONE)
        else:
            result = trio.run(measure, relay.pid, relay.port, args)
    finally:
        relay.stop()
    if result["failed"]:
        result["relay_log_tail"] = relay.log_tail(10)
    return result


def run_direct(path: str, args: argparse.Namespace, work: Path, peers: Peers) -> dict[str, Any]:
    """The client straight to the mock, no Relay: what the rig delivers on its own (the ceiling of every
    figure through Relay). ``passthrough`` asks the mock's Chat endpoint, ``converted`` its Anthropic one
    (node rig only). The Relay figures are absent; ``mock_us_per_frame`` is the mock's CPU per frame."""
    folder = work / f"direct-{path}"
    folder.mkdir()
    port = peers.mock.port
    if peers.rig == "python":
        if path != "passthrough":
            raise BenchError(f"--direct with --rig python measures the Chat path only, not {path}")
        result = trio.run(measure, peers.mock.pid, port, args)
        result["mock_us_per_frame"] = result["span_us_per_frame"]
    elif path == "passthrough":
        result = measure_node(port, None, peers, args, folder, stream_request(port, args.chunks, args.delay_ms, 20))
    else:
        request = anthropic_request(port, args.chunks, args.delay_ms)
        result = measure_node(port, None, peers, args, folder, request, ANTHROPIC_DONE)
    for key in ("us_per_frame", "span_us_per_frame", "relay_cpu_cores"):
        result[key] = float("nan")
    return result


def anthropic_request(port: int, chunks: int, delay_ms: int) -> bytes:
    """A streamed Anthropic Messages request with the directives bench.stream_memory's Chat request carries."""
    text = f"mock:chunks={chunks} mock:delay_ms={delay_ms} " + "x" * (chunks * 20)
    body = json.dumps(
        {"model": "mock-1", "max_tokens": 4096, "stream": True, "messages": [{"role": "user", "content": text}]}
    ).encode()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-api-key: sk-upstream\r\n"
        f"anthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def measure_node(
    port: int,
    relay_pid: int | None,
    peers: Peers,
    args: argparse.Namespace,
    folder: Path,
    request: bytes,
    done: str = "[DONE]",
) -> dict[str, Any]:
    """The node rig: client.mjs opens the streams (``request`` each) on ``port``; Relay's CPU (``relay_pid``'s
    tree, None for none) is sampled before, at the window's edges (client.mjs's marks) and after. Besides
    the figures of ``figures``: the mock's and the client's CPU per frame and the cores they used together,
    which say whether the rig had room (the client's includes its start, ~40 ms of CPU)."""

    def sample() -> float | None:
        return tree_seconds(relay_pid) if relay_pid is not None else None

    began, cpu_began, mock_began = time.perf_counter(), sample(), tree_seconds(peers.mock.pid)
    run = run_client(
        port,
        request,
        args.streams,
        ramp=args.ramp,
        done=done,
        work=folder,
        cpus=peers.cpus,
        sample=sample,
        timeout=args.chunks * args.delay_ms / 1000 * 4 + 60,
    )
    cpu_ended, mock_ended, wall = sample(), tree_seconds(peers.mock.pid), time.perf_counter() - began
    streams = [
        Stream(status, frames, None if first is None else first / 1000, last / 1000, ended, error)
        for status, frames, first, last, ended, error in run.rows
    ]
    tally = Tally(run.window_frames, run.window_s, run.missed, run.span_s)
    result = figures(args, streams, tally, run.marks, (cpu_began, cpu_ended))
    mock_cpu = mock_ended - mock_began if mock_began is not None and mock_ended is not None else float("nan")
    frames = max(run.frames, 1)
    result["mock_us_per_frame"] = mock_cpu / frames * 1e6
    result["client_us_per_frame"] = run.cpu_s / frames * 1e6
    result["rig_cpu_cores"] = (mock_cpu + run.cpu_s) / wall if wall > 0 else float("nan")
    return result


#: The mock's warm-up: enough streams and frames for V8 to compile its hot paths before the first measurement
#: (the first direct run on a fresh mock was ~10 % slower without it).
WARM_STREAMS = 128
WARM_CHUNKS = 16


def warm_mock(peers: Peers, work: Path) -> None:
    """A short fan-out of both dialects straight to the node mock, before anything is measured."""
    folder = work / "warm-mock"
    folder.mkdir()
    port = peers.mock.port
    for request, done in (
        (stream_request(port, WARM_CHUNKS, 1, 1), CHAT_DONE),
        (anthropic_request(port, WARM_CHUNKS, 1), ANTHROPIC_DONE),
    ):
        run_client(
            port,
            request,
            WARM_STREAMS,
            ramp=0,
            done=done,
            work=folder,
            cpus=peers.cpus,
            sample=lambda: None,
            timeout=30,
        )


def default_rig() -> str:
    """``node`` when it is installed (the fast rig), else ``python``."""
    return "node" if node() is not None else "python"


def placement(workers: int, pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(Relay's cores, the mock's and the client's). With 4 cores or more, the mock and the client share the
    first two and Relay gets one core per worker after them (the same for 1 and N workers, so that the two
    compare); with 2 or 3, one worker on the second core, the rest on the first; else no pinning (several
    workers pinned to one core would only share it)."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    if len(cpus) >= 4 and len(cpus) >= workers + 2:
        return set(cpus[2 : 2 + workers]), set(cpus[:2])
    if workers == 1:
        return {cpus[1]}, {cpus[0]}
    return None, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=256, help="streams open at once (256)")
    parser.add_argument("--chunks", type=int, default=400, help="content chunks per stream (400)")
    parser.add_argument("--delay-ms", type=int, default=20, help="the mock's pause between two chunks (20)")
    parser.add_argument("--ramp", type=float, default=1.0, help="seconds over which the streams are opened (1)")
    parser.add_argument("--paths", default="passthrough,converted", help="passthrough,converted")
    parser.add_argument("--code", type=Path, default=ROOT, help="the Relay to run (a repository root)")
    parser.add_argument("--workers", type=int, default=1, help="relay serve --workers N (1)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin processes to cores")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument(
        "--rig",
        choices=("node", "python"),
        help="node: bench/fastpeer's mock and client (the default when node is installed); python: relay "
        "mock-upstream and a trio client",
    )
    parser.add_argument("--direct", action="store_true", help="the client straight to the mock, no Relay")
    parser.add_argument(
        "--floor", action="store_true", help="bench.floor (a bare trio forwarder) in Relay's place: the stack's floor"
    )
    parser.add_argument("--floor-h11", action="store_true", help="--floor, its forwarder speaking h11 (bench.floor)")
    args = parser.parse_args()
    args.floor = args.floor or args.floor_h11
    if args.floor and (args.direct or args.workers != 1 or args.paths.split(",") != ["passthrough"]):
        print("fanout: --floor measures the passthrough path, one process, through the forwarder")
        args.direct, args.workers, args.paths = False, 1, "passthrough"
    if args.rig is None:
        args.rig = default_rig()
        if args.rig == "python":
            print(f"fanout: {INSTALL_HINT}; using the python rig, which caps the figures (bench/README.md)")
    elif args.rig == "node" and node() is None:
        print(f"fanout: {INSTALL_HINT}", file=sys.stderr)
        return 2
    args.code = args.code.resolve()
    os.environ["PYTHONPATH"] = str(args.code)
    relay_cpus, other_cpus = placement(args.workers, args.pin)
    if other_cpus is not None:
        pin = affinity(other_cpus)
        if pin is not None:
            pin()  # the client (this process, or its node child) beside the mock, away from Relay
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="relay-fanout-") as folder:
        work = Path(folder)
        if args.rig == "node":
            argv, cwd = mock_argv(), ROOT
        else:
            argv, cwd = [sys.executable, "-m", "relay", "mock-upstream", "--port", "0", "--quiet"], args.code
        try:
            mock = Server("mock", argv, other_cpus, work, cwd).start()
        except BenchError as exc:
            print(f"fanout: {exc}", file=sys.stderr)
            return 2
        peers = Peers(args.rig, mock, other_cpus)
        try:
            if args.rig == "node":
                warm_mock(peers, work)
            paths = args.paths.split(",")
            if args.direct and args.rig == "python" and paths != ["passthrough"]:
                print("fanout: --direct with --rig python measures the Chat path (passthrough) only")
                paths = ["passthrough"]
            for path in paths:
                if args.direct:
                    results[path] = run_direct(path, args, work, peers)
                else:
                    results[path] = run_path(path, args, work, peers, relay_cpus)
        except BenchError as exc:
            print(f"fanout: {exc}", file=sys.stderr)
            return 2
        finally:
            mock.stop()
    pinned = f"relay on cpu {sorted(relay_cpus)}" if relay_cpus else "not pinned"
    where = "direct to the mock, no Relay" if args.direct else f"{args.workers} worker(s), {pinned}"
    if args.floor:
        where = f"bench.floor{' --h11' if args.floor_h11 else ''} (a trio forwarder) in Relay's place, {pinned}"
    print(
        f"code: {args.code}  rig: {args.rig}  streams: {args.streams} x {args.chunks} chunks, {args.delay_ms} ms "
        f"apart, opened over {args.ramp:g} s; {where}"
    )
    header = ("path", "frames/s", "of ideal", "us/frame", "relay cores", "TTF p50 ms", "TTF p99 ms", "failed")
    print("window (every stream running):")
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
        if r["window_missed"]:
            print(f"  {path}: the first stream ended before the last one started: no window, raise --chunks")
    print("whole run (first request sent to last frame):")
    for path, r in results.items():
        print(
            f"  {path}: {r['span_frames']} frames in {r['span_s']:.2f} s: {r['span_frames_per_s']:.0f} frames/s, "
            f"{r['span_share']:.0%} of the pace, {r['span_us_per_frame']:.1f} us of Relay CPU per frame"
        )
        if "client_us_per_frame" in r:
            print(
                f"    rig: mock {r['mock_us_per_frame']:.1f} + client {r['client_us_per_frame']:.1f} us per frame, "
                f"{r['rig_cpu_cores']:.2f} cores"
            )
    if args.json:
        keys = ("streams", "chunks", "delay_ms", "ramp", "workers", "rig", "direct", "floor")
        settings = {k: getattr(args, k) for k in keys}
        document = {"code": str(args.code), **settings, "relay_cpus": sorted(relay_cpus or ()), "paths": results}
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["failed"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

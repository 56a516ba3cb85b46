"""The neutral mock's own cost beside a target's, on the same load: CPU per request and per streamed frame.

A benchmark of a proxy in front of a mock measures both; the figures say something about the proxy only while the
mock costs a small part of what the proxy does (issue 15: at least 10 times less). ``Meter`` reads the mock's
and a target's CPU and the mock's own counts (requests, frames) at the edges of any window, so each lane can
report the mock's share and flag itself when the mock, not the target, could have been the limit.
``mock_cost`` drives a load of its own (asyncio connections, each sending its next request when the previous
answer has ended) through a target, or straight to the mock, and meters it.

    python -m bench.neutral.cost                      # direct and relay, instant and fixed streams
    python -m bench.neutral.cost --targets relay,litellm --shape fixed --concurrency 64 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.http1 import ResponseReader
from bench.neutral import wire
from bench.neutral.server import MOCKS, NeutralMock, neutral_mock
from bench.targets import Target, parse_target, started
from bench.targets.start import cache_dir

#: The mock must cost at most this share of the target's CPU for a lane's figures to be the target's.
MAX_SHARE = 0.1


@dataclass
class Meter:
    """CPU of the mock and of a target (None: the mock alone) and the mock's counts, between ``start`` and
    ``stop``."""

    mock: NeutralMock
    target: Target | None = None
    _before: dict[str, Any] = field(default_factory=dict)

    def _read(self) -> dict[str, Any]:
        stats = self.mock.stats()
        return {
            "wall": time.perf_counter(),
            "mock": self.mock.cpu_seconds(),
            "target": self.target.cpu_seconds() if self.target is not None else None,
            "requests": stats["requests"],
            "frames": stats["frames"],
        }

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> dict[str, Any]:
        """The window's figures: wall seconds, requests and frames the mock answered, each process's CPU
        seconds, cores and microseconds per request and per frame, and the mock's share of the target's CPU
        (``mock_share``; ``mock_bound`` when it is above MAX_SHARE)."""
        after, before = self._read(), self._before
        wall = after["wall"] - before["wall"]
        requests, frames = after["requests"] - before["requests"], after["frames"] - before["frames"]
        out: dict[str, Any] = {"wall_s": round(wall, 3), "requests": requests, "frames": frames}
        for who in ("mock", "target"):
            if after[who] is None:
                continue
            cpu = after[who] - before[who]
            out[f"{who}_cpu_s"] = round(cpu, 3)
            out[f"{who}_cores"] = round(cpu / wall, 3) if wall > 0 else None
            out[f"{who}_us_per_request"] = round(cpu / requests * 1e6, 1) if requests else None
            out[f"{who}_us_per_frame"] = round(cpu / frames * 1e6, 2) if frames else None
        if "target_cpu_s" in out:
            target_cpu = out["target_cpu_s"]
            share = out["mock_cpu_s"] / target_cpu if target_cpu > 0 else None
            out["mock_share"] = round(share, 4) if share is not None else None
            out["target_to_mock"] = round(1 / share, 1) if share else None
            out["mock_bound"] = share is None or share > MAX_SHARE
        return out


async def _connection(host: str, port: int, request: bytes, deadline: float, counts: dict[str, int]) -> None:
    reader_stream, writer = await asyncio.open_connection(host, port)
    answer = ResponseReader()
    try:
        while time.perf_counter() < deadline:
            answer.reset()
            writer.write(request)
            while True:
                data = await reader_stream.read(1 << 16)
                if not data:
                    counts["errors"] += 1
                    return
                if answer.feed(data):
                    break
            counts["ok" if answer.ok else "errors"] += 1
            if answer.close:
                return
    finally:
        writer.close()


async def _load(base_url: str, request: bytes, concurrency: int, duration: float) -> dict[str, int]:
    parts = urlsplit(base_url)
    counts = {"ok": 0, "errors": 0}
    deadline = time.perf_counter() + duration
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    await asyncio.gather(*(_connection(host, port, request, deadline, counts) for _ in range(concurrency)))
    return counts


def mock_cost(
    mock: NeutralMock,
    target: Target | None = None,
    *,
    shape: str = "instant",
    stream: bool = True,
    client: str = "openai_chat",
    upstream: str | None = None,
    concurrency: int = 16,
    duration: float = 3.0,
) -> dict[str, Any]:
    """``concurrency`` connections sending ``shape`` requests of ``client`` through ``target`` (straight to the
    mock when None) for ``duration`` seconds, metered (``Meter.stop``'s figures, plus the client's ``ok`` and
    ``errors``)."""
    if target is None:
        base, request = mock.base_url, _direct_request(mock, shape, stream, client)
    else:
        base, request = target.base_url, target.request(shape, stream=stream, client=client, upstream=upstream)
    meter = Meter(mock, target)
    meter.start()
    counts = asyncio.run(_load(base, request, concurrency, duration))
    return {**meter.stop(), **counts}


def _direct_request(mock: NeutralMock, shape: str, stream: bool, client: str) -> bytes:
    model = wire.model_for(shape)
    return wire.request(mock.base_url, client, model, stream=stream, key="sk-bench-direct", payload=None)


def _row(name: str, shape: str, result: dict[str, Any]) -> str:
    def cell(value: Any, width: int) -> str:
        return ("-" if value is None else str(value)).rjust(width)

    ratio = result.get("target_to_mock")
    verdict = "" if ratio is None else ("  ok (>= 10x)" if not result["mock_bound"] else "  MOCK-BOUND (< 10x)")
    return (
        f"{name:<10}{shape:<10}{cell(result['requests'], 8)}{cell(result['frames'], 9)}"
        f"{cell(result.get('mock_us_per_request'), 10)}{cell(result.get('mock_us_per_frame'), 9)}"
        f"{cell(result.get('target_us_per_request'), 10)}{cell(result.get('target_us_per_frame'), 9)}"
        f"{cell(ratio, 9)}{verdict}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.neutral.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="relay", help="comma-separated target specs (default: relay)")
    parser.add_argument("--shapes", default="instant,fixed", help="comma-separated shapes (default: instant,fixed)")
    parser.add_argument("--client", default="openai_chat", help="the client dialect (default: openai_chat)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement (default: 3)")
    parser.add_argument("--peer-cache", type=Path, default=None, help="where peers are installed (default: cache)")
    parser.add_argument(
        "--mock",
        choices=MOCKS,
        default="auto",
        help="the neutral mock: auto (default: c where gcc is, else node), c or node",
    )
    args = parser.parse_args(argv)
    specs = [parse_target(s) for s in args.targets.split(",") if s.strip()]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    print(
        f"{'target':<10}{'shape':<10}{'requests':>8}{'frames':>9}{'mock us/req':>10}{'/frame':>9}"
        f"{'tgt us/req':>10}{'/frame':>9}{'tgt/mock':>9}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp,
        neutral_mock(Path(tmp) / "mock", mock=args.mock, cache=cache_dir(args.peer_cache)) as mock,
    ):
        print(f"mock: {mock.kind}" + (f" ({mock.note})" if mock.note else ""))
        load = {"concurrency": args.concurrency, "duration": args.duration}
        for shape in shapes:
            print(_row("direct", shape, mock_cost(mock, None, shape=shape, client=args.client, **load)))
        with started(specs, mock, Path(tmp), cache=args.peer_cache) as (targets, skipped):
            for name, reason in skipped.items():
                print(f"{name:<10}skipped: {reason.splitlines()[0][:200]}")
            for target in targets:
                for shape in shapes:
                    client = args.client if args.client in target.routes else target.dialect
                    result = mock_cost(mock, target, shape=shape, client=client, **load)
                    print(_row(target.name, shape, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

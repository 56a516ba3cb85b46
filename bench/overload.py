"""Pool exhaustion and overload: what requests beyond Relay's capacity get, and whether the channel survives it.

``python -m bench.overload`` starts ``relay mock-upstream`` and ``relay serve`` (one worker, the default
``[upstream]`` and ``[server] max_in_flight`` (or ``--max-in-flight``), one ``openai`` channel to the mock,
``breaker_failures = 5``), then:

1. opens ``--hold`` streams (default 1,000: every pooled connection) that the mock paces slowly
   (``mock:delay_ms``), and waits until each has its response head or its answer;
2. sends ``--extra`` more requests at once (default 50) and times each one's answer;
3. sends one more;
4. waits for the held streams to end, and sends one more: the channel should serve it.

It prints, for each phase, the statuses (with the error code) and the time to the answer. ``--code PATH`` runs
the Relay found at PATH (e.g. a worktree of an earlier revision) for a before/after comparison. About 40 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import trio

from bench.procs import ROOT, Server

KEY = "sk-bench-overload"


def relay_toml(upstream: str, store: Path, max_in_flight: int | None) -> str:
    cap = f"max_in_flight = {max_in_flight}" if max_in_flight is not None else ""
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false
{cap}

[store]
url = "sqlite:///{store}"

[routing]
max_attempts = 1
breaker_failures = 5

[[channels]]
name = "mock"
type = "openai"
base_url = "{upstream}/v1"
models = ["mock-*"]

[[keys]]
name = "bench"
key = "{KEY}"
"""


def request(host: str, port: int, content: str, stream: bool) -> bytes:
    body = json.dumps(
        {"model": "mock-1", "stream": stream, "messages": [{"role": "user", "content": content}]}
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}:{port}\r\nauthorization: Bearer {KEY}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class Answer:
    """One request: its status, the error code of an error answer, when the head and the end arrived."""

    def __init__(self) -> None:
        self.status = 0
        self.code = ""
        self.head_at: float | None = None
        self.took = 0.0
        self.head = trio.Event()

    def label(self) -> str:
        return f"{self.status} {self.code}".strip() if self.status else "no answer"


async def ask(host: str, port: int, content: str, stream: bool, answer: Answer) -> None:
    """One request on a connection of its own, read to its end (``connection: close``)."""
    started = time.perf_counter()
    data = b""
    try:
        stream_ = await trio.open_tcp_stream(host, port)
        async with stream_:
            await stream_.send_all(request(host, port, content, stream))
            while chunk := await stream_.receive_some(65536):
                data += chunk
                if answer.head_at is None and b"\r\n\r\n" in data:
                    answer.head_at = time.perf_counter() - started
                    answer.status = int(data.split(b" ", 2)[1])
                    answer.head.set()
    except OSError:
        pass
    answer.took = time.perf_counter() - started
    answer.head.set()
    if answer.status >= 400:
        body = data.split(b"\r\n\r\n", 1)[1]
        try:
            answer.code = json.loads(body[body.find(b"{") : body.rfind(b"}") + 1])["error"]["code"] or ""
        except (ValueError, KeyError, TypeError):
            answer.code = "?"


def summary(answers: list[Answer]) -> dict[str, Any]:
    took = sorted(a.took for a in answers)
    return {
        "statuses": dict(Counter(a.label() for a in answers)),
        "answer_s (min p50 max)": f"{took[0]:.3f} {took[len(took) // 2]:.3f} {took[-1]:.3f}",
    }


async def scenario(host: str, port: int, hold: int, extra: int, delay_ms: int) -> dict[str, Any]:
    holders = [Answer() for _ in range(hold)]
    result: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        for index, answer in enumerate(holders):
            nursery.start_soon(ask, host, port, f"hold {index} mock:chunks=2 mock:delay_ms={delay_ms}", True, answer)
            if index % 50 == 49:
                await trio.sleep(0.05)  # stay within the listen backlog
        for answer in holders:
            await answer.head.wait()
        result["held"] = dict(Counter(a.label() for a in holders if a.head_at is not None and a.took == 0.0))
        extras = [Answer() for _ in range(extra)]
        async with trio.open_nursery() as burst:
            for index, answer in enumerate(extras):
                burst.start_soon(ask, host, port, f"extra {index}", False, answer)
        result["extra"] = summary(extras)
        one = Answer()
        await ask(host, port, "one more", False, one)
        result["one_more"] = summary([one])
    result["holders"] = summary(holders)
    after = Answer()
    await ask(host, port, "after the held streams ended", False, after)
    result["after"] = summary([after])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hold", type=int, default=1000, help="streams held open (default: the pool's 1,000)")
    parser.add_argument("--extra", type=int, default=50, help="requests sent once they are open")
    parser.add_argument("--delay-ms", type=int, default=5000, help="the mock's pause between two stream events")
    parser.add_argument("--max-in-flight", type=int, help="[server] max_in_flight (absent: Relay's default)")
    parser.add_argument("--code", type=Path, default=ROOT, help="the Relay to run (a repository root)")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = str(args.code.resolve())
    with tempfile.TemporaryDirectory(prefix="relay-overload-") as folder:
        work = Path(folder)
        mock_argv = [sys.executable, "-m", "relay", "mock-upstream", "--port", "0", "--quiet"]
        mock = Server("mock", mock_argv, None, work, work).start()
        try:
            config = work / "relay.toml"
            config.write_text(relay_toml(f"http://{mock.host}:{mock.port}", work / "relay.db", args.max_in_flight))
            argv = [sys.executable, "-m", "relay", "serve", "--config", str(config)]
            relay = Server("relay", argv, None, work, work).start()
            try:
                result = trio.run(scenario, relay.host, relay.port, args.hold, args.extra, args.delay_ms)
            finally:
                relay.stop()
        finally:
            mock.stop()
    print(f"code: {args.code}")
    for phase, figures in result.items():
        print(f"{phase:>9}: {json.dumps(figures)}")


if __name__ == "__main__":
    main()

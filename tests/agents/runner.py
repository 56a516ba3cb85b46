"""The real agent CLIs against Relay: each CLI, on each upstream dialect, (a plain turn, a shell round trip).

``python -m tests.agents.runner --bin DIR`` (``run_real_clients.sh`` installs the CLIs and calls it) starts
``relay mock-upstream`` and ``relay serve`` on a temporary relay.toml with four channels (OpenAI Chat, OpenAI
Responses, Anthropic, Gemini, each serving any model name) and a key made with ``relay keys create``; then runs
each CLI once per channel and case, with the key pinned to the channel (``KEY#CHANNEL``), through a recording
proxy (``proxy.py``) that keeps every request it sends. It prints one row per run and exits 1 when a run failed.
``--refresh-fixtures`` writes the recorded requests to ``fixtures/`` (``recordings.py``).

Everything lives in a temporary folder whose paths are printed: Relay's log (access lines on stderr), the mock's,
and per run ``stdout``, ``stderr`` and ``exchanges/`` (each request with the status and body it got).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import trio

from tests.agents.clients import CASES, CLIENTS, Client, case_for
from tests.agents.proxy import Exchange, ProxyThread, Recorder, serve_proxy
from tests.agents.recordings import FIXTURES, as_fixture, write_fixtures

#: A run that takes longer fails (a CLI retrying a 5xx may wait long between tries).
RUN_TIMEOUT = 240.0


@attrs.frozen
class Channel:
    name: str
    #: The upstream dialect, as the table shows it.
    dialect: str
    #: The channel's type and base URL in relay.toml (``{upstream}``: the mock's ``http://host:port``).
    toml: str


CHANNELS = (
    Channel("chat", "openai-chat", 'type = "openai"\napi = "chat"\nbase_url = "{upstream}/v1"'),
    Channel("responses", "openai-responses", 'type = "openai"\napi = "responses"\nbase_url = "{upstream}/v1"'),
    Channel("anthropic", "anthropic", 'type = "anthropic"\nbase_url = "{upstream}"'),
    Channel("gemini", "gemini", 'type = "gemini"\nbase_url = "{upstream}"'),
)


def relay_toml(upstream: str, store: Path) -> str:
    channels = "".join(
        f"""
[[channels]]
name = "{channel.name}"
{channel.toml.format(upstream=upstream)}
api_key = "sk-upstream-{channel.name}"
models = ["*"]
[channels.timeouts]
first_byte = 60
idle = 60
"""
        for channel in CHANNELS
    )
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = true

[store]
url = "sqlite:///{store}"

# A failure must show as it is: no breaker opening between runs.
[routing]
breaker_failures = 1000
{channels}"""


@contextlib.contextmanager
def relay_process(*args: str, log: Path) -> Iterator[str]:
    """``python -m relay ARGS`` with stderr in ``log``; yields its ``host:port`` once it listens."""
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "relay", *args], stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if "listening on" not in line:
                raise RuntimeError(f"relay {' '.join(args)} did not start (see {log}): {line!r}")
            yield line.split("listening on", 1)[1].split()[0]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@attrs.frozen
class Environment:
    """Relay in front of the mock upstream, and the key made for the runs."""

    folder: Path
    relay: str
    key: str

    @property
    def relay_log(self) -> Path:
        return self.folder / "relay.log"


@contextlib.contextmanager
def environment(folder: Path) -> Iterator[Environment]:
    """Relay and the mock upstream as subprocesses, with a recording proxy between them: what Relay sent upstream
    is written to ``folder/upstream/`` at the end (in the order sent; runs at once interleave)."""
    upstream = Recorder("upstream")
    with (
        relay_process("mock-upstream", "--port", "0", log=folder / "mock-upstream.log") as mock,
        ProxyThread(*_host_port(mock), upstream) as proxy,
        _written(upstream, folder / "upstream"),
    ):
        config = folder / "relay.toml"
        config.write_text(relay_toml(f"http://127.0.0.1:{proxy.port}", folder / "relay.db"))
        made = subprocess.run(
            [sys.executable, "-m", "relay", "keys", "--config", str(config), "create", "agents"],
            capture_output=True,
            text=True,
            check=True,
        )
        found = re.search(r"Secret: (\S+)", made.stdout)
        if found is None:
            raise RuntimeError(f"relay keys create printed no secret: {made.stdout!r} {made.stderr!r}")
        with relay_process("serve", "--config", str(config), log=folder / "relay.log") as relay:
            yield Environment(folder, relay, found.group(1))


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def write_exchanges(exchanges: Sequence[Exchange], folder: Path) -> None:
    """Each exchange as ``NN.json``: the request as recorded, the status, headers and body it got."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, exchange in enumerate(exchanges, 1):
        record = {**exchange.record(), "status": exchange.status, "response_headers": exchange.response_headers}
        record["response"] = exchange.response.decode("utf-8", "replace")
        (folder / f"{number:02d}.json").write_text(json.dumps(record, indent=1, ensure_ascii=False))


@contextlib.contextmanager
def _written(recorder: Recorder, folder: Path) -> Iterator[None]:
    try:
        yield
    finally:
        write_exchanges(recorder.exchanges, folder)


@attrs.define
class Result:
    client: Client
    channel: Channel
    case: str
    #: ``pass``; ``fallback``: the CLI finished, but only after Relay refused a request and the CLI changed it (a
    #: client's own fallback, which the default path must not need); ``FAIL``.
    outcome: str
    detail: str
    folder: Path
    exchanges: list[Exchange]

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"


def error_message(exchange: Exchange) -> str:
    """The message of an error answer (any dialect's shape), or its first 200 characters."""
    try:
        payload = json.loads(exchange.response)
    except ValueError:
        return exchange.response[:200].decode("utf-8", "replace")
    if isinstance(payload, list) and payload:
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return json.dumps(payload)[:200]


#: Events that end a stream with an error, in each dialect (a 200 that failed on the way).
_STREAM_ERROR = re.compile(rb'^(?:event: (?:error|response\.failed)|data: \{"error")', re.MULTILINE)


def first_problem(exchanges: Sequence[Exchange]) -> str:
    """The first request Relay refused or whose stream ended with an error: ``#N METHOD PATH → STATUS: message``."""
    for number, exchange in enumerate(exchanges, 1):
        where = f"#{number} {exchange.method} {exchange.path}"
        if exchange.status is not None and exchange.status >= 400:
            return f"{where} → {exchange.status}: {error_message(exchange)}"
        found = _STREAM_ERROR.search(exchange.response)
        if found is not None:
            line = exchange.response[found.start() :].split(b"\n\n", 1)[0].replace(b"\n", b" ")
            return f"{where} → {exchange.status}, stream error: {line[:300].decode('utf-8', 'replace')}"
    return ""


def first_error_line(*texts: str) -> str:
    for text in texts:
        for line in text.splitlines():
            if re.search(r"error|failed|denied", line, re.IGNORECASE):
                return line.strip()[:300]
    return ""


async def run_one(client: Client, channel: Channel, case_name: str, env: Environment, bin_dir: Path) -> Result:
    """One CLI run with the key pinned to ``channel``, through a recording proxy of its own."""
    token = secrets.token_hex(4)
    case = case_for(client, case_name, token)
    folder = env.folder / "runs" / f"{client.name}-{channel.name}-{case_name}"
    (folder / "home").mkdir(parents=True, exist_ok=True)
    (folder / "work").mkdir(exist_ok=True)
    recorder = Recorder(folder.name)
    host, port = _host_port(env.relay)
    stdout = stderr = ""
    timed_out = True
    returncode: int | None = None
    async with trio.open_nursery() as nursery:
        proxy = await nursery.start(serve_proxy, host, port, recorder)
        base_url, key = f"http://127.0.0.1:{proxy}", f"{env.key}#{channel.name}"
        invocation = client.invoke(bin_dir, base_url, key, folder / "home", case)
        (folder / "command.json").write_text(json.dumps({"argv": invocation.argv, "env": invocation.env}, indent=1))
        with trio.move_on_after(RUN_TIMEOUT):
            done = await trio.run_process(
                invocation.argv,
                env=invocation.env,
                cwd=folder / "work",
                stdin=b"",
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
            stdout, stderr = done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
            returncode, timed_out = done.returncode, False
        nursery.cancel_scope.cancel()
    (folder / "stdout").write_text(stdout)
    (folder / "stderr").write_text(stderr)
    exchanges = recorder.exchanges
    write_exchanges(exchanges, folder / "exchanges")
    missing = [expected for expected in case.expect if expected not in stdout]
    finished = not timed_out and returncode == 0 and not missing
    problem = first_problem(exchanges)
    if finished:
        outcome = "fallback" if problem else "pass"
        detail = f"finished only after the CLI's fallback from {problem}" if problem else ""
    else:
        outcome = "FAIL"
        shown = next((line for line in stdout.splitlines() if line.strip()), "")[:200]
        parts = [f"timed out after {RUN_TIMEOUT:.0f} s"] if timed_out else []
        parts.append(problem or first_error_line(stderr, stdout))
        recovered = bool(exchanges) and exchanges[-1].status == 200
        if not timed_out and (recovered or not parts[-1]):
            parts.append(f"exit {returncode}; output lacks {missing}: {shown!r}")
        detail = "; ".join(part for part in parts if part)
    if recorder.notes:
        detail += f" [proxy: {'; '.join(recorder.notes)}]"
    return Result(client, channel, case_name, outcome, detail, folder, exchanges)


def table(results: Sequence[Result]) -> str:
    rows = [("CLI", "channel dialect", "case", "result", "detail")]
    rows += [(r.client.name, r.channel.dialect, r.case, r.outcome, r.detail) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for number, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        lines.append(" | ".join([*cells, row[4]]).rstrip())
        if number == 0:
            lines.append("-+-".join("-" * width for width in widths) + "-+-" + "-" * 6)
    return "\n".join(lines)


def fixture_records(results: Sequence[Result]) -> list[dict[str, object]]:
    return [
        as_fixture(
            exchange,
            client=result.client.name,
            version=result.client.version,
            channel=result.channel.name,
            case=result.case,
            seq=number,
        )
        for result in results
        for number, exchange in enumerate(result.exchanges, 1)
    ]


def installed_version(bin_dir: Path, client: Client) -> str:
    done = subprocess.run([str(bin_dir / client.name), "--version"], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or done.stderr.strip()


async def run_all(env: Environment, bin_dir: Path, clients: Sequence[Client], jobs: int) -> list[Result]:
    plan = [(client, channel, case) for client in clients for channel in CHANNELS for case in CASES]
    results: list[Result | None] = [None] * len(plan)
    limiter = trio.CapacityLimiter(jobs)

    async def one(index: int) -> None:
        async with limiter:
            results[index] = await run_one(*plan[index], env, bin_dir)

    async with trio.open_nursery() as nursery:
        for index in range(len(plan)):
            nursery.start_soon(one, index)
    return [result for result in results if result is not None]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.agents.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, type=Path, help="the folder holding the codex and claude commands")
    parser.add_argument("--refresh-fixtures", action="store_true", help=f"write the recorded requests to {FIXTURES}")
    parser.add_argument("--jobs", type=int, default=4, help="runs at once (default 4)")
    parser.add_argument("--only", choices=[client.name for client in CLIENTS], help="run one CLI only")
    args = parser.parse_args(argv)
    if args.refresh_fixtures and args.only:
        parser.error("--refresh-fixtures rewrites every fixture: it needs every CLI (no --only)")
    clients = [client for client in CLIENTS if args.only in (None, client.name)]
    for client in clients:
        version = installed_version(args.bin, client)
        pinned = "" if client.version in version else f"  (pinned: {client.version})"
        print(f"{client.name}: {version}{pinned}")
    folder = Path(tempfile.mkdtemp(prefix="relay-agents-"))
    with environment(folder) as env:
        results = trio.run(run_all, env, args.bin, clients, max(1, args.jobs))
    print()
    print(table(results))
    print()
    print(f"Relay's log (access lines): {env.relay_log}")
    print(f"each run's stdout, stderr and exchanges/: {folder / 'runs'}/<cli>-<channel>-<case>/")
    print(f"what Relay sent upstream: {folder / 'upstream'}/")
    failed = [result for result in results if not result.passed]
    print(f"{len(results) - len(failed)} of {len(results)} runs passed")
    if args.refresh_fixtures:
        written = write_fixtures(fixture_records(results))
        print(f"wrote {len(written)} fixtures to {FIXTURES}")
        if any(result.outcome == "FAIL" for result in results):
            print("some runs failed: the requests they did not get to send are missing from the fixtures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

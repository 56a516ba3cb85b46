"""End-to-end gateway tests: Relay on real sockets, in process and as ``relay serve`` subprocesses, on a real
store (a SQLite file, or a PostgreSQL schema of its own when RELAY_TEST_POSTGRES_URL is set), with Redis for
the rate limits when RELAY_TEST_REDIS_URL is set.

Every relay.toml here is built by ``relay_toml``: a store with a short ``key_refresh`` and ``log_interval``,
prices for the mock models (so quota is exact to the micro-credit), and the channels and keys a test names.
The store is read back with ``relay.store`` itself (``read``), from a connection of the test's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

from relay.store import Tx, open_store
from relay.store.records import LogRecord, read_logs
from tests.conftest import KEY, process
from tests.helpers import RawResponse, raw_request

REDIS_ENV = "RELAY_TEST_REDIS_URL"
T = TypeVar("T")

#: Micro-credits per token (credits per million tokens) of the mock models.
INPUT_PRICE = 1000
OUTPUT_PRICE = 2000
CACHED_PRICE = 250

PRICES = f"""
[[prices]]
model = "mock-*"
input = {INPUT_PRICE}
output = {OUTPUT_PRICE}
cached_input = {CACHED_PRICE}
"""


# ---- stores ---------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/relay.db"


def redis_or_skip() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"Redis rate limits: set {REDIS_ENV}=redis://127.0.0.1:6379/0 to run")
    return url


@pytest.fixture
def redis_url() -> str:
    return redis_or_skip()


async def read(url: str, fn: Callable[[Tx], T]) -> T:
    """``fn(tx)`` in one transaction on a connection of the test's own."""
    async with open_store(url) as store:
        return await store.transaction(fn)


def sql(query: str, params: tuple[object, ...] = ()) -> Callable[[Tx], list[tuple[Any, ...]]]:
    return lambda tx: tx.execute(query, params)


async def wait_for(url: str, fn: Callable[[Tx], T], done: Callable[[T], bool], timeout: float = 5.0) -> T:
    """Read ``fn`` until ``done`` says so (the recorder writes off the hot path); the last value read."""
    deadline = trio.current_time() + timeout
    while True:
        value = await read(url, fn)
        if done(value) or trio.current_time() > deadline:
            return value
        await trio.sleep(0.05)


async def logs(url: str, count: int, timeout: float = 5.0) -> list[LogRecord]:
    """The request log, once it holds at least ``count`` records (or the timeout passed)."""
    return await wait_for(url, lambda tx: read_logs(tx, limit=100_000), lambda rows: len(rows) >= count, timeout)


async def balance(url: str, name: str) -> int | None:
    rows = await read(url, sql("SELECT quota_micros FROM keys WHERE name = ?", (name,)))
    return rows[0][0]


async def settled(url: str, timeout: float = 5.0, quiet: float = 0.3) -> list[tuple[str, str, str, int]]:
    """Every ledger row but the grants, (key, request id, kind, amount), once no hold is left open and nothing
    was written for ``quiet`` seconds (a request's hold and settle rows are written together by the recorder,
    within 50 ms of its end: docs/store.md, "Leases")."""

    def rows(tx: Tx) -> list[tuple[str, str, str, int]]:
        return [
            (r[0], r[1], r[2], int(r[3]))
            for r in tx.execute(
                "SELECT key_name, request_id, kind, amount_micros FROM quota_ledger WHERE kind <> 'topup' ORDER BY id"
            )
        ]

    def closed(entries: list[tuple[str, str, str, int]]) -> bool:
        holds = {r[1] for r in entries if r[2] == "hold"}
        done = {r[1] for r in entries if r[2] != "hold"}
        return holds <= done

    deadline = trio.current_time() + timeout
    last: list[tuple[str, str, str, int]] | None = None
    since = trio.current_time()
    while True:
        entries = await read(url, rows)
        now = trio.current_time()
        if entries != last:
            last, since = entries, now
        if (closed(entries) and now - since >= quiet) or now > deadline:
            return entries
        await trio.sleep(0.05)


# ---- relay.toml -------------------------------------------------------------------------------------------


def toml_value(value: object) -> str:
    """A TOML literal for a string, number, boolean or list of those (JSON's forms are TOML's)."""
    return json.dumps(value)


def relay_toml(
    store_url: str,
    *,
    channels: str,
    keys: str,
    server: str = "",
    routing: str = "",
    store: str = "",
    limits: str = "",
    top: str = "",
    prices: str = PRICES,
) -> str:
    return f"""
{top}
[server]
listen = "127.0.0.1:0"
access_log = false
{server}

[limits]
shutdown_grace = 10.0
{limits}

[store]
url = "{store_url}"
key_refresh = 0.2
log_interval = 0.05
{store}

[routing]
{routing}

{prices}
{channels}
{keys}
"""


def mock_channel(
    name: str,
    *,
    models: tuple[str, ...] = ("mock-*",),
    priority: int = 0,
    group: str = "default",
    multiplier: float = 1.0,
    chunks: int = 8,
    chunk_delay: float = 0.0,
) -> str:
    """An in-process mock channel (``type = "mock"``)."""
    return f"""
[[channels]]
name = "{name}"
type = "mock"
models = {toml_value(list(models))}
priority = {priority}
group = "{group}"
price_multiplier = {multiplier}
[channels.mock]
chunks = {chunks}
chunk_delay = {chunk_delay}
"""


def openai_channel(
    name: str,
    base_url: str,
    *,
    priority: int = 0,
    api_keys: tuple[str, ...] = ("sk-upstream",),
    models: tuple[str, ...] = ("mock-*",),
    first_byte: float = 5.0,
) -> str:
    """An ``openai`` channel to the server at ``base_url`` (``http://host:port``; its ``/v1`` is added)."""
    return f"""
[[channels]]
name = "{name}"
type = "openai"
base_url = "{base_url}/v1"
api_keys = {toml_value(list(api_keys))}
models = {toml_value(list(models))}
priority = {priority}
[channels.timeouts]
connect = 2.0
first_byte = {first_byte}
idle = 5.0
"""


def key_entry(name: str, key: str, **fields: object) -> str:
    lines = [f"{field} = {toml_value(value)}" for field, value in fields.items() if value is not None]
    return "\n".join(["[[keys]]", f'name = "{name}"', f'key = "{key}"', *lines]) + "\n"


def write_toml(tmp_path: Path, text: str, name: str = "relay.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- clients ----------------------------------------------------------------------------------------------


def chat_body(content: str = "hello", model: str = "mock-1", **extra: Any) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}], **extra}).encode()


async def post(
    base: str, path: str, body: bytes, *, key: str | None = KEY, headers: dict[str, str] | None = None
) -> RawResponse:
    """One POST on a fresh connection (so concurrent calls are separate connections)."""
    head = {"content-type": "application/json", **(headers or {})}
    if key is not None and not any(h in head for h in ("x-api-key", "x-goog-api-key")):
        head["authorization"] = f"Bearer {key}"
    return await raw_request(base, "POST", path, headers=head, body=body)


async def chat(base: str, content: str = "hello", *, key: str | None = KEY, **extra: Any) -> RawResponse:
    return await post(base, "/v1/chat/completions", chat_body(content, **extra), key=key)


def cost(usage: dict[str, Any], multiplier: float = 1.0) -> int:
    """What a Chat Completions ``usage`` costs at the mock prices, in micro-credits."""
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0) or 0
    micros = (
        (usage["prompt_tokens"] - cached) * INPUT_PRICE
        + cached * CACHED_PRICE
        + usage["completion_tokens"] * OUTPUT_PRICE
    )
    return round(micros * multiplier)


# ---- subprocesses ----------------------------------------------------------------------------------------


@contextmanager
def relay_serve(config: Path, *, workers: int = 1) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``relay serve`` (``--workers N``) on a free port, its stderr in ``relay.log`` beside the config; yields
    the process and its base URL."""
    log = config.parent / f"{config.stem}.log"
    with (
        log.open("w") as stderr,
        process(
            "serve", "--config", str(config), "--listen", "127.0.0.1:0", "--workers", str(workers), stderr=stderr
        ) as (proc, address),
    ):
        yield proc, f"http://{address}"


async def terminate(proc: subprocess.Popen[str], timeout: float = 20.0) -> int:
    """SIGTERM, then the exit status once it has exited (polled without blocking the event loop)."""
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"relay did not stop within {timeout}s of SIGTERM")
        await trio.sleep(0.05)
    return proc.returncode


async def relay_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``python -m relay ARGS`` to completion, off the event loop."""
    return await trio.run_process(
        [sys.executable, "-m", "relay", *args], capture_stdout=True, capture_stderr=True, check=False
    )


async def minute_guard(margin: float = 4.0) -> None:
    """Sleep past the next minute boundary when fewer than ``margin`` seconds are left before it: the
    rate-limit windows are whole minutes."""
    left = 60 - time.time() % 60
    if left < margin:
        await trio.sleep(left + 0.1)

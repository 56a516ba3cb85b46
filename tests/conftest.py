"""Shared fixtures: Relay served in-process on a real loopback socket, and servers as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO

import attrs
import pytest
import trio
from hypothesis import HealthCheck, settings

from relay.app import Relay
from relay.config import Config, loads
from relay.http.connection import App, Shutdown
from relay.http.limits import Limits
from relay.http.server import bind_socket, make_listener, serve

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-relay-test-key"

# Property tests: a few examples each in the suite, many with ``pytest --fuzz`` (for long runs).
settings.register_profile("relay", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz", action="store_true", help="run the property tests with 5,000 examples each")


def pytest_configure(config: pytest.Config) -> None:
    settings.load_profile("fuzz" if config.getoption("--fuzz") else "relay")


#: What a test run may leave in the repository: caches, never a store or a file of a test's.
_LEFT_BY_TOOLS = {".pytest_cache", ".hypothesis", ".ruff_cache", "__pycache__"}


def _repository_files() -> set[Path]:
    return {
        path.relative_to(ROOT)
        for path in ROOT.rglob("*")
        if ".git" not in path.parts and not _LEFT_BY_TOOLS.intersection(path.parts) and ".egg-info" not in str(path)
    }


@pytest.fixture(scope="session", autouse=True)
def _outside_the_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test runs in a temporary working directory, so a relative path (``sqlite:///relay.db``, the default
    store) lands there, never in the repository or the user's store; and the run fails if a file appeared in the
    repository anyway."""
    before = _repository_files()
    home = tmp_path_factory.mktemp("cwd")
    previous = os.getcwd()
    os.chdir(home)
    try:
        yield home
    finally:
        os.chdir(previous)
    appeared = sorted(str(path) for path in _repository_files() - before)
    if appeared:
        pytest.fail(f"the tests wrote into the repository: {', '.join(appeared[:10])}", pytrace=False)


BASE_CONFIG = f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "sqlite://:memory:"

[[channels]]
name = "mock"
type = "mock"
models = ["mock-*"]
[channels.model_map]
fast = "mock-1"

[[keys]]
name = "test"
key = "{KEY}"
"""


@attrs.define
class Served:
    """A server running in this test's nursery."""

    host: str
    port: int
    shutdown: Shutdown
    app: App
    done: trio.Event

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


POSTGRES_ENV = "RELAY_TEST_POSTGRES_URL"


@contextmanager
def postgres_schema(prefix: str = "relay_test") -> Iterator[str]:
    """A store URL on a fresh PostgreSQL schema of the server at RELAY_TEST_POSTGRES_URL, dropped afterwards;
    the test skips, saying why, when that variable is not set."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL backend: set {POSTGRES_ENV}=postgresql://postgres@127.0.0.1:5432/test to run")
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store, once per backend: a SQLite file in tmp_path, or a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/relay.db"
        return
    with postgres_schema() as url:
        yield url


@asynccontextmanager
async def serve_app(app: App, limits: Limits | None = None) -> AsyncIterator[Served]:
    """Serve ``app`` on 127.0.0.1:<free port> for the body of the ``async with``."""
    limits = limits or Limits()
    sock = bind_socket("127.0.0.1", 0, reuse_port=False, listen=True, backlog=128)
    port = sock.getsockname()[1]
    shutdown = Shutdown()
    done = trio.Event()

    async def run(task_status: trio.TaskStatus[None]) -> None:
        try:
            await serve(app, [make_listener(sock)], limits, shutdown, task_status=task_status)
        finally:
            done.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(run)
        try:
            yield Served("127.0.0.1", port, shutdown, app, done)
        finally:
            shutdown.begin()
            with trio.move_on_after(5):
                await done.wait()
            nursery.cancel_scope.cancel()


def config_from(text: str = BASE_CONFIG, **limits: object) -> Config:
    config = loads(textwrap.dedent(text))
    if limits:
        config = attrs.evolve(config, limits=attrs.evolve(config.limits, **limits))
    return config


@asynccontextmanager
async def serve_relay(config: Config | None = None) -> AsyncIterator[Served]:
    config = config or config_from()
    async with Relay(config).running() as app, serve_app(app, config.limits) as served:
        yield served


@contextmanager
def process(
    *args: str, env: dict[str, str] | None = None, stderr: IO[str] | int = subprocess.DEVNULL, new_session: bool = False
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python -m relay ARGS`` as its own process; yields it and its ``HOST:PORT`` once it listens.

    ``new_session``: a session of its own, so ``os.killpg(proc.pid, …)`` is a terminal's Ctrl-C,
    reaching every process of the group and none of the test's.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=new_session,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            proc.kill()
            raise RuntimeError(f"relay {' '.join(args)} did not start: {line!r}")
        yield proc, line.split("listening on", 1)[1].split()[0]
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def mock_upstream() -> Iterator[str]:
    """``relay mock-upstream`` as a separate server; yields its base URL (``http://host:port``)."""
    with process("mock-upstream", "--port", "0", "--quiet") as (_, address):
        yield f"http://{address}"


def openai_channel_toml(
    base_url: str,
    *,
    extra: str = "",
    server: str = "access_log = false",
    key_models: str = '["mock-*", "fast", "gpt-4o-mini"]',
    store: str = "sqlite://:memory:",
) -> str:
    """A relay.toml whose channel is the OpenAI-compatible upstream at ``base_url`` (its /v1 is added)."""
    return f"""
[server]
listen = "127.0.0.1:0"
{server}

[store]
url = "{store}"

# Tests provoke upstream errors on purpose: its one key must not rest nor its breaker open between them.
[routing]
key_rest = 0.001
breaker_failures = 1000

[[channels]]
name = "upstream"
type = "openai"
base_url = "{base_url}/v1"
api_key = "sk-upstream"
models = ["mock-*", "gpt-4o-mini"]
[channels.model_map]
fast = "mock-1"
{extra}

[[keys]]
name = "test"
key = "{KEY}"
models = {key_models}
"""


def openai_channel_config(base_url: str, *, extra: str = "") -> Config:
    """``openai_channel_toml`` loaded."""
    return config_from(openai_channel_toml(base_url, extra=extra))

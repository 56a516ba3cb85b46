"""relay.toml read again while serving: SIGHUP to ``relay serve`` (one process, and the supervisor of ``--workers 2``)
and ``relay reload``, in front of ``relay mock-upstream``. A new model is served, a stream in flight finishes intact,
a broken file is refused with every problem logged while the old configuration keeps serving, and settings that
need a restart are named as not applied."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import postgres_schema, process
from tests.helpers import MOCK_ARGS
from tests.test_store_channels import ADMIN, RELAY_KEY, admin, chat, everywhere

PROMPT = "Tell me a story. mock:delay_ms=150"


def relay_toml(upstream: str, store: str, models: str = '"first-*"', extra: str = "") -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
key_refresh = 0.2
log_interval = 0.05

[[channels]]
name = "main"
type = "openai"
base_url = "{upstream}/v1"
models = [{models}]

[[keys]]
name = "user"
key = "{RELAY_KEY}"

[[admin_keys]]
name = "root"
key = "{ADMIN}"
{extra}
"""


BROKEN = """
[server]
listen = "127.0.0.1:0"

[[channels]]
name = "main"
type = "openai-ish"
models = []
weight = 0
colour = "blue"
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with process(*MOCK_ARGS) as (_, address):
        yield f"http://{address}"


class Served:
    """A ``relay serve`` of a relay.toml in ``root``; its stderr in ``root/relay.log``."""

    def __init__(self, root: Path, upstream: str, store: str) -> None:
        self.root, self.upstream, self.store = root, upstream, store
        self.config = root / "relay.toml"
        self.log = root / "relay.log"
        self.pid_file = root / "relay.pid"
        self.base = ""
        self.proc: subprocess.Popen[str] | None = None

    def write(self, text: str | None = None, **fields: str) -> None:
        self.config.write_text(text if text is not None else relay_toml(self.upstream, self.store, **fields))

    def hup(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGHUP)

    def logged(self, text: str, within: float = 10.0) -> str:
        deadline = time.monotonic() + within
        while text not in (found := self.log.read_text()):
            assert time.monotonic() < deadline, f"{text!r} not in the log:\n{found}"
            time.sleep(0.05)
        return found


Serve = Callable[..., AbstractContextManager[Served]]


@pytest.fixture
def serve(tmp_path: Path, upstream: str) -> Serve:
    """``relay serve`` of tmp_path's relay.toml with extra arguments (and a store URL), as a context manager."""

    @contextmanager
    def started(*args: str, store: str | None = None) -> Iterator[Served]:
        served = Served(tmp_path, upstream, store or f"sqlite:///{tmp_path}/relay.db")
        served.write()
        command = ("serve", "--config", str(served.config), "--pid-file", str(served.pid_file), *args)
        with served.log.open("w") as sink, process(*command, stderr=sink) as (proc, address):
            served.proc, served.base = proc, f"http://{address}"
            yield served

    return started


@pytest.fixture
def served(serve: Serve) -> Iterator[Served]:
    with serve() as served:
        yield served


def test_sighup_leaves_the_server_running(served: Served) -> None:
    everywhere(served.base, "first-1", 200)
    served.hup()
    served.logged("reloaded")
    assert served.proc is not None and served.proc.poll() is None
    everywhere(served.base, "first-1", 200)


def test_sighup_serves_a_new_model(served: Served) -> None:
    everywhere(served.base, "second-1", 404)
    served.write(models='"first-*", "second-*"')
    served.hup()
    everywhere(served.base, "second-1", 200)
    assert chat(served.base, "second-1").json()["model"] == "second-1"


def test_a_stream_in_flight_finishes_intact(served: Served) -> None:
    client = openai.OpenAI(base_url=served.base + "/v1", api_key=RELAY_KEY, max_retries=0)

    def story(during: object = None) -> tuple[str, str | None]:
        text, finish = "", None
        stream = client.chat.completions.create(
            model="first-1", stream=True, messages=[{"role": "user", "content": PROMPT}]
        )
        for index, chunk in enumerate(stream):
            if index == 1 and callable(during):
                during()
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
        return text, finish

    whole, finish = story()
    assert whole and finish == "stop"

    def reload_without_the_channel() -> None:  # the stream's own channel and its origin go away mid-stream
        served.write(relay_toml(served.upstream.replace("127.0.0.1", "localhost"), served.store, '"other-*"'))
        served.hup()
        served.logged("reloaded")

    assert story(reload_without_the_channel) == (whole, "stop")
    everywhere(served.base, "first-1", 404)
    everywhere(served.base, "other-1", 200)


def test_a_broken_file_is_refused_and_the_old_one_keeps_serving(served: Served) -> None:
    served.write(BROKEN)
    served.hup()
    log = served.logged("reload refused")
    for problem in (
        "channels[0].type: must be one of",
        "channels[0].colour: unknown key",
        "channels[0].models: list at least one model",
        "channels[0].weight: must be at least 1",
    ):
        assert problem in log, log
    assert "the configuration in force keeps serving" in log
    everywhere(served.base, "first-1", 200)
    assert served.proc is not None and served.proc.poll() is None
    # fixed, it is taken at the next reload
    served.write(models='"fixed-*"')
    served.hup()
    everywhere(served.base, "fixed-1", 200)
    everywhere(served.base, "first-1", 404)


def test_settings_that_need_a_restart_are_named(served: Served) -> None:
    served.write(extra="\n[upstream]\nmax_connections = 7\n", models='"first-*", "late-*"')
    text = served.config.read_text().replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:1"')
    served.write(text)
    served.hup()
    log = served.logged("reloaded")
    assert "server.listen changed: not applied until Relay restarts" in log
    assert "[upstream] changed: not applied until Relay restarts" in log
    everywhere(served.base, "late-1", 200)  # what may change live did


def relay_reload(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay", "reload", *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_relay_reload(served: Served) -> None:
    assert int(served.pid_file.read_text()) == served.proc.pid  # type: ignore[union-attr]
    served.write(models='"first-*", "by-command-*"')
    done = relay_reload("--config", str(served.config), "--pid-file", str(served.pid_file))
    assert done.returncode == 0, done.stderr
    assert str(served.proc.pid) in done.stdout  # type: ignore[union-attr]
    everywhere(served.base, "by-command-1", 200)

    served.write(BROKEN)  # checked first: nothing is sent, and the command says why
    refused = relay_reload("--config", str(served.config), "--pid-file", str(served.pid_file))
    assert refused.returncode == 2 and "channels[0].weight: must be at least 1" in refused.stderr
    assert "reload refused" not in served.log.read_text()  # the server got no signal
    everywhere(served.base, "by-command-1", 200)

    missing = relay_reload("--config", str(served.config), "--pid-file", str(served.root / "nothing.pid"))
    assert missing.returncode == 2 or missing.returncode == 1


def test_relay_reload_without_a_pid_file_says_so(tmp_path: Path, upstream: str) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(relay_toml(upstream, f"sqlite:///{tmp_path}/relay.db"))
    done = relay_reload("--config", str(config))
    assert done.returncode == 2 and "pid_file" in done.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_workers_all_reload_on_one_sighup(serve: Serve, backend: str) -> None:
    def run(store: str | None) -> None:
        with serve("--workers", "2", store=store) as served:
            everywhere(served.base, "fleet-1", 404)
            served.write(models='"first-*", "fleet-*"')
            served.hup()  # to the supervisor, which passes it on to each worker
            everywhere(served.base, "fleet-1", 200)
            assert served.log.read_text().count("reloaded") == 2  # one line per worker
            assert served.proc is not None and served.proc.poll() is None
            # a store channel made meanwhile stays through a reload of the file
            table = {"name": "kept", "type": "mock", "models": ["kept-*"]}
            assert admin(served.base, "POST", "/channels", json=table).status_code == 201
            served.hup()
            deadline = time.monotonic() + 10
            while served.log.read_text().count("reloaded") < 4:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            everywhere(served.base, "kept-1", 200)
            everywhere(served.base, "fleet-1", 200)

    if backend == "sqlite":
        run(None)
    else:
        with postgres_schema("relay_h1_reload") as url:
            run(url)


def test_reloaded_prices_apply_to_new_requests(served: Served) -> None:
    prices = '\n[[prices]]\nmodel = "first-*"\ninput = 1000000\noutput = 1000000\n'
    served.write(extra=prices)
    served.hup()
    served.logged("reloaded")
    chat(served.base, "first-1").raise_for_status()

    def costed() -> bool:
        rows = admin(served.base, "GET", "/requests", params={"model": "first-1", "limit": 1}).json()["data"]
        return bool(rows) and rows[0]["cost_micros"] > 0

    deadline = time.monotonic() + 10
    while not costed():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert httpx.get(served.base + "/admin/v1/prices", headers={"authorization": f"Bearer {ADMIN}"}).json()["data"]


def test_a_request_keeps_its_snapshot_and_unchanged_channels_keep_their_breakers(tmp_path: Path) -> None:
    """In process: a reload swaps the configuration under a running request, which keeps what it started with."""
    import trio

    from relay.app import Relay
    from relay.config import load

    def write(*channels: str) -> None:
        tables = "".join(f'[[channels]]\nname = "{name}"\ntype = "mock"\nmodels = ["{name}-*"]\n' for name in channels)
        path.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/relay.db"\n{tables}')

    path = tmp_path / "relay.toml"
    write("a", "b")

    async def main() -> None:
        relay = Relay(load(path), str(path))
        async with relay.running():
            breaker = relay.gateway.router.breaker("a")
            with relay.gateway.current.pinned():
                started = relay.channels
                write("a", "c")
                assert await relay.live.reload_file()
                assert relay.channels is started and set(relay.channels) == {"a", "b"}  # the request's own
                assert relay.gateway.router.plan("b-1", "default")[0].channel.name == "b"
            assert set(relay.channels) == {"a", "c"}  # the next request's
            assert relay.channels["a"] is started["a"] and relay.gateway.router.breaker("a") is breaker
            write("a", "c", "a")  # a duplicate name: refused, nothing changes
            assert not await relay.live.reload_file()
            assert set(relay.channels) == {"a", "c"}

    trio.run(main)


def test_a_relay_toml_channel_shadows_a_store_channel_of_its_name(served: Served) -> None:
    table = {"name": "shadow", "type": "mock", "models": ["shadow-*"]}
    assert admin(served.base, "POST", "/channels", json=table).status_code == 201
    everywhere(served.base, "shadow-1", 200)
    served.write(extra='\n[[channels]]\nname = "shadow"\ntype = "mock"\nmodels = ["toml-shadow-*"]\n')
    served.hup()
    served.logged("store channel 'shadow' not used")
    everywhere(served.base, "toml-shadow-1", 200)
    everywhere(served.base, "shadow-1", 404)
    both = [c for c in admin(served.base, "GET", "/channels").json()["data"] if c["name"] == "shadow"]
    assert [(c["source"], c["in_force"]) for c in both] == [("config", True), ("store", False)]
    assert "relay.toml has a channel named 'shadow'" in both[1]["problems"][0]
    assert both[1]["models"] == ["shadow-*"] and both[1]["breaker"] is None
    # the store one can still be changed and deleted; then the name is relay.toml's alone (read-only)
    patched = admin(served.base, "PATCH", "/channels/shadow", json={"weight": 3})
    assert patched.status_code == 200 and patched.json()["source"] == "store", patched.text
    assert admin(served.base, "DELETE", "/channels/shadow").json() == {"name": "shadow", "deleted": True}
    assert admin(served.base, "DELETE", "/channels/shadow").status_code == 409
    everywhere(served.base, "toml-shadow-1", 200)


def test_the_pid_file_of_relay_toml_is_relative_to_it(tmp_path: Path, upstream: str) -> None:
    config = tmp_path / "relay.toml"
    store = f"sqlite:///{tmp_path}/relay.db"
    text = relay_toml(upstream, store).replace("access_log = false", 'access_log = false\npid_file = "x.pid"')
    config.write_text(text)
    with process("serve", "--config", str(config)) as (proc, address):
        assert int((tmp_path / "x.pid").read_text()) == proc.pid
        config.write_text(config.read_text().replace('models = ["first-*"]', 'models = ["first-*", "pid-*"]'))
        done = relay_reload("--config", str(config))  # the pid file from relay.toml
        assert done.returncode == 0, done.stderr
        everywhere(f"http://{address}", "pid-1", 200)
    assert not (tmp_path / "x.pid").exists()  # removed at the end

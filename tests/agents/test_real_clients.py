"""The real Codex CLI and Claude Code against Relay and the mock upstream: 16 runs (``runner.py``), one test each.

They need the two CLIs, which the suite does not install (docs/testing.md says why): set ``RELAY_AGENTS_BIN`` to
a folder holding the ``codex`` and ``claude`` commands, e.g. the one
``tests/agents/run_real_clients.sh --install-only --install-dir DIR`` prints. Without it they skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.agents.clients import CASES, CLIENTS, Client
from tests.agents.runner import CHANNELS, RUN_TIMEOUT, Channel, Environment, environment, run_one

BIN_ENV = "RELAY_AGENTS_BIN"
INSTALL = "tests/agents/run_real_clients.sh --install-only --install-dir DIR"


def agents_bin() -> Path:
    value = os.environ.get(BIN_ENV)
    if not value:
        pytest.skip(f"the real agent CLIs: set {BIN_ENV} to the folder `{INSTALL}` prints")
    folder = Path(value)
    missing = [name for name in ("codex", "claude") if not (folder / name).exists()]
    if missing:
        pytest.skip(f"{BIN_ENV}={folder} lacks {', '.join(missing)}: install them with `{INSTALL}`")
    return folder


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Environment, Path]]:
    folder = agents_bin()
    with environment(tmp_path_factory.mktemp("agents")) as env:
        yield env, folder


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("channel", CHANNELS, ids=[channel.dialect for channel in CHANNELS])
@pytest.mark.parametrize("client", CLIENTS, ids=[client.name for client in CLIENTS])
def test_real_client(agents: tuple[Environment, Path], client: Client, channel: Channel, case: str) -> None:
    env, folder = agents
    result = trio.run(run_one, client, channel, case, env, folder)
    if not result.passed:
        where = f"stdout, stderr, exchanges: {result.folder}; Relay's log: {env.relay_log}"
        pytest.fail(f"{result.outcome}: {result.detail} ({where})", pytrace=False)

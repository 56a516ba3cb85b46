"""The LiteLLM proxy as a target: a pinned version in a venv of its own, configured for the neutral mock.

Version: 1.108.7 by default (``litellm:version=X``). The newer 1.109 and 1.110 releases' ``[proxy]`` extra
requires ``litellm-proxy-extras`` 0.4.113+ and ``litellm-proxy`` releases that the package index this was built
with does not have; 1.108.7 is the newest whose ``litellm[proxy]`` installs from it.

Set-up (cached under ``<cache>/litellm-<version>/``): ``python -m venv`` and ``pip install "litellm[proxy]==V"``.
Configuration (``litellm.yaml`` in the run's folder, written as JSON, which YAML reads): one ``model_list`` entry
per route and shape, the same model names as Relay's (``chat.bench-S`` -> ``openai/bench-S`` at the mock's
``/v1``; ``responses.bench-S`` -> ``openai/responses/bench-S``, LiteLLM's bridge to the Responses API;
``anthropic.bench-S`` -> ``anthropic/bench-S`` and ``gemini.bench-S`` -> ``gemini/bench-S`` at the mock's
root). For speed, as LiteLLM's production guide advises: no database (no ``database_url``: no spend logs, no key
table), ``disable_spend_logs``, ``disable_error_logs``, ``turn_off_message_logging``, ``set_verbose: false``,
``LITELLM_LOG=ERROR``, and the local model cost map (``LITELLM_LOCAL_MODEL_COST_MAP=True``: no fetch at
start). A ``master_key`` is set, so clients authenticate as with Relay. ``--num_workers`` as given (1).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench.neutral import NeutralMock
from bench.neutral.wire import SHAPES
from bench.procs import BenchError, Server
from bench.targets.process import PolledServer, errors_of, free_port
from bench.targets.target import Target, process_tree, standard_routes

VERSION = "1.108.7"
KEY = "sk-bench-litellm"
INSTALL_TIMEOUT = 1200.0


def install(version: str, cache: Path) -> Path:
    """The ``litellm`` executable of ``version``, installed into ``<cache>/litellm-<version>/venv`` once."""
    home = cache / f"litellm-{version}"
    executable = home / "venv" / "bin" / "litellm"
    if (home / "ready").exists() and executable.exists():
        return executable
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    steps = (
        [sys.executable, "-m", "venv", str(home / "venv")],
        [str(home / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", f"litellm[proxy]=={version}"],
    )
    for argv in steps:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"litellm {version}: {argv[2]} took over {INSTALL_TIMEOUT:.0f} s") from exc
        if done.returncode != 0:
            raise BenchError(f"litellm {version}: {' '.join(argv[2:])} failed: {errors_of(done.stderr or done.stdout)}")
    (home / "ready").write_text(version + "\n", encoding="utf-8")
    return executable


def config(mock: NeutralMock) -> dict[str, object]:
    base = mock.base_url
    models: list[dict[str, object]] = []
    for shape in SHAPES:
        name = f"bench-{shape}"
        for public, model, api_base in (
            (f"chat.{name}", f"openai/{name}", f"{base}/v1"),
            (f"responses.{name}", f"openai/responses/{name}", f"{base}/v1"),
            (f"anthropic.{name}", f"anthropic/{name}", base),
            (f"gemini.{name}", f"gemini/{name}", base),
        ):
            params = {"model": model, "api_base": api_base, "api_key": "sk-bench-upstream"}
            models.append({"model_name": public, "litellm_params": params})
    return {
        "model_list": models,
        "litellm_settings": {"set_verbose": False, "turn_off_message_logging": True, "telemetry": False},
        "general_settings": {"master_key": KEY, "disable_spend_logs": True, "disable_error_logs": True},
    }


def start(
    name: str,
    mock: NeutralMock,
    workdir: Path,
    cache: Path,
    *,
    version: str,
    workers: int,
    cpus: set[int] | None,
    servers: list[Server],
    configured: dict[str, object],
) -> Target:
    executable = install(version, cache)
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    document = config(mock)
    path = folder / "litellm.yaml"
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    port = free_port()
    argv = [str(executable), "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--num_workers", str(workers)]
    env = {"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
    server = PolledServer(name, argv, port, cpus, folder, cwd=folder, env=env)
    servers.append(server)
    server.start(timeout=180.0)
    configured.update(
        {
            "version": f"litellm[proxy]=={version}",
            "venv": str(executable.parent.parent),
            "workers": workers,
            "logging": "LITELLM_LOG=ERROR, set_verbose off, message logging off, spend and error logs off",
            "database": "none (no database_url)",
            "config": document,
            "environment": env,
            "argv": argv[1:],
        }
    )
    return Target(
        name=name,
        kind="litellm",
        base_url=f"http://127.0.0.1:{port}",
        api_key=KEY,
        model="chat.bench-fixed",
        dialect="openai_chat",
        dialects=(),
        pids=process_tree(server.pid),
        configured=configured,
        routes=standard_routes(),
    )

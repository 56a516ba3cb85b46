"""The Portkey gateway as a target: ``@portkey-ai/gateway`` from npm, pinned, run with node.

Version: 1.15.2 by default (``portkey:version=X``), installed once into ``<cache>/portkey-<version>/`` with
``npm install`` from a package.json that pins it and overrides ``@hono/node-server`` to 1.13.8: the gateway asks
for ``^1.3.3``, and from 1.14 on that package's lightweight ``Response`` hands back a fetch response's immutable
headers, on which the gateway's streaming path calls ``append`` ("TypeError: immutable"): every streamed answer
failed with ``{"status":"failure","message":"Something went wrong"}``.

Started as ``node build/start-server.js --port=P --headless``, as its README does, with no configuration file:
Portkey is configured per request, by headers. Each route sends ``x-portkey-provider`` (``openai`` for the Chat
and Responses upstreams, ``anthropic``, ``google``) and ``x-portkey-custom-host`` (the neutral mock's URL, with
``/v1`` for the OpenAI and Anthropic providers, without for Google); the client's key is passed to the
provider as is. Gemini clients go through its pass-through path ``/v1/proxy/models/...``. The model is the mock's
own ``bench-<shape>``. Portkey has no database and logs nothing per request in this mode.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from bench.neutral import NeutralMock
from bench.procs import BenchError, Server
from bench.targets.process import PolledServer, errors_of, free_port
from bench.targets.target import Route, Target, process_tree

VERSION = "1.15.2"
HONO_NODE_SERVER = "1.13.8"
KEY = "sk-bench-upstream"
INSTALL_TIMEOUT = 600.0
#: Which upstreams each client dialect is tried against (verification keeps those that work).
CANDIDATES = {
    "openai_chat": ("openai_chat", "anthropic", "gemini"),
    "openai_responses": ("openai_responses", "anthropic", "gemini"),
    "anthropic": ("anthropic", "openai_chat"),
    "gemini": ("gemini",),
}


def install(version: str, cache: Path) -> Path:
    """The gateway's ``start-server.js`` of ``version``, installed under ``<cache>/portkey-<version>/`` once."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise BenchError("node and npm not found: apt-get install nodejs npm (Node 20 or later) runs Portkey")
    home = cache / f"portkey-{version}"
    script = home / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    if (home / "ready").exists() and script.exists():
        return script
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    package = {
        "private": True,
        "dependencies": {"@portkey-ai/gateway": version},
        "overrides": {"@hono/node-server": HONO_NODE_SERVER},
    }
    (home / "package.json").write_text(json.dumps(package, indent=2), encoding="utf-8")
    try:
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=home,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"portkey {version}: npm install took over {INSTALL_TIMEOUT:.0f} s") from exc
    if done.returncode != 0 or not script.exists():
        raise BenchError(f"portkey {version}: npm install failed: {errors_of(done.stderr or done.stdout)}")
    (home / "ready").write_text(version + "\n", encoding="utf-8")
    return script


def routes(mock: NeutralMock) -> dict[str, dict[str, Route]]:
    base = mock.base_url
    providers = {
        "openai_chat": ("openai", f"{base}/v1"),
        "openai_responses": ("openai", f"{base}/v1"),
        "anthropic": ("anthropic", f"{base}/v1"),
        "gemini": ("google", base),  # Portkey appends /v1beta/models/... (its pass-through path: /models/...)
    }
    out: dict[str, dict[str, Route]] = {}
    for client, upstreams in CANDIDATES.items():
        out[client] = {}
        for upstream in upstreams:
            provider, host = providers[upstream]
            headers = {"x-portkey-provider": provider, "x-portkey-custom-host": host}
            prefix = "/v1/proxy" if client == "gemini" else "/v1beta"
            out[client][upstream] = Route("bench-{shape}", headers, prefix)
    return out


def start(
    name: str,
    mock: NeutralMock,
    workdir: Path,
    cache: Path,
    *,
    version: str,
    cpus: set[int] | None,
    servers: list[Server],
    configured: dict[str, object],
) -> Target:
    script = install(version, cache)
    node = shutil.which("node")
    assert node is not None  # install() checked
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [node, str(script), f"--port={port}", "--headless"]
    server = PolledServer(name, argv, port, cpus, folder, cwd=script.parent.parent)
    servers.append(server)
    server.start(timeout=60.0)
    configured.update(
        {
            "version": f"@portkey-ai/gateway@{version} (@hono/node-server {HONO_NODE_SERVER}), node {node_version}",
            "install": str(script.parent.parent),
            "workers": "1 (one node process)",
            "logging": "none per request (headless, no configuration)",
            "database": "none",
            "routing": "x-portkey-provider and x-portkey-custom-host headers per route",
            "argv": argv[1:],
        }
    )
    return Target(
        name=name,
        kind="portkey",
        base_url=f"http://127.0.0.1:{port}",
        api_key=KEY,
        model="bench-fixed",
        dialect="openai_chat",
        dialects=(),
        pids=process_tree(server.pid),
        configured=configured,
        routes=routes(mock),
    )

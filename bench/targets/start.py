"""``started``: every target of a run up and verified for the block's duration, those that cannot be skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.neutral import DIALECTS, NeutralMock
from bench.procs import BenchError, Server
from bench.targets import litellm, portkey, relay
from bench.targets.spec import SpecError, TargetSpec
from bench.targets.target import Route, Target, process_tree
from bench.targets.verify import RouteFailed, verify


def cache_dir(given: Path | None = None) -> Path:
    """Where peers and revisions are installed once and reused: ``given``, else ``$RELAY_BENCH_CACHE``, else
    ``~/.cache/relay-bench``."""
    if given is not None:
        return given
    env = os.environ.get("RELAY_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "relay-bench"


def direct(mock: NeutralMock, name: str) -> Target:
    """The neutral mock itself: each dialect natively, the mock's process as the target's."""
    if mock.kind == "c":
        described = {"version": "neutral mock (bench/neutral/cmock.c, built by gcc)", "workers": "1 (one process)"}
    else:
        node = shutil.which("node") or "node"
        version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        described = {
            "version": f"neutral mock (bench/neutral/mock.mjs), node {version}",
            "workers": "1 (one node process)",
        }
    return Target(
        name=name,
        kind="direct",
        base_url=mock.base_url,
        api_key="sk-bench-direct",
        model="bench-fixed",
        dialect="openai_chat",
        dialects=DIALECTS,
        pids=[mock.pid],
        configured={
            **described,
            "logging": "none",
            "database": "none",
        },
        routes={d: {d: Route("bench-{shape}")} for d in DIALECTS},
    )


def url(spec: TargetSpec) -> Target:
    dialect, model = spec.options["dialect"], spec.options["model"]
    return Target(
        name=spec.name,
        kind="url",
        base_url=spec.options["url"].rstrip("/"),
        api_key=spec.options.get("key", ""),
        model=model,
        dialect=dialect,
        dialects=(dialect,),
        pids=[],
        configured={"version": "unknown (a remote endpoint)", "model": model, "notes": "its processes are not ours"},
        routes={dialect: {dialect: Route(model)}},
    )


def _start(
    spec: TargetSpec, mock: NeutralMock, workdir: Path, cache: Path, cpus: set[int] | None, servers: list[Server]
) -> Target:
    configured: dict[str, object] = {"spec": spec.kind + (f"@{spec.rev}" if spec.rev else "")}
    if spec.kind == "direct":
        return direct(mock, spec.name)
    if spec.kind == "url":
        return url(spec)
    if spec.kind == "relay":
        given = spec.get("config")
        if spec.rev:
            python, code = relay.revision(spec.rev, cache, configured)
        else:
            python, code = relay.this_checkout(configured)
        kind = "relay@REV" if spec.rev else "relay"
        return relay.start(
            spec.name,
            kind,
            mock,
            workdir,
            workers=spec.workers(),
            config=Path(given).resolve() if given else None,
            python=python,
            code=code,
            cpus=cpus,
            servers=servers,
            configured=configured,
        )
    if spec.kind == "litellm":
        version = spec.get("version", litellm.VERSION) or litellm.VERSION
        return litellm.start(
            spec.name,
            mock,
            workdir,
            cache,
            version=version,
            workers=spec.workers(),
            cpus=cpus,
            servers=servers,
            configured=configured,
        )
    if spec.kind == "portkey":
        version = spec.get("version", portkey.VERSION) or portkey.VERSION
        return portkey.start(
            spec.name, mock, workdir, cache, version=version, cpus=cpus, servers=servers, configured=configured
        )
    raise SpecError(f"unknown target kind {spec.kind!r}")


@contextmanager
def started(
    specs: list[TargetSpec],
    mock: NeutralMock,
    workdir: Path,
    *,
    cache: Path | None = None,
    cpus: set[int] | None = None,
) -> Iterator[tuple[list[Target], dict[str, str]]]:
    """Every target of ``specs`` set up (peers installed into the cache once), started (pinned to ``cpus`` when
    given, their files in ``workdir``) and verified route by route; yields (the targets, in the specs' order;
    {name: why} of those skipped). Everything started is stopped at the block's end."""
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SpecError(f"two targets named {', '.join(twice)}: give one a name=LABEL")
    home = cache_dir(cache)
    home.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    targets: list[Target] = []
    skipped: dict[str, str] = {}
    try:
        for spec in specs:
            mine = len(servers)
            try:
                target = _start(spec, mock, workdir, home, cpus, servers)
                dropped = verify(target, None if spec.kind == "url" else mock)
            except (BenchError, RouteFailed, SpecError, OSError, subprocess.SubprocessError) as exc:
                skipped[spec.name] = f"{type(exc).__name__}: {exc}"
                for server in servers[mine:]:
                    server.stop()
                del servers[mine:]
                continue
            if target.pids:
                target.pids = process_tree(target.pids[0])  # the workers a supervisor started meanwhile
            routes = target.routes.items()
            target.configured["routes"] = {c: {u: r.model for u, r in ways.items()} for c, ways in routes}
            if dropped:
                target.configured["routes_dropped"] = dropped
            targets.append(target)
        yield targets, skipped
    finally:
        for server in reversed(servers):
            server.stop()

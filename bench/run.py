"""``python -m bench``: Relay's overhead against the mock upstream, side by side, in one run.

Starts the mock upstream and one Relay worker (each its own process, pinned), then runs the load
generator (its own process) through three measurements, each against Relay and against the mock
directly: added latency at concurrency 1, requests per second at concurrency 64, and the time to
the first streamed token. With ``--gateway``, a second Relay whose key has a quota, rate limits and a
price runs beside the plain one (bench/gateway.py). ``--table`` (and ``--baseline REV``, which implies it)
also runs the other lanes (bench/lanes.py: converted, fan-out, memory per stream, workers) for this tree and
the baseline, and prints issue 11's table side by side (bench/table.py). Prints a table, writes
bench/results/latest.json and a timestamped copy. Exits 0 whatever the figures (a missed target is printed,
not failed); 1 when requests or streams failed or the gateway's store lost records; 2 when the benchmark
itself (or one of the table's lanes) could not run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import attack, gateway, host, lanes, profile, table
from bench.http1 import chat_request
from bench.loadgen import BlockingClient
from bench.procs import ROOT, BenchError, Server, describe_pinning, pinning_plan, run_loadgen

RESULTS = ROOT / "bench" / "results"
KEY = "sk-relay-bench-key"
MESSAGE = "Hello from the benchmark."
MOCK_CHUNKS = 8

TARGET_ADDED_P50_MS = 1.0
TARGET_ADDED_P99_MS = 2.0
TARGET_RPS = 1500.0
#: This tree's CPU per request over the baseline revision's (``--baseline``): passthrough within 5%.
TARGET_BASELINE_RATIO = 1.05
#: ``--floor``: bench.floor's two forwarders (bare, and speaking h11), as target names and their flags.
FLOORS: tuple[tuple[str, list[str]], ...] = (("floor", []), ("floor_h11", ["--h11"]))
#: Cores used by foreign processes during a phase above which the run is flagged as noisy.
NOISY_CORES = 0.15


@dataclass(frozen=True)
class Settings:
    quick: bool
    pin: bool
    profile: bool
    concurrency: int
    latency_warmup: int
    latency_requests: int
    ttft_warmup: int
    ttft_requests: int
    throughput_warmup_s: float
    throughput_duration_s: float
    ceiling_duration_s: float
    #: A git revision whose Relay is measured beside this tree's, in the same run (``--baseline``).
    baseline: str | None = None
    #: Also measure a Relay with quota, rate limits and prices on (``--gateway``).
    gateway: bool = False
    #: Its store: None for a SQLite file in the run's folder, else a PostgreSQL URL (``--gateway-store``).
    gateway_store: str | None = None
    #: Print issue 11's table (``--table``; ``--baseline`` implies it), with the lanes in ``lanes``.
    table: bool = False
    lanes: tuple[str, ...] = ()
    #: Also measure bench.floor, a bare trio forwarder: the least any relay on Relay's stack adds (``--floor``).
    floor: bool = False


def settings_from(args: argparse.Namespace) -> Settings:
    quick = args.quick
    table_mode = args.table or bool(args.baseline)
    wanted = lanes_from(args.lanes) if args.lanes is not None else (lanes.LANES if table_mode else ())
    return Settings(
        quick=quick,
        pin=args.pin,
        profile=args.profile,
        concurrency=args.concurrency,
        latency_warmup=200 if quick else 500,
        latency_requests=args.requests or (1000 if quick else 3000),
        ttft_warmup=100 if quick else 300,
        ttft_requests=args.requests or (500 if quick else 2000),
        throughput_warmup_s=1.0 if quick else 2.0,
        throughput_duration_s=args.duration or (3.0 if quick else 10.0),
        ceiling_duration_s=2.0 if quick else 5.0,
        baseline=args.baseline,
        gateway=args.gateway or bool(args.gateway_store) or table_mode,
        gateway_store=args.gateway_store,
        table=table_mode or bool(wanted),
        lanes=wanted,
        floor=args.floor,
    )


def lanes_from(text: str) -> tuple[str, ...]:
    """``--lanes converted,fanout``: the lanes beyond the request lanes; ``none`` for none, ``all`` for all."""
    names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")
    if names == ("all",):
        return lanes.LANES
    unknown = sorted(set(names) - set(lanes.LANES))
    if unknown:
        raise SystemExit(f"--lanes: unknown {', '.join(unknown)} (known: {', '.join(lanes.LANES)}, all, none)")
    return names


def relay_config(mock_port: int, store_url: str | None = None) -> str:
    """This tree's plain Relay; with no ``store_url``, also the baseline's: no section or field an earlier
    revision would refuse (relay.toml rejects unknown keys), so a store only when one is given."""
    store = gateway.store_section(store_url) if store_url else ""
    return f"""# Generated by python -m bench: one worker, no access log, one OpenAI channel to the mock upstream.
[server]
listen = "127.0.0.1:0"
workers = 1
access_log = false
{store}
[[channels]]
name = "mock-upstream"
type = "openai"
base_url = "http://127.0.0.1:{mock_port}/v1"
api_key = "sk-bench-upstream"
models = ["mock-*"]

[[keys]]
name = "bench"
key = "{KEY}"
models = ["*"]
"""


def target(name: str, server: Server, *, stream: bool, key: str = KEY) -> dict[str, Any]:
    request = chat_request(server.host, server.port, key, stream=stream, message=MESSAGE)
    return {"name": name, "host": server.host, "port": server.port, "request": request.decode("latin-1")}


def smoke_check(targets: Sequence[dict[str, Any]], stream: bool, sent: dict[str, int]) -> None:
    """One request per target before measuring: a benchmark of error answers is worthless."""
    for t in targets:
        client = BlockingClient(t["host"], t["port"], t["request"].encode("latin-1"), find_content=stream)
        sample = client.roundtrip()
        sent[t["name"]] += 1
        status = client.reader.status
        client.close()
        if sample is None:
            body = bytes(client.reader.buf[:300]).decode("utf-8", "replace")
            raise BenchError(f"smoke check: {t['name']} answered status {status} (stream={stream}): {body}")


# ---- the run ---------------------------------------------------------------------------------------------


def run(
    settings: Settings,
    plan: dict[str, set[int] | None],
    log_dir: Path,
    servers: list[Server],
    stores: gateway.Stores | None = None,
) -> dict[str, Any]:
    py = sys.executable
    mock_argv = [py, "-m", "relay", "mock-upstream", "--port", "0", "--quiet", "--chunks", str(MOCK_CHUNKS)]
    mock = Server("mock", mock_argv, plan["mock"], log_dir)
    servers.append(mock)
    mock.start()
    config_text = relay_config(mock.port, stores.plain_url if stores else None)
    config_path = log_dir / "relay.toml"
    config_path.write_text(config_text, encoding="utf-8")
    relay = Server("relay", relay_argv(config_path), plan["relay"], log_dir)
    servers.append(relay)
    relay.start()
    pids = {"relay": relay.pid, "mock": mock.pid}
    plain = [target("relay", relay, stream=False), target("direct", mock, stream=False)]
    streamed = [target("relay", relay, stream=True), target("direct", mock, stream=True)]
    outcome: dict[str, Any] = {"relay_toml": config_text, "mock_argv": mock_argv[1:]}
    outcome["relay_argv"] = relay_argv(config_path)[1:]
    if stores is not None:
        gateway_toml = gateway.config(mock.port, stores.gateway_url)
        gateway_path = log_dir / "gateway.toml"
        gateway_path.write_text(gateway_toml, encoding="utf-8")
        gw = Server("gateway", relay_argv(gateway_path), plan["relay"], log_dir)
        servers.append(gw)
        gw.start()
        pids["gateway"] = gw.pid
        plain.append(target("gateway", gw, stream=False, key=gateway.KEY))
        streamed.append(target("gateway", gw, stream=True, key=gateway.KEY))
        outcome["gateway_toml"] = gateway_toml
    if settings.baseline:
        # Its own folder: a store it may keep by default stays apart from this tree's.
        base_config = log_dir / "baseline-config" / "relay.toml"
        base_config.parent.mkdir()
        base_config.write_text(relay_config(mock.port), encoding="utf-8")
        baseline_argv = relay_argv(base_config)
        base_code = export(settings.baseline, log_dir)
        baseline = Server("baseline", baseline_argv, plan["relay"], log_dir, cwd=base_code)
        servers.append(baseline)
        baseline.start()
        pids["baseline"] = baseline.pid
        plain.append(target("baseline", baseline, stream=False))
        streamed.append(target("baseline", baseline, stream=True))
        if stores is not None:
            base_gw = baseline_gateway(mock.port, base_config.parent, base_code, plan["relay"], log_dir, stores)
            if isinstance(base_gw, str):
                outcome["baseline_gateway_skipped"] = base_gw
                step(f"baseline gateway not measured: {base_gw.splitlines()[0]}")
            else:
                servers.append(base_gw)
                pids["baseline_gateway"] = base_gw.pid
                plain.append(target("baseline_gateway", base_gw, stream=False, key=gateway.KEY))
                streamed.append(target("baseline_gateway", base_gw, stream=True, key=gateway.KEY))
    for name, flags in FLOORS if settings.floor else ():
        floor_argv = [py, "-m", "bench.floor", "--upstream", f"{mock.host}:{mock.port}", "--listen", "127.0.0.1:0"]
        floor = Server(name, floor_argv + flags, plan["relay"], log_dir)
        servers.append(floor)
        floor.start()
        pids[name] = floor.pid
        plain.append(target(name, floor, stream=False))
        streamed.append(target(name, floor, stream=True))
    #: Requests sent to each path, the store check's reference (the request log must hold as many).
    sent = {t["name"]: 0 for t in plain}
    outcome["sent"] = sent
    smoke_check(plain, stream=False, sent=sent)
    smoke_check(streamed, stream=True, sent=sent)
    results: dict[str, Any] = {}
    outcome["results"] = results
    # With --gateway, every throughput load counts what it sends (the same generator for every path).
    throughput_runner = gateway.run_counting_loadgen if stores is not None else run_loadgen

    step("1/4 added latency, concurrency 1")
    results["latency"] = run_loadgen(
        {
            "mode": "latency",
            "targets": plain,
            "warmup": settings.latency_warmup,
            "requests": settings.latency_requests,
            "pids": pids,
        },
        plan["loadgen"],
        timeout=600,
    )
    for t in plain:
        sent[t["name"]] += settings.latency_warmup + settings.latency_requests

    step(f"2/4 throughput, concurrency {settings.concurrency}")
    results["throughput"] = {}
    for t in (plain[1], plain[0], *plain[2:]):  # direct first, then through Relay (and its baseline)
        load = throughput_runner(
            throughput_spec(settings, t, pids, settings.throughput_duration_s), plan["loadgen"], timeout=120
        )
        results["throughput"][t["name"]] = load
        sent[t["name"]] += load.get("sent", 0)

    step("3/4 time to first token, concurrency 1")
    results["ttft"] = run_loadgen(
        {
            "mode": "ttft",
            "targets": streamed,
            "warmup": settings.ttft_warmup,
            "requests": settings.ttft_requests,
            "pids": pids,
        },
        plan["loadgen"],
        timeout=600,
    )
    for t in streamed:
        sent[t["name"]] += settings.ttft_warmup + settings.ttft_requests

    step("4/4 load generator ceiling (canned server)")
    canned = Server("canned", [py, "-m", "bench.canned", "--port", "0"], plan["canned"], log_dir)
    servers.append(canned)
    canned.start()
    ceiling_target = {**plain[1], "name": "canned", "host": canned.host, "port": canned.port}
    results["ceiling"] = run_loadgen(
        throughput_spec(settings, ceiling_target, {"canned": canned.pid}, settings.ceiling_duration_s),
        plan["loadgen"],
        timeout=120,
    )
    canned.stop()

    if settings.profile:
        profiled = plain[2] if stores is not None else plain[0]  # the gateway Relay when there is one
        step(f"profile: {profiled['name']} Relay under the concurrency load, py-spy attached")
        results["profile"] = run_profile(settings, profiled, pids, plan, throughput_runner)
        sent[profiled["name"]] += results["profile"].get("load_under_profiler", {}).get("sent", 0)

    for server in servers:
        if server is not canned and not server.alive():
            raise BenchError(f"{server.name} exited during the run: see {server.log_path}")
    return outcome


def baseline_gateway(
    mock_port: int, folder: Path, code: Path, cpus: set[int] | None, log_dir: Path, stores: gateway.Stores
) -> Server | str:
    """The baseline revision's Relay with the gateway's key (quota, limits, a price), its store a SQLite file
    of its own; or why not: a revision from before the gateway refuses the configuration, and with
    ``--gateway-store`` this tree's gateway is on PostgreSQL, which a SQLite baseline would not compare with."""
    if stores.backend != "sqlite":
        return f"the gateway's store is {stores.backend}; the baseline's gateway runs only with the SQLite default"
    config_path = folder / "gateway.toml"
    config_path.write_text(gateway.config(mock_port, f"sqlite:///{folder / 'gateway.db'}"), encoding="utf-8")
    server = Server("baseline_gateway", relay_argv(config_path), cpus, log_dir, cwd=code)
    try:
        return server.start()
    except BenchError as exc:
        return str(exc)


def relay_argv(config_path: Path) -> list[str]:
    return [sys.executable, "-m", "relay", "serve", "--config", str(config_path), "--listen", "127.0.0.1:0"]


def export(revision: str, log_dir: Path) -> Path:
    """The source tree of ``revision`` (``git archive``), for a baseline Relay run from that folder."""
    folder = log_dir / "baseline"
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=False)
    if archive.returncode != 0:
        raise BenchError(f"--baseline {revision}: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def throughput_spec(settings: Settings, t: dict[str, Any], pids: dict[str, int], duration: float) -> dict[str, Any]:
    return {
        "mode": "throughput",
        "targets": [t],
        "concurrency": settings.concurrency,
        "warmup": settings.throughput_warmup_s,
        "duration": duration,
        "pids": pids,
    }


def run_profile(
    settings: Settings,
    profiled: dict[str, Any],
    pids: dict[str, int],
    plan: dict[str, set[int] | None],
    runner: Callable[[dict[str, Any], set[int] | None, float], dict[str, Any]] = run_loadgen,
) -> dict[str, Any]:
    if not profile.available():
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    output = RESULTS / f"profile-{stamp}.txt"
    recorder = profile.Recorder(pids[profiled["name"]], output, plan["profiler"])
    time.sleep(0.5)
    try:
        load = runner(throughput_spec(settings, profiled, pids, settings.throughput_duration_s), plan["loadgen"], 120)
    finally:
        messages = recorder.stop()
    if not output.exists():
        return {"skipped": f"py-spy wrote no profile: {messages.strip()[-500:]}", "load_under_profiler": load}
    return {
        "process": profiled["name"],
        "file": str(output.relative_to(ROOT)),
        "load_under_profiler": load,
        **profile.summarise(output),
    }


def step(text: str) -> None:
    print(f"[bench] {text} ...", file=sys.stderr, flush=True)


# ---- reporting -------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {"commit": git("rev-parse", "HEAD"), "relay_uncommitted": bool(git("status", "--porcelain", "--", "relay"))}


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers: Relay's additions and ratios, from the raw results."""
    lat = results["latency"]["paths"]
    relay_ms, direct_ms = filled(lat["relay"]["latency_ms"]), filled(lat["direct"]["latency_ms"])
    tput = results["throughput"]
    ttft = results["ttft"]["paths"]
    relay_ttft, direct_ttft = filled(ttft["relay"]["ttft_ms"]), filled(ttft["direct"]["ttft_ms"])
    return {
        "added_latency_p50_ms": round(relay_ms["p50"] - direct_ms["p50"], 4),
        "added_latency_p99_ms": round(relay_ms["p99"] - direct_ms["p99"], 4),
        "added_latency_paired_p50_ms": results["latency"]["paired_difference_ms"]["p50"],
        "relay_rps": tput["relay"]["rps"],
        "direct_rps": tput["direct"]["rps"],
        "rps_ratio_relay_to_direct": round(tput["relay"]["rps"] / tput["direct"]["rps"], 3)
        if tput["direct"]["rps"]
        else None,
        "added_ttft_p50_ms": round(relay_ttft["p50"] - direct_ttft["p50"], 4),
        "added_ttft_p99_ms": round(relay_ttft["p99"] - direct_ttft["p99"], 4),
        "relay_cpu_ms_per_request": _cpu_ms_per_request(tput["relay"], "relay"),
        "mock_cpu_ms_per_request": _cpu_ms_per_request(tput["direct"], "mock"),
        "loadgen_cpu_us_per_request": _round(_cpu_ms_per_request(tput["direct"], "loadgen"), 1000),
        "loadgen_ceiling_rps": results["ceiling"]["rps"],
        "max_foreign_load_cores": max((load for _, load in foreign_load(results)), default=None),
        **baseline_figures(results),
        **(gateway.figures(results) if "gateway" in results["throughput"] else {}),
    }


def baseline_figures(results: dict[str, Any]) -> dict[str, Any]:
    """This tree's Relay against the baseline revision's, measured in the same run (empty without one)."""
    if "baseline" not in results["throughput"]:
        return {}
    lat = results["latency"]["paths"]
    base_ms, direct_ms = filled(lat["baseline"]["latency_ms"]), filled(lat["direct"]["latency_ms"])
    base_cpu = _cpu_ms_per_request(results["throughput"]["baseline"], "baseline")
    relay_cpu = _cpu_ms_per_request(results["throughput"]["relay"], "relay")
    base_rps = results["throughput"]["baseline"]["rps"]
    return {
        "baseline_added_latency_p50_ms": round(base_ms["p50"] - direct_ms["p50"], 4),
        "baseline_rps": base_rps,
        "baseline_cpu_ms_per_request": base_cpu,
        "cpu_ratio_relay_to_baseline": round(relay_cpu / base_cpu, 3) if relay_cpu and base_cpu else None,
        "rps_ratio_relay_to_baseline": round(results["throughput"]["relay"]["rps"] / base_rps, 3) if base_rps else None,
    }


def filled(summary: dict[str, Any]) -> dict[str, Any]:
    """A latency summary with NaN for the figures a path without a single answer could not have."""
    return {**dict.fromkeys(("mean", "p50", "p90", "p99", "p99_9", "max"), math.nan), **summary}


def _cpu_ms_per_request(run: dict[str, Any], process: str) -> float | None:
    cores = run.get("cpu", {}).get(process)
    return round(cores / run["rps"] * 1000, 4) if cores is not None and run["rps"] else None


def _round(value: float | None, scale: float) -> float | None:
    return round(value * scale, 1) if value is not None else None


def foreign_load(results: dict[str, Any]) -> list[tuple[str, float]]:
    """Cores used by processes other than the benchmark's, per measured phase."""
    phases = [("latency", results["latency"]), ("ttft", results["ttft"])]
    phases += [(f"throughput {name}", r) for name, r in results["throughput"].items()]
    phases.append(("ceiling", results["ceiling"]))
    return [(name, r["cpu"]["other"]) for name, r in phases if "other" in r.get("cpu", {})]


def targets(fig: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        ("added latency p50", fig["added_latency_p50_ms"], "ms", "<=", TARGET_ADDED_P50_MS),
        ("added latency p99", fig["added_latency_p99_ms"], "ms", "<=", TARGET_ADDED_P99_MS),
        ("one worker, concurrency 64", fig["relay_rps"], "req/s", ">=", TARGET_RPS),
    ]
    if fig.get("cpu_ratio_relay_to_baseline") is not None:
        rows.append(("CPU/request vs baseline", fig["cpu_ratio_relay_to_baseline"], "x", "<=", TARGET_BASELINE_RATIO))
    if "gateway_added_latency_p50_ms" in fig:
        rows.append(gateway.target(fig))
    out = []
    for name, value, unit, op, limit in rows:
        ok = value <= limit if op == "<=" else value >= limit
        out.append({"name": name, "value": value, "unit": unit, "target": f"{op} {limit:g}", "pass": ok})
    return out


def count_errors(results: dict[str, Any]) -> int:
    errors = sum(p["errors"] for p in results["latency"]["paths"].values())
    errors += sum(p["errors"] for p in results["ttft"]["paths"].values())
    errors += sum(r["errors"] for r in results["throughput"].values())
    errors += results["ceiling"]["errors"]
    return errors


def render(report: dict[str, Any]) -> str:
    r = report["results"]
    fig = report["figures"]
    cfg = report["config"]
    m = report["machine"]
    lines = [
        f"Relay benchmark  {report['date']}  {'quick' if cfg['quick'] else 'full'} run",
        f"machine: {m['cores']} cores ({m['cpu_model'] or 'unknown cpu'}), "
        f"{m['implementation']} {m['python']}, {m['platform']}",
        f"pinned: {report['pinning']}",
        *host.load_lines(report["load_at_start"]),
        "",
        f"1. Added latency: non-streaming chat completion, concurrency 1, keep-alive, "
        f"{cfg['latency_requests']} requests per path, interleaved",
        f"   {'':16}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'mean ms':>9}",
    ]
    lat = r["latency"]["paths"]
    paths = [("direct", "direct to mock"), ("relay", "Relay (plain)" if "gateway" in lat else "through Relay")]
    if "gateway" in lat:
        paths.append(("gateway", "Relay (gateway)"))
    if "baseline" in lat:
        paths.append(("baseline", "baseline Relay"))
    if "baseline_gateway" in lat:
        paths.append(("baseline_gateway", "baseline gateway"))
    paths += [(name, label) for name, label in (("floor", "bench.floor"), ("floor_h11", "floor on h11")) if name in lat]
    for name, label in paths:
        s = filled(lat[name]["latency_ms"])
        lines.append(f"   {label:16}{s['p50']:9.3f}{s['p90']:9.3f}{s['p99']:9.3f}{s['mean']:9.3f}")
    pd = r["latency"]["paired_difference_ms"]
    lines.append(
        f"   {'Relay adds':16}{fig['added_latency_p50_ms']:9.3f}{'':9}{fig['added_latency_p99_ms']:9.3f}"
        f"   (per-pair difference: p50 {pd['p50']:.3f}, p99 {pd['p99']:.3f})"
    )
    if "gateway_added_latency_p50_ms" in fig:
        lines += gateway.latency_lines(fig)
    lines += [
        "",
        f"2. Throughput: non-streaming, concurrency {cfg['concurrency']}, keep-alive, "
        f"{cfg['throughput_duration_s']:g} s after {cfg['throughput_warmup_s']:g} s warm-up",
        f"   {'':16}{'req/s':>9}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}   CPU in cores: "
        f"{'relay':>6}{'mock':>6}{'loadgen':>8}{'other':>6}",
    ]
    for name, label in paths:
        t = r["throughput"][name]
        lines.append(
            f"   {label:16}{t['rps']:9.0f}{t['errors']:8d}{filled(t['latency_ms'])['p50']:9.2f}"
            f"{filled(t['latency_ms'])['p99']:9.2f}"
            f"   {'':14}{_cores(t, name):>6}{_cores(t, 'mock'):>6}{_cores(t, 'loadgen'):>8}{_cores(t, 'other'):>6}"
        )
    c = r["ceiling"]
    if "baseline_rps" in fig:
        lines.append(
            f"   this tree / baseline {cfg['baseline']}: req/s {fig['rps_ratio_relay_to_baseline']:.3f}x, "
            f"CPU per request {fig['cpu_ratio_relay_to_baseline']:.3f}x "
            f"({fig['relay_cpu_ms_per_request']:.3f} vs {fig['baseline_cpu_ms_per_request']:.3f} ms)"
        )
    if "gateway_rps" in fig:
        lines += gateway.throughput_lines(fig)
    ratio = fig["rps_ratio_relay_to_direct"]
    lines.append(f"   Relay / direct: {ratio:.2f}" if ratio is not None else "   Relay / direct: n/a")
    if fig["relay_cpu_ms_per_request"] is not None:
        lines.append(
            f"   CPU per request: Relay {fig['relay_cpu_ms_per_request']:.3f} ms, "
            f"mock {fig['mock_cpu_ms_per_request']:.3f} ms, load generator {fig['loadgen_cpu_us_per_request']:.0f} us"
        )
        lines.append(
            f"   one-core capacity of a Relay worker (1 / its CPU per request): "
            f"{1000 / fig['relay_cpu_ms_per_request']:.0f} req/s (derived, not measured: the mock and the load "
            "generator share the other core, which caps the measured figure)"
        )
    lines.append(
        f"   load generator ceiling (the same generator against a canned-answer server): {c['rps']:.0f} req/s, "
        f"load generator {_cores(c, 'loadgen')} cores, canned server {_cores(c, 'canned')} cores"
    )
    lines += [
        "",
        f'3. Time to first token: "stream": true, concurrency 1, {cfg["ttft_requests"]} per path, interleaved;'
        " send -> first data: event with content",
        f"   {'':16}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}   whole stream p50 ms",
    ]
    ttft = r["ttft"]["paths"]
    for name, label in paths:
        s = filled(ttft[name]["ttft_ms"])
        lines.append(
            f"   {label:16}{s['p50']:9.3f}{s['p90']:9.3f}{s['p99']:9.3f}   {filled(ttft[name]['stream_ms'])['p50']:.3f}"
        )
    lines.append(f"   {'Relay adds':16}{fig['added_ttft_p50_ms']:9.3f}{'':9}{fig['added_ttft_p99_ms']:9.3f}")
    if "gateway_added_ttft_p50_ms" in fig:
        lines.append(f"   {'gateway adds':16}{fig['gateway_added_ttft_p50_ms']:9.3f}   (over plain Relay)")
    if "gateway_store" in report:
        lines += ["", *gateway.store_lines(report["gateway_store"], report["config"]["gateway_store_url"])]
    noisy = [(name, load) for name, load in foreign_load(r) if load > NOISY_CORES]
    if noisy:
        worst = ", ".join(f"{name} {load:.2f}" for name, load in noisy)
        lines += ["", f"WARNING: other processes used CPU during the run (cores: {worst}); the figures are noisy."]
    lines += ["", "Targets"]
    for t in report["targets"]:
        verdict = "PASS" if t["pass"] else "MISS"
        lines.append(f"   {t['name']:28}{t['value']:>10.3f} {t['unit']:6} target {t['target']:>7}   {verdict}")
    prof = r.get("profile")
    if prof:
        lines += ["", "Profile of Relay under load (py-spy, share of on-CPU samples)"]
        if "skipped" in prof:
            lines.append(f"   skipped: {prof['skipped']}")
        else:
            lines.append(
                f"   {prof.get('process', 'relay')} Relay: {prof['samples']} samples;"
                f" {prof['load_under_profiler']['rps']:.0f} req/s while profiled; stacks in {prof['file']}"
            )
            lines.append("   self time by package:")
            lines += [f"     {g['pct']:5.1f}%  {g['name']}" for g in prof["self_by_group"]]
            lines.append("   self time, top functions:")
            lines += [f"     {g['pct']:5.1f}%  {g['name']}" for g in prof["self_top"][:12]]
            lines.append("   inclusive time (the function and what it calls), top functions below the entry points:")
            inclusive = [g for g in prof["inclusive_top"] if g["pct"] < 99.0]
            lines += [f"     {g['pct']:5.1f}%  {g['name']}" for g in inclusive[:15]]
    lines += ["", f"errors: {report['errors']}   results: {report['written']}"]
    return "\n".join(lines)


def _cores(run: dict[str, Any], name: str) -> str:
    value = run.get("cpu", {}).get(name)
    return f"{value:.2f}" if value is not None else "-"


def result_paths(date: str) -> list[Path]:
    """bench/results/latest.json and a copy named for the run's date (``run-20260101T120000Z.json``)."""
    stamp = date.replace(":", "").replace("-", "")
    return [RESULTS / "latest.json", RESULTS / f"run-{stamp}.json"]


def write(report: dict[str, Any], paths: Sequence[Path]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    for path in paths:
        path.write_text(text, encoding="utf-8")


# ---- entry point -----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and shorter runs (about 25 s)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin processes to cores")
    parser.add_argument("--profile", action="store_true", help="also profile Relay under load with py-spy")
    parser.add_argument("--concurrency", type=int, default=64, help="connections in the throughput test (64)")
    parser.add_argument("--duration", type=float, help="seconds per throughput measurement (10; quick 3)")
    parser.add_argument("--requests", type=int, help="requests per path at concurrency 1 (3000/2000; quick less)")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure the Relay of git revision REV, side by side on every lane (implies --table)",
    )
    parser.add_argument(
        "--gateway", action="store_true", help="also measure a Relay with quota, rate limits and prices on"
    )
    parser.add_argument(
        "--gateway-store",
        metavar="URL",
        help="postgresql://...: the gateway's and the plain Relay's stores in fresh schemas there (implies --gateway)",
    )
    parser.add_argument(
        "--table",
        action="store_true",
        help="also the other lanes (converted, fan-out, memory, workers) and issue 11's table (--quick: ~4 min)",
    )
    parser.add_argument(
        "--lanes",
        metavar="LIST",
        help=f"lanes beyond the request lanes with --table/--baseline: {','.join(lanes.LANES)} (all), or none",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure bench.floor (a bare trio forwarder, and one on h11, on Relay's core): the stack's floor",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write issue 11's table and its figures here")
    parser.add_argument(
        "--attack", action="store_true", help="only the slow-client attack lane (bench/attack.py, about 1 min)"
    )
    attack.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.attack:
        return attack.lane(args)
    settings = settings_from(args)
    load = host.load_at_start()  # before any of the benchmark's processes runs
    for line in host.load_lines(load):
        print(f"[bench] {line}", file=sys.stderr, flush=True)
    machine_info = machine()  # before this process pins itself
    every_cpu = os.sched_getaffinity(0)
    plan = pinning_plan(settings.pin)
    if plan["loadgen"]:
        os.sched_setaffinity(0, plan["loadgen"])  # this process mostly waits; keep it off Relay's core
    date = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    log_dir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    servers: list[Server] = []
    exit_status: dict[str, int | None] = {}
    stores: gateway.Stores | None = None
    ok = False
    try:
        if settings.gateway:
            stores = gateway.prepare(settings.gateway_store, log_dir)
        outcome = run(settings, plan, log_dir, servers, stores)
        ok = True
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        for server in servers:
            tail = server.log_tail()
            if tail:
                print(f"--- {server.name} log ({server.log_path}) ---\n{tail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        for server in reversed(servers):
            if ok:
                exit_status[server.name] = server.stop()  # SIGTERM: a graceful stop, the request log flushed
            else:
                server.kill()
        if not ok:
            gateway.cleanup(stores)
    # Read after the graceful stop: every request sent must be in the request log, the ledger balanced.
    store_check = gateway.check(stores, outcome["sent"]) if stores is not None else None
    lost = bool(store_check and (store_check.get("problems") or "error" in store_check))
    left = gateway.cleanup(stores, keep=lost)
    results = outcome["results"]
    lane_results: dict[str, dict[str, dict[str, Any]]] = {}
    if settings.lanes:
        os.sched_setaffinity(0, every_cpu)  # the lanes place their own processes; they inherit this
        codes = {"this": ROOT, **({"baseline": log_dir / "baseline"} if settings.baseline else {})}
        sized = lanes.LaneSettings.sized(settings.quick, settings.pin, settings.concurrency)
        lane_results = lanes.run_lanes(settings.lanes, codes, sized, log_dir)
    fig = figures(results)
    report: dict[str, Any] = {
        "date": date,
        "load_at_start": load,
        "machine": machine_info,
        "git": git_state(),
        "pinning": describe_pinning(plan),
        "pinned_cpus": {k: sorted(v) if v else None for k, v in plan.items()},
        "config": {
            **asdict(settings),
            "message": MESSAGE,
            "model": "mock-1",
            "mock_chunks": MOCK_CHUNKS,
            "relay_toml": outcome["relay_toml"],
            "mock_argv": outcome["mock_argv"],
            "relay_argv": outcome["relay_argv"],
        },
        "figures": fig,
        "targets": targets(fig),
        "errors": count_errors(results),
        "server_exit_status": exit_status,
        "server_log_errors": {s.name: s.logged_errors() for s in servers},
        "requests_sent": outcome["sent"],
        "results": results,
    }
    if stores is not None and store_check is not None:
        report["config"].update(gateway.redacted_config(outcome, stores))
        report["gateway_store"] = store_check
    if "baseline_gateway_skipped" in outcome:
        report["baseline_gateway_skipped"] = outcome["baseline_gateway_skipped"]
    doc = table_document(report, lane_results, settings) if settings.table else None
    if doc is not None:
        report["table"] = doc
    paths = result_paths(date)
    report["written"] = ", ".join(str(p.relative_to(ROOT)) for p in paths)
    write(report, paths)
    print(render(report))
    lanes_failed = 0
    if doc is not None:
        print("\n" + table.render(doc))
        if args.json:
            text = json.dumps({**doc, "requests": table.finite(results)}, indent=2, allow_nan=False)
            args.json.write_text(text + "\n", encoding="utf-8")
            print(f"table and raw figures: {args.json}")
        lanes_failed = max((lane_status(r) for by_tree in lane_results.values() for r in by_tree.values()), default=0)
    if left:
        print(left, file=sys.stderr)
    logged = sum(report["server_log_errors"].values())
    if logged or lost:
        why = f"the servers logged {logged} error lines" if logged else "the gateway's store does not match"
        print(f"warning: {why} (logs and stores kept in {log_dir})", file=sys.stderr)
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    if lanes_failed == 2:
        return 2
    return 1 if report["errors"] or lost or lanes_failed else 0


def lane_status(result: dict[str, Any]) -> int:
    """2 for a lane that could not run, 1 for one whose streams failed (its own or a nested run's), else 0."""
    if "error" in result:
        return 2
    nested = [v for v in result.values() if isinstance(v, dict) and "failed" in v]
    return 1 if result.get("failed", 0) or any(v["failed"] for v in nested) else 0


def table_document(
    report: dict[str, Any], lane_results: dict[str, dict[str, dict[str, Any]]], settings: Settings
) -> dict[str, Any]:
    """Issue 11's table for this run: the request lanes' paths and the other lanes, per tree."""
    results = report["results"]
    git = report["git"]
    label = git["commit"][:7] + (" + uncommitted changes" if git["relay_uncommitted"] else "")
    trees: dict[str, dict[str, Any]] = {"this": {"label": label, "commit": git["commit"], "code": str(ROOT)}}
    figs = {"this": table.tree_figures(results, lane_results, "this")}
    if settings.baseline:
        trees["baseline"] = {"label": settings.baseline, "commit": rev_parse(settings.baseline)}
        figs["baseline"] = table.tree_figures(results, lane_results, "baseline")
    return table.document(
        date=report["date"],
        machine=report["machine"],
        load=report["load_at_start"],
        trees=trees,
        figures=figs,
        lane_results=lane_results,
        quick=settings.quick,
    )


def rev_parse(revision: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", revision], capture_output=True, text=True, check=False)
    return done.stdout.strip()

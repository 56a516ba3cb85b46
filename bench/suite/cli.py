"""``python -m bench``: the streaming-latency benchmark suite: targets side by side on every lane, a Markdown table,
a self-contained HTML report with plots, and the raw JSON.

Every figure is measured against the neutral mock upstream (bench/neutral: C or node, prebuilt frames, far cheaper than
any proxy) reached directly (the ``direct`` path) and through each target; targets take turns in rounds so that
drift on the machine hits all of them alike. Lanes:

  latency      concurrency 1, plain answers: p50/p90/p99/p99.9 of each target and what it adds to direct.
  long_prompt  the same with a 400 KB prompt: the cost of reading a big request body.
  stream       concurrency 1, streams of --shape (fixed: 64 tokens 10 ms apart): time to first token, the gaps
               between tokens and the whole stream, each p50/p99 and added.
  sweep        plain answers at each concurrency of --sweep (1 -> 256): req/s, latency p50/p99, the target's CPU
               per request.
  fanout       --fanout streams at once (64 -> 4,096), node client: frames/s delivered and of the ideal pace,
               TTFT p99, failed streams, the target's RSS per open stream and CPU per frame. Needs node.
  convert      every client dialect -> every upstream dialect the target can be steered to (a Relay: one channel
               per dialect): TTFT and what the conversion adds to direct in the client's dialect.
  slow         readers' TTFT alone, then beside clients that open streams and never read.

Bottleneck flags: in every lane the load generator's and the mock's CPU is measured over the same window as the
target's; a lane where either used >= 85% of its core, or where the whole machine was saturated, is flagged in
the report (the figure is then the rig's, not the target's).

The older benchmark (bench/run.py: Relay against relay mock-upstream, issue 11's table) still runs:
``python -m bench legacy [its flags]``, and any of its own flags (--table, --baseline, --gateway, --floor,
--profile, --attack, --concurrency, --requests, --duration, --json) routes ``python -m bench`` to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import host
from bench.neutral import neutral_mock
from bench.procs import ROOT, BenchError
from bench.suite import lanes_c1, lanes_fanout, lanes_load, report_md
from bench.suite.rig import MockLike, Progress, Settings, Step, TargetLike, describe, pin_tree, pinning, settings_for
from bench.targets import cache_dir, parse_target, started
from bench.targets.spec import KINDS

Lane = Callable[[list[TargetLike], MockLike, Settings, Step], dict[str, Any]]

#: The lanes in the order they run.
LANES: dict[str, Lane] = {
    "latency": lanes_c1.latency,
    "long_prompt": lanes_c1.long_prompt_lane,
    "stream": lanes_c1.stream,
    "sweep": lanes_load.sweep,
    "fanout": lanes_fanout.fanout,
    "convert": lanes_c1.convert,
    "slow": lanes_load.slow,
}
DEFAULT_TARGETS = "direct,relay"
RESULTS = ROOT / "bench" / "results"


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def _lanes(text: str) -> tuple[str, ...]:
    if text == "all":
        return tuple(LANES)
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [n for n in names if n not in LANES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown lane(s) {', '.join(unknown)} (known: {', '.join(LANES)}, all)")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--targets",
        default=DEFAULT_TARGETS,
        help="comma-separated targets (bench/README.md, 'Targets'): direct, relay, relay:workers=2,config=PATH, "
        "relay@REV, litellm, portkey, url:dialect=anthropic,url=...,key=...,model=... "
        f"A peer that cannot be set up is skipped with the reason. Default {DEFAULT_TARGETS}; direct is always added.",
    )
    p.add_argument("--lanes", type=_lanes, default=tuple(LANES), help=f"lanes to run: {','.join(LANES)} or all (all)")
    p.add_argument("--quick", action="store_true", help="every lane sized down: the whole run within about a minute")
    p.add_argument("--seconds", type=float, help="seconds of each measured load window (sweep, slow): 5, quick 1")
    p.add_argument("--rounds", type=int, help="requests per target in the latency lane: 3000, quick 300")
    p.add_argument("--stream-rounds", type=int, help="streams per target in the stream lane: 50, quick 8")
    p.add_argument("--sweep", type=_ints, help="concurrencies of the sweep: 1,4,16,64,128,256 (quick 1,16,64,256)")
    p.add_argument("--fanout", type=_ints, help="streams at once in the fan-out lane: 64,256,1024,4096 (quick 64,256)")
    p.add_argument(
        "--shape",
        default="fixed",
        choices=("instant", "fixed", "jitter", "tools", "reasoning"),
        help="the neutral mock's stream shape for the stream, fan-out and slow lanes (fixed: 64 tokens, 10 ms apart)",
    )
    p.add_argument(
        "--mock",
        default="auto",
        choices=("node", "c", "auto"),
        help="the neutral mock: auto (the default: c where gcc is, else node), c (bench/neutral/cmock.c, built by "
        "gcc into the cache: the same bytes as node at a third of the CPU per frame), node (mock.mjs)",
    )
    p.add_argument(
        "--out", type=Path, help="folder for results.json, report.md, report.html (bench/results/suite-DATE)"
    )
    p.add_argument(
        "--peer-cache",
        type=Path,
        metavar="DIR",
        help="where peers (LiteLLM, Portkey) and relay@REV are installed once and reused "
        "($RELAY_BENCH_CACHE, else ~/.cache/relay-bench)",
    )
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin the rig and the targets to cores")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--render", type=Path, metavar="DIR", help="only render DIR/results.json again into its reports")
    return p


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """The machine and software a run's figures belong to."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = (
        subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
        if shutil.which("node")
        else None
    )
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False)
    return {
        "cpu": model or platform.processor(),
        "cores": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node.stdout.strip() if node is not None else None,
        "relay_commit": commit.stdout.strip() or None,
        "matplotlib": _version("matplotlib"),
    }


def write(doc: dict[str, Any], out: Path) -> None:
    """results.json, report.md and report.html in ``out``."""
    from bench.suite import report_html

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    (out / "report.md").write_text(report_md.markdown(doc), encoding="utf-8")
    (out / "report.html").write_text(report_html.render(doc), encoding="utf-8")


def failures(doc: dict[str, Any]) -> int:
    """Failed requests and streams over every lane."""
    total = 0

    def walk(node: object) -> None:
        nonlocal total
        if isinstance(node, dict):
            errors = node.get("errors")
            if isinstance(errors, int) and not isinstance(errors, bool):
                total += errors
            for key, value in node.items():
                if key not in ("cpu",):
                    walk(value)

    for lane in doc["lanes"].values():
        walk(lane.get("results", {}))
    return total


def steps(lanes: Sequence[str], settings: Settings, paths: int) -> int:
    count = {
        "latency": 1,
        "long_prompt": 1,
        "stream": 1,
        "sweep": len(settings.sweep) * paths,
        "fanout": len(settings.fanout) * paths,
        "convert": max(paths - 1, 1),
        "slow": 2 * paths,
    }
    return sum(count[lane] for lane in lanes)


def run_lanes(
    targets: list[TargetLike], mock: MockLike, settings: Settings, lanes: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Every chosen lane over the targets, in LANES' order; a lane that fails leaves its reason in the document."""
    paths = len({t.dialect for t in targets if t.kind != "direct"} or {"x"}) + sum(t.kind != "direct" for t in targets)
    progress = Progress(steps(lanes, settings, paths), settings.progress)
    out: dict[str, dict[str, Any]] = {}
    try:
        for name in LANES:
            if name not in lanes:
                continue
            started = time.perf_counter()
            try:
                out[name] = LANES[name](targets, mock, settings, progress.step)
            except BenchError as exc:
                out[name] = {"lane": name, "results": {}, "flags": [], "skipped": {"*": str(exc)[:500]}}
            out[name]["seconds"] = round(time.perf_counter() - started, 1)
    finally:
        progress.close()
    return out


def document(
    argv: Sequence[str],
    settings: Settings,
    targets: list[TargetLike],
    skipped: dict[str, str],
    lanes: dict[str, dict[str, Any]],
    load: dict[str, Any],
    info: dict[str, Any],
) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "command": shlex.join(["python", "-m", "bench", *argv]),
        "quick": settings.quick,
        "machine": info,
        "load_at_start": load,
        "pinning": describe(settings.plan),
        "settings": {
            "seconds": settings.seconds,
            "rounds": settings.rounds,
            "stream_rounds": settings.stream_rounds,
            "sweep": list(settings.sweep),
            "fanout": list(settings.fanout),
            "shape": settings.shape,
        },
        "targets": {
            t.name: {
                "kind": t.kind,
                "dialect": t.dialect,
                "dialects": list(t.dialects),
                "base_url": t.base_url,
                "configured": {k: _plain(v) for k, v in t.configured.items()},
            }
            for t in targets
        },
        "skipped": skipped,
        "lanes": lanes,
    }


def raise_open_files() -> int:
    """The soft limit on open files raised to the hard one, for this process and the targets and clients it
    starts (4,096 streams need a socket each at the client, two at a proxy); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def _split_targets(text: str) -> list[str]:
    """The target specs of ``--targets``: split on the commas that start a new target, not on those between one
    target's options (``relay:workers=2,config=PATH``: a ``key=value`` that names no kind continues the last)."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind = part.split(":", 1)[0].split("@", 1)[0]
        if out and "=" in part and kind not in KINDS:
            out[-1] += "," + part
        else:
            out.append(part)
    return out


def _plain(value: object) -> object:
    return value if isinstance(value, str | int | float | bool | type(None) | list | dict) else str(value)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.render is not None:
        try:
            doc = json.loads((args.render / "results.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"bench: cannot read {args.render / 'results.json'}: {exc}", file=sys.stderr)
            return 2
        write(doc, args.render)
        print(report_md.table(doc))
        return 0
    load = host.load_at_start()  # before any of the benchmark's processes runs
    for line in host.load_lines(load):
        print(f"[bench] {line}", file=sys.stderr, flush=True)
    info = machine()
    info["open_files_limit"] = raise_open_files()
    plan = pinning(args.pin)
    if plan["loadgen"]:
        os.sched_setaffinity(0, plan["loadgen"])  # this process mostly waits; keep it off the targets' cores
    work = Path(tempfile.mkdtemp(prefix="relay-bench-suite-"))
    settings = settings_for(args.quick, args.seconds, work, plan)
    settings.progress = args.progress
    settings.shape = args.shape
    if args.rounds:
        settings.rounds = args.rounds
    if args.stream_rounds:
        settings.stream_rounds = args.stream_rounds
    if args.sweep:
        settings.sweep = args.sweep
    if args.fanout:
        settings.fanout = args.fanout
    try:
        specs = [parse_target(s) for s in _split_targets(args.targets)]
        if not any(spec.kind == "direct" for spec in specs):
            specs.insert(0, parse_target("direct"))
        with (
            neutral_mock(work / "mock", cpus=plan["mock"], mock=args.mock, cache=cache_dir(args.peer_cache)) as mock,
            started(specs, mock, work, cache=args.peer_cache, cpus=plan["targets"]) as (targets, skipped),
        ):
            info["neutral_mock"] = mock.kind + (f" ({mock.note})" if mock.note else "")
            for t in targets:
                if t.kind != "direct":
                    for pid in t.pids:
                        pin_tree(pid, plan["targets"])  # threads and workers started after the pinned parent
            lanes = run_lanes(targets, mock, settings, args.lanes)
            doc = document(argv, settings, targets, skipped, lanes, load, info)
    except (BenchError, ValueError) as exc:
        print(f"bench: {exc}\n(the processes' logs are in {work})", file=sys.stderr)
        return 2
    shutil.rmtree(work, ignore_errors=True)
    out = args.out or RESULTS / f"suite-{doc['date'].replace(':', '').replace('-', '')}"
    write(doc, out)
    print(report_md.markdown(doc))
    print(f"[bench] wrote {out}/results.json, report.md, report.html", file=sys.stderr)
    lane_failed = any(lane.get("skipped", {}).get("*") for lane in doc["lanes"].values())
    if lane_failed:
        return 2
    return 1 if failures(doc) else 0

"""The Markdown report: one table, a row per figure and a column per target, then what each target was configured
with, the bottleneck and noise flags, and what was skipped. Built from the run's JSON document only, so that a
report can be rendered again from a saved ``results.json`` (``python -m bench --render DIR``).

A cell is the target's figure, followed by what it adds to the direct path in parentheses where that means
something (``0.412 (+0.101)``). An empty cell is ``—``: the lane did not run for that target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DASH = "—"
Row = tuple[str, Callable[[dict[str, Any], str], str]]


def _num(value: object, digits: int = 3) -> str:
    if value is None or isinstance(value, bool):
        return DASH
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _signed(value: object, digits: int = 3) -> str:
    return f"{value:+.{digits}f}" if isinstance(value, int | float) else ""


def _with_added(value: object, add: object, digits: int = 3) -> str:
    out = _num(value, digits)
    extra = _signed(add, digits)
    return f"{out} ({extra})" if extra and out != DASH else out


def _c1(lane: str, key: str, pct: str) -> Callable[[dict[str, Any], str], str]:
    def cell(doc: dict[str, Any], target: str) -> str:
        row = doc["lanes"].get(lane, {}).get("results", {}).get(target)
        if not row or key not in row:
            return DASH
        add = row.get("added", {}).get(key, {}).get(pct)
        return _with_added(row[key].get(pct), add)

    return cell


def _sweep(level: str, what: str) -> Callable[[dict[str, Any], str], str]:
    def cell(doc: dict[str, Any], target: str) -> str:
        row = doc["lanes"].get("sweep", {}).get("results", {}).get(target, {}).get(level)
        if not row:
            return DASH
        if what == "rps":
            notes = [f"{row['errors']} err"] if row["errors"] else []
            if not row["completed"]:
                notes.append(f"{row.get('in_flight_at_end', '?')} waiting")
            return _num(row["rps"], 0) + (f" ({', '.join(notes)})" if notes else "")
        if what == "cpu":
            return _num(row.get("target_cpu_us_per_request"), 1)
        if what == "mock_share":
            mock, own = row.get("mock_cores"), row.get("target_cores")
            if target == "direct" or target.startswith("direct/") or not mock or not own:
                return DASH
            return f"{mock / own:.0%}"
        return _num(row["latency"].get(what))

    return cell


def _fanout(level: str, what: str) -> Callable[[dict[str, Any], str], str]:
    def cell(doc: dict[str, Any], target: str) -> str:
        row = doc["lanes"].get("fanout", {}).get("results", {}).get(target, {}).get(level)
        if not row:
            return DASH
        if what == "of_ideal":
            share = row.get("of_ideal")
            return (
                f"{_num(row['frames_per_s'], 0)} ({share:.0%})" if share is not None else _num(row["frames_per_s"], 0)
            )
        return _num(row.get(what), 2)

    return cell


def _slow(what: str) -> Callable[[dict[str, Any], str], str]:
    def cell(doc: dict[str, Any], target: str) -> str:
        row = doc["lanes"].get("slow", {}).get("results", {}).get(target)
        if not row or "alone" not in row or "with" not in row:
            return DASH
        before, after = row["alone"]["ttft"].get(what), row["with"]["ttft"].get(what)
        none = "none answered"
        return f"{_num(before) if before is not None else none} → {_num(after) if after is not None else none}"

    return cell


def rows(doc: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    lanes = doc["lanes"]
    if "latency" in lanes:
        for pct, name in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99_9", "p99.9")):
            out.append((f"latency c=1 {name} ms (added)", _c1("latency", "total", pct)))
    if "long_prompt" in lanes:
        kb = lanes["long_prompt"].get("prompt_bytes", 0) // 1000
        for pct in ("p50", "p99"):
            out.append((f"{kb} KB prompt c=1 {pct} ms (added)", _c1("long_prompt", "total", pct)))
    if "stream" in lanes:
        shape = lanes["stream"].get("shape", "")
        for key, name in (("ttft", "TTFT"), ("gaps", "inter-token gap"), ("total", "whole stream")):
            for pct in ("p50", "p99"):
                out.append((f"stream ({shape}) {name} {pct} ms (added)", _c1("stream", key, pct)))
    if "sweep" in lanes:
        for level in lanes["sweep"].get("levels", []):
            out.append((f"req/s at c={level}", _sweep(str(level), "rps")))
        for level in lanes["sweep"].get("levels", []):
            out.append((f"latency p99 ms at c={level}", _sweep(str(level), "p99")))
        top = str(lanes["sweep"].get("levels", [0])[-1])
        out.append((f"target CPU µs/request at c={top}", _sweep(top, "cpu")))
        out.append((f"mock CPU as a share of the target's at c={top}", _sweep(top, "mock_share")))
    if "fanout" in lanes:
        for level in lanes["fanout"].get("levels", []):
            lv = str(level)
            out.append((f"{level} streams: frames/s (of ideal)", _fanout(lv, "of_ideal")))
            out.append((f"{level} streams: TTFT p99 ms", _fanout(lv, "ttft_p99_ms")))
            out.append((f"{level} streams: failed", _fanout(lv, "errors")))
            out.append((f"{level} streams: RSS KiB per open stream", _fanout(lv, "rss_per_stream_kib")))
            out.append((f"{level} streams: target CPU µs/frame", _fanout(lv, "cpu_us_per_frame")))
    if "slow" in lanes:
        stalled = next(
            (r["with"]["stalled"] for r in lanes["slow"].get("results", {}).values() if "with" in r),
            0,
        )
        out.append((f"readers' TTFT p50 ms, alone → beside {stalled} stalled", _slow("p50")))
        out.append((f"readers' TTFT p99 ms, alone → beside {stalled} stalled", _slow("p99")))
    return out


def columns(doc: dict[str, Any]) -> list[str]:
    """The direct path(s) first, then the targets in the order they were given."""
    seen: list[str] = []
    for lane in doc["lanes"].values():
        for name in lane.get("results", {}):
            if name not in seen and lane.get("lane") != "convert":
                seen.append(name)
    direct = [n for n in seen if n == "direct" or n.startswith("direct/")]
    return direct + [n for n in seen if n not in direct]


def table(doc: dict[str, Any]) -> str:
    cols = columns(doc)
    lines = ["| figure | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for label, cell in rows(doc):
        lines.append(f"| {label} | " + " | ".join(cell(doc, c) for c in cols) + " |")
    return "\n".join(lines)


def convert_table(doc: dict[str, Any]) -> str:
    lane = doc["lanes"].get("convert")
    if not lane or not lane.get("results"):
        return ""
    lines = [
        "| target | client → upstream | TTFT p50 ms (added) | TTFT p99 ms (added) | whole p50 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for target, pairs in lane["results"].items():
        for row in pairs.values():
            add = row.get("added", {}).get("ttft", {})
            p50 = _with_added(row["ttft"].get("p50"), add.get("p50"))
            p99 = _with_added(row["ttft"].get("p99"), add.get("p99"))
            lines.append(
                f"| {target} | {row['client']} → {row['upstream']} | {p50} | {p99} | {_num(row['total'].get('p50'))}"
                f" | {row['errors']} |"
            )
    return "\n".join(lines)


#: ``configured`` entries too long for a line (a generated relay.toml, the routes): in results.json only.
LONG = 160


def configured_lines(doc: dict[str, Any]) -> list[str]:
    """One line per target: what it was configured with (bench.targets' ``configured``)."""
    out = []
    for name, conf in doc.get("targets", {}).items():
        items = conf.get("configured", {}).items()
        parts = ", ".join(
            f"{k}={v}" if len(str(v)) <= LONG else f"{k}=(in results.json)" for k, v in items if k != "routes"
        )
        out.append(f"- **{name}** ({conf.get('kind', '?')}, {conf.get('dialect', '?')}): {parts or 'nothing stated'}")
    return out


def markdown(doc: dict[str, Any]) -> str:
    mode = "quick" if doc.get("quick") else "full"
    machine = doc.get("machine", {})
    head = [
        f"# Streaming-latency benchmark ({mode} run, {doc.get('date', '')})",
        "",
        f"Command: `{doc.get('command', '')}`",
        "",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; Python {machine.get('python', '?')}; "
        f"{doc.get('pinning', '')}.",
    ]
    load = doc.get("load_at_start", {})
    if load:
        head.append(
            f"Load average at start: {load.get('load_1m')} {load.get('load_5m')} {load.get('load_15m')}"
            + (" — **WARNING: the machine was busy; the figures are noisy.**" if load.get("busy") else "")
        )
    settings = doc.get("settings", {})
    if settings:
        head.append(
            "Settings: "
            + ", ".join(f"{k} {v}" for k, v in settings.items())
            + ". Lanes (seconds): "
            + ", ".join(f"{name} {lane.get('seconds', '?')}" for name, lane in doc["lanes"].items())
            + "."
        )
    body = [
        "",
        "Each cell: the target's figure, and in parentheses what it adds to the direct path (the neutral mock spoken"
        " to in the same dialect, measured in the same rounds).",
        "",
        table(doc),
    ]
    conv = convert_table(doc)
    if conv:
        body += ["", "## Conversions (client dialect → target → upstream dialect)", "", conv]
    body += ["", "## Targets as configured", "", *configured_lines(doc)]
    flagged = [f for lane in doc["lanes"].values() for f in lane.get("flags", [])]
    body += ["", "## Bottleneck and noise flags (measured)", ""]
    body += [f"- {f}" for f in flagged] or ["- none: neither the load generator nor the mock saturated in any lane"]
    skipped = dict(doc.get("skipped", {}))
    for lane in doc["lanes"].values():
        for what, why in lane.get("skipped", {}).items():
            skipped[f"{lane['lane']}: {what}"] = why
    if skipped:
        body += ["", "## Skipped", "", *(f"- {k}: {v}" for k, v in skipped.items())]
    return "\n".join(head + body) + "\n"

"""The issue's table: one row per figure, this tree beside the baseline revision, and their ratio.

Pure functions over the raw results (no process, no clock), so that tests can check them: the figures of
one tree taken from the request lanes (bench/run.py) and the other lanes (bench/lanes.py), the rows, the
ratio column, the Markdown table and the JSON document ``--json PATH`` writes. Its command is
``python -m bench --table`` (bench/run.py, which imports this module: none of it imports bench.run).

The rows are the ones issue 11's closing note asks for, in its order: added latency at concurrency 1 (a
plain key, and a key with a quota and a price), req/s at concurrency 64 on one core with the CPU per request,
the converted path's req/s, the added time to first token, 1,024 streams of 64 deltas (frames delivered, of
the ideal, time to first frame p99), memory per open stream, and ``--workers 2`` against ``--workers 1``.

The stream rows are bench.fanout's whole-run figures (``span_*``): every frame received from the first request
sent to the last frame, per second, and as a share of the ideal the time a relay keeping the 20 ms pace would
take (64 x 20 ms = 1.28 s) over the time it took. Its steady window (every stream running) does not exist
for streams of 1.28 s on a busy Relay: the last ones start after the first ones end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench import lanes

#: The request lanes' path names for each tree: (plain key, quota and price key).
PATHS = {"this": ("relay", "gateway"), "baseline": ("baseline", "baseline_gateway")}
#: Frames per second 1,024 streams would get at one frame per 20 ms each.
FANOUT_IDEAL = lanes.FANOUT_STREAMS * 1000 / lanes.FANOUT_DELAY_MS
#: ``--workers 2`` within 10% of linear: at least 1.8x ``--workers 1``.
LINEAR_SHARE = 0.9


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    digits: int


ROWS: tuple[Row, ...] = (
    Row("added_p50_plain", "added latency c=1 p50, plain key", "ms", 3),
    Row("added_p99_plain", "added latency c=1 p99, plain key", "ms", 3),
    Row("added_p50_quota", "added latency c=1 p50, quota+price key", "ms", 3),
    Row("added_p99_quota", "added latency c=1 p99, quota+price key", "ms", 3),
    Row("rps_plain", "req/s c=64, one core, plain key", "req/s", 0),
    Row("cpu_plain", "CPU per request, plain key", "ms", 3),
    Row("rps_quota", "req/s c=64, one core, quota+price key", "req/s", 0),
    Row("cpu_quota", "CPU per request, quota+price key", "ms", 3),
    Row("rps_converted", "converted (Chat client → Anthropic upstream) c=64", "req/s", 0),
    Row("ttft_plain", "stream TTFT added c=1 p50, plain key", "ms", 3),
    Row("ttft_quota", "stream TTFT added c=1 p50, quota+price key", "ms", 3),
    Row("fanout_frames", "1,024 streams x 64 deltas: frames delivered", "frames/s", 0),
    Row("fanout_share", f"1,024 streams x 64 deltas: of ideal ({FANOUT_IDEAL:,.0f}/s, 1.28 s)", "%", 1),
    Row("fanout_ttft_p99", "1,024 streams x 64 deltas: TTFT p99", "ms", 1),
    Row("memory_kib", "memory per open stream (fresh process, 1,024 streams)", "KiB", 1),
    Row("workers1_rps", "--workers 1 req/s c=64", "req/s", 0),
    Row("workers2_rps", "--workers 2 req/s c=64", "req/s", 0),
    Row("workers_rps_scaling", "--workers 2 / --workers 1, req/s", "x", 2),
    Row("workers1_frames", "--workers 1 frames/s (1,024 streams)", "frames/s", 0),
    Row("workers2_frames", "--workers 2 frames/s (1,024 streams)", "frames/s", 0),
    Row("workers_frames_scaling", "--workers 2 / --workers 1, frames/s", "x", 2),
)


# ---- figures of one tree -----------------------------------------------------------------------------------


def number(value: Any) -> float | None:
    """A finite number, else None (a missing path, a NaN from a path without a single answer)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def difference(a: Any, b: Any) -> float | None:
    x, y = number(a), number(b)
    return round(x - y, 4) if x is not None and y is not None else None


def quotient(a: Any, b: Any, digits: int = 3) -> float | None:
    """``a / b`` when both are positive (a ratio of a negative added latency means nothing)."""
    x, y = number(a), number(b)
    return round(x / y, digits) if x is not None and y is not None and x > 0 and y > 0 else None


def _path(section: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return section.get("paths", section).get(name, {})


def request_figures(results: Mapping[str, Any], tree: str) -> dict[str, float | None]:
    """Added latency, req/s, CPU per request and added TTFT for the tree's plain and quota paths."""
    out: dict[str, float | None] = {}
    latency, ttft = results.get("latency", {}), results.get("ttft", {})
    tput = results.get("throughput", {})
    direct_ms = _path(latency, "direct").get("latency_ms", {})
    direct_ttft = _path(ttft, "direct").get("ttft_ms", {})
    for kind, name in zip(("plain", "quota"), PATHS[tree], strict=True):
        ms = _path(latency, name).get("latency_ms", {})
        out[f"added_p50_{kind}"] = difference(ms.get("p50"), direct_ms.get("p50"))
        out[f"added_p99_{kind}"] = difference(ms.get("p99"), direct_ms.get("p99"))
        run = tput.get(name, {})
        out[f"rps_{kind}"] = number(run.get("rps"))
        per_request = quotient(run.get("cpu", {}).get(name), out[f"rps_{kind}"], 9)  # CPU seconds
        out[f"cpu_{kind}"] = round(per_request * 1000, 4) if per_request is not None else None
        out[f"ttft_{kind}"] = difference(_path(ttft, name).get("ttft_ms", {}).get("p50"), direct_ttft.get("p50"))
    return out


def lane_figures(lane_results: Mapping[str, Mapping[str, Any]], tree: str) -> dict[str, float | None]:
    """The converted, fan-out, memory and workers figures of one tree (None where a lane did not run)."""
    converted = lane_results.get("converted", {}).get(tree, {})
    fanout = lane_results.get("fanout", {}).get(tree, {})
    memory = lane_results.get("memory", {}).get(tree, {})
    workers = lane_results.get("workers", {}).get(tree, {})
    share = number(fanout.get("span_share"))
    out: dict[str, float | None] = {
        "rps_converted": number(converted.get("rps")),
        "cpu_converted": number(converted.get("relay_cpu_ms_per_request")),
        "fanout_frames": number(fanout.get("span_frames_per_s")),
        "fanout_share": round(share * 100, 2) if share is not None else None,
        "fanout_ttft_p99": number(fanout.get("first_frame_p99_ms")),
        "fanout_us_per_frame": number(fanout.get("span_us_per_frame")),
        "memory_kib": number(memory.get("kib_per_open_stream")),
        "memory_growth_kib_per_s": number(memory.get("growth_kib_per_stream_per_s")),
    }
    for n in lanes.WORKER_COUNTS:
        out[f"workers{n}_rps"] = number(workers.get(f"requests_{n}", {}).get("rps"))
        out[f"workers{n}_frames"] = number(workers.get(f"fanout_{n}", {}).get("span_frames_per_s"))
    out["workers_rps_scaling"] = quotient(out["workers2_rps"], out["workers1_rps"])
    out["workers_frames_scaling"] = quotient(out["workers2_frames"], out["workers1_frames"])
    return out


def tree_figures(
    requests: Mapping[str, Any], lane_results: Mapping[str, Mapping[str, Any]], tree: str
) -> dict[str, float | None]:
    return {**request_figures(requests, tree), **lane_figures(lane_results, tree)}


# ---- rows, notes, Markdown, JSON ---------------------------------------------------------------------------


def rows(this: Mapping[str, float | None], baseline: Mapping[str, float | None] | None) -> list[dict[str, Any]]:
    """The table's rows: each figure for this tree, the baseline's, and this / baseline."""
    out = []
    for row in ROWS:
        entry: dict[str, Any] = {"key": row.key, "label": row.label, "unit": row.unit, "this": this.get(row.key)}
        if baseline is not None:
            entry["baseline"] = baseline.get(row.key)
            entry["ratio"] = quotient(entry["this"], entry["baseline"])
        out.append(entry)
    return out


def cell(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def markdown(table_rows: Sequence[Mapping[str, Any]], this_label: str, baseline_label: str | None) -> str:
    """A Markdown table; with a baseline, its column and the ratio ``this / baseline``."""
    digits = {row.key: row.digits for row in ROWS}
    head = ["figure", "unit", this_label]
    if baseline_label is not None:
        head += [baseline_label, "this / baseline"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["--:"] * (len(head) - 2)) + "|"]
    for r in table_rows:
        cells = [r["label"], r["unit"], cell(r["this"], digits[r["key"]])]
        if baseline_label is not None:
            ratio = r.get("ratio")
            cells += [cell(r.get("baseline"), digits[r["key"]]), f"{ratio:.3f}x" if ratio is not None else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_note(cores: int, pinned: bool, scaling: Mapping[str, float | None]) -> str:
    """What the workers rows mean on this machine: linear scaling needs a core per worker beside the rest."""
    if cores < lanes.CORES_FOR_SCALING or not pinned:
        return (
            f"workers: this machine has {cores} cores, shared by Relay's workers, the upstream and the load "
            f"generator (not pinned): --workers 2 cannot show linear scaling here (that needs >= "
            f"{lanes.CORES_FOR_SCALING} cores: one per worker, one for the upstream, one for the load generator)."
        )
    verdicts = []
    for what in ("rps", "frames"):
        ratio = scaling.get(f"workers_{what}_scaling")
        if ratio is not None:
            ok = "within" if ratio >= 2 * LINEAR_SHARE else "NOT within"
            verdicts.append(f"{what} {ratio:.2f}x ({ok} 10% of linear)")
    return f"workers: {cores} cores, one per worker, pinned; --workers 2 / --workers 1: " + (
        ", ".join(verdicts) or "n/a"
    )


def notes(lane_results: Mapping[str, Mapping[str, Any]], trees: Sequence[str], cores: int) -> list[str]:
    """Lanes that failed, streams that broke, windows that could not open, and the workers caveat."""
    out = []
    for lane, by_tree in lane_results.items():
        for tree in trees:
            result = by_tree.get(tree, {})
            if "error" in result:
                out.append(f"{lane} ({tree}): did not run: {result['error'].splitlines()[0][:300]}")
            if result.get("failed"):
                out.append(f"{lane} ({tree}): {result['failed']} streams failed")
    workers = lane_results.get("workers", {})
    for tree in trees:
        w = workers.get(tree, {})
        if "requests_1" in w:
            figures = lane_figures(lane_results, tree)
            out.append(f"{tree}: " + scaling_note(w.get("cores", cores), bool(w.get("pinned")), figures))
    return out


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (a figure of a path without a single answer) as None, so that the
    JSON written is strict JSON (``json.dumps`` would write ``NaN``, which jq and browsers refuse)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def document(
    *,
    date: str,
    machine: Mapping[str, Any],
    load: Mapping[str, Any],
    trees: Mapping[str, Mapping[str, Any]],
    figures: Mapping[str, Mapping[str, float | None]],
    lane_results: Mapping[str, Any],
    quick: bool,
) -> dict[str, Any]:
    """The JSON ``--json PATH`` writes: the rows, each tree's figures, the notes and the lanes' raw results."""
    table_rows = rows(figures["this"], figures.get("baseline"))
    return finite(
        {
            "kind": "relay-bench-table",
            "date": date,
            "quick": quick,
            "machine": dict(machine),
            "load_at_start": dict(load),
            "trees": {k: dict(v) for k, v in trees.items()},
            "rows": table_rows,
            "figures": {k: dict(v) for k, v in figures.items()},
            "notes": notes(lane_results, list(figures), int(machine.get("cores_usable") or machine.get("cores") or 1)),
            "lanes": dict(lane_results),
        }
    )


def render(doc: Mapping[str, Any]) -> str:
    """The table as printed: a title, the Markdown table, the notes."""
    trees = doc["trees"]
    this_label = f"this tree ({trees['this'].get('label', '')})".replace(" ()", "")
    base = trees.get("baseline")
    baseline_label = f"baseline {base.get('label', '')}".strip() if base else None
    m = doc["machine"]
    lines = [
        f"Issue 11 table  {doc['date']}  {'quick' if doc['quick'] else 'full'} run; {m.get('cores')} cores "
        f"({m.get('cpu_model') or 'unknown cpu'}), {m.get('implementation', '')} {m.get('python', '')}",
        "",
        markdown(doc["rows"], this_label, baseline_label),
    ]
    if doc["notes"]:
        lines += ["", *(f"- {n}" for n in doc["notes"])]
    return "\n".join(lines)

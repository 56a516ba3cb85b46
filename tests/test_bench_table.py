"""The benchmark's table machinery without running a benchmark: figures taken from raw results, the ratio
column, the Markdown table, the JSON document, the load warning and the lane arguments (bench/table.py,
bench/host.py, bench/lanes.py, bench/run.py). No timing is asserted: only what is computed from given figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench import host, lanes, run, table
from bench.cpu import process_seconds, tree_seconds
from bench.fanout import MAX_CONNECTIONS, many_streams_toml, span_figures
from relay.config import loads


def _latency(p50: float, p99: float) -> dict[str, Any]:
    return {"latency_ms": {"p50": p50, "p99": p99}}


def _ttft(p50: float) -> dict[str, Any]:
    return {"ttft_ms": {"p50": p50, "p99": p50 * 2}}


def _tput(name: str, rps: float, cores: float) -> dict[str, Any]:
    return {"rps": rps, "errors": 0, "cpu": {name: cores, "mock": 0.5}}


def requests_results() -> dict[str, Any]:
    """The request lanes' raw results for the four Relay paths and the direct one."""
    return {
        "latency": {
            "paths": {
                "direct": _latency(0.40, 0.70),
                "relay": _latency(1.00, 1.90),
                "gateway": _latency(1.10, 2.10),
                "baseline": _latency(1.20, 2.70),
                "baseline_gateway": _latency(1.40, 3.10),
            }
        },
        "throughput": {
            "direct": _tput("mock", 2500.0, 1.0),
            "relay": _tput("relay", 2000.0, 0.9),
            "gateway": _tput("gateway", 1600.0, 0.96),
            "baseline": _tput("baseline", 1800.0, 0.9),
            "baseline_gateway": _tput("baseline_gateway", 1000.0, 0.8),
        },
        "ttft": {
            "paths": {
                "direct": _ttft(0.5),
                "relay": _ttft(1.2),
                "gateway": _ttft(1.3),
                "baseline": _ttft(1.5),
                "baseline_gateway": {"ttft_ms": {"n": 0}},  # no answer at all: no figure, not NaN
            }
        },
    }


def lane_results() -> dict[str, dict[str, dict[str, Any]]]:
    fanout_this = {"span_frames_per_s": 10240.0, "span_share": 0.2, "first_frame_p99_ms": 350.0, "frames_per_s": 1.0}
    return {
        "converted": {"this": {"rps": 1500.0, "relay_cpu_ms_per_request": 0.6}, "baseline": {"error": "no start"}},
        "fanout": {
            "this": {**fanout_this, "failed": 0, "window_missed": False, "us_per_frame": math.nan},
            "baseline": {"span_frames_per_s": 5120.0, "span_share": 0.1, "first_frame_p99_ms": 700.0, "failed": 3},
        },
        "memory": {"this": {"kib_per_open_stream": 40.0, "growth_kib_per_stream_per_s": 0.01}},
        "workers": {
            "this": {
                "cores": 2,
                "pinned": False,
                "requests_1": {"rps": 2000.0},
                "requests_2": {"rps": 2600.0},
                "fanout_1": {"span_frames_per_s": 9000.0, "failed": 0},
                "fanout_2": {"span_frames_per_s": 12600.0, "failed": 0},
            }
        },
    }


def test_tree_figures_subtract_the_direct_path_and_divide_cpu_by_requests() -> None:
    this = table.tree_figures(requests_results(), lane_results(), "this")
    assert this["added_p50_plain"] == pytest.approx(0.60)
    assert this["added_p99_quota"] == pytest.approx(1.40)
    assert this["rps_quota"] == 1600.0
    assert this["cpu_plain"] == pytest.approx(0.45)  # 0.9 cores / 2,000 req/s = 0.45 ms
    assert this["cpu_quota"] == pytest.approx(0.6)
    assert this["ttft_quota"] == pytest.approx(0.8)
    assert this["rps_converted"] == 1500.0
    assert this["fanout_share"] == pytest.approx(20.0)
    assert this["memory_kib"] == 40.0
    assert this["workers_rps_scaling"] == pytest.approx(1.3)
    assert this["workers_frames_scaling"] == pytest.approx(1.4)
    base = table.tree_figures(requests_results(), lane_results(), "baseline")
    assert base["added_p50_quota"] == pytest.approx(1.0)
    assert base["ttft_quota"] is None
    assert base["rps_converted"] is None  # the lane failed for the baseline
    assert base["memory_kib"] is None  # the lane did not run for it
    assert base["workers_rps_scaling"] is None


def test_rows_follow_the_issue_and_the_ratio_is_this_over_baseline() -> None:
    this = table.tree_figures(requests_results(), lane_results(), "this")
    base = table.tree_figures(requests_results(), lane_results(), "baseline")
    rows = table.rows(this, base)
    assert [r["key"] for r in rows] == [r.key for r in table.ROWS]
    by_key = {r["key"]: r for r in rows}
    assert by_key["rps_plain"]["ratio"] == pytest.approx(2000 / 1800, abs=1e-3)
    assert by_key["fanout_frames"]["ratio"] == pytest.approx(2.0)
    assert by_key["rps_converted"]["ratio"] is None
    assert "baseline" not in table.rows(this, None)[0]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(2.0, 1.0, 2.0), (1.0, 0.0, None), (-0.1, 0.5, None), (None, 1.0, None), (math.nan, 1.0, None), (1, 3, 0.333)],
)
def test_quotient_only_of_two_positive_figures(a: Any, b: Any, expected: float | None) -> None:
    assert table.quotient(a, b) == expected


def test_markdown_has_a_ratio_column_only_with_a_baseline() -> None:
    this = table.tree_figures(requests_results(), lane_results(), "this")
    base = table.tree_figures(requests_results(), lane_results(), "baseline")
    text = table.markdown(table.rows(this, base), "this tree (abc1234)", "baseline 0bb1024")
    lines = text.splitlines()
    assert lines[0] == "| figure | unit | this tree (abc1234) | baseline 0bb1024 | this / baseline |"
    assert len(lines) == 2 + len(table.ROWS)
    assert all(line.count("|") == 6 for line in lines)
    assert "| req/s c=64, one core, plain key | req/s | 2,000 | 1,800 | 1.111x |" in lines
    assert "| converted (Chat client → Anthropic upstream) c=64 | req/s | 1,500 | - | - |" in lines
    alone = table.markdown(table.rows(this, None), "this tree", None).splitlines()
    assert alone[0] == "| figure | unit | this tree |"
    assert "| added latency c=1 p50, plain key | ms | 0.600 |" in alone


def test_document_is_json_with_rows_figures_and_notes() -> None:
    lanes_raw = lane_results()
    figures = {t: table.tree_figures(requests_results(), lanes_raw, t) for t in ("this", "baseline")}
    doc = table.document(
        date="2026-12-04T00:00:00Z",
        machine={"cores": 2, "cores_usable": 2, "cpu_model": "test cpu"},
        load={"load_1m": 0.1, "load_5m": 0.1, "load_15m": 0.1, "cores": 2, "busy": False},
        trees={"this": {"label": "abc1234"}, "baseline": {"label": "HEAD~1"}},
        figures=figures,
        lane_results=lanes_raw,
        quick=True,
    )
    again = json.loads(json.dumps(doc, allow_nan=False))  # NaN became null
    assert again["lanes"]["fanout"]["this"]["us_per_frame"] is None
    assert again["kind"] == "relay-bench-table"
    assert set(again) >= {"rows", "figures", "notes", "lanes", "machine", "load_at_start", "trees"}
    assert len(again["rows"]) == len(table.ROWS)
    notes = "\n".join(again["notes"])
    assert "converted (baseline): did not run: no start" in notes
    assert "fanout (baseline): 3 streams failed" in notes
    assert "has 2 cores" in notes and "cannot show linear scaling" in notes
    printed = table.render(doc)
    assert "| figure | unit | this tree (abc1234) | baseline HEAD~1 | this / baseline |" in printed


def test_scaling_verdict_only_with_a_core_per_worker() -> None:
    figures = {"workers_rps_scaling": 1.85, "workers_frames_scaling": 1.5}
    pinned = table.scaling_note(8, True, figures)
    assert "rps 1.85x (within 10% of linear)" in pinned
    assert "frames 1.50x (NOT within 10% of linear)" in pinned
    assert "cannot show linear scaling" in table.scaling_note(2, False, figures)
    assert "cannot show linear scaling" in table.scaling_note(8, False, figures)


def test_busy_machine_is_flagged_above_half_a_load_per_core() -> None:
    assert not host.is_busy(0.9, 2)
    assert host.is_busy(1.1, 2)
    quiet = {"load_1m": 0.2, "load_5m": 0.1, "load_15m": 0.0, "cores": 2, "busy": False}
    assert host.load_lines(quiet) == ["load average at start: 0.20 0.10 0.00 (2 cores)"]
    busy = host.load_lines({**quiet, "load_1m": 3.0, "busy": True})
    assert busy[1].startswith("WARNING: the machine was busy at start (load 3.00")
    measured = host.load_at_start()
    assert measured["busy"] == host.is_busy(measured["load_1m"], measured["cores"])


def test_lanes_arguments() -> None:
    assert run.lanes_from("all") == lanes.LANES
    assert run.lanes_from("none") == ()
    assert run.lanes_from("fanout, workers") == ("fanout", "workers")
    with pytest.raises(SystemExit):
        run.lanes_from("fanout,nonsense")
    table_mode = run.settings_from(run.parse_args(["--quick", "--baseline", "HEAD~1"]))
    assert table_mode.table and table_mode.gateway and table_mode.lanes == lanes.LANES
    plain = run.settings_from(run.parse_args(["--quick"]))
    assert not plain.table and not plain.gateway and plain.lanes == ()
    requests_only = run.settings_from(run.parse_args(["--baseline", "HEAD~1", "--lanes", "none"]))
    assert requests_only.table and requests_only.lanes == ()


def test_lane_command_lines_carry_the_issue_sizes(tmp_path: Path) -> None:
    argv = lanes.fanout_argv(tmp_path, tmp_path / "out.json", 2, pin=False)
    assert argv[argv.index("--streams") + 1] == "1024" and argv[argv.index("--chunks") + 1] == "64"
    assert argv[argv.index("--workers") + 1] == "2" and "--no-pin" in argv
    settings = lanes.LaneSettings.sized(quick=True, pin=True, concurrency=64)
    args = lanes.memory_args(tmp_path, settings)
    assert (args.streams, args.delay_ms, args.seconds) == (1024, lanes.MEMORY_DELAY_MS, settings.memory_seconds)


def test_lane_status_tells_a_lane_that_could_not_run_from_failed_streams() -> None:
    assert run.lane_status({"error": "x"}) == 2
    assert run.lane_status({"failed": 2}) == 1
    assert run.lane_status({"fanout_1": {"failed": 0}, "fanout_2": {"failed": 1}}) == 1
    assert run.lane_status({"failed": 0, "frames_per_s": 1.0}) == 0


def test_tree_seconds_counts_the_live_children_of_a_process() -> None:
    """A supervisor's own CPU is about 0: its workers' must count (``relay serve --workers N``)."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        deadline = time.monotonic() + 20
        while (process_seconds(busy.pid) or 0) < 0.2 and time.monotonic() < deadline:
            time.sleep(0.05)
        mine, theirs = process_seconds(os.getpid()), process_seconds(busy.pid)
        tree = tree_seconds(os.getpid())
        assert mine is not None and theirs is not None and tree is not None
        assert theirs >= 0.2
        assert tree >= mine + theirs
    finally:
        busy.kill()
        busy.wait()


def test_the_lanes_relay_configurations_are_accepted_by_relay(tmp_path: Path) -> None:
    """A lane whose relay.toml Relay refused would only show as an empty cell: check them here."""
    roomy = loads(many_streams_toml("passthrough", "http://127.0.0.1:9", tmp_path / "relay.db"))
    assert roomy.upstream.max_connections == MAX_CONNECTIONS > lanes.MEMORY_STREAMS
    converted = loads(lanes.relay_toml(lanes.anthropic_channel(9)))
    assert converted.channels[0].type == "anthropic" and converted.server.workers == 1
    assert loads(lanes.relay_toml(lanes.openai_channel(9))).channels[0].base_url == "http://127.0.0.1:9/v1"


def test_span_figures_compare_the_whole_fanout_with_the_pace() -> None:
    args = argparse.Namespace(chunks=64, delay_ms=20)
    on_time = span_figures(args, 1.28, 65_536, 10.0, 11.0)
    assert on_time["span_share"] == pytest.approx(1.0)
    assert on_time["span_frames_per_s"] == pytest.approx(51_200)
    assert on_time["span_us_per_frame"] == pytest.approx(1e6 / 65_536)
    slow = span_figures(args, 5.12, 65_536, None, 11.0)
    assert slow["span_share"] == pytest.approx(0.25)
    assert math.isnan(slow["span_us_per_frame"])
    assert span_figures(args, 0.0, 0, 1.0, 1.0)["span_share"] == 0.0


def test_each_tree_runs_the_baseline_first_and_keeps_one_trees_failure_to_itself(tmp_path: Path) -> None:
    order: list[str] = []

    def measure(tree: str, code: Path) -> dict[str, Any]:
        order.append(tree)
        if tree == "baseline":
            raise TimeoutError("stream client gave up")
        return {"rps": 1.0, "code": str(code)}

    out = lanes.each_tree({"this": tmp_path, "baseline": tmp_path}, measure)
    assert order == ["baseline", "this"]
    assert out["baseline"] == {"error": "TimeoutError: stream client gave up"}
    assert out["this"]["rps"] == 1.0
    assert run.lane_status(out["baseline"]) == 2 and run.lane_status(out["this"]) == 0


def test_memory_per_stream_counts_the_streams_that_opened() -> None:
    result = {"rss_before_kib": 40_000, "rss_kib": {"open": 60_000}, "running": {"open": 500}}
    assert lanes.per_open_stream(result) == 40.0  # 20,000 KiB over the 500 open, not over the 1,024 asked for
    assert lanes.per_open_stream({**result, "running": {"open": 0}}) is None

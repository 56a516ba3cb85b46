"""bench.realtime, the Realtime benchmark: a tiny run (``--quick --sessions 10``, few rounds) completes against a
real ``relay serve`` and ``relay mock-upstream``, exits 0, and its JSON carries every figure the report quotes, with
no failure. No figure's size is asserted (speed is never tested); counts that the mock makes exact are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.procs import ROOT

SESSIONS = 10
ROUNDS = 30
#: Frames of one audio response of the mock's 8 chunks: response.created, output_item.added, content_part.added,
#: 8 x (output_audio.delta, output_audio_transcript.delta), output_audio.done, output_audio_transcript.done,
#: output_item.done, response.done.
AUDIO_FRAMES = 3 + 2 * 8 + 4


def test_quick_run_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "realtime.json"
    argv = [sys.executable, "-m", "bench.realtime", "--quick", "--sessions", str(SESSIONS)]
    argv += ["--rounds", str(ROUNDS), "--warmup", "4", "--settle", "1", "--cycles", "2", "--no-pin", "--json", str(out)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["failures"] == 0
    assert "Added frame latency" in done.stdout and "Memory: 10 sessions" in done.stdout

    latency = report["latency"]
    assert latency["rounds"] == ROUNDS and latency["failures"] == 0 and latency["relay_log_errors"] == 0
    assert latency["frames_per_response"] == AUDIO_FRAMES
    for path in ("relay", "direct"):
        assert latency[path]["first_frame"]["n"] == ROUNDS
        assert latency[path]["response"]["n"] == ROUNDS
        assert latency[path]["gap"]["n"] == ROUNDS * (AUDIO_FRAMES - 1)
        for figure in ("first_frame", "gap", "response"):
            assert {"p50", "p99"} <= latency[path][figure].keys()
    assert set(latency["added"]) == {f"{f}_{q}_ms" for f in ("first_frame", "gap", "response") for q in ("p50", "p99")}
    assert latency["paired"]["first_frame"]["n"] == ROUNDS
    for figure in ("relay_us_per_frame", "mock_us_per_frame", "client_us_per_frame"):
        assert latency["cpu"][figure] is not None and latency["cpu"][figure] > 0

    memory = report["memory"]
    assert memory["sessions"] == SESSIONS and memory["failures"] == 0 and memory["relay_log_errors"] == 0
    assert memory["opened"] == memory["answered"] == memory["closed_1000"] == memory["ok"] == SESSIONS
    assert memory["cycles"] == 2 and [c["ok"] for c in memory["per_cycle"]] == [SESSIONS, SESSIONS]
    phases = {"open", "responded", "closed_1s"}
    for process in ("relay", "mock"):
        figures = memory[process]
        for sampled in ("rss_kib", "anon_kib", "file_kib"):
            assert set(figures[sampled]) == {"before", *phases, *(f"2:{p}" for p in phases)}
        assert all(kib > 0 for kib in figures["rss_kib"].values())
        assert phases <= set(figures["bytes_per_session"]) and phases <= set(figures["anon_bytes_per_session"])
        assert figures["after_close_over_before"] > 0
        assert isinstance(figures["leak_bytes_per_session_per_cycle"], int)
    assert (
        report["fd_limit"]["soft"] >= report["fd_limit"]["wanted"]
        or report["fd_limit"]["soft"] == (report["fd_limit"]["hard"])
    )
    assert report["config"]["sessions"] == SESSIONS and report["load_at_start"]["cores"] >= 1

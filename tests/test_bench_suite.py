"""The benchmark suite (bench/suite/, issue 15): its statistics (percentiles, CDF, the interleaving of rounds), its
wire reader and each dialect's token pattern, the bottleneck flags, the reports rendered from a fixed JSON
(tests/fixtures/bench_suite_results.json), the routing of ``python -m bench``, and a tiny end-to-end run of every
lane against real processes (``relay serve`` in front of ``relay mock-upstream``). No timing is asserted."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.neutral import NeutralMock, neutral_mock, wire
from bench.procs import ROOT
from bench.suite import cli, report_html, report_md, route
from bench.suite.dialects import DIALECT
from bench.suite.rig import SATURATED, endpoint, flags, mock_endpoint, pinning, settings_for
from bench.suite.stats import added, cdf, gaps, interleaving, sketch, summary
from bench.suite.wire import Response
from bench.targets import Route, Target

FIXTURE = Path(__file__).parent / "fixtures" / "bench_suite_results.json"


# ---- statistics -----------------------------------------------------------------------------------------


def test_summary_percentiles_of_known_samples():
    got = summary([float(v) for v in range(1, 1001)])  # 1..1000
    assert got["n"] == 1000
    assert got["mean"] == 500.5
    # Linear interpolation between order statistics: rank (n-1)*q/100.
    assert got["p50"] == pytest.approx(500.5)
    assert got["p90"] == pytest.approx(900.1)
    assert got["p99"] == pytest.approx(990.01)
    assert got["p99_9"] == pytest.approx(999.001)
    assert got["max"] == 1000
    assert summary([]) == {"n": 0}
    assert summary([3.0])["p99_9"] == 3.0


def test_added_is_target_minus_direct_at_each_percentile():
    direct = summary([1.0, 2.0, 3.0])
    relay = summary([1.5, 2.5, 3.5])
    assert added(relay, direct) == {"mean": 0.5, "p50": 0.5, "p90": 0.5, "p99": 0.5, "p99_9": 0.5}


def test_sketch_keeps_the_distribution_and_cdf_steps():
    samples = [float(v) for v in range(10_000, 0, -1)]
    kept = sketch(samples, 101)
    assert len(kept) == 101
    assert kept[0] == 1.0 and kept[-1] == 10_000.0
    assert kept == sorted(kept)
    assert kept[50] == pytest.approx(5000.5)
    xs, ys = cdf(kept)
    assert xs == kept and ys[0] == 0.0 and ys[-1] == 1.0 and ys[50] == pytest.approx(0.5)
    assert sketch([3.0, 1.0]) == [1.0, 3.0]  # fewer samples than points: all of them, sorted
    assert cdf([]) == ([], [])


def test_gaps_between_arrivals():
    assert gaps([0.0, 10.0, 25.0, 25.0]) == [10.0, 15.0, 0.0]
    assert gaps([1.0]) == []


def test_interleaving_two_targets_alternates():
    assert interleaving(["a", "b"], 4) == [["a", "b"], ["b", "a"], ["b", "a"], ["a", "b"]]


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_interleaving_balances_positions_and_neighbours(n):
    names = [f"t{i}" for i in range(n)]
    rounds = interleaving(names, 2 * n * 3)
    assert all(sorted(r) == names for r in rounds)
    positions = Counter((name, r.index(name)) for r in rounds for name in r)
    assert set(positions.values()) == {6}  # every target in every position equally often
    follows = Counter((a, b) for r in rounds for a, b in itertools.pairwise(r))
    for a in names:
        for b in names:
            if a != b:
                assert follows[(a, b)] == follows[(b, a)]  # each precedes each other as often as it follows it


# ---- wire and dialects ------------------------------------------------------------------------------------

#: One short stream per dialect as its upstream writes it: (events, tokens among them).
STREAMS = {
    "openai_chat": (
        [
            b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
            b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}',
            b'data: {"choices": [{"index": 0, "delta": {"content": "lo"}}]}',
            b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a"}}]}}]}',
            b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
            b"data: [DONE]",
        ],
        3,
    ),
    "openai_responses": (
        [
            b'event: response.created\ndata: {"type":"response.created"}',
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}',
            b'event: response.reasoning_text.delta\ndata: {"type": "response.reasoning_text.delta","delta":"x"}',
            b'event: response.completed\ndata: {"type":"response.completed"}',
        ],
        2,
    ),
    "anthropic": (
        [
            b'event: message_start\ndata: {"type":"message_start"}',
            b'event: content_block_start\ndata: {"type":"content_block_start","index":0}',
            b'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"a"}}',
            b'event: content_block_delta\ndata: {"type": "content_block_delta","delta": {"type": "thinking_delta"}}',
            b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"signature_delta"}}',
            b'event: message_stop\ndata: {"type":"message_stop"}',
        ],
        2,
    ),
    "gemini": (
        [
            b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"a"}]}}]}',
            b'data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"f"}}]}}]}',
            b'data: {"candidates":[{"content":{"parts":[{"text":"c"}]},"finishReason":"STOP"}]}',
        ],
        3,
    ),
}


def _chunked(events: list[bytes], sep: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(e + sep), e + sep) for e in events)
    return head + body + b"0\r\n\r\n"


def _framed(events: list[bytes], sep: bytes, framing: str) -> bytes:
    if framing == "chunk per event":
        return _chunked(events, sep)
    body = b"".join(e + sep for e in events)
    if framing == "one chunk":
        return _chunked([body[: -len(sep)]], sep)
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


@pytest.mark.parametrize("dialect", sorted(STREAMS))
@pytest.mark.parametrize("sep", [b"\n\n", b"\r\n\r\n"])
@pytest.mark.parametrize("framing", ["chunk per event", "one chunk", "content-length"])
def test_tokens_counted_whatever_the_reads(dialect, sep, framing):
    events, tokens = STREAMS[dialect]
    wire = _framed(events, sep, framing)
    for size in (1, 2, 7, 64, len(wire)):
        response = Response(DIALECT[dialect].token, stream=True)
        done = False
        for i in range(0, len(wire), size):
            assert not done
            done = response.feed(wire[i : i + size], i)
        assert done and response.ok and response.status == 200
        assert response.events == len(events)
        assert len(response.token_ns) == tokens, (dialect, size)


def test_response_lengths_and_close():
    plain = Response(DIALECT["openai_chat"].token, stream=False)
    assert not plain.feed(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab", 1)
    assert plain.feed(b"cde", 2) and plain.ok
    closing = Response(DIALECT["gemini"].token, stream=True)
    assert not closing.feed(b'HTTP/1.1 200 OK\r\n\r\ndata: {"candidates":[{"content":{"parts":[{"text":"a"}]}}]}', 3)
    assert closing.eof(4) and closing.ok and closing.token_ns == [4]
    refused = Response(DIALECT["anthropic"].token, stream=True)
    assert refused.feed(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\n{}", 1)
    assert not refused.ok
    empty = Response(DIALECT["openai_chat"].token, stream=True)
    assert empty.feed(_chunked([b"data: [DONE]"], b"\n\n"), 1) and not empty.ok  # a stream without a token


@pytest.fixture(scope="module")
def neutral(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NeutralMock]:
    with neutral_mock(tmp_path_factory.mktemp("neutral")) as mock:
        yield mock


@pytest.mark.parametrize("dialect", sorted(DIALECT))
@pytest.mark.parametrize("shape", ["instant", "tools", "reasoning"])
def test_token_patterns_agree_with_the_neutral_mocks_parser(neutral, dialect, shape):
    """The byte patterns the load generators use count the same tokens as bench.neutral.wire's JSON parser, on the
    neutral mock's real streams, text, tool-call arguments and reasoning alike."""
    model = f"bench-{shape}"
    answer = httpx.post(
        neutral.base_url + wire.path(dialect, model, True),
        headers=wire.auth_headers(dialect, "sk-test"),
        json=wire.body(dialect, model, True, tools=shape == "tools"),
        timeout=10,
    )
    assert answer.status_code == 200
    events = wire.events(answer.content)
    parsed = [wire.first_token(dialect, e) for e in events]
    patterned = [bool(DIALECT[dialect].token.search(e)) for e in events]
    assert patterned == parsed
    assert sum(parsed) >= (1 if (dialect, shape) == ("gemini", "tools") else 8)  # Gemini sends a call whole
    assert DIALECT[dialect].done.encode() in events[-1] or dialect == "gemini"
    if dialect == "gemini":
        assert DIALECT[dialect].done.encode() in answer.content


def test_endpoint_uses_the_targets_routes():
    route = Route("anthropic.bench-{shape}", {"x-portkey-provider": "anthropic"})
    target = Target(
        "peer", "portkey", "http://10.0.0.2:8080/api", "k", "anthropic.bench-fixed", "openai_chat", ("openai_chat",),
        [], {}, routes={"openai_chat": {"anthropic": route}, "anthropic": {"anthropic": route}},
    )  # fmt: skip
    ep = endpoint(target)
    assert (ep.name, ep.host, ep.port, ep.dialect) == ("peer", "10.0.0.2", 8080, "openai_chat")
    raw = ep.request("jitter", stream=True)
    assert raw.startswith("POST /api/v1/chat/completions HTTP/1.1\r\nHost: 10.0.0.2:8080\r\n")
    assert "x-portkey-provider: anthropic" in raw and json.loads(raw.split("\r\n\r\n", 1)[1])["model"] == (
        "anthropic.bench-jitter"
    )
    other = endpoint(target, "anthropic", "anthropic").request("fixed", stream=False, prompt="long words")
    assert other.startswith("POST /api/v1/messages ") and '"content":"long words"' in other
    direct = mock_endpoint(Mock("127.0.0.1:9", 1), "gemini")
    assert direct.request("tools", stream=True).startswith(
        "POST /v1beta/models/bench-tools:streamGenerateContent?alt=sse HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"
    )


@dataclass
class Mock:
    address: str
    pid: int


# ---- bottleneck flags, pinning, routing --------------------------------------------------------------------


def test_flags_name_the_saturated_part_only():
    calm = {"loadgen": 0.4, "mock": 0.3, "target": 1.0, "machine": 1.7, "other": 0.0}
    assert flags("sweep", "relay", calm, None) == []
    got = flags("sweep", "relay", {"loadgen": SATURATED, "mock": 0.95, "machine": 1.2, "other": 0.0}, None)
    assert len(got) == 2 and "load generator" in got[0] and "the mock" in got[1]
    cores = os.cpu_count() or 1
    busy = flags("fanout", "x", {"loadgen": 0.1, "mock": 0.1, "machine": 0.96 * cores, "other": 0.6}, None)
    assert any("saturated" in f for f in busy) and any("outside the benchmark" in f for f in busy)
    # Sharing one core, the mock and the load generator saturate it together though neither alone does.
    shared = {"mock": {0}, "loadgen": {0}, "targets": {1}}
    rig = {"loadgen": 0.5, "mock": 0.4, "machine": 1.0, "other": 0.0}
    assert flags("sweep c=16", "direct", rig, shared) == [
        "sweep c=16 [direct]: the mock and the load generator used 0.90 of the 1 core(s) they share: the rig, not the"
        " target, was the bottleneck"
    ]
    assert flags("sweep c=16", "direct", rig, {"mock": {0}, "loadgen": {1}, "targets": {2}}) == []


def test_pinning_plans():
    assert pinning(True, [0, 1]) == {"mock": {0}, "loadgen": {0}, "targets": {1}}
    assert pinning(True, [0, 1, 2, 3]) == {"mock": {0}, "loadgen": {1}, "targets": {2, 3}}
    assert pinning(False, [0, 1]) == {"mock": None, "loadgen": None, "targets": None}
    assert pinning(True, [0]) == {"mock": None, "loadgen": None, "targets": None}


def test_routing_keeps_the_older_benchmarks_flags():
    assert not route.legacy([]) and not route.legacy(["--quick", "--targets", "direct,relay"])
    assert route.legacy(["--table", "--quick"]) and route.legacy(["--baseline=abc"]) and route.legacy(["legacy"])
    assert route.legacy(["--gateway"]) and route.legacy(["--attack", "--stalled", "5"])


def test_targets_split_between_targets_not_options():
    text = "relay:workers=2,config=/x/r.toml,litellm,url:dialect=anthropic,url=http://h:1,key=K,model=M,relay@abc"
    assert cli._split_targets(text) == [
        "relay:workers=2,config=/x/r.toml",
        "litellm",
        "url:dialect=anthropic,url=http://h:1,key=K,model=M",
        "relay@abc",
    ]
    assert cli._split_targets("direct,nginx") == ["direct", "nginx"]  # refused by name by parse_target


def test_help_documents_every_lane_and_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for lane in cli.LANES:
        assert re.search(rf"^  {lane}\s", text, re.M), lane
    for action in cli.parser()._actions:
        for option in action.option_strings:
            assert option in text
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--lanes", "latency,nope"])


# ---- reports from a fixed JSON ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_markdown_table_shape(doc):
    table = report_md.table(doc).splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header == ["figure", "direct", "relay"]
    assert re.fullmatch(r"\|---\|(---\|){2}", table[1])
    assert len(table) == 2 + len(report_md.rows(doc))
    for line in table[2:]:
        assert line.count("|") == 4
    row = next(line for line in table if line.startswith("| latency c=1 p50 ms"))
    relay = doc["lanes"]["latency"]["results"]["relay"]
    assert f"{relay['total']['p50']:.3f} ({relay['added']['total']['p50']:+.3f})" in row
    md = report_md.markdown(doc)
    assert "## Targets as configured" in md
    relay_line = next(line for line in md.splitlines() if line.startswith("- **relay** (relay, openai_chat): "))
    assert "workers=1" in relay_line and "relay_toml=(in results.json)" in relay_line and "routes" not in relay_line
    assert "litellm: fixture: litellm is not installed" in md
    assert "openai_chat → anthropic" in md  # the conversion table


def test_html_report_embeds_every_plot(doc):
    page = report_html.render(doc)
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    titles = re.findall(r"<h3>([^<]+)</h3><img alt='[^']+' src='data:image/png;base64,([A-Za-z0-9+/=]+)'>", page)
    assert [t for t, _ in titles] == [
        "Latency CDF at concurrency 1",
        "Time to first token",
        "Inter-token gaps",
        "Concurrency sweep",
        "Fan-out",
        "Memory against open streams",
    ]
    for _, data in titles:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert "http://" not in page.split("<h2>Plots</h2>", 1)[1].split("<h2>Targets")[0]  # nothing fetched
    assert "<table>" in page and "latency c=1 p99.9 ms (added)" in page


def test_render_again_from_results_json(doc, tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    assert cli.main(["--render", str(tmp_path)]) == 0
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == report_md.markdown(doc)
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text(encoding="utf-8")


# ---- a tiny end-to-end run ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``python -m bench --quick`` against direct and this checkout's Relay, every lane sized down to seconds."""
    root: Path = tmp_path_factory.mktemp("bench_suite")
    out = root / "out"
    argv = ["--quick", "--targets", "direct,relay", "--lanes", "all", "--seconds", "0.2", "--rounds", "40"]
    argv += ["--stream-rounds", "2", "--sweep", "1,8", "--fanout", "16", "--out", str(out), "--no-progress"]
    argv += ["--peer-cache", str(root / "cache")]  # nothing written outside the test's folder
    done = subprocess.run(
        [sys.executable, "-m", "bench", *argv], capture_output=True, text=True, cwd=ROOT, timeout=55, check=False
    )
    return done, out


@pytest.mark.timeout(60)
def test_quick_run_end_to_end(run):
    done, out = run
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert list(doc["lanes"]) == list(cli.LANES)
    assert not [name for name, lane in doc["lanes"].items() if lane.get("skipped")], doc["lanes"]
    assert set(doc["targets"]) == {"direct", "relay"} and doc["skipped"] == {}
    assert doc["targets"]["relay"]["configured"]["workers"] == 1
    lanes = doc["lanes"]
    latency = lanes["latency"]["results"]
    assert latency["direct"]["total"]["n"] == 40 and latency["relay"]["total"]["n"] == 40
    assert latency["relay"]["baseline"] == "direct" and set(latency["relay"]["added"]["total"]) >= {"p50", "p99_9"}
    stream = lanes["stream"]["results"]["relay"]
    assert stream["ttft"]["n"] == 2 and stream["gaps"]["n"] == 2 * 63  # shape fixed: 64 tokens, 63 gaps each
    assert 5 < stream["gaps"]["p50"] < 50  # 10 ms apart at the mock: the gaps are the mock's pace, not reads
    assert lanes["long_prompt"]["prompt_bytes"] >= 400_000
    assert set(lanes["sweep"]["results"]["relay"]) == {"1", "8"}
    assert all(level["completed"] > 0 for level in lanes["sweep"]["results"]["relay"].values())
    fan = lanes["fanout"]["results"]["relay"]["16"]
    assert fan["errors"] == 0 and fan["frames"] > 16 * 64 and fan["cpu_us_per_frame"] > 0 and fan["of_ideal"] > 0
    pairs = lanes["convert"]["results"]["relay"]
    routes = doc["targets"]["relay"]["configured"]["routes"]
    assert {(r["client"], r["upstream"]) for r in pairs.values()} == {(c, u) for c in routes for u in routes[c]}
    assert all(r["ttft"]["n"] == settings_for(True, None, out, {}).convert_rounds for r in pairs.values())
    slow = lanes["slow"]["results"]["relay"]
    assert slow["with"]["stalled"] == 64 and slow["alone"]["completed"] > 0 and slow["with"]["completed"] > 0
    assert cli.failures(doc) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 6
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.strip() in done.stdout  # the Markdown report is printed too
    assert "| figure | direct | relay |" in md and "relay | anthropic → gemini" in md


def test_python_m_bench_help_is_the_suite():
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0 and "--targets" in done.stdout and "fanout" in done.stdout


def test_a_bad_target_is_a_clear_error():
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--targets", "nginx", "--no-progress"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=30,
    )
    assert done.returncode == 2 and "unknown target kind 'nginx'" in done.stderr and "Traceback" not in done.stderr

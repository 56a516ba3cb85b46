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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.procs import ROOT
from bench.suite import cli, report_html, report_md, route
from bench.suite.dialects import DIALECT, request_bytes
from bench.suite.rig import SATURATED, endpoint, flags, pinning, settings_for
from bench.suite.stats import added, cdf, gaps, interleaving, sketch, summary
from bench.suite.wire import Response
from tests.conftest import process
from tests.helpers import KEY, MOCK_ARGS, upstream_relay_toml

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
            b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"a"}}',
            b'event: content_block_delta\ndata: {"type": "content_block_delta","delta":{"text":"b"}}',
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


@pytest.mark.parametrize("dialect", sorted(DIALECT))
def test_request_bytes_per_dialect(dialect):
    raw = request_bytes(dialect, "127.0.0.1:9", "sk-x", "bench-fixed", stream=True, headers={"x-extra": "1"})
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("POST /v1") and lines[0].endswith(" HTTP/1.1")
    assert f"Content-Length: {len(body)}" in lines and "x-extra: 1" in lines
    assert "sk-x" in head.decode()
    document = json.loads(body)
    if dialect == "gemini":
        assert ":streamGenerateContent?alt=sse" in lines[0] and "bench-fixed" in lines[0]
    else:
        assert document["model"] == "bench-fixed" and document["stream"] is True


def test_endpoint_from_a_target_and_the_shape_model():
    target = Target("p", "url", "http://10.0.0.2:8080/api/v1", "k", "openai/bench-fixed", "anthropic")
    ep = endpoint(target)
    assert (ep.host, ep.port, ep.prefix, ep.dialect) == ("10.0.0.2", 8080, "/api", "anthropic")
    assert ep.model_for("jitter") == "openai/bench-jitter"
    assert ep.request("instant", stream=False).startswith("POST /api/v1/messages HTTP/1.1\r\nHost: 10.0.0.2:8080")
    real = endpoint(Target("q", "url", "https://api.example.com", "k", "gpt-x", "openai_chat"))
    assert real.port == 443 and real.model_for("jitter") == "gpt-x"


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
    assert "## Targets as configured" in md and "**relay** (relay, openai_chat): workers=1" in md
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


@dataclass
class Target:
    """The contract's Target (bench/targets), built here around processes of the test's own."""

    name: str
    kind: str
    base_url: str
    api_key: str
    model: str
    dialect: str
    dialects: tuple[str, ...] = ("openai_chat",)
    pids: list[int] = field(default_factory=list)
    configured: dict[str, object] = field(default_factory=dict)


@dataclass
class Mock:
    address: str
    pid: int


#: One channel for the bench models, and one per upstream dialect for the conversion lane.
CHANNELS = (
    ("bench", "openai", "/v1", 'api = "chat"\n', "bench-*"),
    ("chat", "openai", "/v1", 'api = "chat"\n', "chat-1"),
    ("resp", "openai", "/v1", 'api = "responses"\n', "resp-1"),
    ("claude", "anthropic", "", "", "claude-1"),
    ("gemini", "gemini", "", "", "gemini-1"),
)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Target], Mock, Path]]:
    root: Path = tmp_path_factory.mktemp("bench_suite")
    with process(*MOCK_ARGS) as (mock_proc, upstream):
        (root / "relay.toml").write_text(upstream_relay_toml(f"http://{upstream}", channels=CHANNELS))
        with process("serve", "--config", str(root / "relay.toml")) as (relay_proc, address):
            direct = Target("direct", "direct", f"http://{upstream}", "x", "bench-fixed", "openai_chat")
            direct.pids = [mock_proc.pid]
            relay = Target("relay", "relay", f"http://{address}", KEY, "bench-fixed", "openai_chat")
            relay.dialects = ("openai_chat", "anthropic")
            relay.pids = [relay_proc.pid]
            relay.configured = {"workers": 1, "upstream_models": {"anthropic": "claude-1", "gemini": "gemini-1"}}
            yield [direct, relay], Mock(upstream, mock_proc.pid), root


def test_every_lane_end_to_end(rig):
    targets, mock, root = rig
    settings = settings_for(True, 0.2, root, pinning(False))
    settings.progress = False
    settings.rounds, settings.warmup_rounds, settings.stream_rounds = 40, 5, 3
    settings.convert_rounds, settings.long_rounds, settings.long_prompt_bytes = 5, 3, 50_000
    settings.sweep, settings.fanout, settings.slow_readers, settings.slow_stalled = (1, 8), (16,), 2, 4
    lanes = cli.run_lanes(targets, mock, settings, list(cli.LANES))  # type: ignore[arg-type]
    assert list(lanes) == list(cli.LANES)
    assert not [lane.get("skipped", {}).get("*") for lane in lanes.values() if lane.get("skipped", {}).get("*")]
    latency = lanes["latency"]["results"]
    assert latency["direct"]["total"]["n"] == 40 and latency["relay"]["total"]["n"] == 40
    assert latency["relay"]["baseline"] == "direct" and set(latency["relay"]["added"]["total"]) >= {"p50", "p99_9"}
    stream = lanes["stream"]["results"]["relay"]
    assert stream["ttft"]["n"] == 3 and stream["gaps"]["n"] > 0 and "p99" in stream["added"]["gaps"]
    assert lanes["long_prompt"]["prompt_bytes"] >= 50_000
    assert set(lanes["sweep"]["results"]["relay"]) == {"1", "8"}
    assert all(level["completed"] > 0 for level in lanes["sweep"]["results"]["relay"].values())
    fan = lanes["fanout"]["results"]["relay"]["16"]
    assert fan["errors"] == 0 and fan["frames"] > 0 and fan["cpu_us_per_frame"] > 0
    pairs = lanes["convert"]["results"]["relay"]
    assert {(r["client"], r["upstream"]) for r in pairs.values()} == {
        (c, u) for c in ("openai_chat", "anthropic") for u in ("anthropic", "gemini")
    }
    assert all(r["ttft"]["n"] == 5 for r in pairs.values())
    slow = lanes["slow"]["results"]["relay"]
    assert slow["with"]["stalled"] == 4 and slow["alone"]["completed"] > 0 and slow["with"]["completed"] > 0
    doc = cli.document(["--quick"], settings, targets, {}, lanes, {}, cli.machine())  # type: ignore[arg-type]
    assert cli.failures(doc) == 0
    json.dumps(doc)  # the raw JSON is plain data
    cli.write(doc, root / "out")
    assert (root / "out" / "report.html").read_text(encoding="utf-8").count("data:image/png;base64,") == 6


def test_python_m_bench_help_is_the_suite():
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0 and "--targets" in done.stdout and "fanout" in done.stdout

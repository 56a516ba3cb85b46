"""The benchmark's targets (bench/targets): specs, the direct and Relay targets started and verified route by
route against the neutral mock, targets that cannot be set up skipped with the reason, and (with
RELAY_BENCH_PEERS=1, which installs them into the cache) LiteLLM, Portkey and relay@REV."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from bench.neutral import DIALECTS, NeutralMock, neutral_mock
from bench.neutral.cost import mock_cost
from bench.targets import SpecError, Target, parse_target, started
from bench.targets.process import errors_of
from bench.targets.verify import exchange

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node runs the neutral mock")
PEERS = os.environ.get("RELAY_BENCH_PEERS") == "1"


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NeutralMock]:
    with neutral_mock(tmp_path_factory.mktemp("neutral")) as running:
        yield running


# ---- specs ------------------------------------------------------------------------------------------------


def test_parse_target_forms() -> None:
    assert parse_target("direct").kind == "direct"
    relay = parse_target("relay:workers=2,config=/tmp/r.toml")
    assert (relay.kind, relay.name, relay.workers(), relay.get("config")) == ("relay", "relay", 2, "/tmp/r.toml")
    rev = parse_target("relay@abc123:name=before")
    assert (rev.kind, rev.rev, rev.name) == ("relay", "abc123", "before")
    assert parse_target("relay@abc123").name == "relay@abc123"
    assert parse_target("litellm:version=1.108.7").get("version") == "1.108.7"
    url = parse_target("url:dialect=anthropic,url=http://127.0.0.1:9/x,key=k,model=claude-x")
    assert url.options == {"dialect": "anthropic", "url": "http://127.0.0.1:9/x", "key": "k", "model": "claude-x"}


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("nginx", "unknown target kind 'nginx'"),
        ("litellm@v1", "only relay takes @REV"),
        ("relay@", "needs a git revision"),
        ("relay:workers=0", "workers must be a whole number >= 1"),
        ("relay:threads=2", "relay takes no option 'threads' (it takes: workers, config, name)"),
        ("relay:workers", "'workers' is not key=value"),
        ("portkey:version=1,version=2", "version given twice"),
        ("url:dialect=anthropic,url=http://h:1", "url needs model"),
        ("url:dialect=cohere,url=http://h:1,model=m", "dialect must be one of"),
        ("url:dialect=gemini,url=https://h,model=m", "must start with http://"),
    ],
)
def test_parse_target_refusals(spec: str, says: str) -> None:
    with pytest.raises(SpecError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_target(spec)


def test_two_targets_of_one_name_are_refused(mock: NeutralMock, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="two targets named relay"):
        with started([parse_target("relay"), parse_target("relay:workers=2")], mock, tmp_path):
            pass


# ---- direct and relay -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def targets(mock: NeutralMock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Target]]:
    work = tmp_path_factory.mktemp("targets")
    specs = [parse_target(s) for s in ("direct", "relay:workers=2", "relay@no-such-revision-here")]
    with started(specs, mock, work, cache=work / "cache") as (up, skipped):
        assert list(skipped) == ["relay@no-such-revision-here"]
        assert "not a revision here" in skipped["relay@no-such-revision-here"]
        yield {t.name: t for t in up}


def test_direct_serves_each_dialect_natively(targets: dict[str, Target], mock: NeutralMock) -> None:
    direct = targets["direct"]
    assert direct.kind == "direct" and direct.base_url == mock.base_url and direct.pids == [mock.pid]
    assert direct.pairs() == [(d, d) for d in DIALECTS]
    assert direct.model == "bench-fixed"


def test_relay_serves_every_dialect_pair(targets: dict[str, Target], mock: NeutralMock) -> None:
    relay = targets["relay"]
    assert relay.kind == "relay" and relay.dialects == DIALECTS
    assert sorted(relay.pairs()) == sorted((c, u) for c in DIALECTS for u in DIALECTS)
    assert relay.model == "chat.bench-fixed"
    assert "workers = 2" in str(relay.configured["relay_toml"]) and relay.configured["workers"] == 2
    assert len(relay.pids) == 3  # the supervisor and its two workers
    assert relay.cpu_seconds() > 0 and relay.rss_bytes() > 10_000_000
    assert "routes_dropped" not in relay.configured


def test_relay_answers_an_sdk_through_a_conversion(targets: dict[str, Target], mock: NeutralMock) -> None:
    relay = targets["relay"]
    before = mock.stats()["dialects"]
    client = anthropic.Anthropic(base_url=relay.base_url, api_key=relay.api_key, max_retries=0)
    model = relay.model_for("reasoning", client="anthropic", upstream="gemini")
    with client.messages.stream(model=model, max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert mock.stats()["dialects"]["gemini"] == before["gemini"] + 1


def test_target_request_bytes_reach_the_route(targets: dict[str, Target]) -> None:
    relay = targets["relay"]
    raw = relay.request("tools", stream=False, client="openai_responses", upstream="anthropic")
    assert raw.startswith(b"POST /v1/responses HTTP/1.1\r\n") and b'"model":"anthropic.bench-tools"' in raw
    assert b"authorization: Bearer sk-bench-relay" in raw and b'"tools":[' in raw
    status, body = exchange(relay.base_url, raw)
    assert status == 200 and b'"type":"function_call"' in body


def test_mock_cost_through_relay(targets: dict[str, Target], mock: NeutralMock) -> None:
    result = mock_cost(mock, targets["relay"], shape="instant", concurrency=2, duration=0.5)
    assert result["errors"] == 0 and result["ok"] == result["requests"] > 0
    assert result["target_cpu_s"] > 0 and result["mock_share"] is not None
    assert isinstance(result["mock_bound"], bool)


def test_a_given_relay_toml_keeps_only_the_routes_it_serves_as_named(mock: NeutralMock, tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text(
        """[server]
listen = "127.0.0.1:0"
access_log = false
[store]
url = "sqlite://:memory:"
[[channels]]
name = "only-anthropic"
type = "anthropic"
base_url = "{mock}"
models = []
[channels.model_map]
"anthropic.bench-instant" = "bench-instant"
"anthropic.bench-fixed" = "bench-fixed"
"chat.bench-instant" = "bench-instant"
[[keys]]
name = "mine"
key = "sk-mine-key"
models = ["*"]
""",
        encoding="utf-8",
    )
    with started([parse_target(f"relay:config={config},name=mine")], mock, tmp_path / "work") as (up, skipped):
        assert skipped == {}
        (mine,) = up
        assert mine.api_key == "sk-mine-key" and "{mock}" not in str(mine.configured["relay_toml"])
        assert sorted(mine.pairs()) == [(c, "anthropic") for c in sorted(DIALECTS)]
        dropped = mine.configured["routes_dropped"]
        assert isinstance(dropped, dict) and "openai_chat->gemini" in dropped
        # chat.bench-* answers, but from the Anthropic channel: the mock's count tells.
        assert "called with anthropic x2, not openai_chat x2" in dropped["gemini->openai_chat"]
        assert mine.dialect == "openai_chat" and mine.model == "anthropic.bench-fixed"


def test_a_url_target_is_verified_and_a_dead_one_skipped(mock: NeutralMock, tmp_path: Path) -> None:
    good = f"url:dialect=anthropic,url={mock.base_url},key=k,model=bench-instant,name=remote"
    dead = "url:dialect=openai_chat,url=http://127.0.0.1:9,model=m,name=dead"
    with started([parse_target(good), parse_target(dead)], mock, tmp_path) as (up, skipped):
        assert [t.name for t in up] == ["remote"] and up[0].pids == []
        assert up[0].pairs() == [("anthropic", "anthropic")] and up[0].model == "bench-instant"
        assert "dead" in skipped and "no route works" in skipped["dead"]


# ---- peers (installed on demand; RELAY_BENCH_PEERS=1) -----------------------------------------------------


@pytest.mark.skipif(not PEERS, reason="RELAY_BENCH_PEERS=1 installs and runs LiteLLM, Portkey and relay@HEAD")
def test_peers_start_and_verify(mock: NeutralMock, tmp_path: Path) -> None:
    specs = [parse_target(s) for s in ("litellm", "portkey", "relay@HEAD")]
    with started(specs, mock, tmp_path) as (up, skipped):
        assert skipped == {}
        by = {t.name: t for t in up}
        assert ("openai_chat", "openai_chat") in by["litellm"].pairs()
        assert ("anthropic", "anthropic") in by["litellm"].pairs()
        assert ("openai_chat", "openai_chat") in by["portkey"].pairs()
        assert ("gemini", "gemini") in by["portkey"].pairs()
        assert by["relay@HEAD"].pairs() and "venv" in by["relay@HEAD"].configured
        for target in up:
            client = openai.OpenAI(base_url=f"{target.base_url}/v1", api_key=target.api_key, max_retries=0)
            headers = target.route("openai_chat").headers
            with client.chat.completions.stream(
                model=target.model_for("fixed", client="openai_chat"),
                messages=[{"role": "user", "content": "hi"}],
                extra_headers=headers,
            ) as s:
                final = s.get_final_completion()
            assert len((final.choices[0].message.content or "").split()) == 64, target.name


def test_an_installers_errors_are_the_skip_reason() -> None:
    pip = "WARNING: Location 'file:///x' is ignored\n" * 50 + "ERROR: No matching distribution found for x==9\n"
    assert errors_of(pip) == "ERROR: No matching distribution found for x==9"
    npm = "npm error code ETARGET\nnpm error notarget none\n"
    assert errors_of(npm) == npm.strip()
    assert errors_of("just a crash\n") == "just a crash\n"

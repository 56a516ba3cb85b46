"""The benchmark's neutral mock (bench/neutral), the C one and the node one alike: each dialect and shape, whole and
streamed, read by the official SDKs; its ids, token counts, errors, HTTP framing, counts and cost meter; and the two
mocks' answers equal byte for byte (ids aside)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from bench.http1 import ResponseReader
from bench.neutral import NeutralMock, cbuild, neutral_mock, wire
from bench.neutral.cost import mock_cost
from bench.neutral.server import choose
from bench.procs import BenchError
from bench.targets.verify import dechunk, exchange

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node runs the neutral mock")

SHAPES = ("instant", "fixed", "jitter", "tools", "reasoning")
#: Text pieces, reasoning pieces of each shape (the tool shape: 16 pieces of arguments, no text).
PIECES = {"instant": (8, 0), "fixed": (64, 0), "jitter": (64, 0), "tools": (0, 0), "reasoning": (32, 32)}
TOOL_ARGS = {
    "location": "Lisbon, Portugal",
    "unit": "celsius",
    "days": 3,
    "include": ["temperature", "wind", "humidity", "precipitation"],
}


NO_GCC = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the C mock")
#: Every test taking ``mock`` runs on both mocks.
MOCKS = [pytest.param("c", marks=NO_GCC), "node"]


@pytest.fixture(scope="module", params=MOCKS)
def mock(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NeutralMock]:
    with neutral_mock(tmp_path_factory.mktemp("neutral"), mock=request.param) as running:
        assert running.kind == request.param
        yield running


def _words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("shape", SHAPES)
def test_openai_chat_sdk(mock: NeutralMock, shape: str, stream: bool) -> None:
    client = openai.OpenAI(base_url=f"{mock.base_url}/v1", api_key="sk-test", max_retries=0)
    messages: Any = [{"role": "user", "content": "hi"}]
    if stream:
        with client.chat.completions.stream(model=f"bench-{shape}", messages=messages) as events:
            deltas = [e for e in events if e.type == "content.delta" and e.delta]
            final = events.get_final_completion()
        assert len(deltas) == PIECES[shape][0]
    else:
        final = client.chat.completions.create(model=f"bench-{shape}", messages=messages)
    message = final.choices[0].message
    assert final.model == f"bench-{shape}"
    if shape == "tools":
        assert message.tool_calls and json.loads(message.tool_calls[0].function.arguments) == TOOL_ARGS
        assert final.choices[0].finish_reason == "tool_calls"
        return
    assert _words(message.content or "") == PIECES[shape][0]
    reasoning = (message.model_extra or {}).get("reasoning_content") or ""
    assert _words(reasoning) == PIECES[shape][1]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("shape", SHAPES)
def test_openai_responses_sdk(mock: NeutralMock, shape: str, stream: bool) -> None:
    client = openai.OpenAI(base_url=f"{mock.base_url}/v1", api_key="sk-test", max_retries=0)
    if stream:
        with client.responses.stream(model=f"bench-{shape}", input="hi") as events:
            kinds = [e.type for e in events]
            final = events.get_final_response()
        assert kinds.count("response.output_text.delta") == PIECES[shape][0]
        assert kinds.count("response.reasoning_summary_text.delta") == PIECES[shape][1]
        assert kinds[-1] == "response.completed"
    else:
        final = client.responses.create(model=f"bench-{shape}", input="hi")
    assert final.status == "completed" and final.usage is not None
    if shape == "tools":
        call = final.output[0]
        assert call.type == "function_call" and json.loads(call.arguments) == TOOL_ARGS
        return
    assert _words(final.output_text) == PIECES[shape][0]
    summaries = [s.text for item in final.output if item.type == "reasoning" for s in item.summary]
    assert _words("".join(summaries)) == PIECES[shape][1]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("shape", SHAPES)
def test_anthropic_sdk(mock: NeutralMock, shape: str, stream: bool) -> None:
    client = anthropic.Anthropic(base_url=mock.base_url, api_key="sk-test", max_retries=0)
    messages: Any = [{"role": "user", "content": "hi"}]
    if stream:
        with client.messages.stream(model=f"bench-{shape}", max_tokens=100, messages=messages) as events:
            texts = [e for e in events if e.type == "text"]
            final = events.get_final_message()
        assert len(texts) == PIECES[shape][0]
    else:
        final = client.messages.create(model=f"bench-{shape}", max_tokens=100, messages=messages)
    kinds = [block.type for block in final.content]
    if shape == "tools":
        assert kinds == ["tool_use"] and final.stop_reason == "tool_use"
        assert final.content[0].input == TOOL_ARGS  # type: ignore[union-attr]
        return
    text = "".join(b.text for b in final.content if b.type == "text")
    thinking = [b for b in final.content if b.type == "thinking"]
    assert _words(text) == PIECES[shape][0] and final.stop_reason == "end_turn"
    assert _words("".join(b.thinking for b in thinking)) == PIECES[shape][1]
    assert all(b.signature for b in thinking)
    assert final.usage.output_tokens == sum(PIECES[shape])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("shape", SHAPES)
def test_gemini_sdk(mock: NeutralMock, shape: str, stream: bool) -> None:
    client = genai.Client(api_key="sk-test", http_options=genai_types.HttpOptions(base_url=mock.base_url))
    if stream:
        chunks = list(client.models.generate_content_stream(model=f"bench-{shape}", contents="hi"))
        parts = [p for c in chunks for p in c.candidates[0].content.parts]  # type: ignore[index,union-attr]
        assert str(chunks[-1].candidates[0].finish_reason) == "FinishReason.STOP"  # type: ignore[index]
    else:
        answer = client.models.generate_content(model=f"bench-{shape}", contents="hi")
        parts = list(answer.candidates[0].content.parts)  # type: ignore[index,union-attr]
    if shape == "tools":
        calls = [p.function_call for p in parts if p.function_call]
        assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].args == TOOL_ARGS
        return
    text = "".join(p.text or "" for p in parts if not p.thought)
    thoughts = "".join(p.text or "" for p in parts if p.thought)
    assert _words(text) == PIECES[shape][0] and _words(thoughts) == PIECES[shape][1]
    if stream:
        assert len(parts) == sum(PIECES[shape])


def _raw(mock: NeutralMock, dialect: str, shape: str, stream: bool, **extra: Any) -> tuple[int, bytes]:
    request = wire.request(mock.base_url, dialect, f"bench-{shape}", stream=stream, key="k", **extra)
    return exchange(mock.base_url, request)


@pytest.mark.parametrize("dialect", wire.DIALECTS)
def test_first_token_is_the_first_event_with_content(mock: NeutralMock, dialect: str) -> None:
    status, body = _raw(mock, dialect, "reasoning", True)
    events = wire.events(body)
    flags = [wire.first_token(dialect, e) for e in events]
    assert status == 200 and any(flags)
    first = flags.index(True)
    assert first <= 4  # the opening events (role, message_start, ping, block start, response.created) carry none
    assert b"Let" in events[first]  # the first reasoning piece
    assert not wire.first_token(dialect, b"data: [DONE]")


def test_every_answer_has_its_own_id(mock: NeutralMock) -> None:
    ids = set()
    for _ in range(3):
        status, body = _raw(mock, "openai_chat", "instant", False)
        assert status == 200
        ids.add(orjson.loads(body)["id"])
    _, first = _raw(mock, "anthropic", "instant", True)
    _, second = _raw(mock, "anthropic", "instant", True)
    assert len(ids) == 3 and first != second


def test_a_long_prompt_is_accepted_and_counted(mock: NeutralMock) -> None:
    status, body = _raw(mock, "openai_chat", "instant", False, message="x" * 400_000)
    assert status == 200
    usage = orjson.loads(body)["usage"]
    assert usage["prompt_tokens"] >= 100_000
    assert usage["total_tokens"] == usage["prompt_tokens"] + 8


def test_unknown_models_are_refused_in_each_dialect(mock: NeutralMock) -> None:
    chat = openai.OpenAI(base_url=f"{mock.base_url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="bench-instant"):
        chat.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    messages = anthropic.Anthropic(base_url=mock.base_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.NotFoundError):
        messages.messages.create(model="claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    gemini = genai.Client(api_key="k", http_options=genai_types.HttpOptions(base_url=mock.base_url))
    with pytest.raises(genai_errors.ClientError) as refused:
        gemini.models.generate_content(model="gemini-pro", contents="hi")
    assert refused.value.code == 404


def test_gemini_streams_a_json_array_without_alt_sse(mock: NeutralMock) -> None:
    head = b"POST /v1beta/models/bench-tools:streamGenerateContent HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    status, body = exchange(mock.base_url, head)
    (call,) = orjson.loads(body)  # Gemini has no partial arguments: the call comes whole, in one element
    assert status == 200 and call["candidates"][0]["content"]["parts"][0]["functionCall"]["args"] == TOOL_ARGS
    status, body = exchange(mock.base_url, head.replace(b"bench-tools", b"bench-reasoning"))
    chunks = orjson.loads(body)
    assert len(chunks) == 64 and chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_chunked_and_pipelined_requests(mock: NeutralMock) -> None:
    payload = orjson.dumps({"model": "bench-instant", "messages": [{"role": "user", "content": "hi"}]})
    chunked = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % 10
        + payload[:10]
        + b"\r\n"
        + b"%x\r\n" % (len(payload) - 10)
        + payload[10:]
        + b"\r\n0\r\n\r\n"
    )
    plain = wire.request(mock.base_url, "openai_chat", "bench-instant", stream=True, key="k")
    with socket.create_connection((mock.host, mock.port), timeout=10) as sock:
        sock.sendall(chunked + plain + chunked)  # a stream between two whole answers, all sent at once
        data = b""
        deadline = time.monotonic() + 10
        while data.count(b"HTTP/1.1 200") < 3 or (not data.endswith(b"}") and time.monotonic() < deadline):
            more = sock.recv(65536)
            if not more:
                break
            data += more
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b"text/event-stream") < data.rindex(b"application/json")  # answered in order


def test_fixed_cadence_paces_the_stream(mock: NeutralMock) -> None:
    """A lower bound only: 64 pieces 10 ms apart cannot all arrive in less than 630 ms."""
    started = time.perf_counter()
    status, body = _raw(mock, "openai_chat", "fixed", True)
    assert status == 200 and body.count(b'"content":" ') + body.count(b'"content":"') >= 64
    assert time.perf_counter() - started >= 0.63


def test_stats_count_requests_frames_and_dialects(mock: NeutralMock) -> None:
    before = mock.stats()
    for dialect in wire.DIALECTS:
        _raw(mock, dialect, "instant", True)
    after = mock.stats()
    assert after["requests"] - before["requests"] == 4 and after["streams"] - before["streams"] == 4
    assert all(after["dialects"][d] - before["dialects"][d] == 1 for d in wire.DIALECTS)
    _, body = _raw(mock, "openai_chat", "instant", True)
    # role chunk + 8 content chunks + finish chunk + [DONE]
    assert len(wire.events(body)) == 11 and mock.stats()["frames"] - after["frames"] == 11


def test_mock_cost_meters_the_mock(mock: NeutralMock, tmp_path: Path) -> None:
    result = mock_cost(mock, None, shape="instant", concurrency=2, duration=0.5)
    assert result["errors"] == 0 and result["ok"] == result["requests"] > 0
    assert result["frames"] == 11 * result["requests"]
    assert result["mock_cpu_s"] > 0 and result["mock_us_per_frame"] > 0
    assert "target_cpu_s" not in result


# ---- the C mock against the node one -------------------------------------------------------------------------

#: A request's id: the process's 12 hex characters and a 12-character base-36 counter.
ID = re.compile(rb"[0-9a-f]{12}[0-9a-z]{12}")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NeutralMock, NeutralMock]]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc builds the C mock")
    work = tmp_path_factory.mktemp("pair")
    with neutral_mock(work / "c", mock="c") as c, neutral_mock(work / "node", mock="node") as node:
        yield c, node


def _answer(mock: NeutralMock, raw: bytes) -> bytes:
    """The response head and its body (chunked framing removed: where chunks split depends on timing), ids
    masked."""
    reader = ResponseReader()
    with socket.create_connection((mock.host, mock.port), timeout=10) as sock:
        sock.sendall(raw)
        while not reader.feed(sock.recv(1 << 16)):
            pass
    body = bytes(reader.buf[reader.head_end : reader.body_end])
    whole = bytes(reader.buf[: reader.head_end]) + (dechunk(body) if reader.chunked else body)
    return ID.sub(b"<id>", whole)


def _post(path: str, payload: Any) -> bytes:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data)


def _cases() -> dict[str, bytes]:
    """Every dialect x shape, whole and streamed (Chat with and without usage, Gemini as SSE and as a JSON array),
    and the answers besides: models, errors in each dialect."""
    cases = {}
    chat = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    for shape in SHAPES:
        model = f"bench-{shape}"
        for dialect in wire.DIALECTS:
            for stream in (False, True):
                cases[f"{dialect}-{shape}-{stream}"] = wire.request("http://x", dialect, model, stream=stream, key="k")
        cases[f"chat-no-usage-{shape}"] = _post("/v1/chat/completions", {**chat, "model": f"x/{model}"})
        cases[f"gemini-array-{shape}"] = _post(f"/models/{model}:streamGenerateContent", {"contents": []})
    cases["models"] = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    cases["no-route"] = b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
    cases["not-json"] = _post("/v1/messages", b"{nope")
    cases["not-object"] = _post("/v1/responses", b"[1, 2]")
    for dialect in wire.DIALECTS:
        cases[f"unknown-{dialect}"] = wire.request("http://x", dialect, 'gpt-"4o"', stream=True, key="k")
    cases["model-not-a-string"] = _post("/v1/chat/completions", {"model": None})
    return cases


CASES = _cases()


def test_the_c_mock_answers_as_the_node_one_byte_for_byte(pair: tuple[NeutralMock, NeutralMock]) -> None:
    c, node = pair
    with ThreadPoolExecutor(32) as pool:
        from_c = dict(zip(CASES, pool.map(lambda raw: _answer(c, raw), CASES.values()), strict=True))
        from_node = dict(zip(CASES, pool.map(lambda raw: _answer(node, raw), CASES.values()), strict=True))
    differing = [name for name in CASES if from_c[name] != from_node[name]]
    assert not differing, f"{differing[0]}:\nc:    {from_c[differing[0]]!r}\nnode: {from_node[differing[0]]!r}"
    assert b"<id>" in from_c["anthropic-reasoning-True"] and b"data: [DONE]" in from_c["openai_chat-fixed-True"]
    stats_c, stats_node = c.stats(), node.stats()
    assert stats_c == stats_node and stats_c["requests"] == len(CASES) - 2  # all but models and no-route


def test_auto_falls_back_to_node_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(cbuild.shutil, "which", lambda name: None if name == "gcc" else real(name))
    command, kind, note = choose("auto", tmp_path)
    assert kind == "node" and command[1].endswith("mock.mjs") and "gcc not found" in note
    with pytest.raises(BenchError, match="gcc not found"):
        choose("c", tmp_path)


@NO_GCC
def test_the_c_mock_is_built_once_with_its_command_recorded(tmp_path: Path) -> None:
    first = cbuild.build(tmp_path, 15)
    built = first.binary.stat().st_mtime_ns
    again = cbuild.build(tmp_path, 15)
    assert again == first and again.binary.stat().st_mtime_ns == built
    recorded = (first.binary.parent / "build.txt").read_text()
    assert "gcc" in recorded and "cmock.c" in recorded and "table.mjs --seed 15" in recorded
    assert cbuild.build(tmp_path, 16).table != first.table  # another seed, other gaps: another build

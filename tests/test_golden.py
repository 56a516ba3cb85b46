"""Golden fixtures: every dialect pair, byte for byte (layout and workflow: docs/golden.md).

- ``test_bytes``: each conversion gives exactly its expected file (a readable diff otherwise);
- ``test_sdk``: each expected file is what the target dialect's real API sends (official SDK types and
  the stream grammar, tests/golden/checks.py);
- ``test_meaning``: decoding a converted answer with the client dialect's codec gives back the upstream's
  text, reasoning, tool calls, finish reason, usage and error;
- ``test_byte_split``: a stream fed one byte at a time gives the same bytes as fed frame by frame;
- the fixtures themselves parse with the SDKs, and no expected file is stale.

A known codec bug is listed in ``KNOWN_BUGS`` (test name -> item id -> what is wrong): its test is
marked ``xfail(strict=True)``, so fixing the codec makes it fail until the entry is removed.
"""

from __future__ import annotations

import difflib
from typing import Any

import orjson
import pytest

from relay.dialects import ir
from relay.errors import RelayError
from tests.golden import checks, harness
from tests.golden.harness import Item

ITEMS = list(harness.items())

#: test name -> item id -> the bug (pair, case, what is wrong, what it should be).
KNOWN_BUGS: dict[str, dict[str, str]] = {
    "test_bytes": {},
    "test_sdk": {},
    "test_meaning": {},
    "test_byte_split": {},
}


def params(test: str, items: list[Item]) -> list[Any]:
    bugs = KNOWN_BUGS.get(test, {})
    return [
        pytest.param(
            item, id=item.id, marks=[pytest.mark.xfail(strict=True, raises=AssertionError, reason=bugs[item.id])]
        )
        if item.id in bugs
        else pytest.param(item, id=item.id)
        for item in items
    ]


def need(item: Item) -> None:
    for dialect in item.needs:
        try:
            harness.codec(dialect)
        except harness.CodecMissing as exc:
            pytest.skip(str(exc))


def raw_lines(data: bytes) -> str:
    return "".join(repr(line) + "\n" for line in data.splitlines(keepends=True))


def diff(expected: bytes, actual: bytes, name: str) -> str:
    old, new = harness.render(expected), harness.render(actual)
    if old == new:  # same JSON, other bytes: show the raw lines
        old, new = raw_lines(expected), raw_lines(actual)
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"expected/{name}", "actual", n=4
    )
    return "".join(lines)


# ---- the conversions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("item", params("test_bytes", ITEMS))
def test_bytes(item: Item) -> None:
    need(item)
    name, data = item.compute()
    path = harness.expected_file(item)
    hint = "run `python -m tests.golden.harness --update`, review the diff, commit"
    if path is None:
        pytest.fail(f"no expected file for {item.id} (got {name}); {hint}:\n{harness.render(data)}")
    if path.name != name:
        pytest.fail(
            f"{item.id}: expected {path.name}, got {name}; {hint}\n"
            f"--- expected\n{harness.render(path.read_bytes())}--- actual\n{harness.render(data)}"
        )
    expected = path.read_bytes()
    if expected != data:
        pytest.fail(f"{item.id} differs from {path.relative_to(harness.ROOT)} ({hint}):\n{diff(expected, data, name)}")


def sdk_kind(item: Item, path_name: str) -> str | None:
    if path_name.endswith(".error.json") or path_name.endswith(".body-error.json"):
        return None
    if item.folder.parent.name == "requests":
        return "request"
    return "stream" if item.stream else "body"


@pytest.mark.parametrize("item", params("test_sdk", ITEMS))
def test_sdk(item: Item) -> None:
    path = harness.expected_file(item)
    if path is None:
        pytest.skip("no expected file (test_bytes reports it)")
    kind = sdk_kind(item, path.name)
    data = path.read_bytes()
    if kind is None:
        error = orjson.loads(data)
        assert set(error) == {"status", "message", "code"}
        assert 400 <= error["status"] <= 599 and error["message"]
        return
    problems = checks.problems(item.client, kind, data)
    assert not problems, f"{path.relative_to(harness.ROOT)} is not what {item.client} sends:\n" + "\n".join(problems)


# ---- meaning: decode the client's bytes back and compare with the upstream's -------------------------------


def summary_of_events(events: list[ir.Event]) -> dict[str, Any]:
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, list[str]] = {}
    out: dict[str, Any] = {"finish": None, "usage": None, "error": None}
    for event in events:
        if isinstance(event, ir.TextDelta):
            text.append(event.text)
        elif isinstance(event, ir.ReasoningDelta):
            reasoning.append(event.text)
        elif isinstance(event, ir.ToolCallStart):
            calls[event.index] = [event.name, ""]
        elif isinstance(event, ir.ToolCallDelta):
            calls[event.index][1] += event.arguments
        elif isinstance(event, ir.Finish):
            out["finish"], out["usage"] = event.reason, event.usage
        elif isinstance(event, ir.StreamError):
            out["error"] = event.code or "error"
    out["text"], out["reasoning"] = "".join(text), "".join(reasoning)
    out["calls"] = [(name, args) for name, args in calls.values()]
    return out


def summary_of_response(resp: ir.Response) -> dict[str, Any]:
    return {
        "text": "".join(p.text for p in resp.parts if isinstance(p, ir.Text)),
        "reasoning": "".join(p.text for p in resp.parts if isinstance(p, ir.Reasoning)),
        "calls": [(p.name, p.arguments) for p in resp.parts if isinstance(p, ir.ToolCall)],
        "finish": resp.finish_reason,
        "usage": resp.usage,
        "error": None,
    }


def decode_stream(dialect: str, data: bytes) -> list[ir.Event]:
    decoder = harness.codec(dialect).StreamDecoder()
    return decoder.feed(data) + decoder.close()


def comparable(summary: dict[str, Any], client: str) -> dict[str, Any]:
    """What must survive the trip to ``client``: tool arguments as parsed JSON, the usage the dialect carries."""
    out = dict(summary)
    out["calls"] = [(name, orjson.loads(args or "{}")) for name, args in summary["calls"]]
    usage = summary["usage"]
    if usage is not None:
        fields = {"input": usage.input_tokens, "output": usage.output_tokens, "cached": usage.cached_tokens}
        if client != "anthropic":  # Anthropic has no reasoning-token count
            fields["reasoning"] = usage.reasoning_tokens
        out["usage"] = fields
    return out


RESPONSE_ITEMS = [item for item in ITEMS if item.folder.parent.name == "responses"]


@pytest.mark.parametrize("item", params("test_meaning", RESPONSE_ITEMS))
def test_meaning(item: Item) -> None:
    need(item)
    upstream, client = item.needs
    path = harness.expected_file(item)
    if path is None or path.name.endswith("error.json"):
        pytest.skip("no converted answer to read back")
    fixture = (harness.UPSTREAM / upstream / f"{item.case}.{'sse' if item.stream else 'json'}").read_bytes()
    if item.stream:
        want = summary_of_events(decode_stream(upstream, fixture))
        got = summary_of_events(decode_stream(client, path.read_bytes()))
    else:
        want = summary_of_response(harness.codec(upstream).decode_response(fixture))
        got = summary_of_response(harness.codec(client).decode_response(path.read_bytes()))
    want, got = comparable(want, client), comparable(got, client)
    if want["error"] is not None:  # the client must see an error, whatever its code
        want["error"] = got["error"] and True
        got["error"] = got["error"] and True
    assert got == want


@pytest.mark.parametrize("item", params("test_byte_split", [item for item in RESPONSE_ITEMS if item.stream]))
def test_byte_split(item: Item) -> None:
    need(item)
    upstream, client = item.needs
    data = (harness.UPSTREAM / upstream / f"{item.case}.sse").read_bytes()
    by_frame, frame_error = harness.run_stream(upstream, client, harness.frames(data))
    by_byte, byte_error = harness.run_stream(upstream, client, harness.single_bytes(data))
    assert b"".join(by_byte) == b"".join(by_frame)
    assert (frame_error and harness.error_json(frame_error)) == (byte_error and harness.error_json(byte_error))


def test_streams_are_incremental() -> None:
    """Every converted text stream emits output before its upstream ends (nothing held to the end)."""
    checked = 0
    for item in RESPONSE_ITEMS:
        upstream, client = item.needs
        if not item.stream or item.case != "text":
            continue
        try:
            need(item)
        except pytest.skip.Exception:
            continue
        data = (harness.UPSTREAM / upstream / f"{item.case}.sse").read_bytes()
        chunks = harness.frames(data)
        out, error = harness.run_stream(upstream, client, chunks)
        assert error is None
        # the frame carrying the second text delta already produces client bytes
        second = next(i for i, c in enumerate(chunks) if b" of France" in c)
        assert out[second], f"{item.id}: nothing sent for the frame with the second delta"
        checked += 1
    assert checked


# ---- review: what reading the expected files found ---------------------------------------------------------


def _json_of(item_id: str) -> Any:
    folder, _, name = item_id.rpartition("/")
    path = harness.EXPECTED / folder / (name if "." in name else f"{name}.json")
    return orjson.loads(path.read_bytes())


def _events_of(item_id: str) -> list[dict[str, Any]]:
    events, _ = checks.sse_events((harness.EXPECTED / item_id).read_bytes())
    return [orjson.loads(data or b"{}") for _, data, _ in events]


def _no_thought_parts(item_id: str) -> bool:
    return not any(part.get("thought") for content in _json_of(item_id)["contents"] for part in content["parts"])


def _includes_thoughts(item_id: str) -> bool:
    return bool(_json_of(item_id)["generationConfig"].get("thinkingConfig", {}).get("includeThoughts"))


def _asks_summary(item_id: str) -> bool:
    return bool((_json_of(item_id).get("reasoning") or {}).get("summary"))


def _responses_output(item_id: str) -> list[dict[str, Any]]:
    if item_id.endswith(".sse"):
        return [e["item"] for e in _events_of(item_id) if e.get("type") == "response.output_item.done"]
    return _json_of(item_id)["output"]


def _no_empty_reasoning_item(item_id: str) -> bool:
    return all(
        item.get("summary") or item.get("encrypted_content") or item.get("content")
        for item in _responses_output(item_id)
        if item["type"] == "reasoning"
    )


def _cut_incomplete(item_id: str) -> bool:
    return all(item["status"] == "incomplete" for item in _responses_output(item_id) if item["type"] == "message")


def _gemini_error_status(item_id: str) -> bool:
    error = _events_of(item_id)[-1]["error"]
    return (error["code"], error["status"]) in {(503, "UNAVAILABLE"), (529, "UNAVAILABLE")}


def _signature_kept(item_id: str) -> bool:
    sent = orjson.loads((harness.REQUESTS / "gemini" / "history_stream.json").read_bytes())
    first_call = _json_of(item_id)["contents"][1]["parts"][0]
    return first_call["thoughtSignature"] == sent["contents"][1]["parts"][0]["thoughtSignature"]


R = "requests/"
A = "responses/"
#: (item id, what a reader of the expected file checks, the check, the codec bug while it does not hold).
REVIEW: list[tuple[str, str, Any, str | None]] = [
    (R + "openai_responses__to__gemini/history_stream", "no foreign thoughts", _no_thought_parts, None),
    (R + "anthropic__to__gemini/history_stream", "no foreign thoughts", _no_thought_parts, None),
    (R + "openai_chat__to__gemini/history_stream", "no foreign thoughts", _no_thought_parts, None),
    (R + "gemini__to__gemini/history_stream", "thoughtSignature byte-identical", _signature_kept, None),
    (R + "gemini__to__gemini/reasoning_stream", "includeThoughts kept", _includes_thoughts, None),
    (R + "openai_responses__to__gemini/reasoning_stream", "summary: includeThoughts", _includes_thoughts, None),
    (R + "anthropic__to__gemini/reasoning_stream", "thinking: includeThoughts", _includes_thoughts, None),
    (R + "anthropic__to__gemini/respond", "thinking: includeThoughts", _includes_thoughts, None),
    (R + "anthropic__to__openai_responses/reasoning_stream", "thinking: summary", _asks_summary, None),
    (R + "anthropic__to__openai_responses/respond", "thinking: summary", _asks_summary, None),
    (R + "gemini__to__openai_responses/reasoning_stream", "includeThoughts: summary", _asks_summary, None),
    (A + "gemini__to__openai_responses/reasoning.sse", "no empty reasoning", _no_empty_reasoning_item, None),
    (A + "gemini__to__openai_responses/reasoning.json", "no empty reasoning", _no_empty_reasoning_item, None),
    *(
        (f"{A}{u}__to__openai_responses/length.{kind}", "cut message incomplete", _cut_incomplete, None)
        for u in harness.DIALECTS
        for kind in ("json", "sse")
    ),
    (A + "anthropic__to__gemini/error.sse", "overloaded is UNAVAILABLE", _gemini_error_status, None),
]


def _review_param(item_id: str, what: str, check: Any, bug: str | None) -> Any:
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=bug)] if bug else []
    return pytest.param(item_id, check, id=f"{item_id}: {what}", marks=marks)


@pytest.mark.parametrize(("item_id", "check"), [_review_param(*review) for review in REVIEW])
def test_review(item_id: str, check: Any) -> None:
    assert check(item_id)


#: Provider-bound proofs in the fixtures: they may reach a client or upstream of their own dialect only.
SIGNATURES = {
    "anthropic": [b"ErUBCkYIBhgCIkBHb2xkZW5TaWduYXR1cmVG", b"EqQBCkgIBhABGAIiQHistorySignature"],
    "gemini": [b"Z29sZGVuLWdlbWluaS10aG91Z2h0", b"Z29sZGVuLWhpc3RvcnktdGhvdWdodC1zaWduYXR1cmUtMDAwMQ"],
    "openai_responses": [b"gAAAAABoGoldenEncryptedReasoning", b"gAAAAABoHistoryEncryptedReasoning"],
}


def test_signatures_stay_with_their_dialect() -> None:
    """Signatures cross no dialect boundary, and come back byte-identical within one."""
    kept = 0
    for path in harness.EXPECTED.rglob("*"):
        if not path.is_file() or "__to__" not in path.parent.name:
            continue
        source, _, target = path.parent.name.partition("__to__")
        data = path.read_bytes()
        for dialect, marks in SIGNATURES.items():
            for mark in marks:
                if mark in data:
                    # source: the dialect of the fixture (the client's request, or the upstream's answer)
                    assert dialect == source == target, f"{dialect} signature in {path.relative_to(harness.ROOT)}"
                    kept += 1
    assert kept >= 6  # reasoning and tools answers, and the history requests, of each signing dialect


# ---- the fixtures themselves ----------------------------------------------------------------------------------

#: Upstream fixtures that break a grammar rule on purpose (what the case tests), with the complaints expected.
UPSTREAM_QUIRKS = {
    ("openai_chat", "reasoning.sse"): ["usage chunk must have choices []"],  # DeepSeek: usage with the finish
    ("openai_chat", "truncated.sse"): ["bytes after the last event", "[DONE]", "one finish_reason", "no usage chunk"],
    ("openai_responses", "truncated.sse"): ["no terminal event"],
    ("anthropic", "truncated.sse"): ["without message_stop"],
    ("gemini", "truncated.sse"): ["no chunk carries a finishReason"],
}
UPSTREAM_FIXTURES = [
    (dialect, f"{case}.{kind}") for dialect in harness.DIALECTS for case, kind in harness.upstream_cases(dialect)
]


@pytest.mark.parametrize(("dialect", "name"), UPSTREAM_FIXTURES, ids=[f"{d}/{n}" for d, n in UPSTREAM_FIXTURES])
def test_upstream_fixture_is_real_wire(dialect: str, name: str) -> None:
    data = (harness.UPSTREAM / dialect / name).read_bytes()
    problems = checks.problems(dialect, "stream" if name.endswith(".sse") else "body", data)
    quirks = UPSTREAM_QUIRKS.get((dialect, name), [])
    assert len(problems) == len(quirks), problems
    for problem, quirk in zip(problems, quirks, strict=True):
        assert quirk in problem


REQUEST_FIXTURES = [(dialect, case) for dialect in harness.DIALECTS for case in harness.request_cases(dialect)]


@pytest.mark.parametrize(("dialect", "case"), REQUEST_FIXTURES, ids=[f"{d}/{c}" for d, c in REQUEST_FIXTURES])
def test_request_fixture_is_real_wire(dialect: str, case: str) -> None:
    data = (harness.REQUESTS / dialect / f"{case}.json").read_bytes()
    assert checks.problems(dialect, "request", data) == []
    body = orjson.loads(data)
    if dialect != "gemini":  # Gemini's stream flag is in the URL
        assert bool(body.get("stream")) == harness.is_stream_case(case)


def test_fixture_sets_are_complete() -> None:
    for dialect in harness.DIALECTS:
        names = {f"{case}.{kind}" for case, kind in harness.upstream_cases(dialect)}
        for case in ("text", "reasoning", "tools", "length"):
            assert {f"{case}.json", f"{case}.sse"} <= names, dialect
        assert {"error.sse", "truncated.sse"} <= names, dialect
        assert {"respond", "respond_stream"} <= set(harness.request_cases(dialect)), dialect


def test_no_stale_expected_files() -> None:
    stale = harness.stale_files()
    assert not stale, "expected files with no case (remove them, or run --update):\n" + "\n".join(map(str, stale))


def test_every_item_has_one_expected_file() -> None:
    doubled = [item.id for item in ITEMS if sum((item.folder / n).exists() for n in item.possible_names()) > 1]
    assert not doubled


def test_known_bugs_name_real_items() -> None:
    ids = {item.id for item in ITEMS}
    for test, bugs in KNOWN_BUGS.items():
        assert not set(bugs) - ids, (test, set(bugs) - ids)


# ---- the checks can fail --------------------------------------------------------------------------------------


def mutated(dialect: str, name: str, old: bytes, new: bytes) -> bytes:
    data = (harness.UPSTREAM / dialect / name).read_bytes()
    assert old in data
    return data.replace(old, new, 1)


@pytest.mark.parametrize(
    ("dialect", "name", "old", "new", "complaint"),
    [
        ("openai_chat", "text.json", b'"object": "chat.completion"', b'"object": "chat.completions"', "object"),
        ("openai_chat", "text.sse", b"data: [DONE]\n\n", b"", "[DONE]"),
        ("openai_chat", "tools.sse", b'"index":1,"function"', b'"index":1,"type":"function","function"', "contin"),
        ("openai_responses", "text.sse", b'"sequence_number":3', b'"sequence_number":4', "sequence_number"),
        ("openai_responses", "text.json", b'"id": "msg_', b'"id": "item_', "lacks msg_"),
        ("openai_responses", "tools.sse", b'"call_id":"call_W8nKx1",', b"", "call_id"),
        ("anthropic", "text.sse", b"event: message_stop\n", b"", "event:"),
        ("anthropic", "tools.sse", b'"index":2,"content_block"', b'"index":3,"content_block"', "block 3"),
        ("anthropic", "text.json", b'"stop_reason":"end_turn"', b'"stop_reason":"done"', "stop_reason"),
        ("gemini", "text.json", b'"finishReason": "STOP"', b'"finish_reason_x": "STOP"', "finish_reason_x"),
        ("gemini", "text.sse", b"\r\n\r\n", b"\n\n", "\\r\\n"),
        ("gemini", "tools.json", b'"thoughtSignature": "', b'"thoughtSignature": "#', "thoughtSignature"),
    ],
)
def test_checks_catch_what_a_real_api_would_not_send(
    dialect: str, name: str, old: bytes, new: bytes, complaint: str
) -> None:
    kind = "stream" if name.endswith(".sse") else "body"
    assert checks.problems(dialect, kind, (harness.UPSTREAM / dialect / name).read_bytes()) == []
    problems = checks.problems(dialect, kind, mutated(dialect, name, old, new))
    assert any(complaint in p for p in problems), problems


@pytest.mark.parametrize(
    ("dialect", "case", "path", "value", "complaint"),
    [
        ("openai_chat", "basic", ("messages", 1, "rolee"), "user", "unknown key 'rolee'"),
        ("openai_responses", "history_stream", ("input", 3, "call_id"), 7, "expected a string"),
        ("anthropic", "media", ("messages", 0, "content", 0, "source", "type"), "b64", "b64"),
        ("gemini", "history_stream", ("contents", 1, "parts", 0, "functionCall", "arguments"), {}, "arguments"),
    ],
)
def test_request_checks_can_fail(dialect: str, case: str, path: tuple[Any, ...], value: Any, complaint: str) -> None:
    body = orjson.loads((harness.REQUESTS / dialect / f"{case}.json").read_bytes())
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    problems = checks.problems(dialect, "request", orjson.dumps(body))
    assert any(complaint in p for p in problems), problems


def test_error_files_hold_relay_errors() -> None:
    error = RelayError(529, "overloaded", "Overloaded", code="overloaded_error")
    expected = {"status": 529, "message": "Overloaded", "code": "overloaded_error"}
    assert orjson.loads(harness.error_json(error)) == expected

"""``POST /v1/summarize`` through ``relay serve`` and ``relay mock-upstream`` over HTTP: one call for a short input,
map-reduce over segments for a long one, the summary streamed as server-sent events, every model call a row of the
request log linked to the summarize request, whose row sums them; a provider down."""

from __future__ import annotations

import json

import httpx
import pytest

from relay.mock.wire_fixtures import PAGES
from tests.utility.documents_relay import ADMIN, KEY, Served, openai_error, served

__all__ = ["served"]


def check_parent_sums(served: Served, parent: str, calls: int) -> list[dict[str, object]]:
    children = served.children(parent, calls)
    assert len(children) == calls
    assert {c["parent_id"] for c in children} == {parent}
    assert all(c["route"] == "/v1/chat/completions" and c["status"] == 200 for c in children)
    row = served.logged(parent)
    assert row["route"] == "/v1/summarize" and row["parent_id"] is None
    for column in ("cost_micros", "input_tokens", "output_tokens"):
        assert row[column] == sum(int(c[column]) for c in children)  # type: ignore[call-overload]
    assert row["cost_micros"] > 0
    return children


def test_a_short_text_is_one_call(served: Served) -> None:
    text = "The lamp was lit in 1871. It burned for a century."
    reply = served.post("/v1/summarize", json={"input": text})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["object"] == "summary" and answer["segments"] == 1 and answer["model"] == "chat-1"
    assert answer["summary"] == "Summary: The lamp was lit in 1871. (11 words)"
    (child,) = check_parent_sums(served, reply.headers["x-request-id"], 1)
    assert answer["usage"]["input_tokens"] == child["input_tokens"]


def test_a_long_document_is_map_reduced(served: Served) -> None:
    reply = served.post("/v1/summarize", json={"url": served.fixture("page.html")})  # segment_tokens = 64
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["segments"] == 3
    summary = answer["summary"]
    assert summary.startswith("Summary of 3 parts: ")
    assert PAGES[0][0] in summary and PAGES[1][0] in summary  # each part's summary made it into the whole
    check_parent_sums(served, reply.headers["x-request-id"], 4)  # three parts, one combination


def test_many_parts_are_combined_in_groups(served: Served) -> None:
    text = "\n\n".join(
        f"## Section {i}\n\nSection {i} says the keeper lit lamp {i} at dusk, and kept it burning until the dawn."
        for i in range(40)
    )
    reply = served.post("/v1/summarize", json={"input": text, "segment_length": 64})
    assert reply.status_code == 200, reply.text
    parts = reply.json()["segments"]
    assert parts > 8
    groups = -(-parts // 8)
    check_parent_sums(served, reply.headers["x-request-id"], parts + groups + 1)


def test_stream_sends_the_final_summary_as_events(served: Served) -> None:
    upload = {"file": ("doc.docx", served.document("doc.docx"), "application/octet-stream")}
    with httpx.stream(
        "POST",
        served.base + "/v1/summarize",
        headers={"authorization": f"Bearer {KEY}"},
        data={"stream": "true"},
        files=upload,
        timeout=30,
    ) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "text/event-stream"
        events = [line.removeprefix("data: ") for line in reply.iter_lines() if line.startswith("data: ")]
        parent = reply.headers["x-request-id"]
    assert events[-1] == "[DONE]"
    payloads = [json.loads(e) for e in events[:-1]]
    deltas = [p["delta"] for p in payloads if p["object"] == "summary.delta"]
    done = payloads[-1]
    assert done["object"] == "summary.done" and len(deltas) > 1
    assert "".join(deltas) == done["summary"] and done["summary"].startswith("Summary of ")
    children = check_parent_sums(served, parent, done["segments"] + 1)
    assert sum(bool(c["stream"]) for c in children) == 1  # the last call streamed
    assert done["usage"]["output_tokens"] == sum(int(c["output_tokens"]) for c in children)  # type: ignore[call-overload]


@pytest.mark.parametrize("stream", [False, True])
def test_the_provider_down_is_a_502_not_a_stream(served: Served, stream: bool) -> None:
    reply = served.post("/v1/summarize", json={"input": "Some text.", "model": "down-1", "stream": stream})
    assert openai_error(reply, 502)["code"] == "upstream_connect_error"
    row = served.logged(reply.headers["x-request-id"])
    assert row["status"] == 502 and row["cost_micros"] == 0


def test_a_model_the_server_does_not_have_is_404(served: Served) -> None:
    openai_error(served.post("/v1/summarize", json={"input": "Some text.", "model": "nope-1"}), 404)


def test_anthropic_channel_summarizes_too(served: Served) -> None:
    reply = served.post("/v1/summarize", data={"input": "One fact. Two facts.", "model": "claude-1"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["summary"] == "Summary: One fact. (4 words)"
    check_parent_sums(served, reply.headers["x-request-id"], 1)


def test_a_stream_cut_short_ends_with_an_error_event(served: Served) -> None:
    """The mock model drops its stream after two pieces (a directive it reads in the material)."""
    with httpx.stream(
        "POST",
        served.base + "/v1/summarize",
        headers={"authorization": f"Bearer {KEY}"},
        json={"input": "Some text here. mock:drop_after=2", "stream": True},
        timeout=30,
    ) as reply:
        assert reply.status_code == 200
        events = [line.removeprefix("data: ") for line in reply.iter_lines() if line.startswith("data: ")]
        parent = reply.headers["x-request-id"]
    assert events[-1] == "[DONE]"
    assert json.loads(events[0])["object"] == "summary.delta"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "upstream_truncated" and error["type"] == "upstream_error"
    row = served.logged(parent)
    assert row["error_kind"] == "upstream" and row["stream"] is True
    (child,) = served.children(parent, 1)
    assert row["cost_micros"] == child["cost_micros"] > 0  # what the cut call cost is charged once, and shown


def test_the_usage_counts_each_call_once(served: Served) -> None:
    """The daily totals hold each model call on its own row and the task's row for its own part (nothing), so the
    task's model (asked by no other test of this module) costs what its calls cost, not twice that."""
    reply = served.post("/v1/summarize", json={"url": served.fixture("page.html"), "model": "chat-usage"})
    assert reply.status_code == 200, reply.text
    children = check_parent_sums(served, reply.headers["x-request-id"], 4)
    spent = sum(int(c["cost_micros"]) for c in children)  # type: ignore[call-overload]
    rows = httpx.get(
        served.base + "/admin/v1/usage", params={"by": "model"}, headers={"authorization": f"Bearer {ADMIN}"}
    ).json()["data"]
    (usage,) = [r for r in rows if r["model"] == "chat-usage"]
    assert usage["cost_micros"] == spent
    assert usage["requests"] == 5  # the four calls and the task

"""``POST /v1/segment`` through ``relay serve`` over HTTP: text (``text`` and its alias ``input``), an uploaded file
and a url cut on structure into segments measured in tokens, with overlap; the checks of its numbers."""

from __future__ import annotations

import itertools

import pytest

from relay.utility.segments import count
from tests.utility.documents_relay import Served, openai_error, served

__all__ = ["served"]


def segments(served: Served, **kwargs: object) -> list[dict[str, object]]:
    reply = served.post("/v1/segment", **kwargs)  # type: ignore[arg-type]
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["object"] == "list" and answer["tokenizer"] == "o200k_base"
    return answer["data"]


@pytest.mark.parametrize("field", ["text", "input"])
def test_markdown_is_cut_at_its_headings_within_the_length(served: Served, field: str) -> None:
    text = served.document("notes.md").decode()
    found = segments(served, json={field: text, "segment_length": 64})
    assert [s["index"] for s in found] == list(range(len(found)))
    assert len(found) == 3
    for segment in found:
        assert text[segment["start"] : segment["end"]] == segment["text"]  # type: ignore[index,misc]
        assert 0 < segment["tokens"] <= 64  # type: ignore[operator]
        assert segment["tokens"] == count(segment["text"])  # type: ignore[arg-type]
        assert str(segment["text"]).startswith("#")  # each starts a section: cut at the headings
    assert "".join(str(s["text"]) for s in found).replace("\n", "") == text.replace("\n", "")


def test_a_long_paragraph_is_cut_at_sentences(served: Served) -> None:
    sentences = [f"Sentence number {i} tells of the lighthouse keeper and her lamp." for i in range(40)]
    text = " ".join(sentences)
    found = segments(served, json={"text": text, "segment_length": 64})
    assert len(found) > 5
    for segment in found:
        assert str(segment["text"]).endswith(".")  # never in the middle of a sentence
        assert int(segment["tokens"]) <= 64  # type: ignore[call-overload]


def test_overlap_repeats_the_end_of_the_segment_before(served: Served) -> None:
    text = " ".join(f"Sentence {i} is here." for i in range(200))
    plain = segments(served, json={"text": text, "segment_length": 64})
    overlapped = segments(served, json={"text": text, "segment_length": 64, "segment_overlap": 16})
    assert all(b["start"] >= a["end"] for a, b in itertools.pairwise(plain))  # type: ignore[operator]
    assert all(b["start"] < a["end"] for a, b in itertools.pairwise(overlapped))  # type: ignore[operator]
    assert len(overlapped) > len(plain)


def test_a_file_and_a_url(served: Served) -> None:
    upload = {"file": ("doc.docx", served.document("doc.docx"), "application/octet-stream")}
    by_file = segments(served, files=upload, data={"segment_length": "64"})
    assert by_file[0]["text"].startswith("# The Harbour Lighthouse")  # type: ignore[union-attr]
    assert any("| 1958 | Electrified |" in str(s["text"]) for s in by_file)
    by_url = segments(served, json={"url": served.fixture("page.html"), "segment_length": 1000})
    assert len(by_url) == 1 and "Ada Lind" in str(by_url[0]["text"])


def test_nothing_is_charged(served: Served) -> None:
    reply = served.post("/v1/segment", json={"text": "One. Two. Three."})
    assert reply.status_code == 200
    row = served.logged(reply.headers["x-request-id"])
    assert row["cost_micros"] == 0 and row["input_tokens"] == 0 and row["route"] == "/v1/segment"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"text": "x", "segment_length": 10}, "segment_length"),
        ({"text": "x", "segment_length": "many"}, "segment_length"),
        ({"text": "x", "segment_length": 100, "segment_overlap": 100}, "segment_overlap"),
        ({"text": "x", "segment_overlap": -1}, "segment_overlap"),
        ({"text": "one", "input": "two"}, "text"),
        ({"text": 5}, "text"),
    ],
)
def test_bad_fields_are_400_naming_them(served: Served, body: dict[str, object], param: str) -> None:
    assert openai_error(served.post("/v1/segment", json=body), 400)["param"] == param

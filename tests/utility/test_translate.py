"""``POST /v1/translate`` through ``relay serve`` and ``relay mock-upstream`` over HTTP: Markdown in, Markdown out,
line by line; long documents translated in segments and joined back; a DOCX upload; the model calls billed as
children of the request; a missing language and a provider down."""

from __future__ import annotations

from tests.utility.documents_relay import Served, openai_error, served

__all__ = ["served"]


def test_markdown_keeps_its_structure_line_by_line(served: Served) -> None:
    text = served.document("notes.md").decode().strip()
    reply = served.post("/v1/translate", json={"input": text, "language": "German"})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["object"] == "translation" and answer["language"] == "German"
    assert answer["segments"] == 3  # segment_tokens = 64 in the tests' relay.toml
    source, translated = text.split("\n"), answer["text"].split("\n")
    assert len(translated) == len(source)
    for before, after in zip(source, translated, strict=True):
        if not before:
            assert after == ""
            continue
        marks = before[: len(before) - len(before.lstrip("#- "))]
        assert after == f"{marks}[German] {before[len(marks) :]}"  # the mock's translation, Markdown marks kept
    children = served.children(reply.headers["x-request-id"], 3)
    assert len(children) == 3 and all(c["route"] == "/v1/chat/completions" for c in children)
    row = served.logged(reply.headers["x-request-id"])
    assert row["cost_micros"] == sum(int(c["cost_micros"]) for c in children) > 0  # type: ignore[call-overload]
    assert answer["usage"]["input_tokens"] == row["input_tokens"]


def test_a_docx_comes_back_as_markdown(served: Served) -> None:
    upload = {"file": ("doc.docx", served.document("doc.docx"), "application/octet-stream")}
    reply = served.post("/v1/translate", data={"language": "French", "segment_length": "1000"}, files=upload)
    assert reply.status_code == 200, reply.text
    text = reply.json()["text"]
    assert reply.json()["segments"] == 1
    assert text.startswith("# [French] The Harbour Lighthouse\n\n# [French] Part 1")
    assert "- [French] 154 steps" in text and "|---|---|" in text


def test_a_url(served: Served) -> None:
    reply = served.post("/v1/translate", json={"url": served.fixture("page.html"), "language": "Italian"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["text"].startswith("# [Italian] The Harbour Lighthouse")


def test_language_is_required(served: Served) -> None:
    error = openai_error(served.post("/v1/translate", json={"input": "Hello."}), 400)
    assert error["param"] == "language" and error["code"] == "missing_required_parameter"


def test_the_provider_down_is_a_502(served: Served) -> None:
    reply = served.post("/v1/translate", json={"input": "Hello.", "language": "German", "model": "down-1"})
    assert openai_error(reply, 502)["type"] == "upstream_error"


def test_a_document_without_text_is_400(served: Served) -> None:
    for path in ("/v1/translate", "/v1/summarize"):
        reply = served.post(path, data={"language": "German"}, files={"file": ("empty.txt", b"  \n", "text/plain")})
        assert openai_error(reply, 400)["code"] == "empty_document"

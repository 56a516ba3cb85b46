"""``POST /v1/extract`` through ``relay serve`` and ``relay mock-upstream`` over HTTP: documents uploaded (multipart)
and fetched by url (JSON), as text, as pages and blocks (``Accept: application/json``), and filled into a schema by
a model (structured output, through an OpenAI and an Anthropic channel); bad files, SSRF through the endpoint, a
provider down, and the 501 naming the extra when its libraries are missing."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from urllib.parse import quote

import httpx
import jsonschema
import openpyxl
import pptx
import pytest
from pptx.util import Inches

from relay.mock.png import png
from relay.mock.tasks import IMAGE_TEXT
from relay.mock.wire_fixtures import PAGES
from tests.conftest import process
from tests.utility.documents_relay import KEY, MAX_UPLOAD, Served, openai_error, relay_toml, served

__all__ = ["served"]

SENTENCES = [line for page in PAGES for line in page]
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "built": {"type": "integer"},
        "keepers": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "built", "keepers"],
    "additionalProperties": False,
}


def test_a_pdf_by_url_is_its_text(served: Served) -> None:
    reply = served.post("/v1/extract", json={"url": served.fixture("doc.pdf")})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    for sentence in SENTENCES:
        assert sentence in reply.text


def test_pages_and_blocks_with_accept_json(served: Served) -> None:
    reply = served.post("/v1/extract", json={"url": served.fixture("doc.pdf")}, headers={"accept": "application/json"})
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert document["object"] == "document" and document["type"] == "pdf"
    text = document["text"]
    assert [p["number"] for p in document["pages"]] == [1, 2]
    for page, lines in zip(document["pages"], PAGES, strict=True):
        assert all(line in text[page["start"] : page["end"]] for line in lines)
    for block in document["blocks"]:
        assert text[block["start"] : block["end"]] == block["text"]
    assert {b["page"] for b in document["blocks"]} == {1, 2}


def test_a_docx_upload_keeps_its_structure(served: Served) -> None:
    upload = {"file": ("report.docx", served.document("doc.docx"), "application/octet-stream")}
    reply = served.post("/v1/extract", files=upload, headers={"accept": "application/json"})
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert document["type"] == "docx"
    headings = [(b["level"], b["text"]) for b in document["blocks"] if b["type"] == "heading"]
    assert headings == [(1, "The Harbour Lighthouse"), (1, "Part 1"), (1, "Part 2"), (2, "Facts")]
    assert [b["text"] for b in document["blocks"] if b["type"] == "list_item"] == [
        "- Built in 1871",
        "- 32 metres tall",
        "- 154 steps",
    ]
    assert "| 1958 | Electrified |" in document["text"]
    plain = served.post("/v1/extract", files=upload)
    assert plain.status_code == 200 and plain.text == document["text"]


def slides() -> bytes:
    """A two-slide PPTX, made here with python-pptx: a title with a bulleted body, then a title with a table."""
    deck = pptx.Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "The Harbour Lighthouse"
    body = first.placeholders[1].text_frame
    body.text = "Built in 1871"
    item = body.add_paragraph()
    item.text, item.level = "Keeper: Ada Lind", 1
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Timeline"
    table = second.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(4), Inches(2)).table
    for r, row in enumerate((("Year", "Event"), ("1871", "Built"), ("1958", "Electrified"))):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def workbook() -> bytes:
    """A two-sheet XLSX, made here with openpyxl: a table, and a note away from the first column."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Visitors"
    for row in (("Year", "Visitors"), (2023, 12000), (2024, 15500)):
        sheet.append(row)
    book.create_sheet("Notes")["B3"] = "Open April to October"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_pptx_is_a_page_per_slide(served: Served) -> None:
    upload = {"file": ("deck.pptx", slides(), "application/octet-stream")}
    reply = served.post("/v1/extract", files=upload, headers={"accept": "application/json"})
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert document["type"] == "pptx" and len(document["pages"]) == 2
    text = document["text"]
    first, second = (text[p["start"] : p["end"]] for p in document["pages"])
    assert first == "## The Harbour Lighthouse\n\nBuilt in 1871\n- Keeper: Ada Lind"
    assert second.startswith("## Timeline") and "| 1958 | Electrified |" in second
    assert [(b["type"], b["page"]) for b in document["blocks"]] == [
        ("heading", 1),
        ("paragraph", 1),
        ("list_item", 1),
        ("heading", 2),
        ("table", 2),
    ]


def test_an_xlsx_is_a_page_per_sheet(served: Served) -> None:
    upload = {"file": ("book.xlsx", workbook(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}
    reply = served.post("/v1/extract", files=upload)
    assert reply.status_code == 200, reply.text
    assert reply.text == (
        "## Visitors\n\n| Year | Visitors |\n|---|---|\n| 2023 | 12000 |\n| 2024 | 15500 |"
        "\n\n## Notes\n\n|  | Open April to October |\n|---|---|"
    )


def test_an_image_is_read_by_a_model_and_billed_as_a_child(served: Served) -> None:
    upload = {"file": ("scan.png", png("a scanned page"), "image/png")}
    reply = served.post("/v1/extract", files=upload, data={"model": "claude-1"}, headers={"accept": "application/json"})
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert document["type"] == "image" and document["text"] == IMAGE_TEXT  # the mock model's transcription
    assert [b["type"] for b in document["blocks"]] == ["heading", "paragraph"]
    parent = reply.headers["x-request-id"]
    (child,) = served.children(parent, 1)
    assert child["requested_model"] == "claude-1" and child["status"] == 200
    assert served.logged(parent)["cost_micros"] == child["cost_micros"] > 0


def test_an_image_is_not_text_for_the_other_endpoints(served: Served) -> None:
    upload = {"file": ("scan.png", png("a scanned page"), "image/png")}
    assert openai_error(served.post("/v1/segment", files=upload), 415)["code"] == "unsupported_media_type"


def test_an_html_page_is_its_main_content(served: Served) -> None:
    reply = served.post("/v1/extract", data={"url": served.fixture("page.html")})  # a form without a file
    assert reply.status_code == 200, reply.text
    assert reply.text.startswith("# The Harbour Lighthouse")
    assert "## Part 2" in reply.text and "- 154 steps" in reply.text
    assert "About us" not in reply.text and "All rights reserved" not in reply.text  # menu and footer left out


@pytest.mark.parametrize("model", ["chat-1", "claude-1"])
def test_a_schema_is_filled_by_the_model_and_billed_as_a_child(served: Served, model: str) -> None:
    reply = served.post(
        "/v1/extract",
        data={"url": served.fixture("page.html"), "schema": json.dumps(SCHEMA), "model": model},
    )
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["object"] == "extraction" and answer["model"] == model
    jsonschema.validate(answer["data"], SCHEMA)
    parent = reply.headers["x-request-id"]
    (child,) = served.children(parent, 1)
    assert child["parent_id"] == parent and child["route"] == "/v1/chat/completions"
    assert child["requested_model"] == model and child["key_name"] == "user" and child["status"] == 200
    assert child["cost_micros"] > 0
    row = served.logged(parent)
    assert row["parent_id"] is None and row["route"] == "/v1/extract"
    assert row["cost_micros"] == child["cost_micros"]
    assert (row["input_tokens"], row["output_tokens"]) == (child["input_tokens"], child["output_tokens"])
    usage = answer["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (child["input_tokens"], child["output_tokens"])


def test_a_schema_that_is_not_an_object_is_400(served: Served) -> None:
    error = openai_error(served.post("/v1/extract", data={"input": "x", "schema": "[1, 2"}), 400)
    assert error["param"] == "schema"


def test_a_corrupt_pdf_is_400(served: Served) -> None:
    upload = {"file": ("broken.pdf", served.document("corrupt.pdf"), "application/pdf")}
    error = openai_error(served.post("/v1/extract", files=upload), 400)
    assert error["code"] == "invalid_document" and "PDF" in error["message"]
    openai_error(served.post("/v1/extract", json={"url": served.fixture("corrupt.pdf")}), 400)


def test_a_file_of_another_type_is_415(served: Served) -> None:
    upload = {"file": ("archive.zip", served.document("archive.zip"), "application/zip")}
    error = openai_error(served.post("/v1/extract", files=upload), 415)
    assert error["code"] == "unsupported_media_type"
    binary = {"file": ("blob.bin", bytes(range(256)) * 8, "application/octet-stream")}
    openai_error(served.post("/v1/extract", files=binary), 415)
    assert openai_error(served.post("/v1/extract", json={"url": served.fixture("archive.zip")}), 415)["param"] == "url"


def test_too_large_is_413(served: Served) -> None:
    big = {"file": ("big.txt", b"a" * (MAX_UPLOAD + 1), "text/plain")}
    assert served.post("/v1/extract", files=big).status_code == 413
    error = openai_error(served.post("/v1/extract", json={"url": served.fixture("large.txt?bytes=100001")}), 413)
    assert error["code"] == "fetch_too_large"


def test_urls_into_private_addresses_are_refused(served: Served) -> None:
    relay_itself = served.base + "/v1/models"
    for url in (relay_itself, "http://169.254.169.254/latest/meta-data/", "http://10.0.0.7/"):
        error = openai_error(served.post("/v1/extract", json={"url": url}), 400)
        assert error["code"] == "url_refused" and error["param"] == "url"
    hop = served.fixture("redirect?to=" + quote(relay_itself, safe=""))
    assert openai_error(served.post("/v1/extract", json={"url": hop}), 400)["code"] == "url_refused"


def test_one_source_is_required(served: Served) -> None:
    error = openai_error(served.post("/v1/extract", json={}), 400)
    assert "'input' or 'file' or 'url'" in error["message"]
    both = served.post("/v1/extract", data={"input": "text"}, files={"file": ("a.md", b"# A", "text/markdown")})
    assert "not input and file" in openai_error(both, 400)["message"]
    openai_error(served.post("/v1/extract", content=b"not json", headers={"content-type": "text/plain"}), 400)


def test_a_key_is_required(served: Served) -> None:
    openai_error(served.post("/v1/extract", key="sk-wrong-0000000000000000", json={"input": "x"}), 401)


def test_the_provider_down_is_a_502(served: Served) -> None:
    reply = served.post("/v1/extract", json={"input": "Ada Lind", "schema": SCHEMA, "model": "down-1"})
    error = openai_error(reply, 502)
    assert error["type"] == "upstream_error"
    (child,) = served.children(reply.headers["x-request-id"], 1)
    assert child["status"] == 502 and child["cost_micros"] == 0


BLOCKER = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class _Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"pypdf", "docx", "pptx", "openpyxl", "trafilatura", "semantic_text_splitter"}:
                raise ImportError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, _Missing())
    """
)


def test_without_the_extra_the_endpoints_answer_501_naming_it(served: Served, tmp_path: Path) -> None:
    """A Relay whose Python cannot import the extra's libraries (a sitecustomize blocks them)."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    config = tmp_path / "relay.toml"
    upstream = served.upstream.removeprefix("http://")
    config.write_text(relay_toml(served.upstream, f"sqlite:///{tmp_path}/relay.db", upstream))
    with process("serve", "--config", str(config), env={"PYTHONPATH": str(tmp_path)}) as (_, address):
        base = f"http://{address}"
        headers = {"authorization": f"Bearer {KEY}"}
        upload = {"file": ("doc.pdf", served.document("doc.pdf"), "application/pdf")}
        for path, kwargs in (
            ("/v1/extract", {"files": upload}),
            ("/v1/extract", {"files": {"file": ("book.xlsx", workbook())}}),
            ("/v1/extract", {"json": {"url": served.fixture("page.html")}}),
            ("/v1/segment", {"json": {"input": "# A\n\nSome text."}}),
            ("/v1/summarize", {"json": {"input": "Some text."}}),
        ):
            reply = httpx.post(base + path, headers=headers, timeout=30, **kwargs)
            error = openai_error(reply, 501)
            assert "pip install 'relay[utility]'" in error["message"], error
            assert error["code"] == "extra_not_installed"
        plain = httpx.post(base + "/v1/extract", headers=headers, json={"input": "# Plain Markdown"}, timeout=30)
        assert plain.status_code == 200 and plain.text == "# Plain Markdown"  # no library needed for text

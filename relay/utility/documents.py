"""Documents to text: PDF (pypdf), DOCX (python-docx), PPTX (python-pptx), XLSX (openpyxl), HTML (trafilatura),
Markdown and plain text, each as Markdown with its pages and blocks.

The libraries come with the ``utility`` extra (``pip install 'relay[utility]'``); each is imported when a document
of its kind arrives, and a missing one is a 501 naming the extra. Conversion is blocking work: ``to_text`` runs it
in a worker thread (``relay.utility.blocking``).

The kind is read from the bytes first (``%PDF-``, a ZIP holding ``word/document.xml``, ``ppt/presentation.xml`` or
``xl/workbook.xml``, an HTML tag), then from the declared type and the file name, so a file named wrongly is read
for what it is. The result is Markdown: a DOCX's heading styles become ``#`` headings, its list styles ``-`` items,
its tables Markdown tables; a PPTX gives a page per slide (its title a heading, its text boxes' paragraphs, indented
ones as list items, its tables); an XLSX a page per sheet (its name a heading, its cells a Markdown table); an HTML
page's main content (trafilatura leaves out menus, footers and ads) keeps its headings, lists and tables; a PDF
gives its text page by page (PDFs carry no structure to keep). ``pages`` are the spans of ``text`` each page gave
(one page for the kinds without pages) and ``blocks`` its structural units (headings, paragraphs, list items,
tables, code), read from the Markdown's lines, each with its offsets in ``text`` (characters) and its page.
"""

from __future__ import annotations

import importlib
import io
import re
import zipfile
from types import ModuleType
from typing import Any, Literal

import attrs

from relay.errors import RelayError

from .blocking import run_blocking

Kind = Literal["pdf", "docx", "pptx", "xlsx", "html", "markdown", "text", "image"]
#: The media types a task endpoint takes as a file or fetches from a url (``relay.utility.fetch``).
MEDIA_TYPES: tuple[str, ...] = (
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "text/html",
    "application/xhtml+xml",
    "text/markdown",
    "text/plain",
    "text/*",
)
EXTRA = "utility"
#: Pages a PDF may have (slides, sheets): a longer one is a 413 (its text would not fit a task's budget anyway).
MAX_PAGES = 2000
#: Rows of a sheet read: the rest are left out, and the sheet's text says so.
MAX_ROWS = 10_000
#: Images by their first bytes: only ``/v1/extract`` reads them (a model transcribes them: ``from_text``).
IMAGE_TYPES: dict[bytes, str] = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
IMAGE_MEDIA_TYPES: tuple[str, ...] = ("image/png", "image/jpeg", "image/gif", "image/webp")
#: The ZIP member that tells each Office format apart.
_OFFICE: dict[str, Kind] = {"word/document.xml": "docx", "ppt/presentation.xml": "pptx", "xl/workbook.xml": "xlsx"}


@attrs.frozen
class Page:
    number: int
    start: int
    end: int


@attrs.frozen
class Block:
    #: ``heading``, ``paragraph``, ``list_item``, ``table``, ``code``.
    type: str
    text: str
    start: int
    end: int
    page: int
    #: A heading's level (1 for ``#``); None for other blocks.
    level: int | None = None


@attrs.frozen
class Document:
    #: The document as Markdown.
    text: str
    kind: Kind
    pages: list[Page]
    blocks: list[Block]

    def as_json(self) -> dict[str, Any]:
        return {
            "object": "document",
            "type": self.kind,
            "text": self.text,
            "pages": [attrs.asdict(p) for p in self.pages],
            "blocks": [{k: v for k, v in attrs.asdict(b).items() if v is not None} for b in self.blocks],
        }


def library(name: str) -> ModuleType:
    """The optional library ``name``, or a 501 naming the extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise RelayError(
            501,
            "not_implemented",
            f"this endpoint needs the '{EXTRA}' extra, which is not installed on this server "
            f"(pip install 'relay[{EXTRA}]'; missing: {name.split('.')[0]})",
            code="extra_not_installed",
        ) from None


async def to_text(data: bytes, content_type: str | None, filename: str | None) -> Document:
    """The document in ``data`` as Markdown with its pages and blocks; 400 for a file that cannot be read as its
    kind (a corrupt PDF), 415 for a kind Relay does not read, 501 when its library is missing."""
    kind = kind_of(data, content_type, filename)
    return await run_blocking(convert, data, kind)


def kind_of(data: bytes, content_type: str | None, filename: str | None) -> Kind:
    """What the bytes are: by their first bytes, then by the declared type and the file name; a 415 if none."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    name = (filename or "").lower()
    head = data[:1024].lstrip().lower()
    if image_type(data) is not None:
        return "image"
    if data.startswith(b"%PDF-") or declared == "application/pdf" or name.endswith(".pdf"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        office = _office(data)
        if office is not None:
            return office
        raise _unsupported(declared or name or "a ZIP archive")
    if declared.endswith("wordprocessingml.document") or name.endswith(".docx"):
        return "docx"
    if declared.endswith("presentationml.presentation") or name.endswith(".pptx"):
        return "pptx"
    if declared.endswith("spreadsheetml.sheet") or name.endswith(".xlsx"):
        return "xlsx"
    if head.startswith((b"<!doctype html", b"<html")) or declared in ("text/html", "application/xhtml+xml"):
        return "html"
    if name.endswith((".html", ".htm")):
        return "html"
    if declared == "text/markdown" or name.endswith((".md", ".markdown")):
        return "markdown"
    if declared.startswith("text/") or name.endswith(".txt") or (not declared and _is_text(data)):
        if _is_text(data):
            return "text"
    raise _unsupported(declared or name or "(unknown)")


def image_type(data: bytes) -> str | None:
    """The media type of an image Relay reads (PNG, JPEG, GIF, WebP), by its first bytes; None for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in IMAGE_TYPES.items() if data.startswith(magic)), None)


def from_text(text: str, kind: Kind) -> Document:
    """A document whose Markdown came from elsewhere (an image's text, as a model read it)."""
    return _document(text, kind)


def convert(data: bytes, kind: Kind) -> Document:
    """``data`` of ``kind`` converted (blocking: run it in a worker thread); an image is a 415 here, since only a
    model reads one (``/v1/extract``)."""
    if kind == "image":
        raise _unsupported(image_type(data) or "an image")
    if kind == "pdf":
        return _pdf(data)
    if kind == "docx":
        return _document(_docx(data), kind)
    if kind == "pptx":
        return _paged(_pptx(data), kind)
    if kind == "xlsx":
        return _paged(_xlsx(data), kind)
    if kind == "html":
        return _document(_html(data), kind)
    return _document(_decoded(data), kind)


def _document(text: str, kind: Kind) -> Document:
    text = text.strip("\n")
    return Document(text, kind, [Page(1, 0, len(text))], blocks(text, 1, 0))


def _pdf(data: bytes) -> Document:
    pypdf = library("pypdf")
    errors = library("pypdf.errors")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise _unreadable("the PDF is encrypted")
        if len(reader.pages) > MAX_PAGES:
            raise RelayError(
                413, "request_too_large", f"the PDF has more than {MAX_PAGES} pages", code="document_too_large"
            )
        texts = [(page.extract_text() or "").strip() for page in reader.pages]
    except RelayError:
        raise
    except (errors.PyPdfError, ValueError, KeyError, TypeError, OSError, AttributeError, IndexError) as error:
        raise _unreadable(f"the file is not a readable PDF ({type(error).__name__})") from None
    return _paged(texts, "pdf")


def _paged(texts: list[str], kind: Kind) -> Document:
    """A document of pages (a PDF's, slides, sheets): their texts joined by a blank line."""
    pieces: list[str] = []
    pages: list[Page] = []
    found: list[Block] = []
    offset = 0
    for number, text in enumerate(texts, 1):
        if pieces:
            offset += 2  # the blank line between pages
        pages.append(Page(number, offset, offset + len(text)))
        found += blocks(text, number, offset)
        pieces.append(text)
        offset += len(text)
    return Document("\n\n".join(pieces), kind, pages, found)


def _docx(data: bytes) -> str:
    docx = library("docx")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as error:  # python-docx raises the zip, XML and package errors of a bad file as they come
        raise _unreadable(f"the file is not a readable DOCX ({type(error).__name__})") from None
    lines: list[str] = []  # blocks, joined by blank lines; a list's items by single line breaks
    body = document.element.body
    tables = {table._tbl: table for table in document.tables}
    paragraphs = {p._p: p for p in document.paragraphs}
    for child in body.iterchildren():
        if child in paragraphs:
            line = _docx_paragraph(paragraphs[child])
            if line and lines and _ITEM.match(line) and _ITEM.match(lines[-1].rsplit("\n", 1)[-1]):
                lines[-1] += "\n" + line
            elif line:
                lines.append(line)
        elif child in tables:
            lines.append(_markdown_table([[cell.text.strip() for cell in row.cells] for row in tables[child].rows]))
    return "\n\n".join(lines)


def _docx_paragraph(paragraph: Any) -> str:
    text = paragraph.text.strip()
    if not text:
        return ""
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    heading = re.fullmatch(r"Heading (\d)", style)
    if heading:
        return "#" * min(6, int(heading.group(1))) + " " + text
    if style == "Title":
        return "# " + text
    if style.startswith("List Number"):
        return "1. " + text
    if style.startswith("List"):
        return "- " + text
    return text


def _pptx(data: bytes) -> list[str]:
    """A page of Markdown per slide: its title as a heading, each text box's paragraphs (indented ones as list
    items), each table as a Markdown table."""
    pptx = library("pptx")
    try:
        presentation = pptx.Presentation(io.BytesIO(data))
        slides = list(presentation.slides)
        if len(slides) > MAX_PAGES:
            raise RelayError(
                413, "request_too_large", f"the PPTX has more than {MAX_PAGES} slides", code="document_too_large"
            )
        return ["\n\n".join(_slide(slide)) for slide in slides]
    except RelayError:
        raise
    except Exception as error:  # python-pptx raises the zip, XML and package errors of a bad file as they come
        raise _unreadable(f"the file is not a readable PPTX ({type(error).__name__})") from None


def _slide(slide: Any) -> list[str]:
    title = slide.shapes.title
    lines = [f"## {title.text_frame.text.strip()}"] if title is not None and title.text_frame.text.strip() else []
    for shape in slide.shapes:
        if title is not None and shape.shape_id == title.shape_id:
            continue
        if shape.has_text_frame:
            items: list[str] = []
            for paragraph in shape.text_frame.paragraphs:
                text = "".join(run.text for run in paragraph.runs).strip()
                if text:
                    items.append(("  " * max(0, paragraph.level - 1) + "- " if paragraph.level else "") + text)
            block = "\n".join(items)
            if block:
                lines.append(block)
        elif getattr(shape, "has_table", False) and shape.has_table:
            rows = [[cell.text.strip() for cell in row.cells] for row in shape.table.rows]
            lines.append(_markdown_table(rows))
    return lines


def _xlsx(data: bytes) -> list[str]:
    """A page of Markdown per sheet: its name as a heading, its cells (values, not formulas) as a table, the
    empty rows and trailing empty columns left out."""
    openpyxl = library("openpyxl")
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises the zip, XML and value errors of a bad file as they come
        raise _unreadable(f"the file is not a readable XLSX ({type(error).__name__})") from None
    pages = []
    try:
        for sheet in workbook.worksheets[: MAX_PAGES + 1]:
            rows: list[list[str]] = []
            cut = False
            for values in sheet.iter_rows(values_only=True):
                cells = ["" if v is None else str(v).strip() for v in values]
                if any(cells):
                    if len(rows) == MAX_ROWS:
                        cut = True
                        break
                    rows.append(cells)
            width = max((max((i + 1 for i, c in enumerate(r) if c), default=0) for r in rows), default=0)
            table = _markdown_table([r[:width] for r in rows]) if rows else ""
            note = f"\n\n(only the first {MAX_ROWS} rows are shown)" if cut else ""
            pages.append(f"## {sheet.title}" + (f"\n\n{table}" if table else "") + note)
    finally:
        workbook.close()
    if len(pages) > MAX_PAGES:
        raise RelayError(
            413, "request_too_large", f"the XLSX has more than {MAX_PAGES} sheets", code="document_too_large"
        )
    return pages


def _markdown_table(rows: list[list[str]]) -> str:
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    cells = [[c.replace("|", "\\|").replace("\n", " ") for c in row] + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def _html(data: bytes) -> str:
    trafilatura = library("trafilatura")
    page = _decoded(data)
    text = trafilatura.extract(
        page, output_format="markdown", include_tables=True, include_links=False, favor_recall=True
    )
    if not text:  # no main content found (a very short page): all of its text
        text = trafilatura.html2txt(page) or ""
    return str(text)


def _decoded(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _is_text(data: bytes) -> bool:
    sample = data[:4096]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= len(sample) - 3  # a character cut by the sample's end
    return True


def _office(data: bytes) -> Kind | None:
    """The Office format of a ZIP (DOCX, PPTX, XLSX), by the part it holds; None for any other ZIP."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        return None
    return next((kind for member, kind in _OFFICE.items() if member in names), None)


_HEADING = re.compile(r"(#{1,6})\s+(.*)")
_ITEM = re.compile(r"(?:[-*+]|\d+[.)])\s+")


def blocks(text: str, page: int, offset: int) -> list[Block]:
    """The structural units of Markdown ``text`` (its lines read: headings, list items, tables, fenced code,
    paragraphs between blank lines), with offsets in the document (``offset`` is where ``text`` starts)."""
    found: list[Block] = []
    lines = text.split("\n")
    starts: list[int] = []
    at = 0
    for line in lines:
        starts.append(at)
        at += len(line) + 1
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        first = i
        if stripped.startswith("```"):
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                i += 1
            i = min(i + 1, len(lines))
            kind, level = "code", None
        elif heading := _HEADING.fullmatch(stripped):
            i += 1
            kind, level = "heading", len(heading.group(1))
        elif _ITEM.match(stripped):
            i += 1
            while i < len(lines) and lines[i].startswith(("  ", "\t")) and lines[i].strip():
                i += 1
            kind, level = "list_item", None
        elif stripped.startswith("|"):
            while i < len(lines) and lines[i].strip().startswith("|"):
                i += 1
            kind, level = "table", None
        else:
            i += 1
            while i < len(lines) and lines[i].strip() and not _starts_block(lines[i].strip()):
                i += 1
            kind, level = "paragraph", None
        start = starts[first]
        end = starts[i - 1] + len(lines[i - 1])
        body = text[start:end]
        if kind == "heading" and heading is not None:
            body = heading.group(2).strip()
        found.append(Block(kind, body, offset + start, offset + end, page, level))
    return found


def _starts_block(line: str) -> bool:
    return bool(_HEADING.fullmatch(line) or _ITEM.match(line) or line.startswith(("|", "```")))


def _unreadable(message: str) -> RelayError:
    return RelayError(400, "invalid_request", message, param="file", code="invalid_document")


def _unsupported(what: str) -> RelayError:
    return RelayError(
        415,
        "invalid_request",
        f"Relay does not read documents of type {what}: send a PDF, DOCX, PPTX, XLSX, HTML, Markdown or plain text "
        "file",
        param="file",
        code="unsupported_media_type",
    )

"""Fixture documents the mock upstream serves for the task endpoints' ``url`` fields (docs/utility.md), and the
misbehaving servers a fetcher must survive. Every document is built here, byte for byte the same at each run, with
the standard library only (so the mock needs none of the ``utility`` extra's libraries):

- ``GET /fixtures/doc.pdf``: a two-page PDF (its text on each page); ``/fixtures/corrupt.pdf``: a PDF header and
  then garbage;
- ``GET /fixtures/doc.docx``: a Word document with a title, headings, a list and a table;
- ``GET /fixtures/page.html``: an article page with a menu and a footer around it; ``/fixtures/notes.md``: Markdown;
- ``GET /fixtures/scan.png``: an image (``/v1/extract`` has a model read it);
- ``GET /fixtures/archive.zip``: a ZIP that is no document (a 415 for a fetcher that checks types);
- ``GET /fixtures/large.txt?bytes=N``: N bytes of text (a fetcher's size cap);
- ``GET /fixtures/redirect?to=URL``: a 302 to URL (a fetcher must check where redirects lead).
"""

from __future__ import annotations

import io
import re
import zipfile
from urllib.parse import quote

from relay.mock.call import Call, Dialect, MockState, RouteEntry
from relay.mock.model import Answer
from relay.mock.png import png

TITLE = "The Harbour Lighthouse"
#: The fixture documents' text, by page: three sections on the history, keeping and future of a lighthouse.
PAGES: tuple[tuple[str, ...], ...] = (
    (
        "The Harbour Lighthouse was built in 1871 on the northern breakwater.",
        "Its keeper, Ada Lind, kept the lamp burning for forty-one years.",
        "The tower is 32 metres tall and its light reaches 18 nautical miles.",
    ),
    (
        "In 1958 the lamp was electrified and the keeper's cottage became a museum.",
        "The town council voted in 2024 to restore the lantern room by 2027.",
        "Visitors may climb the 154 steps on weekends from April to October.",
    ),
)
_ZIP_TIME = (2025, 1, 1, 0, 0, 0)


def pdf() -> bytes:
    """A two-page PDF, one text line per sentence of ``PAGES`` (Helvetica, WinAnsi), with its cross-reference
    table computed: pypdf and every reader take it."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(PAGES)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(PAGES)} >>".encode())
    font = 3 + 2 * len(PAGES)
    for number, lines in enumerate(PAGES):
        page, content = 3 + 2 * number, 4 + 2 * number
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font} 0 R >> >> "
            f"/Contents {content} 0 R >>".encode()
        )
        heading = [f"({TITLE}, page {number + 1}) Tj"]
        shown = " 0 -18 Td ".join(heading + [f"({_pdf_text(line)}) Tj" for line in lines])
        stream = f"BT /F1 12 Tf 72 720 Td {shown} ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        assert page == len(objects) - 1
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for index, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % index + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _pdf_text(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def corrupt_pdf() -> bytes:
    return b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\nthis is no PDF body\n"


_DOCX_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '<Override PartName="/word/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>'
    "</Types>"
)
_DOCUMENT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>'
)
#: The paragraph styles the document uses (id, name): Word's own names, which readers map to structure.
_STYLES = (("Normal", "Normal"), ("Title", "Title"), ("Heading1", "Heading 1"), ("Heading2", "Heading 2"))
_STYLES += (("ListBullet", "List Bullet"),)
_DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _paragraph(text: str, style: str | None = None) -> str:
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f'<w:p>{props}<w:r><w:t xml:space="preserve">{_xml(text)}</w:t></w:r></w:p>'


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def docx() -> bytes:
    """A Word document: the title, a heading per page of ``PAGES`` with its sentences as paragraphs, a bulleted
    list and a two-column table (a ZIP of its XML parts, dated 2025-01-01)."""
    body = [_paragraph(TITLE, "Title")]
    for number, lines in enumerate(PAGES, 1):
        body.append(_paragraph(f"Part {number}", "Heading1"))
        body += [_paragraph(line) for line in lines]
    body.append(_paragraph("Facts", "Heading2"))
    body += [_paragraph(item, "ListBullet") for item in ("Built in 1871", "32 metres tall", "154 steps")]
    rows = (("Year", "Event"), ("1871", "Built"), ("1958", "Electrified"))
    cells = "".join("<w:tr>" + "".join(f"<w:tc>{_paragraph(cell)}</w:tc>" for cell in row) + "</w:tr>" for row in rows)
    body.append(f"<w:tbl><w:tblGrid><w:gridCol/><w:gridCol/></w:tblGrid>{cells}</w:tbl>")
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{_W}"><w:body>{"".join(body)}<w:sectPr/></w:body></w:document>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (
            ("[Content_Types].xml", _DOCX_TYPES),
            ("_rels/.rels", _DOCX_RELS),
            ("word/document.xml", document),
            ("word/_rels/document.xml.rels", _DOCUMENT_RELS),
            ("word/styles.xml", _styles()),
        ):
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), text)
    return out.getvalue()


def _styles() -> str:
    styles = "".join(
        f'<w:style w:type="paragraph" w:styleId="{ident}"><w:name w:val="{name}"/></w:style>' for ident, name in _STYLES
    )
    return f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:styles xmlns:w="{_W}">{styles}</w:styles>'


def html() -> bytes:
    """An article page: a menu, the article (a title, a section per page of ``PAGES``, a list) and a footer."""
    sections = "".join(
        f"<h2>Part {number}</h2>" + "".join(f"<p>{_xml(line)}</p>" for line in lines)
        for number, lines in enumerate(PAGES, 1)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{TITLE}</title></head><body><nav><a href='/'>Home</a> | <a href='/about'>About us</a></nav>"
        f"<main><article><h1>{TITLE}</h1>{sections}<h2>Facts</h2>"
        "<ul><li>Built in 1871</li><li>32 metres tall</li><li>154 steps</li></ul></article></main>"
        "<footer>Copyright the Harbour Trust. All rights reserved.</footer></body></html>"
    ).encode()


def markdown() -> bytes:
    parts = [f"# {TITLE}"]
    for number, lines in enumerate(PAGES, 1):
        parts.append(f"## Part {number}")
        parts.append(" ".join(lines))
    parts.append("## Facts\n\n- Built in 1871\n- 32 metres tall\n- 154 steps")
    return ("\n\n".join(parts) + "\n").encode()


def archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as made:
        made.writestr(zipfile.ZipInfo("readme.txt", _ZIP_TIME), "not a document")
    return out.getvalue()


#: The largest ``large.txt`` the mock makes.
MAX_LARGE = 64 * 1024 * 1024
_DOCUMENTS = {
    "doc.pdf": (pdf, b"application/pdf"),
    "corrupt.pdf": (corrupt_pdf, b"application/pdf"),
    "doc.docx": (docx, b"application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "page.html": (html, b"text/html; charset=utf-8"),
    "notes.md": (markdown, b"text/markdown; charset=utf-8"),
    "archive.zip": (archive, b"application/zip"),
    "scan.png": (lambda: png("a scanned page"), b"image/png"),
}


def _fixture(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    name = match["name"]
    if name == "large.txt":
        asked = call.query.get("bytes", "1048576")
        size = min(MAX_LARGE, int(asked) if asked.isdigit() else 0)
        line = b"The Harbour Lighthouse fixture line of text.\n"
        return Answer(200, (line * (size // len(line) + 1))[:size], ((b"content-type", b"text/plain"),))
    if name == "redirect":
        target = call.query.get("to", "/fixtures/doc.pdf")
        return Answer(302, b"", ((b"location", quote(target, safe=":/?&=%#[]@!$'()*+,;~").encode()),))
    made = _DOCUMENTS.get(name)
    if made is None:
        return Answer(404, b"no such fixture", ((b"content-type", b"text/plain"),))
    build, kind = made
    return Answer(200, build(), ((b"content-type", kind),))


#: The fixtures' routes (``relay.mock.router`` takes them in).
ROUTES: tuple[RouteEntry, ...] = (("GET", re.compile(r"^/fixtures/(?P<name>[a-z0-9_.-]+)$"), "openai", _fixture),)

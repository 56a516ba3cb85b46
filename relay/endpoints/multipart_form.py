"""Multipart forms (``multipart/form-data``), the upload APIs' bodies: read with python-multipart, written back.

Parsing a multipart body well is subtle (boundaries split across reads, header folding, quoting, limits on
parts and headers), so it is left to python-multipart, a streaming parser kept by the Starlette/FastAPI people:
it is fed the body (already bounded by ``[limits] max_upload_bytes``) and calls back part by part. ``Form``
holds the text fields and the files; ``encode`` writes a form back (the upload APIs rename the model for the
upstream, so the form is written again with that one field changed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import attrs
from python_multipart.multipart import MultipartParser, parse_options_header

from relay.errors import RelayError

#: Parts a form may have, and bytes a text field may hold: more is a 400 (an upload has a handful of fields).
MAX_PARTS = 256
MAX_FIELD_BYTES = 1024 * 1024


@attrs.frozen
class Part:
    name: str
    data: bytes
    #: A file's name and type; None for a text field.
    filename: str | None = None
    content_type: str | None = None


@attrs.frozen
class Form:
    parts: tuple[Part, ...]

    def field(self, name: str) -> str | None:
        """The text field ``name`` (its last value), or None."""
        for part in reversed(self.parts):
            if part.name == name and part.filename is None:
                return part.data.decode("utf-8", "replace")
        return None

    def files(self, name: str) -> list[Part]:
        """Every file sent as ``name`` (or ``name[]``, as the OpenAI SDK sends arrays)."""
        return [p for p in self.parts if p.filename is not None and p.name in (name, name + "[]")]

    def replaced(self, name: str, value: str) -> Form:
        """The form with text field ``name`` set to ``value`` (added when absent)."""
        kept = [p for p in self.parts if not (p.name == name and p.filename is None)]
        return Form((*kept, Part(name, value.encode())))


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` content type; a 400 when it is another type or has none."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise RelayError(
            400,
            "invalid_request",
            "this endpoint takes a multipart/form-data body (Content-Type: multipart/form-data; boundary=…)",
            code="invalid_content_type",
        )
    return boundary


def parse(body: bytes, content_type: str) -> Form:
    """The form in ``body``; a 400 when it is not a well-formed multipart form."""
    boundary = boundary_of(content_type)
    parts: list[Part] = []
    headers: dict[bytes, bytes] = {}
    header_name = bytearray()
    header_value = bytearray()
    data = bytearray()

    def on_part_begin() -> None:
        headers.clear()
        data.clear()

    def on_header_field(chunk: bytes, start: int, end: int) -> None:
        header_name.extend(chunk[start:end])

    def on_header_value(chunk: bytes, start: int, end: int) -> None:
        header_value.extend(chunk[start:end])

    def on_header_end() -> None:
        headers[bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_part_data(chunk: bytes, start: int, end: int) -> None:
        data.extend(chunk[start:end])

    def on_part_end() -> None:
        if len(parts) >= MAX_PARTS:
            raise _malformed(f"more than {MAX_PARTS} parts")
        disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise _malformed("a part without Content-Disposition: form-data; name=…")
        name = options[b"name"].decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None and len(data) > MAX_FIELD_BYTES:
            raise _malformed(f"the text field {name!r} exceeds {MAX_FIELD_BYTES} bytes")
        kind = headers.get(b"content-type")
        parts.append(
            Part(
                name,
                bytes(data),
                filename.decode("utf-8", "replace") if filename is not None else None,
                kind.decode("latin-1") if kind is not None and filename is not None else None,
            )
        )

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except RelayError:
        raise
    except Exception as exc:  # python-multipart's own errors name what is wrong with the body
        raise _malformed(str(exc) or type(exc).__name__) from None
    if not parts:
        raise _malformed("the form has no parts (or its closing boundary is missing)")
    return Form(tuple(parts))


def encode(parts: Sequence[Part]) -> tuple[bytes, str]:
    """A multipart form of ``parts``: (its body, its Content-Type with a fresh boundary)."""
    boundary = "relay-" + os.urandom(12).hex()
    out: list[bytes] = []
    for part in parts:
        disposition = f'form-data; name="{_quoted(part.name)}"'
        if part.filename is not None:
            disposition += f'; filename="{_quoted(part.filename)}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if part.filename is not None:
            head += f"Content-Type: {part.content_type or 'application/octet-stream'}\r\n"
        out += [head.encode("utf-8"), b"\r\n", part.data, b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _malformed(why: str) -> RelayError:
    return RelayError(400, "invalid_request", f"malformed multipart form: {why}", code="invalid_multipart")

"""A multipart upload read as it arrives and passed on to the upstream as it is read (``Route(streamed=True)``).

The upload APIs need a few small text fields of the form (``model``, ``purpose``, ``stream``) before they can
choose a channel, and the upstream needs the whole form. So the form is read in two stretches:

1. ``read_head``: the body is read and kept (the *prefix*) until the first file part has begun and the fields the
   endpoint needs have been seen, or the form has ended (a small upload is then whole in memory, as before). A
   client puts its text fields first in practice (every official SDK does), so the prefix is the fields and the
   file's first piece. A form whose needed fields come after the file is read on until they come, up to
   ``PREFIX_LIMIT`` (8 MiB); past that without them it is a 400 naming the missing field.
2. ``body``: the form for the upstream, as a ``StreamedBody``: the prefix (with the ``model`` fields' values
   replaced by the channel's name for the model, spliced into the client's own bytes, boundary and all), then the
   rest of the client's body, piece by piece as it arrives. Its length is the client's Content-Length, corrected
   by the renames; a chunked upload goes on chunked.

The rest of the body is still parsed (python-multipart, as ``relay.endpoints.multipart_form``) as it passes: a
malformed form, a second file, or a field the prefix decided on (``model``) appearing again after the file is a 400,
and the upstream request is cut (its last piece is held back until the form is known to be whole, so an upstream
never sees a complete body Relay refused). No file bytes are kept but the file's first 64 KiB (``FileInfo.head``: a
WAV header, read for the seconds billed).

Failover: the prefix can be sent again, the rest cannot. Once a byte past the prefix has been sent upstream,
``Request.body_spent`` is set and no other channel is tried (``relay.endpoints.failover``): a connect error, or an
upstream that refuses the request before Relay sends past the prefix, still fails over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence

import attrs
from python_multipart.multipart import MultipartParser, parse_options_header

from relay.errors import RelayError, kind_for_status
from relay.http.messages import BodyError, BodyStream, Request
from relay.upstream.response import StreamedBody

from .multipart_form import MAX_FIELD_BYTES, MAX_PARTS, boundary_of

#: Bytes of a form read while waiting for its needed fields, when they do not come before the file.
PREFIX_LIMIT = 8 * 1024 * 1024
#: Bytes of a file's beginning kept (a WAV header, which says how long the audio is).
FILE_HEAD_BYTES = 64 * 1024
#: Largest piece of the prefix sent upstream in one write.
_SLICE = 256 * 1024
#: What a refused body (``BodyError``) tells the client, by status.
_BODY_CODES = {400: "invalid_request_body", 408: "request_timeout", 413: "request_too_large"}


@attrs.define
class FileInfo:
    """A file part of the form: its names, its type, its first bytes and (once read) its size."""

    name: str
    filename: str
    content_type: str | None
    head: bytearray = attrs.field(factory=bytearray)
    size: int = 0


class _Whole:
    """A body already read whole, as a ``BodyStream`` (a request whose route did not stream it)."""

    __slots__ = ("_data", "length", "received")

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data
        self.length: int | None = len(data)
        self.received = 0

    async def receive(self) -> bytes | None:
        data, self._data = self._data, None
        if not data:
            return None
        self.received = len(data)
        return data


def body_error(exc: BodyError) -> RelayError:
    """A streamed body that could not be read whole, as the client's error."""
    return RelayError(exc.status, kind_for_status(exc.status), exc.message, code=_BODY_CODES.get(exc.status))


class StreamedForm:
    """One request's multipart form, read as it arrives (see the module)."""

    def __init__(self, request: Request, content_type: str, frozen: Sequence[str]) -> None:
        self.boundary = boundary_of(content_type)
        self._request = request
        self._source: BodyStream = request.body_stream or _Whole(request.body)
        #: Fields decided on from the prefix: one arriving after it is a 400 (it would not be renamed).
        self._frozen = frozenset(frozen)
        #: The text fields, in order (name, value).
        self.fields: list[tuple[str, str]] = []
        self.files: list[FileInfo] = []
        #: The body read so far and kept for the upstream (and for another attempt), until spent.
        self._prefix = bytearray()
        #: The whole form was read.
        self.ended = False
        #: The rest of the body (past the prefix) is being read.
        self._live = False
        self._parts = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._data = bytearray()
        self._name = ""
        self._file: FileInfo | None = None
        self._parser = MultipartParser(
            self.boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )

    # ---- reading ------------------------------------------------------------------------------------

    def field(self, name: str) -> str | None:
        """The text field ``name`` (its last value) seen so far, or None."""
        for key, value in reversed(self.fields):
            if key == name:
                return value
        return None

    async def read_head(self, needed: Sequence[str]) -> None:
        """Read (and keep) the body until a file part has begun and every ``needed`` field was seen, or the form
        ended, or ``PREFIX_LIMIT`` bytes were read."""
        while not self.ended and len(self._prefix) <= PREFIX_LIMIT:
            if self.files and all(self.field(name) is not None for name in needed):
                return
            piece = await self._pull()
            if piece is not None:
                self._prefix += piece

    def missing(self, name: str) -> str:
        """Why the needed field ``name`` is missing: absent, or not within the prefix."""
        if self.ended:
            return f"'{name}' is required: a form field"
        return (
            f"'{name}' is required: a form field, sent before the file or within the form's first {PREFIX_LIMIT} bytes"
        )

    @property
    def length(self) -> int | None:
        """The client's body length, when known."""
        if self.ended:
            return len(self._prefix)
        return self._source.length

    async def rest(self) -> bytes:
        """The whole form (the prefix and the rest), read into memory: for uploads that must be read whole."""
        while not self.ended:
            piece = await self._pull()
            if piece is not None:
                self._prefix += piece
        return bytes(self._prefix)

    def release(self) -> None:
        """The answer started: no other attempt follows (``Request.retain``)."""
        self._prefix = bytearray()

    # ---- writing ------------------------------------------------------------------------------------

    def body(self, renamed: Mapping[str, str]) -> StreamedBody:
        """The form for the upstream, its text fields ``renamed`` (name -> new value); see the module."""
        spans = self._spans(renamed)
        length = self.length
        if length is not None:
            length += sum(len(renamed[name].encode()) - (end - start) for start, end, name in spans)
        return StreamedBody(self._pieces(spans, renamed), length)

    async def _pieces(self, spans: list[tuple[int, int, str]], renamed: Mapping[str, str]) -> AsyncIterator[bytes]:
        if self._request.body_spent:  # failover stops first (relay.endpoints.failover): never reached
            raise RelayError(502, "upstream", "the upload was already sent upstream", code="upstream_error")
        prefix = memoryview(self._prefix)
        at = 0
        for start, end, name in spans:
            for piece in _slices(prefix, at, start):
                yield piece
            yield renamed[name].encode()
            at = end
        for piece in _slices(prefix, at, len(prefix)):
            yield piece
        prefix.release()
        if self.ended:
            return
        self._live = True
        held: bytes | None = None
        while (piece := await self._pull()) is not None:
            if held is not None:
                self._spend()
                yield held
            held = piece
        if held is not None:  # the form ended well: its last piece may go
            self._spend()
            yield held

    def _spend(self) -> None:
        if not self._request.body_spent:
            self._request.body_spent = True
            self._prefix = bytearray()  # it cannot be sent again: let it go

    def _spans(self, renamed: Mapping[str, str]) -> list[tuple[int, int, str]]:
        """Where the values of the text fields to rename lie in the prefix (every one of them is in it)."""
        if not renamed:
            return []
        spans = _field_spans(self._prefix, self.boundary, renamed.keys())
        if len(spans) != sum(1 for name, _ in self.fields if name in renamed):
            raise _malformed("a field's part could not be found again in the form")
        return spans

    # ---- the parser -------------------------------------------------------------------------------

    async def _pull(self) -> bytes | None:
        """The body's next piece, parsed; None at its end (the form checked whole)."""
        try:
            piece = await self._source.receive()
        except BodyError as exc:
            raise body_error(exc) from None
        try:
            if piece is None:
                self._parser.finalize()
            else:
                self._parser.write(piece)
        except RelayError:
            raise
        except Exception as exc:  # python-multipart's own errors name what is wrong with the body
            raise _malformed(str(exc) or type(exc).__name__) from None
        if piece is None:
            self.ended = True
            if not self._parts:
                raise _malformed("the form has no parts (or its closing boundary is missing)")
        return piece

    def _on_part_begin(self) -> None:
        self._headers.clear()
        self._data.clear()
        self._file = None

    def _on_header_field(self, chunk: bytes, start: int, end: int) -> None:
        self._header_name.extend(chunk[start:end])

    def _on_header_value(self, chunk: bytes, start: int, end: int) -> None:
        self._header_value.extend(chunk[start:end])

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise _malformed(f"more than {MAX_PARTS} parts")
        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise _malformed("a part without Content-Disposition: form-data; name=…")
        self._name = options[b"name"].decode("utf-8", "replace")
        if self._live and self._name.removesuffix("[]") in self._frozen:
            raise RelayError(
                400,
                "invalid_request",
                f"send '{self._name}' once, before the file",
                param=self._name.removesuffix("[]"),
                code="invalid_value",
            )
        filename = options.get(b"filename")
        if filename is not None:
            kind = self._headers.get(b"content-type")
            self._file = FileInfo(
                self._name, filename.decode("utf-8", "replace"), kind.decode("latin-1") if kind is not None else None
            )
            self.files.append(self._file)

    def _on_part_data(self, chunk: bytes, start: int, end: int) -> None:
        file = self._file
        if file is None:
            self._data.extend(chunk[start:end])
            if len(self._data) > MAX_FIELD_BYTES:
                raise _malformed(f"the text field {self._name!r} exceeds {MAX_FIELD_BYTES} bytes")
            return
        file.size += end - start
        room = FILE_HEAD_BYTES - len(file.head)
        if room > 0:
            file.head.extend(chunk[start : min(end, start + room)])

    def _on_part_end(self) -> None:
        if self._file is None:
            self.fields.append((self._name, self._data.decode("utf-8", "replace")))
        self._file = None


def _slices(data: memoryview, start: int, end: int) -> Iterator[bytes]:
    for at in range(start, end, _SLICE):
        yield bytes(data[at : min(at + _SLICE, end)])


def _field_spans(prefix: bytearray, boundary: bytes, names: Collection[str]) -> list[tuple[int, int, str]]:
    """(start, end, name) of each text field named in ``names`` whose part is whole in ``prefix``."""
    delimiter = b"--" + boundary
    spans: list[tuple[int, int, str]] = []
    at = prefix.find(delimiter)
    while at >= 0:
        head_start = at + len(delimiter)
        if prefix[head_start : head_start + 2] == b"--":
            break  # the closing delimiter
        head_end = prefix.find(b"\r\n\r\n", head_start)
        if head_end < 0:
            break
        end = prefix.find(b"\r\n" + delimiter, head_end + 4)
        if end < 0:
            break
        name, filename = _disposition(bytes(prefix[head_start:head_end]))
        if filename is None and name is not None and name in names:
            spans.append((head_end + 4, end, name))
        at = end + 2
    return spans


def _disposition(head: bytes) -> tuple[str | None, bytes | None]:
    for line in head.split(b"\r\n"):
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-disposition":
            _, options = parse_options_header(value.strip())
            name = options.get(b"name")
            return (name.decode("utf-8", "replace") if name is not None else None), options.get(b"filename")
    return None, None


def _malformed(why: str) -> RelayError:
    return RelayError(400, "invalid_request", f"malformed multipart form: {why}", code="invalid_multipart")

"""A task endpoint's request, read the same whether it came as a multipart form (a file upload, curl's ``-F``), a
URL-encoded form (curl's ``-d``) or a JSON object: its fields, the uploaded ``file`` and the ``url``.

``input`` is the alias of each endpoint's main text field (``text`` for segment, ``prompt`` for render, ``query``
for search, ``instructions`` for research; ``input`` for summarize and translate): either name is read, both with
different values is a 400. The accessors (``string``, ``integer``, ``boolean``, ``json_object``) read a field of
either body in its type (a form's fields are text: ``"true"``, ``"512"``, a JSON schema as text), each a 400 naming
the field when it is wrong.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import attrs
import orjson

from relay.endpoints import multipart_form
from relay.errors import RelayError
from relay.http.messages import Request

#: The alias every endpoint accepts for its main text field.
ALIAS = "input"


@attrs.frozen
class Upload:
    """The uploaded ``file``: its bytes, its name and the type its part declared (either may be None)."""

    data: bytes
    filename: str | None
    content_type: str | None


@attrs.frozen
class UtilityInput:
    #: The fields (a form's as text, a JSON body's as they came), the main field under its own name.
    fields: dict[str, Any]
    file: Upload | None
    url: str | None

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.fields.get(name)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            raise invalid(name, f"'{name}' must be a string")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.fields.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise invalid(name, f"'{name}' must be an integer from {low} to {high}")
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.fields.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise invalid(name, f"'{name}' must be true or false")
        return value

    def json_object(self, name: str) -> dict[str, Any] | None:
        """An object field (a form sends it as JSON text)."""
        value = self.fields.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise invalid(name, f"'{name}' must be a JSON object") from None
        if not isinstance(value, dict):
            raise invalid(name, f"'{name}' must be a JSON object")
        return value


def read_input(request: Request, main: str = ALIAS) -> UtilityInput:
    """The request's fields, file and url, ``input`` read as ``main``; a 400 for a body that is neither a JSON
    object nor a well-formed multipart form, or that names its main field twice with different values."""
    kind = (request.header(b"content-type") or "").split(";", 1)[0].strip().lower()
    file: Upload | None = None
    if kind == "multipart/form-data":
        form = multipart_form.parse(request.body, request.header(b"content-type") or "")
        fields: dict[str, Any] = {}
        for part in form.parts:
            if part.filename is None:
                fields[part.name] = part.data.decode("utf-8", "replace")
        files = form.files("file")
        if len(files) > 1:
            raise invalid("file", "send one 'file'")
        if files:
            file = Upload(files[0].data, files[0].filename or None, files[0].content_type)
    elif kind == "application/x-www-form-urlencoded":  # a form without a file (curl -d, an HTML form)
        try:
            pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(request.body))
        except (UnicodeDecodeError, ValueError):
            raise RelayError(400, "invalid_request", "the form is not well-formed", code="invalid_body") from None
        fields = dict(pairs)
    else:
        try:
            payload = orjson.loads(request.body) if request.body else None
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            raise RelayError(
                400,
                "invalid_request",
                "send a JSON object (Content-Type: application/json) or a form (multipart/form-data, "
                "application/x-www-form-urlencoded)",
                code="invalid_body",
            )
        fields = dict(payload)
        if "file" in fields:
            raise invalid("file", "'file' is sent as a file part of a multipart form (curl -F file=@doc.pdf)")
    if main != ALIAS and ALIAS in fields:
        alias = fields.pop(ALIAS)
        if fields.get(main) not in (None, "", alias):
            raise invalid(main, f"send '{main}' or its alias '{ALIAS}', not both")
        fields[main] = alias
    url = fields.get("url")
    if url is not None and not isinstance(url, str):
        raise invalid("url", "'url' must be a string")
    return UtilityInput(fields, file, url or None)


def invalid(name: str, message: str) -> RelayError:
    return RelayError(400, "invalid_request", message, param=name, code="invalid_value")

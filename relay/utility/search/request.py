"""A ``/v1/search`` request, read and checked: a JSON body or a form (multipart or URL-encoded) of text fields.

``query`` (or its alias ``input``) is required; ``model`` names the search provider's model (else ``[utility]
search_model``); ``max_results`` (1 to ``MAX_RESULTS``, default ``DEFAULT_RESULTS``); ``rerank``: a rerank model
that orders the results again (``relay.utility.search.rerank``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import attrs

from relay.dialects.common import load_object
from relay.endpoints.multipart_form import parse
from relay.errors import RelayError
from relay.http.messages import Request

MAX_RESULTS = 20
DEFAULT_RESULTS = 5
#: Characters of a query, at most (the providers take a few hundred).
MAX_QUERY = 2000


@attrs.frozen
class SearchAsk:
    query: str
    model: str
    max_results: int
    rerank: str | None


def _invalid(message: str, param: str, code: str = "invalid_value") -> RelayError:
    return RelayError(400, "invalid_request", message, param=param, code=code)


def fields_of(request: Request) -> tuple[dict[str, Any], bool]:
    """The request's fields and whether they came as text (a form) rather than JSON."""
    kind = (request.header(b"content-type") or "").split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        form = parse(request.body, request.header(b"content-type") or "")
        return {p.name: form.field(p.name) for p in form.parts if p.filename is None}, True
    if kind == "application/x-www-form-urlencoded":
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("the form is not UTF-8", "body", "invalid_request_body") from None
        return dict(parse_qsl(text, keep_blank_values=True)), True
    return load_object(request.body), False


def text_field(fields: Mapping[str, Any], name: str, alias: str, *, limit: int) -> str:
    """The required text field ``name`` (or ``alias``), stripped; a 400 naming it when missing, empty or too long."""
    value = fields.get(name, fields.get(alias))
    if value is None:
        raise _invalid(f"'{name}' (or '{alias}') is required", name, "missing_required_parameter")
    if not isinstance(value, str):
        raise _invalid(f"'{name}' must be a string", name, "invalid_type")
    if not value.strip():
        raise _invalid(f"'{name}' must not be empty", name)
    if len(value) > limit:
        raise _invalid(f"'{name}' is longer than {limit} characters", name)
    return value.strip()


def integer(fields: Mapping[str, Any], name: str, default: int, low: int, high: int, *, text: bool) -> int:
    """The integer field ``name`` (a form's is text), ``default`` when absent; a 400 outside ``low..high``."""
    value = fields.get(name)
    if value is None:
        return default
    if text and isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _invalid(f"'{name}' must be an integer, not {value!r}", name, "invalid_type") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"'{name}' must be an integer", name, "invalid_type")
    if not low <= value <= high:
        raise _invalid(f"'{name}' must be between {low} and {high}, not {value}", name)
    return value


def optional_name(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _invalid(f"'{name}' must be a model name (a string)", name, "invalid_type")
    return value


def model_of(fields: Mapping[str, Any], default: str, setting: str) -> str:
    """``model``, else ``default`` (``[utility] setting``); a 400 saying how to name one when there is neither."""
    model = optional_name(fields, "model") or default
    if not model:
        raise _invalid(
            f"'model' is required: name the model to use, or set [utility] {setting} in relay.toml",
            "model",
            "missing_required_parameter",
        )
    return model


def read_search(request: Request, default_model: str) -> SearchAsk:
    fields, text = fields_of(request)
    return SearchAsk(
        query=text_field(fields, "query", "input", limit=MAX_QUERY),
        model=model_of(fields, default_model, "search_model"),
        max_results=integer(fields, "max_results", DEFAULT_RESULTS, 1, MAX_RESULTS, text=text),
        rerank=optional_name(fields, "rerank"),
    )

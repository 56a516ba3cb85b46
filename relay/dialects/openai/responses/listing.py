"""A stored response's input items in OpenAI's list shape (``GET /v1/responses/{id}/input_items``).

Shared by Relay (the responses it keeps) and the mock upstream (the responses it answered). Items are shown as
the API lists them: every item has an ``id`` (the client's own, else one derived from the response's id and
the item's place, so it is the same at every call), a message has a ``type``, a ``status`` and a list of
content parts (a string becomes one ``input_text`` part, ``output_text`` for the assistant's).

Paging as OpenAI's: ``limit`` 1-100 (default 20), ``order`` ``asc`` or ``desc`` (default, newest first),
``after`` an item id (the items after it in that order); the answer has ``object: list``, ``data``,
``first_id``, ``last_id`` and ``has_more``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from relay.dialects.common import derived_id
from relay.errors import RelayError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

#: The id prefix of an item the client gave without one, by its type.
_PREFIXES = {"message": "msg_", "function_call_output": "fco_", "custom_tool_call_output": "ctco_"}


def _bad(message: str, param: str) -> RelayError:
    return RelayError(400, "invalid_request", message, param=param, code="invalid_value")


def as_items(raw: Any) -> list[Any]:
    """A request's ``input`` as a list of items (a string is one user message; absent: none)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if isinstance(raw, list):
        return list(raw)
    raise _bad("'input' must be a string or an array of input items", "input")


def _message(item: dict[str, Any]) -> dict[str, Any]:
    content = item.get("content")
    assistant = item.get("role") == "assistant"
    if isinstance(content, str):
        part: dict[str, Any] = {"type": "output_text" if assistant else "input_text", "text": content}
        if assistant:
            part["annotations"] = []
        content = [part]
    return {**item, "type": "message", "content": content, "status": item.get("status") or "completed"}


def listed(response_id: str, items: Sequence[Any]) -> list[dict[str, Any]]:
    """``items`` as the API lists them (the module docstring says how)."""
    shown: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        entry = _message(item) if item.get("type", "message") == "message" and "role" in item else dict(item)
        if not isinstance(entry.get("id"), str) or not entry["id"]:
            entry["id"] = derived_id(response_id, index, _PREFIXES.get(str(entry.get("type")), "item_"))
        shown.append(entry)
    return shown


def page(items: Sequence[dict[str, Any]], query: Mapping[str, str]) -> dict[str, Any]:
    """One page of listed ``items`` (in their stored order) as ``query`` asks; a 400 naming a bad parameter."""
    raw_limit = query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        raise _bad(f"'limit' must be an integer from 1 to {MAX_LIMIT}", "limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad(f"'limit' must be an integer from 1 to {MAX_LIMIT}", "limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _bad("'order' must be 'asc' or 'desc'", "order")
    ordered = list(items) if order == "asc" else list(reversed(items))
    after = query.get("after")
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise _bad(f"'after': no input item with id '{after}' in this response", "after")
        ordered = ordered[ids.index(after) + 1 :]
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > limit,
    }

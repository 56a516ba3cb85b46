"""What a mock upstream route handler is given, and the refusals every handler shares.

Underneath relay.mock.router (which holds the route table and so imports every ``wire_*`` module) and the
``wire_*`` modules (which hold the handlers), so a handler module never has to import the router.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal, Protocol

import attrs
import orjson

from relay.config import MockOptions
from relay.dialects.common import nested_deeper
from relay.mock import wire_anthropic, wire_chat, wire_gemini
from relay.mock.model import Answer

Dialect = Literal["openai", "anthropic", "gemini"]


class MockState(Protocol):
    """The mock upstream a handler answers for (``relay.mock.router.Mock``): its options, models and key."""

    options: MockOptions
    models: list[str]
    api_key: str | None


@attrs.frozen
class Call:
    method: str
    path: str
    query: dict[str, str]
    #: Lower-case header names; the last value of each.
    headers: dict[bytes, str]
    body: bytes

    def bearer(self) -> str | None:
        scheme, _, token = self.headers.get(b"authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None


Handler = Callable[[MockState, Call, "re.Match[str]", Dialect], Answer]
#: One route: (method, path pattern, the dialect of its key and errors or None for the listing's, handler).
RouteEntry = tuple[str, "re.Pattern[str]", Dialect | None, Handler]


def error(dialect: Dialect, status: int, message: str) -> Answer:
    """A refusal in the dialect's error shape."""
    if dialect == "anthropic":
        return wire_anthropic.error(status, message)
    if dialect == "gemini":
        return wire_gemini.error(status, message)
    return wire_chat.error(status, message, kind="mock_error" if status >= 404 else "invalid_request_error")


#: The deepest nesting of arrays and objects the mock reads: it writes what it reads a level or two down, and
#: orjson writes at most 254 levels.
MAX_DEPTH = 200


def load_json(dialect: Dialect, body: bytes) -> Any:
    """The JSON body, or an ``Answer`` refusing it (not JSON, or nested deeper than ``MAX_DEPTH``)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        if dialect == "gemini":
            return wire_gemini.error(400, "Invalid JSON payload received. The request body is not JSON.")
        return error(dialect, 400, "the request body is not JSON")
    if nested_deeper(payload, MAX_DEPTH):
        message = f"the request body is nested too deeply: at most {MAX_DEPTH} levels of arrays and objects"
        if dialect == "gemini":
            return wire_gemini.error(400, f"Invalid JSON payload received. {message}.")
        return error(dialect, 400, message)
    return payload

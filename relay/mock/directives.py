"""The mock's directives: ``mock:NAME`` or ``mock:NAME=VALUE`` words in the last user turn that steer its answer.

Numbers (``mock:chunks=3``) take digits; ``mock:tool=NAME`` a tool name (letters, digits, ``_ - . :``);
``mock:args=JSON`` one JSON object, read from the ``=`` to its closing brace (what follows on the line is
ignored; a value that is not a JSON object is ignored). Unknown names and missing or invalid values are
ignored, so a prompt that merely mentions ``mock:`` changes nothing. The table of directives is in
``relay/mock/model.py`` and docs/mock.md.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import attrs
import orjson

#: The largest number a directive takes (a chunk count, a delay in ms); larger values are clamped.
MAX_DIRECTIVE = 1_000_000

_NAME = re.compile(r"mock:([a-z_]+)")
_NUMBER = re.compile(r"=(\d+)")
_TOOL = re.compile(r"=([A-Za-z0-9_.:-]+)")
_NUMBERS = ("chunks", "delay_ms", "first_byte_ms", "status", "stall_after", "drop_after", "cached", "rounds")
_FLAGS = ("parallel", "text")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


@attrs.frozen
class Directives:
    chunks: int | None = None
    delay_ms: int | None = None
    first_byte_ms: int | None = None
    status: int | None = None
    stall_after: int | None = None
    drop_after: int | None = None
    parallel: bool = False
    cached: int | None = None
    #: ``mock:text``: answer with text even when tools are offered (unless the request requires a call).
    text: bool = False
    #: ``mock:tool=NAME``: call this tool (matched as ``model.find_tool`` says).
    tool: str | None = None
    #: ``mock:args={…}``: the call's arguments, as compact JSON text of an object.
    args: str | None = None
    #: ``mock:rounds=N``: call a tool again after each tool result until the turn holds N of them.
    rounds: int | None = None


def parse_directives(text: str) -> Directives:
    """The directives in ``text``; unknown names, missing values and a status that is not 4xx/5xx are ignored."""
    found: dict[str, Any] = {}
    position = 0
    while (match := _NAME.search(text, position)) is not None:
        name, position = match[1], match.end()
        if name in _FLAGS:
            found[name] = True
        elif name in _NUMBERS:
            value = _NUMBER.match(text, position)
            if value is None:
                continue
            position = value.end()
            number = int(value[1])
            if name == "status":
                found[name] = number if 400 <= number <= 599 else None
            else:
                found[name] = min(number, MAX_DIRECTIVE)
        elif name == "tool":
            value = _TOOL.match(text, position)
            if value is not None:
                found[name], position = value[1], value.end()
        elif name == "args" and text.startswith("=", position):
            parsed, end = _json_object(text, position + 1)
            if parsed is not None:
                found[name], position = parsed, end
    return Directives(**{k: v for k, v in found.items() if v is not None})


def _json_object(text: str, start: int) -> tuple[str | None, int]:
    """The JSON object that starts at ``start`` (compact text) and where it ends; (None, start) if there is none."""
    try:
        value, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return None, start
    if not isinstance(value, dict):
        return None, start
    try:  # the wire modules read it back with orjson: integers beyond 64 bits are not taken
        return orjson.dumps(value).decode(), end
    except orjson.JSONEncodeError:
        return None, start

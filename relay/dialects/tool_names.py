"""Flat function names for tools a client groups or shapes in ways other dialects cannot express, and back.

OpenAI Responses groups functions in ``namespace`` tools and has custom (freeform) tools; every other dialect
knows plain functions only. Such a tool is sent as a function named ``<namespace>__<name>`` (or its own name
when it has no namespace), which every dialect accepts when it fits ``^[a-zA-Z0-9_-]{1,64}$`` (the strictest
rule: OpenAI's and Gemini's). A joined name that does not fit is shortened deterministically: its characters
outside the set become ``_``, it is cut to 55 characters and ends with ``_`` and 8 hex digits of the SHA-256 of
the namespace and name, so the same tool always gets the same name, on every turn, with no state kept.

The way back needs no state either: the client's request lists its tools, so the answer's encoder rebuilds
the map (``origins``) from ``ir.Request.tools`` (each flattened tool carries its ``ir.ToolOrigin``).
"""

from __future__ import annotations

import hashlib
import re

from relay.dialects import ir

#: The function names every dialect accepts.
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
SEPARATOR = "__"
_OUTSIDE = re.compile(r"[^A-Za-z0-9_-]")
_HASH_LENGTH = 8


def flat_name(namespace: str | None, name: str) -> str:
    """The function name a tool named ``name`` in ``namespace`` (None: none) is sent under."""
    joined = f"{namespace}{SEPARATOR}{name}" if namespace else name
    if NAME.fullmatch(joined) or not namespace:
        return joined  # a plain name goes as it is: an upstream that refuses it says so
    digest = hashlib.sha256(f"{namespace}\x00{name}".encode()).hexdigest()[:_HASH_LENGTH]
    head = _OUTSIDE.sub("_", joined)[: 64 - _HASH_LENGTH - 1]
    return f"{head}_{digest}"


def origins(req: ir.Request) -> dict[str, ir.ToolOrigin]:
    """Flat name → the client's spelling, for the tools of ``req`` that were not plain functions."""
    return {tool.name: tool.origin for tool in req.tools if tool.origin is not None}

"""Provider-run tools (``ir.HostedTool``) on a converted path: which ones each upstream dialect runs, which are
dropped, and when dropping one is refused instead.

The table (docs/conversions/openai_responses.md has it with the reasons):

- A tool runs on its own client's provider (an Anthropic client's server tools on an Anthropic upstream).
- ``web_search`` runs as Anthropic's ``web_search_20250305`` server tool and as OpenAI Responses' ``web_search``
  (not with blocked domains, which it cannot honour). On Gemini it runs as ``google_search`` only when the
  request has no function tools (Gemini combines its own tools with functions only in a mode whose tool-call
  parts Relay does not carry) and no domain filter (which ``google_search`` cannot honour). Chat Completions
  has no web search for ordinary models: dropped. A web search asking for cached results only (Responses
  ``external_web_access: false``) is dropped everywhere but on OpenAI: every other provider's search reads the
  live web.
- Every other kind (Responses' ``file_search``, ``code_interpreter``, ``image_generation``,
  ``computer_use_preview``, ``mcp``, ``local_shell``, ``shell``, ``apply_patch``, ``tool_search``; Anthropic's
  ``code_execution_…``, ``web_fetch_…``, ``bash_…``, ``text_editor_…``, ``computer_…``, ``memory_…``;
  Gemini's ``codeExecution``, ``urlContext``, ``googleMaps``…) needs its provider's own machinery (vector
  stores, containers, connectors, tool schemas of its own) or gives back result items no other dialect makes:
  dropped on other dialects.

A dropped tool never blocks a request (agents offer many tools they may not need); the endpoint says which were
dropped in the ``x-relay-dropped-tools`` header and the request log. A tool choice that forces a tool the
upstream will not run is a 400 naming the tool instead: the client asked for exactly that tool.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from relay.dialects import ir
from relay.dialects.common import bad_request

#: The response header that names the tools a converted request did not send upstream.
HEADER = b"x-relay-dropped-tools"
#: What a label may hold in the header (a client's tool type is any string): the rest becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
_MAX_HEADER = 1024


#: The parts of a web search's user location every dialect can say.
LOCATION_KEYS = ("city", "region", "country", "timezone")


def location(fields: Any) -> dict[str, str] | None:
    """A web search's user location from the object holding its ``city``, ``region``… (a client's declaration):
    the non-empty strings of ``LOCATION_KEYS``, or None."""
    if not isinstance(fields, Mapping):
        return None
    place = {k: v for k in LOCATION_KEYS if isinstance(v := fields.get(k), str) and v}
    return place or None


def _runs(tool: ir.HostedTool, req: ir.Request, dialect: ir.Dialect) -> bool:
    if tool.dialect == dialect:
        return True  # the client's own provider
    if tool.kind != "web_search":
        return False
    if dialect == "openai_responses":
        return tool.live and not tool.blocked_domains  # Responses' search has no blocked-domain list
    if not tool.live:
        return False
    if dialect == "anthropic":
        return True
    if dialect == "gemini":
        return not req.tools and not tool.allowed_domains and not tool.blocked_domains
    return False


def _forceable(tool: ir.HostedTool, dialect: ir.Dialect) -> bool:
    """Whether ``dialect`` can be told to call ``tool`` (only Anthropic names a server tool in its choice)."""
    return dialect == "anthropic" or tool.dialect == dialect


def web_search(req: ir.Request, dialect: ir.Dialect) -> ir.HostedTool | None:
    """The web search an upstream of ``dialect`` runs for ``req``, if any."""
    for tool in req.hosted:
        if tool.kind == "web_search" and _runs(tool, req, dialect):
            return tool
    return None


def dropped(req: ir.Request, dialect: ir.Dialect) -> tuple[str, ...]:
    """The labels of the hosted tools of ``req`` an upstream of ``dialect`` will not run, in order, once each.

    A 400 when the tool choice forces one of them (or forces one the upstream cannot be told to call).
    """
    labels: list[str] = []
    for tool in req.hosted:
        runs = _runs(tool, req, dialect)
        if tool.forced and not (runs and _forceable(tool, dialect)):
            why = "is not available" if not runs else "cannot be forced"
            raise bad_request(
                f"the tool choice forces the '{tool.label}' tool, which {why} on this model's API; "
                "offer it without forcing it, or use a model served by OpenAI",
                "tool_choice",
            )
        if not runs and tool.label not in labels:
            labels.append(tool.label)
    return tuple(labels)


def header_value(labels: tuple[str, ...]) -> bytes:
    """The ``x-relay-dropped-tools`` value: the labels, comma-separated, made header-safe and bounded."""
    value = ",".join(_UNSAFE.sub("_", label)[:64] for label in labels)
    return value[:_MAX_HEADER].encode()

"""OpenAI Responses tools other dialects do not have, to and from the IR: namespaces, custom (freeform) tools,
hosted tools, the tool choices naming them, and the output items that give their calls back.

Choices made on users' behalf (docs/conversions/openai_responses.md has the table):

- A ``namespace`` tool's functions and custom tools are sent as plain functions named
  ``<namespace>__<name>`` (``relay.dialects.tool_names``); the namespace's description is added to each one's.
  Their calls come back with the client's ``name`` and ``namespace``, in answers and streams, as OpenAI gives
  them. ``function_call`` items in ``input`` with a ``namespace`` are sent under the flat name.
- A custom tool is a function of one required string argument ``input``; its description says the format
  (a grammar's syntax and definition) the input must follow, which the upstream does not enforce. Its calls come
  back as ``custom_tool_call`` items whose ``input`` is that argument (the arguments' whole text when the model
  wrote no such JSON object); in a stream the input comes in one delta, when the call ends.
  ``custom_tool_call`` / ``custom_tool_call_output`` items in ``input`` are a function call and its result.
- Tools of an ``additional_tools`` input item (OpenAI's "responses lite" wire, Codex's default) are added to the
  request's tools: other dialects declare every tool up front.
- ``web_search`` / ``web_search_preview`` are a hosted web search (``external_web_access: false`` asks for
  cached results only; ``filters.allowed_domains``, ``user_location`` and the request's ``max_tool_calls`` are
  kept, ``search_context_size`` and ``search_content_types`` are not); every other hosted type (``file_search``,
  ``code_interpreter``, ``image_generation``, ``computer_use_preview``, ``mcp``, ``local_shell``, ``shell``,
  ``apply_patch``, ``tool_search``…) is a hosted tool no other dialect runs. ``relay.dialects.hosted_tools``
  decides per upstream. A tool choice naming a hosted type forces it.
- Upstream web searches come back as ``web_search_call`` items (``action.search`` with the queries and the
  result URLs as ``sources``) and the URLs a text cites as ``url_citation`` annotations spanning that text.
  ``web_search_call`` items in ``input`` are left out of the turns (the upstream ran, or will run, its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from relay.dialects import hosted_tools, ir
from relay.dialects.common import arguments_object, bad_request, derived_id, dumps, optional, want
from relay.dialects.tool_names import flat_name

WEB_SEARCH_TYPES = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)
_TOOL_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})

# ---- decode: tools -----------------------------------------------------------------------------------------


def _described(description: str | None, namespace: str | None, namespace_note: str | None) -> str | None:
    if not namespace_note:
        return description
    note = f"(One of the {namespace} tools: {namespace_note})"
    return f"{description}\n\n{note}" if description else note


def function_tool(
    tool: Mapping[str, Any], where: str, namespace: str | None = None, namespace_note: str | None = None
) -> ir.Tool:
    name = want(tool.get("name"), str, f"{where}.name", "a string")
    description = optional(tool, "description", str, f"{where}.description", "a string")
    parameters = optional(tool, "parameters", dict, f"{where}.parameters", "an object")
    strict = optional(tool, "strict", bool, f"{where}.strict", "a boolean")
    origin = ir.ToolOrigin(name, namespace) if namespace else None
    return ir.Tool(
        name=flat_name(namespace, name),
        description=_described(description, namespace, namespace_note),
        parameters=parameters or {},
        strict=strict,
        origin=origin,
    )


def _format_note(fmt: Mapping[str, Any] | None, where: str) -> str | None:
    if fmt is None or fmt.get("type", "text") == "text":
        return None
    if fmt.get("type") != "grammar":
        raise bad_request(f"'{where}.format.type' must be text or grammar", f"{where}.format.type")
    syntax = want(fmt.get("syntax"), str, f"{where}.format.syntax", "a string")
    definition = want(fmt.get("definition"), str, f"{where}.format.definition", "a string")
    return f"The input must follow this {syntax} grammar:\n{definition}"


def custom_tool(
    tool: Mapping[str, Any], where: str, namespace: str | None = None, namespace_note: str | None = None
) -> ir.Tool:
    """A custom (freeform) tool as a function of one string argument ``input``."""
    name = want(tool.get("name"), str, f"{where}.name", "a string")
    description = optional(tool, "description", str, f"{where}.description", "a string")
    note = _format_note(optional(tool, "format", dict, f"{where}.format", "an object"), where)
    text = "\n\n".join(t for t in (description, note) if t) or None
    parameters = {
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The tool's whole input, as plain text."}},
        "required": ["input"],
        "additionalProperties": False,
    }
    return ir.Tool(
        name=flat_name(namespace, name),
        description=_described(text, namespace, namespace_note),
        parameters=parameters,
        origin=ir.ToolOrigin(name, namespace, custom=True),
    )


def _web_search(tool: Mapping[str, Any], where: str, kind: str, max_uses: int | None) -> ir.HostedTool:
    filters = optional(tool, "filters", dict, f"{where}.filters", "an object") or {}
    domains = optional(filters, "allowed_domains", list, f"{where}.filters.allowed_domains", "an array") or ()
    place = hosted_tools.location(optional(tool, "user_location", dict, f"{where}.user_location", "an object"))
    live = optional(tool, "external_web_access", bool, f"{where}.external_web_access", "a boolean")
    return ir.HostedTool(
        kind="web_search",
        label=kind,
        allowed_domains=tuple(d for d in domains if isinstance(d, str)),
        max_uses=max_uses,
        location=place,
        live=live is not False,
        dialect="openai_responses",
    )


def decode_tools(raw: list[Any], where: str, max_uses: int | None) -> tuple[list[ir.Tool], list[ir.HostedTool], bool]:
    """A list of Responses tools → the functions, the hosted tools, and whether all were plain functions."""
    tools: list[ir.Tool] = []
    hosted: list[ir.HostedTool] = []
    plain = True
    for i, tool in enumerate(raw):
        path = f"{where}[{i}]"
        want(tool, dict, path, "an object")
        kind = want(tool.get("type"), str, f"{path}.type", "a string")
        if kind == "function":
            tools.append(function_tool(tool, path))
            plain = plain and tool.keys() <= _TOOL_KEYS
            continue
        plain = False
        if kind == "custom":
            tools.append(custom_tool(tool, path))
        elif kind == "namespace":
            tools.extend(_namespace(tool, path))
        elif kind in WEB_SEARCH_TYPES:
            hosted.append(_web_search(tool, path, kind, max_uses))
        else:
            hosted.append(ir.HostedTool(kind=kind, label=kind, dialect="openai_responses"))
    return tools, hosted, plain


def _namespace(tool: Mapping[str, Any], where: str) -> list[ir.Tool]:
    namespace = want(tool.get("name"), str, f"{where}.name", "a string")
    note = optional(tool, "description", str, f"{where}.description", "a string")
    tools = []
    for j, inner in enumerate(want(tool.get("tools"), list, f"{where}.tools", "an array")):
        path = f"{where}.tools[{j}]"
        want(inner, dict, path, "an object")
        kind = inner.get("type")
        if kind == "function":
            tools.append(function_tool(inner, path, namespace, note))
        elif kind == "custom":
            tools.append(custom_tool(inner, path, namespace, note))
        else:
            raise bad_request(f"'{path}.type' must be function or custom in a namespace", f"{path}.type")
    return tools


def refuse_clashes(tools: list[ir.Tool]) -> None:
    """A 400 when two tools would reach the upstream under one name."""
    seen: dict[str, ir.Tool] = {}
    for tool in tools:
        other = seen.setdefault(tool.name, tool)
        if other is not tool:
            raise bad_request(f"two tools are both sent to the model as {tool.name!r}; rename one of them", "tools")


def web_search_tool(search: ir.HostedTool) -> dict[str, Any]:
    """Another client's web search as Responses' ``web_search`` tool (its ``max_uses`` is not carried)."""
    tool: dict[str, Any] = {"type": "web_search"}
    if search.allowed_domains:
        tool["filters"] = {"allowed_domains": list(search.allowed_domains)}
    if search.location:
        tool["user_location"] = {"type": "approximate", **search.location}
    return tool


# ---- decode: tool choice -----------------------------------------------------------------------------------


def _resolve(name: str, namespace: str | None, tools: list[ir.Tool]) -> str:
    """The flat name of the tool a choice names (by its namespace and name, or by an unambiguous inner name)."""
    if namespace:
        return flat_name(namespace, name)
    if any(t.name == name for t in tools):
        return name
    inner = [t.name for t in tools if t.origin is not None and t.origin.name == name]
    return inner[0] if len(inner) == 1 else name  # a name among no tools: the upstream encoder refuses it


def _force(kind: str, hosted: list[ir.HostedTool]) -> list[ir.HostedTool]:
    """``hosted`` with the tool of ``kind`` forced (added when the client did not list it)."""
    wanted = "web_search" if kind in WEB_SEARCH_TYPES else kind
    for i, tool in enumerate(hosted):
        if tool.kind == wanted:
            return [*hosted[:i], attrs.evolve(tool, forced=True), *hosted[i + 1 :]]
    return [*hosted, ir.HostedTool(kind=wanted, label=kind, forced=True, dialect="openai_responses")]


def decode_choice(
    raw: Any, tools: list[ir.Tool], hosted: list[ir.HostedTool]
) -> tuple[ir.ToolChoice | None, list[ir.Tool], list[ir.HostedTool], bool]:
    """The tool choice, the tools and hosted tools it leaves (``allowed_tools`` narrows them), and whether the
    IR holds it exactly."""
    if raw is None:
        return None, tools, hosted, True
    if raw in ("auto", "none", "required"):
        return ir.ToolChoice(mode=raw), tools, hosted, True
    want(raw, dict, "tool_choice", "auto, none, required or an object")
    kind = want(raw.get("type"), str, "tool_choice.type", "a string")
    if kind in ("function", "custom"):
        name = want(raw.get("name"), str, "tool_choice.name", "a string")
        namespace = optional(raw, "namespace", str, "tool_choice.namespace", "a string")
        exact = kind == "function" and namespace is None
        return ir.ToolChoice("named", _resolve(name, namespace, tools)), tools, hosted, exact
    if kind == "allowed_tools":
        mode = raw.get("mode")
        if mode not in ("auto", "required"):
            raise bad_request("'tool_choice.mode' must be auto or required", "tool_choice.mode")
        allowed = want(raw.get("tools"), list, "tool_choice.tools", "an array")
        names: set[str] = set()
        kinds: set[str] = set()
        for entry in allowed:
            if not isinstance(entry, dict):
                continue
            if entry.get("type") in ("function", "custom") and isinstance(entry.get("name"), str):
                namespace = entry.get("namespace") if isinstance(entry.get("namespace"), str) else None
                names.add(_resolve(entry["name"], namespace, tools))
            elif entry.get("type") == "namespace" and isinstance(entry.get("name"), str):
                names.update(t.name for t in tools if t.origin is not None and t.origin.namespace == entry["name"])
            elif isinstance(entry.get("type"), str):
                kinds.add("web_search" if entry["type"] in WEB_SEARCH_TYPES else entry["type"])
        kept = [t for t in tools if t.name in names]
        return ir.ToolChoice(mode=mode), kept, [h for h in hosted if h.kind in kinds], False
    return None, tools, _force(kind, hosted), False  # a hosted tool (mcp, file_search, web_search_preview…)


# ---- encode: output items ----------------------------------------------------------------------------------


def custom_input(arguments: str) -> str:
    """A custom tool call's input: the ``input`` string of the arguments' object, else their whole text."""
    value = arguments_object(arguments)
    text = value.get("input") if value is not None else None
    return text if isinstance(text, str) else arguments


def client_call(
    call_id: str, item_id: str, name: str, arguments: str, origin: ir.ToolOrigin | None, status: str = "completed"
) -> dict[str, Any]:
    """A call's output item as the client named the tool: a ``function_call`` (with its ``namespace``) or a
    ``custom_tool_call``."""
    if origin is not None and origin.custom:
        item: dict[str, Any] = {
            "type": "custom_tool_call",
            "id": item_id if item_id.startswith("ctc_") else "ctc_" + item_id.removeprefix("fc_"),  # OpenAI's
            "call_id": call_id,
            "name": origin.name,
            "input": custom_input(arguments),
        }
    else:
        item = {
            "type": "function_call",
            "id": item_id,
            "call_id": call_id,
            "name": origin.name if origin is not None else name,
            "arguments": arguments,
            "status": status,
        }
    if origin is not None and origin.namespace:
        item["namespace"] = origin.namespace
    return item


def search_item(search: ir.WebSearch, item_id: str, status: str = "completed") -> dict[str, Any]:
    """A ``web_search_call`` output item: the search action, its queries and the result URLs."""
    action: dict[str, Any] = {"type": "search"}
    if search.queries:
        action["query"] = search.queries[0]
        action["queries"] = list(search.queries)
    if search.sources:
        action["sources"] = [{"type": "url", "url": url} for url in search.sources]
    return {
        "type": "web_search_call",
        "id": item_id,
        "status": "failed" if search.failed and status == "completed" else status,
        "action": action,
    }


def search_id(search: ir.WebSearch, seed: str, index: int) -> str:
    return search.id if search.id.startswith("ws_") else derived_id(seed, index, "ws_")


def annotations(text: ir.Text | str, citations: tuple[ir.Citation, ...]) -> list[dict[str, Any]]:
    """``url_citation`` annotations, each spanning the whole text that cites the source."""
    length = len(text.text if isinstance(text, ir.Text) else text)
    return [
        {"type": "url_citation", "start_index": 0, "end_index": length, "url": c.url, "title": c.title}
        for c in citations
    ]


def custom_arguments(text: str) -> str:
    """A custom tool call's (or output's) input as the arguments of the function it is sent as."""
    return dumps({"input": text})

"""Anthropic Messages requests (``POST /v1/messages``, ``/v1/messages/count_tokens``): decoded, encoded.

Sans-IO: a client's request body to ``ir.Request`` (``decode_request``, ``decode_count_request``) and an
``ir.Request`` to an upstream's body (``encode_request``, ``encode_count_request``), with the thinking budget,
tools and tool choice. Re-exported by ``anthropic``. docs/conversions/anthropic.md has the tables below in full.

Choices made on the users' behalf:

- Decoding a client request: fields with no IR slot go to ``extra`` (``metadata``, ``service_tier``,
  ``container``, ``mcp_servers``, ``context_management``…), sent again only to an Anthropic upstream; for
  another dialect ``require_kept`` refuses every one but those ``IGNORED`` or ``NEUTRAL``.
  ``cache_control``, text ``citations``, document ``context`` and ``citations`` are not kept. A plain-text
  document becomes a base64 ``text/plain`` Document. Server-tool blocks, ``search_result``, ``file`` and
  ``content`` sources, and documents inside tool results cannot be converted: a 400 names them. Server tools
  are ``HostedTool``s: a web search mapped where another dialect has one, the others dropped (``hosted_tools``).
  Thinking ``adaptive`` (or ``between_tools``) is the ``output_config.effort`` (default ``high``); effort ``max``
  is ``xhigh``; ``disabled`` is effort ``none``; enabled or adaptive thinking is ``include=True``
  (``display: omitted``: ``include=False``), so another dialect's upstream is asked to show its reasoning.
  A thinking ``signature`` that is Relay's envelope (``envelope``) is the reasoning of the dialect inside, or a
  tool call's proof (on the call of the turn it names); an invalid one is refused in Anthropic's own words.
- Encoding a request for an Anthropic upstream: ``max_tokens`` is required; absent, it is
  ``DEFAULT_MAX_TOKENS`` (4096) plus the thinking budget. Reasoning becomes ``thinking: {type: enabled,
  budget_tokens}`` (effort by ``common.EFFORT_BUDGET``, a dynamic budget as ``medium``, at least 1024; effort
  ``none`` or budget 0 sends none); when ``max_tokens`` ≤ the budget, ``max_tokens`` becomes budget +
  ``max_tokens``. With thinking on, ``temperature`` other than 1, ``top_k``, and ``top_p`` below 0.95 are dropped,
  and a forced tool choice (any/tool) turns thinking off, as does a last assistant turn that calls tools
  without starting with an Anthropic thinking block (Anthropic refuses both). ``temperature`` and ``top_p``
  together: ``top_p`` is dropped (recent models refuse both). ``json_object`` output becomes a system
  instruction; ``json_schema``
  becomes ``output_config.format`` (its ``name`` and ``strict`` have no slot). Whitespace-only stop sequences,
  tool arguments that are not a JSON object, documents other than PDF, plain text and images: a 400.
- ``role: "system"`` messages inside ``messages`` are read by ``anthropic.system`` (leading ones join ``system``,
  later ones are IR ``system`` turns in place). Sent upstream, a ``system`` turn is user text marked by
  ``instructions.instruction_text`` (Anthropic takes the role only behind a beta header another dialect's client
  never sent); for an Anthropic client's request (``same_dialect``) it stays a ``role: "system"`` message.
- Messages sent upstream: empty text blocks are never sent; consecutive same-role turns are merged; tool
  results go first in their user turn; thinking and redacted_thinking blocks only when Anthropic made them
  (signature and data byte-identical), other providers' reasoning is dropped; tool ids outside
  ``[A-Za-z0-9_-]`` have those characters replaced by ``_`` (calls and results alike); image ``detail`` and
  Gemini tool-call signatures are dropped.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import attrs

from relay.dialects import envelope, hosted_tools, instructions, ir
from relay.dialects.anthropic.system import decode_turns
from relay.dialects.common import (
    EFFORT_BUDGET,
    arguments_object,
    bad_request,
    budget_for,
    dropped,
    dumps,
    json_body,
    load_object,
    refuse_dropped,
)

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "JSON_OBJECT_INSTRUCTION",
    "MIN_THINKING_BUDGET",
    "decode_count_request",
    "decode_request",
    "encode_count_request",
    "encode_request",
]

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."

# ---- request: decode ---------------------------------------------------------------------------------

_CORE_FIELDS = frozenset(
    {
        "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences",
        "stream", "tools", "tool_choice", "thinking", "output_config", "output_format",
    }
)  # fmt: skip
_EFFORT_IN: dict[str, ir.Effort] = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "an array"}


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str, *, required: bool = False) -> Any:
    """``obj[key]`` checked against ``kind`` (None when absent); a 400 naming ``path.key`` otherwise."""
    value = obj.get(key)
    where = _where(path, key)
    if value is None:
        if required:
            raise bad_request(f"'{where}' is required", where)
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        what = "a number" if float in kinds else _NAMES.get(kinds[0], kinds[0].__name__)
        raise bad_request(f"'{where}' must be {what}", where)
    return value


#: Fields with no effect on the answer, not sent when converting (docs/conversions/anthropic.md). ``container``
#: serves server tools only, which other dialects do not run.
IGNORED = frozenset({"metadata", "service_tier", "cache_control", "inference_geo", "speed", "container", "diagnostics"})
#: Fields kept when they ask for nothing; any other value cannot be converted.
NEUTRAL: dict[str, tuple[Any, ...]] = {"mcp_servers": ([],)}


def require_kept(req: ir.Request) -> None:
    """A 400 naming the first field of a decoded request a conversion would drop (``n``, ``stop``…)."""
    refuse_dropped(dropped(req.extra, IGNORED, NEUTRAL))


def decode_request(body: bytes) -> ir.Request:
    """A Messages request body → ``ir.Request``; a 400 naming the parameter path otherwise."""
    return _decode(load_object(body), count=False)


def decode_count_request(body: bytes) -> ir.Request:
    """A ``count_tokens`` request body → ``ir.Request`` (as ``decode_request``, ``max_tokens`` not required)."""
    return _decode(load_object(body), count=True)


def _decode(payload: dict[str, Any], *, count: bool) -> ir.Request:
    model = _get(payload, "model", str, "", required=True)
    if not model:
        raise bad_request("'model' must not be empty", "model")
    max_tokens = _get(payload, "max_tokens", int, "", required=not count)
    if max_tokens is not None and max_tokens < 1:
        raise bad_request("'max_tokens' must be at least 1", "max_tokens")
    raw_messages = _get(payload, "messages", list, "", required=True)
    if not raw_messages:
        raise bad_request("'messages' must not be empty", "messages")
    names: dict[str, str] = {}
    turns = decode_turns(raw_messages, lambda message, path: _decode_message(message, path, names))
    stop = _get(payload, "stop_sequences", list, "") or []
    for i, sequence in enumerate(stop):
        if not isinstance(sequence, str):
            raise bad_request(f"'stop_sequences[{i}]' must be a string", f"stop_sequences[{i}]")
    tools, hosted, choice, parallel = _decode_tools(payload)
    reasoning, output = _decode_config(payload)
    if turns.effort is not None and (reasoning is None or reasoning.effort != "none"):  # a per-turn effort
        reasoning = attrs.evolve(reasoning or ir.ReasoningConfig(), effort=turns.effort)
    return ir.Request(
        model=model,
        system=_decode_system(payload.get("system")) + tuple(turns.system),
        messages=tuple(turns.messages),
        stream=bool(_get(payload, "stream", bool, "")) and not count,
        max_tokens=max_tokens,
        temperature=_get(payload, "temperature", (int, float), ""),
        top_p=_get(payload, "top_p", (int, float), ""),
        top_k=_get(payload, "top_k", int, ""),
        stop=tuple(stop),
        tools=tools,
        hosted=hosted,
        tool_choice=choice,
        parallel_tool_calls=parallel,
        output=output,
        reasoning=reasoning,
        extra={k: v for k, v in payload.items() if k not in _CORE_FIELDS},
    )


def _decode_system(system: Any) -> tuple[ir.Text, ...]:
    if system is None:
        return ()
    if isinstance(system, str):
        return (ir.Text(system),) if system else ()
    if not isinstance(system, list):
        raise bad_request("'system' must be a string or an array of text blocks", "system")
    texts = []
    for i, block in enumerate(system):
        path = f"system[{i}]"
        if not isinstance(block, dict) or block.get("type") != "text":
            raise bad_request(f"'{path}' must be a text block", path)
        texts.append(ir.Text(_get(block, "text", str, path, required=True)))
    return tuple(texts)


def _decode_message(message: Any, path: str, names: dict[str, str]) -> ir.Message:
    if not isinstance(message, dict):
        raise bad_request(f"'{path}' must be an object", path)
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise bad_request(f"'{path}.role' must be 'user' or 'assistant'", f"{path}.role")
    content = message.get("content")
    if isinstance(content, str):
        return ir.Message(role, (ir.Text(content),) if content else ())
    if not isinstance(content, list):
        raise bad_request(f"'{path}.content' must be a string or an array of content blocks", f"{path}.content")
    parts = [
        _decode_block(b, f"{path}.content[{i}]", role, names)
        for i, b in enumerate(content)
        if not (role == "assistant" and _server_run(b))
    ]
    return ir.Message(role, tuple(envelope.settle(parts)))


def _server_run(block: Any) -> bool:
    """A block of a tool Anthropic ran itself (``server_tool_use``, ``web_search_tool_result``,
    ``code_execution_tool_result``, ``mcp_tool_use``…): another provider neither ran it nor can read it, so a
    conversion leaves it out of the assistant's turn, whose text about it stays (a client failed over or moved
    to another model keeps its conversation)."""
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(kind, str):
        return False
    return kind in ("server_tool_use", "mcp_tool_use", "mcp_tool_result") or (
        kind.endswith("_tool_result") and kind != "tool_result"
    )


_USER_ONLY = frozenset({"image", "document", "tool_result"})
_ASSISTANT_ONLY = frozenset({"tool_use", "thinking", "redacted_thinking"})


def _decode_block(block: Any, path: str, role: str, names: dict[str, str]) -> ir.Part | envelope.Proof:
    if not isinstance(block, dict):
        raise bad_request(f"'{path}' must be an object", path)
    kind = block.get("type")
    if not isinstance(kind, str):
        raise bad_request(f"'{path}.type' must be a string", f"{path}.type")
    if (kind in _USER_ONLY and role != "user") or (kind in _ASSISTANT_ONLY and role != "assistant"):
        raise bad_request(f"'{path}.type': a {kind} block cannot be in a {role} message", f"{path}.type")
    if kind == "text":
        return ir.Text(_get(block, "text", str, path, required=True))
    if kind == "image":
        return _decode_image(block, path)
    if kind == "document":
        return _decode_document(block, path)
    if kind == "tool_use":
        call_id = _get(block, "id", str, path, required=True)
        name = _get(block, "name", str, path, required=True)
        arguments = _get(block, "input", dict, path)
        names[call_id] = name
        return ir.ToolCall(id=call_id, name=name, arguments=dumps(arguments or {}))
    if kind == "tool_result":
        return _decode_tool_result(block, path, names)
    if kind == "thinking":
        text = _get(block, "thinking", str, path, required=True)
        signature = _get(block, "signature", str, path) or None
        if envelope.is_envelope(signature):  # another dialect's proof, wrapped by Relay
            return _unwrapped(signature, text, path)  # type: ignore[arg-type]
        return ir.Reasoning(text=text, signature=signature, dialect="anthropic" if signature else None)
    if kind == "redacted_thinking":
        return ir.Reasoning(redacted=_get(block, "data", str, path, required=True), dialect="anthropic")
    raise bad_request(f"content block type {kind!r} cannot be converted for this model", f"{path}.type")


def _unwrapped(signature: str, text: str, path: str) -> ir.Reasoning | envelope.Proof:
    """A thinking block whose signature is Relay's envelope: the reasoning it carries, or a tool call's proof.

    An invalid one is refused in Anthropic's own words, on which Claude Code retries without thinking.
    """
    where = re.sub(r"\[(\d+)\]", r".\1", path)  # messages[1].content[0] → messages.1.content.0
    message = f"{where}: Invalid `signature` in `thinking` block"
    proof = envelope.opened(signature, f"{path}.signature", message=message)
    return proof if proof.kind == "call" else envelope.as_reasoning(proof, text)


def _decode_tool_result(block: Mapping[str, Any], path: str, names: dict[str, str]) -> ir.ToolResult:
    call_id = _get(block, "tool_use_id", str, path, required=True)
    content = block.get("content")
    parts: tuple[ir.Text | ir.Image, ...]
    if content is None:
        parts = ()
    elif isinstance(content, str):
        parts = (ir.Text(content),) if content else ()
    elif isinstance(content, list):
        parts = tuple(_decode_result_block(b, f"{path}.content[{i}]") for i, b in enumerate(content))
    else:
        raise bad_request(f"'{path}.content' must be a string or an array of blocks", f"{path}.content")
    is_error = bool(_get(block, "is_error", bool, path))
    return ir.ToolResult(call_id=call_id, name=names.get(call_id), content=parts, is_error=is_error)


def _decode_result_block(block: Any, path: str) -> ir.Text | ir.Image:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":
        return ir.Text(_get(block, "text", str, path, required=True))
    if kind == "image":
        return _decode_image(block, path)
    raise bad_request(f"tool_result content of type {kind!r} cannot be converted (text and image can)", path)


def _source(block: Mapping[str, Any], path: str, kinds: tuple[str, ...]) -> tuple[dict[str, Any], str, str]:
    source = _get(block, "source", dict, path, required=True)
    path = f"{path}.source"
    kind = source.get("type")
    if kind not in kinds:
        raise bad_request(f"source type {kind!r} cannot be converted ({', '.join(kinds)} can)", f"{path}.type")
    return source, kind, path


def _decode_image(block: Mapping[str, Any], path: str) -> ir.Image:
    source, kind, path = _source(block, path, ("base64", "url"))
    if kind == "url":
        return ir.Image(url=_get(source, "url", str, path, required=True))
    media_type = _get(source, "media_type", str, path, required=True)
    return ir.Image(data=_get(source, "data", str, path, required=True), media_type=media_type)


def _decode_document(block: Mapping[str, Any], path: str) -> ir.Document:
    source, kind, spath = _source(block, path, ("base64", "url", "text"))
    title = _get(block, "title", str, path)
    if kind == "url":
        return ir.Document(media_type="application/pdf", url=_get(source, "url", str, spath, required=True), name=title)
    media_type = _get(source, "media_type", str, spath, required=True)
    data = _get(source, "data", str, spath, required=True)
    if kind == "text":
        data = base64.b64encode(data.encode()).decode()
    return ir.Document(media_type=media_type, data=data, name=title)


def _server_tool(tool: Mapping[str, Any], path: str) -> ir.HostedTool:
    """A server tool (``web_search_…``, ``code_execution_…``, ``bash_…``…): sent as it is to Anthropic, a web
    search mapped or dropped elsewhere, any other dropped (``hosted_tools``)."""
    kind = _get(tool, "type", str, path, required=True)
    if not kind.startswith("web_search_"):
        return ir.HostedTool(kind=kind, label=kind, dialect="anthropic", raw=tool)
    place = hosted_tools.location(_get(tool, "user_location", dict, path))
    allowed = _get(tool, "allowed_domains", list, path) or ()
    blocked = _get(tool, "blocked_domains", list, path) or ()
    return ir.HostedTool(
        kind="web_search",
        label=kind,
        allowed_domains=tuple(d for d in allowed if isinstance(d, str)),
        blocked_domains=tuple(d for d in blocked if isinstance(d, str)),
        max_uses=_get(tool, "max_uses", int, path),
        location=place,
        dialect="anthropic",
        raw=tool,
    )


def _decode_tools(
    payload: Mapping[str, Any],
) -> tuple[tuple[ir.Tool, ...], tuple[ir.HostedTool, ...], ir.ToolChoice | None, bool | None]:
    tools = []
    hosted: list[ir.HostedTool] = []
    for i, tool in enumerate(_get(payload, "tools", list, "") or ()):
        path = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise bad_request(f"'{path}' must be an object", path)
        if tool.get("type") not in (None, "custom"):
            hosted.append(_server_tool(tool, path))
            continue
        tools.append(
            ir.Tool(
                name=_get(tool, "name", str, path, required=True),
                description=_get(tool, "description", str, path),
                parameters=_get(tool, "input_schema", dict, path, required=True),
                strict=_get(tool, "strict", bool, path),
            )
        )
    raw = _get(payload, "tool_choice", dict, "")
    if raw is None:
        return tuple(tools), tuple(hosted), None, None
    modes = {"auto": "auto", "any": "required", "none": "none", "tool": "named"}
    kind = raw.get("type")
    mode = modes.get(kind) if isinstance(kind, str) else None
    if mode is None:
        raise bad_request("'tool_choice.type' must be auto, any, tool or none", "tool_choice.type")
    name = _get(raw, "name", str, "tool_choice", required=True) if mode == "named" else None
    disable = _get(raw, "disable_parallel_tool_use", bool, "tool_choice")
    parallel = None if disable is None else not disable
    server = [h for h in hosted if h.raw is not None and h.raw.get("name") == name]
    if name is not None and server and not any(t.name == name for t in tools):  # a server tool, forced
        hosted = [attrs.evolve(h, forced=True) if h is server[0] else h for h in hosted]
        return tuple(tools), tuple(hosted), None, parallel
    choice = ir.ToolChoice(mode=mode, name=name)  # type: ignore[arg-type]
    return tuple(tools), tuple(hosted), choice, parallel


def _decode_config(payload: Mapping[str, Any]) -> tuple[ir.ReasoningConfig | None, ir.OutputFormat | None]:
    config = _get(payload, "output_config", dict, "") or {}
    effort_raw = _get(config, "effort", str, "output_config")
    if effort_raw is not None and effort_raw not in _EFFORT_IN:
        raise bad_request("'output_config.effort' must be low, medium, high, xhigh or max", "output_config.effort")
    effort = _EFFORT_IN.get(effort_raw or "")
    reasoning = ir.ReasoningConfig(effort=effort) if effort else None
    thinking = _get(payload, "thinking", dict, "")
    if thinking is not None:
        kind = thinking.get("type")
        display = _get(thinking, "display", str, "thinking")
        include = display != "omitted"  # thinking turned on is shown unless the client omits it
        if kind == "enabled":
            budget = _get(thinking, "budget_tokens", int, "thinking", required=True)
            reasoning = ir.ReasoningConfig(effort=effort, budget_tokens=budget, include=include)
        elif kind in ("adaptive", "between_tools"):
            reasoning = ir.ReasoningConfig(effort=effort or "high", include=include)  # Anthropic's default effort
        elif kind == "disabled":
            reasoning = ir.ReasoningConfig(effort="none")
        else:
            raise bad_request("'thinking.type' must be enabled, adaptive or disabled", "thinking.type")
    fmt, where = config.get("format"), "output_config.format"
    if fmt is None and payload.get("output_format") is not None:
        fmt, where = payload["output_format"], "output_format"
    if fmt is None:
        return reasoning, None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise bad_request(f"'{where}' must be {{type: json_schema, schema}}", where)
    return reasoning, ir.OutputFormat(kind="json_schema", schema=_get(fmt, "schema", dict, where, required=True))


# ---- request: encode ---------------------------------------------------------------------------------


def encode_request(req: ir.Request, model: str, *, same_dialect: bool = False) -> bytes:
    """A Messages body for ``model``; ``req.extra`` is sent only with ``same_dialect`` (it came from Anthropic)."""
    return json_body(_encode(req, model, same_dialect=same_dialect))


_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config")


#: The beta that lets Claude 4 models think between tool calls, not only once at the start of a turn.
INTERLEAVED_THINKING = "interleaved-thinking-2025-05-14"


def upstream_headers(req: ir.Request) -> tuple[tuple[str, str], ...]:
    """Headers a request converted to Anthropic needs: the interleaved-thinking beta when it may think and has
    tools (an agent loop); an Anthropic client's own betas pass through on its same-dialect path instead."""
    config = req.reasoning
    budget = budget_for(config) if config is not None else None
    thinks = config is not None and budget != 0 and (budget is not None or bool(config.include))  # as _thinking_budget
    return (("anthropic-beta", INTERLEAVED_THINKING),) if req.tools and thinks else ()


def encode_count_request(req: ir.Request, model: str) -> bytes:
    """A ``count_tokens`` body: the Messages body's model, messages, system, tools, tool choice and thinking."""
    body = _encode(req, model, same_dialect=False)
    return json_body({k: body[k] for k in _COUNT_FIELDS if k in body})


def _encode(req: ir.Request, model: str, *, same_dialect: bool) -> dict[str, Any]:
    body: dict[str, Any] = dict(req.extra) if same_dialect else {}
    body["model"] = model
    messages = _encode_messages(req.messages, keep_system=same_dialect)
    budget = _thinking_budget(req, messages)
    max_tokens = req.max_tokens
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS + (budget or 0)
    elif budget is not None and max_tokens <= budget:
        max_tokens += budget
    body["max_tokens"] = max_tokens
    system = [t.text for t in req.system if t.text]
    if req.output is not None and req.output.kind == "json_object":
        system.append(JSON_OBJECT_INSTRUCTION)
    if len(system) == 1:
        body["system"] = system[0]
    elif system:
        body["system"] = [{"type": "text", "text": t} for t in system]
    body["messages"] = messages
    _encode_sampling(req, body, thinking=budget is not None, same_dialect=same_dialect)
    if budget is not None:
        thinking: dict[str, Any] = {"type": "enabled", "budget_tokens": budget}
        if req.reasoning is not None and req.reasoning.include is False:
            thinking["display"] = "omitted"
        body["thinking"] = thinking
    if req.stop:
        body["stop_sequences"] = _stop_sequences(req.stop)
    if req.stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    search = hosted_tools.web_search(req, "anthropic")
    own = [h for h in req.hosted if h.dialect == "anthropic" and h.raw is not None]  # the client's server tools
    if req.tools or search is not None or own:
        body["tools"] = [_encode_tool(t) for t in req.tools] + [dict(h.raw) for h in own if h.raw is not None]
        if search is not None and search.dialect != "anthropic":
            body["tools"].append(web_search_tool(search))
        choice = _encode_choice(req.tool_choice, req.parallel_tool_calls)
        forced = next((h for h in (*own, search) if h is not None and h.forced), None)
        if forced is not None:
            name = forced.raw.get("name") if forced.raw is not None else WEB_SEARCH_NAME
            choice = {**(choice or {}), "type": "tool", "name": name}
        if choice is not None:
            body["tool_choice"] = choice
    if req.output is not None and req.output.kind == "json_schema":
        config = body.get("output_config")
        config = dict(config) if isinstance(config, dict) else {}
        config["format"] = {"type": "json_schema", "schema": dict(req.output.schema or {})}
        body["output_config"] = config
    return body


def _thinking_budget(req: ir.Request, messages: list[dict[str, Any]]) -> int | None:
    """The ``budget_tokens`` to send, or None for no thinking.

    None for effort none or budget 0; also when Anthropic would refuse thinking: with a forced tool choice,
    and when the last assistant turn calls tools without starting with a thinking block (its thinking came
    from another provider, or none was kept).
    """
    config = req.reasoning
    if config is None:
        return None
    if req.tools and req.tool_choice is not None and req.tool_choice.mode in ("required", "named"):
        return None  # the forced choice wins
    if any(tool.forced for tool in req.hosted):
        return None
    if _unsigned_tool_turn(messages):
        return None
    budget = budget_for(config)
    if budget is None:
        return EFFORT_BUDGET["medium"] if config.include else None
    if budget == 0:
        return None
    if budget < 0:
        budget = EFFORT_BUDGET["medium"]  # dynamic: Anthropic has no such setting
    return max(MIN_THINKING_BUDGET, budget)


def _unsigned_tool_turn(messages: list[dict[str, Any]]) -> bool:
    """Whether the last assistant turn has tool_use blocks but does not start with (redacted) thinking."""
    for turn in reversed(messages):
        if turn["role"] == "assistant":
            content = turn["content"]
            if isinstance(content, str) or not any(b["type"] == "tool_use" for b in content):
                return False
            return content[0]["type"] not in ("thinking", "redacted_thinking")
    return False


def _encode_sampling(req: ir.Request, body: dict[str, Any], *, thinking: bool, same_dialect: bool) -> None:
    temperature, top_p, top_k = req.temperature, req.top_p, req.top_k
    if thinking:  # Anthropic: temperature 1 or unset, top_p ≥ 0.95 or unset, no top_k
        temperature = 1 if temperature == 1 else None
        top_p = top_p if top_p is not None and top_p >= 0.95 else None
        top_k = None
    if temperature is not None and top_p is not None and not same_dialect:
        top_p = None  # recent models refuse both; the client's temperature is the likelier intent
    for key, value in (("temperature", temperature), ("top_p", top_p), ("top_k", top_k)):
        if value is not None:
            body[key] = value


#: The name of Anthropic's web search server tool.
WEB_SEARCH_NAME = "web_search"


def web_search_tool(search: ir.HostedTool) -> dict[str, Any]:
    """A hosted web search as Anthropic's ``web_search_20250305`` server tool."""
    wire: dict[str, Any] = {"type": "web_search_20250305", "name": WEB_SEARCH_NAME}
    if search.max_uses is not None:
        wire["max_uses"] = search.max_uses
    if search.allowed_domains:
        wire["allowed_domains"] = list(search.allowed_domains)
    elif search.blocked_domains:  # Anthropic takes one or the other
        wire["blocked_domains"] = list(search.blocked_domains)
    if search.location:
        wire["user_location"] = {"type": "approximate", **search.location}
    return wire


def _stop_sequences(stop: tuple[str, ...]) -> list[str]:
    for i, sequence in enumerate(stop):
        if not sequence.strip():
            raise bad_request(f"stop sequence {i} is only whitespace, which this model refuses", f"stop[{i}]")
    return list(stop)


def _encode_tool(tool: ir.Tool) -> dict[str, Any]:
    wire: dict[str, Any] = {"name": tool.name}
    if tool.description:
        wire["description"] = tool.description
    schema = dict(tool.parameters)
    schema.setdefault("type", "object")  # Anthropic requires an object schema; {} means no arguments
    wire["input_schema"] = schema
    if tool.strict is not None:
        wire["strict"] = tool.strict
    return wire


def _encode_choice(choice: ir.ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None and parallel is None:
        return None
    mode = choice.mode if choice is not None else "auto"
    if mode == "none":
        return {"type": "none"}
    wire: dict[str, Any] = {"type": {"auto": "auto", "required": "any", "named": "tool"}[mode]}
    if mode == "named" and choice is not None:
        wire["name"] = choice.name
    if parallel is not None:
        wire["disable_parallel_tool_use"] = not parallel
    return wire


_BAD_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def _wire_tool_id(id: str, i: int, j: int) -> str:
    """A tool id Anthropic accepts (``^[a-zA-Z0-9_-]+$``): the same for a call and its result."""
    if not id:
        raise bad_request("a tool call or result has no id", f"messages[{i}].parts[{j}]")
    return _BAD_ID_CHARS.sub("_", id)


def _encode_messages(messages: tuple[ir.Message, ...], *, keep_system: bool = False) -> list[dict[str, Any]]:
    """The turns; a ``system`` turn stays a system message with ``keep_system`` (the request came from an Anthropic
    client, with its beta header), else it is marked user text in its place (no beta header is needed)."""
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.role
        if role == "system":
            texts = instructions.texts(message) if keep_system else [instructions.instruction_text(message) or ""]
            blocks = [{"type": "text", "text": text} for text in texts if text]
            role = "system" if keep_system else "user"
        else:
            blocks = [b for j, p in enumerate(message.parts) if (b := _encode_part(p, role, i, j)) is not None]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role and role != "system":
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if turn["role"] == "user" and any(b["type"] == "tool_result" for b in content):
            content.sort(key=lambda b: b["type"] != "tool_result")  # stable: results first, in their order
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
    return turns


def _encode_part(part: ir.Part, role: str, i: int, j: int) -> dict[str, Any] | None:
    if isinstance(part, ir.Text):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ir.Image):
        return _encode_image(part, f"messages[{i}].parts[{j}]")
    if isinstance(part, ir.Document):
        return _encode_document(part, f"messages[{i}].parts[{j}]")
    if isinstance(part, ir.ToolCall):
        if role != "assistant":
            raise bad_request("a tool call can only be in an assistant message", f"messages[{i}].parts[{j}]")
        arguments = arguments_object(part.arguments)
        if arguments is None:
            raise bad_request("tool call arguments must be a JSON object", f"messages[{i}].parts[{j}].arguments")
        return {"type": "tool_use", "id": _wire_tool_id(part.id, i, j), "name": part.name, "input": arguments}
    if isinstance(part, ir.ToolResult):
        if role != "user":
            raise bad_request("a tool result can only be in a user message", f"messages[{i}].parts[{j}]")
        return _encode_tool_result(part, i, j)
    return _encode_reasoning(part, role)


def _encode_tool_result(part: ir.ToolResult, i: int, j: int) -> dict[str, Any]:
    wire: dict[str, Any] = {"type": "tool_result", "tool_use_id": _wire_tool_id(part.call_id, i, j)}
    content: list[dict[str, Any]] = []
    for k, p in enumerate(part.content):
        if isinstance(p, ir.Image):
            content.append(_encode_image(p, f"messages[{i}].parts[{j}].content[{k}]"))
        elif p.text:
            content.append({"type": "text", "text": p.text})
    if len(content) == 1 and content[0]["type"] == "text":
        wire["content"] = content[0]["text"]
    elif content:
        wire["content"] = content
    if part.is_error:
        wire["is_error"] = True
    return wire


def _encode_reasoning(part: ir.Reasoning, role: str) -> dict[str, Any] | None:
    """Thinking goes back only to the provider that signed it, byte for byte; other reasoning is dropped."""
    if role != "assistant" or part.dialect != "anthropic":
        return None
    if part.redacted is not None:
        return {"type": "redacted_thinking", "data": part.redacted}
    if not part.signature:
        return None
    return {"type": "thinking", "thinking": part.text, "signature": part.signature}


def _encode_image(image: ir.Image, path: str) -> dict[str, Any]:
    if image.data is not None:
        source = {"type": "base64", "media_type": image.media_type or "image/png", "data": image.data}
    elif image.url and image.url.startswith("data:"):
        head, comma, data = image.url.partition(",")
        if not comma or not head.endswith(";base64"):
            raise bad_request("an image data: URL must be base64 encoded", f"{path}.url")
        source = {"type": "base64", "media_type": head[5:-7] or "image/png", "data": data}
    elif image.url and image.url.startswith(("https://", "http://")):
        source = {"type": "url", "url": image.url}
    else:
        raise bad_request("an image must be an https: URL or inline base64 data", path)
    return {"type": "image", "source": source}


def _encode_document(doc: ir.Document, path: str) -> dict[str, Any]:
    if doc.media_type.startswith("image/") and doc.data is not None:
        return _encode_image(ir.Image(data=doc.data, media_type=doc.media_type), path)
    if doc.data is None:
        if doc.media_type != "application/pdf" or not doc.url:
            raise bad_request("documents by URL must be PDFs for this model", path)
        source: dict[str, Any] = {"type": "url", "url": doc.url}
    elif doc.media_type == "application/pdf":
        source = {"type": "base64", "media_type": "application/pdf", "data": doc.data}
    elif doc.media_type == "text/plain":
        try:
            text = base64.b64decode(doc.data, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise bad_request("a text/plain document must be base64-encoded UTF-8", f"{path}.data") from None
        source = {"type": "text", "media_type": "text/plain", "data": text}
    else:
        raise bad_request(
            f"documents of type {doc.media_type!r} cannot be sent to this model (PDF, plain text and images can)",
            f"{path}.media_type",
        )
    wire: dict[str, Any] = {"type": "document", "source": source}
    if doc.name:
        wire["title"] = doc.name
    return wire

"""OpenAI Responses requests (``POST /v1/responses`` and ``/v1/responses/input_tokens``) to and from the IR.

The body's top-level fields, tools, tool choice, text format and reasoning are here; its ``input`` items are in
``openai.responses.items``.

What cannot cross to another dialect stays in ``extra`` (sent again only to a Responses upstream) and
``convertible(req)`` names it: the endpoint calls it before converting and answers a 400 naming the field
(``require_convertible`` does both). Those fields: ``previous_response_id``, ``conversation``, ``prompt``,
``background: true``, ``item_reference`` and built-in tool items in ``input`` (but ``web_search_call``), and
files or images given by ``file_id``. Tools are never among them: namespaces, custom tools and hosted tools
are converted or dropped (``openai.responses.tools``, ``hosted_tools``).

Choices made on users' behalf (docs/conversions/openai_responses.md has the table):

- Reasoning ``effort: max`` decodes as ``xhigh``; any ``summary`` (auto/concise/detailed) is ``include``; a token
  budget is sent as the nearest effort. ``include`` shown reasoning is sent as ``summary: auto``.
- Requests converted from another dialect are sent with ``store: false`` (that client cannot use stored
  responses) and, when reasoning is asked for, ``include: ["reasoning.encrypted_content"]`` (the only way
  reasoning can be carried across turns without storage). With reasoning on (effort other than none),
  ``temperature`` and ``top_p`` are not sent (reasoning models refuse them). ``top_k`` is not sent (no such
  parameter); stop sequences cannot be expressed: a 400 naming ``stop``. ``max_output_tokens`` is at least 16.
- Function tools from another dialect get ``strict: false`` when strictness was unsaid (Responses defaults to
  strict, which refuses most schemas). ``allowed_tools`` becomes its tools alone, with its mode.
- Text format ``description`` and ``verbosity``, ``include``, ``store``, ``metadata``, ``user``, ``truncation``,
  ``service_tier``, ``top_logprobs`` and the other fields with no IR slot are kept in ``extra`` only; for
  another dialect ``require_kept`` refuses every one but those ``IGNORED`` or ``NEUTRAL``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.dialects import hosted_tools, ir
from relay.dialects.common import (
    bad_request,
    dropped,
    effort_for,
    json_body,
    load_object,
    optional,
    refuse_ambiguous,
    refuse_dropped,
    want,
)
from relay.dialects.openai.responses.items import _decode_input, _item_blocker, encode_input
from relay.dialects.openai.responses.tools import decode_choice, decode_tools, refuse_clashes, web_search_tool

#: OpenAI refuses ``max_output_tokens`` below this.
MIN_OUTPUT_TOKENS = 16
ENCRYPTED_REASONING = "reasoning.encrypted_content"

_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_SUMMARIES = ("auto", "concise", "detailed")
#: Top-level fields the IR holds whole; every other field is kept in ``extra``.
_IR_FIELDS = frozenset(
    {"model", "input", "instructions", "stream", "max_output_tokens", "temperature", "top_p", "parallel_tool_calls"}
)
#: Fields that tie a request to state kept by OpenAI (or to OpenAI-only machinery): never converted.
_STATEFUL = ("previous_response_id", "conversation", "prompt")
#: Fields an input-token count body may carry (``/v1/responses/input_tokens``).
_COUNT_FIELDS = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning", "text",
        "truncation", "conversation", "previous_response_id", "personality",
    }
)  # fmt: skip

# ---- decode ------------------------------------------------------------------------------------------


def _decode_tools(
    payload: Mapping[str, Any], added: list[tuple[str, list[Any]]]
) -> tuple[list[ir.Tool], list[ir.HostedTool], bool]:
    """The tools (``tools``, then those of ``additional_tools`` input items) and whether all were plain functions
    given in ``tools`` (else the raw ``tools`` and ``tool_choice`` stay in ``extra`` for a Responses upstream)."""
    raw = payload.get("tools")
    listed = want(raw, list, "tools", "an array") if raw is not None else []
    max_uses = optional(payload, "max_tool_calls", int, "max_tool_calls", "an integer")
    tools, hosted, plain = decode_tools(listed, "tools", max_uses)
    for where, more in added:
        extra_tools, extra_hosted, _ = decode_tools(more, where, max_uses)
        tools.extend(extra_tools)
        hosted.extend(extra_hosted)
    refuse_clashes(tools)
    return tools, hosted, plain and not added


def _decode_text(payload: Mapping[str, Any]) -> ir.OutputFormat | None:
    text = optional(payload, "text", dict, "text", "an object")
    fmt = optional(text or {}, "format", dict, "text.format", "an object")
    if fmt is None:
        return None
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return ir.OutputFormat(kind=kind)
    if kind != "json_schema":
        raise bad_request("'text.format.type' must be text, json_object or json_schema", "text.format.type")
    return ir.OutputFormat(
        kind="json_schema",
        name=optional(fmt, "name", str, "text.format.name", "a string"),
        schema=want(fmt.get("schema"), dict, "text.format.schema", "an object"),
        strict=optional(fmt, "strict", bool, "text.format.strict", "a boolean"),
    )


def _decode_reasoning(payload: Mapping[str, Any]) -> ir.ReasoningConfig | None:
    raw = optional(payload, "reasoning", dict, "reasoning", "an object")
    if raw is None:
        return None
    effort = raw.get("effort")
    if effort is not None and effort not in (*_EFFORTS, "max"):
        raise bad_request(f"'reasoning.effort' must be one of {', '.join(_EFFORTS)}, max", "reasoning.effort")
    include = None
    for key in ("summary", "generate_summary"):
        summary = raw.get(key)
        if summary is not None:
            if summary not in _SUMMARIES:
                raise bad_request(f"'reasoning.{key}' must be auto, concise or detailed", f"reasoning.{key}")
            include = True
    if effort is None and include is None:
        return None
    return ir.ReasoningConfig(effort="xhigh" if effort == "max" else effort, include=include)


def _decode(payload: dict[str, Any], fields: frozenset[str] | None) -> ir.Request:
    """A request body (``fields``: the keys allowed in ``extra``, all when None) → ``ir.Request``."""
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("you must provide a model parameter (a non-empty string)", "model")
    extra: dict[str, Any] = {k: v for k, v in payload.items() if k not in _IR_FIELDS}
    if fields is not None:
        extra = {k: v for k, v in extra.items() if k in fields}
    system, turns = _decode_input(payload, extra)
    tools, hosted, tools_exact = _decode_tools(payload, turns.added_tools)
    choice, tools, hosted, choice_exact = decode_choice(payload.get("tool_choice"), tools, hosted)
    if tools_exact and choice_exact:  # else the raw tools and choice go to a Responses upstream as they are
        extra.pop("tools", None)
        extra.pop("tool_choice", None)
    else:
        extra.setdefault("tools", [])  # a Response echoes the client's own tools (none: ``additional_tools``)
    stream = optional(payload, "stream", bool, "stream", "a boolean")
    max_tokens = optional(payload, "max_output_tokens", int, "max_output_tokens", "an integer")
    return ir.Request(
        model=model,
        system=system,
        messages=tuple(turns.messages),
        stream=bool(stream),
        max_tokens=max_tokens,
        temperature=optional(payload, "temperature", (int, float), "temperature", "a number"),
        top_p=optional(payload, "top_p", (int, float), "top_p", "a number"),
        tools=tuple(tools),
        hosted=tuple(hosted),
        tool_choice=choice,
        parallel_tool_calls=optional(payload, "parallel_tool_calls", bool, "parallel_tool_calls", "a boolean"),
        output=_decode_text(payload),
        reasoning=_decode_reasoning(payload),
        extra=extra,
    )


def decode_request(body: bytes) -> ir.Request:
    """A ``/v1/responses`` body → ``ir.Request``; a 400 naming the parameter path otherwise.

    Fields that cannot cross to another dialect stay in ``extra``: check ``convertible`` before converting.
    """
    payload = load_object(body)
    refuse_ambiguous(body)
    return _decode(payload, None)


def convertible(req: ir.Request) -> str | None:
    """The parameter path of the first thing in a decoded request only OpenAI Responses can serve, or None.

    The endpoint calls this before sending a Responses client's request to an upstream of another dialect.
    """
    extra = req.extra
    for name in _STATEFUL:
        if extra.get(name) is not None:
            return name
    if extra.get("background"):
        return "background"
    for i, item in enumerate(extra.get("input") or ()):
        blocker = _item_blocker(item)
        if blocker is not None:
            return f"input[{i}]{blocker}"
    return None


#: Fields with no effect on the answer, not sent when converting (docs/conversions/openai_responses.md).
#: ``max_tool_calls`` bounds built-in tools only: it is a web search's ``max_uses`` (``HostedTool``).
#: ``client_metadata`` is Codex's: its own bookkeeping, like ``metadata``.
IGNORED = frozenset(
    {
        "include", "metadata", "client_metadata", "store", "service_tier", "user", "safety_identifier",
        "prompt_cache_key", "prompt_cache_retention", "stream_options", "truncation", "max_tool_calls",
    }
)  # fmt: skip
#: Fields decoded into the IR although kept in ``extra`` (for a Responses upstream), and the stateful ones
#: ``convertible`` names.
_DECODED = frozenset({"input", "instructions", "tools", "tool_choice", "text", "reasoning", *_STATEFUL})
NEUTRAL: dict[str, tuple[Any, ...]] = {"background": (False,), "top_logprobs": (0,)}


def require_kept(req: ir.Request) -> None:
    """A 400 naming the first field of a decoded request a conversion would drop."""
    refuse_dropped(dropped(req.extra, IGNORED | _DECODED, NEUTRAL))


def require_convertible(req: ir.Request) -> None:
    """A 400 naming what only OpenAI Responses can serve, when the request holds such a thing."""
    path = convertible(req)
    if path is not None:
        raise bad_request(f"'{path}' works only with OpenAI Responses models and cannot be converted", path)


# ---- encode ------------------------------------------------------------------------------------------


def encode_tool(tool: ir.Tool, *, same_dialect: bool = False) -> dict[str, Any]:
    wire: dict[str, Any] = {"type": "function", "name": tool.name}
    if tool.description is not None:
        wire["description"] = tool.description
    wire["parameters"] = dict(tool.parameters) if tool.parameters else {"type": "object", "properties": {}}
    if tool.strict is not None or not same_dialect:
        wire["strict"] = bool(tool.strict)
    return wire


def encode_choice(choice: ir.ToolChoice) -> str | dict[str, Any]:
    return {"type": "function", "name": choice.name} if choice.mode == "named" else choice.mode


def encode_format(output: ir.OutputFormat) -> dict[str, Any]:
    if output.kind != "json_schema":
        return {"type": output.kind}
    fmt: dict[str, Any] = {"type": "json_schema", "name": output.name or "response"}
    fmt["schema"] = dict(output.schema or {})
    if output.strict is not None:
        fmt["strict"] = output.strict
    return fmt


def encode_reasoning(config: ir.ReasoningConfig) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    effort = effort_for(config)
    if effort is not None:
        wire["effort"] = effort
    if config.include:
        wire["summary"] = "auto"
    return wire


def _merge_reasoning(raw: Any, wire: dict[str, Any]) -> dict[str, Any]:
    """The client's own ``reasoning`` object with the IR's values (its ``max`` effort and summary kept)."""
    merged = dict(raw) if isinstance(raw, dict) else {}
    if wire.get("effort") is not None and not (wire["effort"] == "xhigh" and merged.get("effort") == "max"):
        merged["effort"] = wire["effort"]
    if "summary" in wire and merged.get("summary") is None and merged.get("generate_summary") is None:
        merged["summary"] = wire["summary"]
    return merged


def _reasoning_on(req: ir.Request) -> bool:
    return req.reasoning is not None and effort_for(req.reasoning) not in (None, "none")


def _encode_body(req: ir.Request, model: str, same_dialect: bool) -> dict[str, Any]:
    extra = req.extra if same_dialect else {}
    body: dict[str, Any] = dict(extra)
    body["model"] = model
    if "input" in extra:
        body["input"] = extra["input"]  # the client's own items, some of which the IR cannot hold
    else:
        body["input"] = encode_input(req)
        if req.system:
            body["instructions"] = req.system[0].text
    if req.stop:
        raise bad_request("stop sequences cannot be expressed by the OpenAI Responses API", "stop")
    search = None if same_dialect else hosted_tools.web_search(req, "openai_responses")
    if "tools" not in extra and (req.tools or search is not None):
        body["tools"] = [encode_tool(t, same_dialect=same_dialect) for t in req.tools]
        if search is not None:
            body["tools"].append(web_search_tool(search))
    if "tool_choice" not in extra and req.tool_choice is not None and req.tools:
        body["tool_choice"] = encode_choice(req.tool_choice)
    if req.parallel_tool_calls is not None and (req.tools or "tools" in extra):
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.output is not None:
        raw_text = extra.get("text")
        text = dict(raw_text) if isinstance(raw_text, dict) else {}
        raw_format = text.get("format")
        text["format"] = {**(raw_format if isinstance(raw_format, dict) else {}), **encode_format(req.output)}
        body["text"] = text
    if req.reasoning is not None:
        wire = encode_reasoning(req.reasoning)
        wire = _merge_reasoning(extra.get("reasoning"), wire) if same_dialect else wire
        if wire:
            body["reasoning"] = wire
    if not same_dialect:
        body["store"] = False
        if req.reasoning is not None and (req.reasoning.include or _reasoning_on(req)):
            body["include"] = [ENCRYPTED_REASONING]
    return body


def encode_request(req: ir.Request, model: str, *, same_dialect: bool = False) -> bytes:
    """``ir.Request`` → a ``/v1/responses`` body for ``model``.

    ``extra`` is sent only with ``same_dialect`` (it holds a Responses client's fields with no IR slot).
    """
    body = _encode_body(req, model, same_dialect)
    if req.stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens if same_dialect else max(req.max_tokens, MIN_OUTPUT_TOKENS)
    sampling = same_dialect or not _reasoning_on(req)
    for name in ("temperature", "top_p"):
        value = getattr(req, name)
        if value is not None and sampling:
            body[name] = value
    return json_body(body)


# ---- input tokens ------------------------------------------------------------------------------------


def decode_count_request(body: bytes) -> ir.Request:
    """A ``/v1/responses/input_tokens`` body → ``ir.Request`` (Relay needs its ``model`` to route it)."""
    payload = load_object(body)
    refuse_ambiguous(body)
    return _decode(payload, _COUNT_FIELDS)


def encode_count_request(req: ir.Request, model: str, *, same_dialect: bool = False) -> bytes:
    """``ir.Request`` → a ``/v1/responses/input_tokens`` body for ``model`` (only the fields it takes)."""
    body = _encode_body(req, model, same_dialect)
    return json_body({k: v for k, v in body.items() if k in _COUNT_FIELDS})

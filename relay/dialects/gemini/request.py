"""Gemini requests: ``generateContent`` and ``countTokens`` bodies both ways, tools, schemas, paths.

Sans-IO: a client's body to ``ir.Request`` and back to a body for a Gemini upstream. The model and the
stream flag live in the URL (``path`` builds it). A request's ``contents`` are read and written by
``gemini.contents``. Re-exported by ``gemini``. docs/conversions/gemini.md has the tables below in full.

Choices made on the users' behalf:

- Decoding a client request: every key is read in camelCase or snake_case (proto-JSON; the Python SDK
  sends ``parameters_json_schema``, ``thinking_config``…), never inside user data (schemas, ``args``,
  ``response``). Fields with no IR slot go to ``extra`` and are sent again only to a Gemini upstream:
  top-level ones as they are (``safetySettings``, ``cachedContent``, ``labels``…), the rest of
  ``generationConfig`` (``seed``, penalties, ``responseModalities``, a ``responseMimeType`` other than JSON
  or text…), non-function tools (``googleSearch``, ``codeExecution``…: for another dialect they are also
  ``HostedTool``s, a search mapped and the rest dropped) and ``toolConfig.retrievalConfig``.
  ``candidateCount`` > 1 and both ``thinkingBudget`` and ``thinkingLevel`` are a 400. For another dialect
  ``require_kept`` refuses every field of ``extra`` but those ignored by design or at their neutral value.
- ``functionCallingConfig``: AUTO / VALIDATED → auto, NONE → none, ANY → required, ANY with one allowed
  name → named; ANY with several names → required with the tools narrowed to those names (the same
  choice, said in a way every dialect can).
- ``responseSchema`` and ``parameters`` (Gemini's OpenAPI schema: upper-case types, ``nullable``) are
  turned into JSON Schema; ``parametersJsonSchema``/``responseJsonSchema`` are kept.
- Encoding a request for a Gemini upstream: tool schemas go as ``parametersJsonSchema`` untouched; tool
  names outside ``[A-Za-z0-9_-]{1,64}`` and a named tool choice that names no tool are a 400. A budget is
  sent as ``thinkingBudget``; an effort alone as ``thinkingLevel`` for Gemini 3+ models, else as the budget
  of ``common.EFFORT_BUDGET``; never both. ``parallel_tool_calls``, tool ``strict``, the output format's
  ``name``/``strict`` have no Gemini slot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from relay.dialects import hosted_tools, ir
from relay.dialects.common import bad_request, budget_for, dropped, json_body, load_object, refuse_dropped
from relay.dialects.gemini.contents import (
    camel,
    decode_contents,
    encode_contents,
    field,
    optional,
    required,
    subpath,
    want,
)

# ---- paths -------------------------------------------------------------------------------------------------


def _model_name(model: str) -> str:
    return model if "/" in model else f"models/{model}"


def path(model: str, stream: bool) -> str:
    """The path of a generateContent call under the API version (``/models/{model}:generateContent``)."""
    name = quote(_model_name(model), safe="/")
    return f"/{name}:streamGenerateContent?alt=sse" if stream else f"/{name}:generateContent"


def count_path(model: str) -> str:
    return f"/{quote(_model_name(model), safe='/')}:countTokens"


# ---- request: decode ---------------------------------------------------------------------------------------

_REQUEST_FIELDS = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model"})
_GENERATION_FIELDS = frozenset(
    {
        "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "responseMimeType",
        "responseSchema", "responseJsonSchema", "thinkingConfig",
    }
)  # fmt: skip
_LEVEL_IN: dict[str, ir.Effort] = {
    "MINIMAL": "minimal",
    "LOW": "low",
    "MEDIUM": "medium",
    "HIGH": "high",
    "XHIGH": "xhigh",
}


#: Top-level fields with no effect on the answer (docs/conversions/gemini.md); ``toolConfig`` beyond
#: ``functionCallingConfig`` serves Google's own tools only, which cannot be converted.
IGNORED = frozenset({"safetySettings", "labels"})
#: ``generationConfig`` fields with no effect on the answer's text, and those kept at the value asking nothing.
GENERATION_IGNORED = frozenset({"mediaResolution", "routingConfig", "modelSelectionConfig"})
GENERATION_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "responseLogprobs": (False,),
    "logprobs": (0,),
    "presencePenalty": (0, 0.0),
    "frequencyPenalty": (0, 0.0),
    "responseModalities": (["TEXT"], ["text"]),
    "audioTimestamp": (False,),
    "enableAffectiveDialog": (False,),
    "enableEnhancedCivicAnswers": (False,),
}


def require_kept(req: ir.Request) -> None:
    """A 400 naming the first field of a decoded request a conversion would drop (``cachedContent``, Google's
    own tools, ``generationConfig.seed``…)."""
    extra = req.extra
    top = {k: v for k, v in extra.items() if k not in ("tools", "toolConfig", "generationConfig")}
    path = dropped(top, IGNORED, {}, name=camel)  # Google's own tools: hosted tools, mapped or dropped
    generation = extra.get("generationConfig")
    if path is None and isinstance(generation, dict):
        path = dropped(generation, GENERATION_IGNORED, GENERATION_NEUTRAL, prefix="generationConfig.", name=camel)
    refuse_dropped(path)


def decode_request(body: bytes, *, model: str, stream: bool) -> ir.Request:
    """A generateContent body → ``ir.Request`` (model and stream from the URL); a 400 naming the path otherwise."""
    return _decode(load_object(body), model=model, stream=stream, path="")


def decode_count_request(body: bytes, *, model: str) -> ir.Request:
    """A countTokens body: ``{contents}`` (with Vertex's ``systemInstruction``/``tools``) or
    ``{generateContentRequest: {…}}``, the two being exclusive."""
    payload = load_object(body)
    inner = field(payload, "generateContentRequest")
    if inner is None:
        return _decode(payload, model=model, stream=False, path="")
    if field(payload, "contents") is not None:
        raise bad_request("give 'contents' or 'generateContentRequest', not both", "generateContentRequest")
    inner = want(inner, dict, "generateContentRequest")
    return _decode(inner, model=model, stream=False, path="generateContentRequest")


def _decode(payload: dict[str, Any], *, model: str, stream: bool, path: str) -> ir.Request:
    contents = required(payload, "contents", list, path)
    if not contents:
        raise bad_request(f"'{subpath(path, 'contents')}' must not be empty", subpath(path, "contents"))
    tools, other_tools = _decode_tools(payload, path)
    tools, choice, tool_config = _decode_tool_config(payload, path, tools)
    generation, generation_extra = _decode_generation(payload, path)
    extra: dict[str, Any] = {k: v for k, v in payload.items() if camel(k) not in _REQUEST_FIELDS}
    if other_tools:
        extra["tools"] = other_tools
    if tool_config:
        extra["toolConfig"] = tool_config
    if generation_extra:
        extra["generationConfig"] = generation_extra
    return ir.Request(
        model=model.removeprefix("models/"),
        system=_decode_system(payload, path),
        messages=decode_contents(contents, subpath(path, "contents")),
        stream=stream,
        tools=tools,
        hosted=_hosted(other_tools),
        tool_choice=choice,
        extra=extra,
        **generation,
    )


#: Gemini's own search tools (the older ``googleSearchRetrieval`` too): a hosted web search.
_SEARCH_TOOLS = frozenset({"googleSearch", "googleSearchRetrieval"})


def _hosted(others: list[dict[str, Any]]) -> tuple[ir.HostedTool, ...]:
    """Google's own tools (``googleSearch``, ``codeExecution``, ``urlContext``…) as hosted tools: a search
    mapped or dropped on another dialect, the others dropped (``hosted_tools``); the raw ones stay in ``extra``."""
    hosted = []
    for tool in others:
        for key, value in tool.items():
            name = camel(key)
            kind = "web_search" if name in _SEARCH_TOOLS else name
            hosted.append(ir.HostedTool(kind=kind, label=name, dialect="gemini", raw={key: value}))
    return tuple(hosted)


def _decode_system(payload: Mapping[str, Any], path: str) -> tuple[ir.Text, ...]:
    raw = field(payload, "systemInstruction")
    where = subpath(path, "systemInstruction")
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (ir.Text(raw),) if raw else ()
    want(raw, dict, where)
    texts = []
    for j, part in enumerate(optional(raw, "parts", list, where) or ()):
        text = field(want(part, dict, f"{where}.parts[{j}]"), "text")
        if not isinstance(text, str):
            raise bad_request(f"'{where}.parts[{j}]' must be a text part", f"{where}.parts[{j}]")
        if text:
            texts.append(ir.Text(text))
    return tuple(texts)


def _decode_tools(payload: Mapping[str, Any], path: str) -> tuple[list[ir.Tool], list[dict[str, Any]]]:
    tools: list[ir.Tool] = []
    others: list[dict[str, Any]] = []
    where = subpath(path, "tools")
    for i, tool in enumerate(optional(payload, "tools", list, path) or ()):
        tw = f"{where}[{i}]"
        want(tool, dict, tw)
        rest = {k: v for k, v in tool.items() if camel(k) != "functionDeclarations"}
        if rest:
            others.append(rest)
        for k, decl in enumerate(optional(tool, "functionDeclarations", list, tw) or ()):
            dw = f"{tw}.functionDeclarations[{k}]"
            want(decl, dict, dw)
            schema = optional(decl, "parametersJsonSchema", dict, dw)
            if schema is None:
                parameters = optional(decl, "parameters", dict, dw)
                schema = json_schema(parameters) if parameters is not None else {}
            tools.append(ir.Tool(required(decl, "name", str, dw), optional(decl, "description", str, dw), schema))
    return tools, others


def _decode_tool_config(
    payload: Mapping[str, Any], path: str, tools: list[ir.Tool]
) -> tuple[tuple[ir.Tool, ...], ir.ToolChoice | None, dict[str, Any]]:
    config = optional(payload, "toolConfig", dict, path)
    if config is None:
        return tuple(tools), None, {}
    where = subpath(path, "toolConfig")
    rest = {k: v for k, v in config.items() if camel(k) != "functionCallingConfig"}
    calling = optional(config, "functionCallingConfig", dict, where)
    if calling is None:
        return tuple(tools), None, rest
    cw = f"{where}.functionCallingConfig"
    mode = (optional(calling, "mode", str, cw) or "AUTO").upper()
    names = optional(calling, "allowedFunctionNames", list, cw) or []
    declared = {t.name for t in tools}
    for k, name in enumerate(names):
        if want(name, str, f"{cw}.allowedFunctionNames[{k}]") not in declared:
            raise bad_request(f"'{name}' is not a declared function", f"{cw}.allowedFunctionNames[{k}]")
    if mode in ("AUTO", "MODE_UNSPECIFIED", "VALIDATED"):
        return tuple(tools), ir.ToolChoice("auto"), rest
    if mode == "NONE":
        return tuple(tools), ir.ToolChoice("none"), rest
    if mode != "ANY":
        raise bad_request(f"'{cw}.mode' must be AUTO, ANY, NONE or VALIDATED", f"{cw}.mode")
    allowed = set(names)
    if len(allowed) == 1:
        return tuple(tools), ir.ToolChoice("named", names[0]), rest
    if allowed:
        tools = [t for t in tools if t.name in allowed]
    return tuple(tools), ir.ToolChoice("required"), rest


def _decode_generation(payload: Mapping[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``generationConfig`` → (IR request fields, the fields with no IR slot)."""
    where = subpath(path, "generationConfig")
    config = optional(payload, "generationConfig", dict, path) or {}
    count = optional(config, "candidateCount", int, where)
    if count is not None and count > 1:
        raise bad_request("only one candidate can be converted: 'candidateCount' must be 1", f"{where}.candidateCount")
    top_k = optional(config, "topK", (int, float), where)
    if top_k is not None and top_k != int(top_k):
        raise bad_request(f"'{where}.topK' must be a whole number", f"{where}.topK")
    stop = optional(config, "stopSequences", list, where) or []
    for k, sequence in enumerate(stop):
        want(sequence, str, f"{where}.stopSequences[{k}]")
    rest = {k: v for k, v in config.items() if camel(k) not in _GENERATION_FIELDS}
    fields = {
        "max_tokens": optional(config, "maxOutputTokens", int, where),
        "temperature": optional(config, "temperature", (int, float), where),
        "top_p": optional(config, "topP", (int, float), where),
        "top_k": None if top_k is None else int(top_k),
        "stop": tuple(stop),
        "output": _decode_output(config, where, rest),
        "reasoning": _decode_thinking(config, where),
    }
    return fields, rest


def _decode_output(config: Mapping[str, Any], where: str, rest: dict[str, Any]) -> ir.OutputFormat | None:
    mime = optional(config, "responseMimeType", str, where)
    schema = optional(config, "responseJsonSchema", dict, where)
    if schema is None and (gemini_schema := optional(config, "responseSchema", dict, where)) is not None:
        schema = json_schema(gemini_schema)
    if mime == "application/json":
        return ir.OutputFormat("json_schema", schema=schema) if schema is not None else ir.OutputFormat("json_object")
    if mime not in (None, "text/plain"):  # text/x.enum and others: Gemini's own, sent on only to Gemini
        rest.update((k, v) for k, v in config.items() if camel(k).startswith("response"))
    return None


def _decode_thinking(config: Mapping[str, Any], where: str) -> ir.ReasoningConfig | None:
    thinking = optional(config, "thinkingConfig", dict, where)
    if thinking is None:
        return None
    tw = f"{where}.thinkingConfig"
    budget = optional(thinking, "thinkingBudget", int, tw)
    level = optional(thinking, "thinkingLevel", str, tw)
    include = optional(thinking, "includeThoughts", bool, tw)
    if budget is not None and level is not None:
        raise bad_request("give 'thinkingBudget' or 'thinkingLevel', not both", tw)
    if budget is not None and budget < -1:
        raise bad_request(
            f"'{tw}.thinkingBudget' must be -1 (dynamic), 0 (off) or a token count", f"{tw}.thinkingBudget"
        )
    effort = None
    if level is not None and level.upper() != "THINKING_LEVEL_UNSPECIFIED":
        effort = _LEVEL_IN.get(level.upper())
        if effort is None:
            raise bad_request(f"'{tw}.thinkingLevel' must be MINIMAL, LOW, MEDIUM or HIGH", f"{tw}.thinkingLevel")
    if budget is None and effort is None and include is None:
        return None
    return ir.ReasoningConfig(effort=effort, budget_tokens=budget, include=include)


# ---- Gemini's OpenAPI schema → JSON Schema -----------------------------------------------------------------

_SCHEMA_KEYS = {
    "any_of": "anyOf", "max_items": "maxItems", "min_items": "minItems", "max_length": "maxLength",
    "min_length": "minLength", "max_properties": "maxProperties", "min_properties": "minProperties",
    "additional_properties": "additionalProperties", "defs": "$defs", "ref": "$ref",
}  # fmt: skip


def json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A Gemini ``Schema`` (upper-case ``type``, ``nullable``, the SDK's snake_case) → JSON Schema."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        key = _SCHEMA_KEYS.get(key, key)
        if key in ("propertyOrdering", "property_ordering", "nullable"):
            continue
        if key == "type" and isinstance(value, str):
            value = value.lower()
        elif key in ("properties", "$defs") and isinstance(value, dict):
            value = {k: json_schema(v) if isinstance(v, dict) else v for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            value = json_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            value = [json_schema(v) if isinstance(v, dict) else v for v in value]
        out[key] = value
    if schema.get("nullable") is True:
        kind = out.get("type")
        out["type"] = [kind, "null"] if isinstance(kind, str) else kind
    return out


# ---- request: encode ---------------------------------------------------------------------------------------

_LEVEL_OUT = {
    "none": "MINIMAL",
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
}
_GEMINI_MAJOR = re.compile(r"gemini-(\d+)")
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def encode_request(req: ir.Request, model: str, *, same_dialect: bool = False) -> bytes:
    """A generateContent body (the URL is ``path(model, req.stream)``); ``extra`` only with ``same_dialect``."""
    return json_body(_encode(req, model, same_dialect=same_dialect))


def encode_count_request(req: ir.Request, model: str) -> bytes:
    """A countTokens body: ``{"contents"}`` when that says it all, else ``{"generateContentRequest": {model,
    contents, systemInstruction, tools, toolConfig}}`` (the Developer API's ``countTokens`` takes no
    top-level ``systemInstruction`` or ``tools``)."""
    body = _encode(req, model, same_dialect=False)
    body.pop("generationConfig", None)
    if body.keys() == {"contents"}:
        return json_body(body)
    return json_body({"generateContentRequest": {"model": _model_name(model), **body}})


def _encode(req: ir.Request, model: str, *, same_dialect: bool) -> dict[str, Any]:
    extra = dict(req.extra) if same_dialect else {}
    extra_tools = extra.pop("tools", None)
    extra_tool_config = extra.pop("toolConfig", None)
    extra_generation = extra.pop("generationConfig", None)
    body: dict[str, Any] = {"contents": encode_contents(req.messages)}
    system = [{"text": t.text} for t in req.system if t.text]
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = _encode_tools(req.tools)
    search = hosted_tools.web_search(req, "gemini")
    if search is not None and search.dialect != "gemini":
        tools.append({"google_search": {}})  # Gemini's search takes no domain filter, no location
    if isinstance(extra_tools, list):
        tools.extend(extra_tools)
    if tools:
        body["tools"] = tools
    tool_config = dict(extra_tool_config) if isinstance(extra_tool_config, dict) else {}
    calling = _encode_choice(req)
    if calling is not None:
        tool_config["functionCallingConfig"] = calling
    if tool_config:
        body["toolConfig"] = tool_config
    generation = dict(extra_generation) if isinstance(extra_generation, dict) else {}
    generation.update(_encode_generation(req, model))
    if generation:
        body["generationConfig"] = generation
    for key, value in extra.items():
        body.setdefault(key, value)
    return body


def _encode_tools(tools: tuple[ir.Tool, ...]) -> list[dict[str, Any]]:
    declarations = []
    for i, tool in enumerate(tools):
        if not _TOOL_NAME.fullmatch(tool.name):
            raise bad_request(
                f"tool name {tool.name!r} cannot be sent to Gemini: names are 1 to 64 characters of "
                "A-Z, a-z, 0-9, '_' and '-'",
                f"tools[{i}].name",
            )
        declaration: dict[str, Any] = {"name": tool.name}
        if tool.description:
            declaration["description"] = tool.description
        if tool.parameters:
            declaration["parametersJsonSchema"] = dict(tool.parameters)
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def _encode_choice(req: ir.Request) -> dict[str, Any] | None:
    choice = req.tool_choice
    if choice is None or not req.tools:
        return None
    if choice.mode == "named":
        if choice.name not in {t.name for t in req.tools}:
            raise bad_request(f"the tool choice names {choice.name!r}, which is not among the tools", "tool_choice")
        return {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice.mode]}


def _encode_generation(req: ir.Request, model: str) -> dict[str, Any]:
    generation: dict[str, Any] = {}
    for key, value in (
        ("maxOutputTokens", req.max_tokens),
        ("temperature", req.temperature),
        ("topP", req.top_p),
        ("topK", req.top_k),
    ):
        if value is not None:
            generation[key] = value
    if req.stop:
        generation["stopSequences"] = list(req.stop)
    if req.output is not None and req.output.kind != "text":
        generation["responseMimeType"] = "application/json"
        if req.output.kind == "json_schema" and req.output.schema is not None:
            generation["responseJsonSchema"] = dict(req.output.schema)
    if req.reasoning is not None and (thinking := _encode_thinking(req.reasoning, model)):
        generation["thinkingConfig"] = thinking
    return generation


def _encode_thinking(config: ir.ReasoningConfig, model: str) -> dict[str, Any]:
    """``thinkingBudget`` or ``thinkingLevel`` (never both), and ``includeThoughts``."""
    thinking: dict[str, Any] = {}
    major = _GEMINI_MAJOR.search(model)
    if config.budget_tokens is None and config.effort is not None and major and int(major.group(1)) >= 3:
        thinking["thinkingLevel"] = _LEVEL_OUT[config.effort]
    elif (budget := budget_for(config)) is not None:
        thinking["thinkingBudget"] = budget
    if config.include is not None:
        thinking["includeThoughts"] = config.include
    return thinking

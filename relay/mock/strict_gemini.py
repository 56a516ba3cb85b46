"""What Gemini ``generateContent`` answers 400 to, checked before the mock answers.

``problem(payload)`` gives the message of the first thing wrong, or None. Field names are taken in
camelCase or snake_case, as proto JSON takes them. It holds:

- unknown fields anywhere the proto has a fixed set (request, content, part, tool, declaration,
  toolConfig, generationConfig, thinkingConfig, and every ``parameters``/``responseSchema`` schema,
  where ``$schema``, ``$ref``, ``$defs``, ``additionalProperties`` and ``const`` are unknown); a schema
  ``type`` is one type name, never an array;
- contents: present; roles ``user``/``model``; parts non-empty; no empty text part (unless it carries
  a ``thoughtSignature``); ``functionCall.args`` and ``functionResponse.response`` objects;
- turns: a function call turn follows a user turn or a function response turn; a function response
  turn follows the call turn and answers as many calls as it made;
- thought signatures: one the mock made must come back exact (an HMAC of the call's name and args);
  with thinking on, the first ``functionCall`` part of each model turn since the last user text must
  carry one (Gemini's ``skip_thought_signature_validator`` is accepted);
- function names ``^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$``; not both ``parameters`` and
  ``parametersJsonSchema``; ``allowedFunctionNames`` only with mode ANY (or VALIDATED);
- never both ``thinkingBudget`` and ``thinkingLevel``; not both ``responseSchema`` and ``responseJsonSchema``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from relay.mock import signing


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def get(node: Any, name: str) -> Any:
    """``node[name]`` in camelCase or snake_case (``thinkingBudget`` or ``thinking_budget``)."""
    if not isinstance(node, dict):
        return None
    if name in node:
        return node[name]
    return node.get(re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), name))


def _fields(*names: str) -> frozenset[str]:
    return frozenset(names)


_REQUEST = _fields(
    "contents", "tools", "toolConfig", "safetySettings", "systemInstruction", "generationConfig", "cachedContent",
    "model", "labels", "serviceTier", "store",
)  # fmt: skip
_CONTENT = _fields("parts", "role")
_PART = _fields(
    "mediaResolution", "codeExecutionResult", "executableCode", "fileData", "functionCall", "functionResponse",
    "inlineData", "text", "thought", "thoughtSignature", "videoMetadata", "toolCall", "toolResponse", "partMetadata",
    "audioMetadata", "audioTranscription", "documentMetadata", "mediaProcessing", "speechMetadata",
    "spreadsheetMetadata",
)  # fmt: skip
_TOOL = _fields(
    "retrieval", "computerUse", "fileSearch", "googleSearch", "googleMaps", "codeExecution", "enterpriseWebSearch",
    "functionDeclarations", "googleSearchRetrieval", "urlContext", "mcpServers", "exaAiSearch", "parallelAiSearch",
)  # fmt: skip
_DECLARATION = _fields(
    "description", "name", "parameters", "parametersJsonSchema", "response", "responseJsonSchema", "behavior"
)
_TOOL_CONFIG = _fields("functionCallingConfig", "retrievalConfig", "includeServerSideToolInvocations")
_CALLING = _fields("mode", "allowedFunctionNames", "streamFunctionCallArguments")
_GENERATION = _fields(
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "_responseJsonSchema",
    "responseModalities", "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed",
    "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers",
    "speechConfig", "thinkingConfig", "imageConfig", "mediaResolution", "modelSelectionConfig", "routingConfig",
    "audioTimestamp", "enableAffectiveDialog", "responseFormat", "audioTranscriptionConfig", "translationConfig",
)  # fmt: skip
_THINKING = _fields("includeThoughts", "thinkingBudget", "thinkingLevel")
_SCHEMA = _fields(
    "anyOf", "default", "description", "enum", "example", "format", "items", "maxItems", "maxLength",
    "maxProperties", "maximum", "minItems", "minLength", "minProperties", "minimum", "nullable", "pattern",
    "properties", "propertyOrdering", "required", "title", "type",
)  # fmt: skip
_TYPES = ("TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL")
_LEVELS = ("THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH")
_MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult")
_EMPTY_TEXT = (
    "Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again."
)
_CALL_TURN = (
    "Please ensure that function call turn comes immediately after a user turn or after a function response turn."
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")


def _unknown(node: Any, allowed: frozenset[str], path: str) -> str | None:
    if not isinstance(node, dict):
        return f"Invalid value at '{path}': expected an object, got {orjson.dumps(node).decode()}"
    for key in node:
        if key not in allowed and camel(key) not in allowed:
            return f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field."
    return None


def _invalid(path: str, proto: str, value: Any) -> str:
    return f"Invalid value at '{path}' (type.googleapis.com/{proto}), {orjson.dumps(value).decode()}"


def thinking_on(payload: Any) -> bool:
    """Whether the request asks for thinking: a non-zero budget, a level, or ``includeThoughts``."""
    config = get(get(payload, "generationConfig"), "thinkingConfig")
    if not isinstance(config, dict):
        return False
    budget = get(config, "thinkingBudget")
    return (
        (budget is not None and budget != 0)
        or get(config, "thinkingLevel") is not None
        or bool(get(config, "includeThoughts"))
    )


def problem(payload: Any, root: str = "") -> str | None:
    found = _unknown(payload, _REQUEST, root or "GenerateContentRequest")
    if found:
        return found
    contents = get(payload, "contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        found = _content(content, f"contents[{i}]")
        if found:
            return found
    system = get(payload, "systemInstruction")
    if system is not None:
        found = _content(system, "system_instruction", system=True)
        if found:
            return found
    return (
        _turns(contents)
        or _signatures(contents, thinking_on(payload))
        or _tools(get(payload, "tools"))
        or _tool_config(get(payload, "toolConfig"))
        or _generation(get(payload, "generationConfig"))
    )


def _content(content: Any, path: str, system: bool = False) -> str | None:
    found = _unknown(content, _CONTENT, path)
    if found:
        return found
    role = get(content, "role")
    if not system and role not in (None, "", "user", "model"):
        return "Please use a valid role: user, model."
    parts = get(content, "parts")
    if not isinstance(parts, list) or not parts:
        return f"* GenerateContentRequest.{path}.parts: contents.parts must not be empty."
    for j, part in enumerate(parts):
        found = _part(part, f"{path}.parts[{j}]")
        if found:
            return found
    return None


def _part(part: Any, path: str) -> str | None:
    found = _unknown(part, _PART, path)
    if found:
        return found
    data = [name for name in _DATA if get(part, name) is not None]
    if len(data) > 1:
        return f"Invalid value at '{path}': oneof field 'data' is already set. Cannot set '{data[1]}'"
    text = get(part, "text")
    if text is not None and not isinstance(text, str):
        return _invalid(f"{path}.text", "string", text)
    if text == "" and get(part, "thoughtSignature") is None:
        return _EMPTY_TEXT
    call = get(part, "functionCall")
    if call is not None:
        if not isinstance(get(call, "name"), str) or not get(call, "name"):
            return f"* GenerateContentRequest.{path}.function_call.name: Name cannot be empty."
        if get(call, "args") is not None and not isinstance(get(call, "args"), dict):
            return _invalid(f"{path}.function_call.args", "google.protobuf.Struct", get(call, "args"))
    response = get(part, "functionResponse")
    if response is not None:
        if not isinstance(get(response, "name"), str) or not get(response, "name"):
            return f"* GenerateContentRequest.{path}.function_response.name: Name cannot be empty."
        if not isinstance(get(response, "response"), dict):
            return _invalid(f"{path}.function_response.response", "google.protobuf.Struct", get(response, "response"))
    signature = get(part, "thoughtSignature")
    if signature is not None and not isinstance(signature, str):
        return _invalid(f"{path}.thought_signature", "bytes", signature)
    if (
        call is not None
        and signature is not None
        and not signing.call_signature_ok(call["name"], get(call, "args") or {}, signature)
    ):
        return f"{path}.thought_signature: Corrupted thought signature (not the one the mock made for this call)."
    return None


def _kinds(content: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in get(content, "parts") if get(p, name) is not None]


def _turns(contents: list[dict[str, Any]]) -> str | None:
    for i, content in enumerate(contents):
        calls = _kinds(content, "functionCall")
        before = contents[i - 1] if i else None
        if calls and (before is None or get(before, "role") == "model"):
            return _CALL_TURN
        answers = _kinds(content, "functionResponse")
        if not answers:
            continue
        asked = _kinds(before, "functionCall") if before is not None and get(before, "role") == "model" else []
        if len(answers) != len(asked):
            return (
                "Please ensure that the number of function response parts is equal to the number of function call "
                "parts of the function call turn."
            )
    return None


def _signatures(contents: list[dict[str, Any]], thinking: bool) -> str | None:
    """With thinking on, each model turn of the current turn opens its function calls with a signature."""
    if not thinking:
        return None
    start = 0
    for i, content in enumerate(contents):
        texts = [p for p in get(content, "parts") if isinstance(get(p, "text"), str) and not get(p, "thought")]
        if get(content, "role") in (None, "", "user") and texts:
            start = i
    for i in range(start, len(contents)):
        calls = _kinds(contents[i], "functionCall")
        if calls and get(calls[0], "thoughtSignature") is None:
            name = get(get(calls[0], "functionCall"), "name")
            return (
                "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
                "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
                f"data, function call `default_api:{name}` , position {i + 1}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            )
    return None


def _tools(tools: Any) -> str | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _invalid("tools", "google.ai.generativelanguage.v1beta.Tool", tools)
    for i, tool in enumerate(tools):
        found = _unknown(tool, _TOOL, f"tools[{i}]")
        if found:
            return found
        declarations = get(tool, "functionDeclarations") or []
        for k, declaration in enumerate(declarations if isinstance(declarations, list) else [declarations]):
            found = _declaration(declaration, f"tools[{i}].function_declarations[{k}]")
            if found:
                return found
    return None


def _declaration(declaration: Any, path: str) -> str | None:
    found = _unknown(declaration, _DECLARATION, path)
    if found:
        return found
    name = get(declaration, "name")
    if not isinstance(name, str) or not _NAME.match(name):
        return (
            f"* GenerateContentRequest.{path}.name: Invalid function name. Must start with a letter or an underscore. "
            "Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a "
            "maximum length of 64."
        )
    parameters, loose = get(declaration, "parameters"), get(declaration, "parametersJsonSchema")
    if parameters is not None and loose is not None:
        return f"* GenerateContentRequest.{path}: parameters and parameters_json_schema must not both be set."
    if loose is not None and not isinstance(loose, dict):
        return _invalid(f"{path}.parameters_json_schema", "google.protobuf.Value", loose)
    return _schema(parameters, f"{path}.parameters") if parameters is not None else None


def _schema(schema: Any, path: str) -> str | None:
    found = _unknown(schema, _SCHEMA, path)
    if found:
        return found
    kind = get(schema, "type")
    if kind is not None and (not isinstance(kind, str) or kind.upper() not in _TYPES):
        return _invalid(f"{path}.type", "google.ai.generativelanguage.v1beta.Type", kind)
    properties = get(schema, "properties")
    if properties is not None:
        if not isinstance(properties, dict):
            return _invalid(f"{path}.properties", "google.protobuf.Map", properties)
        for name, sub in properties.items():
            found = _schema(sub, f"{path}.properties[{name}]")
            if found:
                return found
    items = get(schema, "items")
    if items is not None:
        found = _schema(items, f"{path}.items")
        if found:
            return found
    for k, sub in enumerate(get(schema, "anyOf") or []):
        found = _schema(sub, f"{path}.any_of[{k}]")
        if found:
            return found
    return None


def _tool_config(config: Any) -> str | None:
    if config is None:
        return None
    found = _unknown(config, _TOOL_CONFIG, "tool_config")
    calling = get(config, "functionCallingConfig")
    if found or calling is None:
        return found
    found = _unknown(calling, _CALLING, "tool_config.function_calling_config")
    if found:
        return found
    mode = get(calling, "mode") or "AUTO"
    if mode not in _MODES:
        return _invalid("tool_config.function_calling_config.mode", "google.ai.generativelanguage.v1beta.Mode", mode)
    if get(calling, "allowedFunctionNames") and mode not in ("ANY", "VALIDATED"):
        return (
            "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
            "allowed_function_names should only be set when the Function calling mode is ANY."
        )
    return None


def _generation(config: Any) -> str | None:
    if config is None:
        return None
    found = _unknown(config, _GENERATION, "generation_config")
    if found:
        return found
    limit = get(config, "maxOutputTokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        return _invalid("generation_config.max_output_tokens", "int32", limit)
    stops = get(config, "stopSequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        return _invalid("generation_config.stop_sequences", "string", stops)
    strict = get(config, "responseSchema")
    if strict is not None and (get(config, "responseJsonSchema") or config.get("_responseJsonSchema")) is not None:
        return (
            "* GenerateContentRequest.generation_config: response_schema and response_json_schema must not both be set."
        )
    if strict is not None:
        found = _schema(strict, "generation_config.response_schema")
        if found:
            return found
    return _thinking(get(config, "thinkingConfig"))


def _thinking(config: Any) -> str | None:
    if config is None:
        return None
    found = _unknown(config, _THINKING, "generation_config.thinking_config")
    if found:
        return found
    budget, level = get(config, "thinkingBudget"), get(config, "thinkingLevel")
    if budget is not None and level is not None:
        return (
            "* GenerateContentRequest.generation_config.thinking_config: thinking_budget and thinking_level "
            "must not both be set; use one of them."
        )
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < -1):
        return _invalid("generation_config.thinking_config.thinking_budget", "int32", budget)
    if level is not None and (not isinstance(level, str) or level.upper() not in _LEVELS):
        return _invalid("generation_config.thinking_config.thinking_level", "ThinkingLevel", level)
    return None

"""What OpenAI Responses answers 400 to, checked before the mock answers.

``problem(payload, counting)`` gives ``(param, message, code)`` for the first thing wrong, or None:

- unknown top-level parameters (Chat's ``messages``, ``max_tokens``, ``stop``, ``response_format``…); the
  known ones are the openai SDK's ``ResponseCreateParams`` and ``client_metadata`` (Codex sends it);
- ``previous_response_id`` and ``item_reference`` (the mock stores nothing: always not found);
- input items: a type among the SDK's input item types; ids with the right prefix (message ``msg_``,
  function_call ``fc_``, reasoning ``rs_``); assistant content only ``output_text``/``refusal``, other roles
  only ``input_*`` parts; ``function_call.arguments`` and ``custom_tool_call.input`` strings; each
  ``function_call_output``/``custom_tool_call_output`` answering an earlier call by ``call_id``; each
  reasoning item carrying the ``encrypted_content`` the mock made, unchanged, and followed by the item it
  led to (a call or an assistant message); ``additional_tools`` items from the developer, their tools valid;
- tools of a type the SDK knows; function tools in the Responses shape (``{type: function, name,
  parameters}``, not Chat's ``function: {…}``), custom tools with a ``name``, namespace tools with a
  ``name`` and function or custom ``tools``; ``tool_choice`` likewise; ``reasoning.effort`` and
  ``.summary``; ``text.format`` (a json_schema needs ``name``) and ``text.verbosity``; ``include`` values;
  ``max_output_tokens`` at least 16.
"""

from __future__ import annotations

from typing import Any

from relay.mock import signing

Problem = tuple[str | None, str, str | None]

_CREATE = frozenset(
    {
        "access_programs", "background", "background_options", "client_metadata", "context_management",
        "conversation", "image",
        "include", "input", "instructions", "max_output_tokens", "max_tool_calls", "metadata", "model",
        "moderation", "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key",
        "prompt_cache_options", "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier",
        "store", "stream", "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs",
        "top_p", "truncation", "user",
    }
)  # fmt: skip
_COUNT = frozenset(
    {
        "conversation", "input", "instructions", "model", "parallel_tool_calls", "personality",
        "previous_response_id", "reasoning", "text", "tool_choice", "tools", "truncation",
    }
)  # fmt: skip
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SUMMARIES = ("auto", "concise", "detailed")
_VERBOSITY = ("low", "medium", "high")
_INCLUDES = (
    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
    "message.input_image.image_url", "computer_call_output.output.image_url", "code_interpreter_call.outputs",
    "reasoning.encrypted_content", "message.output_text.logprobs",
)  # fmt: skip
_USER_PARTS = ("input_text", "input_image", "input_file", "input_audio")
_ASSISTANT_PARTS = ("output_text", "refusal")
_PREFIX = {"message": "msg", "function_call": "fc", "reasoning": "rs"}
#: Input item types the mock takes as they are (the SDK's, besides those it checks).
_ITEMS = frozenset(
    {
        "file_search_call", "computer_call", "computer_call_output", "web_search_call", "tool_search_call",
        "tool_search_output", "configuration_update", "compaction", "image_generation_call",
        "code_interpreter_call", "local_shell_call", "local_shell_call_output", "shell_call", "shell_call_output",
        "apply_patch_call", "apply_patch_call_output", "mcp_list_tools", "mcp_approval_request",
        "mcp_approval_response", "mcp_call", "compaction_trigger", "program", "program_output",
    }
)  # fmt: skip
_CHECKED = ("message", "function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output",
            "reasoning", "additional_tools", "item_reference")  # fmt: skip
#: What a reasoning item may lead to: the model's own output items.
_OUTPUTS = frozenset(
    {
        "function_call", "custom_tool_call", "file_search_call", "computer_call", "web_search_call",
        "tool_search_call", "image_generation_call", "code_interpreter_call", "local_shell_call", "shell_call",
        "apply_patch_call", "mcp_list_tools", "mcp_approval_request", "mcp_call", "program", "reasoning",
    }
)  # fmt: skip
TOOLS = (
    "function", "file_search", "computer", "computer_use_preview", "web_search", "web_search_2025_08_26", "mcp",
    "code_interpreter", "programmatic_tool_calling", "image_generation", "local_shell", "shell", "custom",
    "namespace", "tool_search", "web_search_preview", "web_search_preview_2025_03_11", "apply_patch",
)  # fmt: skip


def problem(payload: Any, counting: bool = False) -> Problem | None:
    if not isinstance(payload, dict):
        return None, "the request body must be a JSON object", None
    for key in payload:
        if key not in (_COUNT if counting else _CREATE):
            return key, f"Unknown parameter: '{key}'.", "unknown_parameter"
    if not isinstance(payload.get("model"), str) and not counting:
        return "model", "Missing required parameter: 'model'.", "missing_required_parameter"
    previous = payload.get("previous_response_id")
    if previous is not None:
        return (
            "previous_response_id",
            f"Previous response with id '{previous}' not found.",
            "previous_response_not_found",
        )
    if payload.get("stream") not in (None, True, False):
        return "stream", "Invalid type for 'stream': expected a boolean.", "invalid_type"
    return _input(payload.get("input")) or _tools(payload) or _options(payload)


def _input(items: Any) -> Problem | None:
    if items is None or isinstance(items, str):
        return None
    if not isinstance(items, list):
        return "input", "Invalid type for 'input': expected a string or an array of input items.", "invalid_type"
    calls: set[str] = set()
    for i, item in enumerate(items):
        found = _item(item, f"input[{i}]", calls)
        if found is None and isinstance(item, dict) and item.get("type") == "reasoning":
            found = _followed(items, i)
        if found:
            return found
    return None


def _item(item: Any, path: str, calls: set[str]) -> Problem | None:
    if not isinstance(item, dict):
        return path, f"Invalid type for '{path}': expected an object.", "invalid_type"
    kind = item.get("type", "message" if "role" in item else None)
    ident = item.get("id")
    if ident is not None and kind in _PREFIX and not (isinstance(ident, str) and ident.startswith(_PREFIX[kind])):
        prefix = _PREFIX[kind]
        return (
            f"{path}.id",
            f"Invalid '{path}.id': '{ident}'. Expected an ID that begins with '{prefix}'.",
            "invalid_value",
        )
    if kind == "message":
        return _message(item, path)
    if kind in ("function_call", "custom_tool_call"):
        for name in ("call_id", "name", "arguments" if kind == "function_call" else "input"):
            if not isinstance(item.get(name), str):
                return f"{path}.{name}", f"Invalid type for '{path}.{name}': expected a string.", "invalid_type"
        if not isinstance(item.get("namespace"), (str, type(None))):
            return f"{path}.namespace", f"Invalid type for '{path}.namespace': expected a string.", "invalid_type"
        calls.add(item["call_id"])
        return None
    if kind in ("function_call_output", "custom_tool_call_output"):
        call_id = item.get("call_id")
        if call_id not in calls:
            what = "function call" if kind == "function_call_output" else "custom tool call"
            return "input", f"No tool call found for {what} output with call_id {call_id}.", None
        if not isinstance(item.get("output"), (str, list)):
            return f"{path}.output", f"Invalid type for '{path}.output': expected a string or an array.", "invalid_type"
        return None
    if kind == "reasoning":
        return _reasoning(item, path)
    if kind == "additional_tools":
        if item.get("role") != "developer":
            return f"{path}.role", f"Invalid value: '{item.get('role')}'. Supported values are: 'developer'.", None
        return _tool_list(item.get("tools"), f"{path}.tools")
    if kind == "item_reference":
        return "input", f"Item with id '{ident}' not found.", None
    if kind in _ITEMS:
        return None
    supported = ", ".join(f"'{k}'" for k in sorted({*_CHECKED, *_ITEMS}))
    return f"{path}.type", f"Invalid value: '{kind}'. Supported values are: {supported}.", "invalid_value"


def _message(item: dict[str, Any], path: str) -> Problem | None:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        return (
            f"{path}.role",
            f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'.",
            "invalid_value",
        )
    content = item.get("content")
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return f"{path}.content", f"Invalid type for '{path}.content': expected a string or an array.", "invalid_type"
    allowed = _ASSISTANT_PARTS if role == "assistant" else _USER_PARTS
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            supported = " and ".join(f"'{a}'" for a in allowed) if role == "assistant" else ", ".join(allowed)
            return (
                f"{path}.content[{j}]",
                f"Invalid value: '{kind}'. Supported values are: {supported}.",
                "invalid_value",
            )
        if kind in ("input_text", "output_text") and not isinstance(part.get("text"), str):
            return f"{path}.content[{j}].text", f"Missing required parameter: '{path}.content[{j}].text'.", None
    return None


def _reasoning(item: dict[str, Any], path: str) -> Problem | None:
    ident = item.get("id")
    if not isinstance(ident, str):
        return f"{path}.id", f"Missing required parameter: '{path}.id'.", "missing_required_parameter"
    if not isinstance(item.get("summary"), list):
        return f"{path}.summary", f"Missing required parameter: '{path}.summary'.", "missing_required_parameter"
    blob = item.get("encrypted_content")
    if blob is None:
        return "input", f"Item with id '{ident}' not found (the mock stores nothing: send encrypted_content).", None
    if not isinstance(blob, str) or signing.decrypted_reasoning(blob) is None:
        return (
            f"{path}.encrypted_content",
            f"The encrypted content for item {ident} could not be verified.",
            "invalid_encrypted_content",
        )
    return None


def _followed(items: list[Any], i: int) -> Problem | None:
    after = items[i + 1] if i + 1 < len(items) else None
    kind = after.get("type", "message" if "role" in after else None) if isinstance(after, dict) else None
    if kind in _OUTPUTS or (kind == "message" and after.get("role") == "assistant"):
        return None
    ident = items[i].get("id")
    return "input", f"Item '{ident}' of type 'reasoning' was provided without its required following item.", None


def _tools(payload: dict[str, Any]) -> Problem | None:
    tools = payload.get("tools")
    found = _tool_list(tools, "tools") if tools is not None else None
    if found:
        return found
    choice = payload.get("tool_choice")
    if choice is None or choice in ("none", "auto", "required"):
        return None
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        return "tool_choice", "Invalid value for 'tool_choice'.", "invalid_value"
    if choice["type"] in ("function", "custom") and not isinstance(choice.get("name"), str):
        return "tool_choice.name", "Missing required parameter: 'tool_choice.name'.", None
    if choice["type"] == "allowed_tools" and (
        choice.get("mode") not in ("auto", "required") or not isinstance(choice.get("tools"), list)
    ):
        return "tool_choice.mode", "Invalid value for 'tool_choice': allowed_tools needs a mode and tools.", None
    return None


def _tool_list(tools: Any, path: str, inner: bool = False) -> Problem | None:
    """Tools of known types; functions and custom tools named; namespaces holding functions and custom tools."""
    if not isinstance(tools, list):
        return path, f"Invalid type for '{path}': expected an array.", "invalid_type"
    for i, tool in enumerate(tools):
        here = f"{path}[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(kind, str):
            return f"{here}.type", f"Missing required parameter: '{here}.type'.", None
        allowed = ("function", "custom") if inner else TOOLS
        if kind not in allowed:
            supported = ", ".join(f"'{t}'" for t in allowed)
            return f"{here}.type", f"Invalid value: '{kind}'. Supported values are: {supported}.", "invalid_value"
        if kind in ("function", "custom", "namespace") and not isinstance(tool.get("name"), str):
            return f"{here}.name", f"Missing required parameter: '{here}.name'.", None
        if kind == "function" and not isinstance(tool.get("parameters"), (dict, type(None))):
            return f"{here}.parameters", f"Invalid type for '{here}.parameters': expected an object.", None
        if kind == "namespace":
            found = _tool_list(tool.get("tools"), f"{here}.tools", inner=True)
            if found:
                return found
    return None


def _options(payload: dict[str, Any]) -> Problem | None:
    limit = payload.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 16):
        return (
            "max_output_tokens",
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got {limit} "
            "instead.",
            "integer_below_min_value",
        )
    reasoning = payload.get("reasoning")
    if reasoning is not None:
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else "?"
        if effort is not None and effort not in _EFFORTS:
            return "reasoning.effort", f"Invalid value: '{effort}'. Supported values are: {', '.join(_EFFORTS)}.", None
        for name in ("summary", "generate_summary"):
            value = reasoning.get(name)
            if value is not None and value not in _SUMMARIES:
                supported = ", ".join(_SUMMARIES)
                return f"reasoning.{name}", f"Invalid value: '{value}'. Supported values are: {supported}.", None
    include = payload.get("include")
    if include is not None and not (isinstance(include, list) and all(isinstance(x, str) for x in include)):
        return "include", "Invalid type for 'include': expected an array of strings.", "invalid_type"
    for i, value in enumerate(include or ()):
        if value not in _INCLUDES:
            supported = ", ".join(f"'{v}'" for v in _INCLUDES)
            return f"include[{i}]", f"Invalid value: '{value}'. Supported values are: {supported}.", "invalid_value"
    text = payload.get("text")
    verbosity = text.get("verbosity") if isinstance(text, dict) else None
    if verbosity is not None and verbosity not in _VERBOSITY:
        supported = ", ".join(_VERBOSITY)
        return "text.verbosity", f"Invalid value: '{verbosity}'. Supported values are: {supported}.", None
    form = text.get("format") if isinstance(text, dict) else None
    if form is None:
        return None
    kind = form.get("type") if isinstance(form, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        return (
            "text.format.type",
            f"Invalid value: '{kind}'. Supported values are: text, json_object, json_schema.",
            None,
        )
    if kind == "json_schema":
        if not isinstance(form.get("name"), str):
            return "text.format.name", "Missing required parameter: 'text.format.name'.", None
        if not isinstance(form.get("schema"), dict):
            return "text.format.schema", "Missing required parameter: 'text.format.schema'.", None
    return None

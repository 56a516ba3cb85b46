"""What OpenAI Responses answers 400 to, checked before the mock answers.

``problem(payload, counting)`` gives ``(param, message, code)`` for the first thing wrong, or None:

- unknown top-level parameters (Chat's ``messages``, ``max_tokens``, ``stop``, ``response_format``…);
- ``previous_response_id`` and ``item_reference`` (the mock stores nothing: always not found);
- input items: ids with the right prefix (message ``msg_``, function_call ``fc_``, reasoning ``rs_``);
  assistant content only ``output_text``/``refusal``, other roles only ``input_*`` parts;
  ``function_call.arguments`` a string; each ``function_call_output`` answering an earlier
  ``function_call`` by ``call_id``; each reasoning item carrying the ``encrypted_content`` the mock
  made, unchanged, and followed by the item it led to (a function call or an assistant message);
- tools in the Responses shape (``{type: function, name, parameters}``, not Chat's ``function: {…}``),
  ``tool_choice`` likewise; ``reasoning.effort``; ``text.format`` (a json_schema needs ``name``);
  ``max_output_tokens`` at least 16.
"""

from __future__ import annotations

from typing import Any

from relay.mock import signing

Problem = tuple[str | None, str, str | None]

_CREATE = frozenset(
    {
        "access_programs", "background", "background_options", "context_management", "conversation", "image",
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
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_USER_PARTS = ("input_text", "input_image", "input_file", "input_audio")
_ASSISTANT_PARTS = ("output_text", "refusal")
_PREFIX = {"message": "msg", "function_call": "fc", "reasoning": "rs"}


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
    if kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            if not isinstance(item.get(name), str):
                return f"{path}.{name}", f"Invalid type for '{path}.{name}': expected a string.", "invalid_type"
        calls.add(item["call_id"])
        return None
    if kind == "function_call_output":
        call_id = item.get("call_id")
        if call_id not in calls:
            return "input", f"No tool call found for function call output with call_id {call_id}.", None
        if not isinstance(item.get("output"), (str, list)):
            return f"{path}.output", f"Invalid type for '{path}.output': expected a string or an array.", "invalid_type"
        return None
    if kind == "reasoning":
        return _reasoning(item, path)
    if kind == "item_reference":
        return "input", f"Item with id '{ident}' not found.", None
    return (
        f"{path}.type",
        f"Invalid value: '{kind}'. The mock upstream takes message, function_call, function_call_output "
        "and reasoning items.",
        "invalid_value",
    )


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
    if kind == "function_call" or (kind == "message" and after.get("role") == "assistant"):
        return None
    ident = items[i].get("id")
    return "input", f"Item '{ident}' of type 'reasoning' was provided without its required following item.", None


def _tools(payload: dict[str, Any]) -> Problem | None:
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools", "Invalid type for 'tools': expected an array.", "invalid_type"
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
                return f"tools[{i}].type", f"Missing required parameter: 'tools[{i}].type'.", None
            if tool["type"] != "function":
                continue
            if not isinstance(tool.get("name"), str):
                return f"tools[{i}].name", f"Missing required parameter: 'tools[{i}].name'.", None
            if not isinstance(tool.get("parameters"), (dict, type(None))):
                return f"tools[{i}].parameters", f"Invalid type for 'tools[{i}].parameters': expected an object.", None
    choice = payload.get("tool_choice")
    if choice is None or choice in ("none", "auto", "required"):
        return None
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        return "tool_choice", "Invalid value for 'tool_choice'.", "invalid_value"
    if choice["type"] == "function" and not isinstance(choice.get("name"), str):
        return "tool_choice.name", "Missing required parameter: 'tool_choice.name'.", None
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
    include = payload.get("include")
    if include is not None and not (isinstance(include, list) and all(isinstance(x, str) for x in include)):
        return "include", "Invalid type for 'include': expected an array of strings.", "invalid_type"
    text = payload.get("text")
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

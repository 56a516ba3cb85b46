"""What OpenAI Chat Completions answers 400 to, checked before the mock answers.

``problem(payload)`` gives ``(param, message)`` for the first thing wrong, or None. Besides shapes
(model, messages, tools, tool_choice, limits), it holds the rules converters break:

- top-level parameters are those of the openai SDK's ``CompletionCreateParams`` (and ``stream``); another is
  ``Unrecognized request argument supplied: x``;
- roles are system, developer, user, assistant, tool or function (system and developer anywhere);
- content parts are text, image_url, input_audio, file or refusal (not Responses' ``input_text``);
- an assistant ``tool_calls[i].function.arguments`` is a string of JSON, not an object (a ``custom`` call
  carries ``custom.name`` and ``custom.input``);
- tools are ``function`` tools (``function.name``) or ``custom`` ones (``custom.name``);
- a ``tool`` message follows an assistant message whose ``tool_calls`` hold its ``tool_call_id``
  (other tool messages may come between), and every tool call of that message gets its tool message;
- ``reasoning_effort``, ``response_format``, ``stop`` (at most 4) and ``temperature`` (0..2) are valid.
"""

from __future__ import annotations

from typing import Any

Problem = tuple[str | None, str]

_CREATE = frozenset(
    {
        "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs", "max_completion_tokens",
        "max_tokens", "messages", "metadata", "modalities", "model", "moderation", "n", "parallel_tool_calls",
        "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention",
        "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
        "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
        "web_search_options",
    }
)  # fmt: skip
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_PARTS = ("text", "image_url", "input_audio", "file", "refusal")
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_VERBOSITY = ("low", "medium", "high")


def problem(payload: Any) -> Problem | None:
    """What a real upstream would answer 400 to, as (param, message); None when the request is fine."""
    if not isinstance(payload, dict):
        return None, "the request body must be a JSON object"
    for key in payload:
        if key not in _CREATE:
            return key, f"Unrecognized request argument supplied: {key}"
    if not isinstance(payload.get("model"), str):
        return "model", "'model' must be a string"
    return _messages(payload.get("messages")) or _options(payload) or _tools(payload)


def _messages(messages: Any) -> Problem | None:
    if not isinstance(messages, list) or not messages:
        return "messages", "'messages' must be a non-empty array"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return f"messages[{i}]", f"'messages[{i}]' must be an object with a string 'role'"
        if message["role"] not in _ROLES:
            supported = ", ".join(f"'{r}'" for r in _ROLES)
            return f"messages[{i}].role", f"Invalid value: '{message['role']}'. Supported values are: {supported}."
        content = message.get("content")
        if not isinstance(content, (str, list, type(None))):
            return f"messages[{i}].content", f"'messages[{i}].content' must be a string, an array or null"
        found = _parts(content, f"messages[{i}].content") if isinstance(content, list) else None
        found = found or _tool_calls(message.get("tool_calls"), f"messages[{i}].tool_calls")
        if found:
            return found
    return _tool_order(messages)


def _parts(parts: list[Any], path: str) -> Problem | None:
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str):
            return f"{path}[{j}].type", f"Missing required parameter: '{path}[{j}].type'."
        if kind not in _PARTS:
            supported = ", ".join(f"'{p}'" for p in _PARTS)
            return f"{path}[{j}].type", f"Invalid value: '{kind}'. Supported values are: {supported}."
        if kind == "text" and not isinstance(part.get("text"), str):
            return f"{path}[{j}].text", f"Missing required parameter: '{path}[{j}].text'."
    return None


def _tool_calls(calls: Any, path: str) -> Problem | None:
    if calls is None:
        return None
    if not isinstance(calls, list):
        return path, f"Invalid type for '{path}': expected an array."
    for k, call in enumerate(calls):
        here = f"{path}[{k}]"
        if not isinstance(call, dict) or not isinstance(call.get("id"), str):
            return f"{here}.id", f"Missing required parameter: '{here}.id'."
        if call.get("type") == "custom":
            custom = call.get("custom")
            for name in ("name", "input"):
                if not isinstance(custom, dict) or not isinstance(custom.get(name), str):
                    return f"{here}.custom.{name}", f"Missing required parameter: '{here}.custom.{name}'."
            continue
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return f"{here}.function.name", f"Missing required parameter: '{here}.function.name'."
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            kind = type(arguments).__name__ if arguments is not None else "nothing"
            return (
                f"{here}.function.arguments",
                f"Invalid type for '{here}.function.arguments': expected a string, but got {kind} instead.",
            )
    return None


def _tool_order(messages: list[dict[str, Any]]) -> Problem | None:
    """Tool messages answer the tool calls of the assistant message before them, every one of them."""
    open_calls: dict[str, int] = {}  # tool_call_id -> index of the assistant message that made it
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            if not open_calls and not _answered_before(messages, i):
                return (
                    f"messages[{i}].role",
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    "with 'tool_calls'.",
                )
            call_id = message.get("tool_call_id")
            if call_id not in open_calls:
                return (
                    f"messages[{i}].tool_call_id",
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of previous message.",
                )
            del open_calls[call_id]
            continue
        if open_calls:
            return _unanswered(open_calls)
        if role == "assistant":
            for call in message.get("tool_calls") or ():
                open_calls[call["id"]] = i
    return _unanswered(open_calls) if open_calls else None


def _answered_before(messages: list[dict[str, Any]], i: int) -> bool:
    """Whether the tool messages right before ``i`` follow an assistant message with tool calls."""
    j = i - 1
    while j >= 0 and messages[j]["role"] == "tool":
        j -= 1
    return j >= 0 and messages[j]["role"] == "assistant" and bool(messages[j].get("tool_calls"))


def _unanswered(open_calls: dict[str, int]) -> Problem:
    at = min(open_calls.values())
    ids = ", ".join(open_calls)
    return (
        f"messages[{at}].role",
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {ids}",
    )


def _options(payload: dict[str, Any]) -> Problem | None:
    if payload.get("stream") not in (None, True, False):
        return "stream", "'stream' must be a boolean"
    if not isinstance(payload.get("stream_options"), (dict, type(None))):
        return "stream_options", "'stream_options' must be an object"
    for name in ("max_tokens", "max_completion_tokens"):
        limit = payload.get(name)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            return name, f"'{name}' must be a positive integer"
    effort = payload.get("reasoning_effort")
    if effort is not None and effort not in _EFFORTS:
        return "reasoning_effort", f"Invalid value: '{effort}'. Supported values are: {', '.join(_EFFORTS)}."
    verbosity = payload.get("verbosity")
    if verbosity is not None and verbosity not in _VERBOSITY:
        return "verbosity", f"Invalid value: '{verbosity}'. Supported values are: {', '.join(_VERBOSITY)}."
    temperature = payload.get("temperature")
    if temperature is not None and (not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2):
        return "temperature", "Invalid 'temperature': expected a number from 0 to 2."
    stop = payload.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            return "stop", "'stop' must be a string or an array of strings"
        if len(stop) > 4:
            return "stop", f"Invalid 'stop': array too long. Expected an array with maximum length 4, got {len(stop)}."
    return _response_format(payload.get("response_format"))


def _response_format(form: Any) -> Problem | None:
    if form is None:
        return None
    kind = form.get("type") if isinstance(form, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        return "response_format.type", "'response_format.type' must be text, json_object or json_schema"
    if kind == "json_schema":
        spec = form.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            return "response_format.json_schema.name", (
                "Missing required parameter: 'response_format.json_schema.name'."
            )
        if not isinstance(spec.get("schema"), (dict, type(None))):
            return "response_format.json_schema.schema", "'response_format.json_schema.schema' must be an object"
    return None


def _tools(payload: dict[str, Any]) -> Problem | None:
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools", "'tools' must be an array"
        for i, tool in enumerate(tools):
            if isinstance(tool, dict) and tool.get("type") == "custom":
                custom = tool.get("custom")
                if not isinstance(custom, dict) or not isinstance(custom.get("name"), str):
                    return f"tools[{i}].custom", f"'tools[{i}].custom' must be an object with a string 'name'"
                continue
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                return f"tools[{i}].function", f"'tools[{i}].function' must be an object with a string 'name'"
            if not isinstance(function.get("parameters"), (dict, type(None))):
                return f"tools[{i}].function.parameters", f"'tools[{i}].function.parameters' must be an object"
    choice = payload.get("tool_choice")
    if choice is None or choice in ("none", "auto", "required"):
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools")
        if isinstance(allowed, dict) and allowed.get("mode") in ("auto", "required"):
            if isinstance(allowed.get("tools"), list):
                return None
        return "tool_choice.allowed_tools", "'tool_choice.allowed_tools' must have a mode (auto, required) and tools"
    named = choice.get("custom" if kind == "custom" else "function") if isinstance(choice, dict) else None
    if not isinstance(named, dict) or not isinstance(named.get("name"), str):
        return "tool_choice", (
            "'tool_choice' must be none, auto, required, {type: function, function: {name}}, "
            "{type: custom, custom: {name}} or {type: allowed_tools, allowed_tools: {mode, tools}}"
        )
    return None

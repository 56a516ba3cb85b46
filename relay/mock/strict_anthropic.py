"""What Anthropic Messages answers 400 to, checked before the mock answers.

``problem(payload, counting, betas)`` gives the message of the first thing wrong (``path: problem``), or None:

- unknown top-level fields (``Extra inputs are not permitted``; the known ones are the anthropic SDK's beta
  ``MessageCreateParams``, ``betas`` aside, which the SDK sends as the ``anthropic-beta`` header); ``model``;
  ``max_tokens`` (required, except for count_tokens); ``temperature`` within 0..1; ``metadata`` holds only
  ``user_id``;
- messages: at least one; roles ``user``/``assistant``, and ``system`` in place when the ``anthropic-beta``
  header carries ``mid-conversation-system-…``, ``per-turn-control-…`` or ``mid-conversation-tool-changes-…``
  (without: ``messages.N: Unexpected role "system". …``, the wording Claude Code falls back on); a system
  message holds text (or tool_addition/tool_removal) blocks, and may carry ``output_config`` (no ``format``)
  and ``clear_at``; user and assistant messages only ``role`` and ``content``; no empty content (except a
  final assistant message); no empty or whitespace-only text blocks; a final assistant text without
  trailing whitespace; known block types; image media types Anthropic takes;
- ``tool_use`` only from the assistant, its ``id`` matching ``^[a-zA-Z0-9_-]+$`` and its ``input`` an
  object; every ``tool_use`` answered by a ``tool_result`` at the start of the next (user) message,
  and every ``tool_result`` answering a ``tool_use`` of the message before;
- thinking: ``budget_tokens`` >= 1024 and < ``max_tokens``; ``temperature`` 1 or unset and no
  ``top_k``; no ``tool_choice`` forcing a tool; when a tool loop is open, the final assistant
  message starts with a thinking block; a thinking block in history carries the exact signature
  the mock made for its text (``Invalid `signature` in `thinking` block``); a redacted_thinking block
  never verifies (the mock makes none);
- tools: custom tools with a valid name and an ``input_schema`` of type object (Chat's
  ``{type: function}`` is refused); ``tool_choice`` an object of type auto, any, tool or none;
  ``stop_sequences`` non-empty strings; ``output_config``/``output_format`` shapes.
"""

from __future__ import annotations

import re
from typing import Any

from relay.mock import signing

_CREATE = frozenset(
    {
        "billing_policy", "cache_control", "compaction", "container", "context_management", "diagnostics",
        "fallback_credit_token", "fallbacks", "inference_geo", "max_tokens", "mcp_servers", "messages", "metadata",
        "model", "output_config", "output_format", "service_tier", "speed", "stop_sequences", "stream", "system",
        "temperature", "thinking", "thread", "tool_choice", "tools", "top_k", "top_p", "user_profile_id",
        "workspace_id",
    }
)  # fmt: skip
_COUNT = frozenset(
    {
        "billing_policy", "cache_control", "compaction", "context_management", "mcp_servers", "messages", "model",
        "output_config", "output_format", "speed", "system", "thinking", "tool_choice", "tools", "user_profile_id",
        "workspace_id",
    }
)  # fmt: skip
#: Betas under which ``{"role": "system"}`` messages are taken in place.
SYSTEM_BETAS = ("mid-conversation-system-", "per-turn-control-", "mid-conversation-tool-changes-")
#: Server tools (the anthropic SDK's beta tool types besides custom ones); the mock never calls them.
SERVER_TOOLS = frozenset(
    {
        "bash_20241022", "bash_20250124", "code_execution_20250522", "code_execution_20250825",
        "code_execution_20260120", "code_execution_20260521", "browser_toolset_20260801", "computer_20241022",
        "memory_20250818", "computer_20250124", "text_editor_20241022", "computer_20251124",
        "computer_toolset_20260801", "text_editor_20250124", "text_editor_20250429", "text_editor_20250728",
        "web_search_20250305", "web_fetch_20250910", "web_search_20260209", "web_fetch_20260209",
        "web_fetch_20260309", "web_search_20260318", "web_fetch_20260318", "advisor_20260301",
        "tool_search_tool_bm25_20251119", "tool_search_tool_bm25", "tool_search_tool_regex_20251119",
        "tool_search_tool_regex", "mcp_toolset",
    }
)  # fmt: skip
_BLOCKS = frozenset(
    {
        "text", "image", "document", "search_result", "thinking", "redacted_thinking", "tool_use", "tool_result",
        "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
        "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "tool_search_tool_result",
        "container_upload", "advisor_tool_result", "mcp_tool_use", "mcp_tool_result", "compaction",
        "tool_addition", "tool_removal", "mcp_tool_listing", "fallback",
    }
)  # fmt: skip
_SYSTEM_BLOCKS = ("text", "tool_addition", "tool_removal")
_MEDIA = ("image/jpeg", "image/png", "image/gif", "image/webp")
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


def system_turns(betas: str) -> bool:
    """Whether an ``anthropic-beta`` header value lets ``{"role": "system"}`` messages in."""
    return any(b.strip().startswith(SYSTEM_BETAS) for b in betas.split(","))


def problem(payload: Any, counting: bool = False, betas: str = "") -> str | None:
    if not isinstance(payload, dict):
        return "the request body must be a JSON object"
    for key in payload:
        if key not in (_COUNT if counting else _CREATE):
            return f"{key}: Extra inputs are not permitted"
    if not isinstance(payload.get("model"), str):
        return "model: Field required"
    if not counting:
        limit = payload.get("max_tokens")
        if limit is None:
            return "max_tokens: Field required"
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            return "max_tokens: Input should be a positive integer"
    return (
        _sampling(payload)
        or _metadata(payload.get("metadata"))
        or _system(payload.get("system"))
        or _messages(payload.get("messages"), system_turns(betas))
        or _tools(payload)
        or _thinking(payload, counting)
        or _output(payload)
    )


def _sampling(payload: dict[str, Any]) -> str | None:
    temperature = payload.get("temperature")
    if temperature is not None and (not isinstance(temperature, (int, float)) or not 0 <= temperature <= 1):
        return "temperature: Input should be a number from 0 to 1"
    if payload.get("stream") not in (None, True, False):
        return "stream: Input should be a valid boolean"
    stops = payload.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list):
            return "stop_sequences: Input should be a valid list"
        for i, stop in enumerate(stops):
            if not isinstance(stop, str) or not stop.strip():
                return f"stop_sequences.{i}: each stop sequence must contain non-whitespace text"
    return None


def _metadata(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        return "metadata: Input should be a valid dictionary"
    for key in metadata:  # the type of user_id is not checked: tests put deep JSON there
        if key != "user_id":
            return f"metadata.{key}: Extra inputs are not permitted"
    return None


def _system(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return None
    if not isinstance(system, list):
        return "system: Input should be a valid string or a list of text blocks"
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            return f"system.{i}: Input should be a text block"
        if not block["text"].strip():
            return f"system.{i}.text: text content blocks must contain non-whitespace text"
    return None


def _messages(messages: Any, system_ok: bool) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    spoken: list[tuple[int, dict[str, Any]]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.{i}: Input should be a valid dictionary"
        role = message.get("role")
        if role == "system":
            if not system_ok:
                return (
                    f'messages.{i}: Unexpected role "system". The Messages API accepts a top-level `system` '
                    'parameter, not "system" as an input message role.'
                )
            found = _system_message(message, f"messages.{i}")
            if found:
                return found
            continue
        if role not in ("user", "assistant"):
            roles = "'user', 'assistant' or 'system'" if system_ok else "'user' or 'assistant'"
            return f"messages.{i}.role: Input should be {roles}"
        for key in message:
            if key not in ("role", "content"):
                return f"messages.{i}.{key}: Extra inputs are not permitted"
        spoken.append((i, message))
    if not spoken:
        return "messages: at least one user or assistant message is required"
    for n, (i, message) in enumerate(spoken):
        final_assistant = n == len(spoken) - 1 and message["role"] == "assistant"
        found = _content(message, f"messages.{i}", final_assistant)
        if found:
            return found
    return _tool_pairs(spoken)


def _system_message(message: dict[str, Any], path: str) -> str | None:
    """A ``{"role": "system"}`` message in place: text (or tool change) blocks, ``output_config``, ``clear_at``."""
    for key in message:
        if key not in ("role", "content", "output_config", "clear_at"):
            return f"{path}.{key}: Extra inputs are not permitted"
    if message.get("clear_at") not in (None, "next_user_message", "never"):
        return f"{path}.clear_at: Input should be 'next_user_message' or 'never'"
    config = message.get("output_config")
    if config is not None:
        if not isinstance(config, dict):
            return f"{path}.output_config: Input should be a valid dictionary"
        for key in config:
            if key != "effort":
                return f"{path}.output_config.{key}: Extra inputs are not permitted"
        if config.get("effort") not in (None, "low", "medium", "high", "xhigh", "max"):
            return f"{path}.output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
    content = message.get("content")
    if content is None or content == "" or content == []:
        if not config:
            return f"{path}: a system message must have content or output_config fields"
        return None
    if isinstance(content, str):
        return None if content.strip() else f"{path}.content: text content must contain non-whitespace text"
    if not isinstance(content, list):
        return f"{path}.content: Input should be a valid string or a list of content blocks"
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _SYSTEM_BLOCKS:
            return (
                f"{path}.content.{j}: Input tag '{kind}' found using 'type' does not match any of the expected "
                "tags: 'text', 'tool_addition', 'tool_removal'"
            )
        if kind == "text" and (not isinstance(block.get("text"), str) or not block["text"].strip()):
            return f"{path}.content.{j}.text: text content blocks must contain non-whitespace text"
    return None


def _content(message: dict[str, Any], path: str, final_assistant: bool) -> str | None:
    content = message.get("content")
    if isinstance(content, str):
        if not content and not final_assistant:
            return f"{path}: all messages must have non-empty content except for the optional final assistant message"
        if final_assistant and content != content.rstrip():
            return "messages: final assistant content cannot end with trailing whitespace"
        return None
    if not isinstance(content, list):
        return f"{path}.content: Input should be a valid string or a list of content blocks"
    if not content and not final_assistant:
        return f"{path}: all messages must have non-empty content except for the optional final assistant message"
    for j, block in enumerate(content):
        found = _block(block, f"{path}.content.{j}", message["role"])
        if found:
            return found
    last = content[-1] if content else None
    if (
        final_assistant
        and isinstance(last, dict)
        and last.get("type") == "text"
        and last["text"] != last["text"].rstrip()
    ):
        return "messages: final assistant content cannot end with trailing whitespace"
    return None


def _block(block: Any, path: str, role: str) -> str | None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in _BLOCKS:
        return f"{path}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
    if kind == "text":
        if not isinstance(block.get("text"), str) or not block["text"]:
            return f"{path}.text: text content blocks must be non-empty"
        if not block["text"].strip():
            return f"{path}.text: text content blocks must contain non-whitespace text"
    elif kind == "image":
        return _image(block.get("source"), f"{path}.source")
    elif kind == "tool_use":
        if role != "assistant":
            return f"{path}: tool_use blocks can only be in assistant messages"
        if not isinstance(block.get("id"), str) or not _TOOL_ID.match(block["id"]):
            return f"{path}.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
        if not isinstance(block.get("name"), str):
            return f"{path}.name: Field required"
        if not isinstance(block.get("input"), dict):
            return f"{path}.input: Input should be a valid dictionary"
    elif kind == "tool_result":
        if role != "user":
            return f"{path}: tool_result blocks can only be in user messages"
        if not isinstance(block.get("tool_use_id"), str):
            return f"{path}.tool_use_id: Field required"
        if not isinstance(block.get("content"), (str, list, type(None))):
            return f"{path}.content: Input should be a valid string or a list of content blocks"
    elif kind in ("thinking", "redacted_thinking"):
        return _thinking_block(block, path, role)
    return None


def _image(source: Any, path: str) -> str | None:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        if source.get("media_type") not in _MEDIA:
            return f"{path}.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
        if not isinstance(source.get("data"), str):
            return f"{path}.base64.data: Field required"
    elif kind == "url":
        if not isinstance(source.get("url"), str):
            return f"{path}.url.url: Field required"
    elif kind != "file":
        return f"{path}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
    return None


def _thinking_block(block: dict[str, Any], path: str, role: str) -> str | None:
    if role != "assistant":
        return f"{path}: thinking blocks can only be in assistant messages"
    if block["type"] == "redacted_thinking":
        return f"{path}: Invalid `data` in `redacted_thinking` block"
    thinking, signature = block.get("thinking"), block.get("signature")
    if not isinstance(thinking, str):
        return f"{path}.thinking: Field required"
    if not isinstance(signature, str):
        return f"{path}.signature: Field required"
    if not signing.thinking_signature_ok(thinking, signature):
        return f"{path}: Invalid `signature` in `thinking` block"
    return None


def _tool_pairs(spoken: list[tuple[int, dict[str, Any]]]) -> str | None:
    """Each tool_use answered first thing in the next message; each tool_result answering the one before.

    ``spoken`` are the user and assistant messages with their indices (system messages between them skipped).
    """
    for n, (i, message) in enumerate(spoken):
        blocks = message["content"] if isinstance(message["content"], list) else []
        before = spoken[n - 1][1] if n else None
        asked = _ids(before, "tool_use", "id") if before is not None and before["role"] == "assistant" else []
        for j, block in enumerate(blocks):
            if isinstance(block, dict) and block.get("type") == "tool_result" and block["tool_use_id"] not in asked:
                return (
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block['tool_use_id']}. Each `tool_result` block must have a corresponding `tool_use` block "
                    "in the previous message."
                )
        uses = _ids(message, "tool_use", "id") if message["role"] == "assistant" else []
        if not uses or n == len(spoken) - 1:
            continue
        at, after = spoken[n + 1]
        leading = []
        for block in after["content"] if isinstance(after["content"], list) else ():
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                break
            leading.append(block["tool_use_id"])
        missing = [u for u in uses if u not in leading]
        if missing:
            return (
                f"messages.{at}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in the "
                "next message."
            )
    return None


def _ids(message: dict[str, Any], kind: str, key: str) -> list[str]:
    content = message["content"] if isinstance(message["content"], list) else []
    return [b[key] for b in content if isinstance(b, dict) and b.get("type") == kind and isinstance(b.get(key), str)]


def _tools(payload: dict[str, Any]) -> str | None:
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, tool in enumerate(tools):
            found = _tool(tool, f"tools.{i}")
            if found:
                return found
    choice = payload.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict):
        return "tool_choice: Input should be a valid dictionary"
    kind = choice.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        return f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the expected tags"
    if kind == "tool" and not isinstance(choice.get("name"), str):
        return "tool_choice.tool.name: Field required"
    return None


def _tool(tool: Any, path: str) -> str | None:
    if not isinstance(tool, dict):
        return f"{path}: Input should be a valid dictionary"
    kind = tool.get("type")
    if kind not in (None, "custom"):
        if kind not in SERVER_TOOLS:
            return f"{path}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
        return None  # a server tool (web_search_20250305, …): the mock never calls it
    name = tool.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        return f"{path}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        return f"{path}.custom.input_schema: Field required"
    if schema.get("type") != "object":
        return f"{path}.custom.input_schema.type: Input should be 'object'"
    return None


def _thinking(payload: dict[str, Any], counting: bool) -> str | None:
    thinking = payload.get("thinking")
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "disabled", "adaptive", "between_tools"):
        return f"thinking: Input tag '{kind}' found using 'type' does not match any of the expected tags"
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            return "thinking.enabled.budget_tokens: Field required"
        if budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if not counting and budget >= payload["max_tokens"]:
            return "`max_tokens` must be greater than `thinking.budget_tokens`"
    if kind not in ("enabled", "adaptive"):
        return None
    if payload.get("temperature", 1) != 1:
        return "`temperature` may only be set to 1 when thinking is enabled or in adaptive mode"
    if payload.get("top_k") is not None:
        return "`top_k` must be unset when thinking is enabled"
    choice = payload.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return _thinking_first([(i, m) for i, m in enumerate(payload["messages"]) if m["role"] != "system"])


def _thinking_first(spoken: list[tuple[int, dict[str, Any]]]) -> str | None:
    """With thinking on, an assistant turn that opened the current tool loop must start with thinking."""
    last = spoken[-1][1]
    if last["role"] != "user" or not _ids(last, "tool_result", "tool_use_id") or len(spoken) < 2:
        return None
    at, before = spoken[-2]
    content = before["content"] if isinstance(before["content"], list) else []
    first = content[0].get("type") if content and isinstance(content[0], dict) else "text"
    if first in ("thinking", "redacted_thinking"):
        return None
    return (
        f"messages.{at}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
        f"`{first}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block "
        "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking "
        "blocks from previous turns. To avoid this requirement, disable `thinking`."
    )


def _output(payload: dict[str, Any]) -> str | None:
    config = payload.get("output_config")
    if config is not None:
        if not isinstance(config, dict):
            return "output_config: Input should be a valid dictionary"
        effort = config.get("effort")
        if effort is not None and effort not in ("low", "medium", "high", "xhigh", "max"):
            return "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
        found = _format(config.get("format"), "output_config.format")
        if found:
            return found
    return _format(payload.get("output_format"), "output_format")


def _format(form: Any, path: str) -> str | None:
    if form is None:
        return None
    if not isinstance(form, dict) or form.get("type") != "json_schema":
        return f"{path}.type: Input should be 'json_schema'"
    if not isinstance(form.get("schema"), dict):
        return f"{path}.schema: Field required"
    return None

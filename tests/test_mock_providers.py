"""The strict mock accepts what each provider accepts, and still refuses what it refuses (docs/mock.md).

Each accepted field, tool, item or message shape is sent to ``Mock.route`` (sans-IO) and must be answered
200; each still-refused unknown gets the provider's own wording. The field sets are checked against the
official SDKs' request types (site-packages openai, anthropic, google.genai), which are the reference.
"""

from __future__ import annotations

import re
import typing
from typing import Any

import pytest
from anthropic.types import beta as anthropic_beta
from anthropic.types.beta import beta_tool_union_param, message_count_tokens_params
from anthropic.types.beta import message_create_params as anthropic_create
from google.genai import types as gtypes
from openai.types.chat import completion_create_params as chat_create
from openai.types.responses import (
    Response,
    response_create_params,
    response_includable,
    response_input_item_param,
    tool_param,
)

from relay.mock import strict_anthropic, strict_chat, strict_gemini, strict_responses
from tests.test_mock_dialects import (
    ANTHROPIC,
    CHAT_TOOL,
    GENERATE,
    RESPONSES_TOOL,
    chat,
    gemini,
    messages,
    refused,
    responses,
    route,
    whole,
)

FUNCTION = {"type": "function", "name": "sleep", "parameters": {"type": "object", "properties": {}}}
CUSTOM = {
    "type": "custom",
    "name": "exec",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}
NAMESPACE = {"type": "namespace", "name": "clock", "description": "time", "tools": [FUNCTION, CUSTOM]}
MID_SYSTEM = {"anthropic-beta": "claude-code-20250219,mid-conversation-system-2026-04-07", **ANTHROPIC}
PER_TURN = {"anthropic-beta": "per-turn-control-2026-07-01", **ANTHROPIC}


def served(answer: Any) -> dict[str, Any]:
    assert answer.status == 200, answer.body
    return whole(answer)


# ---- the field sets follow the SDKs -------------------------------------------------------------------


def _fields(cls: Any) -> set[str]:
    return set(typing.get_type_hints(cls))


def _literals(union: Any) -> set[str]:
    found: set[str] = set()
    for member in typing.get_args(union):
        kind = typing.get_type_hints(member).get("type")
        while typing.get_origin(kind) in (typing.Required, typing.NotRequired, typing.Optional, typing.Union):
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        found |= {a for a in typing.get_args(kind) if isinstance(a, str)}
    return found


def test_the_mock_takes_every_top_level_field_the_sdks_send():
    assert _fields(response_create_params.ResponseCreateParamsBase) | {"stream", "client_metadata"} <= (
        strict_responses._CREATE
    )
    assert _fields(chat_create.CompletionCreateParamsBase) | {"stream"} <= strict_chat._CREATE
    assert _fields(anthropic_create.MessageCreateParamsBase) - {"betas"} | {"stream"} <= strict_anthropic._CREATE
    assert _fields(message_count_tokens_params.MessageCountTokensParams) - {"betas"} <= strict_anthropic._COUNT
    camel = strict_gemini.camel
    assert {camel(f) for f in gtypes.Tool.model_fields} <= strict_gemini._TOOL
    assert {camel(f) for f in gtypes.GenerationConfig.model_fields} <= strict_gemini._GENERATION
    assert {camel(f) for f in gtypes.ThinkingConfig.model_fields} <= strict_gemini._THINKING


def test_the_mock_takes_every_tool_and_item_type_the_sdks_know():
    assert _literals(tool_param.ToolParam) == set(strict_responses.TOOLS)
    items = _literals(response_input_item_param.ResponseInputItemParam)
    assert items == {*strict_responses._ITEMS, *strict_responses._CHECKED}
    assert set(typing.get_args(response_includable.ResponseIncludable)) == set(strict_responses._INCLUDES)
    assert _literals(beta_tool_union_param.BetaToolUnionParam) - {"custom"} == strict_anthropic.SERVER_TOOLS
    system_blocks = typing.get_type_hints(anthropic_beta.BetaSystemMessageParam)["content"]
    assert _literals(typing.get_args(typing.get_args(system_blocks)[1])[0]) == set(strict_anthropic._SYSTEM_BLOCKS)


# ---- OpenAI Responses ---------------------------------------------------------------------------------

CALLED = [
    {"role": "user", "content": "q"},
    {"type": "custom_tool_call", "call_id": "call_c", "name": "exec", "namespace": "clock", "input": "echo hi"},
    {"type": "custom_tool_call_output", "call_id": "call_c", "output": "hi"},
    {"type": "function_call", "call_id": "call_f", "name": "sleep", "namespace": "clock", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "call_f", "output": [{"type": "input_text", "text": "slept"}]},
]

RESPONSES_ACCEPTS = {
    "client_metadata": {"client_metadata": {"x-codex-installation-id": "i", "session_id": "s"}},
    "prompt_cache_key": {"prompt_cache_key": "thread-1", "prompt_cache_retention": "24h"},
    "safety_identifier": {"safety_identifier": "u-1"},
    "context_management": {"context_management": [{"type": "compaction", "compact_threshold": 1000}]},
    "include": {"include": list(typing.get_args(response_includable.ResponseIncludable))},
    "text.verbosity": {"text": {"verbosity": "low"}},
    "reasoning.summary": {"reasoning": {"effort": "max", "summary": "auto", "context": "all_turns"}},
    "store": {"store": False, "service_tier": "priority", "truncation": "auto"},
    "namespace": {"tools": [NAMESPACE]},
    "custom": {"tools": [CUSTOM]},
    "hosted": {
        "tools": [
            {"type": "web_search", "search_context_size": "low"},
            {"type": "web_search_preview"},
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
            {"type": "image_generation"},
            {"type": "mcp", "server_label": "x", "server_url": "https://example.com/mcp"},
            {"type": "local_shell"},
            {"type": "shell"},
            {"type": "apply_patch"},
            {"type": "code_interpreter", "container": {"type": "auto"}},
            {"type": "computer_use_preview", "display_width": 1, "display_height": 1, "environment": "linux"},
            {"type": "tool_search"},
        ]
    },
    "tool_choice custom": {"tools": [CUSTOM], "tool_choice": {"type": "custom", "name": "exec"}},
    "tool_choice allowed_tools": {
        "tools": [RESPONSES_TOOL],
        "tool_choice": {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "x"}]},
    },
    "tool_choice hosted": {"tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search_preview"}},
    "custom and namespaced calls in history": {"tools": [NAMESPACE], "input": CALLED},
    "developer and system anywhere": {
        "input": [
            {"role": "user", "content": "q"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]},
            {"role": "developer", "content": "mind the tests"},
            {"role": "system", "content": [{"type": "input_text", "text": "be brief"}]},
            {"role": "user", "content": "again"},
        ]
    },
    "additional_tools item": {
        "input": [{"type": "additional_tools", "id": "at_1", "role": "developer", "tools": [NAMESPACE]},
                  {"role": "user", "content": "q mock:text"}]
    },
    "items the sdk knows": {
        "input": [
            {"role": "user", "content": "q"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}},
            {"type": "local_shell_call", "id": "lsh_1", "call_id": "c1", "status": "completed",
             "action": {"type": "exec", "command": ["ls"], "env": {}}},
            {"type": "local_shell_call_output", "id": "lsh_1", "output": "ok"},
            {"type": "compaction_trigger"},
            {"role": "user", "content": "go on"},
        ]
    },
}  # fmt: skip


@pytest.mark.parametrize("change", RESPONSES_ACCEPTS.values(), ids=RESPONSES_ACCEPTS.keys())
def test_responses_accepts_what_openai_accepts(change):
    body = served(route("/v1/responses", {**responses("q"), **change}))
    assert body["status"] == "completed"
    Response.model_validate(body)
    if "input" in change:
        assert route("/v1/responses/input_tokens", {**responses("q"), **change}).status == 200


RESPONSES_REFUSES = [
    ({"frobnicate": True}, "frobnicate", "Unknown parameter: 'frobnicate'."),
    ({"tools": [{"type": "web_browser"}]}, "tools[0].type", "Invalid value: 'web_browser'"),
    ({"tools": [{**NAMESPACE, "tools": [{"type": "web_search"}]}]}, "tools[0].tools[0].type", "'web_search'"),
    ({"tools": [{"type": "custom"}]}, "tools[0].name", "Missing required parameter"),
    ({"tool_choice": {"type": "custom"}}, "tool_choice.name", "Missing required parameter"),
    ({"include": ["reasoning.everything"]}, "include[0]", "Invalid value: 'reasoning.everything'"),
    ({"text": {"verbosity": "chatty"}}, "text.verbosity", "Invalid value: 'chatty'"),
    ({"reasoning": {"summary": "long"}}, "reasoning.summary", "Invalid value: 'long'"),
    ({"input": [{"type": "telepathy"}]}, "input[0].type", "Invalid value: 'telepathy'"),
    ({"input": [{"type": "additional_tools", "role": "user", "tools": []}]}, "input[0].role", "'developer'"),
    ({"input": [{"role": "user", "content": "q"}, {"type": "custom_tool_call_output", "call_id": "x", "output": ""}]},
     "input", "No tool call found for custom tool call output with call_id x."),
    ({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "exec", "input": {}}]}, "input[0].input",
     "expected a string"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "param", "words"), RESPONSES_REFUSES)
def test_responses_still_refuses_what_openai_refuses(change, param, words):
    answer = route("/v1/responses", {**responses("q"), **change})
    assert words in refused(answer)
    assert whole(answer)["error"]["param"] == param


# ---- OpenAI Chat Completions ----------------------------------------------------------------------------

CHAT_ACCEPTS = {
    "prompt_cache_key": {"prompt_cache_key": "k", "prompt_cache_retention": "in-memory"},
    "safety_identifier": {"safety_identifier": "u-1", "user": "u-1"},
    "verbosity": {"verbosity": "low"},
    "web_search_options": {"web_search_options": {"search_context_size": "low"}},
    "metadata and store": {"metadata": {"a": "b"}, "store": True, "service_tier": "flex"},
    "modalities and audio": {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}},
    "prediction": {"prediction": {"type": "content", "content": "x"}},
    "sampling": {"seed": 7, "n": 1, "logprobs": True, "top_logprobs": 2, "logit_bias": {"1": -1}},
    "reasoning_effort max": {"reasoning_effort": "max"},
    "custom tools": {"tools": [CHAT_TOOL, {"type": "custom", "custom": {"name": "exec"}}]},
    "tool_choice custom": {"tools": [{"type": "custom", "custom": {"name": "exec"}}],
                           "tool_choice": {"type": "custom", "custom": {"name": "exec"}}},
    "tool_choice allowed_tools": {"tools": [CHAT_TOOL], "tool_choice": {
        "type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [CHAT_TOOL]}}},
    "system and developer anywhere": {"messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
        {"role": "developer", "content": "mind"}, {"role": "system", "content": "brief"},
        {"role": "user", "content": "again"}]},
    "custom tool call in history": {"messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "custom", "custom": {"name": "exec", "input": "x"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"}]},
}  # fmt: skip


@pytest.mark.parametrize("change", CHAT_ACCEPTS.values(), ids=CHAT_ACCEPTS.keys())
def test_chat_accepts_what_openai_accepts(change):
    body = served(route("/v1/chat/completions", {**chat("q"), **change}))
    assert body["object"] == "chat.completion"


@pytest.mark.parametrize(
    ("change", "param", "words"),
    [
        ({"frobnicate": 1}, "frobnicate", "Unrecognized request argument supplied: frobnicate"),
        ({"max_output_tokens": 5}, "max_output_tokens", "Unrecognized request argument supplied"),
        ({"verbosity": "chatty"}, "verbosity", "Invalid value: 'chatty'"),
        ({"tools": [{"type": "custom", "custom": {}}]}, "tools[0].custom", "string 'name'"),
        ({"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "any"}}}, "tool_choice.allowed_tools",
         "must have a mode"),
        ({"messages": [{"role": "user", "content": "q"},
                       {"role": "assistant", "tool_calls": [{"id": "c1", "type": "custom", "custom": {"name": "x"}}]},
                       {"role": "tool", "tool_call_id": "c1", "content": "done"}]},
         "messages[1].tool_calls[0].custom.input", "Missing required parameter"),
    ],
)  # fmt: skip
def test_chat_still_refuses_what_openai_refuses(change, param, words):
    answer = route("/v1/chat/completions", {**chat("q"), **change})
    assert words in refused(answer)
    assert whole(answer)["error"]["param"] == param


# ---- Anthropic Messages -----------------------------------------------------------------------------------

#: Claude Code 2.1.332's test for "the server refused a mid-conversation system message" (function jLi in its
#: binary), which makes it resend without them: the refusal must read as one of these.
CLAUDE_CODE_SYSTEM_REFUSAL = (
    re.compile(r"(?:unknown variant .{0,2}system\b.{0,2}, expected|Input should be) [\\'\"`]{1,2}(?:user|assistant)\b"
               r".{0,2} or [\\'\"`]{1,2}(?:user|assistant)\b", re.I),
    re.compile(r"(?:messages\.(\d{1,6}): )?(?:role .{0,2}system.{0,2} must (?:precede an|follow a)|use the top-level "
               r".{0,2}system.{0,2} parameter for the initial system prompt)", re.I),
)  # fmt: skip


def claude_code_falls_back(message: str) -> bool:
    if "Unexpected role" in message and "input message role" in message:
        return True
    return any(p.search(message) for p in CLAUDE_CODE_SYSTEM_REFUSAL)


SYSTEM_IN_PLACE = [
    {"role": "user", "content": "q"},
    {"role": "system", "content": "the environment", "output_config": {"effort": "medium"}},
    {"role": "assistant", "content": "a"},
    {"role": "system", "content": [{"type": "text", "text": "reminder", "cache_control": {"type": "ephemeral"}}],
     "clear_at": "next_user_message"},
    {"role": "user", "content": "again"},
]  # fmt: skip
SERVER_TOOLS = [
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    {"type": "code_execution_20250825", "name": "code_execution"},
    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
    {"type": "bash_20250124", "name": "bash"},
    {"type": "web_fetch_20250910", "name": "web_fetch"},
]
CACHED = {"type": "ephemeral", "ttl": "1h"}

ANTHROPIC_ACCEPTS = {
    "system in place, mid-conversation beta": (MID_SYSTEM, {"messages": SYSTEM_IN_PLACE}),
    "system in place, per-turn beta": (PER_TURN, {"messages": SYSTEM_IN_PLACE}),
    "system with only output_config": (PER_TURN, {"messages": [
        {"role": "user", "content": "q"}, {"role": "system", "content": [], "output_config": {"effort": "low"}}]}),
    "system with tool changes": ({"anthropic-beta": "mid-conversation-tool-changes-2026-07-01", **ANTHROPIC}, {
        "messages": [{"role": "user", "content": "q"}, {"role": "system", "content": [
            {"type": "tool_addition", "tool": {"type": "tool_reference", "name": "Bash"}}]}]}),
    "context_management": (ANTHROPIC, {"context_management": {"edits": [{"type": "clear_thinking_20251015",
                                                                          "keep": "all"}]}}),
    "container and mcp_servers": (ANTHROPIC, {"container": "cntr_1", "mcp_servers": [
        {"type": "url", "url": "https://example.com/mcp", "name": "x"}]}),
    "output_config": (ANTHROPIC, {"output_config": {"effort": "medium"}, "thinking": {"type": "adaptive",
                                                                                      "display": "omitted"}}),
    "server tools": (ANTHROPIC, {"tools": SERVER_TOOLS}),
    "cache_control everywhere": (ANTHROPIC, {
        "cache_control": CACHED,
        "system": [{"type": "text", "text": "s", "cache_control": CACHED}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}, "cache_control": CACHED}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "q", "cache_control": CACHED}]}]}),
    "metadata.user_id": (ANTHROPIC, {"metadata": {"user_id": '{"device_id":"d","session_id":"s"}'}}),
}  # fmt: skip


@pytest.mark.parametrize(("headers", "change"), ANTHROPIC_ACCEPTS.values(), ids=ANTHROPIC_ACCEPTS.keys())
def test_anthropic_accepts_what_anthropic_accepts(headers, change):
    body = served(route("/v1/messages", {**messages("q"), **change}, headers))
    assert body["type"] == "message"
    anthropic_beta.BetaMessage.model_validate(body)
    counted = {k: v for k, v in {**messages("q"), **change}.items() if k in strict_anthropic._COUNT}
    assert route("/v1/messages/count_tokens", counted, headers).status == 200


def test_anthropic_refuses_system_in_place_without_the_beta_in_words_claude_code_recognises():
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        body = {**messages("q"), "messages": SYSTEM_IN_PLACE}
        if "count" in path:
            del body["max_tokens"]
        message = refused(route(path, body, {"anthropic-beta": "interleaved-thinking-2025-05-14", **ANTHROPIC}))
        assert message.startswith('messages.1: Unexpected role "system".')
        assert claude_code_falls_back(message)
    other_role = refused(route("/v1/messages", messages(messages=[{"role": "tool", "content": "x"}])))
    assert claude_code_falls_back(other_role)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"frobnicate": 1}, "frobnicate: Extra inputs are not permitted"),
        ({"betas": ["x"]}, "betas: Extra inputs are not permitted"),
        ({"metadata": {"user_id": "u", "team": "a"}}, "metadata.team: Extra inputs are not permitted"),
        ({"tools": [{"type": "web_search_20991231", "name": "web_search"}]}, "tools.0: Input tag 'web_search_2099"),
        ({"messages": [{"role": "user", "content": "q", "cache_control": CACHED}]},
         "messages.0.cache_control: Extra inputs are not permitted"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/x.png"}}]}]},
         "messages.1.content.0: Input tag 'image'"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s",
                                                          "output_config": {"format": {}}}]},
         "messages.1.output_config.format: Extra inputs are not permitted"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": []}]},
         "messages.1: a system message must have content or output_config fields"),
        ({"messages": [{"role": "system", "content": "s"}]}, "at least one user or assistant message"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s", "clear_at": "later"}]},
         "messages.1.clear_at"),
        ({"messages": [{"role": "tool", "content": "q"}]}, "Input should be 'user', 'assistant' or 'system'"),
    ],
)  # fmt: skip
def test_anthropic_still_refuses_what_anthropic_refuses(change, words):
    answer = route("/v1/messages", {**messages("q"), **change}, MID_SYSTEM)
    assert words in refused(answer)


def test_anthropic_tool_pairs_and_thinking_look_past_system_messages():
    use = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "fine"}
    loop = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [use]},
        {"role": "system", "content": "a reminder between the call and its result"},
        {"role": "user", "content": [result]},
    ]
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    made = served(route("/v1/messages", messages(messages=loop, tools=tools), MID_SYSTEM))
    assert made["content"][-1]["text"] == "Tool said: fine"
    loop[3] = {"role": "user", "content": [{**result, "tool_use_id": "toolu_2"}]}
    wrong = refused(route("/v1/messages", messages(messages=loop), MID_SYSTEM))
    assert wrong.startswith("messages.3: `tool_use` ids were found without `tool_result` blocks immediately after")
    loop[3] = {"role": "user", "content": [result]}
    thinking = messages(messages=loop, tools=tools, thinking={"type": "enabled", "budget_tokens": 1024})
    assert "messages.1.content.0.type: Expected `thinking`" in refused(route("/v1/messages", thinking, MID_SYSTEM))


# ---- Gemini ------------------------------------------------------------------------------------------------

GEMINI_ACCEPTS = {
    "google_search": {"tools": [{"google_search": {}}]},
    "googleSearch, codeExecution, urlContext": {"tools": [{"googleSearch": {}}, {"codeExecution": {}},
                                                          {"urlContext": {}}]},
    "thinkingBudget and includeThoughts": {"generationConfig": {"thinkingConfig": {"thinkingBudget": 1024,
                                                                                   "includeThoughts": True}}},
    "thinkingLevel": {"generation_config": {"thinking_config": {"thinking_level": "LOW"}}},
    "cachedContent": {"cachedContent": "cachedContents/abc"},
    "safetySettings": {"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]},
    "labels": {"labels": {"team": "a"}},
}  # fmt: skip


@pytest.mark.parametrize("change", GEMINI_ACCEPTS.values(), ids=GEMINI_ACCEPTS.keys())
def test_gemini_accepts_what_gemini_accepts(change):
    body = served(route(GENERATE, {**gemini("q"), **change}))
    assert body["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"frobnicate": 1}, 'Invalid JSON payload received. Unknown name "frobnicate"'),
        ({"tools": [{"google_search": {}, "bing": {}}]}, "Unknown name \"bing\" at 'tools[0]'"),
        ({"generationConfig": {"thinkingConfig": {"budget": 5}}}, 'Unknown name "budget"'),
        ({"generationConfig": {"reasoning": {}}}, "Unknown name \"reasoning\" at 'generation_config'"),
    ],
)
def test_gemini_still_refuses_unknown_fields(change, words):
    assert words in refused(route(GENERATE, {**gemini("q"), **change}))

"""Directives that drive real agents through the mock: ``mock:text``, ``mock:tool=NAME``, ``mock:args={…}``, read
from the whole last user turn, in every dialect; and the agent-shaped requests (Codex's tools inside
``additional_tools`` items, namespaces and a custom ``exec`` tool; Claude Code's prompt wrapped in
``<system-reminder>`` blocks) answered as the agent needs, tool round trip included (docs/mock.md).
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import orjson
import pydantic
import pytest
from google.genai import types as gtypes

from relay.mock import model, signing
from relay.mock.model import Directives, parse_directives
from tests.test_mock_dialects import (
    ANTHROPIC_TOOL,
    CHAT_TOOL,
    GEMINI_TOOL,
    GENERATE,
    RESPONSES_TOOL,
    chat,
    gemini,
    messages,
    responses,
    route,
    sse,
    whole,
)

BASH = {
    "name": "Bash",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
        "required": ["command"],
    },
}
ARGS = '{"command":"echo relay-ok"}'


# ---- parsing -------------------------------------------------------------------------------------------


def test_the_new_directives_parse_and_bad_values_are_ignored():
    found = parse_directives('go mock:text mock:tool=functions__exec mock:args={"command": "echo \\"hi\\""} tail }')
    assert found == Directives(text=True, tool="functions__exec", args='{"command":"echo \\"hi\\""}')
    assert parse_directives("mock:args={not json}").args is None
    assert parse_directives("mock:args=[1, 2]").args is None
    assert parse_directives('mock:args={"n": NaN}').args is None
    assert parse_directives('mock:args={"n": 1e999}').args is None
    assert parse_directives('mock:args={"n": ' + "9" * 30 + "}").args is None
    assert parse_directives("mock:args=" + "[" * 5000).args is None
    assert parse_directives("mock:tool= x").tool is None
    # a directive inside the arguments is part of them, and the ones after still count
    inside = parse_directives('mock:args={"say": "mock:status=500"} mock:chunks=2')
    assert (inside.status, inside.chunks, inside.args) == (None, 2, '{"say":"mock:status=500"}')


def test_the_old_directives_still_parse():
    assert parse_directives("mock:chunks=3 mock:parallel mock:status=503 mock:cached=2") == Directives(
        chunks=3, parallel=True, status=503, cached=2
    )


# ---- behaviour, every dialect ------------------------------------------------------------------------------

DIALECTS = {
    "chat": ("/v1/chat/completions", lambda text, **kw: chat(text, tools=[CHAT_TOOL, _chat(BASH)], **kw)),
    "responses": ("/v1/responses", lambda text, **kw: responses(text, tools=[RESPONSES_TOOL, _responses(BASH)], **kw)),
    "anthropic": ("/v1/messages", lambda text, **kw: messages(text, tools=[ANTHROPIC_TOOL, BASH], **kw)),
    "gemini": (GENERATE, lambda text, **kw: gemini(text, tools=[GEMINI_TOOL, _gemini(BASH)], **kw)),
}


def _chat(tool: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": tool["name"], "parameters": tool["input_schema"]}}


def _responses(tool: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "name": tool["name"], "parameters": tool["input_schema"]}


def _gemini(tool: dict[str, Any]) -> dict[str, Any]:
    return {"functionDeclarations": [{"name": tool["name"], "parametersJsonSchema": tool["input_schema"]}]}


def outcome(dialect: str, body: dict[str, Any]) -> tuple[str | None, list[tuple[str, Any]]]:
    """The answer's text and its calls as (name, arguments), whatever the dialect."""
    if dialect == "chat":
        message = body["choices"][0]["message"]
        calls = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls", [])]
        return message["content"], calls
    if dialect == "responses":
        texts = [p["text"] for i in body["output"] if i["type"] == "message" for p in i["content"]]
        calls = [(i["name"], json.loads(i["arguments"])) for i in body["output"] if i["type"] == "function_call"]
        return (texts[0] if texts else None), calls
    if dialect == "anthropic":
        texts = [b["text"] for b in body["content"] if b["type"] == "text"]
        return (texts[0] if texts else None), [
            (b["name"], b["input"]) for b in body["content"] if b["type"] == "tool_use"
        ]
    parts = body["candidates"][0]["content"]["parts"]
    texts = [p["text"] for p in parts if "text" in p and not p.get("thought")]
    return (texts[0] if texts else None), [
        (p["functionCall"]["name"], p["functionCall"]["args"]) for p in parts if "functionCall" in p
    ]


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_text_directive_answers_with_text_though_tools_are_offered(dialect):
    path, body = DIALECTS[dialect]
    assert outcome(dialect, whole(route(path, body("hi mock:text")))) == ("Echo: hi mock:text", [])
    assert outcome(dialect, whole(route(path, body("hi"))))[1][0][0] == "get_weather"


def test_text_directive_yields_to_a_required_call():
    required = whole(route("/v1/chat/completions", chat("hi mock:text", tools=[CHAT_TOOL], tool_choice="required")))
    assert required["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_tool_and_args_directives_call_that_tool_with_those_arguments(dialect):
    path, body = DIALECTS[dialect]
    made = whole(route(path, body(f"run it mock:tool=Bash mock:args={ARGS} please")))
    assert outcome(dialect, made) == (None, [("Bash", {"command": "echo relay-ok"})])
    # without arguments, the named tool's are built from its schema; an unknown name gets text
    assert outcome(dialect, whole(route(path, body("go mock:tool=Bash"))))[1] == [
        ("Bash", {"command": "go mock:tool=Bash", "timeout": 1.5})
    ]
    assert outcome(dialect, whole(route(path, body("go mock:tool=Nope")))) == ("Echo: go mock:tool=Nope", [])


def test_tool_directive_in_a_stream_and_after_the_tool_result():
    events = sse(route("/v1/messages", messages(f"mock:tool=Bash mock:args={ARGS}", tools=[BASH], stream=True)))
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta")
    assert json.loads(partial) == {"command": "echo relay-ok"}
    first = whole(route("/v1/messages", messages(f"mock:tool=Bash mock:args={ARGS}", tools=[BASH])))
    history = [
        {"role": "user", "content": f"mock:tool=Bash mock:args={ARGS}"},
        {"role": "assistant", "content": first["content"]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": first["content"][0]["id"], "content": "relay-ok\n"}],
        },
    ]
    after = whole(route("/v1/messages", messages(messages=history, tools=[BASH])))
    assert outcome("anthropic", after) == ("Tool said: relay-ok\n", [])


def test_a_named_tool_choice_wins_over_the_tool_directive():
    named = {"type": "function", "function": {"name": "get_weather"}}
    body = chat("mock:tool=Bash", tools=[CHAT_TOOL, _chat(BASH)], tool_choice=named)
    assert outcome("chat", whole(route("/v1/chat/completions", body)))[1][0][0] == "get_weather"
    none = chat("mock:tool=Bash", tools=[_chat(BASH)], tool_choice="none")
    assert outcome("chat", whole(route("/v1/chat/completions", none)))[1] == []


# ---- the last user turn, split over blocks and messages ------------------------------------------------------

REMINDER = "<system-reminder>\nToday's date is 2026-12-04.\n</system-reminder>"


def test_directives_are_read_across_the_blocks_of_the_last_user_message():
    blocks = [
        {"type": "text", "text": REMINDER},
        {"type": "text", "text": f"run mock:tool=Bash mock:args={ARGS}", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": REMINDER},
    ]
    made = whole(route("/v1/messages", messages(messages=[{"role": "user", "content": blocks}], tools=[BASH])))
    assert outcome("anthropic", made)[1] == [("Bash", {"command": "echo relay-ok"})]
    parts = [{"text": REMINDER}, {"text": "mock:text"}]
    made = whole(route(GENERATE, gemini(contents=[{"role": "user", "parts": parts}], tools=[_gemini(BASH)])))
    assert outcome("gemini", made) == (f"Echo: {REMINDER} mock:text", [])


def test_directives_are_read_across_the_user_messages_of_the_last_turn():
    codex = [
        {"role": "developer", "content": "You are Codex."},
        {"role": "user", "content": [{"type": "input_text", "text": "<environment_context/> mock:chunks=2"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "say hi mock:text"}]},
    ]
    answer = route("/v1/responses", responses(input=codex, tools=[_responses(BASH)]))
    assert outcome("responses", whole(answer)) == ("Echo: say hi mock:text", [])
    assert answer.reply is not None and answer.reply.chunks == 2
    in_place = [
        {"role": "user", "content": "mock:tool=Bash"},
        {"role": "system", "content": "the environment"},
        {"role": "user", "content": f"mock:args={ARGS}"},
    ]
    made = whole(route("/v1/chat/completions", chat(messages=in_place, tools=[_chat(BASH)])))
    assert outcome("chat", made)[1] == [("Bash", {"command": "echo relay-ok"})]
    contents = [{"role": "user", "parts": [{"text": "mock:tool=Bash"}]}, {"role": "user", "parts": [{"text": "x"}]}]
    made = whole(route(GENERATE, gemini(contents=contents, tools=[_gemini(BASH)])))
    assert outcome("gemini", made)[1] == [("Bash", {"command": "x", "timeout": 1.5})]
    earlier = [
        {"role": "user", "content": "mock:text"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "now"},
    ]
    assert outcome("anthropic", whole(route("/v1/messages", messages(messages=earlier, tools=[BASH]))))[1]


# ---- Codex: tools in additional_tools items, namespaces, a custom exec tool ---------------------------------

EXEC = {
    "type": "custom",
    "name": "exec",
    "description": "Run JavaScript",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: SOURCE\nSOURCE: /[\\s\\S]+/\n"},
}
WAIT = {
    "type": "function",
    "name": "wait",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"cell_id": {"type": "string"}, "yield_time_ms": {"type": "number"}},
        "required": ["cell_id"],
        "additionalProperties": False,
    },
}
SLEEP = {
    "type": "function",
    "name": "sleep",
    "parameters": {
        "type": "object",
        "properties": {"duration_ms": {"type": "integer", "minimum": 1}},
        "required": ["duration_ms"],
    },
}
CODEX_TOOLS = [
    {"type": "namespace", "name": "functions", "description": "", "tools": [EXEC, WAIT]},
    {"type": "namespace", "name": "clock", "description": "", "tools": [SLEEP]},
]


def codex(prompt: str, *after: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    """A body shaped like the one Codex CLI 0.171 sends (its tools in an ``additional_tools`` item)."""
    return {
        "model": "gpt-6.2-sol",
        "stream": stream,
        "input": [
            {"type": "additional_tools", "id": "at_1", "role": "developer", "tools": CODEX_TOOLS},
            {
                "type": "message",
                "id": "msg_1",
                "role": "developer",
                "content": [{"type": "input_text", "text": "You are Codex."}],
            },
            {
                "type": "message",
                "id": "msg_2",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "<environment_context>\n  <cwd>/tmp</cwd>\n</environment_context>"}
                ],
            },
            {"type": "message", "id": "msg_3", "role": "user", "content": [{"type": "input_text", "text": prompt}]},
            *after,
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "low", "context": "all_turns"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "01a241eb",
        "text": {"verbosity": "low"},
        "client_metadata": {"x-codex-installation-id": "i", "session_id": "s"},
    }


SCRIPT = 'const r = await tools.exec_command({cmd: "echo relay-ok"}); text(r);'


def test_codex_custom_exec_tool_round_trip():
    prompt = f"run it mock:tool=exec mock:args={orjson.dumps({'input': SCRIPT}).decode()}"
    first = whole(route("/v1/responses", codex(prompt)))
    openai.types.responses.Response.model_validate(first)
    reasoning, call = first["output"]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"]
    assert call["type"] == "custom_tool_call" and call["id"].startswith("ctc_")
    assert (call["name"], call["namespace"], call["input"]) == ("exec", "functions", SCRIPT)
    output = {
        "type": "custom_tool_call_output",
        "call_id": call["call_id"],
        "output": [{"type": "input_text", "text": "Script completed"}, {"type": "input_text", "text": "relay-ok"}],
    }
    reasoning = {**reasoning, "content": None}  # Codex sends it back so
    second = whole(route("/v1/responses", codex(prompt, reasoning, call, output)))
    assert second["status"] == "completed"
    assert second["output"][-1]["content"][0]["text"] == "Tool said: Script completed relay-ok"


def test_codex_namespaced_function_by_either_name_and_custom_input_by_default():
    for name in ("clock__sleep", "sleep"):
        made = whole(route("/v1/responses", codex(f"nap mock:tool={name}")))
        call = made["output"][-1]
        assert (call["type"], call["name"], call["namespace"]) == ("function_call", "sleep", "clock")
        assert json.loads(call["arguments"]) == {"duration_ms": 1}
    made = whole(route("/v1/responses", codex('go mock:tool=functions__exec mock:args={"code": 1}')))
    assert made["output"][-1]["input"] == '{"code":1}'  # no "input" string: the object's JSON
    made = whole(route("/v1/responses", codex("plain")))
    assert (made["output"][-1]["name"], made["output"][-1]["input"]) == ("exec", "plain")  # the first tool


def test_codex_stream_with_a_custom_call_validates_as_sdk_events():
    adapter = pydantic.TypeAdapter(openai.types.responses.ResponseStreamEvent)
    events = sse(route("/v1/responses", codex("mock:tool=exec mock:chunks=3", stream=True)))
    for name, data in events:
        assert name == data["type"]
        adapter.validate_python(data)
    deltas = [d["delta"] for n, d in events if n == "response.custom_tool_call_input.delta"]
    done = next(d for n, d in events if n == "response.custom_tool_call_input.done")
    assert len(deltas) == 3 and "".join(deltas) == done["input"] == "mock:tool=exec mock:chunks=3"
    finished = events[-1][1]["response"]["output"][-1]
    assert finished["type"] == "custom_tool_call" and finished["namespace"] == "functions"


# ---- Claude Code: system in place, reminders, Bash ---------------------------------------------------------


def test_claude_code_bash_round_trip_with_thinking_and_a_system_message_in_place():
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219,per-turn-control-2026-07-01"}
    prompt = [
        {"type": "text", "text": REMINDER},
        {"type": "text", "text": f"run mock:tool=Bash mock:args={ARGS}", "cache_control": {"type": "ephemeral"}},
    ]
    system = {"role": "system", "content": "# Environment", "output_config": {"effort": "medium"}}
    body = messages(
        messages=[{"role": "user", "content": prompt}, system],
        tools=[{"name": "Agent", "input_schema": {"type": "object"}}, BASH],
        thinking={"type": "adaptive", "display": "omitted"},
        output_config={"effort": "medium"},
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        metadata={"user_id": '{"device_id":"d","session_id":"s"}'},
        max_tokens=128000,
    )
    first = whole(route("/v1/messages", body, headers))
    anthropic.types.Message.model_validate(first)
    thinking, use = first["content"]
    assert signing.thinking_signature_ok(thinking["thinking"], thinking["signature"])
    assert (use["name"], use["input"]) == ("Bash", {"command": "echo relay-ok"})
    result = {
        "type": "tool_result",
        "tool_use_id": use["id"],
        "content": "relay-ok",
        "is_error": False,
        "cache_control": {"type": "ephemeral"},
    }
    body["messages"] += [{"role": "assistant", "content": first["content"]}, {"role": "user", "content": [result]}]
    second = whole(route("/v1/messages", body, headers))
    assert second["content"][-1] == {"type": "text", "text": "Tool said: relay-ok", "citations": None}


def test_gemini_tool_directive_keeps_its_thought_signature():
    body = gemini(
        f"mock:tool=Bash mock:args={ARGS}",
        tools=[_gemini(BASH)],
        generationConfig={"thinkingConfig": {"thinkingBudget": 1024}},
    )
    made = whole(route(GENERATE, body))
    gtypes.GenerateContentResponse.model_validate(made)
    (part,) = made["candidates"][0]["content"]["parts"]
    assert part["functionCall"]["args"] == {"command": "echo relay-ok"}
    assert signing.call_signature_ok("Bash", part["functionCall"]["args"], part["thoughtSignature"])


# ---- mock:rounds: several calls in one agent turn -----------------------------------------------------------

THINKING = {
    "chat": {"reasoning_effort": "low"},
    "responses": {"reasoning": {"effort": "low"}, "include": ["reasoning.encrypted_content"]},
    "anthropic": {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    "gemini": {"generationConfig": {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}},
}


def _send_back(dialect: str, body: dict[str, Any], answer: dict[str, Any], result: str) -> None:
    """Append ``answer`` to the history of ``body`` as it came, and ``result`` for each of its calls."""
    if dialect == "chat":
        message = answer["choices"][0]["message"]
        body["messages"].append(message)
        body["messages"] += [
            {"role": "tool", "tool_call_id": c["id"], "content": result} for c in message.get("tool_calls", [])
        ]
    elif dialect == "responses":
        body["input"] += answer["output"]
        body["input"] += [
            {"type": "function_call_output", "call_id": i["call_id"], "output": result}
            for i in answer["output"]
            if i["type"] == "function_call"
        ]
    elif dialect == "anthropic":
        body["messages"].append({"role": "assistant", "content": answer["content"]})
        results = [
            {"type": "tool_result", "tool_use_id": b["id"], "content": result}
            for b in answer["content"]
            if b["type"] == "tool_use"
        ]
        body["messages"] += [{"role": "user", "content": results}] if results else []
    else:
        content = answer["candidates"][0]["content"]
        body["contents"].append(content)
        replies = [
            {
                "functionResponse": {
                    "id": p["functionCall"]["id"],
                    "name": p["functionCall"]["name"],
                    "response": {"result": result},
                }
            }
            for p in content["parts"]
            if "functionCall" in p
        ]
        body["contents"] += [{"role": "user", "parts": replies}] if replies else []


def _reasoning(dialect: str, answer: dict[str, Any]) -> str:
    if dialect == "chat":
        return answer["choices"][0]["message"]["reasoning_content"]
    if dialect == "responses":
        return next(i["summary"][0]["text"] for i in answer["output"] if i["type"] == "reasoning")
    if dialect == "anthropic":
        return next(b["thinking"] for b in answer["content"] if b["type"] == "thinking")
    return next(p["text"] for p in answer["candidates"][0]["content"]["parts"] if p.get("thought"))


def agent_turn(dialect: str, prompt: str, *tools: dict[str, Any], history: Any = None) -> list[dict[str, Any]]:
    """One agent turn through the mock, reasoning on: each answer sent back as it came, each call answered with
    ``result N`` (N the step), until an answer calls nothing; the answers in order."""
    path, make = DIALECTS[dialect]
    body = make(prompt, **THINKING[dialect])
    if tools:
        body["tools"] = list(tools)
    if dialect == "responses":
        body["input"] = [*(history or []), {"role": "user", "content": prompt}]
    answers: list[dict[str, Any]] = []
    while not answers or outcome(dialect, answers[-1])[1]:
        assert len(answers) < 10, "the mock kept calling"
        answer = route(path, body)
        assert answer.status == 200, answer.body
        answers.append(whole(answer))
        _send_back(dialect, body, answers[-1], f"result {len(answers)}")
    return answers


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_rounds_directive_calls_again_until_the_turn_holds_that_many_results(dialect):
    answers = agent_turn(dialect, "Oslo mock:rounds=3")
    assert [[name for name, _ in outcome(dialect, a)[1]] for a in answers] == [["get_weather"]] * 3 + [[]]
    assert outcome(dialect, answers[-1])[0] == "Tool said: result 3"
    # each step after a result thinks about it and builds its call from it: every step's proof differs
    basis = ["Oslo mock:rounds=3", "result 1", "result 2", "result 3"]
    assert [_reasoning(dialect, a) for a in answers] == [f"Thinking about: {b}" for b in basis]
    assert [outcome(dialect, a)[1][0][1]["city"] for a in answers[:3]] == basis[:3]
    if dialect == "anthropic":
        signatures = [a["content"][0]["signature"] for a in answers]
        assert len(set(signatures)) == 4
    if dialect == "gemini":
        parts = [a["candidates"][0]["content"]["parts"] for a in answers[:3]]
        assert len({p["thoughtSignature"] for ps in parts for p in ps if "functionCall" in p}) == 3


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_without_rounds_a_tool_result_ends_the_turn_as_before(dialect):
    answers = agent_turn(dialect, "Oslo")
    assert [len(outcome(dialect, a)[1]) for a in answers] == [1, 0]
    assert outcome(dialect, answers[-1])[0] == "Tool said: result 1"
    assert _reasoning(dialect, answers[-1]) == "Thinking about: Oslo"  # not about the result
    assert len(agent_turn(dialect, "Oslo mock:rounds=1")) == 2
    assert len(agent_turn(dialect, "Oslo mock:rounds=0")) == 2  # the first call is the tools' usual one


def test_rounds_count_each_result_of_parallel_calls():
    answers = agent_turn("chat", "go mock:rounds=3 mock:parallel", CHAT_TOOL, _chat(BASH))
    assert [len(outcome("chat", a)[1]) for a in answers] == [2, 2, 0]  # 2 results, then 4: done
    assert outcome("chat", answers[-1])[0] == "Tool said: result 2"


def test_rounds_count_from_the_last_user_text():
    assert model.results_since_text([(True, 0), (False, 1), (False, 2), (True, 0), (False, 1)]) == 1
    assert model.results_since_text([(False, 3)]) == 3
    assert model.results_since_text([(False, 1), (True, 2)]) == 0  # a text message's own results come before it
    # a new question after a finished two-step turn gets two steps again
    first = agent_turn("responses", "a mock:rounds=2")
    history = [{"role": "user", "content": "a mock:rounds=2"}]
    body = {"input": history}
    for n, answer in enumerate(first, 1):
        _send_back("responses", body, answer, f"result {n}")
    assert len(agent_turn("responses", "b mock:rounds=2", history=body["input"])) == 3

"""IR ``system`` turns (instructions given mid-conversation): decoded in place, encoded as each dialect's nearest
equivalent (docs/conversions/README.md, "Instructions mid-conversation")."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relay.dialects import ir
from relay.dialects.anthropic import codec as anthropic
from relay.dialects.gemini import codec as gemini
from relay.dialects.openai.chat import codec as openai_chat
from relay.dialects.openai.responses import codec as openai_responses
from relay.errors import RelayError

INSTRUCTION = ir.Message("system", (ir.Text("Answer in French."),))
MARKED = "<system>\nAnswer in French.\n</system>"
CALL = ir.ToolCall(id="call_1", name="ls", arguments="{}")
RESULT = ir.ToolResult(call_id="call_1", name="ls", content=(ir.Text("a.txt"),))


def user(text: str) -> ir.Message:
    return ir.Message("user", (ir.Text(text),))


def assistant(*parts: ir.Part) -> ir.Message:
    return ir.Message("assistant", parts)


def request(*messages: ir.Message) -> ir.Request:
    return ir.Request(model="m", system=(ir.Text("Be brief."),), messages=messages)


def encoded(codec: Any, req: ir.Request, **options: Any) -> dict[str, Any]:
    return orjson.loads(codec.encode_request(req, "up", **options))


def anthropic_request(*messages: Any, **fields: Any) -> ir.Request:
    return anthropic.decode_request(orjson.dumps({"model": "c", "max_tokens": 64, "messages": messages, **fields}))


def refused(*messages: Any) -> RelayError:
    with pytest.raises(RelayError) as caught:
        anthropic_request(*messages)
    assert caught.value.status == 400
    return caught.value


# ---- decoding -------------------------------------------------------------------------------------------


def test_anthropic_system_messages_stay_in_place_and_leading_ones_join_the_system_prompt():
    req = anthropic_request(
        {"role": "system", "content": "Leading."},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "Answer in French.", "cache_control": {}}]},
        {"role": "user", "content": "again"},
        system="Be brief.",
    )
    assert req.system == (ir.Text("Be brief."), ir.Text("Leading."))
    assert req.messages == (user("hi"), INSTRUCTION, user("again"))


def test_clear_at_next_user_message_hides_the_message_once_a_user_message_follows():
    cleared = {"role": "system", "content": "Only this turn.", "clear_at": "next_user_message"}
    shown = anthropic_request({"role": "user", "content": "hi"}, cleared)
    assert shown.messages == (user("hi"), ir.Message("system", (ir.Text("Only this turn."),)))
    gone = anthropic_request({"role": "user", "content": "hi"}, cleared, {"role": "user", "content": "again"})
    assert gone.messages == (user("hi"), user("again"))
    kept = anthropic_request({"role": "user", "content": "hi"}, {**cleared, "clear_at": "never"}, user_turn("x"))
    assert kept.messages[1] == ir.Message("system", (ir.Text("Only this turn."),))


def user_turn(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_a_per_turn_effort_after_the_last_message_is_the_answers_effort():
    statement = {"role": "system", "content": [], "output_config": {"effort": "low"}}
    req = anthropic_request(user_turn("hi"), statement, output_config={"effort": "high"})
    assert req.messages == (user("hi"),)  # a statement with no text is no turn
    assert req.reasoning == ir.ReasoningConfig(effort="low")
    earlier = anthropic_request(user_turn("hi"), statement, {"role": "assistant", "content": "ok"}, user_turn("x"))
    assert earlier.reasoning is None  # it applied to the answer already given


@pytest.mark.parametrize(
    ("message", "words", "param"),
    [
        (
            {"role": "tool", "content": "x"},
            'messages.1: Unexpected role "tool". The input message role must be "user" or "assistant"',
            "messages[1].role",
        ),
        (
            {"role": "system", "content": [{"type": "image", "source": {}}]},
            'messages.1.content.0: text-only role "system" messages require text blocks',
            "messages[1].content[0].type",
        ),
        (
            {"role": "system", "content": [{"type": "tool_addition", "tool": {}}]},
            "messages.1.content.0: tool_addition and tool_removal blocks (mid-conversation tool changes) are not "
            "supported on this model",
            "messages[1].content[0].type",
        ),
        (
            {"role": "system", "content": "x", "output_config": {"timing": {"now": 1}}},
            "messages.1.output_config.timing: Extra inputs are not permitted",
            "messages[1].output_config.timing",
        ),
        (
            {"role": "system", "content": "x", "clear_at": "later"},
            "messages.1.clear_at: Input should be 'next_user_message' or 'never'",
            "messages[1].clear_at",
        ),
    ],
)
def test_anthropic_refusals_of_system_messages_in_anthropics_words(message, words, param):
    error = refused(user_turn("hi"), message)
    assert error.message.startswith(words) and error.param == param


def test_chat_and_responses_clients_later_system_messages_are_system_turns():
    chat = openai_chat.decode_request(
        orjson.dumps(
            {"model": "m", "messages": [user_turn("hi"), {"role": "developer", "content": "Answer in French."}]}
        )
    )
    assert chat.messages == (user("hi"), INSTRUCTION)
    items = [user_turn("hi"), {"type": "message", "role": "developer", "content": "Answer in French."}]
    responses = openai_responses.decode_request(orjson.dumps({"model": "m", "input": items}))
    assert responses.messages == (user("hi"), INSTRUCTION)


# ---- encoding -------------------------------------------------------------------------------------------


def test_chat_a_system_message_in_place_after_the_tool_messages_it_would_split():
    body = encoded(
        openai_chat, request(user("hi"), INSTRUCTION, assistant(CALL), INSTRUCTION, ir.Message("user", (RESULT,)))
    )
    assert [(m["role"], m.get("content")) for m in body["messages"]] == [
        ("system", "Be brief."),
        ("user", "hi"),
        ("system", "Answer in French."),
        ("assistant", None),
        ("tool", "a.txt"),  # the tool message right after the call, as Chat wants it
        ("system", "Answer in French."),
    ]


def test_responses_a_developer_message_in_place():
    body = encoded(openai_responses, request(user("hi"), INSTRUCTION, user("again")))
    assert body["instructions"] == "Be brief."
    assert body["input"] == [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "message", "role": "developer", "content": "Answer in French."},
        {"type": "message", "role": "user", "content": "again"},
    ]


def test_gemini_marked_user_text_in_place_not_in_the_system_instruction():
    body = encoded(gemini, request(user("hi"), assistant(ir.Text("ok")), INSTRUCTION, user("again")))
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "ok"}]},
        {"role": "user", "parts": [{"text": MARKED}, {"text": "again"}]},
    ]


def test_gemini_tool_results_stay_first_in_their_turn():
    body = encoded(gemini, request(user("hi"), assistant(CALL), INSTRUCTION, ir.Message("user", (RESULT,))))
    last = body["contents"][-1]["parts"]
    assert "functionResponse" in last[0] and last[1] == {"text": MARKED}


def test_anthropic_marked_user_text_for_another_dialects_client():
    body = encoded(anthropic, request(user("hi"), assistant(CALL), INSTRUCTION, ir.Message("user", (RESULT,))))
    assert body["system"] == "Be brief."
    last = body["messages"][-1]
    assert last["role"] == "user"
    assert [b["type"] for b in last["content"]] == ["tool_result", "text"]  # results first, as Anthropic wants
    assert last["content"][1]["text"] == MARKED


def test_anthropic_a_system_message_kept_for_an_anthropic_client():
    body = encoded(anthropic, request(user("hi"), INSTRUCTION, user("again")), same_dialect=True)
    assert body["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "again"},
    ]


def test_an_empty_system_turn_is_not_sent():
    empty = ir.Message("system", (ir.Text(""),))
    for codec in (openai_chat, openai_responses, gemini, anthropic):
        body = encoded(codec, request(user("hi"), empty))
        assert "<system>" not in orjson.dumps(body).decode()
        turns = body.get("messages") or body.get("input") or body.get("contents")
        assert all(m.get("role") != "developer" for m in turns)
    chat = encoded(openai_chat, request(user("hi"), empty))
    assert [m["role"] for m in chat["messages"]] == ["system", "user"]

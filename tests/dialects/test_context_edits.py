"""Anthropic's ``context_management`` edits applied by Relay for a non-Anthropic channel (``context_edits``)."""

from __future__ import annotations

from typing import Any

import pytest

from relay.dialects import context_edits, ir
from relay.dialects.anthropic import codec as anthropic
from relay.errors import RelayError


def _request(turns: int, **extra: Any) -> ir.Request:
    """``turns`` rounds of thinking + a tool call + its result, then a user question."""
    messages: list[ir.Message] = []
    for i in range(turns):
        messages.append(
            ir.Message(
                "assistant",
                (
                    ir.Reasoning(text=f"thought {i}", signature=f"sig{i}", dialect="anthropic"),
                    ir.ToolCall(id=f"call_{i}", name="Read" if i % 2 else "Bash", arguments=f'{{"n": {i}}}'),
                ),
            )
        )
        messages.append(ir.Message("user", (ir.ToolResult(f"call_{i}", None, (ir.Text("x" * 400),)),)))
    messages.append(ir.Message("user", (ir.Text("and now?"),)))
    return ir.Request(model="m", system=(), messages=tuple(messages), extra={"context_management": extra})


def _thoughts(req: ir.Request) -> list[str]:
    return [p.text for m in req.messages for p in m.parts if isinstance(p, ir.Reasoning)]


def _results(req: ir.Request) -> list[str]:
    return [p.content[0].text for m in req.messages for p in m.parts if isinstance(p, ir.ToolResult)]  # type: ignore[union-attr]


def test_claude_codes_keep_all_changes_nothing_and_the_field_goes() -> None:
    req = _request(3, edits=[{"type": "clear_thinking_20251015", "keep": "all"}])
    done = context_edits.apply(req)
    assert done.messages == req.messages and "context_management" not in done.extra
    anthropic.require_kept(done)  # nothing left that a conversion would drop


def test_clear_thinking_keeps_the_last_turns() -> None:
    edit = {"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 2}}
    assert _thoughts(context_edits.apply(_request(4, edits=[edit]))) == ["thought 2", "thought 3"]
    assert _thoughts(context_edits.apply(_request(4, edits=[{"type": "clear_thinking_20251015"}]))) == ["thought 3"]


def test_clear_tool_uses_past_the_trigger_keeps_the_last_uses_and_excluded_tools() -> None:
    edit = {
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "tool_uses", "value": 3},
        "keep": {"type": "tool_uses", "value": 1},
        "exclude_tools": ["Read"],
        "clear_tool_inputs": True,
    }
    done = context_edits.apply(_request(4, edits=[edit]))
    # calls 0 and 2 are Bash (cleared), 1 is Read (excluded), 3 is the last one (kept)
    assert _results(done) == [context_edits.CLEARED, "x" * 400, context_edits.CLEARED, "x" * 400]
    args = [p.arguments for m in done.messages for p in m.parts if isinstance(p, ir.ToolCall)]
    assert args == ["{}", '{"n": 1}', "{}", '{"n": 3}']
    below = context_edits.apply(_request(2, edits=[edit]))  # two uses: under the trigger
    assert _results(below) == ["x" * 400] * 2


def test_clear_at_least_that_cannot_be_met_clears_nothing() -> None:
    edit = {
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "tool_uses", "value": 1},
        "keep": {"type": "tool_uses", "value": 0},
        "clear_at_least": {"type": "input_tokens", "value": 1_000_000},
    }
    assert _results(context_edits.apply(_request(3, edits=[edit]))) == ["x" * 400] * 3


def test_compaction_below_its_trigger_is_nothing_and_above_it_a_400() -> None:
    assert context_edits.apply(_request(1, edits=[{"type": "compact_20260112"}])).messages
    edit = {"type": "compact_20260112", "trigger": {"type": "input_tokens", "value": 10}}
    with pytest.raises(RelayError) as raised:
        context_edits.apply(_request(3, edits=[edit]))
    assert raised.value.status == 400 and raised.value.param == "context_management.edits.0"


@pytest.mark.parametrize(
    "config",
    [
        "all",
        {"edits": "x"},
        {"edits": [{"type": "clear_everything"}]},
        {"edits": [{"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": -1}}]},
        {"edits": [{"type": "clear_tool_uses_20250919", "exclude_tools": "Bash"}]},
    ],
)
def test_a_malformed_config_is_a_400_naming_it(config: Any) -> None:
    req = ir.Request(model="m", system=(), messages=(), extra={"context_management": config})
    with pytest.raises(RelayError) as raised:
        context_edits.apply(req)
    assert raised.value.status == 400 and (raised.value.param or "").startswith("context_management")

"""Anthropic's ``context_management`` edits, applied by Relay when the channel is not Anthropic's.

An Anthropic client (Claude Code sends ``{"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}`` on
every request) asks the server to prune the conversation before the model reads it. An Anthropic upstream does
that itself (the request passes through); any other upstream has no such parameter, so Relay applies the edits to
the request before converting it, as Anthropic documents them:

- ``clear_thinking_20251015``: thinking is removed from every assistant turn but the last ``keep.value``
  (``thinking_turns``; 1 when ``keep`` is absent); ``keep: "all"`` keeps it all.
- ``clear_tool_uses_20250919``: once the input reaches ``trigger`` (``input_tokens``, 100,000 when absent, or a
  count of ``tool_uses``), the results of all but the last ``keep.value`` tool uses (3 when absent) are replaced by
  a short placeholder, except for ``exclude_tools``; ``clear_tool_inputs`` (true, or a list of tool names) empties
  their calls' arguments too; with ``clear_at_least``, nothing is cleared unless that many tokens would go.
- ``compact_20260112``: below its trigger (150,000 input tokens when absent) it changes nothing; above it, a 400:
  compaction needs a summary written by a model, which Relay does not do on a converted path.

Input tokens are Relay's estimate (``estimate.input_tokens``), not the upstream's count. The answer does not carry
Anthropic's ``context_management.applied_edits`` report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from relay.dialects import estimate, ir
from relay.dialects.common import bad_request

FIELD = "context_management"
#: What a cleared tool result reads.
CLEARED = "[tool result cleared to save context]"
TOOL_USES_TRIGGER = 100_000
TOOL_USES_KEEP = 3
THINKING_KEEP = 1
COMPACT_TRIGGER = 150_000


def apply(req: ir.Request) -> ir.Request:
    """``req`` with its ``context_management`` edits applied and the field gone; a 400 for an edit it cannot do."""
    config = req.extra.get(FIELD)
    if config is None:
        return req
    extra = {k: v for k, v in req.extra.items() if k != FIELD}
    if not isinstance(config, Mapping):
        raise bad_request(f"{FIELD}: Input should be a valid dictionary", FIELD)
    edits = config.get("edits", [])
    if not isinstance(edits, list):
        raise bad_request(f"{FIELD}.edits: Input should be a valid list", f"{FIELD}.edits")
    messages = req.messages
    for i, edit in enumerate(edits):
        path = f"{FIELD}.edits.{i}"
        if not isinstance(edit, Mapping):
            raise bad_request(f"{path}: Input should be a valid dictionary", path)
        kind = edit.get("type")
        if kind == "clear_thinking_20251015":
            messages = _clear_thinking(messages, _keep_turns(edit.get("keep"), f"{path}.keep"))
        elif kind == "clear_tool_uses_20250919":
            messages = _clear_tool_uses(attrs.evolve(req, messages=messages), edit, path)
        elif kind == "compact_20260112":
            trigger = _amount(edit.get("trigger"), ("input_tokens",), f"{path}.trigger", COMPACT_TRIGGER)[1]
            if estimate.input_tokens(attrs.evolve(req, messages=messages)) >= trigger:
                raise bad_request(
                    f"{path}: compaction cannot be converted: the API of the channel serving this model has no "
                    "equivalent (send it to an Anthropic model, or compact the conversation yourself)",
                    path,
                )
        else:
            raise bad_request(
                f"{path}.type: Input tag {kind!r} found using 'type' does not match any of the expected tags",
                f"{path}.type",
            )
    return attrs.evolve(req, messages=messages, extra=extra)


def _amount(value: Any, kinds: tuple[str, ...], path: str, default: int) -> tuple[str, int]:
    """A ``{"type": kind, "value": n}`` setting as (kind, n); ``default`` (of the first kind) when absent."""
    if value is None:
        return kinds[0], default
    if not isinstance(value, Mapping) or value.get("type") not in kinds:
        raise bad_request(f"{path}: Input should be an object with 'type' one of {', '.join(kinds)}", path)
    n = value.get("value")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise bad_request(f"{path}.value: Input should be a non-negative integer", f"{path}.value")
    return value["type"], n


def _keep_turns(keep: Any, path: str) -> int | None:
    """How many of the last assistant turns keep their thinking; None: all."""
    if keep == "all" or (isinstance(keep, Mapping) and keep.get("type") == "all"):
        return None
    return _amount(keep, ("thinking_turns",), path, THINKING_KEEP)[1]


def _clear_thinking(messages: tuple[ir.Message, ...], keep: int | None) -> tuple[ir.Message, ...]:
    if keep is None:
        return messages
    turns = [i for i, m in enumerate(messages) if m.role == "assistant"]
    kept = set(turns[len(turns) - keep :]) if keep else set()
    return tuple(
        attrs.evolve(m, parts=tuple(p for p in m.parts if not isinstance(p, ir.Reasoning)))
        if m.role == "assistant" and i not in kept
        else m
        for i, m in enumerate(messages)
    )


def _clear_tool_uses(req: ir.Request, edit: Mapping[str, Any], path: str) -> tuple[ir.Message, ...]:
    trigger_kind, trigger = _amount(
        edit.get("trigger"), ("input_tokens", "tool_uses"), f"{path}.trigger", TOOL_USES_TRIGGER
    )
    keep = _amount(edit.get("keep"), ("tool_uses",), f"{path}.keep", TOOL_USES_KEEP)[1]
    least = _amount(edit.get("clear_at_least"), ("input_tokens",), f"{path}.clear_at_least", 0)[1]
    exclude = edit.get("exclude_tools") or []
    inputs = edit.get("clear_tool_inputs") or False
    if not isinstance(exclude, list) or not all(isinstance(name, str) for name in exclude):
        raise bad_request(f"{path}.exclude_tools: Input should be a valid list of strings", f"{path}.exclude_tools")
    if not isinstance(inputs, bool | list):
        raise bad_request(f"{path}.clear_tool_inputs: Input should be a boolean or a list", f"{path}.clear_tool_inputs")
    calls = [part for m in req.messages if m.role == "assistant" for part in m.parts if isinstance(part, ir.ToolCall)]
    before = estimate.input_tokens(req)
    if (before if trigger_kind == "input_tokens" else len(calls)) < trigger:
        return req.messages
    older = calls[: max(0, len(calls) - keep)]  # the last ``keep`` uses stay, whatever their tool
    cleared = {call.id: call.name for call in older if call.name not in exclude}
    if not cleared:
        return req.messages

    def clears_input(name: str) -> bool:
        return inputs is True or (isinstance(inputs, list) and name in inputs)

    def edit_part(part: ir.Part) -> ir.Part:
        if isinstance(part, ir.ToolResult) and part.call_id in cleared:
            return attrs.evolve(part, content=(ir.Text(CLEARED),))
        if isinstance(part, ir.ToolCall) and part.id in cleared and clears_input(part.name):
            return attrs.evolve(part, arguments="{}")
        return part

    messages = tuple(attrs.evolve(m, parts=tuple(edit_part(p) for p in m.parts)) for m in req.messages)
    if least and before - estimate.input_tokens(attrs.evolve(req, messages=messages)) < least:
        return req.messages
    return messages

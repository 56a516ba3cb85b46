"""Anthropic's ``{"role": "system"}`` messages inside ``messages`` (beta ``mid-conversation-system-…``), decoded.

Claude Code sends them in the middle of a conversation. A request passed through to an Anthropic channel keeps
them untouched (with the client's ``anthropic-beta`` header); for another dialect ``decode_turns`` reads them into
the IR's ``system`` turns, in place. Choices made on the users' behalf (docs/conversions/anthropic.md):

- Leading ``system`` messages (before any user or assistant message) join the top-level ``system``.
- ``content``: a string or ``text`` blocks (their ``cache_control`` is not kept). ``tool_addition`` and
  ``tool_removal`` blocks (mid-conversation tool changes) are a 400 that Claude Code reads as "tool changes not
  supported on this model"; other blocks a 400 in Anthropic's words for a system message that is not text-only.
- ``clear_at: "next_user_message"``: the message is shown only until a later user message exists, as Anthropic
  does; after one, it is dropped. ``"never"`` (the default) keeps it.
- ``output_config.effort`` applies to one turn: the last such effort *after* the last user or assistant message
  is the effort of the answer asked for (it replaces the request's); earlier ones applied to answers already
  given and are dropped. Any other ``output_config`` field is a 400 (``Extra inputs are not permitted``).
- An empty message (no text, no per-turn setting) is no turn. Unknown roles are a 400 in Anthropic's words
  (``messages.N: Unexpected role "X". …``), which Claude Code reads as a refused mid-conversation system message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from relay.dialects import ir
from relay.dialects.common import bad_request
from relay.errors import RelayError

__all__ = ["ROLES", "Turns", "decode_turns", "dotted", "unexpected_role"]

ROLES = ("user", "assistant", "system")
_EFFORT: dict[str, ir.Effort] = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
_CLEAR_AT = ("never", "next_user_message")
_TOOL_CHANGES = frozenset({"tool_addition", "tool_removal"})


def dotted(path: str) -> str:
    """Relay's parameter path in Anthropic's spelling: ``messages[1].content[0]`` → ``messages.1.content.0``."""
    return path.replace("[", ".").replace("]", "")


def unexpected_role(role: Any, path: str) -> RelayError:
    """Anthropic's wording for a role it does not take (``messages.N: Unexpected role "X". …``)."""
    shown = role if isinstance(role, str) else repr(role)
    message = (
        f'{dotted(path)}: Unexpected role "{shown}". The input message role must be "user" or "assistant" '
        '(or "system" for an instruction given mid-conversation)'
    )
    return bad_request(message, f"{path}.role")


class Turns:
    """A request's ``messages`` decoded: the leading system texts, the turns, and the answer's per-turn effort."""

    __slots__ = ("effort", "messages", "system")

    def __init__(self) -> None:
        self.system: list[ir.Text] = []
        self.messages: list[ir.Message] = []
        self.effort: ir.Effort | None = None


def decode_turns(raw: list[Any], decode_message: Callable[[Any, str], ir.Message]) -> Turns:
    """``messages`` → ``Turns``; ``decode_message(message, path)`` decodes a user or assistant message."""
    turns = Turns()
    last_user = max((i for i, m in enumerate(raw) if isinstance(m, dict) and m.get("role") == "user"), default=-1)
    for i, message in enumerate(raw):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"'{path}' must be an object", path)
        role = message.get("role")
        if role not in ROLES:
            raise unexpected_role(role, path)
        if role != "system":
            turns.messages.append(decode_message(message, path))
            turns.effort = None  # a per-turn effort before this message applied to an answer already given
            continue
        cleared = _clears(message, path) and i < last_user  # a later user message exists: no longer shown
        texts, effort = _system_message(message, path, shown=not cleared)
        if effort is not None:
            turns.effort = effort
        if not texts:
            continue
        if turns.messages:
            turns.messages.append(ir.Message("system", tuple(texts)))
        else:
            turns.system.extend(texts)
    return turns


def _clears(message: Mapping[str, Any], path: str) -> bool:
    """Whether the message is shown only until the next user message (``clear_at: next_user_message``)."""
    clear_at = message.get("clear_at")
    if clear_at is None:
        return False
    if clear_at not in _CLEAR_AT:
        where = dotted(path) + ".clear_at"
        raise bad_request(f"{where}: Input should be 'next_user_message' or 'never'", f"{path}.clear_at")
    return clear_at == "next_user_message"


def _system_message(message: Mapping[str, Any], path: str, *, shown: bool) -> tuple[list[ir.Text], ir.Effort | None]:
    """A system message's texts (none when it is no longer shown) and its per-turn effort."""
    effort = _per_turn_effort(message.get("output_config"), f"{path}.output_config")
    content = message.get("content")
    texts: list[ir.Text] = []
    if isinstance(content, str):
        texts = [ir.Text(content)] if content else []
    elif isinstance(content, list):
        for j, block in enumerate(content):
            texts.extend(_text_block(block, f"{path}.content[{j}]"))
    elif content is not None:
        raise bad_request(f"'{path}.content' must be a string or an array of text blocks", f"{path}.content")
    return (texts if shown else []), effort


def _text_block(block: Any, path: str) -> list[ir.Text]:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind in _TOOL_CHANGES:
        message = (
            f"{dotted(path)}: tool_addition and tool_removal blocks (mid-conversation tool changes) are not "
            "supported on this model: Relay cannot convert them for its API"
        )
        raise bad_request(message, f"{path}.type")
    if kind != "text":
        message = (
            f'{dotted(path)}: text-only role "system" messages require text blocks: '
            f"a block of type {kind!r} cannot be converted for this model"
        )
        raise bad_request(message, f"{path}.type")
    text = block.get("text")
    if not isinstance(text, str):
        raise bad_request(f"'{path}.text' must be a string", f"{path}.text")
    return [ir.Text(text)] if text else []


def _per_turn_effort(config: Any, path: str) -> ir.Effort | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        raise bad_request(f"'{path}' must be an object", path)
    for key, value in config.items():
        if key != "effort" and value is not None:
            where = f"{dotted(path)}.{key}"
            message = f"{where}: Extra inputs are not permitted (Relay cannot convert this per-turn setting)"
            raise bad_request(message, f"{path}.{key}")
    effort = config.get("effort")
    if effort is None:
        return None
    if effort not in _EFFORT:
        raise bad_request(f"'{path}.effort' must be low, medium, high, xhigh or max", f"{path}.effort")
    return _EFFORT[effort]

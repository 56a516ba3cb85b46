"""Instructions given mid-conversation (IR ``system`` turns), for the dialects that have no such turn.

Chat Completions and Responses have system/developer messages anywhere in a conversation, and Anthropic has
``{"role": "system"}`` messages behind a beta header; Gemini has only user and model turns, and an Anthropic
request Relay writes for another dialect's client carries no beta header. There, an instruction stays at its
place as user text marked as an instruction (``instruction_text``), rather than moving into the system prompt:
the model reads it where the client put it, and the prompt's prefix stays the same from one turn to the next
(so a provider's prompt cache keeps matching). docs/conversions/README.md says so for every pair.
"""

from __future__ import annotations

from relay.dialects import ir

__all__ = ["CLOSE", "OPEN", "instruction_text", "texts"]

#: The marks around an instruction's text in a user turn.
OPEN = "<system>\n"
CLOSE = "\n</system>"


def texts(message: ir.Message) -> list[str]:
    """The non-empty texts of a ``system`` turn (decoders put only ``Text`` parts in one)."""
    return [p.text for p in message.parts if isinstance(p, ir.Text) and p.text]


def instruction_text(message: ir.Message) -> str | None:
    """A ``system`` turn as one marked text for a user turn (its texts joined by a blank line); None when empty."""
    found = texts(message)
    return OPEN + "\n\n".join(found) + CLOSE if found else None

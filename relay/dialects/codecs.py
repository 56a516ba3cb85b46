"""The codec module of each dialect, by the dialect's name (``relay.dialects.ir.Dialect``)."""

from __future__ import annotations

from types import ModuleType

from relay.dialects import anthropic, gemini, ir, openai_chat, openai_responses

CODECS: dict[ir.Dialect, ModuleType] = {
    "openai_chat": openai_chat,
    "openai_responses": openai_responses,
    "anthropic": anthropic,
    "gemini": gemini,
}

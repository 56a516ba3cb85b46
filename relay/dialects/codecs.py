"""The codec module of each dialect, by the dialect's name (``relay.dialects.ir.Dialect``)."""

from __future__ import annotations

from types import ModuleType

from relay.dialects import ir
from relay.dialects.anthropic import codec as anthropic
from relay.dialects.gemini import codec as gemini
from relay.dialects.openai.chat import codec as openai_chat
from relay.dialects.openai.responses import codec as openai_responses

CODECS: dict[ir.Dialect, ModuleType] = {
    "openai_chat": openai_chat,
    "openai_responses": openai_responses,
    "anthropic": anthropic,
    "gemini": gemini,
}


def dialect_of(codec: ModuleType) -> ir.Dialect:
    """The dialect whose codec module ``codec`` is (the inverse of ``CODECS``)."""
    return next(dialect for dialect, module in CODECS.items() if module is codec)

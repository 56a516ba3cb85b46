"""Relay's refusals in the words Anthropic's own clients recognise, for the Anthropic dialect's error answers.

Anthropic's SDKs pick an exception by the status; Claude Code also reads the error ``type`` and the message to
decide how to recover: it compacts the conversation on "prompt is too long", drops its mid-conversation system
messages on "Unexpected role …", falls back to another model on a ``not_found_error`` or ``permission_error``
that says "model: …", stops sending a field on "… Extra inputs are not permitted", reads "credit balance is too
low" as a billing stop. Relay's errors keep their status and meaning; ``wording`` gives each class the words its
clients look for, keeping Relay's own account after them. docs/conversions/anthropic.md has the table.

The codec's decoder words its refusals this way itself where it can (``anthropic.system``); this module covers
the errors every dialect shares (keys, quota, routing, overload, the upstream's refusals).
"""

from __future__ import annotations

import re

__all__ = ["CONTEXT_PHRASES", "TYPE_BY_CODE", "wording"]

#: Relay's error codes whose Anthropic ``type`` is not the one its status gives.
TYPE_BY_CODE = {
    "overloaded": "overloaded_error",  # Relay at its in-flight cap (503), an upstream's 529
    "upstream_pool_exhausted": "overloaded_error",
    "insufficient_quota": "billing_error",
}
#: Codes of Relay's own refusals that name a parameter (the decoders' refusals have no code).
_OWN_PARAM_CODES = frozenset({"model_not_found", "model_not_allowed", "invalid_model_name", "unsupported_parameter"})
#: Words of a refusal for a prompt longer than the model's context, in each provider's and server's wording.
CONTEXT_PHRASES = (
    "prompt is too long",
    "input is too long",
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "context length",
    "maximum number of tokens allowed",
    "input token count",
)
_PATH_PREFIX = re.compile(r"[A-Za-z_][\w.\[\]-]*: ")


def wording(status: int, message: str, code: str | None, param: str | None = None) -> str:
    """The message an Anthropic client is told for Relay's error (its status, message, code and param)."""
    if code == "invalid_api_key":
        return "invalid x-api-key"
    if code == "missing_api_key":
        return f"x-api-key header is required ({message})"
    if status == 402:
        return f"Your credit balance is too low: {message}"
    if status in (400, 413) and _context_overflow(message, code):
        return f"prompt is too long: {message}"
    if code == "unsupported_parameter" and param:
        return f"{_dotted(param)}: Extra inputs are not permitted ({message})"
    if param and (code is None or code in _OWN_PARAM_CODES) and not _names(message, param):
        return f"{_dotted(param)}: {message}"
    return message


def _context_overflow(message: str, code: str | None) -> bool:
    lowered = message.lower()
    if "prompt is too long" in lowered:
        return False  # already in Anthropic's words
    return code == "context_length_exceeded" or any(phrase in lowered for phrase in CONTEXT_PHRASES)


def _dotted(path: str) -> str:
    return path.replace("[", ".").replace("]", "")


def _names(message: str, param: str) -> bool:
    """Whether a message starts by naming a parameter already (``'max_tokens' is …``, ``messages.1: …``)."""
    return message.startswith((f"'{param}'", f"'{_dotted(param)}'")) or _PATH_PREFIX.match(message) is not None

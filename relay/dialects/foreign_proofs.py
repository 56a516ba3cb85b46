"""Relay's reasoning envelopes in a request that passes through unconverted: unwrapped, or dropped.

A client that switched channels (or was failed over) keeps in its history the proofs another provider made,
wrapped by Relay (``relay.dialects.envelope``). A request whose client and channel speak one dialect passes
through byte for byte, but never with those: ``stripped`` rewrites only the fields that hold envelopes, the
rest of the body untouched (``cache_control``, server tools and every other field the IR has no slot for
stay). A proof of the channel's own dialect is put back in its native field; another's is dropped with the
reasoning or empty block that carried it, as a conversion drops it. An invalid envelope is a 400, as when
the request is converted.

- Anthropic: a ``thinking`` block whose ``signature`` is an envelope. When a dropped block was the first of
  the last assistant turn with ``tool_use`` blocks, ``thinking`` is turned off (Anthropic refuses such a turn
  with thinking on, as the Anthropic encoder knows).
- Gemini: a part's ``thoughtSignature``; a foreign one goes with its thought part (or its empty text part);
  a model turn left with calls but no signature gets ``skip_thought_signature_validator`` on its first.
- OpenAI Responses: a ``reasoning`` input item whose ``encrypted_content`` is an envelope.
- OpenAI Chat: ``reasoning_details`` entries of Relay's format, or holding an envelope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.dialects import envelope, ir
from relay.dialects.common import dumps_kept, load_object
from relay.dialects.gemini.contents import SKIP_SIGNATURE
from relay.dialects.openai.chat.reasoning import FORMAT

__all__ = ["in_body", "stripped"]


def in_body(
    dialect: ir.Dialect, body: bytes, payload: dict[str, Any] | None = None
) -> tuple[bytes, dict[str, Any]] | None:
    """``body`` (whose parsed ``payload`` the caller may already have) with Relay's envelopes unwrapped or
    dropped, as bytes and as its payload; None when it holds none (a byte search first: a body without
    ``envelope.MARK`` is not read at all)."""
    if envelope.MARK not in body:
        return None
    cleaned = stripped(dialect, payload if payload is not None else load_object(body))
    return None if cleaned is None else (dumps_kept(cleaned), cleaned)


def stripped(dialect: ir.Dialect, payload: dict[str, Any]) -> dict[str, Any] | None:
    """``payload`` with Relay's envelopes unwrapped (the channel's own proofs) or dropped; None when it has none."""
    return _STRIP[dialect](payload)


def _items(payload: dict[str, Any], key: str) -> list[Any] | None:
    value = payload.get(key)
    return value if isinstance(value, list) else None


def _rewritten(
    items: list[Any], key: str, wrapped: Callable[[Any], bool], rewrite: Callable[[dict[str, Any], list[Any], int], Any]
) -> list[Any] | None:
    """``items`` (messages, contents) with each one whose ``key`` list holds an envelope replaced by ``rewrite``'s
    answer (None: the item goes); None when none holds one."""
    out: list[Any] = []
    changed = False
    for i, item in enumerate(items):
        inner = item.get(key) if isinstance(item, dict) else None
        if not isinstance(inner, list) or not any(wrapped(x) for x in inner):
            out.append(item)
            continue
        changed = True
        new = rewrite(item, inner, i)
        if new is not None:
            out.append(new)
    return out if changed else None


# ---- Anthropic ---------------------------------------------------------------------------------------------


def _anthropic(payload: dict[str, Any]) -> dict[str, Any] | None:
    messages = _items(payload, "messages")
    out = None if messages is None else _rewritten(messages, "content", _wrapped_thinking, _anthropic_message)
    if out is None:
        return None
    cleaned = {**payload, "messages": out}
    if _last_calling_turn_unopened(out):
        cleaned.pop("thinking", None)
    return cleaned


def _anthropic_message(message: dict[str, Any], content: list[Any], i: int) -> Any:
    blocks = [n for j, b in enumerate(content) if (n := _anthropic_block(b, i, j)) is not None]
    return {**message, "content": blocks} if blocks else None


def _wrapped_thinking(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "thinking" and envelope.is_envelope(block.get("signature"))


def _anthropic_block(block: Any, i: int, j: int) -> Any:
    if not _wrapped_thinking(block):
        return block
    message = f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    proof = envelope.opened(block["signature"], f"messages[{i}].content[{j}].signature", message=message)
    if proof.dialect != "anthropic" or proof.kind != "reasoning":
        return None
    if proof.redacted is not None:
        return {"type": "redacted_thinking", "data": proof.redacted}
    text = proof.text if proof.text is not None else block.get("thinking", "")
    return {"type": "thinking", "thinking": text, "signature": proof.signature or ""}


def _last_calling_turn_unopened(messages: list[Any]) -> bool:
    """Whether the last assistant turn has tool_use blocks but does not start with (redacted) thinking."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "assistant":
            content = message.get("content")
            if not isinstance(content, list) or not content:
                return False
            kinds = [b.get("type") if isinstance(b, dict) else None for b in content]
            return "tool_use" in kinds and kinds[0] not in ("thinking", "redacted_thinking")
    return False


# ---- Gemini ------------------------------------------------------------------------------------------------

_SIGNATURE_KEYS = ("thoughtSignature", "thought_signature")
_CALL_KEYS = ("functionCall", "function_call")


def _gemini(payload: dict[str, Any]) -> dict[str, Any] | None:
    contents = _items(payload, "contents")
    out = None if contents is None else _rewritten(contents, "parts", _wrapped_part, _gemini_content)
    return None if out is None else {**payload, "contents": out}


def _gemini_content(content: dict[str, Any], parts: list[Any], i: int) -> Any:
    kept = [n for j, p in enumerate(parts) if (n := _gemini_part(p, f"contents[{i}].parts[{j}]")) is not None]
    calls = [k for k, p in enumerate(kept) if any(key in p for key in _CALL_KEYS)]
    if calls and not any(key in kept[k] for k in calls for key in _SIGNATURE_KEYS):
        kept[calls[0]] = {**kept[calls[0]], "thoughtSignature": SKIP_SIGNATURE}  # Gemini 3 wants one
    return {**content, "parts": kept} if kept else None


def _signature_key(part: Any) -> str | None:
    if not isinstance(part, dict):
        return None
    return next((k for k in _SIGNATURE_KEYS if envelope.is_envelope(part.get(k))), None)


def _wrapped_part(part: Any) -> bool:
    return _signature_key(part) is not None


def _gemini_part(part: Any, where: str) -> Any:
    key = _signature_key(part)
    if key is None:
        return part
    proof = envelope.opened(part[key], f"{where}.{key}")
    rest = {k: v for k, v in part.items() if k != key}
    if proof.dialect == "gemini" and proof.signature:
        return {**rest, key: proof.signature}
    if any(k in rest for k in _CALL_KEYS):
        return rest  # the call stays, without another provider's proof
    if rest.get("thought") is True or not rest.get("text"):
        return None  # another provider's reasoning (or the empty part that carried its proof)
    return rest


# ---- OpenAI Responses --------------------------------------------------------------------------------------


def _responses(payload: dict[str, Any]) -> dict[str, Any] | None:
    items = _items(payload, "input")
    if items is None or not any(_wrapped_reasoning(item) for item in items):
        return None
    out: list[Any] = []
    call_ids: dict[str, str] = {}  # call_id → the fc_ id a wrapped Responses proof gives back
    for i, item in enumerate(items):
        if not _wrapped_reasoning(item):
            out.append(item)
            continue
        proof = envelope.opened(item["encrypted_content"], f"input[{i}].encrypted_content")
        if proof.dialect != "openai_responses" or not proof.signature:
            continue
        if proof.kind == "call":
            if proof.call is not None:
                call_ids[proof.call] = proof.signature
            continue
        out.append({**item, "encrypted_content": proof.signature, **({"id": proof.id} if proof.id else {})})
    if call_ids:
        out = [_with_item_id(item, call_ids) for item in out]
    return {**payload, "input": out}


def _wrapped_reasoning(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("type") == "reasoning"
        and envelope.is_envelope(item.get("encrypted_content"))
    )


def _with_item_id(item: Any, call_ids: dict[str, str]) -> Any:
    if isinstance(item, dict) and item.get("type") == "function_call" and item.get("call_id") in call_ids:
        return {**item, "id": call_ids[item["call_id"]]}
    return item


# ---- OpenAI Chat -------------------------------------------------------------------------------------------


def _chat(payload: dict[str, Any]) -> dict[str, Any] | None:
    messages = _items(payload, "messages")
    out = None if messages is None else _rewritten(messages, "reasoning_details", _ours, _chat_message)
    return None if out is None else {**payload, "messages": out}


def _chat_message(message: dict[str, Any], details: list[Any], i: int) -> Any:
    for j, entry in enumerate(details):
        for key in ("signature", "data"):
            if isinstance(entry, dict) and envelope.is_envelope(entry.get(key)):
                envelope.opened(entry[key], f"messages[{i}].reasoning_details[{j}].{key}")  # a 400 when invalid
    kept = [d for d in details if not _ours(d)]
    rest = {k: v for k, v in message.items() if k != "reasoning_details"}
    return {**rest, "reasoning_details": kept} if kept else rest


def _ours(entry: Any) -> bool:
    """A ``reasoning_details`` entry Relay wrote: its format, or an envelope in it (a Chat upstream has no proof
    of its own to get back from one)."""
    return isinstance(entry, dict) and (
        entry.get("format") == FORMAT or any(envelope.is_envelope(entry.get(k)) for k in ("signature", "data"))
    )


_STRIP: dict[ir.Dialect, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    "anthropic": _anthropic,
    "gemini": _gemini,
    "openai_responses": _responses,
    "openai_chat": _chat,
}

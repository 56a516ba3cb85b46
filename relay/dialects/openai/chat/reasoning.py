"""Chat Completions ``reasoning_details``: other providers' reasoning state, for a Chat client and back.

Chat has no field of its own for a provider's proofs. Relay uses the shape OpenRouter made common, an array
of entries on the assistant message (or its stream deltas) for the reasoning other dialects made,
``reasoning_content`` staying the joined text of all reasoning:

- ``{"type": "reasoning.text", "text", "signature"?, "format": "relay-v1", "index"}``: one reasoning block,
  its proof (when it has one) in ``signature`` as Relay's envelope (``relay.dialects.envelope``);
- ``{"type": "reasoning.encrypted", "data", "format": "relay-v1", "index"}``: a proof with no text (Anthropic
  redacted thinking, a tool call's proof: Gemini's ``thoughtSignature`` on a call, a Responses ``fc_`` id).

``index`` numbers the entries of one message. A stream sends a block's text in fragments of one index (the
first with ``format``) and its signature as the last fragment, so the openai SDK's accumulator, which joins
the strings of fragments with one index, rebuilds each entry. Decoding reads the entries whose ``signature``
or ``data`` is an envelope, joined by index; a message with none keeps its ``reasoning_content`` as before.
"""

from __future__ import annotations

from typing import Any

from relay.dialects import envelope, ir

__all__ = ["FORMAT", "decode_details", "encode_details"]

DIALECT: ir.Dialect = "openai_chat"
FORMAT = "relay-v1"


def encode_details(parts: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The ``reasoning_details`` of an answer's parts (reasoning, and the proofs of tool calls), in order."""
    details: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ir.ToolCall):
            wrapped = envelope.call_envelope(part.signature, part.signature_dialect, part.id, DIALECT)
            if wrapped:
                details.append(encrypted(wrapped, len(details)))
        elif isinstance(part, ir.Reasoning) and foreign(part.dialect):
            wrapped = envelope.reasoning_envelope(part, DIALECT)
            if part.redacted is not None:
                if wrapped:
                    details.append(encrypted(wrapped, len(details)))
            elif part.text or wrapped:
                entry = text_entry(part.text, len(details))
                if wrapped:
                    entry["signature"] = wrapped
                details.append(entry)
    return details


def foreign(dialect: ir.Dialect | None) -> bool:
    """Whether reasoning of ``dialect`` gets ``reasoning_details`` (a Chat upstream's own stays as it was)."""
    return dialect is not None and dialect != DIALECT


def text_entry(text: str, index: int) -> dict[str, Any]:
    return {"type": "reasoning.text", "text": text, "format": FORMAT, "index": index}


def encrypted(wrapped: str, index: int) -> dict[str, Any]:
    return {"type": "reasoning.encrypted", "data": wrapped, "format": FORMAT, "index": index}


def decode_details(raw: Any, param: str) -> list[ir.Reasoning | envelope.Proof] | None:
    """A client's ``reasoning_details``: the reasoning and call proofs Relay's envelopes in it carry, in order.

    None when no entry carries an envelope (the message's ``reasoning_content`` is read as before). Fragments
    of one ``index`` are joined (a stream's, when the client kept them apart); entries without an envelope
    carry nothing another provider wants back and are left out.
    """
    if not isinstance(raw, list):
        return None
    texts: dict[int | str, list[str]] = {}
    proofs: dict[int | str, tuple[str, str]] = {}
    for j, entry in enumerate(raw):
        if not isinstance(entry, dict):
            continue
        index = entry.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = f"#{j}"  # no usable index: an entry of its own
        text = entry.get("text")
        texts.setdefault(index, []).extend([text] if isinstance(text, str) else [])
        for key in ("signature", "data"):
            if envelope.is_envelope(entry.get(key)):
                proofs[index] = (entry[key], f"{param}.reasoning_details[{j}].{key}")
    if not proofs:
        return None
    out: list[ir.Reasoning | envelope.Proof] = []
    for index, text in texts.items():
        if index in proofs:
            proof = envelope.opened(*proofs[index])
            out.append(proof if proof.kind == "call" else envelope.as_reasoning(proof, "".join(text)))
    return out

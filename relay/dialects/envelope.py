"""Reasoning state of one dialect carried by a client of another: one opaque, self-describing string.

An upstream's proofs (Anthropic thinking ``signature`` and ``redacted_thinking.data``, Gemini
``thoughtSignature``, OpenAI Responses ``encrypted_content`` with its ``rs_…`` id, a function call's ``fc_…``
id) must come back with the next turn, and only to the dialect that made them. A client of another dialect
has no field for them, but each has an opaque one of its own (Anthropic ``signature``, Responses
``encrypted_content``, Gemini ``thoughtSignature``, Chat ``reasoning_details``): Relay puts the foreign proof
there, wrapped, and unwraps it when the client sends it back (docs/conversions/README.md, "Reasoning state").

The wire format, version 1: standard base64 with padding (RFC 4648 §4) of
``b"RLY" + bytes([1]) + payload + tag``, where ``payload`` is compact JSON with short keys (absent ones
omitted) and ``tag`` the first 8 bytes of ``sha256(b"relay-envelope" + bytes([1]) + payload)``. Every
envelope's text therefore starts with ``UkxZ``. Payload keys: ``d`` the dialect that made the proof, ``k``
``reasoning`` or ``call``, ``s`` the signature (or encrypted content, or ``fc_…`` id), ``r`` redacted
thinking data, ``id`` the ``rs_…`` item id, ``c`` the call id a call proof belongs to, ``t`` the reasoning
text the proof signs, when the client's dialect keeps that text elsewhere (or not at all).

The tag is a checksum, not a keyed MAC, on purpose: every provider verifies its own proofs, so the tag only
guards against corruption and mis-routing. A forged envelope makes Relay send the provider what the client
could have sent it on a same-dialect path, nothing more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, Literal

import attrs
import orjson

from relay.dialects import ir
from relay.dialects.common import bad_request

__all__ = [
    "MAX_ENVELOPE",
    "PREFIX",
    "EnvelopeError",
    "Proof",
    "as_reasoning",
    "attach_calls",
    "call_envelope",
    "is_envelope",
    "opened",
    "reasoning_envelope",
    "settle",
    "unwrap",
    "wrap",
]

_MAGIC = b"RLY"
VERSION = 1
#: The text every envelope starts with: the base64 of ``RLY``.
PREFIX = "UkxZ"
#: The bytes a JSON body holding an envelope contains: a string that starts with ``PREFIX``.
MARK = b'"' + PREFIX.encode()
#: The longest envelope Relay reads, in characters (1 MiB): a longer one is refused with a 400.
MAX_ENVELOPE = 1 << 20
_TAG_BYTES = 8
_TAG_KEY = b"relay-envelope"
_DIALECTS = frozenset({"openai_chat", "openai_responses", "anthropic", "gemini"})
#: The dialects whose upstreams need the reasoning text back with the proof: Anthropic signs the thinking
#: text; a Chat upstream (DeepSeek, vLLM) wants its ``reasoning_content`` again during a tool loop.
NEEDS_TEXT = frozenset({"anthropic", "openai_chat"})
_URLSAFE = str.maketrans("-_", "+/")
_FIELDS = (("dialect", "d"), ("kind", "k"), ("signature", "s"), ("redacted", "r"), ("id", "id"), ("call", "c"))


class EnvelopeError(ValueError):
    """A string that starts like an envelope but is not a valid one (corrupt, truncated, another version)."""


@attrs.frozen
class Proof:
    """What an envelope carries: one proof of ``dialect``, for a reasoning part or for a tool call."""

    dialect: ir.Dialect
    kind: Literal["reasoning", "call"]
    signature: str | None = None
    redacted: str | None = None
    #: The Responses ``rs_…`` id of a reasoning item.
    id: str | None = None
    #: The id of the tool call a ``call`` proof belongs to, as the client saw it.
    call: str | None = None
    #: The reasoning text the proof signs, when the client keeps no copy of it next to the envelope.
    text: str | None = None


def wrap(proof: Proof) -> str:
    """The envelope of ``proof``: base64 text starting with ``UkxZ``."""
    fields: dict[str, Any] = {key: getattr(proof, name) for name, key in _FIELDS if getattr(proof, name) is not None}
    if proof.text is not None:
        fields["t"] = proof.text
    payload = orjson.dumps(fields)
    version = bytes([VERSION])
    tag = hashlib.sha256(_TAG_KEY + version + payload).digest()[:_TAG_BYTES]
    return base64.b64encode(_MAGIC + version + payload + tag).decode("ascii")


def is_envelope(value: Any) -> bool:
    """Whether ``value`` is a string that claims to be an envelope (``unwrap`` tells whether it is one).

    Its first 8 characters must decode to ``RLY``, a version byte and ``{"``: a provider's own base64 proof
    starts so by chance once in 2^40, where ``UkxZ`` alone would once in 2^24.
    """
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return False
    try:
        head = base64.b64decode(value[:8].translate(_URLSAFE), validate=True)
    except (binascii.Error, ValueError):
        return False
    return head[:3] == _MAGIC and head[4:6] == b'{"'


def unwrap(value: str) -> Proof:
    """The proof an envelope carries; ``EnvelopeError`` saying why when it is not a valid one.

    The URL-safe alphabet and missing padding are accepted too: the google-genai SDK decodes a
    ``thoughtSignature`` to bytes and sends it back URL-safe encoded.
    """
    if len(value) > MAX_ENVELOPE:
        raise EnvelopeError(f"the reasoning envelope is larger than {MAX_ENVELOPE // (1 << 20)} MiB")
    text = value.translate(_URLSAFE)
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("the reasoning envelope is not valid base64") from None
    if len(raw) < len(_MAGIC) + 1 + _TAG_BYTES or not raw.startswith(_MAGIC):
        raise EnvelopeError("the reasoning envelope is truncated")
    version = raw[len(_MAGIC)]
    if version != VERSION:
        raise EnvelopeError(f"the reasoning envelope has version {version}, which this Relay cannot read")
    payload, tag = raw[len(_MAGIC) + 1 : -_TAG_BYTES], raw[-_TAG_BYTES:]
    if hashlib.sha256(_TAG_KEY + bytes([version]) + payload).digest()[:_TAG_BYTES] != tag:
        raise EnvelopeError("the reasoning envelope was altered (its checksum does not match)")
    try:
        fields = orjson.loads(payload)
    except orjson.JSONDecodeError:
        fields = None
    if not isinstance(fields, dict):
        raise EnvelopeError("the reasoning envelope's payload is not a JSON object")
    return _proof(fields)


def _proof(fields: dict[str, Any]) -> Proof:
    dialect, kind = fields.get("d"), fields.get("k")
    if dialect not in _DIALECTS or kind not in ("reasoning", "call"):
        raise EnvelopeError("the reasoning envelope names no known dialect or kind")
    values: dict[str, Any] = {}
    for name, key in (*_FIELDS[2:], ("text", "t")):
        value = fields.get(key)
        if value is not None and not isinstance(value, str):
            raise EnvelopeError(f"the reasoning envelope's {key!r} is not a string")
        values[name] = value
    return Proof(dialect=dialect, kind=kind, **values)


# ---- what a client-facing encoder wraps -------------------------------------------------------------------


def reasoning_envelope(
    part: ir.Reasoning, client: ir.Dialect, *, with_text: bool = False, has_text: bool | None = None
) -> str | None:
    """The envelope of a reasoning part that another dialect than the client's made, or None.

    A part with no proof (a Chat upstream's ``reasoning_content``, Gemini thoughts without a signature) is
    wrapped too, its envelope naming only the dialect (and a Responses ``rs_`` id): its text goes back to
    that dialect alone, and a passthrough of the client's own dialect knows it for another's.
    None when the part is the client's own, of no known dialect, or empty.
    ``with_text``: the client keeps no copy of the reasoning text next to the envelope (Gemini, Responses),
    so the text goes inside when the proof's dialect needs it. ``has_text``: whether the reasoning has
    text, for a stream encoder that sent it without keeping it (default: whether ``part.text`` is set).
    """
    dialect = part.dialect
    if dialect is None or dialect == client:
        return None
    if part.redacted is not None:
        proof = Proof(dialect, "reasoning", redacted=part.redacted)
    elif part.signature:
        proof = Proof(dialect, "reasoning", signature=part.signature, id=part.id)
    elif part.id or (bool(part.text) if has_text is None else has_text):
        proof = Proof(dialect, "reasoning", id=part.id)  # no proof: the reasoning's origin
    else:
        return None
    if with_text and part.text and dialect in NEEDS_TEXT:
        proof = attrs.evolve(proof, text=part.text)
    return wrap(proof)


def call_envelope(signature: str | None, dialect: ir.Dialect | None, call_id: str, client: ir.Dialect) -> str | None:
    """The envelope of a tool call's proof made by another dialect than the client's (for call ``call_id``)."""
    if not signature or dialect is None or dialect == client:
        return None
    return wrap(Proof(dialect, "call", signature=signature, call=call_id))


# ---- what a client request decoder unwraps ---------------------------------------------------------------


def opened(value: str, param: str, *, message: str | None = None) -> Proof:
    """The proof of a client's envelope at ``param``; a 400 naming it (``message``, else why) when invalid."""
    try:
        return unwrap(value)
    except EnvelopeError as exc:
        raise bad_request(message or f"'{param}' is not a valid reasoning envelope: {exc}", param) from None


def as_reasoning(proof: Proof, text: str) -> ir.Reasoning:
    """The IR reasoning part of an unwrapped ``reasoning`` proof; ``text`` is what the client showed of it."""
    return ir.Reasoning(
        text=proof.text if proof.text is not None else text,
        signature=proof.signature,
        redacted=proof.redacted,
        dialect=proof.dialect,
        id=proof.id,
    )


def attach_calls(parts: list[ir.Part], proofs: dict[str, Proof]) -> list[ir.Part]:
    """``parts`` (one assistant turn) with each ``call`` proof on the tool call whose id it names.

    A proof whose call is not in the turn is dropped (the client removed the call).
    """
    if not proofs:
        return parts
    return [
        attrs.evolve(p, signature=proofs[p.id].signature, signature_dialect=proofs[p.id].dialect)
        if isinstance(p, ir.ToolCall) and p.id in proofs
        else p
        for p in parts
    ]


def settle(parts: list[ir.Part | Proof]) -> list[ir.Part]:
    """One assistant turn's decoded parts, its ``call`` proofs attached to their calls (``attach_calls``)."""
    proofs = {p.call: p for p in parts if isinstance(p, Proof) and p.call is not None}
    return attach_calls([p for p in parts if not isinstance(p, Proof)], proofs)

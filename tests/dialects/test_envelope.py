"""Relay's reasoning envelope: another dialect's proof in one opaque string, and back (relay.dialects.envelope)."""

from __future__ import annotations

import base64
import hashlib

import orjson
import pytest
from google.genai import _common as genai_common
from google.genai import types

from relay.dialects import envelope, ir
from relay.dialects.envelope import EnvelopeError, Proof
from relay.errors import RelayError

PROOFS = [
    Proof("anthropic", "reasoning", signature="EqQBCkYIBxgCKkD+/sig==", text="Let me think ☃"),
    Proof("anthropic", "reasoning", redacted="EmwKAhgBEgy3redacted"),
    Proof("openai_responses", "reasoning", signature="gAAAAABo-encrypted", id="rs_0123"),
    Proof("openai_responses", "call", signature="fc_0123", call="call_abc"),
    Proof("gemini", "call", signature="CiQBjz1rX/thought+sig==", call="toolu_01"),
    Proof("gemini", "reasoning", signature="Z2VtaW5p"),
    Proof("openai_chat", "reasoning", text="DeepSeek's reasoning_content"),
]


@pytest.mark.parametrize("proof", PROOFS)
def test_round_trip(proof: Proof) -> None:
    wrapped = envelope.wrap(proof)
    assert wrapped.startswith("UkxZ") and envelope.is_envelope(wrapped)
    raw = base64.b64decode(wrapped, validate=True)  # standard alphabet, padded (RFC 4648 §4)
    assert len(wrapped) % 4 == 0 and raw[:4] == b"RLY\x01"
    payload, tag = raw[4:-8], raw[-8:]
    assert tag == hashlib.sha256(b"relay-envelope\x01" + payload).digest()[:8]
    fields = orjson.loads(payload)
    assert fields["d"] == proof.dialect and fields["k"] == proof.kind
    assert None not in fields.values()  # absent keys are omitted
    assert envelope.unwrap(wrapped) == proof
    assert envelope.wrap(proof) == wrapped  # deterministic


def test_urlsafe_and_unpadded_are_read_too() -> None:
    wrapped = envelope.wrap(PROOFS[0])
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(wrapped)).decode().rstrip("=")
    assert urlsafe != wrapped
    assert envelope.unwrap(urlsafe) == PROOFS[0]


def test_survives_the_google_genai_bytes_round_trip() -> None:
    """google-genai reads a ``thoughtSignature`` as bytes and sends it back URL-safe encoded."""
    wrapped = envelope.wrap(PROOFS[0])
    part = types.Part.model_validate({"text": "", "thought_signature": wrapped})
    assert isinstance(part.thought_signature, bytes) and part.thought_signature.startswith(b"RLY\x01")
    sent = genai_common.encode_unserializable_types(part.model_dump(exclude_none=True))["thought_signature"]
    assert envelope.is_envelope(sent) and envelope.unwrap(sent) == PROOFS[0]


def _reencoded(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_a_changed_byte_is_refused() -> None:
    raw = bytearray(base64.b64decode(envelope.wrap(PROOFS[0])))
    for at in (6, len(raw) // 2, len(raw) - 1):  # in the payload, and in the tag
        changed = bytearray(raw)
        changed[at] ^= 0x01
        with pytest.raises(EnvelopeError, match="altered"):
            envelope.unwrap(_reencoded(bytes(changed)))


def test_another_version_is_refused() -> None:
    raw = bytearray(base64.b64decode(envelope.wrap(PROOFS[0])))
    raw[3] = 2
    with pytest.raises(EnvelopeError, match="version 2"):
        envelope.unwrap(_reencoded(bytes(raw)))


@pytest.mark.parametrize(
    "text",
    [
        "UkxZ",  # the magic alone
        "UkxZ!!!!",  # not base64
        "UkxZAQ==",  # magic and version, nothing else
        envelope.wrap(PROOFS[0])[:-12],  # cut
    ],
)
def test_broken_envelopes_are_refused(text: str) -> None:
    with pytest.raises(EnvelopeError):
        envelope.unwrap(text)


def test_a_valid_checksum_over_a_bad_payload_is_refused() -> None:
    for payload in (b"[]", b'{"d":"openai","k":"reasoning"}', b'{"d":"gemini","k":"call","s":1}', b"not json"):
        tag = hashlib.sha256(b"relay-envelope\x01" + payload).digest()[:8]
        with pytest.raises(EnvelopeError):
            envelope.unwrap(_reencoded(b"RLY\x01" + payload + tag))


def test_size_is_bounded() -> None:
    big = envelope.wrap(Proof("anthropic", "reasoning", signature="s" * (envelope.MAX_ENVELOPE)))
    with pytest.raises(EnvelopeError, match="larger than 1 MiB"):
        envelope.unwrap(big)
    with pytest.raises(RelayError) as refused:
        envelope.opened(big, "messages[1].content[0].signature")
    assert refused.value.status == 400 and refused.value.param == "messages[1].content[0].signature"


def test_what_is_wrapped_for_a_client() -> None:
    signed = ir.Reasoning("text", signature="sig", dialect="anthropic")
    assert envelope.reasoning_envelope(signed, "anthropic") is None  # the client's own: native
    assert envelope.unwrap(envelope.reasoning_envelope(signed, "gemini") or "") == Proof(
        "anthropic", "reasoning", "sig"
    )
    assert envelope.unwrap(envelope.reasoning_envelope(signed, "gemini", with_text=True) or "").text == "text"
    # a proof whose dialect does not need the text gets none
    gemini = ir.Reasoning("thought", signature="g", dialect="gemini")
    assert envelope.unwrap(envelope.reasoning_envelope(gemini, "openai_responses", with_text=True) or "").text is None
    # no proof: the origin alone (its text goes back to that dialect only)
    unsigned = envelope.reasoning_envelope(ir.Reasoning("no proof", dialect="gemini"), "anthropic")
    assert envelope.unwrap(unsigned or "") == Proof("gemini", "reasoning")
    assert envelope.reasoning_envelope(ir.Reasoning("", dialect="gemini"), "anthropic") is None  # nothing
    assert envelope.reasoning_envelope(ir.Reasoning("unknown"), "anthropic") is None
    assert envelope.call_envelope("fc_1", "openai_responses", "call_1", "openai_responses") is None
    assert envelope.call_envelope(None, "gemini", "call_1", "anthropic") is None
    assert envelope.unwrap(envelope.call_envelope("g", "gemini", "call_1", "anthropic") or "") == Proof(
        "gemini", "call", "g", call="call_1"
    )


def test_settle_puts_call_proofs_on_their_calls() -> None:
    parts: list[ir.Part | Proof] = [
        Proof("gemini", "call", "g1", call="a"),
        ir.ToolCall("a", "f", "{}"),
        ir.ToolCall("b", "f", "{}", signature="fc_b", signature_dialect="openai_responses"),
        Proof("gemini", "call", "g2", call="b"),
        Proof("gemini", "call", "lost", call="gone"),  # its call was removed: dropped
    ]
    assert envelope.settle(parts) == [
        ir.ToolCall("a", "f", "{}", signature="g1", signature_dialect="gemini"),
        ir.ToolCall("b", "f", "{}", signature="g2", signature_dialect="gemini"),
    ]


def test_a_providers_own_proof_that_starts_like_one_is_not_taken_for_one() -> None:
    native = base64.b64encode(b"RLY\x07\x00\x01" + bytes(range(60))).decode()  # "UkxZ…", but no JSON follows
    assert native.startswith(envelope.PREFIX) and not envelope.is_envelope(native)
    assert envelope.is_envelope(envelope.wrap(PROOFS[0]))
    assert envelope.is_envelope(_reencoded(b'RLY\x02{"d": 1}'))  # another version: taken for one, then refused

"""The mock's opaque reasoning tokens, verifiable without state: an HMAC with a fixed key.

- Anthropic ``thinking.signature``: an HMAC of the thinking text;
- Gemini ``thoughtSignature`` on a function call: an HMAC of the call's name and arguments;
- Responses ``encrypted_content`` of a reasoning item: the reasoning text and an HMAC of it.

A client must send each back byte for byte; anything changed fails verification, as it would at the
real provider. The key is fixed and public: this is a test double, not a security boundary.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

_KEY = b"relay-mock-signature-key/1"

#: Gemini's documented values that skip thought-signature validation (for history from elsewhere).
GEMINI_SKIP = frozenset({"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"})


def _mac(kind: str, message: bytes) -> bytes:
    return hmac.new(_KEY, kind.encode() + b"\0" + message, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def thinking_signature(thinking: str) -> str:
    """The ``signature`` of an Anthropic thinking block with this text."""
    return _b64(_mac("anthropic-thinking", thinking.encode()))


def thinking_signature_ok(thinking: str, signature: str) -> bool:
    return hmac.compare_digest(thinking_signature(thinking).encode(), signature.encode())


def _canonical(value: Any) -> Any:
    """JSON made comparable: object keys sorted (by orjson), whole floats as integers (a proto Struct's doubles)."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def call_signature(name: str, args: Any) -> str:
    """The ``thoughtSignature`` of a Gemini function call part."""
    message = name.encode() + b"\0" + orjson.dumps(_canonical(args), option=orjson.OPT_SORT_KEYS)
    return _b64(_mac("gemini-call", message))


def call_signature_ok(name: str, args: Any, signature: str) -> bool:
    """Whether ``signature`` is the one ``call_signature`` made; as bytes, so either base64 alphabet will do.

    The google-genai SDK decodes a ``thoughtSignature`` to bytes and sends it back URL-safe encoded.
    """
    if signature in GEMINI_SKIP:
        return True
    try:
        given = base64.urlsafe_b64decode(signature.replace("+", "-").replace("/", "_") + "=" * (-len(signature) % 4))
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(base64.b64decode(call_signature(name, args)), given)


def encrypted_reasoning(text: str) -> str:
    """The ``encrypted_content`` of a Responses reasoning item: the text and its MAC, base64."""
    return _seal(text.encode())


def decrypted_reasoning(blob: str) -> str | None:
    """The reasoning text ``encrypted_reasoning`` made ``blob`` from; None when it is not exactly that."""
    body, dot, mac = blob.removeprefix("gAAAAA").partition(".")
    if not blob.startswith("gAAAAA") or not dot:
        return None
    try:
        raw = base64.b64decode(body, validate=True)
        tag = base64.b64decode(mac, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(tag, _mac("responses-reasoning", raw)) or _seal(raw) != blob:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def _seal(raw: bytes) -> str:
    return "gAAAAA" + _b64(raw) + "." + _b64(_mac("responses-reasoning", raw))

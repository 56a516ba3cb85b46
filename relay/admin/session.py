"""Dashboard sessions: short-lived tokens that stand for an admin key, checked without any shared state.

A token is ``rs1.<name>.<role>.<expires>.<mac>``: the admin key's name (base64url), its role when the session
began, the Unix second it expires, and an HMAC-SHA256 of those three keyed by the admin key's SHA-256 digest (the
one Relay holds anyway). Every worker and every instance that knows the admin key can check it, with no session
table; changing or removing the admin key changes or drops its digest, which ends all of its sessions at once. The
role a session acts with is the lower of the one it carries and the key's role now. The dashboard keeps the token
in the tab's sessionStorage and sends it as ``Authorization: Bearer`` (no cookie, hence no CSRF).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import attrs

from relay.errors import RelayError

__all__ = ["PREFIX", "TTL", "Claim", "issue", "lower_role", "read", "verify"]

PREFIX = "rs1"
#: Seconds a session lasts (12 hours): a working day, after which the dashboard asks for the key again.
TTL = 12 * 3600
_CONTEXT = b"relay-dashboard-session\x00"
_ROLES = ("viewer", "admin")


@attrs.frozen
class Claim:
    """What a token says (not yet checked): whose session, which role, until when."""

    name: str
    role: str
    expires: int
    mac: bytes
    signed: bytes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key_digest: bytes, signed: bytes) -> bytes:
    return hmac.new(key_digest, _CONTEXT + signed, hashlib.sha256).digest()


def issue(name: str, role: str, key_digest: bytes, now: float, ttl: int = TTL) -> tuple[str, int]:
    """A token for the admin key ``name`` (whose SHA-256 digest is ``key_digest``) and when it expires."""
    expires = int(now) + ttl
    signed = f"{_b64(name.encode())}.{role}.{expires}".encode()
    return f"{PREFIX}.{signed.decode()}.{_b64(_mac(key_digest, signed))}", expires


def read(token: str) -> Claim | None:
    """The claim of a token shaped like a session's; None for anything else (an admin key, say)."""
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != PREFIX or parts[2] not in _ROLES or not parts[3].isdigit():
        return None
    try:
        name = _unb64(parts[1]).decode()
        mac = _unb64(parts[4])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return Claim(name, parts[2], int(parts[3]), mac, ".".join(parts[1:4]).encode())


def verify(claim: Claim, key_digest: bytes, now: float) -> None:
    """Nothing if the claim is signed by that admin key and not expired; RelayError 401 otherwise."""
    if not hmac.compare_digest(claim.mac, _mac(key_digest, claim.signed)):
        raise RelayError(401, "authentication", "Invalid session token.", code="invalid_session")
    if now >= claim.expires:
        raise RelayError(401, "authentication", "The session has expired: sign in again.", code="session_expired")


def lower_role(first: str, second: str) -> str:
    """The lesser of two roles (``viewer`` below ``admin``)."""
    return first if _ROLES.index(first) <= _ROLES.index(second) else second

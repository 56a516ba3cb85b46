"""Relay-issued keys: where a client puts one, and who it belongs to.

A presented key is hashed (SHA-256) and looked up by its digest, then compared with
``hmac.compare_digest``, so neither the lookup nor the comparison takes time that depends on how
much of a secret a guess got right. Secrets are never logged: only the key's name is.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from fnmatch import fnmatchcase

import attrs

from relay.config import KeyConfig
from relay.errors import RelayError
from relay.http.messages import Request


@attrs.frozen
class Key:
    name: str
    digest: bytes
    models: tuple[str, ...]

    def allows(self, model: str) -> bool:
        return any(fnmatchcase(model, pattern) for pattern in self.models)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class Keyring:
    def __init__(self, keys: Iterable[KeyConfig]) -> None:
        self._by_digest = {digest(k.key): Key(k.name, digest(k.key), k.models) for k in keys}

    def authenticate(self, request: Request) -> Key:
        """The key the request presents; records its name as ``request.principal`` (never the secret)."""
        secret = presented_key(request)
        if secret is None:
            raise RelayError(
                401,
                "authentication",
                "missing API key: send it as 'Authorization: Bearer KEY', 'x-api-key', 'x-goog-api-key' or '?key='",
                code="missing_api_key",
            )
        wanted = digest(secret)
        key = self._by_digest.get(wanted)
        if key is None or not hmac.compare_digest(key.digest, wanted):
            request.principal = "(invalid)"
            raise RelayError(401, "authentication", "invalid API key", code="invalid_api_key")
        request.principal = key.name
        return key


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer``, ``x-api-key``, ``x-goog-api-key`` or ``?key=``."""
    for name, value in request.headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name in (b"x-api-key", b"x-goog-api-key") and value.strip():
            return value.decode("latin-1").strip()
    if "key=" in request.query:
        key = request.query_params().get("key")
        if key:
            return key
    return None


def check_model(key: Key, model: str) -> None:
    if not key.allows(model):
        raise RelayError(
            403, "permission", f"this key may not use the model '{model}'", param="model", code="model_not_allowed"
        )

"""Who may call the admin API: ``[[admin_keys]]`` of relay.toml, held as SHA-256 digests, never as secrets.

``Authorization: Bearer <admin key>``; a relay key (``[[keys]]``, ``relay keys create``) is not an admin key
(401). Role ``viewer`` may only read (GET); anything else is 403.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from relay.config import AdminKeyConfig
from relay.errors import RelayError
from relay.http.messages import Request
from relay.store.keys import digest

__all__ = ["AdminKeys", "Caller", "admin_caller"]

#: Methods a ``viewer`` may use.
READS = frozenset({"GET", "HEAD"})

if TYPE_CHECKING:
    from relay.app import Relay


@attrs.frozen
class Caller:
    name: str
    role: str


class AdminKeys:
    """The admin keys by digest."""

    def __init__(self, configs: Sequence[AdminKeyConfig]) -> None:
        self._by_digest = {digest(c.key): Caller(c.name, c.role) for c in configs}

    def authenticate(self, request: Request) -> Caller:
        """The caller of ``request``; RelayError 401 (no or unknown admin key) or 403 (a viewer writing)."""
        header = request.header(b"authorization") or ""
        scheme, _, secret = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise RelayError(401, "authentication", "The admin API needs an admin key: Authorization: Bearer <key>.")
        wanted = digest(secret.strip())
        caller = next((c for d, c in self._by_digest.items() if hmac.compare_digest(d, wanted)), None)
        if caller is None:
            raise RelayError(401, "authentication", "Invalid admin key.", code="invalid_admin_key")
        if caller.role != "admin" and request.method.upper() not in READS:
            raise RelayError(
                403, "permission", f"Admin key {caller.name!r} has role {caller.role!r}: it may only read (GET)."
            )
        return caller


@functools.cache
def _admin_keys(configs: tuple[AdminKeyConfig, ...]) -> AdminKeys:
    """The admin keys of a configuration, digested once (configurations are immutable)."""
    return AdminKeys(configs)


def admin_caller(relay: Relay, request: Request) -> Caller:
    """The admin caller of an admin API request (401 or 403 as ``AdminKeys.authenticate`` says); admin calls are
    not requests to bill or log, so the request log leaves them out."""
    request.record.logged = False  # type: ignore[attr-defined]
    return _admin_keys(tuple(relay.config.admin_keys)).authenticate(request)

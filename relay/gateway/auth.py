"""Relay-issued keys: where a client puts one, who it belongs to, and whether it may be used now.

Keys live in the store (``relay keys`` and relay.toml's ``[[keys]]`` both put them there); every
process keeps a copy in memory, reloaded when the store's key version changes (checked every
``[store] key_refresh`` seconds), so authenticating costs no store call. A key the copy does not know
triggers one early reload (at most one a second), so a key just created works within a second or two.

A presented key is hashed (SHA-256) and looked up by its digest, then compared with
``hmac.compare_digest``. Secrets are never logged: only the key's name is. ``KEY#CHANNEL`` pins the
request to a channel (as the ``X-Relay-Channel`` header does).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase

import trio

from relay.errors import RelayError
from relay.http.messages import Request
from relay.store import Store, StoreError, Tx
from relay.store import keys as stored
from relay.store.keys import KeyRecord
from relay.store.polling import poll_forever

log = logging.getLogger("relay.gateway")

#: Seconds between two reloads triggered by unknown keys.
MISS_RELOAD = 1.0


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class KeyCache:
    def __init__(self, store: Store, refresh: float) -> None:
        self._store = store
        self._refresh = refresh
        self._by_digest: dict[bytes, KeyRecord] = {}
        self._networks: dict[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]] = {}
        self._version = -1
        self._loaded_at = 0.0
        self._lock = trio.Lock()
        #: Called after the keys were read again because they changed (not at the first load): the
        #: gateway's leases give their free parts back, to be sized again on the keys as they are now.
        self.changed: Callable[[], None] | None = None

    def _install(self, records: Iterable[KeyRecord], version: int) -> None:
        self._by_digest = {r.digest: r for r in records}
        self._networks = {
            r.name: tuple(ipaddress.ip_network(cidr, strict=False) for cidr in r.ips)
            for r in self._by_digest.values()
            if r.ips
        }
        self._version = version

    async def reload(self, *, force: bool = False) -> None:
        """Read the keys again when the store's key version moved (or ``force``)."""
        async with self._lock:
            self._loaded_at = time.monotonic()

            def read(tx: Tx) -> tuple[int, list[KeyRecord] | None]:
                version = stored.version(tx)
                if version == self._version and not force:
                    return version, None
                return version, stored.load_all(tx)

            version, records = await self._store.transaction(read)
            if records is not None:
                first = self._version < 0
                self._install(records, version)
                if not first and self.changed is not None:
                    self.changed()

    async def refresh_forever(self) -> None:
        await poll_forever(self._refresh, self.reload, "keys", log)

    async def authenticate(self, request: Request) -> tuple[KeyRecord, str | None]:
        """The key the request presents and the channel it pins (``KEY#NAME``), or a 401/403."""
        secret = presented_key(request)
        if secret is None:
            raise RelayError(
                401,
                "authentication",
                "missing API key: send it as 'Authorization: Bearer KEY', 'x-api-key', 'x-goog-api-key' or '?key='",
                code="missing_api_key",
            )
        secret, _, pin = secret.partition("#")
        wanted = digest(secret)
        key = self._by_digest.get(wanted)
        if key is None and time.monotonic() - self._loaded_at >= MISS_RELOAD:
            try:
                await self.reload()
            except StoreError as error:
                log.warning("keys not reloaded: %s", error)
            key = self._by_digest.get(wanted)
        if key is None or not hmac.compare_digest(key.digest, wanted):
            request.principal = "(invalid)"
            raise RelayError(401, "authentication", "invalid API key", code="invalid_api_key")
        self._check(key, request)
        return key, pin or request.header(b"x-relay-channel") or None

    async def named(self, request: Request, name: str) -> KeyRecord:
        """The key called ``name``, checked as ``authenticate`` checks a presented one (disabled, expired, the
        client's address): the dashboard's playground bills a key it names rather than presents. 404 if none."""
        key = next((k for k in self._by_digest.values() if k.name == name), None)
        if key is None and time.monotonic() - self._loaded_at >= MISS_RELOAD:
            try:
                await self.reload()
            except StoreError as error:
                log.warning("keys not reloaded: %s", error)
            key = next((k for k in self._by_digest.values() if k.name == name), None)
        if key is None:
            raise RelayError(404, "not_found", f"no API key named {name!r}", code="key_not_found")
        self._check(key, request)
        return key

    def _check(self, key: KeyRecord, request: Request) -> None:
        """The request is made with ``key`` (its principal); 401 if the key is disabled or expired, 403 if the
        client's address is not one the key allows."""
        request.principal = key.name
        if key.disabled:
            raise RelayError(401, "authentication", "this API key is disabled", code="key_disabled")
        if key.expires_at is not None and time.time() >= key.expires_at:
            raise RelayError(401, "authentication", "this API key has expired", code="key_expired")
        networks = self._networks.get(key.name)
        if networks and not _address_in(request.client, networks):
            raise RelayError(403, "permission", "this API key may not be used from this address", code="ip_not_allowed")


def _address_in(client: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    host = client.rpartition(":")[0]  # "HOST:PORT", the host IPv4 or IPv6 unbracketed
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)


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


def allows(key: KeyRecord, model: str) -> bool:
    return any(fnmatchcase(model, pattern) for pattern in key.models)


def check_model(key: KeyRecord, model: str) -> None:
    if not allows(key, model):
        raise RelayError(
            403, "permission", f"this key may not use the model '{model}'", param="model", code="model_not_allowed"
        )

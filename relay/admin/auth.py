"""Who may call the admin API: admin keys from relay.toml's ``[[admin_keys]]`` and from the store (``relay
admin-keys create``), both held as SHA-256 digests, never as secrets.

``Authorization: Bearer <admin key>``; a relay key (``[[keys]]``, ``relay keys create``) is not an admin key
(401). Role ``viewer`` may only read (GET); anything else is 403. A dashboard session token (relay.admin.session)
stands for the admin key that signed in, as long as that key is there, enabled and unchanged.

Each process keeps a copy of the store's admin keys, read again when the store's ``admin_keys_version`` moves
(checked every ``[store] key_refresh`` seconds by ``refresh_forever``, as ``relay.gateway.auth.KeyCache`` does for
relay keys): an admin call costs no store call, and a key created, disabled or deleted with ``relay admin-keys``
takes effect in every worker within that time. relay.toml's keys win a name clash (the store's is ignored).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import trio

from relay.admin import session
from relay.config import AdminKeyConfig
from relay.errors import RelayError
from relay.http.messages import Request
from relay.store import Store, Tx
from relay.store import admin_keys as stored
from relay.store.keys import digest
from relay.store.polling import poll_forever

__all__ = ["AdminKeys", "Caller", "admin_caller"]

log = logging.getLogger("relay.admin")

#: Methods a ``viewer`` may use.
READS = frozenset({"GET", "HEAD"})

if TYPE_CHECKING:
    from relay.app import Relay


@attrs.frozen
class Caller:
    name: str
    role: str
    #: Where the key is declared: ``config`` (relay.toml) or ``store`` (``relay admin-keys``).
    source: str = "config"
    disabled: bool = False
    #: Authenticated by a dashboard session token rather than the admin key itself.
    session: bool = False


class AdminKeys:
    """The admin keys by digest: relay.toml's (those of the configuration in force) and the store's (a copy,
    reloaded when they change)."""

    def __init__(self, configs: Sequence[AdminKeyConfig], store: Store | None = None, refresh: float = 2.0) -> None:
        self._store = store
        self._refresh = refresh
        self._records: list[stored.AdminKeyRecord] = []
        self._version = -1
        self._lock = trio.Lock()
        self._configs: Sequence[AdminKeyConfig] = ()
        self._by_digest: dict[bytes, Caller] = {}
        self.configure(configs)

    def configure(self, configs: Sequence[AdminKeyConfig]) -> None:
        """Take relay.toml's admin keys (again, when ``configs`` is another sequence: relay.toml was reloaded)."""
        if configs is not self._configs:
            self._configs = configs
            self._merge()

    def _merge(self) -> None:
        by_digest = {digest(c.key): Caller(c.name, c.role) for c in self._configs}
        names = {c.name for c in self._configs}
        for record in self._records:
            if record.name in names:
                log.warning("admin key %r of the store ignored: relay.toml declares one of that name", record.name)
                continue
            by_digest.setdefault(record.digest, Caller(record.name, record.role, "store", record.disabled))
        self._by_digest = by_digest

    async def reload(self, *, force: bool = False) -> None:
        """Read the store's admin keys again when their version moved (or ``force``)."""
        if self._store is None:
            return
        async with self._lock:

            def read(tx: Tx) -> tuple[int, list[stored.AdminKeyRecord] | None]:
                version = stored.version(tx)
                if version == self._version and not force:
                    return version, None
                return version, stored.load_all(tx)

            version, records = await self._store.transaction(read)
            if records is not None:
                self._records, self._version = records, version
                self._merge()

    async def refresh_forever(self) -> None:
        await poll_forever(self._refresh, self.reload, "admin keys", log)

    def caller(self, secret: str) -> Caller:
        """The admin key ``secret`` is; RelayError 401 when it is none, or a disabled one."""
        # Looked up by digest: the lookup's timing tells about the SHA-256 of a guess, nothing of a secret.
        caller = self._by_digest.get(digest(secret))
        if caller is None:
            raise RelayError(401, "authentication", "Invalid admin key.", code="invalid_admin_key")
        if caller.disabled:
            raise RelayError(
                401, "authentication", f"Admin key {caller.name!r} is disabled.", code="admin_key_disabled"
            )
        return caller

    def authenticate(self, request: Request, *, reads: bool = False) -> Caller:
        """The caller of ``request``; RelayError 401 (no, unknown or disabled admin key) or 403 (a viewer writing;
        ``reads``: the call only reads whatever its method, as signing in to the dashboard)."""
        header = request.header(b"authorization") or ""
        scheme, _, secret = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise RelayError(401, "authentication", "The admin API needs an admin key: Authorization: Bearer <key>.")
        caller = self._session_caller(secret.strip()) or self.caller(secret.strip())
        if caller.role != "admin" and not reads and request.method.upper() not in READS:
            raise RelayError(
                403, "permission", f"Admin key {caller.name!r} has role {caller.role!r}: it may only read (GET)."
            )
        return caller

    def _session_caller(self, token: str) -> Caller | None:
        """The caller a dashboard session token stands for; None if ``token`` is not shaped like one, 401 if its
        admin key is gone or disabled, its signature wrong or its time up."""
        claim = session.read(token)
        if claim is None:
            return None
        found = next(((d, c) for d, c in self._by_digest.items() if c.name == claim.name and not c.disabled), None)
        if found is None:
            raise RelayError(401, "authentication", "Invalid session token.", code="invalid_session")
        session.verify(claim, found[0], time.time())
        return attrs.evolve(found[1], role=session.lower_role(claim.role, found[1].role), session=True)


def admin_caller(relay: Relay, request: Request, *, reads: bool = False) -> Caller:
    """The admin caller of an admin API request (401 or 403 as ``AdminKeys.authenticate`` says); admin calls are
    not requests to bill or log, so the request log leaves them out."""
    request.record.logged = False  # type: ignore[attr-defined]
    relay.admin_keys.configure(relay.config.admin_keys)
    return relay.admin_keys.authenticate(request, reads=reads)

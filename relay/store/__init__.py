"""The store: keys, quota ledger, request log and daily totals, in SQLite (default) or PostgreSQL.

``open_store("sqlite:///relay.db")`` or ``open_store("postgresql://user@host/db")``, then ``await
store.migrate()`` at start and ``await store.aclose()`` at the end. See docs/store.md.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from relay.store.base import Row, Store, Tx
from relay.store.errors import IntegrityError, StoreError, StoreURLError

__all__ = ["IntegrityError", "Row", "Store", "StoreError", "StoreURLError", "Tx", "check_url", "open_store", "redact"]

_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite://:memory: or postgresql://user@host/db"


def redact(url: str) -> str:
    """``url`` without its password, fit for logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _sqlite_path(url: str) -> str:
    rest = url[len("sqlite://") :]
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    if "?" in rest or "#" in rest:
        raise StoreURLError(f"store url {url!r}: SQLite URLs take no query or fragment")
    if not rest.startswith("/"):
        raise StoreURLError(f"store url {url!r}: a SQLite URL has three slashes before the path; use {_FORMS}")
    path = rest[1:]
    if not path or path.endswith("/"):
        raise StoreURLError(f"store url {url!r}: no database file named; use {_FORMS}")
    return path


def check_url(url: str) -> str:
    """The backend ``url`` names (``sqlite`` or ``postgresql``); raises StoreURLError saying what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise StoreURLError(f"store url is empty; use {_FORMS}")
    url = url.strip()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        if not url.lower().startswith("sqlite://"):
            raise StoreURLError(f"store url {url!r}: use {_FORMS}")
        _sqlite_path(url)
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        import psycopg.conninfo

        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error as e:
            raise StoreURLError(f"store url {redact(url)!r}: {str(e).strip()}") from e
        return "postgresql"
    shown = f"scheme {scheme!r}" if scheme else "no scheme"
    raise StoreURLError(f"store url {redact(url)!r} has {shown}; Relay supports {_FORMS}")


def open_store(url: str, *, timeout: float = 10.0) -> Store:
    """The store at ``url``; nothing is connected until the first call (``migrate()``, usually).

    ``timeout``: PostgreSQL only, how long a call waits for a pooled connection before failing.
    """
    backend = check_url(url)
    url = url.strip()
    if backend == "sqlite":
        from relay.store.sqlite import SQLiteStore

        return SQLiteStore(url, _sqlite_path(url))
    from relay.store.postgres import PostgresStore

    return PostgresStore(redact(url), url, timeout=timeout)

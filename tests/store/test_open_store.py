"""URLs: what opens which backend, and clear errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.store import StoreError, StoreURLError, open_store, redact
from relay.store.migrations import LATEST, MIGRATIONS, statements
from relay.store.postgres import PostgresStore
from relay.store.sqlite import SQLiteStore


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("relay.db", "no scheme"),
        ("mysql://root@localhost/relay", "scheme 'mysql'"),
        ("redis://localhost", "scheme 'redis'"),
        ("sqlite:relay.db", "sqlite:///relative"),
        ("sqlite://relay.db", "three slashes"),
        ("sqlite:///", "no database file"),
        ("sqlite:///data/", "no database file"),
        ("sqlite:///relay.db?mode=ro", "no query"),
        ("postgresql://db/relay?bogus=1", "invalid URI query parameter"),
        ("postgresql://[::1/relay", "IPv6"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(StoreURLError, match=message):
        open_store(url)


def test_the_password_never_shows() -> None:
    assert redact("postgresql://relay:s3cret@db:5432/relay") == "postgresql://relay:***@db:5432/relay"
    with pytest.raises(StoreURLError) as info:
        open_store("mysql://relay:s3cret@db/relay")
    assert "s3cret" not in str(info.value)
    assert open_store("postgresql://relay:s3cret@db/relay").url == "postgresql://relay:***@db/relay"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///relay.db", "relay.db"),
        ("sqlite:///data/relay.db", "data/relay.db"),
        ("sqlite:////var/lib/relay.db", "/var/lib/relay.db"),
        ("sqlite://:memory:", ":memory:"),
        ("SQLITE:///relay.db", "relay.db"),
    ],
)
def test_sqlite_paths(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    assert store.path == path


def test_postgres_schemes() -> None:
    assert isinstance(open_store("postgresql://postgres@127.0.0.1/test"), PostgresStore)
    assert isinstance(open_store("postgres://postgres@127.0.0.1/test"), PostgresStore)


async def test_sqlite_relative_path_is_from_the_working_directory_in_wal_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_store("sqlite:///relay.db") as store:
        assert await store.migrate() == LATEST
        assert await store.execute("PRAGMA journal_mode") == [("wal",)]
    assert (tmp_path / "relay.db").exists()


async def test_sqlite_in_memory() -> None:
    async with open_store("sqlite://:memory:") as store:
        assert await store.migrate() == LATEST


async def test_sqlite_file_that_cannot_be_opened(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path}/no/such/dir/relay.db") as store:
        with pytest.raises(StoreError, match="cannot open SQLite database"):
            await store.migrate()


async def test_postgres_that_cannot_be_reached() -> None:
    async with open_store("postgresql://postgres@127.0.0.1:1/test", timeout=0.2) as store:
        with pytest.raises(StoreError, match=r"127\.0\.0\.1:1/test: no connection within 0.2 s: .*"):
            await store.migrate()


def test_migrations_are_append_only_in_order() -> None:
    assert [version for version, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    for _, sqlite_sql, postgres_sql in MIGRATIONS:
        assert len(statements(sqlite_sql)) == len(statements(postgres_sql)) > 0

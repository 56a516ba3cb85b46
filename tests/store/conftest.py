"""An open store on each backend of ``store_url`` (tests/conftest.py): SQLite in tmp_path always,
PostgreSQL when RELAY_TEST_POSTGRES_URL is set, each PostgreSQL test in a schema of its own, dropped after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.store import Store, open_store


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with open_store(store_url) as store:
        yield store

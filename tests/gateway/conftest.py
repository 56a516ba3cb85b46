"""The real Redis of RELAY_TEST_REDIS_URL, for the client and limiter tests; they skip, saying why, without it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from relay.gateway.resp import RedisClient

REDIS_ENV = "RELAY_TEST_REDIS_URL"


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"real Redis: set {REDIS_ENV}=redis://127.0.0.1:6379/0 to run (CI sets it)")
    return url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisClient]:
    """A client of that Redis, closed after the test."""
    async with await RedisClient.connect(redis_url) as client:
        yield client

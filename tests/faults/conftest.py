"""Fixtures of the fault tests: the rig (a served Relay on a store, its fault-injecting upstream), whose
billing and log invariants are checked after every test that used it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.faults.rig import Rig, rig


@pytest.fixture
async def faulty(tmp_path: Path) -> AsyncIterator[Rig]:
    """The rig; after the test, Relay stops and the invariants are checked on its store."""
    async with rig(tmp_path) as served:
        yield served

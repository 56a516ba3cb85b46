"""The test suite never writes into the repository (where the README's server keeps its store, ./relay.db)."""

from __future__ import annotations

import os
from pathlib import Path

from relay.config import loads

from .conftest import ROOT


def test_tests_run_in_a_temporary_folder_outside_the_repository() -> None:
    cwd = Path(os.getcwd()).resolve()
    assert ROOT not in (cwd, *cwd.parents), cwd


def test_a_config_without_a_store_keeps_its_default_store_out_of_the_repository() -> None:
    config = loads('[server]\nlisten = "127.0.0.1:0"\n')
    path = Path(config.store.url.removeprefix("sqlite:///")).resolve()
    assert ROOT not in path.parents, path

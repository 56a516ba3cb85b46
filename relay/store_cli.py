"""What ``relay keys`` and ``relay admin-keys`` share: relay.toml read, the command's arguments checked, then its
work run against the migrated store, and each failure told on stderr with its exit status (2: bad arguments or
configuration; 1: refused, or the store failed)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

import trio

from relay.admin.keys import BadArguments, Refused
from relay.config import Config, ConfigError, load
from relay.store import Store, StoreError, open_store

__all__ = ["Work", "run_with_store"]

#: A command's work once its arguments are checked: run against the open, migrated store; its exit status.
Work = Callable[[Store], Awaitable[int]]


def run_with_store(
    config_path: str,
    command: str,
    prepare: Callable[[Config], Work],
    refused: tuple[type[Exception], ...] = (),
) -> int:
    """Run ``command`` (its name, for messages): ``prepare`` checks the arguments against the configuration
    (``BadArguments``) and gives the work; ``Refused`` and the ``refused`` types are refusals."""
    try:
        config = load(config_path)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{config_path}: {problem}", file=sys.stderr)
        return 2
    try:
        work = prepare(config)  # arguments checked before the store is opened
        return trio.run(_with_store, config, work)
    except BadArguments as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    except (Refused, *refused) as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 1
    except StoreError as error:
        print(f"{command}: store {config.store.url}: {error}", file=sys.stderr)
        return 1


async def _with_store(config: Config, work: Work) -> int:
    async with open_store(config.store.url) as store:
        await store.migrate()
        return await work(store)

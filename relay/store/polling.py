"""Copies of store rows kept in every process and read again when their version counter moves (the keys, the admin
keys, the channels): the loop that polls them, one for all three."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from relay.store.errors import StoreError

__all__ = ["poll_forever"]


async def poll_forever(
    interval: float, reload: Callable[[], Awaitable[object]], what: str, log: logging.Logger
) -> None:
    """``reload()`` every ``interval`` seconds, forever; a store that fails is logged (``what`` not reloaded) and the
    copy in memory keeps serving until the next try."""
    while True:
        await trio.sleep(interval)
        try:
            await reload()
        except StoreError as error:
            log.warning("%s not reloaded (serving with the last copy): %s", what, error)

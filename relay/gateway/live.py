"""The live configuration: relay.toml read again on SIGHUP, and the channels kept in the store, swapped in between
two requests without a restart (docs/configuration.md, "Live reload").

One rebuild makes every channel in force from relay.toml's ``[[channels]]`` and the store's (relay/store/channels.py),
less the ones disabled at run time, and swaps a new snapshot in (relay/gateway/snapshot.py): requests in flight keep
the one they started with. A channel whose configuration did not change keeps its ``Channel`` object, its breaker
and its key pool; connections to an origin no channel uses any more are closed once they are idle.

Rebuilds happen on SIGHUP (``Live.reload_file``: a file with any problem is refused, every problem logged, and the
configuration in force keeps serving), when the store's ``channels_version`` moved (checked every ``[store]
key_refresh`` seconds by every process, and at once by the process that made the change), and at start.

What needs a restart (``RESTART_SECTIONS``, ``RESTART_SERVER``) is kept as it started: a reload that changes it
logs that it was not applied.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import trio

from relay.config import ChannelConfig, Config, ConfigError, load, load_channel
from relay.gateway.gateway import Gateway
from relay.gateway.pricing import Pricing
from relay.gateway.routing import Router
from relay.gateway.snapshot import Snapshot
from relay.metrics import Metrics
from relay.store import StoreError
from relay.store import channels as stored
from relay.store import keys as stored_keys
from relay.store.keys import KeyRefused
from relay.store.polling import poll_forever
from relay.upstream.channels import Channel, channel_for
from relay.upstream.pool import Pool

__all__ = ["RESTART_SECTIONS", "RESTART_SERVER", "ListedChannel", "Live", "merged", "restart_only"]

log = logging.getLogger("relay.live")

#: relay.toml's tables that take effect at a restart only: the HTTP server's limits, the store, Redis, the pool,
#: the tracer.
RESTART_SECTIONS = ("limits", "store", "ratelimit", "upstream", "telemetry")
#: ``[server]`` settings that take effect at a restart only.
RESTART_SERVER = ("listen", "workers", "max_in_flight", "log_format", "log_level", "pid_file")


@attrs.frozen
class ListedChannel:
    """A channel as the admin API lists it: in force or not, from relay.toml or from the store."""

    name: str
    source: Literal["config", "store"]
    enabled: bool
    #: None: a store channel that cannot be built in this process (``problems`` say why).
    config: ChannelConfig | None
    #: A store channel's ``[[channels]]`` table as stored (``${VAR}`` references unresolved).
    table: Mapping[str, Any] | None = None
    problems: tuple[str, ...] = ()
    created_at: float | None = None
    updated_at: float | None = None


def _sections(config: Config) -> tuple[str, ...]:
    """``RESTART_SECTIONS`` that ``Config`` has (``[telemetry]`` comes with the tracing)."""
    return tuple(section for section in RESTART_SECTIONS if hasattr(config, section))


def restart_only(new: Config, running: Config) -> list[str]:
    """The settings of ``new`` that differ from ``running``'s and need a restart, as ``[table]`` or ``table.key``."""
    changed = [f"[{section}]" for section in _sections(running) if getattr(new, section) != getattr(running, section)]
    server, before = new.server, running.server
    changed += [f"server.{name}" for name in RESTART_SERVER if getattr(server, name) != getattr(before, name)]
    return changed


def merged(new: Config, running: Config) -> Config:
    """``new`` with the settings that need a restart as they are in ``running``."""
    server = attrs.evolve(new.server, **{name: getattr(running.server, name) for name in RESTART_SERVER})
    sections = {section: getattr(running, section) for section in _sections(running)}
    return attrs.evolve(new, server=server, **sections)


class Live:
    """The swap point's keeper: rebuilds the gateway's snapshot from relay.toml and the store's channels."""

    def __init__(self, gateway: Gateway, pool: Pool, metrics: Metrics, config: Config, path: str | None) -> None:
        self._gateway = gateway
        self._pool = pool
        self._metrics = metrics
        #: relay.toml as in force (the settings that need a restart as they started).
        self.file_config = config
        self._path = path
        self._stored: list[stored.StoredChannel] = []
        self._states: dict[str, bool] = {}
        self._version = -1
        self._lock = trio.Lock()
        self._refresh = config.store.key_refresh
        #: Every channel, in force or not, relay.toml's first (file order), then the store's (by name).
        self.listed: tuple[ListedChannel, ...] = tuple(
            ListedChannel(c.name, "config", True, c) for c in config.channels
        )

    def find(self, name: str, source: str | None = None) -> ListedChannel | None:
        """The channel named so (relay.toml's first: it wins over a store channel of its name), of ``source``."""
        return next((c for c in self.listed if c.name == name and source in (None, c.source)), None)

    # ---- the store's channels ----------------------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> None:
        """Read the store's channels again when their version moved (or ``force``), and rebuild if so."""
        async with self._lock:

            def read(tx: Any) -> tuple[int, list[stored.StoredChannel], dict[str, bool]] | None:
                if not force and stored.version(tx) == self._version:
                    return None
                return stored.load(tx)

            found = await self._gateway.store.transaction(read)
            if found is None:
                return
            self._version, self._stored, self._states = found
            await self._rebuild()

    async def refresh_forever(self) -> None:
        await poll_forever(self._refresh, self.refresh, "channels of the store", log)

    # ---- relay.toml ---------------------------------------------------------------------------------------

    async def reload_file(self) -> bool:
        """Read relay.toml again and swap its configuration in; False (every problem logged, nothing changed) when
        the file has any problem ``relay check-config`` would report, or its keys cannot go in the store."""
        if self._path is None:
            log.warning("reload asked, but this server was given no relay.toml to read again")
            return False
        try:
            new = load(self._path)
        except ConfigError as error:
            log.error(
                "%s: reload refused (%d problem%s); the configuration in force keeps serving",
                self._path,
                len(error.problems),
                "" if len(error.problems) == 1 else "s",
            )
            for problem in error.problems:
                log.error("%s: %s", self._path, problem)
            return False
        for setting in restart_only(new, self.file_config):
            log.warning("%s: %s changed: not applied until Relay restarts", self._path, setting)
        new = merged(new, self.file_config)
        try:
            keys = new.keys
            await self._gateway.store.transaction(lambda tx: stored_keys.sync_config(tx, keys, time.time()))
        except KeyRefused as error:
            log.error("%s: reload refused: %s; the configuration in force keeps serving", self._path, error)
            return False
        except StoreError as error:
            log.warning("%s: keys of [[keys]] not written to the store (the store's stay): %s", self._path, error)
        else:
            await self._gateway.keys.reload()
        async with self._lock:
            self.file_config = new
            await self._rebuild()
        snapshot = self._gateway.current.latest
        log.info(
            "%s: reloaded: %d channels in force, %d prices, %d aliases",
            self._path,
            len(snapshot.channels),
            len(new.prices),
            len(new.aliases),
        )
        return True

    async def reload_on_sighup(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Reload relay.toml at each SIGHUP (only the main thread can take signals: elsewhere, none is taken)."""
        if threading.current_thread() is not threading.main_thread():
            task_status.started()
            return
        with trio.open_signal_receiver(signal.SIGHUP) as signals:
            task_status.started()
            async for _ in signals:
                log.info("SIGHUP: reading %s again", self._path)
                try:
                    await self.reload_file()
                except StoreError as error:
                    log.error("reload failed (the configuration in force keeps serving): %s", error)

    # ---- the rebuild ---------------------------------------------------------------------------------------

    async def _rebuild(self) -> None:
        """Build and swap in the snapshot of relay.toml's and the store's channels as they are now."""
        file = self.file_config
        previous = self._gateway.current.latest
        listed: list[ListedChannel] = []
        active: list[ChannelConfig] = []
        disabled: list[ChannelConfig] = []
        for channel in file.channels:
            enabled = self._states.get(channel.name, True)
            listed.append(ListedChannel(channel.name, "config", enabled, channel))
            (active if enabled else disabled).append(channel)
        in_file = {channel.name for channel in file.channels}
        for row in self._stored:
            config: ChannelConfig | None = None
            if row.name in in_file:
                problems: tuple[str, ...] = (f"relay.toml has a channel named {row.name!r}: this one is not used",)
            else:
                try:
                    config = load_channel(row.table)
                    problems = ()
                except ConfigError as error:
                    problems = tuple(error.problems)
            if problems:
                log.warning("store channel %r not used: %s", row.name, "; ".join(problems))
            listed.append(
                ListedChannel(
                    row.name, "store", row.enabled, config, row.table, problems, row.created_at, row.updated_at
                )
            )
            if config is not None:
                (active if row.enabled else disabled).append(config)
        config_now = attrs.evolve(file, channels=tuple(active))
        router = Router(config_now, previous=previous.router, disabled=disabled)
        pricing = previous.pricing if previous.config.prices == config_now.prices else Pricing(config_now.prices)
        channels: dict[str, Channel] = {}
        for channel in active:
            old = previous.channels.get(channel.name)
            kept = old is not None and old.config == channel
            channels[channel.name] = old if old is not None and kept else channel_for(channel, self._pool)
        self.listed = tuple(listed)
        self._metrics.add_channels(channels)
        self._gateway.current.swap(Snapshot(config_now, router, pricing, channels))
        await self._pool.keep_only(frozenset(channel.origin for channel in channels.values()))

"""The lines ``relay serve`` logs when it starts: version, config, store, channels and models, workers, address."""

from __future__ import annotations

from pathlib import Path

from relay.config import Config
from relay.store import redact as redact_url
from relay.version import describe


def summary(config: Config, config_path: str, *, workers: int, listen: str) -> list[str]:
    """One line per fact; the store URL without its password, channels without their keys."""
    lines = [
        describe(),
        f"config: {Path(config_path).resolve()}",
        f"store: {redact_url(config.store.url)}",
        f"rate limits: {redact_url(config.ratelimit.url) if config.ratelimit.url else 'in the store'}",
        f"workers: {workers}, listen: {listen}",
        f"channels: {len(config.channels)}, keys in relay.toml: {len(config.keys)}",
        f"traces: {redact_url(config.telemetry.otlp_endpoint) if config.telemetry.otlp_endpoint else 'off'}",
    ]
    for channel in config.channels:
        models = ", ".join(channel.models)
        mapped = f"; model_map: {', '.join(channel.model_map)}" if channel.model_map else ""
        listed = f"; list_models: {', '.join(channel.list_models)}" if channel.list_models else ""
        lines.append(
            f"channel {channel.name} ({channel.type}, priority {channel.priority}, group {channel.group}): "
            f"{models}{mapped}{listed}"
        )
    for server in config.mcp:
        allowed = ", ".join((*(f"group {g}" for g in server.groups), *(f"key {k}" for k in server.keys))) or "nobody"
        lines.append(f"mcp {server.name} ({server.wire}) at /v1/mcp/{server.name}: {allowed}")
    return lines

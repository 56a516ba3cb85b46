"""Which channel serves a model, and under what name the upstream knows it.

Channels are tried in the order relay.toml lists them; a channel serves a public model name when
its ``model_map`` has it (the upstream sees the mapped name) or one of its ``models`` patterns
matches it (the upstream sees the same name).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

import attrs

from relay.config import ChannelConfig
from relay.errors import RelayError


@attrs.frozen
class Route:
    channel: ChannelConfig
    upstream_model: str


def upstream_name(channel: ChannelConfig, model: str) -> str | None:
    if model in channel.model_map:
        return channel.model_map[model]
    if any(fnmatchcase(model, pattern) for pattern in channel.models):
        return model
    return None


def resolve(channels: Sequence[ChannelConfig], model: str) -> Route:
    for channel in channels:
        name = upstream_name(channel, model)
        if name is not None:
            return Route(channel, name)
    raise RelayError(
        404,
        "not_found",
        f"The model '{model}' does not exist or no channel serves it",
        param="model",
        code="model_not_found",
    )


def listed_models(channels: Sequence[ChannelConfig]) -> list[str]:
    """Public model names, in channel order, without duplicates; glob patterns cannot be listed."""
    seen: dict[str, None] = {}
    for channel in channels:
        for name in (*channel.model_map, *channel.models):
            if not any(ch in name for ch in "*?["):
                seen.setdefault(name, None)
    return list(seen)

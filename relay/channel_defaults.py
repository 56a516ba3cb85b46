"""What a channel gets when relay.toml does not say: its timeouts and each provider's base URL.

Its own module, under both relay.config (which builds channels from it) and relay.config_checks (which checks
relay.toml's raw tables against it), so neither has to import the other.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class ChannelTimeouts:
    #: Seconds to open the TCP (and TLS) connection to the upstream. Then: 504 (refused: 502).
    connect: float = 10.0
    #: Seconds from sending the request to the first byte of the upstream's answer. Then: 504.
    first_byte: float = 300.0
    #: Seconds the upstream may stay silent between two chunks of a stream.
    idle: float = 120.0
    #: Seconds for the whole upstream exchange, stream included.
    total: float = 900.0


#: ``base_url`` of each channel type when relay.toml gives none: as each provider's SDK takes it.
DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "tavily": "https://api.tavily.com",
    "exa": "https://api.exa.ai",
    "brave": "https://api.search.brave.com",
}
#: The channel types (and mock dialects) of search providers (``/v1/search``): they answer searches, not prompts.
#: A ``searxng`` channel has no default base URL: SearXNG is self-hosted.
SEARCH_FAMILIES = ("tavily", "exa", "brave", "searxng")

"""One search on one channel: the provider's request sent, its answer read as ``Hit``\\s (an ``Attempt``'s body)."""

from __future__ import annotations

from relay.channel_defaults import SEARCH_FAMILIES
from relay.dialects.openai.chat import codec as openai_chat
from relay.endpoints.forward import fetch
from relay.errors import RelayError
from relay.http.messages import Request, Response
from relay.upstream.channels import Channel

from . import providers
from .providers import Hit


def refuse_other_families(channel: Channel, model: str) -> None:
    """A 400 when ``model`` is served by a channel that is no search provider (a chat model asked to search)."""
    if channel.family not in SEARCH_FAMILIES:
        raise RelayError(
            400,
            "invalid_request",
            f"the model '{model}' is served by a {channel.family} channel, which is no search provider; "
            f"searches go to channels of type {', '.join(SEARCH_FAMILIES)} (docs/utility.md)",
            param="model",
            code="unsupported_model",
        )


async def search_on(
    request: Request, channel: Channel, upstream_model: str, api_key: str, public: str, query: str, count: int
) -> list[Hit] | Response:
    """``query``'s first ``count`` results from ``channel`` (``public``: the model as the client named it), or
    the provider's error as the client's (a ``Response`` failover judges by its status)."""
    refuse_other_families(channel, public)
    outgoing = providers.encode(channel.family, query, count, upstream_model)
    data = await fetch(
        request,
        channel,
        api_key,
        outgoing.path,
        outgoing.body,
        source=openai_chat,
        client=openai_chat,
        method=outgoing.method,
    )
    if isinstance(data, Response):
        return data
    return providers.decode(channel.family, data, count)

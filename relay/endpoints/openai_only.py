"""The refusal of the APIs only OpenAI-compatible channels serve (rerank, moderations)."""

from __future__ import annotations

from relay.errors import RelayError
from relay.upstream.channels import Channel


def refuse_other_families(channel: Channel, model: str, api: str) -> None:
    """A 400 naming ``model`` when ``channel`` is not of the OpenAI family: Anthropic and Gemini have no ``api``.

    Raised by an attempt, it ends the request (a 400 is no channel's failure): a model to be reranked or
    moderated must be routed to ``openai`` channels (or ``mock`` ones speaking OpenAI's dialect)."""
    if channel.family != "openai":
        raise RelayError(
            400,
            "invalid_request",
            f"the model '{model}' is served by a {channel.family} channel, which has no {api} API; "
            f"{api} is relayed to OpenAI-compatible channels only",
            param="model",
            code="unsupported_model",
        )

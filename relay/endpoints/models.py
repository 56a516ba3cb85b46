"""Model lists in the OpenAI shape, from the channels, filtered by the key's allow-list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relay.errors import RelayError
from relay.gateway.routing import listed_models, upstream_name
from relay.http.messages import Request, Response, StreamResponse

if TYPE_CHECKING:
    from relay.app import Relay

#: ``created`` of every listed model: Relay does not know when a provider made a model.
CREATED = 0


async def list_models(relay: Relay, request: Request, out: StreamResponse) -> Response:
    key = relay.keyring.authenticate(request)
    data = [_model(relay, name) for name in listed_models(relay.config.channels) if key.allows(name)]
    return Response.json(200, {"object": "list", "data": data})


async def get_model(relay: Relay, request: Request, out: StreamResponse) -> Response:
    key = relay.keyring.authenticate(request)
    name = request.params["model"]
    if not key.allows(name) or _owner(relay, name) is None:
        raise RelayError(
            404,
            "not_found",
            f"The model '{name}' does not exist or you do not have access to it",
            param="model",
            code="model_not_found",
        )
    return Response.json(200, _model(relay, name))


def _owner(relay: Relay, name: str) -> str | None:
    for channel in relay.config.channels:
        if upstream_name(channel, name) is not None:
            return channel.type
    return None


def _model(relay: Relay, name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": _owner(relay, name) or "relay"}

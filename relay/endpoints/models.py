"""Model lists in each dialect's shape, from the channels, filtered by the key's allow-list.

- OpenAI: ``{"object": "list", "data": [{id, object, created, owned_by}]}``.
- Anthropic (``GET /v1/models`` with an ``anthropic-version`` header, and under ``/claude``):
  ``{"data": [{type, id, display_name, created_at}], "has_more", "first_id", "last_id"}``, paged by
  ``limit`` (default 20, 1 to 1000), ``after_id`` and ``before_id``.
- Gemini: ``{"models": [{name: "models/…", displayName, supportedGenerationMethods}], "nextPageToken"}``,
  paged by ``pageSize`` (default 50, at most 1000) and ``pageToken``.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from relay.errors import RelayError
from relay.gateway.auth import allows
from relay.gateway.routing import check_model_name, listed_models, upstream_name
from relay.http.messages import Request, Response, StreamResponse

if TYPE_CHECKING:
    from relay.app import Relay

#: ``created`` of every listed model: Relay does not know when a provider made a model.
CREATED = 0
CREATED_AT = "1970-01-01T00:00:00Z"
GEMINI_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def wants_anthropic(request: Request) -> bool:
    """The Anthropic SDK sends ``anthropic-version``: on the shared ``/v1/models`` it asks for its shape."""
    return request.header(b"anthropic-version") is not None or request.path.startswith("/claude/")


async def list_models(relay: Relay, request: Request, out: StreamResponse) -> Response:
    names = await _visible(relay, request)
    if wants_anthropic(request):
        return Response.json(200, _anthropic_page(names, request))
    return Response.json(200, {"object": "list", "data": [_openai(relay, name) for name in names]})


async def get_model(relay: Relay, request: Request, out: StreamResponse) -> Response:
    name = await _known(relay, request, request.params["model"])
    if wants_anthropic(request):
        return Response.json(200, _anthropic(name))
    return Response.json(200, _openai(relay, name))


async def list_gemini_models(relay: Relay, request: Request, out: StreamResponse) -> Response:
    names = await _visible(relay, request)
    query = request.query_params()
    size = _int_param(query.get("pageSize"), "pageSize", default=50, low=1, high=1000)
    start = _page_token(query.get("pageToken"))
    page: dict[str, Any] = {"models": [_gemini(name) for name in names[start : start + size]]}
    if start + size < len(names):
        page["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return Response.json(200, page)


async def get_gemini_model(relay: Relay, request: Request, out: StreamResponse) -> Response:
    name = await _known(relay, request, request.params["model"].removeprefix("models/"))
    return Response.json(200, _gemini(name))


async def _visible(relay: Relay, request: Request) -> list[str]:
    """The models the key may use: its group's channels' and the aliases of those, allowed by its list."""
    key, _ = await relay.gateway.keys.authenticate(request)
    channels = [c for c in relay.config.channels if key.group in c.groups]
    names = listed_models(channels)
    names += [alias for alias, model in relay.config.aliases.items() if model in names and alias not in names]
    return [name for name in names if allows(key, name)]


async def _known(relay: Relay, request: Request, name: str) -> str:
    key, _ = await relay.gateway.keys.authenticate(request)
    check_model_name(name)
    target = relay.config.aliases.get(name, name)
    if not allows(key, name) or _owner(relay, target, key.group) is None:
        raise RelayError(
            404,
            "not_found",
            f"The model '{name}' does not exist or you do not have access to it",
            param="model",
            code="model_not_found",
        )
    return name


def _owner(relay: Relay, name: str, group: str | None = None) -> str | None:
    """The type of the first channel serving ``name`` (for the key's ``group``, when given)."""
    for channel in relay.config.channels:
        if group is not None and group not in channel.groups:
            continue
        if upstream_name(channel, name) is not None:
            return channel.type
    return None


def _openai(relay: Relay, name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": _owner(relay, name) or "relay"}


def _anthropic(name: str) -> dict[str, Any]:
    return {"type": "model", "id": name, "display_name": name, "created_at": CREATED_AT}


def _gemini(name: str) -> dict[str, Any]:
    return {"name": f"models/{name}", "displayName": name, "supportedGenerationMethods": list(GEMINI_METHODS)}


def _anthropic_page(names: list[str], request: Request) -> dict[str, Any]:
    query = request.query_params()
    limit = _int_param(query.get("limit"), "limit", default=20, low=1, high=1000)
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None and before is not None:
        raise RelayError(400, "invalid_request", "give after_id or before_id, not both", param="before_id")
    if after is not None:
        rest = names[names.index(after) + 1 :] if after in names else []
        page = rest[:limit]
        has_more = len(rest) > limit
    elif before is not None:
        rest = names[: names.index(before)] if before in names else []
        page = rest[-limit:]
        has_more = len(rest) > limit
    else:
        page = names[:limit]
        has_more = len(names) > limit
    return {
        "data": [_anthropic(name) for name in page],
        "has_more": has_more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }


def _int_param(raw: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise RelayError(400, "invalid_request", f"'{name}' must be an integer from {low} to {high}", param=name)
    return int(raw)


def _page_token(raw: str | None) -> int:
    if not raw:
        return 0
    try:
        value = base64.urlsafe_b64decode(raw.encode()).decode()
    except ValueError:
        value = ""
    if not value.isdigit():
        raise RelayError(400, "invalid_request", "'pageToken' is not a token this server gave", param="pageToken")
    return int(value)

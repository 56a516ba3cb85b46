"""The dashboard's playground (``POST /pg/chat/completions``, docs/dashboard.md): a Chat Completions request made
by a signed-in admin and billed to a key the admin names.

The caller authenticates as the admin API does (a dashboard session or an admin key; role ``admin``) and names the
key in the ``x-relay-key`` header, so the body is a Chat Completions body exactly as the upstream gets it. The key is
checked as if it had been presented (disabled, expired, its address list), put in the request's tally, and the
request runs the Chat Completions pipeline from there: the key's model list, rate limits and quota hold, the same
settlement and one request-log row under the key's name (its route, ``/pg/chat/completions``, tells it came from
the playground).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay.admin.auth import admin_caller
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route

from .generate import chat_completions_of_key, tally

if TYPE_CHECKING:
    from relay.app import Relay

__all__ = ["KEY_HEADER", "ROUTES"]

#: The header naming the key to bill.
KEY_HEADER = b"x-relay-key"


async def chat_completions(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    admin_caller(relay, request)
    tally(request).logged = True  # unlike admin calls, the playground's requests are logged and billed
    name = (request.header(KEY_HEADER) or "").strip()
    if not name:
        raise RelayError(
            400,
            "invalid_request",
            "Name the key to bill in the x-relay-key header.",
            param="x-relay-key",
            code="missing_key_name",
        )
    try:
        key = await relay.gateway.keys.named(request, name)
    except RelayError as error:
        if error.status != 401:
            raise
        # The session is fine; the named key is not usable: a 403, so the dashboard does not sign out.
        raise RelayError(403, "permission", f"Key {name!r}: {error.message}.", code=error.code) from None
    tally(request).key = key
    return await chat_completions_of_key(relay, request, out, request.header(b"x-relay-channel") or None)


ROUTES: tuple[Route, ...] = (Route("POST", "/pg/chat/completions", chat_completions),)

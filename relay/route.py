"""One route of Relay's table (``relay.routes``): a method, a path template, its endpoint and its error dialect.

Its own module so that an endpoint module can declare its routes (``ROUTES``) without importing the table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

import attrs

from relay.endpoints import models
from relay.http.messages import Request, Response, StreamResponse

if TYPE_CHECKING:
    from relay.app import Relay

#: The error shape of a route: ``openai_or_anthropic`` is the shared ``/v1/models``, Anthropic's when
#: the request carries ``anthropic-version``.
Dialect = Literal["openai", "anthropic", "gemini"]
RouteDialect = Literal["openai", "anthropic", "gemini", "openai_or_anthropic"]
Endpoint = Callable[["Relay", Request, StreamResponse], Awaitable[Response | None]]


@attrs.frozen
class Route:
    method: str
    path: str
    endpoint: Endpoint
    #: The dialect whose error shape this route's errors take.
    dialect: RouteDialect = "openai"
    #: The route takes uploads (multipart forms of images, audio, files): its body may be up to
    #: ``[limits] max_upload_bytes`` instead of ``max_body_bytes``.
    uploads: bool = False
    #: The endpoint reads the body as it arrives (``Request.body_stream``, streamed to the upstream) instead of
    #: getting it whole in ``Request.body`` (relay.http.body_stream); such a route takes uploads.
    streamed: bool = False

    def dialect_for(self, request: Request) -> Dialect:
        if self.dialect == "openai_or_anthropic":
            return "anthropic" if models.wants_anthropic(request) else "openai"
        return self.dialect

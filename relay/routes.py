"""THE routing table: every method, path, alias and prefix Relay answers, in one list.

``{name}`` matches one path segment; ``{name:path}`` matches the rest of the path, slashes included.
Parameters arrive percent-decoded in ``request.params``. An unknown path is a 404; a known path
with another method is a 405 with ``Allow``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote

import attrs

from relay.endpoints import chat, health, models
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse

if TYPE_CHECKING:
    from relay.app import Relay

Dialect = Literal["openai"]
Endpoint = Callable[["Relay", Request, StreamResponse], Awaitable[Response | None]]


@attrs.frozen
class Route:
    method: str
    path: str
    endpoint: Endpoint
    #: The dialect whose error shape this route's errors take.
    dialect: Dialect = "openai"


ROUTES: tuple[Route, ...] = (
    # OpenAI Chat Completions
    Route("POST", "/v1/chat/completions", chat.completions),
    Route("POST", "/chat/completions", chat.completions),
    # OpenAI model lists
    Route("GET", "/v1/models", models.list_models),
    Route("GET", "/v1/models/{model:path}", models.get_model),
    Route("GET", "/models", models.list_models),
    Route("GET", "/models/{model:path}", models.get_model),
    # Operations
    Route("GET", "/healthz", health.healthz),
)


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self._static: dict[str, dict[str, Route]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Route]]] = []
        for route in routes:
            if "{" not in route.path:
                self._static.setdefault(route.path, {})[route.method] = route
                continue
            pattern = _compile(route.path)
            for existing, methods in self._patterns:
                if existing.pattern == pattern.pattern:
                    methods[route.method] = route
                    break
            else:
                self._patterns.append((pattern, {route.method: route}))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its parameters; RelayError 404 or 405 when there is none."""
        methods, params = self._lookup(path)
        if methods is None:
            raise RelayError(404, "not_found", f"no route for {method} {path}", code="unknown_route")
        route = methods.get(method)
        if route is None:
            allow = ", ".join(sorted(methods))
            raise RelayError(
                405,
                "method_not_allowed",
                f"{method} is not allowed on {path}; use {allow}",
                code="method_not_allowed",
                headers=((b"allow", allow.encode()),),
            )
        return route, params

    def dialect_of(self, path: str) -> Dialect:
        """The dialect of the routes at ``path`` (OpenAI for unknown paths)."""
        methods, _ = self._lookup(path)
        return next(iter(methods.values())).dialect if methods else "openai"

    def _lookup(self, path: str) -> tuple[dict[str, Route] | None, dict[str, str]]:
        methods = self._static.get(path)
        if methods is not None:
            return methods, {}
        for pattern, candidates in self._patterns:
            found = pattern.fullmatch(path)
            if found:
                return candidates, {k: unquote(v) for k, v in found.groupdict().items()}
        return None, {}


def _compile(template: str) -> re.Pattern[str]:
    regex = ""
    for literal, name, kind in re.findall(r"([^{]*)(?:\{(\w+)(?::(\w+))?\})?", template):
        regex += re.escape(literal)
        if name:
            regex += f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)"
    return re.compile(regex)

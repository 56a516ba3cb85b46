"""THE routing table: every method, path, alias and prefix Relay answers, in one list.

``{name}`` matches one path segment; ``{name:path}`` matches the rest of the path, slashes included.
Parameters arrive percent-decoded in ``request.params``. An unknown path is a 404; a known path
with another method is a 405 with ``Allow``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote

from relay.admin import api as admin_api
from relay.admin import dashboard_api
from relay.dashboard import serve as dashboard
from relay.endpoints import (
    audio,
    batches,
    completions,
    conversations,
    count,
    embeddings,
    files,
    generate,
    health,
    images,
    live,
    mcp_proxy,
    metrics_endpoint,
    models,
    owner_usage,
    playground,
    realtime,
    rerank,
    stored_responses,
)
from relay.errors import RelayError
from relay.route import Dialect, Route, RouteDialect
from relay.utility import (
    endpoints_extract,
    endpoints_render,
    endpoints_research,
    endpoints_search,
    endpoints_segment,
    endpoints_summarize,
    endpoints_transcribe,
    endpoints_translate,
)

__all__ = ["ROUTES", "Dialect", "Route", "RouteDialect", "Router"]


def _gemini(prefix: str, *, lists: bool) -> tuple[Route, ...]:
    """Gemini's routes under ``prefix``; the model lists only where ``/models`` is Gemini's own."""
    routes = (
        Route("POST", prefix + "/models/{model}:generateContent", generate.generate_content, "gemini"),
        Route("POST", prefix + "/models/{model}:streamGenerateContent", generate.stream_generate_content, "gemini"),
        Route("POST", prefix + "/models/{model}:countTokens", count.gemini_count, "gemini"),
    )
    if lists:
        routes += (
            Route("GET", prefix + "/models", models.list_gemini_models, "gemini"),
            Route("GET", prefix + "/models/{model:path}", models.get_gemini_model, "gemini"),
        )
    return routes


def _anthropic(prefix: str) -> tuple[Route, ...]:
    return (
        Route("POST", prefix + "/v1/messages", generate.messages, "anthropic"),
        Route("POST", prefix + "/v1/messages/count_tokens", count.anthropic_count, "anthropic"),
    )


ROUTES: tuple[Route, ...] = (
    # OpenAI Chat Completions and Responses (also under Gemini's OpenAI-compatible prefix)
    Route("POST", "/v1/chat/completions", generate.chat_completions),
    Route("POST", "/chat/completions", generate.chat_completions),
    Route("POST", "/v1beta/openai/chat/completions", generate.chat_completions),
    Route("POST", "/v1/responses", generate.responses),
    Route("POST", "/responses", generate.responses),
    Route("POST", "/v1/responses/input_tokens", count.responses_count),
    Route("POST", "/responses/input_tokens", count.responses_count),
    # Anthropic Messages, also under /claude
    *_anthropic(""),
    *_anthropic("/claude"),
    # Gemini: /v1beta, /v1 (the SDK may call either) and /gemini/{version}. Before the model lists,
    # so that /v1/models/{model}:generateContent is not taken for a model named "…:generateContent"
    # (the embeddings' verbs, :embedContent and :batchEmbedContents, likewise).
    *embeddings.ROUTES,
    *_gemini("/v1beta", lists=True),
    *_gemini("/v1", lists=False),
    *_gemini("/gemini/{version}", lists=True),
    # The other APIs beside generation (each module's own table)
    *completions.ROUTES,
    *rerank.ROUTES,
    *stored_responses.ROUTES,
    *conversations.ROUTES,
    *owner_usage.ROUTES,
    *files.ROUTES,
    *batches.ROUTES,
    *audio.ROUTES,
    *images.ROUTES,
    *mcp_proxy.ROUTES,
    *realtime.ROUTES,
    *live.ROUTES,
    # The task endpoints (docs/utility.md)
    *endpoints_extract.ROUTES,
    *endpoints_segment.ROUTES,
    *endpoints_summarize.ROUTES,
    *endpoints_translate.ROUTES,
    *endpoints_search.ROUTES,
    *endpoints_transcribe.ROUTES,
    *endpoints_render.ROUTES,
    *endpoints_research.ROUTES,
    # Model lists: OpenAI's shape, Anthropic's on request
    Route("GET", "/v1/models", models.list_models, "openai_or_anthropic"),
    Route("GET", "/v1/models/{model:path}", models.get_model, "openai_or_anthropic"),
    Route("GET", "/models", models.list_models),
    Route("GET", "/models/{model:path}", models.get_model),
    Route("GET", "/v1beta/openai/models", models.list_models),
    Route("GET", "/v1beta/openai/models/{model:path}", models.get_model),
    Route("GET", "/claude/v1/models", models.list_models, "anthropic"),
    Route("GET", "/claude/v1/models/{model:path}", models.get_model, "anthropic"),
    # Operations
    Route("GET", "/healthz", health.healthz),
    *metrics_endpoint.ROUTES,
    *admin_api.ROUTES,
    # The web dashboard: its files, its admin calls and its playground (docs/dashboard.md)
    *dashboard_api.ROUTES,
    *dashboard.ROUTES,
    *playground.ROUTES,
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

    def takes_uploads(self, path: str) -> bool:
        """Whether a route at ``path`` (any method) takes uploads (``Route.uploads``)."""
        methods, _ = self._lookup(path)
        return bool(methods) and any(route.uploads or route.streamed for route in methods.values())

    def streams_body(self, path: str) -> bool:
        """Whether the route at ``path`` reads its body as it arrives (``Route.streamed``)."""
        methods, _ = self._lookup(path)
        return bool(methods) and any(route.streamed for route in methods.values())

    def dialect_of(self, path: str) -> Dialect:
        """The error dialect at ``path``: its routes', else the one its prefix suggests (OpenAI's by default)."""
        methods, _ = self._lookup(path)
        if methods:
            dialect = next(iter(methods.values())).dialect
            return "openai" if dialect == "openai_or_anthropic" else dialect
        if path.startswith(("/v1beta/", "/gemini/")) and not path.startswith("/v1beta/openai/"):
            return "gemini"
        return "anthropic" if path.startswith(("/claude/", "/v1/messages")) else "openai"

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

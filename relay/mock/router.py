"""Every route of the mock upstream, for the HTTP server and the in-process transport (relay.mock.transport) alike.

``Mock.route`` is sans-IO: method, path, query, headers and body in, an ``Answer`` out (a refusal, a
listing, a body or a stream's frames). ``deliver`` does the waiting a reply asks for (first byte,
chunk gaps, stalls, drops). Paths match by their end, so ``/v1/chat/completions``,
``/chat/completions`` and a transport's ``/<channel>/chat/completions`` are one route.

The dialect of a route sets its key header and its error shape. ``GET …/models`` lists models in
Anthropic's shape when ``anthropic-version`` is sent, in Gemini's under ``/v1beta/`` or when a Gemini
key (``x-goog-api-key``, ``?key=``) or ``x-goog-api-client`` is sent, else in OpenAI's.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import trio

from relay.config import MockOptions
from relay.mock import (
    wire_anthropic,
    wire_audio,
    wire_chat,
    wire_completions,
    wire_embeddings,
    wire_files,
    wire_fixtures,
    wire_gemini,
    wire_images,
    wire_mcp,
    wire_realtime,
    wire_rerank,
    wire_responses,
    wire_search,
    wire_stored_responses,
)
from relay.mock.call import Call, Dialect, Handler, RouteEntry, error, load_json
from relay.mock.model import Answer, Headers, Reply, json_answer

DEFAULT_MODELS = ("mock-1", "mock-2", "gpt-4o-mini")


class Mock:
    """The mock upstream's routing, keys and models; one per server or transport."""

    def __init__(
        self, options: MockOptions | None = None, models: Sequence[str] = DEFAULT_MODELS, api_key: str | None = None
    ) -> None:
        self.options = options or MockOptions()
        self.models = list(models)
        self.api_key = api_key

    def route(self, method: str, path: str, query: str, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Answer:
        """The answer to one request, before any waiting."""
        call = Call(
            method.upper(),
            path,
            dict(parse_qsl(query, keep_blank_values=True)) if query else {},
            {k.lower(): v.decode("latin-1") for k, v in headers},
            body,
        )
        refused: Answer | None = None  # a route of the path for another method (another may take this one)
        for wanted, pattern, fixed, handler in _ROUTES:
            match = pattern.search(path)
            if match is None:
                continue
            dialect = fixed or _listing_dialect(call)
            if call.method != wanted:
                refused = refused or error(dialect, 405, f"mock upstream: use {wanted} for {path}")
                continue
            return self._refuse_key(dialect, call) or handler(self, call, match, dialect)
        return refused or error(_listing_dialect(call), 404, f"mock upstream has no route {call.method} {path}")

    def refuse_realtime(self, headers: Iterable[tuple[bytes, bytes]], query: str) -> Answer | None:
        """A Realtime WebSocket refused (no model, a wrong key: the OpenAI way), or None."""
        call = Call("GET", "/v1/realtime", {}, {k.lower(): v.decode("latin-1") for k, v in headers}, b"")
        if not wire_realtime.model_of(query):
            return error("openai", 400, "Missing required parameter: 'model'.")
        return self._refuse_key("openai", call)

    def refuse_live(self, headers: Iterable[tuple[bytes, bytes]], query: str) -> Answer | None:
        """A Gemini Live WebSocket's key refused (the Gemini way), or None."""
        params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        call = Call("GET", "/ws", params, {k.lower(): v.decode("latin-1") for k, v in headers}, b"")
        return self._refuse_key("gemini", call)

    async def respond(
        self, method: str, path: str, query: str, headers: Iterable[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, Headers, bytes | AsyncIterator[bytes]]:
        return await deliver(self.route(method, path, query, headers, body))

    def _refuse_key(self, dialect: Dialect, call: Call) -> Answer | None:
        if self.api_key is None:
            return None
        if dialect == "openai":
            presented = call.bearer()
        elif dialect == "anthropic":
            presented = call.headers.get(b"x-api-key") or call.bearer()
        else:
            presented = call.headers.get(b"x-goog-api-key") or call.query.get("key")
        if presented and hmac.compare_digest(presented.encode(), self.api_key.encode()):
            return None
        return _key_error(dialect, presented)


async def deliver(answer: Answer) -> tuple[int, Headers, bytes | AsyncIterator[bytes]]:
    """Status, headers and body of an answer, after its first-byte wait; a stream's frames paced."""
    reply = answer.reply
    if reply is not None and reply.first_byte_delay:
        await trio.sleep(reply.first_byte_delay)
    if isinstance(answer.body, bytes):
        return answer.status, answer.headers, answer.body
    return answer.status, answer.headers, play(reply, answer.body)


async def play(reply: Reply | None, frames: Sequence[bytes]) -> AsyncIterator[bytes]:
    """The frames of a streamed answer, paced and cut as the reply's directives say."""
    directives = reply.directives if reply is not None else None
    for index, frame in enumerate(frames):
        if directives is not None:
            if directives.stall_after is not None and index >= directives.stall_after:
                await trio.sleep_forever()
            if directives.drop_after is not None and index >= directives.drop_after:
                return
            if index and reply is not None and reply.chunk_delay:
                await trio.sleep(reply.chunk_delay)
        yield frame


# ---- errors in each dialect's shape ----------------------------------------------------------------


def _key_error(dialect: Dialect, presented: str | None) -> Answer:
    if dialect == "anthropic":
        return wire_anthropic.error(401, "invalid x-api-key" if presented else "x-api-key header is required")
    if dialect == "gemini":
        if presented:
            return wire_gemini.error(400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
        return wire_gemini.error(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )
    if presented:
        return wire_chat.error(401, "mock upstream: incorrect API key provided", code="invalid_api_key")
    return wire_chat.error(
        401, "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.", code="missing_api_key"
    )


def _listing_dialect(call: Call) -> Dialect:
    if b"anthropic-version" in call.headers:
        return "anthropic"
    if "/v1beta/" in call.path or b"x-goog-api-key" in call.headers or "key" in call.query:
        return "gemini"
    return "gemini" if b"x-goog-api-client" in call.headers else "openai"


# ---- handlers --------------------------------------------------------------------------------------


def _json_route(handle: Callable[[Mock, Call, re.Match[str], Any], Answer]) -> Handler:
    def route(mock: Mock, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
        if dialect == "anthropic" and not call.headers.get(b"anthropic-version"):
            return wire_anthropic.error(400, "anthropic-version: header is required")
        payload = load_json(dialect, call.body)
        return payload if isinstance(payload, Answer) else handle(mock, call, match, payload)

    return route


@_json_route
def _chat(mock: Mock, call: Call, match: re.Match[str], payload: Any) -> Answer:
    return wire_chat.respond(payload, mock.options)


@_json_route
def _responses(mock: Mock, call: Call, match: re.Match[str], payload: Any) -> Answer:
    return wire_responses.respond(payload, mock.options)


@_json_route
def _input_tokens(mock: Mock, call: Call, match: re.Match[str], payload: Any) -> Answer:
    return wire_responses.input_tokens(payload)


@_json_route
def _messages(mock: Mock, call: Call, match: re.Match[str], payload: Any) -> Answer:
    return wire_anthropic.respond(payload, mock.options, call.headers.get(b"anthropic-beta", ""))


@_json_route
def _count_tokens(mock: Mock, call: Call, match: re.Match[str], payload: Any) -> Answer:
    return wire_anthropic.count_tokens(payload, call.headers.get(b"anthropic-beta", ""))


@_json_route
def _gemini(mock: Mock, call: Call, match: re.Match[str], payload: Any) -> Answer:
    name, verb = match["model"], match["verb"]
    if verb == "countTokens":
        return wire_gemini.count_tokens(payload)
    if verb == "generateContent":
        return wire_gemini.respond(payload, mock.options, name, stream=None)
    return wire_gemini.respond(payload, mock.options, name, stream="sse" if call.query.get("alt") == "sse" else "array")


def _list(mock: Mock, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    if dialect == "anthropic":
        return Answer(200, wire_anthropic.model_list(mock.models))
    if dialect == "gemini":
        return Answer(200, wire_gemini.model_list(mock.models))
    return Answer(200, wire_chat.model_list(mock.models))


def _get(mock: Mock, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    name = match["model"]
    if dialect == "anthropic":
        return Answer(200, wire_anthropic.model_info(name))
    if dialect == "gemini":
        return Answer(200, wire_gemini.model_info(name))
    return Answer(200, wire_chat.model_info(name))


def _gemini_unknown(mock: Mock, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    return json_answer(
        404, {"error": {"code": 404, "message": f"Method not found: {match['verb']}", "status": "NOT_FOUND"}}
    )


_ROUTES: tuple[RouteEntry, ...] = (
    *wire_embeddings.ROUTES,
    *wire_completions.ROUTES,
    *wire_rerank.ROUTES,
    *wire_stored_responses.ROUTES,
    *wire_files.ROUTES,
    *wire_fixtures.ROUTES,
    *wire_audio.ROUTES,
    *wire_images.ROUTES,
    *wire_mcp.ROUTES,
    *wire_realtime.ROUTES,
    *wire_search.ROUTES,
    ("POST", re.compile(r"/chat/completions$"), "openai", _chat),
    ("POST", re.compile(r"/responses/input_tokens$"), "openai", _input_tokens),
    ("POST", re.compile(r"/responses$"), "openai", _responses),
    ("POST", re.compile(r"/messages/count_tokens$"), "anthropic", _count_tokens),
    ("POST", re.compile(r"/messages$"), "anthropic", _messages),
    (
        "POST",
        re.compile(r"/models/(?P<model>[^/]+):(?P<verb>generateContent|streamGenerateContent|countTokens)$"),
        "gemini",
        _gemini,
    ),
    ("POST", re.compile(r"/models/(?P<model>[^/]+):(?P<verb>\w+)$"), "gemini", _gemini_unknown),
    ("GET", re.compile(r"/models$"), None, _list),
    ("GET", re.compile(r"/models/(?P<model>[^/:]+)$"), None, _get),
)

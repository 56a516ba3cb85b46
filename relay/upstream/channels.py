"""A channel at run time: its base URL, its credentials, and one upstream request with its timeouts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote, urlsplit

from relay.channel_defaults import DEFAULT_BASE_URLS, SEARCH_FAMILIES
from relay.config import ChannelConfig, UpstreamConfig
from relay.dialects import ir
from relay.errors import RelayError
from relay.mock.transport import MockTransport
from relay.tracing.outgoing import OUTGOING
from relay.upstream.pool import Pool, PoolExhausted
from relay.upstream.response import (
    Origin,
    RawHeaders,
    StreamedBody,
    Transport,
    UpstreamRequest,
    UpstreamResponse,
)

#: The code of the 503 a request gets when no pooled upstream connection became free in time.
POOL_EXHAUSTED = "upstream_pool_exhausted"
#: The client's headers a passthrough sends on, by dialect: Anthropic's betas change what a request may hold
#: (mid-conversation ``system`` messages, …), so the upstream must see those the client sent. Nothing else of the
#: client's goes upstream (its credentials least of all).
FORWARDED: Mapping[str, tuple[bytes, ...]] = {"anthropic": (b"anthropic-beta",)}


def forwarded(headers: Sequence[tuple[bytes, bytes]], dialect: str) -> tuple[tuple[str, str], ...]:
    """The client's ``headers`` a passthrough of ``dialect`` sends on (``FORWARDED``), but for ``oauth-…``
    betas: those make Anthropic expect a subscription's token instead of the channel's key."""
    names = FORWARDED.get(dialect, ())
    out: list[tuple[str, str]] = []
    for name, value in headers:
        if name in names:
            kept = [v.strip() for v in value.decode("latin-1").split(",") if not v.strip().startswith("oauth-")]
            if any(kept):
                out.append((name.decode(), ",".join(v for v in kept if v)))
    return tuple(out)


class Channel:
    def __init__(self, config: ChannelConfig, transport: Transport) -> None:
        self.config = config
        self.name = config.name
        #: The provider family whose API the channel speaks: openai, anthropic or gemini, or a search provider's.
        self.family = config.mock.dialect if config.type == "mock" else config.type
        if config.type == "mock":
            self.base_url = "http://mock.invalid" + ("/v1" if self.family == "openai" else "")
        else:
            self.base_url = (config.base_url or DEFAULT_BASE_URLS[config.type]).rstrip("/")
        self._transport = transport
        #: The request headers for each upstream key of the channel's pool ("" when it has none).
        self._headers: dict[str, RawHeaders] = {
            key: tuple(
                (name.encode(), value.encode()) for name, value in _auth_headers(self.family, config, key).items()
            )
            for key in config.keys or ("",)
        }
        # The only timeout the transport keeps is connect's; the wait for a pooled connection is the pool's own
        # ([upstream] pool_timeout), and every other wait is the exchange's (relay.upstream.exchange).
        self._connect_timeout = config.timeouts.connect
        self._origin, self._authority, self._prefix = split_base_url(self.base_url)
        #: The (scheme, host, port) the channel's connections go to.
        self.origin: Origin = self._origin
        self._targets: dict[str, bytes] = {}

    def dialect_for(self, client: ir.Dialect) -> ir.Dialect:
        """The dialect spoken upstream for a client of ``client``'s dialect; a 400 for a search provider's
        channel (``SEARCH_FAMILIES``), which has no model to prompt (its models are for ``/v1/search``)."""
        if self.family in SEARCH_FAMILIES:
            raise RelayError(
                400,
                "invalid_request",
                f"channel '{self.name}' is a {self.family} search provider: its models answer /v1/search only",
                param="model",
                code="unsupported_model",
            )
        if self.family != "openai":
            return self.family  # type: ignore[return-value]
        api = self.config.api
        if api == "responses" or (api == "auto" and client == "openai_responses"):
            return "openai_responses"
        return "openai_chat"

    def path(self, dialect: ir.Dialect, model: str, stream: bool, *, sse: bool = True) -> str:
        """The path under ``base_url`` that generates with ``model`` in ``dialect``."""
        if dialect == "openai_chat":
            return "/chat/completions"
        if dialect == "openai_responses":
            return "/responses"
        if dialect == "anthropic":
            return "/v1/messages"
        if not stream:
            return f"/{self.config.api_version}/models/{quote(model, safe='')}:generateContent"
        return f"/{self.config.api_version}/models/{quote(model, safe='')}:streamGenerateContent" + (
            "?alt=sse" if sse else ""
        )

    def count_path(self, dialect: ir.Dialect, model: str) -> str:
        """The path that counts a request's input tokens in ``dialect``."""
        if dialect == "anthropic":
            return "/v1/messages/count_tokens"
        if dialect == "gemini":
            return f"/{self.config.api_version}/models/{quote(model, safe='')}:countTokens"
        return "/responses/input_tokens"

    def target(self, path: str) -> bytes:
        """The request target (path and query, percent-encoded) of ``path`` under the base URL."""
        target = self._targets.get(path)
        if target is None:
            target = encode_target(self._prefix + path)
            if "?" not in path:  # a query (a search's ``?q=…``) varies by request: not worth keeping
                self._targets[path] = target
        return target

    async def send(
        self,
        path: str,
        body: bytes | StreamedBody,
        api_key: str = "",
        extra: Sequence[tuple[str, str]] = (),
        *,
        method: str = "POST",
        content_type: str | None = None,
    ) -> UpstreamResponse:
        """Send ``body`` to ``path`` (a POST of JSON unless ``method`` and ``content_type`` say otherwise; no
        content type for a request without a body) with ``api_key`` (one of the channel's keys) and the
        client's ``extra`` headers (``forwarded``): the response once its head is in, its body still to read.
        A ``StreamedBody`` is written as its pieces come (the mock's transport, in process, takes it whole).

        Timeouts are the caller's (``relay.upstream.exchange``); the caller must close the response,
        which also closes the upstream connection when the body was not read to its end. When every pooled
        connection stays busy for ``[upstream] pool_timeout``: ``RelayError`` 503 ``upstream_pool_exhausted``,
        with ``retry-after`` (Relay is at its capacity; the channel is not at fault).
        """
        headers = self._headers.get(api_key) or self._headers[next(iter(self._headers))]
        if content_type is not None or (method != "POST" and not body):
            headers = tuple(h for h in headers if h[0] != b"content-type")
            if content_type is not None:
                headers = (*headers, (b"content-type", content_type.encode("latin-1")))
        if extra:
            # The client's own bytes (``forwarded`` read them as latin-1).
            headers = (*headers, *((name.encode("latin-1"), value.encode("latin-1")) for name, value in extra))
        if trace := OUTGOING.get():  # the upstream attempt's trace (relay.tracing): none when traces are off
            headers = (*headers, *trace)
        if isinstance(body, StreamedBody) and isinstance(self._transport, MockTransport):
            body = await body.read()
        request = UpstreamRequest(
            self._origin, self._authority, self.target(path), headers, body, self._connect_timeout, method.encode()
        )
        try:
            return await self._transport.send(request)
        except PoolExhausted as exc:
            raise pool_exhausted(f"channel '{self.name}': {exc}") from None


def pool_exhausted(detail: str) -> RelayError:
    """The 503 for a request that found every pooled upstream connection busy (``detail``: for the operator)."""
    return RelayError(
        503,
        "overloaded",
        "Relay is at its capacity: no upstream connection became free in time; retry in 1 s",
        code=POOL_EXHAUSTED,
        headers=((b"retry-after", b"1"),),
        detail=detail,
    )


def split_base_url(base_url: str) -> tuple[Origin, bytes, str]:
    """A base URL's origin, its ``host`` header value and its path prefix (``http://h:81/v1`` -> ``/v1``)."""
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {base_url!r}")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host.encode("idna").decode("ascii")
    authority = shown if port == default else f"{shown}:{port}"
    prefix = parts.path + (f"?{parts.query}" if parts.query else "")
    return (scheme.encode(), host, port), authority.encode("ascii"), prefix


def encode_target(target: str) -> bytes:
    """``target`` with what may not stand in a request line percent-encoded (``%`` escapes already there kept)."""
    return quote(target, safe="/?&=%:@!$'()*+,;-._~").encode("ascii")


def _auth_headers(family: str, config: ChannelConfig, api_key: str) -> dict[str, str]:
    """Each provider's own headers: its way of sending the key, and Anthropic's version header."""
    headers = {"content-type": "application/json", "user-agent": "relay"}
    if family == "anthropic":
        headers["anthropic-version"] = config.anthropic_version
        if api_key:
            headers["x-api-key"] = api_key
    elif family == "gemini":
        if api_key:
            headers["x-goog-api-key"] = api_key
    elif family == "exa":
        if api_key:
            headers["x-api-key"] = api_key
    elif family == "brave":
        headers["accept"] = "application/json"
        if api_key:
            headers["x-subscription-token"] = api_key
    elif api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


def build_channels(
    configs: Sequence[ChannelConfig], limits: UpstreamConfig | None = None
) -> tuple[Pool, Mapping[str, Channel]]:
    """The shared upstream pool (``[upstream]``'s limits), and every channel by name (a mock channel gets its
    mock transport)."""
    pool = Pool(limits)
    return pool, {c.name: channel_for(c, pool) for c in configs}


def channel_for(config: ChannelConfig, pool: Pool) -> Channel:
    """The channel of ``config``: through ``pool``, or its own mock transport for a ``mock`` channel."""
    return Channel(config, MockTransport(config.mock) if config.type == "mock" else pool)

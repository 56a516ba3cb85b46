"""relay.toml: frozen attrs classes structured by cattrs; every problem reported as ``path: problem``.

Loading reads TOML, replaces ``${VAR}`` (and ``${VAR:-default}``) in every string from the
environment, structures the result strictly (no unknown keys, no type coercion) and then checks
what types cannot say (names unique, URLs well formed, ...). All problems are collected and raised
together as one ``ConfigError``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from relay.channel_defaults import ChannelTimeouts
from relay.config_checks import check
from relay.http.limits import Limits


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@attrs.frozen
class ServerConfig:
    listen: str = "127.0.0.1:8080"
    #: Worker processes sharing the port (SO_REUSEPORT); ``relay serve --workers`` overrides it.
    workers: int = 1
    #: One line per request on stderr: request id, key name, method, path, status, duration.
    access_log: bool = True
    #: The model used when a request names none (Gemini names its model in the URL, so never there).
    default_model: str = ""
    #: Requests that go upstream (generation, token counting) served at once by one process; beyond it, an
    #: immediate 503 ``overloaded`` with ``retry-after``. Absent: ``[upstream] max_connections``.
    max_in_flight: int | None = None
    #: Answer ``GET /metrics`` to any caller; by default only to callers on this machine (docs/metrics.md).
    metrics_public: bool = False
    #: ``text`` (one human-readable line per event) or ``json`` (one JSON object per line) on stderr.
    log_format: Literal["text", "json"] = "text"
    #: The least severe log events written.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: A file ``relay serve`` writes its process id to (removed at its end), for ``relay reload``; empty: none.
    #: A relative path is taken relative to relay.toml's folder.
    pid_file: str = ""


@attrs.frozen
class StoreConfig:
    #: ``sqlite:///relay.db`` (a path relative to relay.toml's folder), ``sqlite:////abs/path.db``,
    #: ``sqlite://:memory:`` or ``postgresql://user@host/db``. See docs/store.md.
    url: str = "sqlite:///relay.db"
    #: Seconds between two reloads of the keys from the store (``relay keys`` changes show up within it).
    key_refresh: float = 2.0
    #: Request-log records written in one transaction, at most.
    log_batch: int = 1000
    #: Seconds between two writes of the request log (sooner when a batch is full).
    log_interval: float = 0.5
    #: Records held in memory while the store cannot be written; beyond it, the oldest are dropped (and counted).
    log_buffer: int = 100_000


@attrs.frozen
class RateLimitConfig:
    #: Empty: rate limits are counted in the store. ``redis://host:port/db``: counted in Redis.
    url: str = ""


@attrs.frozen
class UpstreamConfig:
    """The pool of upstream connections one process keeps (relay/upstream/pool.py), shared by every channel."""

    #: Connections open at once, idle ones included; a request beyond it waits up to ``pool_timeout`` for one.
    max_connections: int = 1000
    #: Idle connections kept per origin (scheme, host, port) for reuse.
    max_idle_per_origin: int = 100
    #: Seconds an idle connection is kept for reuse.
    keepalive_expiry: float = 30.0
    #: Seconds a request waits for a free connection when all are busy; then 503 ``upstream_pool_exhausted``.
    pool_timeout: float = 1.0


@attrs.frozen
class RoutingConfig:
    #: Channels (or upstream keys of one channel) a request may try before its error is returned.
    max_attempts: int = 3
    #: Consecutive failures that open a channel's breaker.
    breaker_failures: int = 5
    #: Seconds an open breaker waits before it lets one probe request through (half-open).
    breaker_cooldown: float = 30.0
    #: Seconds an upstream key rests after a 429 that names no ``retry-after``.
    key_rest: float = 1.0
    #: Seconds an upstream key is set aside after the upstream refused it (401 or 403).
    key_set_aside: float = 600.0


@attrs.frozen
class QuotaConfig:
    #: Output tokens assumed for the hold when a request sets no maximum of its own.
    default_max_output_tokens: int = 4096


@attrs.frozen
class Price:
    #: A model name or glob pattern (``gpt-4o*``), matched against the model the client asked for (after
    #: aliases); the first matching entry wins.
    model: str
    #: Credits per million input tokens.
    input: float = 0.0
    #: Credits per million output tokens (reasoning tokens included).
    output: float = 0.0
    #: Credits per million input tokens read from a cache; absent: the input price.
    cached_input: float | None = None
    #: Credits per million audio input tokens, audio output tokens, and cached audio input tokens (Realtime);
    #: absent: the text prices (``input``, ``output``, ``cached_input``).
    audio_input: float | None = None
    audio_output: float | None = None
    cached_audio_input: float | None = None
    #: Credits per image made (Images API), whatever its size; ``image_sizes`` prices sizes apart.
    image: float = 0.0
    #: Credits per image by ``"SIZE"`` or ``"SIZE/QUALITY"`` (``"1024x1024/hd"``): the most specific key wins,
    #: then ``image``.
    image_sizes: Mapping[str, float] = attrs.field(factory=dict)
    #: Credits per second of audio (transcription, translation).
    second: float = 0.0
    #: Credits per character of text made into speech.
    character: float = 0.0
    #: Credits per request answered, on top of the rest (rerank, moderation, search).
    request: float = 0.0


@attrs.frozen
class MockOptions:
    #: Chunks a streamed answer is split into.
    chunks: int = 8
    #: Seconds between two chunks.
    chunk_delay: float = 0.0
    #: Seconds before the answer starts (before the response head).
    first_byte_delay: float = 0.0
    #: The API the in-process mock channel speaks: ``openai`` (with the channel's ``api``), ``anthropic``
    #: or ``gemini``; or a search provider's (``tavily``, ``searxng``: the mock search engine, docs/utility.md).
    dialect: Literal["openai", "anthropic", "gemini", "tavily", "searxng"] = "openai"


#: ``tavily``, ``exa``, ``brave`` and ``searxng`` are search providers (``/v1/search``, docs/utility.md).
ChannelType = Literal["openai", "anthropic", "gemini", "mock", "tavily", "exa", "brave", "searxng"]
#: Which OpenAI API an ``openai`` channel speaks when the client's own API does not decide it.
OpenAIApi = Literal["auto", "chat", "responses"]


@attrs.frozen
class ChannelConfig:
    name: str
    type: ChannelType
    models: tuple[str, ...]
    #: Empty: the provider's own (``DEFAULT_BASE_URLS``).
    base_url: str = ""
    api_key: str = ""
    model_map: Mapping[str, str] = attrs.field(factory=dict)
    #: Exact model names ``/v1/models`` lists for this channel, beside ``model_map``'s keys and the exact
    #: names in ``models`` (a glob such as ``gpt-4o*`` is never listed). Each must be one the channel serves.
    list_models: tuple[str, ...] = ()
    #: ``openai`` channels: which of OpenAI's APIs the upstream serves. ``auto``: both (Responses clients get
    #: Responses, every other client Chat Completions); ``chat``: Chat Completions only (Responses clients are
    #: converted, as for vLLM, DeepSeek and most OpenAI-compatible servers); ``responses``: Responses for all.
    api: OpenAIApi = "auto"
    #: ``gemini`` channels: the API version in the path (``/v1beta/models/…``).
    api_version: str = "v1beta"
    #: ``anthropic`` channels: the ``anthropic-version`` header sent upstream.
    anthropic_version: str = "2023-06-01"
    timeouts: ChannelTimeouts = ChannelTimeouts()
    mock: MockOptions = MockOptions()
    #: Higher first: a channel is tried only when every channel of a higher priority failed or is unfit.
    priority: int = 0
    #: Share of the requests among channels of one priority (weighted random order).
    weight: int = 1
    #: The key groups this channel serves, separated by commas (``"default,vip"``).
    group: str = "default"
    #: A pool of upstream keys used in turn (with ``api_key``, when both are given, first).
    api_keys: tuple[str, ...] = ()
    #: Cost multiplier of this channel: a request's cost is its price times this.
    price_multiplier: float = 1.0
    #: ``openai`` channels serving ``/v1/rerank``: the shape of the upstream's rerank API. ``jina`` (``POST
    #: /rerank``, as Jina, vLLM and most OpenAI-compatible servers), ``cohere`` (``POST /v2/rerank`` under the
    #: base URL's origin) or ``voyage`` (``POST /rerank``, ``top_k``).
    rerank_api: Literal["jina", "cohere", "voyage"] = "jina"

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(g.strip() for g in self.group.split(",") if g.strip())

    @property
    def keys(self) -> tuple[str, ...]:
        """Every upstream key of the channel, in the order they are used."""
        return tuple(dict.fromkeys(k for k in (self.api_key, *self.api_keys) if k))


@attrs.frozen
class ResponsesConfig:
    """``[responses]``: the Responses API's state, kept by Relay for channels that keep none."""

    #: Days a stored response (its input and output items) is kept; 0: kept until deleted.
    retention_days: float = 30.0


@attrs.frozen
class UtilityConfig:
    """``[utility]``: the task endpoints (``/v1/extract``, ``/v1/summarize``, …; docs/utility.md)."""

    #: The largest document a ``url`` may fetch (bytes); a larger one is a 413.
    max_fetch_bytes: int = 20 * 1024 * 1024
    #: Seconds a fetch may take in all (connect, redirects, body); past it, a 504.
    fetch_timeout: float = 20.0
    #: Redirects a fetch follows; one more is a 502.
    max_redirects: int = 5
    #: Let a ``url`` reach private, loopback and link-local addresses (a lab or a test; never on a shared host).
    allow_private_urls: bool = False
    #: Host names (or IP networks, ``10.1.0.0/16``) a ``url`` may reach even though they resolve to private addresses.
    allow_hosts: tuple[str, ...] = ()
    #: Worker threads for the blocking work (document conversion, splitting), per process.
    threads: int = 4
    #: The model a task uses when the request names none; empty: ``[server] default_model``.
    model: str = ""
    #: Tokens per segment when a long input is summarized or translated in parts.
    segment_tokens: int = 2000
    #: The search provider's model ``/v1/search`` and ``/v1/research`` use when the request names none; empty:
    #: the request must name one.
    search_model: str = ""
    #: The models ``/v1/transcribe`` and ``/v1/render`` use when the request names none (an audio transcription
    #: model, an image model); empty: ``whisper-1`` and the Images API's own default (``dall-e-2``).
    transcribe_model: str = ""
    render_model: str = ""


@attrs.frozen
class TelemetryConfig:
    """``[telemetry]``: OpenTelemetry traces (docs/tracing.md; the ``otel`` extra), sent by OTLP/HTTP."""

    #: The collector's OTLP/HTTP URL: a base (``http://collector:4318``, traces go to its ``/v1/traces``) or the
    #: full traces URL. Empty: no traces, and OpenTelemetry is never imported.
    otlp_endpoint: str = ""
    #: The ``service.name`` of the spans' resource.
    service_name: str = "relay"
    #: The share of new traces recorded (0 to 1); a trace a client's ``traceparent`` began follows its own choice.
    sample_ratio: float = 1.0
    #: Headers sent with each export (a collector's credentials, …).
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class KeyConfig:
    name: str
    key: str
    models: tuple[str, ...] = ("*",)
    #: Credits the key starts with when it first enters the store; absent: unlimited.
    quota: float | None = None
    #: ``YYYY-MM-DD`` or an ISO 8601 time (UTC when it names no offset); absent: never.
    expires: str | None = None
    #: Requests per minute; absent: no limit.
    rpm: int | None = None
    #: Tokens (input and output) per minute; absent: no limit.
    tpm: int | None = None
    #: The channel group the key uses.
    group: str = "default"
    #: CIDRs the key may be used from (``["10.0.0.0/8", "127.0.0.1"]``); empty: anywhere.
    ips: tuple[str, ...] = ()


@attrs.frozen
class AdminKeyConfig:
    """``[[admin_keys]]``: a key of the admin API (``/admin/v1/``); ``viewer`` may only read (GET)."""

    name: str
    key: str
    role: Literal["admin", "viewer"] = "admin"


McpTransport = Literal["auto", "streamable_http", "sse"]


@attrs.frozen
class McpTimeouts:
    """``[mcp.timeouts]``: the waits of the MCP proxy's exchanges with one server (docs/apis/mcp.md)."""

    #: Seconds to open the TCP (and TLS) connection to the server. Then: 504 (refused: 502).
    connect: float = 10.0
    #: Seconds from sending a request to the head of the server's answer (a tool call's answer too). Then: 504.
    first_byte: float = 300.0
    #: Seconds the server may stay silent within the event stream answering a POST. The long-lived GET
    #: streams (server messages, legacy SSE) have no such limit: they last while the client and server keep them.
    idle: float = 300.0
    #: Seconds for a POST's whole exchange, its answer stream included.
    total: float = 900.0


@attrs.frozen
class McpServerConfig:
    """``[[mcp]]``: an MCP server Relay exposes at ``/v1/mcp/{name}`` to the keys it allows."""

    name: str
    #: The server's endpoint: its streamable-HTTP URL (``https://host/mcp``) or its legacy SSE URL
    #: (``https://host/sse``); ``mock``: the mock's MCP server, in process (no socket).
    url: str
    #: ``streamable_http`` or ``sse`` (the legacy HTTP+SSE transport); ``auto``: ``sse`` when the URL's path
    #: ends with ``/sse``, else ``streamable_http``.
    transport: McpTransport = "auto"
    #: Headers sent to the server with every request (its credentials: ``"Bearer ${DOCS_TOKEN}"``).
    headers: Mapping[str, str] = attrs.field(factory=dict)
    #: The names of the keys that may use the server, besides those of ``groups``.
    keys: tuple[str, ...] = ()
    #: The key groups whose keys may use the server.
    groups: tuple[str, ...] = ("default",)
    timeouts: McpTimeouts = McpTimeouts()

    @property
    def wire(self) -> Literal["streamable_http", "sse"]:
        """The transport the server speaks (``auto`` decided by the URL)."""
        if self.transport != "auto":
            return self.transport
        path = self.url.partition("?")[0].rstrip("/")
        return "sse" if path.endswith("/sse") else "streamable_http"


@attrs.frozen
class Config:
    server: ServerConfig = ServerConfig()
    limits: Limits = Limits()
    store: StoreConfig = StoreConfig()
    ratelimit: RateLimitConfig = RateLimitConfig()
    upstream: UpstreamConfig = UpstreamConfig()
    routing: RoutingConfig = RoutingConfig()
    quota: QuotaConfig = QuotaConfig()
    responses: ResponsesConfig = ResponsesConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    utility: UtilityConfig = UtilityConfig()
    channels: tuple[ChannelConfig, ...] = ()
    keys: tuple[KeyConfig, ...] = ()
    admin_keys: tuple[AdminKeyConfig, ...] = ()
    prices: tuple[Price, ...] = ()
    #: MCP servers exposed at ``/v1/mcp/{name}`` (docs/apis/mcp.md).
    mcp: tuple[McpServerConfig, ...] = ()
    #: Alias → model name: a request for the alias is served as a request for the model.
    aliases: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def max_in_flight(self) -> int:
        """``[server] max_in_flight``, or the pool's ``max_connections`` when it is absent."""
        server = self.server.max_in_flight
        return server if server is not None else self.upstream.max_connections


# ---- loading ----------------------------------------------------------------------------------


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """The file at ``path``; a relative SQLite store path is taken relative to the file's folder."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    config = loads(text, environ)
    url = config.store.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        absolute = Path(path).resolve().parent / url[len("sqlite:///") :]
        config = attrs.evolve(config, store=attrs.evolve(config.store, url=f"sqlite:///{absolute}"))
    pid_file = config.server.pid_file
    if pid_file and not Path(pid_file).is_absolute():
        resolved = str(Path(path).resolve().parent / pid_file)
        config = attrs.evolve(config, server=attrs.evolve(config.server, pid_file=resolved))
    return config


def loads(text: str, environ: Mapping[str, str] | None = None) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"toml: {exc}"]) from None
    # Missing environment variables, what the types got wrong and what the checks see: all in one run. A
    # missing variable reads as "" meanwhile; problems of that empty value (too short, ...) are not reported.
    missing: list[str] = []
    raw = _expand(raw, os.environ if environ is None else environ, "", missing)
    unset = {problem.partition(": ")[0] for problem in missing}

    def besides(found: list[str]) -> list[str]:
        return missing + [problem for problem in found if problem.partition(": ")[0] not in unset]

    try:
        config = _converter.structure(raw, Config)
    except (ClassValidationError, IterableValidationError) as exc:
        raise ConfigError(besides(_describe(exc, "") + check(raw))) from None
    problems = besides(check(raw))
    if problems:
        raise ConfigError(problems)
    return config


def load_channel(table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> ChannelConfig:
    """One ``[[channels]]`` table (a channel kept in the store): ``${VAR}`` replaced from the environment, structured
    and checked as relay.toml's are; ``ConfigError`` with every problem (paths relative to the table)."""
    missing: list[str] = []
    raw = _expand(dict(table), os.environ if environ is None else environ, "", missing)
    unset = {problem.partition(": ")[0] for problem in missing}
    found = [p.removeprefix("channels[0].").removeprefix("channels[0]") for p in check({"channels": [raw]})]
    try:
        channel = _converter.structure(raw, ChannelConfig)
    except (ClassValidationError, IterableValidationError) as exc:
        found = _describe(exc, "") + found
        channel = None
    problems = missing + [p for p in found if p.partition(": ")[0] not in unset]
    if problems or channel is None:
        raise ConfigError(problems)
    return channel


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: Any, environ: Mapping[str, str], path: str, problems: list[str]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            problems.append(f"{path}: environment variable {name} is not set")
            return ""

        return _VAR.sub(replace, value)
    if isinstance(value, dict):
        return {k: _expand(v, environ, _join(path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, environ, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


# ---- strict structuring -----------------------------------------------------------------------

_converter = cattrs.Converter(forbid_extra_keys=True)
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _strict(expected: type) -> Any:
    def structure(value: Any, _type: Any) -> Any:
        ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise TypeError(f"expected {_TYPE_NAMES[expected]}, got {_show(value)}")
        return value

    return structure


for _t in (str, int, float, bool):
    _converter.register_structure_hook(_t, _strict(_t))


def _structure_tuple(value: Any, type_: Any) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected an array, got {_show(value)}")
    element = get_args(type_)[0]
    items, errors = [], []
    for index, item in enumerate(value):
        try:
            items.append(_converter.structure(item, element))
        except Exception as exc:
            exc.__notes__ = [IterableValidationNote(f"@ index {index}", index, element)]
            errors.append(exc)
    if errors:
        raise IterableValidationError("invalid items", errors, type_)
    return tuple(items)


def _structure_mapping(value: Any, type_: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a table, got {_show(value)}")
    if get_args(type_)[1:] == (float,):  # prices by key (``image_sizes``)
        bad = [k for k, v in value.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0]
        if bad:
            raise TypeError(f"expected numbers of 0 or more, got {_show(value[bad[0]])} for {bad[0]!r}")
        return {k: float(v) for k, v in value.items()}
    bad = [k for k, v in value.items() if not isinstance(v, str)]
    if bad:
        raise TypeError(f"expected string values, got {_show(value[bad[0]])} for {bad[0]!r}")
    return dict(value)


def _structure_table(cls: type) -> Any:
    """attrs classes: a table is required (cattrs would fail on anything else with a confusing message)."""
    inner = make_dict_structure_fn(cls, _converter)

    def structure(value: Any, type_: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected a table, got {_show(value)}")
        return inner(value, type_)

    return structure


_converter.register_structure_hook_factory(attrs.has, _structure_table)
_converter.register_structure_hook_func(lambda t: get_origin(t) is tuple, _structure_tuple)
_converter.register_structure_hook_func(lambda t: get_origin(t) is Mapping, _structure_mapping)


def _show(value: Any) -> str:
    kind = {
        dict: "a table",
        list: "an array",
        bool: "a boolean",
        str: "a string",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)
    return f"{kind} ({value!r})" if isinstance(value, (int, float, str)) else kind


def _describe(exc: BaseException, path: str) -> list[str]:
    """Flatten cattrs' nested exception groups into ``path: problem`` lines."""
    problems: list[str] = []
    if isinstance(exc, ForbiddenExtraKeysError):
        problems += [f"{_join(path, key)}: unknown key" for key in sorted(exc.extra_fields)]
    elif isinstance(exc, (ClassValidationError, IterableValidationError)):
        for sub in exc.exceptions:
            note = _note_of(sub)
            if note is None:
                problems += _describe(sub, path)
            elif isinstance(note, str):
                problems += _describe(sub, _join(path, note))
            else:
                problems += _describe(sub, f"{path}[{note}]")
    elif isinstance(exc, KeyError):
        problems.append(f"{path}: required key missing")
    elif " not in literal " in str(exc):
        problems.append(f"{path}: {_literal_problem(str(exc))}")
    elif path.rpartition(".")[2].partition("[")[0] in _SECRETS:
        problems.append(f"{path}: {re.sub(r' [(].*[)]$', '', str(exc))}")  # never print a secret
    else:
        problems.append(f"{path}: {exc}")
    return problems


#: Fields whose values are secrets: problems with them never show the value.
_SECRETS = ("key", "api_key", "api_keys")


def _note_of(exc: BaseException) -> str | int | None:
    for note in getattr(exc, "__notes__", []):
        name = getattr(note, "name", None)
        if name is not None:
            return name
        index = getattr(note, "index", None)
        if index is not None:
            return index
    return None


def _literal_problem(message: str) -> str:
    match = re.search(r"(.*) not in literal .*Literal\[(.*)\]", message)
    if match:
        return f"must be one of {match.group(2)}, got {match.group(1)!r}"
    return message

"""What relay.toml's types cannot say: names unique, URLs well formed, numbers in range, keys' CIDRs and
expiry dates, the store and Redis URLs.

The checks read the raw tables and skip values of the wrong type (structuring reports those), so one
run of ``relay check-config`` reports every problem of a file.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

import attrs

from relay.channel_defaults import DEFAULT_BASE_URLS, ChannelTimeouts
from relay.http.limits import Limits
from relay.http.server import parse_listen


def parse_expiry(text: str) -> float:
    """``YYYY-MM-DD`` (the start of that day, UTC) or an ISO 8601 time (UTC when it names no offset), as
    Unix seconds; raises ValueError naming the accepted forms."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"expected YYYY-MM-DD or an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def check(raw: Mapping[str, Any]) -> list[str]:
    """What types cannot say: names unique, URLs well formed, numbers in range, ...

    It reads the raw tables and skips values of the wrong type (structuring reports those), so one
    run reports every problem of a file.
    """
    problems: list[str] = []
    server = _table(raw.get("server"))
    listen = server.get("listen")
    if isinstance(listen, str):
        try:
            parse_listen(listen)
        except ValueError as exc:
            problems.append(f"server.listen: {exc}")
    _at_least(problems, server, "server", "workers", 1)
    _at_least(problems, server, "server", "max_in_flight", 1)
    upstream = _table(raw.get("upstream"))
    _at_least(problems, upstream, "upstream", "max_connections", 1)
    _at_least(problems, upstream, "upstream", "max_idle_per_origin", 0)
    _positive(problems, upstream, "upstream", "keepalive_expiry")
    _at_least(problems, upstream, "upstream", "pool_timeout", 0)
    limits = _table(raw.get("limits"))
    for field in attrs.fields(Limits):
        _positive(problems, limits, "limits", field.name)
    channels = _tables(raw.get("channels"))
    _unique(problems, "channels", [(i, c.get("name")) for i, c in channels], "name")
    for i, channel in channels:
        where = f"channels[{i}]"
        url = channel.get("base_url", "")
        if channel.get("type") in DEFAULT_BASE_URLS and "base_url" in channel and isinstance(url, str):
            problem = url_problem(url)
            if problem:
                problems.append(f"{where}.base_url: {problem}")
        if channel.get("type") == "searxng" and isinstance(url, str):  # self-hosted: no default to fall back on
            problem = url_problem(url) if url else "a searxng channel needs its server's base_url"
            if problem:
                problems.append(f"{where}.base_url: {problem}")
        if channel.get("models") == [] and not channel.get("model_map"):
            problems.append(f"{where}.models: list at least one model")
        problems += _list_models_problems(channel, where)
        timeouts = _table(channel.get("timeouts"))
        for field in attrs.fields(ChannelTimeouts):
            _positive(problems, timeouts, f"{where}.timeouts", field.name)
        _at_least(problems, _table(channel.get("mock")), f"{where}.mock", "chunks", 1)
        _at_least(problems, channel, where, "weight", 1)
        _at_least(problems, channel, where, "price_multiplier", 0)
        if isinstance(channel.get("group"), str) and not channel["group"].replace(",", "").strip():
            problems.append(f"{where}.group: name at least one group")
    keys = _tables(raw.get("keys"))
    _unique(problems, "keys", [(i, k.get("name")) for i, k in keys], "name")
    _unique(problems, "keys", [(i, k.get("key")) for i, k in keys], "key", show=False)
    for i, key in keys:
        problems += key_problems(key, f"keys[{i}]")
    problems += _admin_key_problems(raw, {k.get("key") for _, k in keys})
    problems += _gateway_problems(raw)
    problems += _telemetry_problems(_table(raw.get("telemetry")))
    problems += _utility_problems(_table(raw.get("utility")))
    problems += _mcp_problems(raw)
    return problems


def _utility_problems(utility: dict[str, Any]) -> list[str]:
    """``[utility]``: the fetcher's limits and the threads positive, a part at least the splitter's least."""
    problems: list[str] = []
    for name in ("max_fetch_bytes", "fetch_timeout", "threads"):
        _positive(problems, utility, "utility", name)
    _at_least(problems, utility, "utility", "max_redirects", 0)
    _at_least(problems, utility, "utility", "segment_tokens", 64)
    hosts = utility.get("allow_hosts")
    for host in hosts if isinstance(hosts, list) else []:
        if isinstance(host, str) and (not host.strip() or "://" in host):
            problems.append(f"utility.allow_hosts: {host!r} is not a host, host:port or network")
    return problems


#: Headers Relay writes itself on a request to an MCP server: ``[[mcp]] headers`` may not set them.
_MCP_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "mcp-session-id"})


def _mcp_problems(raw: Mapping[str, Any]) -> list[str]:
    """``[[mcp]]``: names unique and fit for a path segment, URLs well formed, headers sendable, someone allowed."""
    problems: list[str] = []
    servers = _tables(raw.get("mcp"))
    _unique(problems, "mcp", [(i, s.get("name")) for i, s in servers], "name")
    for i, server in servers:
        where = f"mcp[{i}]"
        name = server.get("name")
        if isinstance(name, str) and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            problems.append(f"{where}.name: use letters, digits, '_', '.' and '-' (it is a path segment), got {name!r}")
        url = server.get("url")
        if isinstance(url, str) and url != "mock":
            problem = url_problem(url.partition("?")[0])
            if problem:
                problems.append(f"{where}.url: {problem} (or 'mock', the mock's MCP server)")
        if url == "mock" and server.get("transport") == "sse":
            problems.append(f"{where}.transport: the mock's MCP server speaks streamable_http only")
        headers = server.get("headers")
        for header, value in (headers if isinstance(headers, dict) else {}).items():
            if not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", header):
                problems.append(f"{where}.headers: {header!r} is not a header name")
            elif header.lower() in _MCP_OWN_HEADERS:
                problems.append(f"{where}.headers.{header}: Relay sets this header itself")
            elif isinstance(value, str) and re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
                problems.append(f"{where}.headers.{header}: the value holds a line break or control character")
        if server.get("keys", []) == [] and server.get("groups", ["default"]) == []:
            problems.append(f"{where}: no key may use this server: list key names in keys or key groups in groups")
        timeouts = _table(server.get("timeouts"))
        for field in ("connect", "first_byte", "idle", "total"):
            _positive(problems, timeouts, f"{where}.timeouts", field)
    return problems


#: The modules traces need (the ``otel`` extra), looked for without importing them.
OTEL_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter")


def _telemetry_problems(telemetry: dict[str, Any]) -> list[str]:
    """``[telemetry]``: an http(s) collector URL, a ratio from 0 to 1, and the ``otel`` extra installed."""
    problems: list[str] = []
    ratio = _number(telemetry.get("sample_ratio"))
    if ratio is not None and not 0 <= ratio <= 1:
        problems.append("telemetry.sample_ratio: must be from 0 to 1")
    if isinstance(telemetry.get("service_name"), str) and not telemetry["service_name"].strip():
        problems.append("telemetry.service_name: must not be empty")
    headers = telemetry.get("headers")
    for header, value in (headers if isinstance(headers, dict) else {}).items():
        if not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", header):
            problems.append(f"telemetry.headers: {header!r} is not a header name")
        elif isinstance(value, str) and re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
            problems.append(f"telemetry.headers.{header}: the value holds a line break or control character")
    url = telemetry.get("otlp_endpoint")
    if not isinstance(url, str) or not url:
        return problems
    parts = urlsplit(url)
    if "@" in parts.netloc:  # and do not print them
        problems.append("telemetry.otlp_endpoint: must not hold credentials: put them in telemetry.headers")
    elif not re.fullmatch(r"[!-~]+", url) or parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"telemetry.otlp_endpoint: must be an http:// or https:// URL with a host, got {url!r}")
    missing = [name for name in OTEL_MODULES if not _importable(name)]
    if missing:
        problems.append(
            f"telemetry.otlp_endpoint: traces need OpenTelemetry ({missing[0]} is not installed): "
            "pip install 'relay[otel]'"
        )
    return problems


def _importable(module: str) -> bool:
    """Whether ``module`` can be imported (its parent packages are imported to tell; it is not)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def _admin_key_problems(raw: Mapping[str, Any], relay_keys: set[Any]) -> list[str]:
    """``[[admin_keys]]``: names and keys unique, keys long enough, none also a relay key."""
    problems: list[str] = []
    admins = _tables(raw.get("admin_keys"))
    _unique(problems, "admin_keys", [(i, k.get("name")) for i, k in admins], "name")
    _unique(problems, "admin_keys", [(i, k.get("key")) for i, k in admins], "key", show=False)
    for i, admin in admins:
        key = admin.get("key")
        if isinstance(key, str) and len(key) < 16:
            problems.append(f"admin_keys[{i}].key: use at least 16 characters")
        if isinstance(key, str) and key in relay_keys:
            problems.append(f"admin_keys[{i}].key: is also a key of [[keys]]; an admin key must be its own")
    return problems


def _list_models_problems(channel: Mapping[str, Any], where: str) -> list[str]:
    """``list_models``: exact names (no glob), each served by the channel (its ``models`` or ``model_map``)."""
    listed, models, mapped = channel.get("list_models"), channel.get("models"), channel.get("model_map")
    patterns = [m for m in models if isinstance(m, str)] if isinstance(models, list) else []
    aliases = mapped if isinstance(mapped, dict) else {}
    problems: list[str] = []
    for j, name in enumerate(listed if isinstance(listed, list) else []):
        if not isinstance(name, str):
            continue
        if not name or any(ch in name for ch in "*?["):
            problems.append(f"{where}.list_models[{j}]: must be an exact model name, not a pattern, got {name!r}")
        elif name not in aliases and not any(fnmatchcase(name, pattern) for pattern in patterns):
            problems.append(f"{where}.list_models[{j}]: {name!r} is not served by this channel's models or model_map")
    return problems


def key_problems(key: Mapping[str, Any], where: str) -> list[str]:
    """What is wrong with a key's fields (from relay.toml, or from ``relay keys create``)."""
    problems: list[str] = []
    if isinstance(key.get("key"), str) and len(key["key"]) < 8:
        problems.append(f"{where}.key: must be at least 8 characters")
    if "#" in str(key.get("key", "")):
        problems.append(f"{where}.key: must not contain '#' (it separates a key from a pinned channel)")
    _at_least(problems, key, where, "quota", 0)
    _at_least(problems, key, where, "rpm", 1)
    _at_least(problems, key, where, "tpm", 1)
    if isinstance(key.get("expires"), str):
        try:
            parse_expiry(key["expires"])
        except ValueError as exc:
            problems.append(f"{where}.expires: {exc}")
    if isinstance(key.get("group"), str) and not key["group"].strip():
        problems.append(f"{where}.group: must not be empty")
    ips = key.get("ips")
    for j, cidr in enumerate(ips if isinstance(ips, list) else []):
        if isinstance(cidr, str):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                problems.append(f"{where}.ips[{j}]: expected an IP address or a CIDR, got {cidr!r}")
    return problems


def _gateway_problems(raw: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    store = _table(raw.get("store"))
    url = store.get("url")
    if isinstance(url, str):
        from relay.store import StoreURLError, check_url

        try:
            check_url(url)
        except StoreURLError as exc:
            problems.append(f"store.url: {exc}")
    for name in ("key_refresh", "log_interval"):
        _positive(problems, store, "store", name)
    for name in ("log_batch", "log_buffer"):
        _at_least(problems, store, "store", name, 1)
    limit_url = _table(raw.get("ratelimit")).get("url")
    if isinstance(limit_url, str) and limit_url and not re.fullmatch(r"redis://[^\s/]+(/\d+)?", limit_url):
        problems.append(f"ratelimit.url: expected redis://HOST:PORT/DB (or empty for the store), got {limit_url!r}")
    routing = _table(raw.get("routing"))
    _at_least(problems, routing, "routing", "max_attempts", 1)
    _at_least(problems, routing, "routing", "breaker_failures", 1)
    for name in ("breaker_cooldown", "key_rest", "key_set_aside"):
        _positive(problems, routing, "routing", name)
    _at_least(problems, _table(raw.get("quota")), "quota", "default_max_output_tokens", 1)
    for i, price in _tables(raw.get("prices")):
        for name in ("input", "output", "cached_input", "image", "second", "character", "request", *_AUDIO_PRICES):
            _at_least(problems, price, f"prices[{i}]", name, 0)
    aliases = _table(raw.get("aliases"))
    for alias, target in aliases.items():
        if target == alias or (isinstance(target, str) and not target):
            problems.append(f"aliases.{alias}: must name another model, got {target!r}")
        elif isinstance(target, str) and target in aliases:
            problems.append(f"aliases.{alias}: {target!r} is itself an alias; name the model")
    return problems


#: The audio token prices of ``[[prices]]`` (Realtime).
_AUDIO_PRICES = ("audio_input", "audio_output", "cached_audio_input")


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _positive(problems: list[str], table: dict[str, Any], where: str, name: str) -> None:
    value = _number(table.get(name))
    if value is not None and value <= 0:
        problems.append(f"{where}.{name}: must be greater than 0")


def _at_least(problems: list[str], table: dict[str, Any], where: str, name: str, least: int) -> None:
    value = _number(table.get(name))
    if value is not None and value < least:
        problems.append(f"{where}.{name}: must be at least {least}")


def _tables(value: Any) -> list[tuple[int, dict[str, Any]]]:
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)] if isinstance(value, list) else []


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable upstream base URL, or None when it is."""
    shown = f"got {url!r}"
    if not re.fullmatch(r"[!-~]+", url):
        return f"must be an http:// or https:// URL without spaces, {shown}"
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return "must not hold credentials: put the key in api_key"  # and do not print them
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL with a host, {shown}"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return f"port must be a number from 1 to 65535, {shown}"
    if parts.query or parts.fragment:
        return f"must have no query or fragment, {shown}"
    return None


def _unique(problems: list[str], table: str, values: list[tuple[int, Any]], field: str, show: bool = True) -> None:
    seen: dict[str, int] = {}
    for i, value in values:
        if not isinstance(value, str):
            continue
        if value in seen:
            shown = f" {value!r}" if show else ""
            problems.append(f"{table}[{i}].{field}: duplicate{shown}, already used by {table}[{seen[value]}]")
        seen.setdefault(value, i)

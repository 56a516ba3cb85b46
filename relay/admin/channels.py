"""The admin API's channel endpoints (docs/admin.md): one channel shown, channels kept in the store created, updated
and deleted, any channel enabled or disabled at run time, and one real request to a channel to test it.

relay.toml's channels are read-only here (edit relay.toml and reload) but for their run-time state (enabled or
not). A store channel is a ``[[channels]]`` table checked as relay.toml's are (``relay.config.load_channel``); every
change moves the store's channel version, so every worker and instance rebuilds its channels within ``[store]
key_refresh`` seconds, and the process that made it at once (relay/gateway/live.py). Secrets are never shown: a
key is shown as its ``${VAR}`` reference when it is one, else as ``***``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
import trio

from relay.admin import channel_health
from relay.admin.auth import admin_caller
from relay.config import ChannelConfig, ConfigError, load_channel
from relay.dialects import ir
from relay.errors import RelayError
from relay.gateway.live import ListedChannel
from relay.gateway.routing import upstream_name
from relay.http.messages import Request, Response, StreamResponse
from relay.redact import MASK, redact
from relay.route import Route
from relay.store import IntegrityError, Tx
from relay.store import channels as stored
from relay.upstream.channels import Channel, channel_for

if TYPE_CHECKING:
    from relay.app import Relay

__all__ = ["ROUTES", "as_json"]

PREFIX = "/admin/v1"
#: A store channel's name: it stands in URLs (``/admin/v1/channels/{name}``) and in the request log.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
#: Seconds a test request may take, at most (the channel's ``timeouts.total`` when shorter).
TEST_TIMEOUT = 60.0
#: What a test request asks (its answer is at most ``TEST_OUTPUT_TOKENS`` tokens).
TEST_PROMPT, TEST_OUTPUT_TOKENS = "Reply with the word OK.", 16
_SECRETS = ("api_key", "api_keys")
_REFERENCE = re.compile(r"(\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\})+")


def _shown_secret(value: object) -> object:
    """A secret as it may be shown: its ``${VAR}`` reference when it is one, else ``***``."""
    if isinstance(value, list):
        return [_shown_secret(v) for v in value]
    return value if isinstance(value, str) and _REFERENCE.fullmatch(value) else MASK


def shown_table(table: Mapping[str, Any]) -> dict[str, Any]:
    """A store channel's table without its secrets, nor credentials in its base URL."""
    shown = {k: _shown_secret(v) if k in _SECRETS and v else v for k, v in table.items()}
    if isinstance(shown.get("base_url"), str) and not _REFERENCE.search(shown["base_url"]):
        shown["base_url"] = redact(shown["base_url"], 2000)
    return shown


def as_json(
    listed: ListedChannel, relay: Relay, window: Mapping[str, tuple[list[float], int]], minutes: int
) -> dict[str, Any]:
    """One channel as the admin API shows it: ``channel_health.shown`` with where it is kept and its state."""
    router = relay.gateway.current.latest.router
    in_force = listed.enabled and listed.config is not None and listed.name in relay.gateway.current.latest.channels
    if listed.config is not None:
        shown = channel_health.shown(listed.config, router.breaker(listed.name) if in_force else None, window, minutes)
    else:  # a store channel this process cannot build: its table as far as it reads
        table = listed.table or {}

        def field(name: str, kind: type, default: Any) -> Any:
            value = table.get(name, default)
            return value if isinstance(value, kind) and not isinstance(value, bool) else default

        placeholder = ChannelConfig(name=listed.name, type="mock", models=())  # for the request-log window
        shown = channel_health.shown(placeholder, None, window, minutes) | {
            "type": field("type", str, ""),
            "base_url": redact(field("base_url", str, ""), 2000),
            "models": [m for m in field("models", list, []) if isinstance(m, str)],
            "priority": field("priority", int, 0),
            "weight": field("weight", int, 1),
            "group": field("group", str, "default"),
            "keys": int(bool(table.get("api_key"))) + len(field("api_keys", list, [])),
        }
    shown["source"] = listed.source
    shown["enabled"] = listed.enabled
    shown["in_force"] = in_force
    if listed.source == "store":
        shown["config"] = shown_table(listed.table or {})
        shown["problems"] = list(listed.problems)
        shown["created_at"], shown["updated_at"] = listed.created_at, listed.updated_at
    return shown


def _body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(request.body) if request.body else {}
    except orjson.JSONDecodeError:
        raise RelayError(400, "invalid_request", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise RelayError(400, "invalid_request", "The body must be a JSON object.")
    return body


async def _find(relay: Relay, name: str, source: str | None = None) -> ListedChannel:
    """The channel named so (of ``source`` when given: a store channel may bear a relay.toml channel's name), as the
    store has it now (another worker or instance may have just changed it: this process's copy is brought up to date
    first, one read of the version when nothing changed)."""
    await relay.live.refresh()
    found = relay.live.find(name, source)
    if found is None:
        raise RelayError(404, "not_found", f"No channel named {name!r}.", code="channel_not_found")
    return found


def _checked(table: Mapping[str, Any]) -> ChannelConfig:
    """The channel of ``table``, checked as relay.toml's are; a 400 listing every problem."""
    try:
        return load_channel(table)
    except ConfigError as error:
        problems = "; ".join(error.problems)
        raise RelayError(
            400, "invalid_request", f"The channel has problems: {problems}", code="invalid_channel"
        ) from None


def _read_only(name: str) -> RelayError:
    return RelayError(
        409,
        "invalid_request",
        f"Channel {name!r} is declared in relay.toml, which is read-only here: edit relay.toml and reload "
        "(SIGHUP or `relay reload`); only enable and disable work on it.",
        code="channel_read_only",
    )


async def _shown(relay: Relay, name: str, status: int = 200, source: str | None = None) -> Response:
    """The channel as it is now, in this process (its numbers from the request log of the last 15 minutes)."""
    minutes = 15
    since = time.time() - minutes * 60
    window = await relay.gateway.store.transaction(lambda tx: channel_health.latencies_since(tx, since))
    return Response.json(status, as_json(await _find(relay, name, source), relay, window, minutes))


async def show_channel(relay: Relay, request: Request, out: StreamResponse) -> Response:
    admin_caller(relay, request)
    return await _shown(relay, request.params["name"])


async def create_channel(relay: Relay, request: Request, out: StreamResponse) -> Response:
    admin_caller(relay, request)
    table = _body(request)
    name = table.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise RelayError(
            400,
            "invalid_request",
            "name is required: 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit.",
            param="name",
        )
    if any(c.name == name for c in relay.live.file_config.channels):
        raise RelayError(409, "invalid_request", f"relay.toml has a channel named {name!r}.", code="conflict")
    _checked(table)
    try:
        await relay.gateway.store.transaction(lambda tx: stored.create(tx, table, time.time()))
    except IntegrityError:
        raise RelayError(409, "invalid_request", f"A channel named {name!r} exists.", code="conflict") from None
    await relay.live.refresh()
    return await _shown(relay, name, 201, source="store")


def _missing(relay: Relay, name: str) -> RelayError:
    """No store channel of that name: relay.toml's (read-only, 409), or none at all (404)."""
    if any(c.name == name for c in relay.live.file_config.channels):
        return _read_only(name)
    return RelayError(404, "not_found", f"No channel named {name!r}.", code="channel_not_found")


async def update_channel(relay: Relay, request: Request, out: StreamResponse) -> Response:
    """PATCH: the body's fields replace the stored table's (``null`` removes one, back to its default), read, checked
    and written in one transaction (two changes at once cannot lose one)."""
    admin_caller(relay, request)
    name = request.params["name"]
    changes = _body(request)
    if changes.get("name", name) != name:
        raise RelayError(400, "invalid_request", "A channel cannot be renamed: create another.", param="name")

    def change(tx: Tx) -> RelayError | None:
        current = stored.get(tx, name)
        if current is None:
            return _missing(relay, name)
        table = {k: v for k, v in {**current.table, **changes}.items() if v is not None}
        try:
            _checked(table)
        except RelayError as refused:
            return refused
        stored.update(tx, name, table, time.time())
        return None

    refused = await relay.gateway.store.transaction(change)
    if refused is not None:
        raise refused
    await relay.live.refresh()
    return await _shown(relay, name, source="store")


async def delete_channel(relay: Relay, request: Request, out: StreamResponse) -> Response:
    admin_caller(relay, request)
    name = request.params["name"]
    if not await relay.gateway.store.transaction(lambda tx: stored.delete(tx, name)):
        raise _missing(relay, name)
    await relay.live.refresh()
    return Response.json(200, {"name": name, "deleted": True})


async def _set_enabled(relay: Relay, request: Request, enabled: bool) -> Response:
    admin_caller(relay, request)
    name = request.params["name"]
    listed = await _find(relay, name)
    now = time.time()
    if listed.source == "config":
        await relay.gateway.store.transaction(lambda tx: stored.set_state(tx, name, enabled, now))
    elif not await relay.gateway.store.transaction(lambda tx: stored.set_enabled(tx, name, enabled, now)):
        raise RelayError(404, "not_found", f"No channel named {name!r}.", code="channel_not_found")
    await relay.live.refresh()
    return await _shown(relay, name)


async def enable_channel(relay: Relay, request: Request, out: StreamResponse) -> Response:
    return await _set_enabled(relay, request, True)


async def disable_channel(relay: Relay, request: Request, out: StreamResponse) -> Response:
    return await _set_enabled(relay, request, False)


# ---- the test request ------------------------------------------------------------------------------------


def _first_model(config: ChannelConfig) -> str | None:
    """The channel's first public model name that is not a pattern."""
    names = (*config.model_map, *config.list_models, *config.models)
    return next((n for n in names if not any(ch in n for ch in "*?[")), None)


def _test_body(dialect: ir.Dialect, model: str) -> dict[str, Any]:
    message = {"role": "user", "content": TEST_PROMPT}
    if dialect == "openai_chat":
        return {"model": model, "messages": [message], "max_completion_tokens": TEST_OUTPUT_TOKENS}
    if dialect == "openai_responses":
        return {"model": model, "input": TEST_PROMPT, "max_output_tokens": TEST_OUTPUT_TOKENS}
    if dialect == "anthropic":
        return {"model": model, "messages": [message], "max_tokens": TEST_OUTPUT_TOKENS}
    return {
        "contents": [{"role": "user", "parts": [{"text": TEST_PROMPT}]}],
        "generationConfig": {"maxOutputTokens": TEST_OUTPUT_TOKENS},
    }


def _upstream_error(body: bytes) -> str:
    """The message of an upstream's error answer (any provider's shape), else the start of its body."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return body.decode("utf-8", "replace")


async def try_channel(relay: Relay, request: Request, out: StreamResponse) -> Response:
    """One small real request (a few tokens) to the channel, with its first key; it counts in no breaker, log or
    quota. ``model`` in the body: the public model name to ask (default: the channel's first exact one)."""
    admin_caller(relay, request)
    name = request.params["name"]
    listed = await _find(relay, name)
    config = listed.config
    if config is None:
        problems = "; ".join(listed.problems)
        raise RelayError(409, "invalid_request", f"Channel {name!r} cannot be built: {problems}", code="conflict")
    model = _body(request).get("model") or _first_model(config)
    if model is None:
        message = f"Channel {name!r} names its models by patterns only: give the model to ask in 'model'."
        raise RelayError(400, "invalid_request", message, param="model")
    if not isinstance(model, str):
        raise RelayError(400, "invalid_request", "model must be a model name the channel serves.", param="model")
    upstream_model = upstream_name(config, model)
    if upstream_model is None:
        raise RelayError(400, "invalid_request", f"Channel {name!r} does not serve {model!r}.", param="model")
    in_force = relay.gateway.current.latest.channels.get(name)
    channel: Channel = (
        in_force if in_force is not None and in_force.config == config else channel_for(config, relay.pool)
    )
    dialect = channel.dialect_for("openai_chat")
    body = orjson.dumps(_test_body(dialect, upstream_model))
    key = config.keys[0] if config.keys else ""
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    with trio.move_on_after(min(TEST_TIMEOUT, config.timeouts.total)) as timer:
        try:
            response = await channel.send(channel.path(dialect, upstream_model, False), body, key)
            try:
                answer = await response.read()
            finally:
                await response.aclose()
            status = response.status
            if not 200 <= status < 300:
                error = _upstream_error(answer)
        except RelayError as refused:
            error = refused.message
        except Exception as exc:  # any transport failure is the test's answer, not the endpoint's error
            error = str(exc) or type(exc).__name__
    if timer.cancelled_caught:
        error = f"no answer within {min(TEST_TIMEOUT, config.timeouts.total):g} s"
    return Response.json(
        200,
        {
            "name": name,
            "model": model,
            "ok": error is None,
            "status": status,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "error": None if error is None else redact(error, 500, secrets=config.keys),
        },
    )


ROUTES: tuple[Route, ...] = (
    Route("POST", PREFIX + "/channels", create_channel),
    Route("GET", PREFIX + "/channels/{name}", show_channel),
    Route("PATCH", PREFIX + "/channels/{name}", update_channel),
    Route("DELETE", PREFIX + "/channels/{name}", delete_channel),
    Route("POST", PREFIX + "/channels/{name}/enable", enable_channel),
    Route("POST", PREFIX + "/channels/{name}/disable", disable_channel),
    Route("POST", PREFIX + "/channels/{name}/test", try_channel),
)

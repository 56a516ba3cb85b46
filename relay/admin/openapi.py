"""The OpenAPI 3.1 document of the admin API, served at ``/admin/v1/openapi.json`` (written by hand)."""

from __future__ import annotations

from typing import Any

from relay.version import package_version

__all__ = ["document"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_KEY = {"$ref": "#/components/schemas/Key"}
_LOGGED = {"$ref": "#/components/schemas/LoggedRequest"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {400: "Bad request", 401: "No or invalid admin key", 403: "A viewer may only read", 404: "Not found"}
    words |= {409: "Refused (a key of relay.toml, a name taken, a key without quota)"}
    return {str(status): _json(_ERROR, words[status]) for status in (401, *statuses)}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _operation(summary: str, ok: dict[str, Any], *errors: int, **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {next(iter(ok)): ok[next(iter(ok))], **_errors(*errors)}, **extra}


_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "Page size.")
_DAY = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_USAGE_PARAMETERS = [
    _query("by", {"type": "string", "enum": ["key", "model", "channel", "day"], "default": "key"}, "Grouping."),
    _query("since", _DAY, "First day (UTC), included."),
    _query("until", _DAY, "Last day (UTC), included."),
]
_KEY_WRITE = _operation("", {"200": _json(_KEY, "The key as it is now")}, 403, 404)


_CHANNEL = {"$ref": "#/components/schemas/Channel"}
_TABLE = {
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "object", "description": "A [[channels]] table (docs/routing.md)"}}
    },
}


def _channel_change(summary: str) -> dict[str, Any]:
    return _operation(
        summary, {"200": _json(_CHANNEL, "The channel as it is now")}, 403, 404, parameters=[_path("name")]
    )


def _key_change(summary: str, **extra: Any) -> dict[str, Any]:
    return {**_KEY_WRITE, "summary": summary, "parameters": [_path("name")], **extra}


_PATHS: dict[str, Any] = {
    "/admin/v1/keys": {
        "get": _operation(
            "List the keys, by name",
            {"200": _json({"$ref": "#/components/schemas/KeyList"}, "A page of keys")},
            400,
            parameters=[
                _query("group", {"type": "string"}, "Only the keys of this channel group."),
                _query("disabled", {"type": "string", "enum": ["true", "false"]}, "Only disabled (or enabled) keys."),
                _LIMIT,
                _query("after", {"type": "string"}, "The last name of the previous page (its last_id)."),
            ],
        ),
        "post": _operation(
            "Create a key; its secret is in this answer only",
            {"201": _json({"allOf": [_KEY, {"type": "object", "required": ["secret"]}]}, "The new key")},
            400,
            403,
            409,
            requestBody={
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewKey"}}},
            },
        ),
    },
    "/admin/v1/keys/{name}": {
        "get": _operation(
            "Show one key with its balance, open holds and today's totals",
            {"200": _json(_KEY, "The key")},
            404,
            parameters=[_path("name")],
        ),
        "delete": _operation(
            "Delete a key (not one of relay.toml) and its ledger",
            {
                "200": _json(
                    {"type": "object", "properties": {"name": {"type": "string"}, "deleted": {"type": "boolean"}}},
                    "Deleted",
                )
            },
            403,
            404,
            409,
            parameters=[_path("name")],
        ),
        "patch": {
            **_key_change("Change a key's fields (those given; null clears one); not a key of relay.toml"),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KeyUpdate"}}},
            },
            "responses": {**_KEY_WRITE["responses"], **_errors(400, 403, 404, 409)},
        },
    },
    "/admin/v1/keys/{name}/rotate": {
        "post": {
            **_key_change("Give a key a new secret, in this answer only; the old one stops working (no overlap)"),
            "responses": {
                "200": _json({"allOf": [_KEY, {"type": "object", "required": ["secret"]}]}, "The key, new secret"),
                **_errors(403, 404, 409),
            },
        }
    },
    "/admin/v1/keys/{name}/disable": {"post": _key_change("Disable a key (401 to its requests until enabled)")},
    "/admin/v1/keys/{name}/enable": {"post": _key_change("Enable a disabled key")},
    "/admin/v1/keys/{name}/topup": {
        "post": {
            **_key_change("Add credits to a key's balance"),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["amount"],
                            "properties": {"amount": {"type": ["string", "number"], "examples": ["12.5"]}},
                        }
                    }
                },
            },
            "responses": {**_KEY_WRITE["responses"], **_errors(400, 403, 404, 409)},
        }
    },
    "/admin/v1/requests": {
        "get": _operation(
            "The request log, newest first",
            {"200": _json({"$ref": "#/components/schemas/RequestList"}, "A page of logged requests")},
            400,
            parameters=[
                _query("key", {"type": "string"}, "Key name."),
                _query("model", {"type": "string"}, "Requested model."),
                _query("channel", {"type": "string"}, "Channel that served it."),
                _query("status", {"type": "integer"}, "HTTP status."),
                _query("since", {"type": "number"}, "Unix seconds, included."),
                _query("until", {"type": "number"}, "Unix seconds, excluded."),
                _query("parent_id", {"type": "string"}, "The request they were made for (a task's model calls)."),
                _LIMIT,
                _query("cursor", {"type": "string"}, "The previous page's next_cursor."),
            ],
        )
    },
    "/admin/v1/requests/{request_id}": {
        "get": _operation(
            "One logged request", {"200": _json(_LOGGED, "The request")}, 404, parameters=[_path("request_id")]
        )
    },
    "/admin/v1/openapi.json": {
        "get": _operation("This document", {"200": _json({"type": "object"}, "OpenAPI 3.1")}),
    },
    "/admin/v1/channels": {
        "get": _operation(
            "The channels with this process's breakers and the request log's numbers of the last minutes",
            {
                "200": _json(
                    {"$ref": "#/components/schemas/ChannelList"},
                    "Every channel: relay.toml's in order, then the store's by name",
                )
            },
            400,
            parameters=[
                _query(
                    "minutes",
                    {"type": "integer", "minimum": 1, "maximum": 10080, "default": 15},
                    "Minutes of the request log the window covers.",
                )
            ],
        ),
        "post": _operation(
            "Create a channel kept in the store (a [[channels]] table, checked as relay.toml's)",
            {"201": _json(_CHANNEL, "The channel")},
            400,
            403,
            409,
            requestBody=_TABLE,
        ),
    },
    "/admin/v1/channels/{name}": {
        "get": _operation("One channel", {"200": _json(_CHANNEL, "The channel")}, 404, parameters=[_path("name")]),
        "patch": _operation(
            "Change a store channel: the body's fields replace its table's (null: back to the default)",
            {"200": _json(_CHANNEL, "The channel as it is now")},
            400,
            403,
            404,
            409,
            parameters=[_path("name")],
            requestBody=_TABLE,
        ),
        "delete": _operation(
            "Delete a store channel (relay.toml's: 409)",
            {"200": _json({"type": "object"}, "{name, deleted: true}")},
            403,
            404,
            409,
            parameters=[_path("name")],
        ),
    },
    "/admin/v1/channels/{name}/enable": {"post": _channel_change("Enable a channel (relay.toml's too)")},
    "/admin/v1/channels/{name}/disable": {"post": _channel_change("Disable a channel (relay.toml's too)")},
    "/admin/v1/channels/{name}/test": {
        "post": _operation(
            "Send the channel one small real request (it counts in no breaker, log or quota)",
            {"200": _json({"$ref": "#/components/schemas/ChannelTest"}, "How the upstream answered")},
            400,
            403,
            404,
            409,
            parameters=[_path("name")],
            requestBody={
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"model": {"type": "string", "description": "Default: its first exact one."}},
                        }
                    }
                },
            },
        )
    },
    "/admin/v1/usage": {
        "get": _operation(
            "Usage totals (the daily totals summed) by key, model, channel or day",
            {"200": _json({"$ref": "#/components/schemas/UsageList"}, "One row per key, model, channel or day")},
            400,
            parameters=_USAGE_PARAMETERS,
        )
    },
    "/admin/v1/usage.csv": {
        "get": _operation(
            "The usage totals as CSV (a header line, then the rows of /admin/v1/usage)",
            {"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}},
            400,
            parameters=_USAGE_PARAMETERS,
        )
    },
    "/admin/v1/prices": {
        "get": _operation(
            "The configured [[prices]], in order (the first matching entry wins)",
            {"200": _json({"$ref": "#/components/schemas/PriceList"}, "The prices")},
        )
    },
}

# The web dashboard's calls (docs/dashboard.md).
_NULLABLE_MS = {"type": ["number", "null"], "description": "Milliseconds; null in a bucket without requests."}
_SESSION = {
    "type": "object",
    "required": ["object", "name", "role"],
    "properties": {
        "object": {"const": "session"},
        "token": {"type": "string", "description": "rs1.<name>.<role>.<expires>.<mac>: send as a Bearer."},
        "name": {"type": "string"},
        "role": {"type": "string", "enum": ["admin", "viewer"]},
        "expires_at": {"type": "integer", "description": "Unix seconds."},
    },
}
_PATHS |= {
    "/admin/v1/session": {
        "post": _operation(
            "Sign in: a dashboard session token for the admin key of the Authorization header (either role)",
            {"201": _json(_SESSION, "The session")},
            400,
        ),
        "get": _operation("The admin key's name and role a token (or key) stands for", {"200": _json(_SESSION, "")}),
    },
    "/admin/v1/stats": {
        "get": _operation(
            "The request log as a time series: per bucket requests, errors, spend, latency and TTFT percentiles",
            {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "object": {"const": "list"},
                            "since": {"type": "number"},
                            "until": {"type": "number"},
                            "bucket": {"type": "integer"},
                            "data": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "start": {"type": "number"},
                                        "requests": {"type": "integer"},
                                        "errors": {"type": "integer"},
                                        "cost_micros": {"type": "integer"},
                                        **{
                                            name: _NULLABLE_MS
                                            for name in (
                                                "latency_ms_p50",
                                                "latency_ms_p95",
                                                "latency_ms_p99",
                                                "ttft_ms_p50",
                                                "ttft_ms_p95",
                                            )
                                        },
                                    },
                                },
                            },
                        },
                    },
                    "Every bucket from since to until, empty ones included",
                )
            },
            400,
            parameters=[
                _query("since", {"type": "number"}, "Unix seconds, included (default: a day before until)."),
                _query("until", {"type": "number"}, "Unix seconds, excluded (default: now)."),
                _query("bucket", {"type": "integer", "minimum": 1}, "Seconds per bucket (default: about 48 buckets)."),
            ],
        )
    },
}

_NULLABLE_NUMBER = {"type": ["number", "null"]}
_SCHEMAS: dict[str, Any] = {
    "Channel": {
        "type": "object",
        "required": [
            "name",
            "type",
            "base_url",
            "models",
            "priority",
            "weight",
            "group",
            "window",
            "source",
            "enabled",
        ],
        "properties": {
            "name": {"type": "string"},
            "type": {
                "type": "string",
                "enum": ["openai", "anthropic", "gemini", "mock", "tavily", "exa", "brave", "searxng"],
            },
            "base_url": {"type": "string"},
            "models": {"type": "array", "items": {"type": "string"}},
            "priority": {"type": "integer"},
            "weight": {"type": "integer"},
            "group": {"type": "string"},
            "keys": {"type": "integer", "description": "How many upstream keys (never the keys)."},
            "source": {"type": "string", "enum": ["config", "store"], "description": "relay.toml or the store."},
            "enabled": {"type": "boolean"},
            "in_force": {"type": "boolean", "description": "Enabled and built: requests may be routed to it."},
            "config": {"type": "object", "description": "A store channel's table, secrets as ${VAR} or ***."},
            "problems": {"type": "array", "items": {"type": "string"}, "description": "Why a store channel is unused."},
            "created_at": _NULLABLE_NUMBER,
            "updated_at": _NULLABLE_NUMBER,
            "breaker": {
                "type": ["object", "null"],
                "properties": {
                    "state": {"type": "string", "enum": ["closed", "open", "half_open"]},
                    "failures": {"type": "integer"},
                    "retry_in": {"type": "number"},
                },
            },
            "window": {
                "type": "object",
                "properties": {
                    "minutes": {"type": "integer"},
                    "requests": {"type": "integer"},
                    "errors": {"type": "integer"},
                    "error_rate": _NULLABLE_NUMBER,
                    "latency_ms_p50": _NULLABLE_NUMBER,
                    "latency_ms_p95": _NULLABLE_NUMBER,
                },
            },
        },
    },
    "ChannelTest": {
        "type": "object",
        "required": ["name", "model", "ok", "status", "latency_ms", "error"],
        "properties": {
            "name": {"type": "string"},
            "model": {"type": "string"},
            "ok": {"type": "boolean"},
            "status": {"type": ["integer", "null"], "description": "The upstream's status; null: no answer."},
            "latency_ms": {"type": "number"},
            "error": {"type": ["string", "null"]},
        },
    },
    "ChannelList": {
        "type": "object",
        "properties": {
            "object": {"const": "list"},
            "data": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Channel"},
            },
        },
    },
    "UsageList": {
        "type": "object",
        "properties": {
            "object": {"const": "list"},
            "by": {"type": "string", "enum": ["key", "model", "channel", "day"]},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "The grouping's value under its name (key, model, channel or day), then sums.",
                    "properties": {
                        name: {"type": "integer"}
                        for name in (
                            "requests",
                            "errors",
                            "input_tokens",
                            "output_tokens",
                            "cached_tokens",
                            "reasoning_tokens",
                            "cost_micros",
                        )
                    },
                },
            },
        },
    },
    "PriceList": {
        "type": "object",
        "properties": {
            "object": {"const": "list"},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["model"],
                    "properties": {
                        "model": {"type": "string"},
                        "input": {"type": "number"},
                        "output": {"type": "number"},
                        "cached_input": _NULLABLE_NUMBER,
                        "audio_input": _NULLABLE_NUMBER,
                        "audio_output": _NULLABLE_NUMBER,
                        "cached_audio_input": _NULLABLE_NUMBER,
                        "image": {"type": "number"},
                        "image_sizes": {"type": "object", "additionalProperties": {"type": "number"}},
                        "second": {"type": "number"},
                        "character": {"type": "number"},
                        "request": {"type": "number"},
                    },
                },
            },
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    },
    "NewKey": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$"},
            "quota": {"type": ["string", "number"], "description": "Credits it starts with; absent: unlimited."},
            "expires": {"type": "string", "description": "YYYY-MM-DD or ISO 8601, UTC; absent: never."},
            "models": {"type": "array", "items": {"type": "string"}},
            "rpm": {"type": "integer"},
            "tpm": {"type": "integer"},
            "group": {"type": "string", "default": "default"},
            "ips": {"type": "array", "items": {"type": "string"}},
        },
    },
    "KeyUpdate": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "The fields to change; null clears one (unlimited, never, all models, no limit, default group,"
        " any address). quota starts the balance of an unlimited key; a key with a balance is topped up instead.",
        "properties": {
            "quota": {"type": ["string", "number", "null"]},
            "expires": {"type": ["string", "null"], "description": "YYYY-MM-DD or ISO 8601, UTC; null: never."},
            "models": {"type": ["array", "null"], "items": {"type": "string"}},
            "rpm": {"type": ["integer", "null"]},
            "tpm": {"type": ["integer", "null"]},
            "group": {"type": ["string", "null"]},
            "ips": {"type": ["array", "null"], "items": {"type": "string"}},
        },
    },
    "Key": {
        "type": "object",
        "required": ["name", "status", "source", "balance_micros", "models", "group"],
        "properties": {
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["active", "disabled", "expired"]},
            "source": {"type": "string", "enum": ["config", "cli"]},
            "balance_micros": {"type": ["integer", "null"]},
            "balance_credits": _NULLABLE_NUMBER,
            "models": {"type": "array", "items": {"type": "string"}},
            "rpm": {"type": ["integer", "null"]},
            "tpm": {"type": ["integer", "null"]},
            "group": {"type": "string"},
            "ips": {"type": "array", "items": {"type": "string"}},
            "expires_at": _NULLABLE_NUMBER,
            "created_at": {"type": "number"},
            "open_holds_micros": {"type": "integer"},
            "leased_micros": {"type": "integer"},
            "today": {"type": "object"},
            "secret": {"type": "string"},
        },
    },
    "KeyList": {
        "type": "object",
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": _KEY},
            "has_more": {"type": "boolean"},
            "last_id": {"type": ["string", "null"]},
        },
    },
    "LoggedRequest": {
        "type": "object",
        "required": ["request_id", "time", "status"],
        "properties": {
            "request_id": {"type": "string"},
            "time": {"type": "number"},
            "key_name": {"type": ["string", "null"]},
            "route": {"type": "string"},
            "requested_model": {"type": ["string", "null"]},
            "channel": {"type": ["string", "null"]},
            "status": {"type": "integer"},
            "attempts": {"type": "array", "items": {"type": "object"}},
            "cost_micros": {"type": "integer"},
            "parent_id": {
                "type": ["string", "null"],
                "description": "The request this one was made for (a task endpoint's model call); null: a client's.",
            },
        },
    },
    "RequestList": {
        "type": "object",
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": _LOGGED},
            "has_more": {"type": "boolean"},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
}


def document() -> dict[str, Any]:
    """The admin API's OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Relay admin API", "version": package_version(), "description": "See docs/admin.md."},
        "paths": _PATHS,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"adminKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"adminKey": []}],
    }

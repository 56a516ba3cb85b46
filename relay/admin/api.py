"""The admin API's endpoints (``/admin/v1/``, docs/admin.md): keys, the request log, the OpenAPI document.

Every route authenticates an admin key (relay.admin.auth) and answers errors in OpenAI's shape. The key
operations are relay.admin.keys', the very ones ``relay keys`` runs. These calls are not written to the
request log.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import orjson

from relay.admin import channels, request_log, views
from relay.admin import keys as admin_keys
from relay.admin.auth import Caller, admin_caller
from relay.admin.openapi import document
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route
from relay.store.keys import KeyNotFound, KeyRefused

if TYPE_CHECKING:
    from relay.app import Relay

__all__ = ["ROUTES"]

PREFIX = "/admin/v1"
DEFAULT_LIMIT = 50


def _caller(relay: Relay, request: Request) -> Caller:
    return admin_caller(relay, request)


def _body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise RelayError(400, "invalid_request", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise RelayError(400, "invalid_request", "The body must be a JSON object.")
    return body


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise RelayError(400, "invalid_request", f"{name} must be {what}.", param=name)
    return value


def _int_param(params: dict[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise RelayError(400, "invalid_request", f"{name} must be an integer, got {text!r}.", param=name) from None
    if not low <= value <= high:
        raise RelayError(400, "invalid_request", f"{name} must be from {low} to {high}, got {value}.", param=name)
    return value


def _seconds_param(params: dict[str, str], name: str) -> float | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RelayError(400, "invalid_request", f"{name} must be Unix seconds, got {text!r}.", param=name)
    return value


def _refusal(error: Exception) -> RelayError:
    if isinstance(error, KeyNotFound):
        return RelayError(404, "not_found", str(error), code="key_not_found")
    if isinstance(error, admin_keys.BadArguments):
        return RelayError(400, "invalid_request", str(error))
    return RelayError(409, "invalid_request", str(error), code="conflict")


# ---- keys ------------------------------------------------------------------------------------------


async def list_keys(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _caller(relay, request)
    params = request.query_params()
    limit = _int_param(params, "limit", DEFAULT_LIMIT, 1, request_log.MAX_LIMIT) or DEFAULT_LIMIT
    disabled_text = params.get("disabled")
    if disabled_text not in (None, "", "true", "false"):
        raise RelayError(400, "invalid_request", "disabled must be true or false.", param="disabled")
    group, after = params.get("group") or None, params.get("after") or None
    now = time.time()
    chosen = [
        record
        for record in sorted(await admin_keys.list_keys(relay.gateway.store), key=lambda r: r.name)
        if (group is None or record.group == group)
        and (disabled_text in (None, "") or record.disabled == (disabled_text == "true"))
        and (after is None or record.name > after)
    ]
    shown = [admin_keys.as_json(record, now) for record in chosen[:limit]]
    return Response.json(
        200,
        {
            "object": "list",
            "data": shown,
            "has_more": len(chosen) > limit,
            "last_id": shown[-1]["name"] if shown else None,
        },
    )


async def create_key(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _caller(relay, request)
    body = _body(request)
    unknown = sorted(set(body) - {"name", "quota", "expires", "models", "rpm", "tpm", "group", "ips"})
    if unknown:
        raise RelayError(400, "invalid_request", f"Unknown field {unknown[0]!r}.", param=unknown[0])
    name = _field(body, "name", str, "a string")
    if name is None:
        raise RelayError(400, "invalid_request", "name is required.", param="name")
    quota = _field(body, "quota", (str, int, float), "a number of credits (or its decimal text)")
    models = _field(body, "models", list, "a list of model names (globs)") or []
    ips = _field(body, "ips", list, "a list of CIDRs") or []
    for field, values in (("models", models), ("ips", ips)):
        if not all(isinstance(v, str) for v in values):
            raise RelayError(400, "invalid_request", f"{field} must be a list of strings.", param=field)
    new = admin_keys.NewKey(
        name=name,
        quota=None if quota is None else str(quota),
        expires=_field(body, "expires", str, "YYYY-MM-DD or an ISO 8601 time"),
        models=models,
        rpm=_field(body, "rpm", int, "an integer"),
        tpm=_field(body, "tpm", int, "an integer"),
        group=_field(body, "group", str, "a string") or "default",
        ips=ips,
    )
    try:
        record, secret = admin_keys.new_record(new, relay.config, lambda f: f)
        await admin_keys.create(relay.gateway.store, record)
    except (admin_keys.BadArguments, admin_keys.Refused) as error:
        raise _refusal(error) from None
    shown = admin_keys.as_json(record, time.time())
    shown["secret"] = secret
    return Response.json(201, shown)


async def show_key(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _caller(relay, request)
    now = time.time()
    try:
        view = await admin_keys.show(relay.gateway.store, request.params["name"], now)
    except KeyRefused as error:
        raise _refusal(error) from None
    shown = admin_keys.as_json(view.record, now)
    shown["open_holds_micros"] = view.open_holds_micros
    shown["leased_micros"] = view.leased_micros
    shown["today"] = {"day": view.today, **view.sums}
    return Response.json(200, shown)


async def _changed(relay: Relay, name: str) -> Response:
    try:
        view = await admin_keys.show(relay.gateway.store, name, time.time())
    except KeyRefused as error:
        raise _refusal(error) from None
    return Response.json(200, admin_keys.as_json(view.record, time.time()))


async def _set_disabled(relay: Relay, request: Request, disabled: bool) -> Response:
    _caller(relay, request)
    name = request.params["name"]
    try:
        await admin_keys.set_disabled(relay.gateway.store, name, disabled)
    except KeyRefused as error:
        raise _refusal(error) from None
    return await _changed(relay, name)


async def disable_key(relay: Relay, request: Request, out: StreamResponse) -> Response:
    return await _set_disabled(relay, request, True)


async def enable_key(relay: Relay, request: Request, out: StreamResponse) -> Response:
    return await _set_disabled(relay, request, False)


async def topup_key(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _caller(relay, request)
    body = _body(request)
    amount = _field(body, "amount", (str, int, float), "a number of credits (or its decimal text)")
    if amount is None:
        raise RelayError(400, "invalid_request", "amount is required.", param="amount")
    name = request.params["name"]
    try:
        micros = admin_keys.topup_amount(str(amount), "amount")
        await admin_keys.topup(relay.gateway.store, name, micros)
    except (admin_keys.BadArguments, KeyRefused) as error:
        raise _refusal(error) from None
    return await _changed(relay, name)


#: The types of ``PATCH /admin/v1/keys/{name}``'s fields (null clears one), and how an error names them.
_UPDATE_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "quota": ((str, int, float), "a number of credits (or its decimal text), or null"),
    "expires": (str, "YYYY-MM-DD or an ISO 8601 time, or null"),
    "models": (list, "a list of model names (globs), or null"),
    "rpm": (int, "an integer, or null"),
    "tpm": (int, "an integer, or null"),
    "group": (str, "a string, or null"),
    "ips": (list, "a list of CIDRs, or null"),
}


async def update_key(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _caller(relay, request)
    body = _body(request)
    unknown = sorted(set(body) - set(_UPDATE_TYPES))
    if unknown:
        message = f"Unknown field {unknown[0]!r} (a key's name never changes; rotate gives it a new secret)."
        raise RelayError(400, "invalid_request", message, param=unknown[0])
    for field, (kind, what) in _UPDATE_TYPES.items():
        value = _field(body, field, kind, what)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise RelayError(400, "invalid_request", f"{field} must be a list of strings.", param=field)
    changes = {field: str(value) if field == "quota" and value is not None else value for field, value in body.items()}
    name = request.params["name"]
    try:
        change = admin_keys.key_change(changes, lambda f: f)
        await admin_keys.update(relay.gateway.store, name, change)
    except (admin_keys.BadArguments, admin_keys.Refused, KeyRefused) as error:
        raise _refusal(error) from None
    return await _changed(relay, name)


async def rotate_key(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _caller(relay, request)
    try:
        record, secret = await admin_keys.rotate(relay.gateway.store, request.params["name"])
    except KeyRefused as error:
        raise _refusal(error) from None
    shown = admin_keys.as_json(record, time.time())
    shown["secret"] = secret
    return Response.json(200, shown)


async def delete_key(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _caller(relay, request)
    name = request.params["name"]
    try:
        await admin_keys.delete(relay.gateway.store, name)
    except KeyRefused as error:
        raise _refusal(error) from None
    return Response.json(200, {"name": name, "deleted": True})


# ---- the request log -------------------------------------------------------------------------------


async def list_requests(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _caller(relay, request)
    params = request.query_params()
    limit = _int_param(params, "limit", DEFAULT_LIMIT, 1, request_log.MAX_LIMIT) or DEFAULT_LIMIT
    where = request_log.LogFilter(
        key=params.get("key") or None,
        model=params.get("model") or None,
        channel=params.get("channel") or None,
        status=_int_param(params, "status", None, 100, 599),
        since=_seconds_param(params, "since"),
        until=_seconds_param(params, "until"),
        parent_id=params.get("parent_id") or None,
    )
    cursor = None
    if params.get("cursor"):
        try:
            cursor = request_log.decode_cursor(params["cursor"])
        except request_log.BadCursor:
            raise RelayError(400, "invalid_request", "cursor is not one this API gave.", param="cursor") from None
    found, following = await relay.gateway.store.transaction(lambda tx: request_log.page(tx, where, limit, cursor))
    return Response.json(
        200,
        {
            "object": "list",
            "data": [request_log.as_json(r) for r in found],
            "has_more": following is not None,
            "next_cursor": following,
        },
    )


async def show_request(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _caller(relay, request)
    request_id = request.params["request_id"]
    found = await relay.gateway.store.transaction(lambda tx: request_log.find(tx, request_id))
    if found is None:
        raise RelayError(404, "not_found", f"No logged request with id {request_id!r}.", code="request_not_found")
    return Response.json(200, request_log.as_json(found))


async def openapi(relay: Relay, request: Request, out: StreamResponse) -> Response:
    _caller(relay, request)
    return Response.json(200, document())


ROUTES: tuple[Route, ...] = (
    Route("GET", PREFIX + "/keys", list_keys),
    Route("POST", PREFIX + "/keys", create_key),
    Route("GET", PREFIX + "/keys/{name}", show_key),
    Route("DELETE", PREFIX + "/keys/{name}", delete_key),
    Route("PATCH", PREFIX + "/keys/{name}", update_key),
    Route("POST", PREFIX + "/keys/{name}/rotate", rotate_key),
    Route("POST", PREFIX + "/keys/{name}/disable", disable_key),
    Route("POST", PREFIX + "/keys/{name}/enable", enable_key),
    Route("POST", PREFIX + "/keys/{name}/topup", topup_key),
    Route("GET", PREFIX + "/requests", list_requests),
    Route("GET", PREFIX + "/requests/{request_id}", show_request),
    Route("GET", PREFIX + "/openapi.json", openapi),
    *views.ROUTES,
    *channels.ROUTES,
)

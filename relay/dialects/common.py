"""What every dialect codec shares: ids, reasoning effort and budget, JSON helpers, parameter errors.

One place for the mappings that must agree across codecs, so that effort → budget → effort and
id → id → id come back where they started whichever pair of dialects a request crosses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from relay.dialects import ir
from relay.errors import RelayError, kind_for_status

# ---- reasoning effort and token budget ---------------------------------------------------------------

#: The token budget each effort becomes (Anthropic ``budget_tokens``, Gemini ``thinkingBudget``).
EFFORT_BUDGET: dict[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768}


def budget_for(config: ir.ReasoningConfig) -> int | None:
    """The thinking budget a config asks for: its own budget, else its effort's; 0 is off, None is unsaid.

    A dynamic budget (Gemini's -1) stays -1; encoders without a dynamic setting use ``medium``'s.
    """
    if config.budget_tokens is not None:
        return config.budget_tokens
    if config.effort is None:
        return None
    return 0 if config.effort == "none" else EFFORT_BUDGET[config.effort]


def effort_for(config: ir.ReasoningConfig) -> ir.Effort | None:
    """The effort a config asks for: its own effort, else the nearest to its budget (-1, dynamic: medium)."""
    if config.effort is not None:
        return config.effort
    budget = config.budget_tokens
    if budget is None:
        return None
    if budget < 0:
        return "medium"
    if budget == 0:
        return "none"
    for effort in ("minimal", "low", "medium", "high"):
        if budget <= EFFORT_BUDGET[effort]:
            return effort  # type: ignore[return-value]
    return "xhigh"


# ---- ids ---------------------------------------------------------------------------------------------

#: Prefixes of response and item ids in the four dialects, stripped before another is put on.
ID_PREFIXES = ("chatcmpl-", "resp_", "msg_", "rs_", "fc_", "gen-")


def prefixed(id: str, prefix: str) -> str:
    """``id`` with the dialect's ``prefix``: kept when it has it, else its own prefix swapped.

    Deterministic, so that one upstream id always becomes the same client id (golden fixtures,
    logs that can be matched with the upstream's).
    """
    if id.startswith(prefix):
        return id
    for known in ID_PREFIXES:
        if id.startswith(known):
            id = id[len(known) :]
            break
    return prefix + (id or "0")


def derived_id(seed: str, index: int, prefix: str) -> str:
    """An id for something the upstream gave none (a Gemini function call): stable for one seed and index."""
    digest = hashlib.sha256(f"{seed}/{index}".encode()).hexdigest()[:24]
    return prefix + digest


# ---- usage -------------------------------------------------------------------------------------------


def token_count(source: Any, name: str) -> int:
    """``source[name]`` as a token count: a non-negative integer, 0 when absent or not one."""
    value = source.get(name) if isinstance(source, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


# ---- JSON --------------------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """Compact JSON text (tool-call arguments, as the models write them)."""
    return orjson.dumps(value).decode()


def renamed(data: bytes, public: str, pick: Callable[[dict[str, Any]], Any], key: str = "model") -> bytes:
    """``data`` with ``key`` of the object ``pick`` finds in it set to ``public`` (passthrough of an alias).

    Data that does not hold ``"key"``, is not a JSON object, or where ``pick`` finds none, comes back as
    the same object, so callers can tell nothing changed (``renamed(...) is data``).
    """
    if b'"%s"' % key.encode() not in data:
        return data
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    target = pick(payload) if isinstance(payload, dict) else None
    if not isinstance(target, dict) or key not in target:
        return data
    target[key] = public
    return orjson.dumps(payload)


def arguments_object(arguments: str) -> dict[str, Any] | None:
    """Tool-call arguments as a JSON object (``{}`` when empty), or None when they are not one."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def load_object(body: bytes, *, upstream: bool = False) -> dict[str, Any]:
    """A JSON object body; a 400 (client) or 502 (upstream) saying what is wrong otherwise."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if upstream:
            raise bad_upstream(f"the upstream answered with a body that is not JSON: {exc}") from None
        raise bad_request(f"request body is not valid JSON: {exc}", None) from None
    if not isinstance(payload, dict):
        if upstream:
            raise bad_upstream("the upstream answered with JSON that is not an object")
        raise bad_request("request body must be a JSON object", None)
    return payload


#: Top-level fields the relay acts on: sent twice, the relay and the upstream might each read another one.
DECIDING = ("model", "stream")


def refuse_ambiguous(body: bytes) -> None:
    """A 400 when a deciding field appears twice at the top level (a key's allow-list could be bypassed).

    JSON parsers differ on duplicate keys (last wins here, first wins elsewhere) and the original
    bytes go upstream. The full check runs only when the name occurs more than once anywhere.
    """
    if not any(body.count(b'"%s"' % name.encode()) > 1 for name in DECIDING):
        return
    names: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        names[:] = [name for name, _ in items]  # the top-level object is the last one completed
        return {}

    try:
        json.loads(body, object_pairs_hook=pairs)
    except RecursionError:
        raise bad_request("request body is nested too deeply", None) from None
    except ValueError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}", None) from None
    for name in DECIDING:
        if names.count(name) > 1:
            raise bad_request(f"'{name}' appears more than once in the body", name)


# ---- reading a client's request ------------------------------------------------------------------------


def want(value: Any, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    """``value`` when it is of ``kind`` (a bool is no number), else a 400 naming ``param``."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise bad_request(f"'{param}' must be {what}", param)
    return value


def optional(source: Mapping[str, Any], name: str, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    """``source[name]`` checked as ``want`` does; None when it is absent or null."""
    value = source.get(name)
    return None if value is None else want(value, kind, param, what)


def data_url(url: str, param: str) -> tuple[str, str]:
    """``data:<type>[;params];base64,<data>`` → (media type, base64 data); a 400 naming ``param`` otherwise."""
    head, comma, data = url.partition(",")
    if not comma or not head.endswith(";base64"):
        raise bad_request(f"'{param}' must be base64 encoded: data:<media type>;base64,<data>", param)
    return head[5:-7].split(";")[0] or "application/octet-stream", data


def error_object(body: bytes) -> dict[str, Any] | None:
    """The ``error`` object of an upstream's error body, when it has one with a string ``message``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) and isinstance(error.get("message"), str) else None


# ---- errors ------------------------------------------------------------------------------------------


def bad_request(message: str, param: str | None) -> RelayError:
    """The client's request cannot be read or converted: a 400 naming the parameter path."""
    return RelayError(400, "invalid_request", message, param=param)


def bad_upstream(message: str) -> RelayError:
    """The upstream answered something its dialect does not allow: a 502."""
    return RelayError(502, "upstream", message, code="upstream_malformed")


def upstream_error(status: int, message: str, code: str | None = None) -> RelayError:
    """An upstream error answer, its status kept (a status that is not an error becomes 502)."""
    if not 400 <= status <= 599:
        status = 502
    return RelayError(status, kind_for_status(status), message, code=code)


def error_text(body: bytes) -> str:
    """A short, readable message from an upstream error body of any shape."""
    text = body.decode("utf-8", "replace").strip()
    return text[:1000] or "(empty body)"


def count_response(body: bytes, what: str) -> int:
    """The ``input_tokens`` of an upstream's token count answer; a 502 naming ``what`` otherwise."""
    count = load_object(body, upstream=True).get("input_tokens")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise bad_upstream(f"the upstream's {what} answer has no input_tokens count")
    return count

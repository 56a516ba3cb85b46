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
    """Tool-call arguments as a JSON object (``{}`` when empty), or None when they are not one (or are nested
    deeper than ``MAX_DEPTH``: they are written inside a body, which could then not be encoded)."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) and not nested_deeper(value, MAX_DEPTH - 8) else None


#: The deepest nesting of arrays and objects Relay reads, in a client's request or an upstream's answer.
#: orjson writes at most 254 levels, and the encoders put what they carry a few levels down in theirs.
MAX_DEPTH = 128


def nested_deeper(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests arrays and objects more than ``limit`` levels (``{}`` and ``[]`` are one)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def _too_deep(body: bytes, payload: Any) -> bool:
    """``nested_deeper`` of a parsed body, skipped when the body has too few brackets to be that deep."""
    return body.count(b"{") + body.count(b"[") > MAX_DEPTH and nested_deeper(payload)


#: Below this length a kept ``orjson.dumps`` result is copied to an object of its own size.
_KEPT_COPY_BELOW = 32 * 1024


def dumps_kept(obj: Any) -> bytes:
    """``orjson.dumps(obj)`` for a result that is kept (a request's body, for the request's life): every
    ``orjson.dumps`` result holds an allocation of at least 32 KiB, whatever its length, so a short one is copied
    to an object of its own size (docs/performance.md, memory per open stream)."""
    data = orjson.dumps(obj)
    return bytes(memoryview(data)) if len(data) < _KEPT_COPY_BELOW else data


def load_object(body: bytes, *, upstream: bool = False) -> dict[str, Any]:
    """A JSON object body; a 400 (client) or 502 (upstream) saying what is wrong otherwise.

    A body nested deeper than ``MAX_DEPTH`` is refused too: it could not be written again (orjson's limit)
    once converted, so it is refused before anything is sent upstream.
    """
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
    if _too_deep(body, payload):
        if upstream:
            raise bad_upstream(f"the upstream answered with JSON nested more than {MAX_DEPTH} levels deep")
        raise bad_request(f"request body is nested too deeply: at most {MAX_DEPTH} levels of arrays and objects", None)
    return payload


def json_body(body: dict[str, Any]) -> bytes:
    """An encoded request body; a 400 when it cannot be written as JSON (a number out of JSON's 64-bit range)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        raise bad_request(f"the request cannot be converted: {exc}", None) from None


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


def dropped(
    fields: Mapping[str, Any],
    ignored: frozenset[str],
    neutral: Mapping[str, tuple[Any, ...]],
    *,
    prefix: str = "",
    name: Callable[[str], str] = str,
) -> str | None:
    """The parameter path of the first of ``fields`` (a request's ``extra``) a conversion would lose, or None.

    A field is kept when it is null, ignored by design (``ignored``: no effect on the answer, such as ``user``
    or ``metadata``), or set to the value that changes nothing (``neutral``: ``n: 1``, a penalty of 0);
    ``name`` turns a key into the name those are listed by (Gemini's snake_case keys).
    """
    for key, value in fields.items():
        canonical = name(key)
        if value is None or canonical in ignored:
            continue
        if any(value == same and type(value) is type(same) for same in neutral.get(canonical, ())):
            continue
        return prefix + key
    return None


def refuse_dropped(path: str | None) -> None:
    """A 400 naming ``path`` (from ``dropped``): the channel's API has no such parameter, and Relay drops none."""
    if path is not None:
        error = bad_request(
            f"'{path}' cannot be converted: the API of the channel serving this model has no equivalent, and Relay "
            "does not drop parameters silently (leave it out, or use a model served in this API)",
            path,
        )
        error.code = "unsupported_parameter"  # OpenAI's code; Anthropic's clients are told "Extra inputs …"
        raise error


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

"""A value that validates against a JSON schema, derived from the prompt: the mock's tool arguments and
structured output.

Deterministic, and valid for the schemas tools and structured output use: ``type`` (one name or a list,
read case-insensitively, so Gemini's ``OBJECT`` works; ``null`` only when it is the only type), ``enum``,
``const``, ``properties`` (every one given) and ``required`` (a required name without a property gets a
string, or its ``additionalProperties`` schema), ``minProperties``, ``items``/``prefixItems`` with
``minItems``/``maxItems``/``uniqueItems``, ``minimum``/``maximum`` and their exclusive forms (draft 4's
boolean ones too), ``multipleOf``, ``minLength``/``maxLength``, a few string ``format``s, ``anyOf``/``oneOf``
(the first branch that is not just ``null``), ``allOf`` (merged), ``$ref`` to ``#``, ``#/$defs/…`` and
``#/definitions/…``, Gemini's ``nullable``. Strings take the prompt (at most 200 characters), integers 1,
numbers 1.5, booleans true — moved into the bounds when there are some. ``pattern`` is not followed.
A schema that is not an object, or that the rules above cannot read, gets a string.
"""

from __future__ import annotations

import math
from typing import Any

#: Past this depth, objects take only their required properties and arrays only their ``minItems``, so
#: recursive schemas (a tree of nodes through ``$ref``) end.
SHALLOW_DEPTH = 8
#: Past this depth the value is null whatever the schema (a ``$ref`` cycle that requires itself).
MAX_DEPTH = 48

_FORMATS = {
    "date-time": "2023-11-14T22:13:20Z",
    "date": "2023-11-14",
    "time": "22:13:20Z",
    "email": "mock@example.com",
    "uri": "https://example.com/mock",
    "url": "https://example.com/mock",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "example.com",
}


def example(schema: Any, prompt: str) -> Any:
    """A value satisfying ``schema`` (its ``$ref``s resolved against itself), built from ``prompt``."""
    return _Builder(schema if isinstance(schema, dict) else {}, prompt).value(schema, 0, 0)


class _Builder:
    def __init__(self, root: dict[str, Any], prompt: str) -> None:
        self.root = root
        self.prompt = prompt[:200]

    def value(self, schema: Any, depth: int, index: int) -> Any:
        if depth > MAX_DEPTH:
            return None
        if not isinstance(schema, dict):
            return self.prompt
        schema = self._resolved(schema, depth)
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[index % len(enum)]
        if "const" in schema:
            return schema["const"]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in schema.items() if k != key}
                return self.value(_merge(rest, _first_branch(branches)), depth, index)
        kind = _kind(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth, index)
        if kind == "integer":
            return _integer(schema, index)
        if kind == "number":
            return _number(schema, index)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema, index)

    def _resolved(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        """``schema`` with its ``$ref`` and ``allOf`` folded in."""
        for _ in range(MAX_DEPTH - depth):
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                break
            target = self._target(ref)
            schema = _merge({k: v for k, v in schema.items() if k != "$ref"}, target)
        parts = schema.get("allOf")
        if isinstance(parts, list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in parts:
                if isinstance(part, dict):
                    merged = _merge(merged, self._resolved(part, depth + 1))
            schema = merged
        return schema

    def _target(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for token in ref[1:].split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            node = node.get(token) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        given = schema.get("required")
        required = [r for r in given if isinstance(r, str)] if isinstance(given, list) else []
        extra = schema.get("additionalProperties")
        names = list(properties) if depth < SHALLOW_DEPTH else [n for n in properties if n in required]
        out = {name: self.value(properties[name], depth + 1, 0) for name in names}
        for name in required:
            if name not in out:
                out[name] = self.value(extra if isinstance(extra, dict) else properties.get(name), depth + 1, 0)
        least = schema.get("minProperties")
        if _count(least) and extra is not False:
            for i in range(len(out), least):
                out[f"key_{i}"] = self.value(extra if isinstance(extra, dict) else {}, depth + 1, i)
        return out

    def _array(self, schema: dict[str, Any], depth: int, index: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = schema.get("items")
        if isinstance(items, list):  # draft 4 tuple form
            prefix, items = items, schema.get("additionalItems")
        least = schema.get("minItems") if _count(schema.get("minItems")) else 0
        most = schema.get("maxItems") if _count(schema.get("maxItems")) else None
        size = max(least, len(prefix), 0 if depth >= SHALLOW_DEPTH or items is False else 1)
        if most is not None:
            size = min(size, most)
        out = [self.value(prefix[i], depth + 1, i) for i in range(min(size, len(prefix)))]
        out += [self.value(items if isinstance(items, dict) else {}, depth + 1, i) for i in range(len(out), size)]
        return out

    def _string(self, schema: dict[str, Any], index: int) -> str:
        form = schema.get("format")
        text = _FORMATS.get(form, self.prompt) if isinstance(form, str) else self.prompt
        if index:
            text = f"{text} {index}" if text is self.prompt else text
        least, most = schema.get("minLength"), schema.get("maxLength")
        if _count(least) and len(text) < least:
            text += "x" * (least - len(text))
        if _count(most):
            text = text[:most]
        return text


def _merge(base: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Two schemas as one: ``more`` wins, but properties merge and required lists join."""
    out = {**base, **more}
    for key in ("properties", "$defs", "definitions"):
        if isinstance(base.get(key), dict) and isinstance(more.get(key), dict):
            out[key] = {**base[key], **more[key]}
    if isinstance(base.get("required"), list) and isinstance(more.get("required"), list):
        out["required"] = [*base["required"], *(r for r in more["required"] if r not in base["required"])]
    return out


def _first_branch(branches: list[Any]) -> dict[str, Any]:
    usable = [b for b in branches if isinstance(b, dict)]
    for branch in usable:
        if _kind(branch) != "null":
            return branch
    return usable[0] if usable else {}


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _kind(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        names = [k.lower() for k in kind if isinstance(k, str)]
        kind = next((k for k in names if k != "null"), "null" if names else None)
    if isinstance(kind, str):
        return kind.lower()
    if kind is not None:
        return None
    if any(k in schema for k in ("properties", "required", "additionalProperties", "minProperties")):
        return "object"
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return None


def _number_of(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _bounds(schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """(low, low is exclusive, high, high is exclusive), from either draft's spelling."""
    low, high = _number_of(schema.get("minimum")), _number_of(schema.get("maximum"))
    low_open = high_open = False
    exclusive_low, exclusive_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if exclusive_low is True:
        low_open = low is not None
    elif _number_of(exclusive_low) is not None and (low is None or exclusive_low >= low):
        low, low_open = exclusive_low, True
    if exclusive_high is True:
        high_open = high is not None
    elif _number_of(exclusive_high) is not None and (high is None or exclusive_high <= high):
        high, high_open = exclusive_high, True
    return low, low_open, high, high_open


def _integer(schema: dict[str, Any], index: int) -> int:
    low, low_open, high, high_open = _bounds(schema)
    first = None if low is None else math.floor(low) + 1 if low_open else math.ceil(low)
    last = None if high is None else math.ceil(high) - 1 if high_open else math.floor(high)
    value = 1 + index
    if first is not None and value < first:
        value = first + index
    if last is not None and value > last:
        value = last if first is None else max(first, last - index)
    step = schema.get("multipleOf")
    if isinstance(step, int) and not isinstance(step, bool) and step > 0:
        up = -(-value // step) * step
        value = up if last is None or up <= last else (value // step) * step
    return value


def _number(schema: dict[str, Any], index: int) -> float | int:
    step = _number_of(schema.get("multipleOf"))
    if step is not None and step > 0 and float(step).is_integer():
        return _integer({**schema, "multipleOf": int(step)}, index)
    low, low_open, high, high_open = _bounds(schema)
    value: float = 1.5 + index
    if low is not None and (value < low or (low_open and value == low)):
        value = low + 1 + index
    if high is not None and (value > high or (high_open and value == high)):
        value = high - 1 if low is None else (low + high) / 2
    if step is None or step <= 0:
        return value
    # The first multiple from ``value`` up whose quotient is whole in floating point too (1.6 / 0.1 is not).
    start = math.ceil(value / step)
    for k in (*range(start, start + 64), *range(start - 1, start - 64, -1)):
        candidate = k * step
        if (candidate / step).is_integer() and _within(candidate, low, low_open, high, high_open):
            return candidate
    return value


def _within(value: float, low: float | None, low_open: bool, high: float | None, high_open: bool) -> bool:
    if low is not None and (value < low or (low_open and value == low)):
        return False
    return high is None or not (value > high or (high_open and value == high))

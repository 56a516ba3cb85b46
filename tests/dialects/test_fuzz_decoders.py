"""Property tests of every dialect's request decoder: whatever a client sends, a 4xx ``RelayError`` or a request.

Arbitrary JSON values, arbitrary bytes, and valid requests with one part replaced, removed, added to or buried
deep go into ``decode_request`` (and ``decode_count_request``) of each dialect; what decodes is checked by
``require_kept`` and encoded for an upstream of every dialect (``encode_request``, ``encode_count_request``),
which must give a JSON object or a 4xx ``RelayError`` too: never another exception, which would be a 500.

A few dozen examples each in the suite (the ``relay`` profile); ``pytest --fuzz`` runs thousands.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from types import ModuleType
from typing import Any

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from relay.dialects import ir
from relay.dialects.codecs import CODECS
from relay.dialects.openai.responses import codec as openai_responses
from relay.errors import RelayError

USER = [{"role": "user", "content": "hi"}]
TOOL = {"type": "object", "properties": {"x": {"type": "integer"}}}

#: A valid request of each dialect, using most of what its decoder reads.
VALID: dict[ir.Dialect, dict[str, Any]] = {
    "openai_chat": {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "1"},
        ],
        "max_tokens": 50,
        "temperature": 0.5,
        "stop": ["END"],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": TOOL}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": TOOL}},
        "reasoning_effort": "low",
        "stream": True,
        "metadata": {"a": "b"},
        "user": "u-1",
    },
    "openai_responses": {
        "model": "m",
        "instructions": "be brief",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x": 1}'},
            {"type": "function_call_output", "call_id": "c1", "output": "1"},
        ],
        "max_output_tokens": 64,
        "tools": [{"type": "function", "name": "f", "parameters": TOOL}],
        "tool_choice": {"type": "function", "name": "f"},
        "text": {"format": {"type": "json_schema", "name": "r", "schema": TOOL}},
        "reasoning": {"effort": "medium", "summary": "auto"},
        "stream": False,
        "metadata": {"a": "b"},
    },
    "anthropic": {
        "model": "m",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "1"}]},
        ],
        "stop_sequences": ["END"],
        "tools": [{"name": "f", "input_schema": TOOL}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "stream": True,
        "metadata": {"user_id": "u-1"},
    },
    "gemini": {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"result": 1}}}]},
        ],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT"}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        "generationConfig": {
            "maxOutputTokens": 80,
            "stopSequences": ["END"],
            "thinkingConfig": {"thinkingBudget": 512},
        },
        "labels": {"a": "b"},
    },
}

#: Numbers at the edges: JSON's 64-bit integers (orjson reads larger ones as floats), and floats.
numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), 10**19]),
    st.floats(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20,
)
#: Words the decoders look for, so that arbitrary objects hit their branches, not only their first check.
words = st.sampled_from(
    [
        "model", "messages", "role", "content", "type", "text", "user", "assistant", "system", "tool", "model",
        "input", "function", "name", "arguments", "parameters", "tools", "tool_choice", "auto", "required",
        "tool_use", "tool_result", "image", "image_url", "url", "source", "data", "parts", "functionCall",
        "functionResponse", "args", "inlineData", "mimeType", "thought", "thinking", "budget_tokens", "effort",
        "format", "schema", "json_schema", "reasoning", "summary", "call_id", "id", "output", "n", "seed",
        "metadata", "generationConfig", "thinkingConfig", "thinkingBudget", "max_tokens", "stream", "stop",
    ]
)  # fmt: skip
keyed_values = st.recursive(
    scalars | words,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(words, inner, max_size=5)),
    max_leaves=25,
)


def decode(codec: ModuleType, dialect: ir.Dialect, body: bytes, *, count: bool = False) -> ir.Request | None:
    """The decoded request, or None when the decoder refused it with a 4xx ``RelayError``."""
    try:
        if dialect == "gemini":
            if count:
                return codec.decode_count_request(body, model="m")
            return codec.decode_request(body, model="m", stream=False)
        return codec.decode_count_request(body) if count else codec.decode_request(body)
    except RelayError as error:
        assert 400 <= error.status < 500, error
        return None


def attempt(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """``(True, call(…))``, or ``(False, None)`` when it raised a 4xx ``RelayError`` (anything else fails)."""
    try:
        return True, call(*args, **kwargs)
    except RelayError as error:
        assert 400 <= error.status < 500, error
        return False, None


def check(dialect: ir.Dialect, body: bytes) -> None:
    """The property: decoding, checking and encoding ``body`` for every dialect raise only 4xx ``RelayError``s,
    and every encoded request is a JSON object."""
    codec = CODECS[dialect]
    for count in (False, True) if hasattr(codec, "decode_count_request") else (False,):
        req = decode(codec, dialect, body, count=count)
        if req is None:
            continue
        if dialect == "openai_responses" and not attempt(openai_responses.require_convertible, req)[0]:
            continue
        if not count and not attempt(codec.require_kept, req)[0]:
            continue
        for target, upstream in CODECS.items():
            results = [attempt(upstream.encode_request, req, "up")]
            if count and hasattr(upstream, "encode_count_request"):
                results.append(attempt(upstream.encode_count_request, req, "up"))
            elif target == dialect:
                results.append(attempt(upstream.encode_request, req, "up", same_dialect=True))
            for encoded, out in results:
                if encoded:
                    assert isinstance(orjson.loads(out), dict)


dialects = st.sampled_from(sorted(CODECS))


@given(dialect=dialects, value=json_values)
def test_any_json_value_is_decoded_or_refused_with_a_4xx(dialect: ir.Dialect, value: Any) -> None:
    check(dialect, orjson.dumps(value))


@given(dialect=dialects, data=st.binary(max_size=64))
def test_any_bytes_are_decoded_or_refused_with_a_4xx(dialect: ir.Dialect, data: bytes) -> None:
    check(dialect, data)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (keys and indices), the empty path first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += paths(child, (*prefix, i))
    return found


def mutate(request: dict[str, Any], path: tuple[Any, ...], how: str, value: Any, depth: int) -> Any:
    """``request`` with the value at ``path`` replaced, removed, given a new key, or buried ``depth`` deep."""
    out = copy.deepcopy(request)
    if not path:
        return value if how == "replace" else out
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "remove":
        del parent[last]
    elif how == "bury":
        for _ in range(depth):
            parent[last] = [parent[last]] if depth % 2 else {"a": parent[last]}
    elif isinstance(parent[last], dict):
        parent[last]["added"] = value
    else:
        parent[last] = [parent[last], value] if isinstance(parent[last], list) else value
    return out


#: Every path into each seed request, by index (``@example`` names them so).
PATHS = {dialect: paths(request) for dialect, request in VALID.items()}


def at(dialect: ir.Dialect, *path: Any) -> int:
    return PATHS[dialect].index(path)


@given(
    dialect=dialects,
    index=st.integers(min_value=0, max_value=10_000),
    how=st.sampled_from(["replace", "remove", "add", "bury"]),
    value=keyed_values,
    depth=st.integers(min_value=1, max_value=300),
)
# Crashes found by this test, kept as examples: an unhashable ``type`` (a 500 from Anthropic's decoder), and
# JSON buried deeper than orjson writes (read, then a 500 when encoded, or when the answer echoed it).
@example(dialect="anthropic", index=at("anthropic", "tool_choice", "type"), how="replace", value=[[]], depth=1)
@example(
    dialect="anthropic", index=at("anthropic", "messages", 0, "content"), how="replace", value=[{"type": {}}], depth=1
)
@example(dialect="openai_chat", index=at("openai_chat", "metadata"), how="bury", value=None, depth=260)
@example(dialect="openai_responses", index=at("openai_responses", "metadata"), how="bury", value=None, depth=300)
@example(dialect="anthropic", index=at("anthropic", "tools", 0, "input_schema"), how="bury", value=None, depth=260)
@example(dialect="gemini", index=at("gemini", "labels"), how="bury", value=None, depth=300)
def test_a_valid_request_with_a_part_changed_is_decoded_or_refused_with_a_4xx(
    dialect: ir.Dialect, index: int, how: str, value: Any, depth: int
) -> None:
    request = VALID[dialect]
    mutated = mutate(request, PATHS[dialect][index % len(PATHS[dialect])], how, value, depth)
    try:
        body = orjson.dumps(mutated)
    except orjson.JSONEncodeError:  # buried deeper than orjson writes: the same text, written by hand
        body = _deep_text(mutated)
    check(dialect, body)


def _deep_text(value: Any) -> bytes:
    """JSON text of ``value`` however deep (orjson stops at 254 levels, ``json`` at Python's recursion limit)."""
    stack: list[Any] = [value]
    out: list[bytes] = []
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, dict):
            stack.append(b"}")
            for i, (key, child) in reversed(list(enumerate(item.items()))):
                stack += [child, orjson.dumps(key) + b":"]
                if i:
                    stack.append(b",")
            stack.append(b"{")
        elif isinstance(item, list):
            stack.append(b"]")
            for i, child in reversed(list(enumerate(item))):
                stack.append(child)
                if i:
                    stack.append(b",")
            stack.append(b"[")
        else:
            out.append(orjson.dumps(item))
    return b"".join(out)


def test_the_valid_requests_decode_and_encode_for_every_dialect() -> None:
    """The seeds of the mutations are themselves accepted, so the mutations start from a request that works."""
    for dialect, request in VALID.items():
        codec = CODECS[dialect]
        req = decode(codec, dialect, orjson.dumps(request))
        assert req is not None, dialect
        codec.require_kept(req)
        for target, upstream in CODECS.items():
            if target == "openai_responses" and req.stop:
                continue  # Responses has no stop sequences: a 400, checked in test_openai_responses
            assert isinstance(orjson.loads(upstream.encode_request(req, "up")), dict)


def test_deep_text_writes_what_orjson_reads() -> None:
    value = {"a": [1, {"b": "c", "d": [None, True]}], "e": {}}
    assert orjson.loads(_deep_text(value)) == value

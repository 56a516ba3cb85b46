"""The values the mock builds from a JSON schema (tool arguments, structured output) validate against it.

Checked with the ``jsonschema`` package: a table of the schemas tools and structured output use (Claude Code's
and Codex's among them), and schemas drawn by hypothesis from the keywords ``relay/mock/examples.py`` reads (the
suite's profile; ``--fuzz`` for a long run, docs/testing.md).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.config import MockOptions
from relay.mock import model
from relay.mock import wire_chat as chat
from relay.mock.examples import example
from relay.mock.model import Prompt, Tool

NODE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
            "required": ["name", "children"],
        }
    },
    "$ref": "#/$defs/node",
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "integer": {"type": "integer"},
    "integer bounds": {"type": "integer", "minimum": 5, "maximum": 9},
    "integer exclusive": {"type": "integer", "exclusiveMinimum": 10},
    "integer draft 4 exclusive": {"type": "integer", "minimum": 1, "exclusiveMinimum": True},
    "integer multiple": {"type": "integer", "multipleOf": 7, "minimum": 3},
    "integer below zero": {"type": "integer", "maximum": -3},
    "number": {"type": "number"},
    "number in a narrow range": {"type": "number", "minimum": 0, "maximum": 1},
    "number exclusive max": {"type": "number", "exclusiveMaximum": 1.5},
    "number multiple": {"type": "number", "multipleOf": 0.1, "minimum": 1.55},
    "enum": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    "const": {"const": {"kind": "forecast"}},
    "string lengths": {"type": "string", "minLength": 300},
    "string short": {"type": "string", "maxLength": 3},
    "formats": {
        "type": "object",
        "properties": {f: {"type": "string", "format": f} for f in ("date-time", "date", "email", "uri", "uuid")},
    },
    "nullable type list": {"type": ["null", "integer"]},
    "nullable gemini": {"type": "INTEGER", "nullable": True},
    "gemini upper case": {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}, "s": {"type": "STRING"}}},
    "anyOf": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 2}]},
    "oneOf": {"oneOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]},
    "allOf": {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                        {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}]},
    "required without properties": {"type": "object", "required": ["x"], "additionalProperties": {"type": "integer"}},
    "minProperties": {"type": "object", "minProperties": 2},
    "array bounds": {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 4},
    "array unique": {"type": "array", "items": {"type": "integer", "maximum": 100}, "minItems": 3,
                     "uniqueItems": True},
    "array unique enum": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "minItems": 3, "uniqueItems": True},
    "array empty": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
    "prefixItems": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}], "items": False},
    "$ref to definitions": {"definitions": {"n": {"type": "integer", "minimum": 3}},
                            "type": "object", "properties": {"n": {"$ref": "#/definitions/n"}}, "required": ["n"]},
    "recursive $ref": NODE,
    "claude code Bash": {
        "type": "object",
        "properties": {
            "command": {"type": "string"}, "timeout": {"type": "number"}, "description": {"type": "string"},
            "run_in_background": {"type": "boolean"}, "dangerouslyDisableSandbox": {"type": "boolean"},
        },
        "required": ["command"], "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    },
    "codex request_user_input": {
        "type": "object",
        "properties": {"questions": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
            "type": "object",
            "properties": {"header": {"type": "string", "maxLength": 12}, "id": {"type": "string"},
                           "options": {"type": "array", "items": {"type": "object", "properties": {
                               "label": {"type": "string"}}, "required": ["label"]}}},
            "required": ["header", "id", "options"], "additionalProperties": False}}},
        "required": ["questions"], "additionalProperties": False,
    },
}  # fmt: skip


def standard(schema: Any) -> Any:
    """Gemini's schema dialect (upper-case type names) as JSON schema, for ``jsonschema`` to check."""
    if isinstance(schema, dict):
        return {k: v.lower() if k == "type" and isinstance(v, str) else standard(v) for k, v in schema.items()}
    return [standard(s) for s in schema] if isinstance(schema, list) else schema


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_the_example_validates(schema):
    value = example(schema, "Paris in spring")
    draft4 = schema.get("exclusiveMinimum") is True
    checker = jsonschema.Draft4Validator if draft4 else jsonschema.Draft202012Validator
    checker(standard({k: v for k, v in schema.items() if k != "$schema"})).validate(value)
    json.dumps(value, allow_nan=False)


def test_integers_are_integers_and_the_prompt_fills_strings():
    assert example({"type": "integer"}, "x") == 1 and isinstance(example({"type": "integer"}, "x"), int)
    assert example({"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}}, "hi") == {
        "n": 1,
        "s": "hi",
    }
    assert example({"anyOf": [{"type": "null"}, {"type": "integer"}]}, "x") == 1
    assert example(NODE, "x")["name"] == "x"


def test_tool_arguments_and_structured_output_use_the_builder():
    schema = SCHEMAS["codex request_user_input"]
    reply = model.answer(Prompt(text="q", tools=(Tool("ask", schema),)), MockOptions())
    jsonschema.validate(json.loads(reply.tool_calls[0].arguments), schema)
    reply = model.answer(Prompt(text="q", output_schema=SCHEMAS["allOf"]), MockOptions())
    jsonschema.validate(json.loads(reply.text), SCHEMAS["allOf"])
    form = {"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMAS["oneOf"]}}
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}], "response_format": form}
    jsonschema.validate(json.loads(chat.reply(body, MockOptions()).text), SCHEMAS["oneOf"])


# ---- drawn schemas --------------------------------------------------------------------------------------------

_NUMBER = st.integers(-50, 50)


@st.composite
def _scalar(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["string", "integer", "number", "boolean", "null", "enum"]))
    if kind == "enum":
        return {"enum": draw(st.lists(st.one_of(st.integers(), st.text(max_size=3)), min_size=1, max_size=3))}
    schema: dict[str, Any] = {"type": kind}
    if kind in ("integer", "number"):
        low = draw(st.none() | _NUMBER)
        high = draw(st.none() | _NUMBER)
        if low is not None and high is not None and low > high:
            low, high = high, low
        if low is not None:
            schema["exclusiveMinimum" if draw(st.booleans()) and high != low else "minimum"] = low
        if high is not None:
            gap = low is None or high - low >= 2
            schema["exclusiveMaximum" if draw(st.booleans()) and gap else "maximum"] = high
        if kind == "integer" and draw(st.booleans()) and low is None and high is None:
            schema["multipleOf"] = draw(st.integers(1, 9))
    if kind == "string" and draw(st.booleans()):
        least = draw(st.integers(0, 30))
        schema.update(minLength=least, maxLength=least + draw(st.integers(0, 5)))
    if draw(st.booleans()) and kind != "null":
        schema["type"] = [kind, "null"]
    return schema


def _compound(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.builds(
        lambda props, required, closed: {
            "type": "object",
            "properties": props,
            "required": [n for n in props if n in required],
            "additionalProperties": not closed,
        },
        st.dictionaries(st.text("abcdef", min_size=1, max_size=4), children, max_size=4),
        st.sets(st.text("abcdef", min_size=1, max_size=4)),
        st.booleans(),
    )
    arrays = st.builds(
        lambda items, least, extra: {"type": "array", "items": items, "minItems": least, "maxItems": least + extra},
        children,
        st.integers(0, 3),
        st.integers(0, 2),
    )
    branches = st.builds(lambda a, b: {"anyOf": [{"type": "null"}, a, b]}, children, children)
    return objects | arrays | branches


SCHEMA = st.recursive(_scalar(), _compound, max_leaves=12)


@given(SCHEMA, st.text(max_size=40))
def test_drawn_schemas_get_valid_values(schema, prompt):
    jsonschema.validate(example(schema, prompt), schema)

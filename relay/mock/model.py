"""A deterministic mock model: the same request always gets the same answer, byte for byte.

It echoes the last user message, answers with a tool call when tools are offered (arguments built
from the tool's JSON schema), answers a tool result with text, honours ``max_tokens`` (finish reason
``length``) and reports usage (a token is four characters, rounded up).

Directives in the last user message steer it, whatever dialect carried them:

==================  ===========================================================
``mock:chunks=N``   split a streamed answer into N chunks
``mock:delay_ms=N`` wait N ms between chunks
``mock:first_byte_ms=N``  wait N ms before answering at all
``mock:status=NNN`` answer with this HTTP error status instead
``mock:stall_after=N``    send N chunks, then go silent forever
``mock:drop_after=N``     send N chunks, then end the stream without its terminal event
``mock:parallel``   call every offered tool, not just the first
==================  ===========================================================
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Any

import attrs
import orjson

from relay.config import MockOptions

CREATED = 1_700_000_000
_DIRECTIVE = re.compile(r"mock:([a-z_]+)(?:=(\d+))?")


@attrs.frozen
class Directives:
    chunks: int | None = None
    delay_ms: int | None = None
    first_byte_ms: int | None = None
    status: int | None = None
    stall_after: int | None = None
    drop_after: int | None = None
    parallel: bool = False


#: The largest number a directive takes (a chunk count, a delay in ms); larger values are clamped.
MAX_DIRECTIVE = 1_000_000


def parse_directives(text: str) -> Directives:
    """The directives in ``text``; unknown names, missing values and a status that is not 4xx/5xx are ignored."""
    found: dict[str, Any] = {}
    fields = {f.name for f in attrs.fields(Directives)}
    for name, value in _DIRECTIVE.findall(text):
        if name not in fields:
            continue
        if name == "parallel":
            found[name] = True
        elif name == "status":
            found[name] = int(value) if value and 400 <= int(value) <= 599 else None
        else:
            found[name] = min(int(value), MAX_DIRECTIVE) if value else None
    return Directives(**{k: v for k, v in found.items() if v is not None})


def problem(payload: Any) -> tuple[str | None, str] | None:
    """What a real upstream would answer 400 to, as (param, message); None when the request is fine."""
    if not isinstance(payload, dict):
        return None, "the request body must be a JSON object"
    if not isinstance(payload.get("model"), str):
        return "model", "'model' must be a string"
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages", "'messages' must be a non-empty array"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return f"messages[{i}]", f"'messages[{i}]' must be an object with a string 'role'"
        if not isinstance(message.get("content"), (str, list, type(None))):
            return f"messages[{i}].content", f"'messages[{i}].content' must be a string, an array or null"
    if payload.get("stream") not in (None, True, False):
        return "stream", "'stream' must be a boolean"
    if not isinstance(payload.get("stream_options"), (dict, type(None))):
        return "stream_options", "'stream_options' must be an object"
    for name in ("max_tokens", "max_completion_tokens"):
        limit = payload.get(name)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            return name, f"'{name}' must be a positive integer"
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools", "'tools' must be an array"
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                return f"tools[{i}].function", f"'tools[{i}].function' must be an object with a string 'name'"
            if not isinstance(function.get("parameters"), (dict, type(None))):
                return f"tools[{i}].function.parameters", f"'tools[{i}].function.parameters' must be an object"
    choice = payload.get("tool_choice")
    if choice is not None and choice not in ("none", "auto", "required"):
        function = choice.get("function") if isinstance(choice, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return "tool_choice", "'tool_choice' must be none, auto, required or {type: function, function: {name}}"
    return None


@attrs.frozen
class ToolCall:
    id: str
    name: str
    arguments: str


@attrs.frozen
class Reply:
    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    directives: Directives
    #: Pieces a stream sends, in order: text pieces, or each call's argument pieces.
    chunks: int
    first_byte_delay: float
    chunk_delay: float
    id: str


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def reply(payload: dict[str, Any], options: MockOptions) -> Reply:
    """The mock's answer to a Chat Completions request body."""
    messages = [m for m in payload.get("messages", []) if isinstance(m, dict)]
    last_user = next((text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    directives = parse_directives(last_user)
    prompt_tokens = sum(tokens(text_of(m.get("content"))) + 3 for m in messages)
    ident = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
    tools = [t for t in payload.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    calls: tuple[ToolCall, ...] = ()
    answered_tool = bool(messages) and messages[-1].get("role") == "tool"
    if tools and payload.get("tool_choice") != "none" and not answered_tool:
        chosen = _chosen_tools(tools, payload.get("tool_choice"), directives.parallel)
        calls = tuple(
            ToolCall(f"call_{ident[:16]}{i}", t["name"], _arguments(t.get("parameters"), last_user))
            for i, t in enumerate(chosen)
        )
    if calls:
        text = ""
        completion = sum(tokens(c.arguments) for c in calls)
        finish = "tool_calls"
    else:
        if answered_tool:
            text = "Tool said: " + text_of(messages[-1].get("content"))
        else:
            text = "Echo: " + last_user if last_user else "Hello from the mock model."
        completion = tokens(text)
        finish = "stop"
        limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and completion > limit:
            text, completion, finish = text[: limit * 4], limit, "length"
    return Reply(
        text=text,
        tool_calls=calls,
        finish_reason=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        directives=directives,
        chunks=directives.chunks or options.chunks,
        first_byte_delay=directives.first_byte_ms / 1000
        if directives.first_byte_ms is not None
        else options.first_byte_delay,
        chunk_delay=directives.delay_ms / 1000 if directives.delay_ms is not None else options.chunk_delay,
        id=ident,
    )


def _chosen_tools(tools: list[dict[str, Any]], choice: Any, parallel: bool) -> list[dict[str, Any]]:
    functions = [t["function"] for t in tools if isinstance(t["function"].get("name"), str)]
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        named = [f for f in functions if f["name"] == name]
        if named:
            return named
    return functions if parallel else functions[:1]


def _arguments(schema: Any, prompt: str) -> str:
    return orjson.dumps(_example(schema if isinstance(schema, dict) else {}, prompt)).decode()


def _example(schema: dict[str, Any], prompt: str) -> Any:
    """A value that satisfies a simple JSON schema, derived from the prompt; odd schemas get a string."""
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {name: _example(sub if isinstance(sub, dict) else {}, prompt) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items")
        return [_example(items if isinstance(items, dict) else {}, prompt)]
    samples: dict[Any, Any] = {"integer": 1, "number": 1.5, "boolean": True, "null": None}
    return samples.get(kind, prompt[:200]) if isinstance(kind, str) else prompt[:200]


def split(text: str, parts: int) -> list[str]:
    """``text`` in ``parts`` nearly equal pieces (fewer when it is shorter); never an empty piece."""
    if not text:
        return []
    parts = max(1, min(parts, len(text)))
    size, extra = divmod(len(text), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def usage(r: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "total_tokens": r.prompt_tokens + r.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def chat_completion(r: Reply, model: str) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": r.text or None, "refusal": None}
    if r.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in r.tool_calls
        ]
    return orjson.dumps(
        {
            "id": f"chatcmpl-{r.id}",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": r.finish_reason}],
            "usage": usage(r),
            "system_fingerprint": "fp_mock",
        }
    )


def chat_chunks(r: Reply, model: str, include_usage: bool) -> list[bytes]:
    """Every SSE frame of the streamed answer, ``data: [DONE]`` included."""
    head = {
        "id": f"chatcmpl-{r.id}",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_mock",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(body) + b"\n\n"

    frames = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({"content": piece}) for piece in split(r.text, r.chunks)]
    for index, call in enumerate(r.tool_calls):
        frames.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        frames += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in split(call.arguments, r.chunks)
        ]
    frames.append(chunk({}, r.finish_reason))
    if include_usage:
        frames.append(b"data: " + orjson.dumps({**head, "choices": [], "usage": usage(r)}) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames


def wants_usage(payload: dict[str, Any]) -> bool:
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def error_body(status: int) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": f"mock upstream error {status}",
                "type": "mock_error",
                "param": None,
                "code": str(status),
            }
        }
    )


def model_list(models: Sequence[str]) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": CREATED, "owned_by": "relay-mock"} for m in models],
        }
    )

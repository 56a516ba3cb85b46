"""A deterministic mock model: the same request always gets the same answer, byte for byte.

Each dialect's wire module (``wire_chat``, ``wire_responses``, ``wire_anthropic``, ``wire_gemini``)
reads its own request body into a dialect-neutral ``Prompt``; ``answer`` turns the prompt into a
``Reply``; the wire module writes the reply in its own shape. So every dialect answers alike:

- the last user message echoed (``"Echo: <text>"``), or ``"Tool said: <result>"`` after a tool result;
- a tool call when tools are offered (arguments built from the tool's JSON schema);
- reasoning first (``"Thinking about: <text>"``) when the request asks for reasoning;
- JSON satisfying the schema when structured output is asked;
- the text cut at the first stop sequence, or at ``max_tokens`` (finish ``length``);
- usage: a token is four characters, rounded up; output tokens include reasoning tokens.

Directives in the last user message steer it, whatever dialect carried them:

==================  ===========================================================
``mock:chunks=N``   split a streamed answer into N chunks
``mock:delay_ms=N`` wait N ms between chunks
``mock:first_byte_ms=N``  wait N ms before answering at all
``mock:status=NNN`` answer with this HTTP error status instead
``mock:stall_after=N``    send N chunks, then go silent forever
``mock:drop_after=N``     send N chunks, then end the stream without its terminal event
``mock:parallel``   call every offered tool, not just the first
``mock:cached=N``   report N of the input tokens as read from the prompt cache
==================  ===========================================================
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import attrs
import orjson

from relay.config import MockOptions

CREATED = 1_700_000_000
_DIRECTIVE = re.compile(r"mock:([a-z_]+)(?:=(\d+))?")

Headers = Sequence[tuple[bytes, bytes]]
JSON_HEADERS: Headers = ((b"content-type", b"application/json"),)
SSE_HEADERS: Headers = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))


@attrs.frozen
class Directives:
    chunks: int | None = None
    delay_ms: int | None = None
    first_byte_ms: int | None = None
    status: int | None = None
    stall_after: int | None = None
    drop_after: int | None = None
    parallel: bool = False
    cached: int | None = None


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


# ---- the neutral request ---------------------------------------------------------------------------

ToolChoice = Literal["auto", "none", "required", "named"]


@attrs.frozen
class Tool:
    name: str
    #: The JSON schema of the arguments (``{}`` when the tool gave none).
    schema: dict[str, Any]


#: The schema a bare JSON mode (Chat ``json_object``, Gemini ``application/json`` without a schema) gets.
JSON_OBJECT: dict[str, Any] = {"type": "object", "properties": {"answer": {"type": "string"}}}


@attrs.frozen
class Prompt:
    """What the mock reads of a request, whatever dialect carried it."""

    #: The text of the last message the user wrote (tool results are not user text).
    text: str = ""
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = "auto"
    #: The tool ``tool_choice`` names, when it names one.
    tool_name: str | None = None
    #: The text of the tool result when the conversation's last turn is one.
    tool_result: str | None = None
    #: Whether several calls may come at once (``mock:parallel``); False when the request forbids it.
    parallel: bool = True
    max_tokens: int | None = None
    reasoning: bool = False
    #: The schema structured output must satisfy (``JSON_OBJECT`` for a bare JSON mode); None: free text.
    output_schema: dict[str, Any] | None = None
    stop: tuple[str, ...] = ()
    prompt_tokens: int = 0
    #: What ids derive from: a digest of the request body (see ``digest``).
    seed: str = ""


def digest(payload: Any) -> str:
    """A stable digest of a request body: ids derive from it, so one request always gets the same ids."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def count(texts: Iterable[str]) -> int:
    """Input tokens of a conversation: each message's tokens plus 3."""
    return sum(tokens(t) + 3 for t in texts)


# ---- the neutral answer ----------------------------------------------------------------------------


@attrs.frozen
class ToolCall:
    #: ``call_<hex>``; dialects with another prefix swap it (Anthropic ``toolu_``).
    id: str
    name: str
    arguments: str


@attrs.frozen
class Reply:
    text: str
    tool_calls: tuple[ToolCall, ...]
    #: ``stop``, ``length`` or ``tool_calls`` (a stop sequence is ``stop`` with ``stop_sequence`` set).
    finish_reason: str
    #: Input tokens, cached ones included.
    prompt_tokens: int
    #: Output tokens, reasoning tokens included.
    completion_tokens: int
    directives: Directives
    #: Pieces a stream sends, in order: reasoning and text pieces, or each call's argument pieces.
    chunks: int
    first_byte_delay: float
    chunk_delay: float
    id: str
    reasoning: str = ""
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    stop_sequence: str | None = None


def answer(prompt: Prompt, options: MockOptions) -> Reply:
    """The mock's answer to a prompt, deterministic."""
    directives = parse_directives(prompt.text)
    ident = prompt.seed
    answering = prompt.tool_result is not None
    calls: tuple[ToolCall, ...] = ()
    if prompt.tools and prompt.tool_choice != "none" and not answering:
        chosen = _chosen_tools(prompt.tools, prompt.tool_name, directives.parallel and prompt.parallel)
        calls = tuple(
            ToolCall(f"call_{ident[:16]}{i}", t.name, _arguments(t.schema, prompt.text)) for i, t in enumerate(chosen)
        )
    reasoning = f"Thinking about: {prompt.text}" if prompt.reasoning else ""
    text, stop_sequence, finish = "", None, "tool_calls"
    if calls:
        completion = tokens(reasoning) + sum(tokens(c.arguments) for c in calls)
    else:
        text, stop_sequence = _cut_at_stop(_text(prompt), prompt.stop)
        reasoning, text, finish = _cut_at_limit(reasoning, text, prompt.max_tokens)
        completion = tokens(reasoning) + tokens(text)
        if finish == "length":
            stop_sequence = None
    return Reply(
        text=text,
        tool_calls=calls,
        finish_reason=finish,
        prompt_tokens=prompt.prompt_tokens,
        completion_tokens=completion,
        directives=directives,
        chunks=directives.chunks or options.chunks,
        first_byte_delay=directives.first_byte_ms / 1000
        if directives.first_byte_ms is not None
        else options.first_byte_delay,
        chunk_delay=directives.delay_ms / 1000 if directives.delay_ms is not None else options.chunk_delay,
        id=ident,
        reasoning=reasoning,
        reasoning_tokens=tokens(reasoning),
        cached_tokens=min(directives.cached or 0, prompt.prompt_tokens),
        stop_sequence=stop_sequence,
    )


def _text(prompt: Prompt) -> str:
    basis = prompt.tool_result if prompt.tool_result is not None else prompt.text
    if prompt.output_schema is not None:
        return orjson.dumps(_example(prompt.output_schema, basis)).decode()
    if prompt.tool_result is not None:
        return "Tool said: " + prompt.tool_result
    return "Echo: " + prompt.text if prompt.text else "Hello from the mock model."


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, str | None]:
    """``text`` up to the first stop sequence in it, and that sequence (None when none occurs)."""
    found = [(text.find(s), i) for i, s in enumerate(stops) if s and s in text]
    if not found:
        return text, None
    at, which = min(found)
    return text[:at], stops[which]


def _cut_at_limit(reasoning: str, text: str, limit: int | None) -> tuple[str, str, str]:
    """Reasoning and text within ``limit`` output tokens (reasoning first), and the finish reason."""
    if limit is None or limit < 1 or tokens(reasoning) + tokens(text) <= limit:
        return reasoning, text, "stop"
    room = limit - tokens(reasoning)
    if room <= 0:
        return reasoning[: limit * 4], "", "length"
    return reasoning, text[: room * 4], "length"


def _chosen_tools(tools: Sequence[Tool], name: str | None, parallel: bool) -> list[Tool]:
    named = [t for t in tools if t.name == name] if name is not None else []
    if named:
        return named[:1]
    return list(tools) if parallel else list(tools[:1])


def _arguments(schema: Any, prompt: str) -> str:
    return orjson.dumps(_example(schema if isinstance(schema, dict) else {}, prompt)).decode()


def _example(schema: dict[str, Any], prompt: str) -> Any:
    """A value that satisfies a simple JSON schema, derived from the prompt; odd schemas get a string.

    Type names are read case-insensitively (Gemini's ``OBJECT``, ``STRING``).
    """
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if isinstance(k, str) and k.lower() != "null"), "null")
    kind = kind.lower() if isinstance(kind, str) else kind
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


def result_text(value: Any) -> str:
    """A tool result as text: a string as is, text parts joined, ``{"result": "x"}``-like wrappers unwrapped."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str))
    if isinstance(value, dict) and len(value) == 1:
        (inner,) = value.values()
        if isinstance(inner, str):
            return inner
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# ---- what a wire module hands the router -----------------------------------------------------------


@attrs.frozen
class Answer:
    """One HTTP answer, before any waiting: a whole body, or a stream's frames with the reply that paces them."""

    status: int
    body: bytes | tuple[bytes, ...]
    headers: Headers = JSON_HEADERS
    #: The model's reply when this answer is one (its delays and cuts apply); None for refusals and listings.
    reply: Reply | None = None


def json_answer(status: int, payload: Any, reply: Reply | None = None) -> Answer:
    return Answer(status, orjson.dumps(payload), JSON_HEADERS, reply)

"""A deterministic mock model: the same request always gets the same answer, byte for byte.

Each dialect's wire module (``wire_chat``, ``wire_responses``, ``wire_anthropic``, ``wire_gemini``)
reads its own request body into a dialect-neutral ``Prompt``; ``answer`` turns the prompt into a
``Reply``; the wire module writes the reply in its own shape. So every dialect answers alike:

- the last user message echoed (``"Echo: <text>"``), or ``"Tool said: <result>"`` after a tool result;
- the task endpoints' prompts (summarize, translate, …: docs/utility.md) answered as ``relay.mock.tasks`` says;
- a tool call when tools are offered (arguments built from the tool's JSON schema); after a tool result,
  another only under ``mock:rounds=N`` (an agent turn of N tool results, each step its own reasoning);
- reasoning first (``"Thinking about: <text>"``) when the request asks for reasoning;
- JSON satisfying the schema when structured output is asked;
- the text cut at the first stop sequence, or at ``max_tokens`` (finish ``length``);
- usage: a token is four characters, rounded up; output tokens include reasoning tokens.

Directives in the last user turn steer it, whatever dialect carried them (the turn is the last user
message with text and the user messages right before it, instructions between them skipped, so a prompt
split over several blocks or messages is read whole; see ``directives.py`` for the syntax):

========================  ===========================================================
``mock:chunks=N``         split a streamed answer into N chunks
``mock:delay_ms=N``       wait N ms between chunks
``mock:first_byte_ms=N``  wait N ms before answering at all
``mock:status=NNN``       answer with this HTTP error status instead
``mock:stall_after=N``    send N chunks, then go silent forever
``mock:drop_after=N``     send N chunks, then end the stream without its terminal event
``mock:parallel``         call every offered tool, not just the first
``mock:cached=N``         report N of the input tokens as read from the prompt cache
``mock:text``             answer with text even when tools are offered (a required call still calls)
``mock:tool=NAME``        call the tool NAME (or ``namespace__NAME``, or one whose name ends ``__NAME``);
                          when no offered tool matches, answer with text
``mock:args={…}``         the call's arguments: the JSON object written there (not built from the schema);
                          a custom (freeform) tool gets its ``"input"`` string, or else the object's JSON
``mock:rounds=N``         after a tool result, call a tool again while the conversation holds fewer than N
                          tool results after the last user text; each such step reasons about, and builds
                          its arguments from, the last result; at N, ``Tool said: <result>``
========================  ===========================================================
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import attrs
import orjson

from relay.config import MockOptions
from relay.mock import tasks
from relay.mock.directives import MAX_DIRECTIVE as MAX_DIRECTIVE
from relay.mock.directives import Directives, parse_directives
from relay.mock.examples import example

CREATED = 1_700_000_000

Headers = Sequence[tuple[bytes, bytes]]
JSON_HEADERS: Headers = ((b"content-type", b"application/json"),)
SSE_HEADERS: Headers = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))


# ---- the neutral request ---------------------------------------------------------------------------

ToolChoice = Literal["auto", "none", "required", "named"]


@attrs.frozen
class Tool:
    name: str
    #: The JSON schema of the arguments (``{}`` when the tool gave none).
    schema: dict[str, Any]
    #: The namespace a Responses ``namespace`` tool groups it in.
    namespace: str | None = None
    #: A custom (freeform) tool: its call carries raw text (``input``), not JSON arguments.
    custom: bool = False

    @property
    def qualified(self) -> str:
        """``namespace__name`` for a tool in a namespace, else the name."""
        return f"{self.namespace}__{self.name}" if self.namespace else self.name


#: The schema a bare JSON mode (Chat ``json_object``, Gemini ``application/json`` without a schema) gets.
JSON_OBJECT: dict[str, Any] = {"type": "object", "properties": {"answer": {"type": "string"}}}


@attrs.frozen
class Prompt:
    """What the mock reads of a request, whatever dialect carried it."""

    #: The text of the last message the user wrote (tool results are not user text).
    text: str = ""
    #: The text of the last user turn, where directives are read (see ``last_turn``); None: ``text``.
    turn: str | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = "auto"
    #: The tool ``tool_choice`` names, when it names one.
    tool_name: str | None = None
    #: The text of the tool result when the conversation's last turn is one.
    tool_result: str | None = None
    #: How many tool results the conversation holds after the last user text (see ``results_since_text``).
    tool_results: int = 0
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
    #: JSON text of an object; for a custom tool, its raw input.
    arguments: str
    namespace: str | None = None
    custom: bool = False


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
    directives = parse_directives(prompt.turn if prompt.turn is not None else prompt.text)
    ident = prompt.seed
    # a step of a ``mock:rounds`` turn after a tool result reasons about that result and builds its call from it
    basis = prompt.tool_result if directives.rounds is not None and prompt.tool_result is not None else prompt.text
    calls = tuple(
        ToolCall(f"call_{ident[:16]}{i}", t.name, _arguments(t, basis, directives.args), t.namespace, t.custom)
        for i, t in enumerate(_calling(prompt, directives))
    )
    reasoning = f"Thinking about: {basis}" if prompt.reasoning else ""
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
        return orjson.dumps(example(prompt.output_schema, tasks.material(basis) or basis)).decode()
    if prompt.tool_result is not None:
        return "Tool said: " + prompt.tool_result
    task = tasks.answer(prompt.text)  # the task endpoints' prompts (relay.mock.tasks)
    if task is not None:
        return task
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


def _calling(prompt: Prompt, directives: Directives) -> list[Tool]:
    """The tools the answer calls: none after a tool result (unless ``mock:rounds`` asks for more) or with
    ``tool_choice`` none; the named one; the one ``mock:tool`` names (none when it names no offered tool); none
    for ``mock:text`` unless a call is required; else the first, or every one with ``mock:parallel`` where
    parallel calls are allowed."""
    more = directives.rounds is not None and prompt.tool_results < directives.rounds
    if not prompt.tools or prompt.tool_choice == "none" or (prompt.tool_result is not None and not more):
        return []
    if prompt.tool_choice == "named":
        named = find_tool(prompt.tools, prompt.tool_name or "")
        if named is not None:
            return [named]
    elif directives.tool is not None:
        wanted = find_tool(prompt.tools, directives.tool)
        return [wanted] if wanted is not None else []
    elif directives.text and prompt.tool_choice != "required":
        return []
    return list(prompt.tools) if directives.parallel and prompt.parallel else list(prompt.tools[:1])


def find_tool(tools: Sequence[Tool], name: str) -> Tool | None:
    """The tool ``name`` means: by ``namespace__name``, then by its own name, then the first whose qualified name
    ends with ``__name`` (a namespaced tool a relay flattened)."""
    for match in (
        lambda t: t.qualified == name,
        lambda t: t.name == name,
        lambda t: t.qualified.endswith("__" + name),
    ):
        found = next((t for t in tools if match(t)), None)
        if found is not None:
            return found
    return None


def _arguments(tool: Tool, prompt: str, given: str | None) -> str:
    """A call's arguments: ``mock:args`` when given, else built from the schema; a custom tool's raw input."""
    if tool.custom:
        if given is None:
            return prompt
        value = orjson.loads(given).get("input")
        return value if isinstance(value, str) else given
    if given is not None:
        return given
    return orjson.dumps(example(tool.schema, prompt)).decode()


def last_turn(messages: Iterable[tuple[str, str]]) -> str:
    """The text of the last user turn, where directives are read: the last ``user`` message with text and the
    ``user`` messages right before it (``instruction`` ones between them skipped), joined by newlines.

    ``messages`` are (kind, text) in order, kind ``user``, ``instruction`` (system, developer) or ``other``.
    """
    turn: list[str] = []
    for kind, text in reversed(list(messages)):
        if kind == "user" and text:
            turn.append(text)
        elif kind == "instruction" or (kind == "user" and not turn):
            continue
        elif turn:
            break
    return "\n".join(reversed(turn))


def results_since_text(messages: Iterable[tuple[bool, int]]) -> int:
    """How many tool results follow the last user message with text (what ``mock:rounds`` counts).

    ``messages`` are, in order, (whether the message is a user one with text, how many tool results it holds);
    a user message with text starts the count again, its own results not counted.
    """
    found = 0
    for said, results in messages:
        found = 0 if said else found + results
    return found


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

"""The canonical request, response and stream events that every dialect codec converts to and from.

Sans-IO, frozen, small: like h11's events. A codec's ``decode_*`` turns its dialect into these, its
``encode_*`` turns these into its dialect. Nothing here knows a dialect's spelling; each choice below
is the one that loses nothing when the four dialects (OpenAI Chat, OpenAI Responses, Anthropic
Messages, Gemini) convert into each other:

- Tool-call arguments stay the JSON *text* the model produced (``arguments``), never re-serialised:
  streams deliver them as fragments, and a byte-exact round trip must not reorder keys.
- Reasoning carries its provider-bound proofs untouched (Anthropic ``signature`` and redacted
  ``data``, Gemini ``thoughtSignature``, OpenAI ``encrypted_content``), tagged with the dialect that
  made them, so an upstream encoder sends them back only to that dialect and drops them for another; a
  client encoder of another dialect wraps them in its own opaque field (``relay.dialects.envelope``).
- Usage follows one convention: ``input_tokens`` *includes* cached tokens and ``output_tokens``
  *includes* reasoning tokens (OpenAI and Gemini's sums); the Anthropic codec adds and subtracts.
- Tools every dialect has are plain functions: a client's tool of another shape (an OpenAI Responses
  namespace member, a custom tool) is a ``Tool`` with a flat name and its ``ToolOrigin``, so answers can name
  its calls the client's way; provider-run tools are ``HostedTool``s, sent or dropped per upstream.
- ``extra`` keeps a request's fields that have no IR slot, so a same-dialect path loses nothing;
  an encoder of another dialect ignores them (each codec's docs/ table says which fields those are).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

Dialect = Literal["openai_chat", "openai_responses", "anthropic", "gemini"]
Role = Literal["user", "assistant", "system"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]

# ---- content parts -------------------------------------------------------------------------------


@attrs.frozen
class Citation:
    """A web source an answer's text block cites (Anthropic ``web_search_result_location``): the whole block."""

    url: str
    title: str = ""


@attrs.frozen
class Text:
    text: str
    #: The web sources the text cites (answers only; a decoder of requests never fills it).
    citations: tuple[Citation, ...] = ()


@attrs.frozen
class Image:
    """An image by URL (``https:``) or inline (``data`` base64 with its ``media_type``)."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    #: OpenAI's ``detail`` (``low``/``high``/``auto``); others have no such knob.
    detail: str | None = None


@attrs.frozen
class Document:
    """A file the model reads (PDF): inline base64, or by URL."""

    media_type: str
    data: str | None = None
    url: str | None = None
    name: str | None = None


@attrs.frozen
class ToolCall:
    id: str
    name: str
    #: The arguments as the model wrote them: JSON text (``"{}"`` when empty).
    arguments: str
    #: Gemini's ``thoughtSignature`` on the functionCall part, returned only to Gemini.
    signature: str | None = None
    signature_dialect: Dialect | None = None


@attrs.frozen
class ToolResult:
    call_id: str
    #: The called tool's name (Gemini's functionResponse needs it; codecs fill it from the history).
    name: str | None
    content: tuple[Text | Image, ...]
    is_error: bool = False


@attrs.frozen
class Reasoning:
    """Thinking the model did: its visible text or summary, and the proofs a provider wants back."""

    text: str = ""
    #: Anthropic ``signature`` / Gemini ``thoughtSignature`` / OpenAI ``encrypted_content``.
    signature: str | None = None
    #: Anthropic ``redacted_thinking.data``: opaque, no text.
    redacted: str | None = None
    #: The dialect whose upstream made ``signature``/``redacted``: they go back only to it.
    dialect: Dialect | None = None
    #: OpenAI Responses' ``rs_…`` item id, kept for replay to the same dialect.
    id: str | None = None


Part = Text | Image | Document | ToolCall | ToolResult | Reasoning


@attrs.frozen
class Message:
    """One turn. Tool results travel in ``user`` turns (as Anthropic and Gemini have them).

    A ``system`` turn is an instruction given mid-conversation, kept in its place (``Text`` parts only):
    Anthropic's ``{"role": "system"}`` messages, Chat's and Responses' system/developer messages after the
    conversation began. Those before it are ``Request.system``. Each encoder writes it as its dialect's
    nearest equivalent (docs/conversions/README.md).
    """

    role: Role
    parts: tuple[Part, ...]


# ---- request ---------------------------------------------------------------------------------------


@attrs.frozen
class ToolOrigin:
    """How the client spelled a tool that every dialect receives as a plain function (``Tool.name`` is then the
    flat name ``relay.dialects.tool_names`` made): answers name it back the client's way."""

    #: The client's own name of the tool (inside its namespace).
    name: str
    #: The OpenAI Responses ``namespace`` that groups it, if any.
    namespace: str | None = None
    #: An OpenAI Responses custom (freeform) tool: sent as a function of one string argument ``input``.
    custom: bool = False


@attrs.frozen
class Tool:
    name: str
    description: str | None
    #: The JSON schema of the arguments, as the client gave it.
    parameters: Mapping[str, Any]
    strict: bool | None = None
    #: Set when the client's tool was not a plain function (a namespace member, a custom tool).
    origin: ToolOrigin | None = None


@attrs.frozen
class HostedTool:
    """A tool the provider runs itself (web search, file search, code interpreter, MCP…), as the client asked.

    ``relay.dialects.hosted_tools`` decides per upstream dialect whether it is sent (as that dialect's own) or
    dropped. Only ``web_search`` has equivalents; every other ``kind`` is dropped on any other dialect.
    """

    #: ``web_search``, or the client's own type of a tool no other dialect runs (``file_search``, ``mcp``…).
    kind: str
    #: The client's name of it (its type), said in the ``x-relay-dropped-tools`` header when dropped.
    label: str
    #: The client's tool choice forces this tool: dropping it is a 400, not a silent change.
    forced: bool = False
    #: Web search: only these domains (and their subdomains); none means any.
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()
    #: Web search: the most searches one answer may run.
    max_uses: int | None = None
    #: Web search: the user's approximate location (``city``, ``region``, ``country``, ``timezone``).
    location: Mapping[str, str] | None = None
    #: Web search: False when the client asked for cached results only (no live access to the web).
    live: bool = True
    #: The dialect whose client declared it, and its declaration there: an upstream of that dialect gets it as
    #: it was (None: the client's raw tools travel in ``extra``, as OpenAI Responses' do).
    dialect: Dialect | None = None
    raw: Mapping[str, Any] | None = None


@attrs.frozen
class ToolChoice:
    mode: Literal["auto", "none", "required", "named"] = "auto"
    #: The tool to call, with ``mode="named"``.
    name: str | None = None


@attrs.frozen
class OutputFormat:
    kind: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: Mapping[str, Any] | None = None
    strict: bool | None = None


@attrs.frozen
class ReasoningConfig:
    """Either an ``effort`` or a token ``budget`` (codecs map one to the other), and whether to show it."""

    effort: Effort | None = None
    budget_tokens: int | None = None
    #: Return the reasoning text (Gemini ``includeThoughts``, Responses ``summary``).
    include: bool | None = None


@attrs.frozen
class Request:
    model: str
    #: System prompt and developer instructions, in order.
    system: tuple[Text, ...]
    messages: tuple[Message, ...]
    stream: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    #: Provider-run tools the client offered (sent or dropped per upstream: ``relay.dialects.hosted_tools``).
    hosted: tuple[HostedTool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    output: OutputFormat | None = None
    reasoning: ReasoningConfig | None = None
    #: Fields of the client's dialect with no slot here, passed on only to the same dialect.
    extra: Mapping[str, Any] = attrs.field(factory=dict)


# ---- response --------------------------------------------------------------------------------------


@attrs.frozen
class Usage:
    #: All input tokens, cached ones included.
    input_tokens: int = 0
    #: All output tokens, reasoning ones included.
    output_tokens: int = 0
    #: Input tokens read from a cache.
    cached_tokens: int = 0
    #: Input tokens written to a cache (Anthropic ``cache_creation_input_tokens``).
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    #: The units of the APIs beside generation, priced by ``[[prices]]`` as their own: images made (and their
    #: ``"SIZE"`` or ``"SIZE/QUALITY"``), seconds of audio, characters spoken, requests answered.
    images: int = 0
    image_size: str = ""
    seconds: float = 0.0
    characters: int = 0
    requests: int = 0
    #: Of ``input_tokens``, ``cached_tokens`` and ``output_tokens``: the audio ones (OpenAI Realtime), priced by
    #: ``[[prices]]``'s audio prices when it has them.
    audio_input_tokens: int = 0
    cached_audio_tokens: int = 0
    audio_output_tokens: int = 0


@attrs.frozen
class WebSearch:
    """A web search the upstream ran itself (Anthropic's server tool, Gemini's grounding): what it looked for
    and the URLs it found. Only OpenAI Responses clients are shown it (a ``web_search_call`` item)."""

    id: str
    queries: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    #: The search failed (Anthropic's ``web_search_tool_result_error``).
    failed: bool = False


@attrs.frozen
class Response:
    id: str
    model: str
    #: What the assistant produced, in order: Reasoning, Text, ToolCall.
    parts: tuple[Reasoning | Text | ToolCall | WebSearch, ...]
    finish_reason: FinishReason
    usage: Usage | None = None
    #: The stop sequence that ended the answer, when one did.
    stop_sequence: str | None = None
    #: Unix seconds (OpenAI's ``created``); 0 when the dialect did not say.
    created: int = 0


# ---- stream events ----------------------------------------------------------------------------------
# Blocks are indexed in output order (0, 1, …) and never interleave: a block starts, gets deltas,
# and ends before the next one starts. Decoders of dialects that interleave (OpenAI Chat's parallel
# tool calls) reorder nothing: they end the open block when another starts.


@attrs.frozen
class Start:
    id: str
    model: str
    created: int = 0
    #: Input usage known at the start (Anthropic's message_start), else None.
    usage: Usage | None = None


@attrs.frozen
class TextStart:
    index: int


@attrs.frozen
class TextDelta:
    index: int
    text: str


@attrs.frozen
class ReasoningStart:
    index: int
    dialect: Dialect | None = None
    id: str | None = None
    #: Anthropic redacted_thinking: a whole block with no deltas.
    redacted: str | None = None


@attrs.frozen
class ReasoningDelta:
    index: int
    text: str


@attrs.frozen
class ReasoningSignature:
    """The block's proof, sent once, before its end."""

    index: int
    signature: str


@attrs.frozen
class ToolCallStart:
    index: int
    id: str
    name: str
    signature: str | None = None
    signature_dialect: Dialect | None = None


@attrs.frozen
class ToolCallDelta:
    """A fragment of the arguments' JSON text, forwarded as it comes."""

    index: int
    arguments: str


@attrs.frozen
class TextCitation:
    """A web source the text block ``index`` cites (its whole text); it comes before the block's end."""

    index: int
    citation: Citation


@attrs.frozen
class WebSearched:
    """A web search the upstream ran, whole: a block of its own, with no deltas and no ``BlockEnd``."""

    index: int
    search: WebSearch


@attrs.frozen
class BlockEnd:
    index: int


@attrs.frozen
class Finish:
    reason: FinishReason
    usage: Usage | None = None
    stop_sequence: str | None = None


@attrs.frozen
class StreamError:
    """The upstream failed mid-stream (or the stream ended without its terminal event)."""

    status: int
    message: str
    code: str | None = None


Event = (
    Start
    | TextStart
    | TextDelta
    | ReasoningStart
    | ReasoningDelta
    | ReasoningSignature
    | ToolCallStart
    | ToolCallDelta
    | TextCitation
    | WebSearched
    | BlockEnd
    | Finish
    | StreamError
)

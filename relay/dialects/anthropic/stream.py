"""Anthropic Messages streams: SSE bytes to IR events (``StreamDecoder``) and back (``StreamEncoder``).

Also the wire mappings both halves of the codec share (stop reasons, usage, error types):
``anthropic.response`` imports them from here; ``anthropic`` re-exports the two stream classes.

Grammar: ``message_start`` → per block ``content_block_start`` / ``content_block_delta``… /
``content_block_stop`` with dense, in-order indices → ``message_delta`` (stop reason, cumulative usage) →
``message_stop``. ``ping`` may come anywhere; ``event: error`` ends the stream.

Decoder choices:

- Every event is converted as it arrives: ``input_json_delta`` fragments become ``ToolCallDelta`` at once
  (empty ones skipped; a tool block that got none gets ``"{}"`` at its stop), ``signature_delta`` becomes
  ``ReasoningSignature``. Frames without an ``event:`` line are read by their data's ``type``.
- Blocks with no IR slot (server-tool blocks) are skipped, but a ``web_search`` call's query (its
  ``input_json_delta``s) is kept for its ``web_search_tool_result``, which becomes ``WebSearched``; a text
  block's ``web_search_result_location`` ``citations_delta`` becomes ``TextCitation``. The blocks kept get
  dense IR indices.
- A block left open when the next starts or the message stops is ended (``BlockEnd``) first.
- ``event: error`` → ``StreamError`` with the status of its type (``overloaded_error`` 529, ``api_error`` 500…,
  unknown types 502) and the type as ``code``. No ``message_stop`` → ``StreamError(502, upstream_truncated)``;
  a frame that is not a JSON object, or a delta for a block that is not open → ``StreamError(502,
  upstream_malformed)``.
- Finish reason: ``tool_calls`` only when tool_use blocks came (``tool_use`` without any → ``stop``);
  ``max_tokens`` stays ``length`` even with tool calls (their arguments may be cut).
- Usage: ``message_start`` gives the input (Start.usage); ``message_delta`` updates it cumulatively; the IR
  input adds ``cache_read_input_tokens`` and ``cache_creation_input_tokens`` to Anthropic's ``input_tokens``.

Encoder choices:

- ``message_start`` carries ``id`` = ``prefixed(Start.id, "msg_")``, the client's model name, and the input
  usage when ``Start.usage`` has it (zeros otherwise).
- Wire block indices are dense whatever the IR's. Text and thinking blocks open at their first non-empty
  delta (or signature), so empty text blocks are never sent.
- Reasoning made by another dialect is shown as a thinking block whose ``signature_delta``, at the block's
  end, is Relay's envelope of its proof (``envelope``; an empty block for a proof without text). Another
  dialect's proof of a tool call is a whole empty thinking block right before the ``tool_use``, when the client
  turned thinking on.
- ``message_delta`` carries ``stop_reason`` / ``stop_sequence`` and the usage: ``output_tokens`` always, the
  input fields when the Finish usage has them. ``StreamError`` → an ``event: error`` frame; ``finish()``
  without Finish or StreamError → an ``api_error`` frame (``upstream_truncated``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from relay.dialects import common, envelope, ir
from relay.dialects.anthropic.errors import TYPE_BY_CODE, wording
from relay.http import sse

# ---- wire mappings shared with anthropic.response ---------------------------------------------------

_FINISH: dict[str, ir.FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "stop",  # tool_calls only when tool_use blocks came
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}

#: Relay status → Anthropic error type (Anthropic's documented status table).
ERROR_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    431: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
#: Anthropic error type → the status Anthropic answers it with.
STATUS_BY_ERROR_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def finish_reason(stop_reason: Any, has_tool_calls: bool) -> ir.FinishReason:
    """Anthropic ``stop_reason`` → IR; a plain stop after tool_use blocks → ``tool_calls``; unknown → ``stop``."""
    reason = _FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    if reason == "stop" and has_tool_calls:
        return "tool_calls"
    return reason


def stop_reason(reason: ir.FinishReason, has_tool_calls: bool, stop_sequence: str | None) -> str:
    """IR finish reason → ``stop_reason``: ``tool_use`` only when tool_use blocks were sent, never for length."""
    if reason == "length":
        return "max_tokens"
    if reason == "content_filter":
        return "refusal"
    if has_tool_calls:
        return "tool_use"
    return "stop_sequence" if stop_sequence else "end_turn"


def usage_from_wire(usage: Mapping[str, Any]) -> ir.Usage:
    """Anthropic usage (``input_tokens`` excludes the cache) → IR usage (``input_tokens`` includes it)."""
    read = common.token_count(usage, "cache_read_input_tokens")
    write = common.token_count(usage, "cache_creation_input_tokens")
    details = usage.get("output_tokens_details")
    return ir.Usage(
        input_tokens=common.token_count(usage, "input_tokens") + read + write,
        output_tokens=common.token_count(usage, "output_tokens"),
        cached_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=common.token_count(details, "thinking_tokens"),
    )


def usage_to_wire(usage: ir.Usage | None) -> dict[str, Any]:
    """IR usage → Anthropic usage: the cached and cache-written tokens taken out of ``input_tokens``."""
    usage = usage or ir.Usage()
    wire: dict[str, Any] = {
        "input_tokens": max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }
    if usage.reasoning_tokens:
        wire["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return wire


def error_type(status: int, code: str | None = None) -> str:
    """The Anthropic error type: ``code`` when it is one (an upstream's, kept), else by code, else by status."""
    if code in STATUS_BY_ERROR_TYPE:
        return code  # type: ignore[return-value]
    if code in TYPE_BY_CODE:
        return TYPE_BY_CODE[code]
    if status in ERROR_TYPE_BY_STATUS:
        return ERROR_TYPE_BY_STATUS[status]
    return "invalid_request_error" if status < 500 else "api_error"


def error_payload(
    status: int, message: str, code: str | None, request_id: str | None = None, *, param: str | None = None
) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}}`` (with ``request_id`` when one is given); the message in
    the words Anthropic's clients recognise for its class (``anthropic.errors.wording``)."""
    error = {"type": error_type(status, code), "message": wording(status, message, code, param)}
    payload: dict[str, Any] = {"type": "error", "error": error}
    if request_id is not None:
        payload["request_id"] = request_id
    return payload


def error_frame(status: int, message: str, code: str | None, request_id: str | None = None) -> bytes:
    """``event: error``: the SDK raises on it."""
    return b"event: error\ndata: " + orjson.dumps(error_payload(status, message, code, request_id)) + b"\n\n"


def thinking_asked(req: ir.Request) -> bool:
    """Whether an Anthropic client's request turned thinking on (enabled or adaptive)."""
    config = req.reasoning
    return config is not None and config.effort != "none" and config.budget_tokens != 0


def tool_id(id: str, seed: str, index: int) -> str:
    """A tool_use id: the IR's, or one derived from ``seed`` and ``index`` when it has none."""
    return id or common.derived_id(seed, index, "toolu_")


def citation(raw: Any) -> ir.Citation | None:
    """A ``web_search_result_location`` citation (other kinds cite documents Relay does not carry)."""
    if isinstance(raw, dict) and raw.get("type") == "web_search_result_location" and isinstance(raw.get("url"), str):
        title = raw.get("title")
        return ir.Citation(raw["url"], title if isinstance(title, str) else "")
    return None


def citations(raw: Any) -> tuple[ir.Citation, ...]:
    """A text block's web citations."""
    return tuple(c for c in map(citation, raw) if c is not None) if isinstance(raw, list) else ()


def web_search_result(block: Mapping[str, Any], queries: Mapping[str, str]) -> ir.WebSearch:
    """A ``web_search_tool_result`` block (the query from its ``server_tool_use``, by id) as a web search."""
    id = block.get("tool_use_id") if isinstance(block.get("tool_use_id"), str) else ""
    content = block.get("content")
    results = content if isinstance(content, list) else []
    urls = tuple(r["url"] for r in results if isinstance(r, dict) and isinstance(r.get("url"), str))
    query = queries.get(id)
    return ir.WebSearch(id=id, queries=(query,) if query else (), sources=urls, failed=not isinstance(content, list))


# ---- decoder -----------------------------------------------------------------------------------------

_KEPT_BLOCKS = frozenset({"text", "thinking", "redacted_thinking", "tool_use"})


def _malformed(message: str) -> ir.StreamError:
    return ir.StreamError(502, message, code="upstream_malformed")


class StreamDecoder:
    """An upstream's Messages SSE stream, fed in chunks of any size, to IR events."""

    __slots__ = (
        "_args_seen",
        "_blocks",
        "_done",
        "_has_calls",
        "_next",
        "_open",
        "_parser",
        "_searches",
        "_started",
        "_stop_reason",
        "_stop_sequence",
        "_usage",
    )

    def __init__(self) -> None:
        self._parser = sse.Parser()
        self._started = False
        self._done = False
        #: Upstream block index → (IR index, block type) for the blocks passed on; None for skipped ones.
        self._blocks: dict[int, tuple[int, str] | None] = {}
        #: The upstream index of the open block that is passed on, or None.
        self._open: int | None = None
        self._next = 0
        self._args_seen = False
        self._has_calls = False
        self._usage: dict[str, Any] = {}
        self._stop_reason: Any = None
        self._stop_sequence: str | None = None
        #: Upstream index of a ``web_search`` server_tool_use block → its id and its input's JSON fragments.
        self._searches: dict[int, tuple[str, list[str]]] = {}

    def feed(self, chunk: bytes) -> list[ir.Event]:
        events: list[ir.Event] = []
        for frame in self._parser.feed(chunk):
            if self._done:
                break
            self._frame(frame.name, frame.data, events)
        return events

    def _frame(self, name: bytes | None, raw: bytes | None, events: list[ir.Event]) -> None:
        if name == b"ping" or raw is None:
            return
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if type(data) is not dict:  # orjson gives dicts, never subclasses
            self._fail(_malformed("the upstream sent a stream event that is not a JSON object"), events)
        elif name == b"content_block_delta":  # most events: no name decoding, no dispatch
            self._delta(data, events)
        else:
            self._event(name.decode("utf-8", "replace") if name is not None else data.get("type"), data, events)

    def close(self) -> list[ir.Event]:
        self._parser.close()
        if self._done:
            return []
        self._done = True
        return [ir.StreamError(502, "the upstream stream ended before message_stop", code="upstream_truncated")]

    def _fail(self, error: ir.StreamError, out: list[ir.Event]) -> None:
        self._done = True
        out.append(error)

    def _event(self, kind: Any, data: dict[str, Any], out: list[ir.Event]) -> None:
        if kind == "content_block_delta":
            self._delta(data, out)
        elif kind == "content_block_start":
            self._ensure_started(out)
            self._block_start(data, out)
        elif kind == "content_block_stop":
            if self._open is not None and data.get("index") == self._open:
                self._end_block(out)
        elif kind == "message_start":
            self._message_start(data, out)
        elif kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict):
                self._stop_reason = delta.get("stop_reason") or self._stop_reason
                sequence = delta.get("stop_sequence")
                self._stop_sequence = sequence if isinstance(sequence, str) else self._stop_sequence
            self._add_usage(data.get("usage"))
        elif kind == "message_stop":
            self._ensure_started(out)
            self._end_block(out)
            self._done = True
            out.append(
                ir.Finish(
                    reason=finish_reason(self._stop_reason, self._has_calls),
                    usage=usage_from_wire(self._usage) if self._usage else None,
                    stop_sequence=self._stop_sequence,
                )
            )
        elif kind == "error":
            error = data.get("error")
            error = error if isinstance(error, dict) else {}
            code = error.get("type") if isinstance(error.get("type"), str) else "api_error"
            message = error.get("message") if isinstance(error.get("message"), str) else code
            self._fail(ir.StreamError(STATUS_BY_ERROR_TYPE.get(code, 502), message, code=code), out)
        # other event types (ping without its name, future ones) are skipped

    def _add_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for key, value in usage.items():
                if value is not None:
                    self._usage[key] = value

    def _message_start(self, data: dict[str, Any], out: list[ir.Event]) -> None:
        if self._started:
            return
        message = data.get("message")
        message = message if isinstance(message, dict) else {}
        usage = message.get("usage")
        self._add_usage(usage)
        self._started = True
        id, model = message.get("id"), message.get("model")
        out.append(
            ir.Start(
                id=id if isinstance(id, str) else "",
                model=model if isinstance(model, str) else "",
                usage=usage_from_wire(usage) if isinstance(usage, dict) else None,
            )
        )

    def _ensure_started(self, out: list[ir.Event]) -> None:
        if not self._started:  # an upstream that skipped message_start
            self._started = True
            out.append(ir.Start(id="", model=""))

    def _end_block(self, out: list[ir.Event]) -> None:
        if self._open is None:
            return
        index, kind = self._blocks[self._open]  # type: ignore[misc]
        self._open = None
        if kind == "tool_use" and not self._args_seen:
            out.append(ir.ToolCallDelta(index, "{}"))
        out.append(ir.BlockEnd(index))

    def _block_start(self, data: dict[str, Any], out: list[ir.Event]) -> None:
        self._end_block(out)
        upstream = data.get("index")
        block = data.get("content_block")
        if not isinstance(upstream, int) or not isinstance(block, dict):
            return self._fail(_malformed("the upstream sent a content_block_start without index or block"), out)
        kind = block.get("type")
        if kind not in _KEPT_BLOCKS:
            self._blocks[upstream] = None  # server tools and their results have no IR slot, but web search's
            self._server_block(upstream, block, out)
            return
        index = self._next
        self._next += 1
        self._blocks[upstream] = (index, kind)
        self._open = upstream
        self._args_seen = False
        if kind == "text":
            out.append(ir.TextStart(index))
            if isinstance(block.get("text"), str) and block["text"]:
                out.append(ir.TextDelta(index, block["text"]))
        elif kind == "thinking":
            out.append(ir.ReasoningStart(index, dialect="anthropic"))
            if isinstance(block.get("thinking"), str) and block["thinking"]:
                out.append(ir.ReasoningDelta(index, block["thinking"]))
            if isinstance(block.get("signature"), str) and block["signature"]:
                out.append(ir.ReasoningSignature(index, block["signature"]))
        elif kind == "redacted_thinking":
            redacted = block.get("data")
            out.append(
                ir.ReasoningStart(index, dialect="anthropic", redacted=redacted if isinstance(redacted, str) else "")
            )
        else:
            self._has_calls = True
            id, name = block.get("id"), block.get("name")
            out.append(
                ir.ToolCallStart(
                    index, id=id if isinstance(id, str) else "", name=name if isinstance(name, str) else ""
                )
            )
            if isinstance(block.get("input"), dict) and block["input"]:
                self._args_seen = True
                out.append(ir.ToolCallDelta(index, common.dumps(block["input"])))

    def _delta(self, data: dict[str, Any], out: list[ir.Event]) -> None:
        upstream = data.get("index")
        if upstream != self._open or self._open is None:
            if upstream in self._blocks and self._blocks[upstream] is None:
                search = self._searches.get(upstream)  # type: ignore[arg-type]
                delta = data.get("delta")
                if search is not None and isinstance(delta, dict) and isinstance(delta.get("partial_json"), str):
                    search[1].append(delta["partial_json"])
                return  # a delta of a skipped block (server_tool_use input)
            return self._fail(_malformed(f"the upstream sent a delta for block {upstream!r}, which is not open"), out)
        index = self._blocks[upstream][0]  # type: ignore[index]
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            if isinstance(text, str) and text:
                out.append(ir.TextDelta(index, text))
        elif kind == "input_json_delta":
            fragment = delta.get("partial_json")
            if isinstance(fragment, str) and fragment:
                self._args_seen = True
                out.append(ir.ToolCallDelta(index, fragment))
        elif kind == "thinking_delta":
            text = delta.get("thinking")
            if isinstance(text, str) and text:
                out.append(ir.ReasoningDelta(index, text))
        elif kind == "signature_delta":
            signature = delta.get("signature")
            if isinstance(signature, str) and signature:
                out.append(ir.ReasoningSignature(index, signature))
        elif kind == "citations_delta":
            cited = citation(delta.get("citation"))
            if cited is not None and self._blocks[upstream][1] == "text":  # type: ignore[index]
                out.append(ir.TextCitation(index, cited))
        # future delta types have no IR slot

    def _server_block(self, upstream: int, block: dict[str, Any], out: list[ir.Event]) -> None:
        """A web search's call (its query, kept) and its result (a ``WebSearched`` block)."""
        kind = block.get("type")
        if kind == "server_tool_use" and block.get("name") == "web_search" and isinstance(block.get("id"), str):
            given = block.get("input")
            self._searches[upstream] = (block["id"], [common.dumps(given)] if isinstance(given, dict) and given else [])
        elif kind == "web_search_tool_result":
            queries = {}
            for id, fragments in self._searches.values():
                value = common.arguments_object("".join(fragments))
                if value is not None and isinstance(value.get("query"), str):
                    queries[id] = value["query"]
            index = self._next
            self._next += 1
            out.append(ir.WebSearched(index, web_search_result(block, queries)))


# ---- encoder -----------------------------------------------------------------------------------------


def _frame(name: bytes, payload: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_DELTA_KEYS = {
    "text": b',"delta":{"type":"text_delta","text":',
    "thinking": b',"delta":{"type":"thinking_delta","thinking":',
    "tool_use": b',"delta":{"type":"input_json_delta","partial_json":',
}
_DELTA_TAIL = b"}}\n\n"
_STOP_HEAD = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'

_BEFORE, _STREAMING, _ENDED = 0, 1, 2
#: The block type each kind of delta extends.
_DELTA_BLOCK: dict[type, str] = {ir.TextDelta: "text", ir.ReasoningDelta: "thinking", ir.ToolCallDelta: "tool_use"}


class StreamEncoder:
    """IR events to the Messages SSE grammar for an Anthropic client; one event in, its frames out at once."""

    __slots__ = (
        "_has_calls",
        "_id",
        "_index",
        "_kind",
        "_model",
        "_next",
        "_ours",
        "_prefix",
        "_proof",
        "_proves_calls",
        "_state",
        "_wire",
    )

    def __init__(self, req: ir.Request) -> None:
        self._model = req.model
        self._id = "msg_0"
        #: Whether the client asked for thinking: only then do other providers' call proofs get a thinking block.
        self._proves_calls = thinking_asked(req)
        self._state = _BEFORE
        self._next = 0
        #: The current IR block: its index, type (text, thinking, redacted_thinking, tool_use, or "" when
        #: dropped), whether its reasoning is Anthropic's, its wire index (-1 until its start was sent).
        self._index: int | None = None
        self._kind = ""
        self._ours = False
        self._wire = -1
        #: The current block's delta frame, up to its payload string.
        self._prefix = b""
        self._has_calls = False
        #: The current block's reasoning when another provider made it: its proof goes out wrapped at its end.
        self._proof: ir.Reasoning | None = None

    def encode(self, event: ir.Event) -> bytes:
        kind = type(event)
        if self._wire >= 0 and _DELTA_BLOCK.get(kind) == self._kind and self._state == _STREAMING:
            # most events: a delta of the block whose start was sent, one frame of precomputed bytes around it
            if event.index == self._index:  # type: ignore[union-attr]
                text = event.arguments if kind is ir.ToolCallDelta else event.text  # type: ignore[union-attr]
                return self._prefix + orjson.dumps(text) + _DELTA_TAIL if text else b""
        if self._state == _ENDED:
            return b""
        if isinstance(event, ir.StreamError):
            self._state = _ENDED
            return error_frame(event.status, event.message, event.code)
        out = b""
        if self._state == _BEFORE:
            out = self._message_start(event if isinstance(event, ir.Start) else None)
        if isinstance(event, ir.TextDelta):
            return out + self._text(event.index, "text", event.text)
        if isinstance(event, ir.ToolCallDelta):
            if event.index == self._index and self._kind == "tool_use" and event.arguments:
                return out + self._prefix + orjson.dumps(event.arguments) + _DELTA_TAIL
            return out
        if isinstance(event, ir.ReasoningDelta):
            return out + self._text(event.index, "thinking", event.text)
        if isinstance(event, ir.BlockEnd):
            return out + (self._end() if event.index == self._index else b"")
        if isinstance(event, ir.TextStart):
            return out + self._begin(event.index, "text", ours=False)
        if isinstance(event, ir.ReasoningStart):
            return out + self._reasoning_start(event)
        if isinstance(event, ir.ToolCallStart):
            out += self._begin(event.index, "tool_use", ours=False)
            call_id = tool_id(event.id, self._id, event.index)
            wrapped = envelope.call_envelope(event.signature, event.signature_dialect, call_id, "anthropic")
            if wrapped and self._proves_calls:  # another provider's proof of the call: an empty thinking block
                out += self._proof_block(wrapped)
            block = {"type": "tool_use", "id": call_id, "name": event.name, "input": {}}
            self._has_calls = True
            return out + self._open(block)
        if isinstance(event, ir.ReasoningSignature):
            if event.index == self._index and self._proof is not None:
                self._proof = attrs.evolve(self._proof, signature=event.signature)  # sent wrapped at the end
            elif event.index == self._index and self._kind == "thinking" and self._ours:
                out += self._open_lazy()
                delta = {"type": "signature_delta", "signature": event.signature}
                out += _frame(
                    b"content_block_delta", {"type": "content_block_delta", "index": self._wire, "delta": delta}
                )
            return out
        if isinstance(event, ir.Finish):
            return out + self._finish(event)
        return out  # Start (its message_start was sent above, a second one is ignored)

    def finish(self) -> bytes:
        if self._state == _ENDED:
            return b""
        self._state = _ENDED
        return error_frame(502, "the upstream stream ended before it finished", "upstream_truncated")

    def _message_start(self, start: ir.Start | None) -> bytes:
        self._state = _STREAMING
        if start is not None:
            self._id = common.prefixed(start.id, "msg_")
        message = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_wire(start.usage if start is not None else None),
        }
        return _frame(b"message_start", {"type": "message_start", "message": message})

    def _begin(self, index: int, kind: str, *, ours: bool) -> bytes:
        """Make ``index`` the current block (ending the previous one); its start is sent later or by the caller."""
        out = self._end() if self._index is not None else b""
        self._index, self._kind, self._ours, self._wire = index, kind, ours, -1
        return out

    def _reasoning_start(self, event: ir.ReasoningStart) -> bytes:
        if event.dialect != "anthropic":  # another provider's: a thinking block, its proof wrapped at the end
            out = self._begin(event.index, "thinking", ours=False)
            self._proof = ir.Reasoning(redacted=event.redacted, dialect=event.dialect, id=event.id)
            return out
        if event.redacted is None:
            return self._begin(event.index, "thinking", ours=True)
        out = self._begin(event.index, "redacted_thinking", ours=True)
        return out + self._open({"type": "redacted_thinking", "data": event.redacted})

    def _open(self, block: dict[str, Any]) -> bytes:
        self._wire = self._next
        self._next += 1
        key = _DELTA_KEYS.get(self._kind)
        if key is not None:
            self._prefix = _DELTA_HEAD + str(self._wire).encode() + key
        payload = {"type": "content_block_start", "index": self._wire, "content_block": block}
        return _frame(b"content_block_start", payload)

    def _open_lazy(self) -> bytes:
        if self._wire >= 0:
            return b""
        if self._kind == "text":
            return self._open({"type": "text", "text": ""})
        return self._open({"type": "thinking", "thinking": "", "signature": ""})

    def _text(self, index: int, kind: str, text: str) -> bytes:
        if not text:
            return b""
        out = b""
        if index != self._index:  # a delta with no start: its block starts here
            out = self._begin(index, kind, ours=False)
        elif self._kind != kind:
            return b""
        return out + self._open_lazy() + self._prefix + orjson.dumps(text) + _DELTA_TAIL

    def _end(self) -> bytes:
        out = self._wrapped_signature() if self._proof is not None else b""
        wire = self._wire
        self._index, self._kind, self._wire, self._proof = None, "", -1, None
        if wire < 0:
            return out  # nothing of it was sent
        return out + _STOP_HEAD + str(wire).encode() + _DELTA_TAIL[1:]

    def _wrapped_signature(self) -> bytes:
        """The ``signature_delta`` of another provider's reasoning: its proof in Relay's envelope (or nothing)."""
        assert self._proof is not None
        wrapped = envelope.reasoning_envelope(self._proof, "anthropic", has_text=self._wire >= 0)
        if wrapped is None:
            return b""
        out = self._open_lazy()
        delta = {"type": "signature_delta", "signature": wrapped}
        payload = {"type": "content_block_delta", "index": self._wire, "delta": delta}
        return out + _frame(b"content_block_delta", payload)

    def _proof_block(self, wrapped: str) -> bytes:
        """A whole thinking block with no text whose signature is ``wrapped`` (a tool call's proof)."""
        wire = self._next
        self._next += 1
        block = {"type": "thinking", "thinking": "", "signature": ""}
        delta = {"type": "signature_delta", "signature": wrapped}
        return (
            _frame(b"content_block_start", {"type": "content_block_start", "index": wire, "content_block": block})
            + _frame(b"content_block_delta", {"type": "content_block_delta", "index": wire, "delta": delta})
            + _STOP_HEAD
            + str(wire).encode()
            + _DELTA_TAIL[1:]
        )

    def _finish(self, event: ir.Finish) -> bytes:
        out = self._end() if self._index is not None else b""
        self._state = _ENDED
        reason = stop_reason(event.reason, self._has_calls, event.stop_sequence)
        usage = event.usage or ir.Usage()
        wire = usage_to_wire(usage)
        if not (usage.input_tokens or usage.cached_tokens or usage.cache_write_tokens):
            # keep message_start's input usage: the SDK overwrites it with the fields given here
            wire = {k: v for k, v in wire.items() if k in ("output_tokens", "output_tokens_details")}
        delta = {"stop_reason": reason, "stop_sequence": event.stop_sequence if reason == "stop_sequence" else None}
        out += _frame(b"message_delta", {"type": "message_delta", "delta": delta, "usage": wire})
        return out + _MESSAGE_STOP

"""OpenAI Chat Completions streams: SSE bytes to IR events (``StreamDecoder``) and back (``StreamEncoder``).

Sans-IO. Finish reasons, usage and error payloads come from ``openai.chat.response``; ``openai_chat``
re-exports the two classes. Choices made on the users' behalf (docs/conversions/openai_chat.md):

- Only choice 0 is read. The first non-null ``finish_reason`` wins: a later one never overwrites it.
- Stream decoding: the open block ends when another starts, and at the finish reason. An argument
  fragment for a tool call whose block has already ended (an upstream interleaving parallel calls)
  ends the stream with ``StreamError(502, code="upstream_interleaved")``: IR blocks never interleave.
  ``Finish`` is emitted at ``data: [DONE]`` (the usage chunk comes between the two); a stream without
  ``[DONE]`` is truncated. A mid-stream ``{"error": …}`` ends it with the status of its ``code`` (an HTTP
  status) or its ``type``.
- Stream encoding: the ``Start`` event gives id (``chatcmpl-`` prefixed) and ``created``, the client's
  request gives ``model`` and ``stream_options.include_usage``. ``Finish`` writes the finishing chunk,
  the usage chunk (zeros when the usage is unknown) when asked for, and ``data: [DONE]`` at once.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from relay.dialects import envelope, ir
from relay.dialects.common import derived_id, prefixed
from relay.dialects.openai.chat.reasoning import encrypted, foreign, text_entry
from relay.dialects.openai.chat.response import (
    COMPLETION_PREFIX,
    decode_usage,
    encode_stream_error,
    encode_usage,
    error_fields,
    finish_reason,
    include_usage,
)
from relay.errors import RelayError, kind_for_status
from relay.http.sse import Parser

#: Statuses of mid-stream error types (a stream error carries no HTTP status of its own).
_STATUS_BY_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "timeout_error": 504,
}


# ---- stream decoder ----------------------------------------------------------------------------------


class StreamDecoder:
    """An upstream's Chat Completions SSE bytes → ``ir.Event`` list, chunk by chunk."""

    def __init__(self) -> None:
        self._parser = Parser()
        self._id = ""
        self._started = False
        self._done = False
        self._blocks = 0
        #: The open block: (kind, its index), kind being "text", "reasoning" or "tool".
        self._open: tuple[str, int] | None = None
        #: Upstream tool-call key (its index, else its id) → our block index.
        self._calls: dict[Any, int] = {}
        self._reason: Any = None
        self._usage: ir.Usage | None = None

    @property
    def usage(self) -> ir.Usage | None:
        """The usage the upstream reported so far (its usage chunk comes before ``[DONE]``, where ``Finish``
        carries it): what a stream cut before ``[DONE]`` is charged by."""
        return self._usage

    def feed(self, chunk: bytes) -> list[ir.Event]:
        events: list[ir.Event] = []
        for sse in self._parser.feed(chunk):
            if self._done:
                break
            if sse.data:
                self._frame(sse.data, events)
        return events

    def close(self) -> list[ir.Event]:
        rest = self._parser.close()
        if self._done:
            return []
        events: list[ir.Event] = []
        if rest.strip() in (b"data: [DONE]", b"data:[DONE]"):  # the last blank line missing: accepted
            self._frame(b"[DONE]", events)
            return events
        self._done = True
        return [ir.StreamError(502, "the upstream stream ended before data: [DONE]", code="upstream_truncated")]

    def _fail(self, events: list[ir.Event], status: int, message: str, code: str | None) -> None:
        self._done = True
        events.append(ir.StreamError(status, message, code=code))

    def _frame(self, data: bytes, events: list[ir.Event]) -> None:
        if data[0] != 0x7B and data.strip() == b"[DONE]":  # 0x7B: "{", the usual chunk
            return self._finish(events)
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(events, 502, "the upstream sent a stream chunk that is not JSON", "upstream_malformed")
        if not isinstance(payload, dict):
            return self._fail(
                events, 502, "the upstream sent a stream chunk that is not an object", "upstream_malformed"
            )
        if "error" in payload and "choices" not in payload:
            return self._error(payload["error"], events)
        if not self._started:
            self._start(payload, events)
        usage = payload.get("usage")
        if usage is not None:
            self._usage = decode_usage(usage) or self._usage
        choices = payload.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, events)

    def _start(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        self._started = True
        self._id = payload.get("id") if isinstance(payload.get("id"), str) else ""
        created = payload.get("created")
        created = created if isinstance(created, int) and not isinstance(created, bool) else 0
        events.append(ir.Start(id=self._id, model=str(payload.get("model") or ""), created=created))

    def _finish(self, events: list[ir.Event]) -> None:
        self._end_block(events)
        if not self._started:
            return self._fail(events, 502, "the upstream stream ended with no chunk", "upstream_empty")
        self._done = True
        events.append(ir.Finish(finish_reason(self._reason, bool(self._calls)), usage=self._usage))

    def _error(self, error: Any, events: list[ir.Event]) -> None:
        message, code, _ = error_fields(error)
        raw_code = error.get("code") if isinstance(error, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        if isinstance(raw_code, int) and 400 <= raw_code <= 599:
            status = raw_code
        else:
            status = _STATUS_BY_TYPE.get(kind, 502) if isinstance(kind, str) else 502
        self._end_block(events)
        self._fail(events, status, message or "the upstream stream failed", code)

    def _choice(self, choice: dict[str, Any], events: list[ir.Event]) -> None:
        delta = choice.get("delta")
        if type(delta) is dict:  # orjson gives dicts, never subclasses
            if len(delta) == 1 and "content" in delta:  # the usual delta: text alone
                text = delta["content"]
                if text and type(text) is str:
                    events.append(ir.TextDelta(self._block("text", events), text))
            elif not self._delta(delta, events):
                return
        reason = choice.get("finish_reason")
        if reason is not None:
            if self._reason is None:
                self._reason = reason
            self._end_block(events)

    def _delta(self, delta: dict[str, Any], events: list[ir.Event]) -> bool:
        """A choice's ``delta``; False when the stream had to end."""
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and isinstance(reasoning, str):
            events.append(ir.ReasoningDelta(self._block("reasoning", events), reasoning))
        text = delta.get("content")
        if text and isinstance(text, str):
            events.append(ir.TextDelta(self._block("text", events), text))
        text = delta.get("refusal")
        if text and isinstance(text, str):
            events.append(ir.TextDelta(self._block("text", events), text))
        calls = delta.get("tool_calls")
        if calls and isinstance(calls, list):
            for call in calls:
                if isinstance(call, dict) and not self._tool_call(call, events):
                    return False
        return True

    def _tool_call(self, call: dict[str, Any], events: list[ir.Event]) -> bool:
        """One entry of ``delta.tool_calls``; False when the stream had to end."""
        key = call.get("index")
        if key is None:  # some upstreams omit the index: key by id, else it continues the open call
            open_keys = [k for k, i in self._calls.items() if self._open == ("tool", i)]
            key = call.get("id") or (open_keys[0] if open_keys else f"#{len(self._calls)}")
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        arguments = function.get("arguments")
        if key not in self._calls:
            self._end_block(events)
            index = self._calls[key] = self._blocks
            self._blocks += 1
            self._open = ("tool", index)
            call_id = call.get("id")
            if not isinstance(call_id, str) or not call_id:
                call_id = derived_id(self._id, len(self._calls) - 1, "call_")
            name = function.get("name")
            events.append(ir.ToolCallStart(index, call_id, name if isinstance(name, str) else ""))
        elif self._open != ("tool", self._calls[key]):
            if not arguments:
                return True
            self._fail(
                events, 502, "the upstream interleaved the arguments of parallel tool calls", "upstream_interleaved"
            )
            return False
        if isinstance(arguments, str) and arguments:
            events.append(ir.ToolCallDelta(self._calls[key], arguments))
        return True

    def _block(self, kind: str, events: list[ir.Event]) -> int:
        if self._open is not None and self._open[0] == kind:
            return self._open[1]
        self._end_block(events)
        index = self._blocks
        self._blocks += 1
        self._open = (kind, index)
        events.append(ir.TextStart(index) if kind == "text" else ir.ReasoningStart(index, dialect="openai_chat"))
        return index

    def _end_block(self, events: list[ir.Event]) -> None:
        if self._open is not None:
            events.append(ir.BlockEnd(self._open[1]))
            self._open = None


# ---- stream encoder ----------------------------------------------------------------------------------

_OPEN_CHOICE = b'"choices":[{"index":0,"delta":'
_CLOSE_CHOICE = b',"logprobs":null,"finish_reason":null}]'
_DONE = b"data: [DONE]\n\n"
#: What follows an argument fragment's JSON string in its delta.
_ARGUMENTS_END = b"}}]}"


@attrs.define
class _Thinking:
    """Another provider's reasoning block being sent: its IR index, its ``reasoning_details`` entry's index, the
    reasoning (its proof filled in when it comes, sent wrapped at the block's end), whether it had text."""

    index: int
    entry: int
    part: ir.Reasoning
    has_text: bool = False


class StreamEncoder:
    """``ir.Event`` → Chat Completions SSE bytes, each event's frames at once (nothing is held back).

    ``req`` is the client's request: its ``model`` is the one the chunks carry, and its
    ``stream_options.include_usage`` asks for the usage chunk. Id and ``created`` come from ``Start``.
    """

    __slots__ = (
        "_calls",
        "_delta_end",
        "_details",
        "_ended",
        "_include_usage",
        "_meta",
        "_model",
        "_reasoning_head",
        "_tail",
        "_text_head",
        "_thinking",
    )

    def __init__(self, req: ir.Request) -> None:
        self._model = req.model
        self._include_usage = include_usage(req)
        self._tail = b',"usage":null}\n\n' if self._include_usage else b"}\n\n"
        #: ``data: {"id":…,"system_fingerprint":null,`` once Start came.
        self._meta = b""
        #: A text or reasoning delta's chunk up to its JSON string, and after it (set with ``_meta``).
        self._text_head = self._reasoning_head = b""
        self._delta_end = b"}" + _CLOSE_CHOICE + self._tail
        self._ended = False
        #: IR block index → the start of its argument deltas' chunk (up to the JSON string), the call's index
        #: in ``delta.tool_calls`` (0, 1, … in order of the blocks) in it.
        self._calls: dict[int, bytes] = {}
        #: ``reasoning_details`` entries sent so far (the next one's ``index``), and the open reasoning block.
        self._details = 0
        self._thinking: _Thinking | None = None

    def _chunk(self, delta: bytes) -> bytes:
        return self._meta + _OPEN_CHOICE + delta + _CLOSE_CHOICE + self._tail

    def encode(self, event: ir.Event) -> bytes:
        if self._ended:
            return b""
        if type(event) is ir.TextDelta and self._meta:  # most events: one chunk of precomputed bytes around the text
            text = event.text
            return self._text_head + orjson.dumps(text) + self._delta_end if text else b""
        if isinstance(event, ir.StreamError):
            self._ended = True
            error = RelayError(event.status, kind_for_status(event.status), event.message, code=event.code)
            return encode_stream_error(error)
        out = b""
        if not self._meta:
            out = self._start(event if isinstance(event, ir.Start) else ir.Start("", self._model))
        if isinstance(event, ir.TextDelta):
            if event.text:
                out += self._text_head + orjson.dumps(event.text) + self._delta_end
        elif isinstance(event, ir.ToolCallDelta):
            head = self._calls.get(event.index)
            if head is not None and event.arguments:
                out += head + orjson.dumps(event.arguments) + _ARGUMENTS_END + _CLOSE_CHOICE + self._tail
        elif isinstance(event, ir.ReasoningDelta):
            if event.text:
                out += self._reasoning_delta(event)
        elif isinstance(event, ir.ReasoningStart):
            out += self._reasoning_end() + self._reasoning_start(event)
        elif isinstance(event, ir.ReasoningSignature):
            if self._thinking is not None and self._thinking.index == event.index:
                self._thinking.part = attrs.evolve(self._thinking.part, signature=event.signature)
        elif isinstance(event, ir.BlockEnd):
            if self._thinking is not None and self._thinking.index == event.index:
                out += self._reasoning_end()
        elif isinstance(event, ir.ToolCallStart):
            out += self._reasoning_end()
            wrapped = envelope.call_envelope(event.signature, event.signature_dialect, event.id, "openai_chat")
            if wrapped:  # another provider's proof of the call, in the entry before it
                out += self._details_chunk(encrypted(wrapped, self._details))
                self._details += 1
            position = len(self._calls)
            self._calls[event.index] = (
                self._meta + _OPEN_CHOICE + b'{"tool_calls":[{"index":%d,"function":{"arguments":' % position
            )
            call = {
                "index": position,
                "id": event.id,
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
            out += self._chunk(b'{"tool_calls":[' + orjson.dumps(call) + b"]}")
        elif isinstance(event, ir.Finish):
            out += self._reasoning_end() + self._finish(event)
        return out

    # ---- reasoning_details (openai.chat.reasoning)

    def _details_chunk(self, entry: dict[str, Any]) -> bytes:
        return self._chunk(b'{"reasoning_details":[' + orjson.dumps(entry) + b"]}")

    def _reasoning_start(self, event: ir.ReasoningStart) -> bytes:
        if not foreign(event.dialect):
            return b""  # a Chat upstream's own reasoning: reasoning_content alone, as it came
        part = ir.Reasoning(redacted=event.redacted, dialect=event.dialect, id=event.id)
        if event.redacted is None:
            self._thinking = _Thinking(event.index, self._details, part)
            self._details += 1
            return b""
        wrapped = envelope.reasoning_envelope(part, "openai_chat")  # opaque reasoning: its proof alone, whole
        if not wrapped:
            return b""
        self._details += 1
        return self._details_chunk(encrypted(wrapped, self._details - 1))

    def _reasoning_delta(self, event: ir.ReasoningDelta) -> bytes:
        """The text as ``reasoning_content`` and as a fragment of its block's ``reasoning_details`` entry."""
        thinking = self._thinking
        if thinking is None or thinking.index != event.index:  # not another provider's reasoning
            return self._reasoning_head + orjson.dumps(event.text) + self._delta_end
        entry = text_entry(event.text, thinking.entry)
        if thinking.has_text:
            del entry["format"]  # said once per entry: the SDK's accumulator joins repeated strings
        thinking.has_text = True
        details = b',"reasoning_details":[' + orjson.dumps(entry) + b"]"
        return self._reasoning_head + orjson.dumps(event.text) + details + self._delta_end

    def _reasoning_end(self) -> bytes:
        """The open reasoning block's last fragment: its proof, wrapped (nothing when it has none)."""
        thinking, self._thinking = self._thinking, None
        if thinking is None:
            return b""
        wrapped = envelope.reasoning_envelope(thinking.part, "openai_chat", has_text=thinking.has_text)
        if not wrapped:
            return b""
        entry: dict[str, Any] = {"type": "reasoning.text", "signature": wrapped, "index": thinking.entry}
        if not thinking.has_text:
            entry = {**text_entry("", thinking.entry), "signature": wrapped}
        return self._details_chunk(entry)

    def _start(self, start: ir.Start) -> bytes:
        head = {
            "id": prefixed(start.id, COMPLETION_PREFIX),
            "object": "chat.completion.chunk",
            "created": start.created,
            "model": self._model,
            "system_fingerprint": None,
        }
        self._meta = b"data: " + orjson.dumps(head)[:-1] + b","
        self._text_head = self._meta + _OPEN_CHOICE + b'{"content":'
        self._reasoning_head = self._meta + _OPEN_CHOICE + b'{"reasoning_content":'
        return self._chunk(b'{"role":"assistant","content":""}')

    def _finish(self, event: ir.Finish) -> bytes:
        self._ended = True
        reason = finish_reason(event.reason, bool(self._calls))
        out = (
            self._meta + _OPEN_CHOICE + b'{},"logprobs":null,"finish_reason":"' + reason.encode() + b'"}]' + self._tail
        )
        if self._include_usage:
            usage = orjson.dumps(encode_usage(event.usage or ir.Usage()))
            out += self._meta + b'"choices":[],"usage":' + usage + b"}\n\n"
        return out + _DONE

    def finish(self) -> bytes:
        """Anything owed at the end: an error frame when the stream neither finished nor failed."""
        if self._ended:
            return b""
        self._ended = True
        error = RelayError(502, "upstream", "the upstream stream ended before it finished", code="upstream_truncated")
        return encode_stream_error(error)

"""Gemini ``streamGenerateContent`` streams: bytes to IR events (``StreamDecoder``) and back (``StreamEncoder``).

The wire mappings both halves of the codec share come from ``gemini.response`` (finish reasons, usage,
error statuses, response ids, SSE frames) and ``gemini.contents`` (function-call ids), and stay importable
from here; ``gemini`` re-exports the stream classes.

Two framings: with ``?alt=sse`` every chunk is a ``data: {GenerateContentResponse}`` frame
(Gemini ends them with CRLF CRLF) and nothing marks the end; without it the body is one JSON array written
element by element (``[{…}\\n,\\r\\n{…}]``), cut into elements by ``ArraySplitter``. Either way the stream is
complete when a chunk carries ``finishReason`` (or a blocked prompt's ``promptFeedback.blockReason``).

Decoder choices:

- Only candidate 0 is read (``candidateCount`` > 1 is refused when a request is decoded).
- ``functionCall`` parts arrive whole: each becomes ``ToolCallStart`` + one ``ToolCallDelta`` (its ``args``
  as compact JSON, ``{}`` when absent) + ``BlockEnd``. A call without an id gets
  ``common.derived_id("{responseId}/{name}/{arguments}", n, DERIVED_ID_PREFIX)`` (n counts the calls of the
  answer), the same id ``decode_response`` derives for the same answer. The part's ``thoughtSignature`` rides
  on ``ToolCallStart`` (dialect ``gemini``).
- Text parts extend the open text block, ``thought: true`` parts the open reasoning block (dialect ``gemini``);
  a block ends when a part of another kind comes, or at the finish.
- A ``thoughtSignature`` on a text or thought part becomes ``ReasoningSignature``: for the open reasoning
  block when it has no signature yet (the signature Gemini puts on an empty text part, or on the first
  answer part, right after the thoughts), else for a reasoning block of its own that holds only the
  signature. A signed reasoning block is never extended: the next thought opens a new one.
- Parts with no IR slot in an answer (``inlineData`` images, ``executableCode``, ``codeExecutionResult``)
  are skipped; usage is the last ``usageMetadata`` seen (Gemini's are cumulative).
- Finish: ``MAX_TOKENS`` → ``length`` (even after calls), the safety family → ``content_filter``, ``STOP``
  → ``tool_calls`` when calls came, else ``stop``; other values → ``stop``. A chunk ``{"error": …}`` →
  ``StreamError`` (its ``code`` as status, its ``status`` as code). A stream that ends before a finish
  → ``StreamError(502, upstream_truncated)``; a chunk that is not a JSON object, or an array framing
  error → ``StreamError(502, upstream_malformed)``.

Encoder choices:

- Every chunk is ``{"candidates":[{"content":{"parts":[…],"role":"model"},"index":0}],"modelVersion",
  "responseId"}`` with the client's model name and ``Start.id`` stripped of other dialects' prefixes.
- Text deltas go out at once, one chunk each. Reasoning deltas go out as ``thought: true`` parts only when
  the client asked for thoughts (``includeThoughts``, IR ``reasoning.include``). A Gemini signature goes out
  as ``{"text": "", "thoughtSignature"}`` (Gemini's own form); another dialect's proof goes the same way at
  its block's end, as Relay's envelope (``envelope``, with the reasoning text when that dialect needs it), and
  another dialect's proof of a call as the envelope on its ``functionCall`` part.
- Gemini has no partial function calls: a tool call's argument fragments are the one thing held, until its
  ``BlockEnd`` (or the next block, or the finish), then sent as one ``functionCall`` part (``args`` parsed;
  arguments that are not a JSON object are sent as ``{}``). A call still open at a ``length`` finish whose
  arguments are not a whole JSON object was cut: it is dropped. Ids this codec derived are not sent.
- The last chunk carries ``finishReason`` (``STOP``, ``MAX_TOKENS``, ``SAFETY`` for content_filter) and
  ``usageMetadata``; array mode then writes ``]``. ``StreamError`` → ``{"error":{"code","message","status"}}``
  as the last frame or element; ``finish()`` without Finish or StreamError → an ``INTERNAL`` error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from relay.dialects import common, envelope, ir
from relay.dialects.gemini.contents import DERIVED_ID_PREFIX as DERIVED_ID_PREFIX
from relay.dialects.gemini.contents import call_id, function_call_part
from relay.dialects.gemini.contents import wire_call_id as wire_call_id
from relay.dialects.gemini.response import CODE_BY_STATUS as CODE_BY_STATUS
from relay.dialects.gemini.response import STATUS_BY_CODE as STATUS_BY_CODE
from relay.dialects.gemini.response import (
    error_payload,
    finish_reason,
    finish_to_wire,
    grounding_search,
    response_id,
    sse_frame,
    stream_error,
    usage_from_wire,
    usage_to_wire,
)
from relay.dialects.gemini.response import rpc_status as rpc_status
from relay.http import sse

# ---- the JSON array framing ---------------------------------------------------------------------------------

#: Outside strings: everything up to the next bracket, complete strings skipped whole (possessive: linear).
_OUTSIDE = re.compile(rb'[^"{}\[\]]*+(?:"[^"\\]*+(?:\\.[^"\\]*+)*+"[^"{}\[\]]*+)*+', re.S)
#: Inside a string: everything up to its closing quote (or a backslash that ends the data).
_STRING = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.S)
_SPACE = re.compile(rb"[ \t\r\n]*+")
_BEFORE, _BETWEEN, _INSIDE, _AFTER = range(4)


class ArraySplitter:
    """A JSON array that arrives in chunks of any size → its elements' bytes, each as soon as it is complete.

    Linear in the input. An element that starts and ends in one chunk (Gemini writes one per chunk) is
    found by parsing up to the chunk's last ``}`` (at most one such try per chunk, and the parsed value is
    kept: ``split``). Otherwise its bytes are scanned once, brackets counted outside strings, strings and
    escapes skipped by regular expressions, however many chunks carry it. Elements must be objects or
    arrays (Gemini's are objects); ``ValueError`` for anything that is not such an array.
    """

    __slots__ = ("_depth", "_escape", "_in_string", "_pieces", "_state")

    def __init__(self) -> None:
        self._state = _BEFORE
        self._depth = 0
        self._in_string = False
        self._escape = False
        #: The bytes of the element still incomplete, in the pieces they came in.
        self._pieces: list[bytes] = []

    @property
    def done(self) -> bool:
        """Whether the closing ``]`` came."""
        return self._state == _AFTER

    @property
    def pending(self) -> int:
        return sum(len(p) for p in self._pieces)

    def feed(self, data: bytes) -> list[bytes]:
        """The elements ``data`` completes, as bytes."""
        return [raw for raw, _ in self.split(data)]

    def split(self, data: bytes) -> list[tuple[bytes, Any]]:
        """The elements ``data`` completes: their bytes, and their value when it was parsed on the way."""
        elements: list[tuple[bytes, Any]] = []
        pos, end = 0, len(data)
        start = 0
        tried = False
        while pos < end:
            if self._state == _INSIDE:
                pos = self._scan(data, pos)
                if self._state == _INSIDE:
                    self._pieces.append(data[start:])
                    break
                if self._pieces:
                    self._pieces.append(data[start:pos])
                    elements.append((b"".join(self._pieces), None))
                    self._pieces = []
                else:
                    elements.append((data[start:pos], None))
                continue
            pos = _SPACE.match(data, pos).end()  # type: ignore[union-attr]
            if pos >= end:
                break
            byte = data[pos]
            if self._state == _BEFORE:
                if byte != 0x5B:  # [
                    raise ValueError("the stream is not a JSON array")
                self._state = _BETWEEN
                pos += 1
            elif self._state == _AFTER:
                raise ValueError("data after the end of the JSON array")
            elif byte == 0x2C:  # , between elements
                pos += 1
            elif byte == 0x5D:  # ]
                self._state = _AFTER
                pos += 1
            elif byte in (0x7B, 0x5B):  # { [
                if not tried:
                    tried = True
                    whole = _whole(data, pos)
                    if whole is not None:
                        elements.append(whole)
                        pos += len(whole[0])
                        continue
                self._state = _INSIDE
                start = pos
            else:
                raise ValueError("a JSON array element that is not an object")
        return elements

    def _scan(self, data: bytes, pos: int) -> int:
        """Scan an element from ``pos``: the position after its end (state → between), or the data's end."""
        end = len(data)
        if self._in_string:
            if self._escape:
                self._escape = False
                pos += 1
            pos = _STRING.match(data, pos).end()  # type: ignore[union-attr]
            if pos >= end:
                return end
            if data[pos] == 0x5C:  # a backslash that ends the data: its escaped byte comes next
                self._escape = True
                return end
            self._in_string = False
            pos += 1
        depth = self._depth
        while True:
            pos = _OUTSIDE.match(data, pos).end()  # type: ignore[union-attr]
            if pos >= end:
                self._depth = depth
                return end
            byte = data[pos]
            if byte == 0x22:  # a string the data ends in
                self._in_string = True
                self._depth = depth
                self._escape = _STRING.match(data, pos + 1).end() < end  # type: ignore[union-attr]
                return end
            depth += 1 if byte in (0x7B, 0x5B) else -1
            pos += 1
            if depth <= 0:
                self._depth = 0
                self._state = _BETWEEN
                return pos


def _whole(data: bytes, pos: int) -> tuple[bytes, Any] | None:
    """The element at ``pos`` when it ends at the data's last closing bracket (its bytes and value), else None."""
    close = data.rfind(b"}" if data[pos] == 0x7B else b"]")
    if close <= pos:
        return None
    raw = data[pos : close + 1]
    try:
        return raw, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


# ---- decoder -----------------------------------------------------------------------------------------------

_TEXT, _REASONING = "text", "reasoning"


def _malformed(message: str) -> ir.StreamError:
    return ir.StreamError(502, message, code="upstream_malformed")


class StreamDecoder:
    """An upstream's ``streamGenerateContent`` answer (SSE, or the JSON array with ``sse=False``) to IR events."""

    __slots__ = (
        "_calls",
        "_done",
        "_id",
        "_kind",
        "_next",
        "_open",
        "_parser",
        "_search",
        "_signed",
        "_splitter",
        "_started",
        "_usage",
    )

    def __init__(self, *, sse: bool = True) -> None:
        self._parser = _sse_parser() if sse else None
        self._splitter = None if sse else ArraySplitter()
        self._started = False
        self._done = False
        self._id = ""
        self._next = 0
        #: The open block: its index and kind (text or reasoning), and whether a reasoning block is signed.
        self._open = -1
        self._kind: str | None = None
        self._signed = False
        self._calls = 0
        self._usage: Mapping[str, Any] | None = None
        #: The latest ``groundingMetadata`` as a web search: sent whole at the finish.
        self._search: ir.WebSearch | None = None

    def feed(self, chunk: bytes) -> list[ir.Event]:
        events: list[ir.Event] = []
        if self._done:
            return events
        parser = self._parser
        if parser is not None:
            for frame in parser.feed(chunk):
                if frame.data is not None:
                    self._data(frame.data, events)
                    if self._done:
                        break
            return events
        try:
            elements = self._splitter.split(chunk)  # type: ignore[union-attr]
        except ValueError as exc:
            self._fail(_malformed(f"upstream stream is not a JSON array of chunks: {exc}"), events)
            return events
        for raw, value in elements:
            self._data(raw, events, value)
            if self._done:
                break
        return events

    def close(self) -> list[ir.Event]:
        if self._done:
            return []
        self._done = True
        return [
            ir.StreamError(502, "upstream stream ended before a chunk with finishReason", code="upstream_truncated")
        ]

    def _fail(self, error: ir.StreamError, out: list[ir.Event]) -> None:
        self._done = True
        out.append(error)

    def _data(self, data: bytes, out: list[ir.Event], chunk: Any = None) -> None:
        if chunk is None:
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                chunk = None
        if type(chunk) is not dict:  # orjson gives dicts, never subclasses
            self._fail(_malformed("upstream sent a stream chunk that is not a JSON object"), out)
            return
        if "error" in chunk:
            self._fail(stream_error(chunk["error"]), out)
            return
        if not self._started:
            self._started = True
            self._id = chunk.get("responseId") if isinstance(chunk.get("responseId"), str) else ""
            model = chunk.get("modelVersion")
            out.append(ir.Start(id=self._id, model=model if isinstance(model, str) else ""))
        usage = chunk.get("usageMetadata")
        if type(usage) is dict:
            self._usage = usage
        candidates = chunk.get("candidates")
        candidate = candidates[0] if type(candidates) is list and candidates else None
        if type(candidate) is dict and candidate.get("index", 0) in (0, None):
            content = candidate.get("content")
            parts = content.get("parts") if type(content) is dict else None
            if type(parts) is list:
                for part in parts:
                    if type(part) is not dict:
                        continue
                    text = part.get("text")
                    if len(part) == 1 and type(text) is str:  # the usual part: text alone
                        if text:
                            index = self._open if self._kind == _TEXT else self._begin(_TEXT, out)
                            out.append(ir.TextDelta(index, text))
                    else:
                        self._part(part, out)
            if "groundingMetadata" in candidate:
                self._search = grounding_search(candidate["groundingMetadata"]) or self._search
            reason = candidate.get("finishReason")
            if reason:
                self._finish(reason, out)
        elif not candidates:
            feedback = chunk.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self._finish("SAFETY", out)

    def _finish(self, reason: Any, out: list[ir.Event]) -> None:
        self._end(out)
        if self._search is not None:
            out.append(ir.WebSearched(self._next, self._search))
            self._next += 1
        usage = usage_from_wire(self._usage) if self._usage is not None else None
        self._done = True
        out.append(ir.Finish(finish_reason(reason, self._calls > 0), usage))

    def _end(self, out: list[ir.Event]) -> None:
        if self._kind is not None:
            out.append(ir.BlockEnd(self._open))
            self._kind = None

    def _begin(self, kind: str, out: list[ir.Event]) -> int:
        self._end(out)
        index = self._open = self._next
        self._next += 1
        self._kind = kind
        self._signed = False
        out.append(ir.TextStart(index) if kind == _TEXT else ir.ReasoningStart(index, dialect="gemini"))
        return index

    def _part(self, part: dict[str, Any], out: list[ir.Event]) -> None:
        signature = part.get("thoughtSignature")
        if not isinstance(signature, str) or not signature:
            signature = None
        call = part.get("functionCall")
        if isinstance(call, dict):
            self._call(call, signature, out)
            return
        text = part.get("text")
        if not isinstance(text, str):
            if signature is None:
                return  # inlineData, executableCode, codeExecutionResult: no IR slot in an answer
            text = ""
        if part.get("thought") is True:
            if text:
                index = self._open if self._kind == _REASONING and not self._signed else self._begin(_REASONING, out)
                out.append(ir.ReasoningDelta(index, text))
        elif text and signature is None:
            index = self._open if self._kind == _TEXT else self._begin(_TEXT, out)
            out.append(ir.TextDelta(index, text))
            return
        if signature is not None:
            index = self._open if self._kind == _REASONING and not self._signed else self._begin(_REASONING, out)
            self._signed = True
            out.append(ir.ReasoningSignature(index, signature))
        if text and part.get("thought") is not True:
            out.append(ir.TextDelta(self._begin(_TEXT, out), text))

    def _call(self, call: dict[str, Any], signature: str | None, out: list[ir.Event]) -> None:
        self._end(out)
        name = call.get("name")
        name = name if isinstance(name, str) else ""
        args = call.get("args")
        arguments = orjson.dumps(args).decode() if isinstance(args, dict) else "{}"
        index = self._next
        self._next += 1
        id = call_id(call.get("id"), self._id, name, arguments, self._calls)
        self._calls += 1
        out.append(
            ir.ToolCallStart(index, id, name, signature=signature, signature_dialect="gemini" if signature else None)
        )
        out.append(ir.ToolCallDelta(index, arguments))
        out.append(ir.BlockEnd(index))


def _sse_parser() -> sse.Parser:
    return sse.Parser()  # (StreamDecoder's ``sse`` argument hides the module there)


# ---- encoder -----------------------------------------------------------------------------------------------

_CHUNK_HEAD = b'{"candidates":[{"content":{"parts":['
_CHUNK_PARTS_END = b'],"role":"model"},'
_EMPTY_TEXT = b'{"text":""}'
_TEXT_FRAME_HEAD = b"data: " + _CHUNK_HEAD + b'{"text":'


class StreamEncoder:
    """IR events → ``streamGenerateContent`` chunks (SSE frames, or the JSON array with ``sse=False``)."""

    __slots__ = (
        "_call",
        "_done",
        "_elements",
        "_foreign",
        "_model",
        "_proof",
        "_show",
        "_skip",
        "_sse",
        "_tail",
        "_text_end",
    )

    def __init__(self, req: ir.Request, *, sse: bool = True) -> None:
        self._sse = sse
        self._model = orjson.dumps(req.model)
        self._show = req.reasoning is not None and req.reasoning.include is True
        self._set_tail(b',"modelVersion":' + self._model + b"}")
        self._elements = 0
        self._done = False
        #: The tool call being held: [index, id, name, signature, argument fragments].
        self._call: list[Any] | None = None
        #: Index of a reasoning block made by another dialect (its proof goes out wrapped at its end), and that
        #: reasoning: its proof, and its text when the proof's dialect needs it back.
        self._foreign = -1
        self._proof: tuple[ir.Reasoning, list[str]] | None = None
        self._skip = -1

    def _set_tail(self, tail: bytes) -> None:
        """What every chunk ends with (after its candidates), and a text chunk's frame after its text."""
        self._tail = tail
        self._text_end = b"}" + _CHUNK_PARTS_END + b'"index":0}]' + tail + b"\r\n\r\n"

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if type(event) is ir.TextDelta:  # most events
            if not event.text:
                return b""
            if self._sse:  # the frame ``_chunk(orjson.dumps({"text": text}))`` makes, in one go
                return _TEXT_FRAME_HEAD + orjson.dumps(event.text) + self._text_end
            return self._chunk(orjson.dumps({"text": event.text}))
        if isinstance(event, ir.ReasoningDelta):
            if not event.text or event.index == self._skip:
                return b""
            if event.index == self._foreign and self._proof is not None:
                self._proof[1].append(event.text)
            if not self._show:
                return b""
            return self._chunk(orjson.dumps({"text": event.text, "thought": True}))
        if isinstance(event, ir.ToolCallDelta):
            if self._call is not None and self._call[0] == event.index:
                self._call[4].append(event.arguments)
            return b""
        if isinstance(event, ir.Start):
            rid = response_id(event.id)
            if rid:
                self._set_tail(b',"modelVersion":' + self._model + b',"responseId":' + orjson.dumps(rid) + b"}")
            return b""
        if isinstance(event, ir.Finish):
            return self._wrapped_proof() + self._finish(event)
        if isinstance(event, ir.StreamError):
            return self._error(event.status, event.message, event.code)
        out = self._flush_call()
        if isinstance(event, ir.ToolCallStart):
            if event.signature_dialect == "gemini":
                signature = event.signature
            else:  # another dialect's proof of the call: wrapped, on the functionCall part
                signature = envelope.call_envelope(event.signature, event.signature_dialect, event.id, "gemini")
            self._call = [event.index, event.id, event.name, signature, []]
        elif isinstance(event, ir.ReasoningStart):
            out += self._wrapped_proof()
            if event.dialect != "gemini":
                self._foreign = event.index
                self._proof = (ir.Reasoning(redacted=event.redacted, dialect=event.dialect, id=event.id), [])
            if event.redacted is not None:
                self._skip = event.index  # opaque: no text to show
        elif isinstance(event, ir.ReasoningSignature):
            if event.index == self._foreign and self._proof is not None:
                self._proof = (attrs.evolve(self._proof[0], signature=event.signature), self._proof[1])
            elif event.index != self._skip and event.signature:
                out += self._chunk(orjson.dumps({"text": "", "thoughtSignature": event.signature}))
        elif isinstance(event, ir.BlockEnd) and event.index == self._foreign:
            out += self._wrapped_proof()
        return out  # TextStart, other BlockEnds: nothing to send

    def _wrapped_proof(self) -> bytes:
        """Another dialect's reasoning proof, once its block ended: ``{"text": "", "thoughtSignature": envelope}``.

        The reasoning text goes inside the envelope when the proof's dialect needs it back: the client got it
        in pieces (thought parts), or not at all.
        """
        if self._proof is None:
            return b""
        (part, texts), self._proof, self._foreign = self._proof, None, -1
        wrapped = envelope.reasoning_envelope(attrs.evolve(part, text="".join(texts)), "gemini", with_text=True)
        return self._chunk(orjson.dumps({"text": "", "thoughtSignature": wrapped})) if wrapped else b""

    def finish(self) -> bytes:
        if self._done:
            return b""
        return self._error(500, "the stream ended unexpectedly", "INTERNAL")

    def _frame(self, payload: bytes) -> bytes:
        if self._sse:
            return sse_frame(payload)
        self._elements += 1
        return (b"[" if self._elements == 1 else b",\r\n") + payload

    def _chunk(self, parts: bytes) -> bytes:
        return self._frame(_CHUNK_HEAD + parts + _CHUNK_PARTS_END + b'"index":0}]' + self._tail)

    def _call_part(self, *, cut: bool) -> bytes | None:
        call, self._call = self._call, None
        if call is None:
            return None
        arguments = common.arguments_object("".join(call[4]))
        if arguments is None and cut:
            return None  # arguments cut by length: never reported as a call
        return orjson.dumps(function_call_part(call[1], call[2], arguments or {}, call[3]))

    def _flush_call(self) -> bytes:
        part = self._call_part(cut=False)
        return self._chunk(part) if part is not None else b""

    def _finish(self, event: ir.Finish) -> bytes:
        self._done = True
        part = self._call_part(cut=event.reason == "length") or _EMPTY_TEXT
        candidate = b'"finishReason":"' + finish_to_wire(event.reason).encode() + b'","index":0}]'
        if event.usage is not None:
            candidate += b',"usageMetadata":' + orjson.dumps(usage_to_wire(event.usage))
        chunk = self._frame(_CHUNK_HEAD + part + _CHUNK_PARTS_END + candidate + self._tail)
        return chunk if self._sse else chunk + b"]"

    def _error(self, status: int, message: str, code: str | None) -> bytes:
        self._done = True
        self._call = None
        frame = self._frame(orjson.dumps(error_payload(status, message, code)))
        return frame if self._sse else frame + b"]"

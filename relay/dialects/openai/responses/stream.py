"""OpenAI Responses streams: SSE bytes to IR events (``StreamDecoder``) and back (``StreamEncoder``).

Grammar: ``response.created`` → ``response.in_progress`` → per output item
``response.output_item.added`` … ``response.output_item.done`` (a message's text parts between
``content_part.added`` and ``content_part.done``; a function call's ``function_call_arguments.delta``/``.done``;
a reasoning item's ``reasoning_summary_part.added``/``reasoning_summary_text.delta``/…) → one terminal event:
``response.completed``, ``response.incomplete``, ``response.failed`` or ``error``. Every event has a
``sequence_number`` counting from 0.

Decoding: each text part of a message is one text block; a reasoning item one reasoning block (summary parts
joined with a blank line, raw ``reasoning_text`` deltas read too, ``encrypted_content`` of the finished item
as its signature); a function call one tool-call block (its ``fc_…`` id as signature, this dialect's). Deltas
for a block that has ended (interleaved items) end the stream with ``upstream_interleaved``. Upstreams that
send only ``*.done`` events or whole items still give their text and arguments. Built-in tool items are
skipped. ``response.failed`` and ``error`` give a ``StreamError`` with the status their code stands for.

Encoding: consecutive text blocks share one message item (a new content part each), closed when another kind
of block starts or at the end; reasoning text is sent as a summary (``reasoning_summary_*`` events);
``encrypted_content`` is this dialect's, or another dialect's proof in Relay's envelope (``envelope``), in the
item's ``output_item.done``; redacted reasoning and another dialect's proof of a call (before the call) are whole
items of their own. A reasoning item is sent at its block's first text (or, with only a proof, at its end): a
block with neither sends no item, as ``encode_response`` makes none.
An answer cut by length or a content filter (``response.incomplete``) closes its open message ``incomplete``. A
tool call without argument fragments gets ``{}``. Deltas go out as they come; only the ``*.done`` events and the
final response carry the running copies. ``StreamError`` closes the open items (status ``incomplete``), then
ends the stream with an ``error`` event, as OpenAI does mid-stream: the flat fields its documentation shows
and the nested ``error`` object OpenAI sends, on which the openai SDK raises ``APIError`` (it yields a
``response.failed`` event without raising, and a stream has one terminal event). ``finish()`` with neither
Finish nor StreamError fails the stream with ``upstream_truncated``.
"""

from __future__ import annotations

from typing import Any

import orjson

from relay.dialects import envelope, ir
from relay.dialects.common import derived_id
from relay.dialects.openai.responses.items import DIALECT, reasoning_item
from relay.dialects.openai.responses.response import (
    call_ids,
    error_event,
    failure,
    message_item,
    reasoning_id,
    response_echo,
    response_id,
    response_object,
    status_for_code,
    status_of,
    usage_from_wire,
)
from relay.dialects.openai.responses.tools import annotations, client_call, search_id, search_item
from relay.dialects.tool_names import origins
from relay.http.sse import Parser

# ---- decoder -----------------------------------------------------------------------------------------


class _Item:
    """What the decoder knows of one upstream output item."""

    __slots__ = ("block", "data_seen", "kind", "parts", "summary_index")

    def __init__(self, kind: str, block: int = -1) -> None:
        self.kind = kind
        #: The IR block of a reasoning item or function call.
        self.block = block
        #: A message's content index → its IR block.
        self.parts: dict[int, int] = {}
        #: Whether text or arguments came as deltas (else the ``done`` events or the finished item carry them).
        self.data_seen = False
        self.summary_index = 0


class StreamDecoder:
    """An upstream's Responses SSE stream, fed in chunks of any size, to IR events."""

    def __init__(self) -> None:
        self._parser = Parser()
        self._done = False
        self._started = False
        self._next = 0
        self._open: int | None = None
        self._items: dict[int, _Item] = {}
        self._called = False
        self._handlers = {
            "response.created": self._lifecycle,
            "response.in_progress": self._lifecycle,
            "response.queued": self._lifecycle,
            "response.output_item.added": self._item_added,
            "response.output_item.done": self._item_done,
            "response.content_part.added": self._part_added,
            "response.content_part.done": self._part_done,
            "response.output_text.delta": self._text_delta,
            "response.refusal.delta": self._text_delta,
            "response.output_text.done": self._text_done,
            "response.refusal.done": self._text_done,
            "response.function_call_arguments.delta": self._arguments_delta,
            "response.function_call_arguments.done": self._arguments_done,
            "response.reasoning_summary_text.delta": self._reasoning_delta,
            "response.reasoning_text.delta": self._reasoning_delta,
            "response.completed": self._terminal,
            "response.incomplete": self._terminal,
            "response.failed": self._failed,
            "error": self._error,
        }

    def feed(self, chunk: bytes) -> list[ir.Event]:
        events: list[ir.Event] = []
        for frame in self._parser.feed(chunk):
            if self._done:
                break
            self._frame(frame.name, frame.data, events)
        return events

    def _frame(self, name: bytes | None, data: bytes | None, events: list[ir.Event]) -> None:
        if not data or (data[0] != 0x7B and (not data.strip() or data == b"[DONE]")):  # 0x7B: "{"
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            payload = None
        if type(payload) is not dict:  # orjson gives dicts, never subclasses
            self._fail(events, 502, "upstream sent a stream event that is not a JSON object", "upstream_invalid")
            return
        kind = payload.get("type")
        if type(kind) is not str:
            kind = name.decode("utf-8", "replace") if name else ""
        handler = self._handlers.get(kind)
        if handler is None:
            return
        if not self._started and kind != "error" and kind != "response.failed":
            self._lifecycle(payload, events)  # whatever comes first starts the stream
        handler(payload, events)

    def close(self) -> list[ir.Event]:
        self._parser.close()
        if self._done:
            return []
        self._done = True
        return [ir.StreamError(502, "upstream stream ended before response.completed", code="upstream_truncated")]

    # ---- blocks

    def _fail(self, events: list[ir.Event], status: int, message: str, code: str | None) -> None:
        self._done = True
        events.append(ir.StreamError(status, message, code=code))

    def _begin(self, events: list[ir.Event]) -> int:
        self._end(events)
        index = self._next
        self._next += 1
        self._open = index
        return index

    def _end(self, events: list[ir.Event], index: int | None = None) -> None:
        if self._open is not None and (index is None or index == self._open):
            events.append(ir.BlockEnd(self._open))
            self._open = None

    def _current(self, block: int, events: list[ir.Event]) -> bool:
        """Whether ``block`` is the open block; an ended one fails the stream (the upstream interleaved)."""
        if block == self._open:
            return True
        self._fail(events, 502, "upstream interleaved the deltas of its output items", "upstream_interleaved")
        return False

    def _item(self, payload: dict[str, Any]) -> _Item | None:
        index = payload.get("output_index")
        return self._items.get(index) if isinstance(index, int) else None

    def _text_block(self, item: _Item, payload: dict[str, Any], events: list[ir.Event]) -> int:
        index = payload.get("content_index", 0)
        block = item.parts.get(index)
        if block is None:
            block = item.parts[index] = self._begin(events)
            events.append(ir.TextStart(block))
        return block

    # ---- handlers

    def _lifecycle(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        if self._started:
            return
        self._started = True
        response = payload.get("response")
        response = response if isinstance(response, dict) else {}
        created = response.get("created_at")
        events.append(
            ir.Start(
                id=str(response.get("id") or ""),
                model=str(response.get("model") or ""),
                created=int(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else 0,
            )
        )

    def _item_added(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        item = payload.get("item")
        index = payload.get("output_index")
        if not isinstance(item, dict) or not isinstance(index, int):
            return
        kind = item.get("type")
        item_id = item.get("id") if isinstance(item.get("id"), str) else None
        if kind == "message":
            self._items[index] = _Item("message")
        elif kind == "reasoning":
            block = self._begin(events)
            self._items[index] = _Item("reasoning", block)
            events.append(ir.ReasoningStart(block, dialect=DIALECT, id=item_id))
        elif kind == "function_call":
            block = self._begin(events)
            state = self._items[index] = _Item("function_call", block)
            self._called = True
            call_id, name = item.get("call_id"), item.get("name")
            events.append(
                ir.ToolCallStart(
                    block,
                    id=call_id if isinstance(call_id, str) else "",
                    name=name if isinstance(name, str) else "",
                    signature=item_id,
                    signature_dialect=DIALECT if item_id else None,
                )
            )
            arguments = item.get("arguments")
            if isinstance(arguments, str) and arguments:
                state.data_seen = True
                events.append(ir.ToolCallDelta(block, arguments))

    def _part_added(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        item = self._item(payload)
        if item is None or item.kind != "message":
            return
        block = self._text_block(item, payload, events)
        part = payload.get("part")
        text = part.get("text") or part.get("refusal") if isinstance(part, dict) else None
        if isinstance(text, str) and text:
            item.data_seen = True
            events.append(ir.TextDelta(block, text))

    def _part_done(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        item = self._item(payload)
        if item is not None and item.kind == "message":
            block = item.parts.get(payload.get("content_index", 0))
            if block is not None:
                self._end(events, block)

    def _text_delta(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        item = self._item(payload)
        delta = payload.get("delta")
        if item is None or item.kind != "message" or type(delta) is not str or not delta:
            return
        block = item.parts.get(payload.get("content_index", 0))  # the open part (most deltas) without a call
        if block is None:
            block = self._text_block(item, payload, events)
        if block == self._open or self._current(block, events):
            item.data_seen = True
            events.append(ir.TextDelta(block, delta))

    def _text_done(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        item = self._item(payload)
        text = payload.get("text", payload.get("refusal"))
        if item is None or item.kind != "message" or item.data_seen or not isinstance(text, str) or not text:
            return
        block = self._text_block(item, payload, events)
        if self._current(block, events):
            item.data_seen = True
            events.append(ir.TextDelta(block, text))

    def _arguments_delta(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        item = self._item(payload)
        delta = payload.get("delta")
        if item is None or item.kind != "function_call" or not isinstance(delta, str) or not delta:
            return
        if self._current(item.block, events):
            item.data_seen = True
            events.append(ir.ToolCallDelta(item.block, delta))

    def _arguments_done(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        item = self._item(payload)
        arguments = payload.get("arguments")
        if item is None or item.kind != "function_call" or item.data_seen or not isinstance(arguments, str):
            return
        if arguments and self._current(item.block, events):
            item.data_seen = True
            events.append(ir.ToolCallDelta(item.block, arguments))

    def _reasoning_delta(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        item = self._item(payload)
        delta = payload.get("delta")
        if item is None or item.kind != "reasoning" or not isinstance(delta, str) or not delta:
            return
        if not self._current(item.block, events):
            return
        index = payload.get("summary_index", payload.get("content_index", 0))
        if index != item.summary_index:
            item.summary_index = index
            if item.data_seen:
                events.append(ir.ReasoningDelta(item.block, "\n\n"))
        item.data_seen = True
        events.append(ir.ReasoningDelta(item.block, delta))

    def _item_done(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        state = self._item(payload)
        item = payload.get("item")
        if not isinstance(item, dict):
            return
        if state is None:  # a done without its added: read the item whole
            self._item_added(payload, events)
            state = self._item(payload)
            if state is None:
                return
        if state.kind == "message":
            self._message_done(state, item, events)
        elif state.kind == "reasoning":
            self._reasoning_done(state, item, events)
        else:
            self._call_done(state, item, events)

    def _message_done(self, state: _Item, item: dict[str, Any], events: list[ir.Event]) -> None:
        if not state.data_seen:
            for index, part in enumerate(item.get("content") or ()):
                text = part.get("text") or part.get("refusal") if isinstance(part, dict) else None
                if isinstance(text, str) and text:
                    block = self._text_block(state, {"content_index": index}, events)
                    events.append(ir.TextDelta(block, text))
        for block in state.parts.values():
            self._end(events, block)

    def _reasoning_done(self, state: _Item, item: dict[str, Any], events: list[ir.Event]) -> None:
        if state.block != self._open:
            return
        if not state.data_seen:
            texts = [p.get("text") for p in item.get("summary") or () if isinstance(p, dict)]
            if not any(texts):
                texts = [p.get("text") for p in item.get("content") or () if isinstance(p, dict)]
            text = "\n\n".join(t for t in texts if isinstance(t, str) and t)
            if text:
                events.append(ir.ReasoningDelta(state.block, text))
        signature = item.get("encrypted_content")
        if isinstance(signature, str) and signature:
            events.append(ir.ReasoningSignature(state.block, signature))
        self._end(events, state.block)

    def _call_done(self, state: _Item, item: dict[str, Any], events: list[ir.Event]) -> None:
        if state.block != self._open:
            return
        arguments = item.get("arguments")
        if not state.data_seen:
            events.append(
                ir.ToolCallDelta(state.block, arguments if isinstance(arguments, str) and arguments else "{}")
            )
            state.data_seen = True
        self._end(events, state.block)

    def _terminal(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        response = payload.get("response")
        response = response if isinstance(response, dict) else {}
        self._end(events)
        self._done = True
        details = response.get("incomplete_details")
        reason: ir.FinishReason = "tool_calls" if self._called else "stop"
        if payload.get("type") == "response.incomplete" or response.get("status") == "incomplete":
            why = details.get("reason") if isinstance(details, dict) else None
            reason = "content_filter" if why == "content_filter" else "length"
        events.append(ir.Finish(reason, usage=usage_from_wire(response.get("usage"))))

    def _failed(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        response = payload.get("response")
        error = failure(response if isinstance(response, dict) else {})
        self._fail(events, error.status, error.message, error.code)

    def _error(self, payload: dict[str, Any], events: list[ir.Event]) -> None:
        nested = payload.get("error")
        error = nested if isinstance(nested, dict) else payload  # OpenAI nests it; its documentation does not
        code = error.get("code")
        if not isinstance(code, str):
            code = error.get("type") if error is nested and isinstance(error.get("type"), str) else None
        message = error.get("message")
        self._fail(events, status_for_code(code), message if isinstance(message, str) else "upstream error", code)


# ---- encoder -----------------------------------------------------------------------------------------


def _frame(payload: dict[str, Any]) -> bytes:
    return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _delta_prefix(kind: str, fields: dict[str, Any]) -> bytes:
    """The bytes of a delta event up to its ``delta`` value: built once per block, not per delta."""
    head = orjson.dumps({"type": kind, **fields})
    return b"event: " + kind.encode() + b"\ndata: " + head[:-1] + b',"delta":'


#: The end of a delta event, after its ``delta`` value.
_DELTA_END = b',"sequence_number":%d}\n\n'
_TEXT, _REASONING, _CALL, _CUSTOM = "text", "reasoning", "function_call", "custom_tool_call"


class _Block:
    """The open output item or content part of the encoder."""

    __slots__ = (
        "chunks", "citations", "dialect", "fast", "id", "ir_index", "item", "kind", "part_open", "prefix", "signature",
    )  # fmt: skip

    def __init__(self, kind: str, ir_index: int, item: dict[str, Any] | None, prefix: bytes) -> None:
        self.kind = kind
        self.ir_index = ir_index
        #: The type of the deltas that need only ``prefix`` (a reasoning block's, once its summary part is open).
        self.fast: type | None = ir.ToolCallDelta if kind == _CALL else ir.TextDelta if kind == _TEXT else None
        #: The fields naming the item (and part) in its events; a reasoning block's is None until its item is sent.
        self.item = item
        self.prefix = prefix
        #: The running copy of the text or arguments (joined for the ``*.done`` events).
        self.chunks: list[str] = []
        self.part_open = False
        self.dialect: ir.Dialect | None = None
        self.id: str | None = None
        self.signature: str | None = None
        #: A text block's cited web sources (``ir.TextCitation``).
        self.citations: list[ir.Citation] = []


class StreamEncoder:
    """IR events to the Responses SSE grammar for the client that sent ``req``; one event in, its frames out.

    A reasoning block's item is sent at its first text (or, holding only a proof, its own ``encrypted_content``
    or another provider's wrapped, at its end): a block with neither sends no item, as ``encode_response``
    makes none.
    """

    __slots__ = (
        "_block",
        "_created",
        "_echo",
        "_ended",
        "_id",
        "_message",
        "_model",
        "_origins",
        "_output",
        "_seq",
        "_skipped",
        "_split",
        "_started",
    )

    def __init__(self, req: ir.Request) -> None:
        self._model = req.model
        self._echo = response_echo(req)
        self._id = response_id("")
        self._created = 0
        self._seq = 0
        self._started = False
        self._ended = False
        self._output: list[dict[str, Any]] = []
        #: The open message item (its output index and finished text parts), while text blocks follow each other.
        self._message: dict[str, Any] | None = None
        #: Whether a reasoning block came after the open message: the next text starts a new message.
        self._split = False
        self._block: _Block | None = None
        self._skipped: int | None = None
        #: Flat tool name → the client's spelling (namespaced and custom tools).
        self._origins = origins(req)

    # ---- frames

    def _emit(self, out: list[bytes], kind: str, **fields: Any) -> None:
        out.append(_frame({"type": kind, "sequence_number": self._seq, **fields}))
        self._seq += 1

    def _delta(self, block: _Block, text: str) -> bytes:
        block.chunks.append(text)
        seq = self._seq
        self._seq = seq + 1
        return block.prefix + orjson.dumps(text) + _DELTA_END % seq

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        return response_object(self._id, self._model, self._created, self._echo, status=status, **fields)

    # ---- events

    def encode(self, event: ir.Event) -> bytes:
        block = self._block
        if block is not None and type(event) is block.fast:  # an open block means started, not ended
            # most events: a delta of the open block, one frame of precomputed bytes around it
            if event.index == block.ir_index:  # type: ignore[union-attr]
                text = event.arguments if block.kind == _CALL else event.text  # type: ignore[union-attr]
                if not text:
                    return b""
                block.chunks.append(text)
                seq = self._seq
                self._seq = seq + 1
                return block.prefix + orjson.dumps(text) + _DELTA_END % seq
        if self._ended:
            return b""
        out: list[bytes] = []
        if isinstance(event, ir.StreamError):
            self._fail(event.status, event.message, event.code, out)
            return b"".join(out)
        if not self._started:
            self._start(event if isinstance(event, ir.Start) else None, out)
            if isinstance(event, ir.Start):
                return b"".join(out)
        if isinstance(event, ir.TextDelta):
            if block is None and event.index != self._skipped and event.text:
                self._open_text(event.index, out)
                out.append(self._delta(self._block, event.text))  # type: ignore[arg-type]
        elif isinstance(event, ir.ReasoningDelta):
            self._reasoning_delta(event, out)
        elif isinstance(event, ir.TextStart):
            self._open_text(event.index, out)
        elif isinstance(event, ir.ReasoningStart):
            self._open_reasoning(event, out)
        elif isinstance(event, ir.ToolCallStart):
            self._open_call(event, out)
        elif isinstance(event, ir.ReasoningSignature):
            if block is not None and block.ir_index == event.index and block.kind == _REASONING:
                block.signature = event.signature  # another dialect's goes out wrapped
        elif isinstance(event, ir.ToolCallDelta):
            if block is not None and block.ir_index == event.index and block.kind == _CUSTOM:
                block.chunks.append(event.arguments)  # a custom call's input goes out whole, at its end
        elif isinstance(event, ir.TextCitation):
            if block is not None and block.ir_index == event.index and block.kind == _TEXT:
                block.citations.append(event.citation)
        elif isinstance(event, ir.WebSearched):
            self._search(event.search, out)
        elif isinstance(event, ir.BlockEnd):
            if block is not None and block.ir_index == event.index:
                self._close_block(out)
        elif isinstance(event, ir.Finish):
            self._finish(event, out)
        return b"".join(out)

    def finish(self) -> bytes:
        if self._ended:
            return b""
        out: list[bytes] = []
        self._fail(502, "upstream stream ended before it finished", "upstream_truncated", out)
        return b"".join(out)

    # ---- lifecycle

    def _start(self, start: ir.Start | None, out: list[bytes]) -> None:
        self._started = True
        if start is not None:
            self._id = response_id(start.id)
            self._created = start.created
        response = orjson.dumps(self._response("in_progress", output=[]))
        for name in (b"response.created", b"response.in_progress"):
            head = b'event: %s\ndata: {"type":"%s","sequence_number":%d,"response":' % (name, name, self._seq)
            out.append(head + response + b"}\n\n")
            self._seq += 1

    def _finish(self, event: ir.Finish, out: list[bytes]) -> None:
        status, incomplete = status_of(event.reason)
        self._close_block(out)
        self._close_message(out, status)  # a message the answer was cut in is incomplete too
        self._ended = True
        response = self._response(status, output=self._output, usage=event.usage, incomplete=incomplete)
        self._emit(out, f"response.{status}", response=response)

    def _fail(self, status: int, message: str, code: str | None, out: list[bytes]) -> None:
        """The open items closed (status incomplete), then the terminal ``error`` event the SDK raises on."""
        self._ended = True
        if self._started:
            self._close_block(out, "incomplete")
            self._close_message(out, "completed" if self._split else "incomplete")  # reasoning came after it
        out.append(_frame(error_event(status, message, code, self._seq)))
        self._seq += 1

    # ---- items

    def _add_item(self, item: dict[str, Any], out: list[bytes]) -> int:
        index = len(self._output)
        self._output.append(item)
        self._emit(out, "response.output_item.added", output_index=index, item=item)
        return index

    def _open_text(self, ir_index: int, out: list[bytes]) -> None:
        self._close_block(out)
        if self._split:
            self._close_message(out)
        if self._message is None:
            index = len(self._output)
            item_id = derived_id(self._id, index, "msg_")
            self._add_item(message_item(item_id, [], "in_progress"), out)
            self._message = {"index": index, "id": item_id, "texts": []}
            self._split = False
        message = self._message
        content_index = len(message["texts"])
        fields = {"item_id": message["id"], "output_index": message["index"], "content_index": content_index}
        self._emit(out, "response.content_part.added", **fields, part=_text_part(""))
        prefix = _delta_prefix("response.output_text.delta", {**fields, "logprobs": []})
        self._block = _Block(_TEXT, ir_index, fields, prefix)

    def _open_reasoning(self, event: ir.ReasoningStart, out: list[bytes]) -> None:
        self._close_block(out)
        self._split = True  # reasoning ends the message before it, whether or not it shows
        if event.redacted is not None:  # Anthropic's opaque reasoning: whole, its data wrapped
            self._skipped = event.index
            wrapped = envelope.reasoning_envelope(ir.Reasoning(redacted=event.redacted, dialect=event.dialect), DIALECT)
            if wrapped:
                self._proof_item(wrapped, out)
            return
        block = self._block = _Block(_REASONING, event.index, None, b"")
        block.dialect = event.dialect
        block.id = event.id

    def _show_reasoning(self, block: _Block, out: list[bytes]) -> dict[str, Any]:
        """Send the reasoning item of ``block`` (it has something to show): its fields."""
        self._close_message(out)
        index = len(self._output)
        item_id = reasoning_id(self._id, index, block.dialect, block.id)
        self._add_item({"type": "reasoning", "id": item_id, "summary": []}, out)
        fields = block.item = {"item_id": item_id, "output_index": index, "summary_index": 0}
        block.prefix = _delta_prefix(_SUMMARY_DELTA, fields)
        return fields

    def _open_call(self, event: ir.ToolCallStart, out: list[bytes]) -> None:
        self._close_block(out)
        self._close_message(out)
        own = event.signature if event.signature_dialect == DIALECT and event.signature else None
        if event.signature and not own:  # another dialect's proof of the call: a reasoning item right before it
            call_id, _ = call_ids(self._id, len(self._output) + 1, event.id, None)
            wrapped = envelope.call_envelope(event.signature, event.signature_dialect, call_id, DIALECT)
            if wrapped:
                self._proof_item(wrapped, out)
        index = len(self._output)
        call_id, item_id = call_ids(self._id, index, event.id, own if own and own.startswith("fc_") else None)
        origin = self._origins.get(event.name)
        item = client_call(call_id, item_id, event.name, "", origin, "in_progress")
        self._add_item(item, out)
        fields = {"item_id": item["id"], "output_index": index}
        if origin is not None and origin.custom:
            self._block = _Block(_CUSTOM, event.index, {**fields, "item": item, "origin": origin}, b"")
            self._block.fast = None  # its arguments' JSON is not its input: read whole at the end
            return
        prefix = _delta_prefix("response.function_call_arguments.delta", fields)
        self._block = _Block(_CALL, event.index, {**fields, "item": item}, prefix)

    def _proof_item(self, wrapped: str, out: list[bytes]) -> None:
        """A whole reasoning item, no summary, whose ``encrypted_content`` is another dialect's proof, wrapped."""
        self._close_message(out)
        index = len(self._output)
        item = reasoning_item(ir.Reasoning(), derived_id(self._id, index, "rs_"), wrapped)
        self._add_item(item, out)
        self._done_item(index, item, out)

    def _search(self, search: ir.WebSearch, out: list[bytes]) -> None:
        """A web search the upstream ran: a ``web_search_call`` item, whole, with its status events."""
        self._close_block(out)
        self._close_message(out)
        index = len(self._output)
        item_id = search_id(search, self._id, index)
        self._add_item(search_item(search, item_id, "in_progress"), out)
        fields = {"item_id": item_id, "output_index": index}
        for step in ("in_progress", "searching", "completed"):
            self._emit(out, f"response.web_search_call.{step}", **fields)
        self._done_item(index, search_item(search, item_id), out)

    def _reasoning_delta(self, event: ir.ReasoningDelta, out: list[bytes]) -> None:
        block = self._block
        if block is None or block.ir_index != event.index or block.kind != _REASONING or not event.text:
            return
        if not block.part_open:
            fields = block.item if block.item is not None else self._show_reasoning(block, out)
            block.part_open = True
            block.fast = ir.ReasoningDelta
            self._emit(out, "response.reasoning_summary_part.added", **fields, part=_summary_part(""))
        out.append(self._delta(block, event.text))

    def _close_block(self, out: list[bytes], status: str = "completed") -> None:
        block = self._block
        if block is None:
            return
        self._block = None
        text = "".join(block.chunks)
        fields = block.item
        if block.kind == _TEXT:
            assert fields is not None and self._message is not None
            notes = annotations(text, tuple(block.citations))
            for i, note in enumerate(notes):
                self._emit(out, "response.output_text.annotation.added", **fields, annotation_index=i, annotation=note)
            self._emit(out, "response.output_text.done", **fields, text=text, logprobs=[])
            self._emit(out, "response.content_part.done", **fields, part={**_text_part(text), "annotations": notes})
            self._message["texts"].append(ir.Text(text, tuple(block.citations)))
        elif block.kind == _REASONING:
            part = ir.Reasoning(text=text, signature=block.signature, dialect=block.dialect, id=block.id)
            wrapped = envelope.reasoning_envelope(part, DIALECT, with_text=True)  # another dialect's proof
            if fields is None:
                if not wrapped and not (block.signature and block.dialect == DIALECT):
                    return  # nothing this dialect can show: no item
                fields = self._show_reasoning(block, out)
            if block.part_open:
                self._emit(out, "response.reasoning_summary_text.done", **fields, text=text)
                self._emit(out, "response.reasoning_summary_part.done", **fields, part=_summary_part(text))
            item = reasoning_item(part, fields["item_id"], wrapped)
            self._done_item(fields["output_index"], item, out)
        elif block.kind == _CUSTOM:
            assert fields is not None
            item = client_call(fields["item"]["call_id"], fields["item_id"], "", text, fields["origin"])
            ids = {"item_id": fields["item_id"], "output_index": fields["output_index"]}
            if item["input"]:
                self._emit(out, "response.custom_tool_call_input.delta", **ids, delta=item["input"])
            self._emit(out, "response.custom_tool_call_input.done", **ids, input=item["input"])
            self._done_item(fields["output_index"], item, out)
        else:
            assert fields is not None
            if not block.chunks:
                out.append(self._delta(block, "{}"))
                text = "{}"
            item = {**fields["item"], "arguments": text, "status": status}
            ids = {"item_id": fields["item_id"], "output_index": fields["output_index"]}
            self._emit(out, "response.function_call_arguments.done", **ids, arguments=text)
            self._done_item(fields["output_index"], item, out)

    def _close_message(self, out: list[bytes], status: str = "completed") -> None:
        message = self._message
        if message is None:
            return
        self._message = None
        self._done_item(message["index"], message_item(message["id"], message["texts"], status), out)

    def _done_item(self, index: int, item: dict[str, Any], out: list[bytes]) -> None:
        self._output[index] = item
        self._emit(out, "response.output_item.done", output_index=index, item=item)


_SUMMARY_DELTA = "response.reasoning_summary_text.delta"


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _summary_part(text: str) -> dict[str, Any]:
    return {"type": "summary_text", "text": text}

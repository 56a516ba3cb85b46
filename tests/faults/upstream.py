"""A fault-injecting upstream: one raw-socket HTTP/1.1 server on loopback that speaks OpenAI Chat Completions,
OpenAI Responses, Anthropic Messages and Gemini (server-sent events and the streamed JSON array), and breaks
its answer in the way the request's model name asks for.

The model ``<anything>-fault-<kind>`` selects the fault (``<anything>`` routes the request to a channel);
a model without ``-fault-`` gets a well-formed answer. Requests are parsed with h11, answers are written as
raw bytes (so that a chunked body can be cut, garbled or reset), one request per connection
(``connection: close``). Every answer reports the same usage (``INPUT``/``OUTPUT`` tokens) and streams the
same text, ``PIECES``, one piece per event, so what a client saw and what it was charged can be checked.

Faults after the answer started (stream requests): ``cut`` (FIN in the middle of the chunked body), ``reset``
(RST), ``cut_event`` (FIN in the middle of an event), ``malformed`` (an event whose data is not JSON),
``deep`` (an event nested deeper than any JSON parser Relay uses accepts), ``stall`` (nothing more, the
connection kept open), ``garbage`` (a chunk-size line that is not one), ``no_terminal`` (a clean end without the
dialect's terminal event); each comes after ``CUT`` text events. ``linger``: the whole stream, then the body's
end held back for ``LINGER`` seconds; ``slow``: the whole stream, ``SLOW`` seconds between events.

Faults before anything is answered: ``html_500`` (an HTML error page), ``echo_auth`` (a 400 in the dialect's
error shape quoting the credential it got), ``unauthorized`` (401), ``rate_limited`` (429, ``retry-after``),
``overloaded`` (529), ``unavailable`` (503), ``stall_first`` (no response head), ``non_json`` (a 200 whose body
is an HTML page), ``deep`` on a whole answer (nested past any parser's limit), ``too_large`` (a 200 of
``MAX_UPSTREAM_BODY`` bytes and more, valid JSON once its leading blanks are skipped), ``wrong_type`` (a
well-formed answer under a wrong content-type).
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import attrs
import h11
import trio

Dialect = Literal["openai_chat", "openai_responses", "anthropic", "gemini"]

#: The text every answer streams, one piece per text event: 10 bytes each.
PIECES: tuple[str, ...] = tuple(f"piece-{i:02d}, " for i in range(8))
TEXT = "".join(PIECES)
#: The usage every answer reports (at its end; Anthropic also reports the input at its start).
INPUT = 11
OUTPUT = 13
#: Text events sent before a mid-stream fault.
CUT = 3
#: What the upstream says in every error it answers: it must never reach Relay's client.
UPSTREAM_TEXT = "UPSTREAM-TEXT-7f3a"
#: Seconds of the ``stall`` faults (Relay's timeouts end them long before).
STALL = 30.0
#: Seconds the ``linger`` fault holds back the end of a finished stream.
LINGER = 0.3
#: Seconds between events of the ``slow`` fault.
SLOW = 0.05
#: Relay's limit on an upstream answer (relay.upstream.exchange.MAX_UPSTREAM_BODY).
MAX_UPSTREAM_BODY = 64 * 1024 * 1024

#: Faults that break a stream after it started (stream requests only).
MID_STREAM = ("cut", "reset", "cut_event", "malformed", "deep", "stall", "garbage", "no_terminal")
#: Faults answered before any byte of an answer (stream requests and whole answers).
BEFORE = ("html_500", "echo_auth", "unauthorized", "rate_limited", "overloaded", "unavailable", "stall_first")
#: Faults of a whole (non-stream) answer.
WHOLE = ("non_json", "deep", "too_large", "wrong_type")

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error"}
REASONS |= {503: "Service Unavailable", 529: "Overloaded"}


@attrs.define
class Seen:
    """One request the upstream got."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    dialect: Dialect
    model: str
    stream: bool
    fault: str


@attrs.frozen
class Frame:
    """One event of a stream, as bytes on the wire, with the text it carries and the usage it reports."""

    raw: bytes
    text: str = ""
    #: (input, output) tokens this event reports, if it reports any.
    usage: tuple[int, int] | None = None
    #: The dialect's terminal event (``[DONE]``, ``message_stop``, ``response.completed``, the finish chunk of
    #: a Gemini SSE stream, the ``]`` closing a Gemini array).
    terminal: bool = False
    #: A text event (the ``CUT`` first of them precede a mid-stream fault).
    is_text: bool = False


def fault_of(model: str) -> str:
    """The fault a model name asks for (``ok`` when none)."""
    return model.split("-fault-", 1)[1] if "-fault-" in model else "ok"


def classify(target: str, body: bytes) -> tuple[Dialect, str, bool, bool]:
    """(dialect, model, stream, Gemini streamed over SSE) of a request."""
    path, _, query = target.partition("?")
    if "/models/" in path:
        model, _, method = path.rsplit("/", 1)[1].partition(":")
        return "gemini", model, method == "streamGenerateContent", "alt=sse" in query
    payload = json.loads(body)
    dialect: Dialect = (
        "openai_chat"
        if path.endswith("/chat/completions")
        else "openai_responses"
        if path.endswith("/responses")
        else "anthropic"
    )
    return dialect, payload.get("model", ""), bool(payload.get("stream")), True


# ---- answers of each dialect ----------------------------------------------------------------------------


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "").encode() + b"data: " + text.encode() + b"\n\n"


def chat_frames(model: str, include_usage: bool) -> list[Frame]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        head = {"id": "chatcmpl-f", "object": "chat.completion.chunk", "created": 1, "model": model}
        return {**head, "choices": [choice]}

    frames = [Frame(_sse(chunk({"role": "assistant", "content": ""})))]
    frames += [Frame(_sse(chunk({"content": piece})), text=piece, is_text=True) for piece in PIECES]
    frames.append(Frame(_sse(chunk({}, "stop"))))
    if include_usage:
        usage = {"prompt_tokens": INPUT, "completion_tokens": OUTPUT, "total_tokens": INPUT + OUTPUT}
        done = {"id": "chatcmpl-f", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": []}
        frames.append(Frame(_sse({**done, "usage": usage}), usage=(INPUT, OUTPUT)))
    frames.append(Frame(_sse("[DONE]"), terminal=True))
    return frames


def _responses_usage() -> dict[str, Any]:
    return {
        "input_tokens": INPUT,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": OUTPUT,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": INPUT + OUTPUT,
    }


def _responses_item(status: str, text: str | None) -> dict[str, Any]:
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": []}]
    return {"id": "msg_f", "type": "message", "status": status, "role": "assistant", "content": content}


def _response(model: str, status: str, output: list[Any], usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "resp_f",
        "object": "response",
        "created_at": 1,
        "status": status,
        "model": model,
        "output": output,
        "usage": usage,
    }


EMPTY_PART = {"type": "output_text", "text": "", "annotations": []}


def responses_frames(model: str) -> list[Frame]:
    seq = iter(range(1000))

    def event(kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, "sequence_number": next(seq), **fields}, kind)

    part = {"item_id": "msg_f", "output_index": 0, "content_index": 0}
    frames = [
        Frame(event("response.created", response=_response(model, "in_progress", [], None))),
        Frame(event("response.in_progress", response=_response(model, "in_progress", [], None))),
        Frame(event("response.output_item.added", output_index=0, item=_responses_item("in_progress", None))),
        Frame(event("response.content_part.added", **part, part=EMPTY_PART)),
    ]
    frames += [
        Frame(event("response.output_text.delta", **part, delta=piece, logprobs=[]), text=piece, is_text=True)
        for piece in PIECES
    ]
    done_item = _responses_item("completed", TEXT)
    frames += [
        Frame(event("response.output_text.done", **part, text=TEXT, logprobs=[])),
        Frame(event("response.content_part.done", **part, part=done_item["content"][0])),
        Frame(event("response.output_item.done", output_index=0, item=done_item)),
        Frame(
            event("response.completed", response=_response(model, "completed", [done_item], _responses_usage())),
            usage=(INPUT, OUTPUT),
            terminal=True,
        ),
    ]
    return frames


def anthropic_frames(model: str) -> list[Frame]:
    start_usage = {
        "input_tokens": INPUT,
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    message = {
        "id": "msg_f",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    frames = [
        Frame(_sse({"type": "message_start", "message": message}, "message_start"), usage=(INPUT, 1)),
        Frame(
            _sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            )
        ),
        Frame(_sse({"type": "ping"}, "ping")),
    ]
    frames += [
        Frame(
            _sse(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                "content_block_delta",
            ),
            text=piece,
            is_text=True,
        )
        for piece in PIECES
    ]
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": OUTPUT},
    }
    frames += [
        Frame(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop")),
        Frame(_sse(delta, "message_delta"), usage=(INPUT, OUTPUT)),
        Frame(_sse({"type": "message_stop"}, "message_stop"), terminal=True),
    ]
    return frames


def _gemini_chunk(model: str, piece: str, finish: bool = False) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}
    chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "r_f"}
    if finish:
        candidate["finishReason"] = "STOP"
        chunk["usageMetadata"] = {
            "promptTokenCount": INPUT,
            "candidatesTokenCount": OUTPUT,
            "totalTokenCount": INPUT + OUTPUT,
        }
    return chunk


def gemini_frames(model: str, sse: bool) -> list[Frame]:
    """Gemini's chunks, the last with the finish reason and the usage; as SSE frames, or as the elements of a
    JSON array (``[`` before the first, ``,\\r\\n`` between, ``]`` after the last: a frame of its own)."""
    chunks = [_gemini_chunk(model, piece, finish=i == len(PIECES) - 1) for i, piece in enumerate(PIECES)]
    frames = []
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        usage = (INPUT, OUTPUT) if last else None
        if sse:
            frames.append(Frame(_sse(chunk), text=PIECES[i], usage=usage, terminal=last, is_text=not last))
        else:
            lead = b"[" if i == 0 else b",\r\n"
            frames.append(Frame(lead + json.dumps(chunk).encode(), text=PIECES[i], usage=usage, is_text=not last))
    if not sse:
        frames.append(Frame(b"]", terminal=True))
    return frames


def stream_frames(dialect: Dialect, model: str, *, sse: bool = True, include_usage: bool = True) -> list[Frame]:
    """A whole, well-formed stream of ``dialect``."""
    if dialect == "openai_chat":
        return chat_frames(model, include_usage)
    if dialect == "openai_responses":
        return responses_frames(model)
    if dialect == "anthropic":
        return anthropic_frames(model)
    return gemini_frames(model, sse)


def whole_answer(dialect: Dialect, model: str) -> dict[str, Any]:
    """A whole, well-formed (non-stream) answer of ``dialect``."""
    if dialect == "openai_chat":
        message = {"role": "assistant", "content": TEXT}
        return {
            "id": "chatcmpl-f",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": INPUT, "completion_tokens": OUTPUT, "total_tokens": INPUT + OUTPUT},
        }
    if dialect == "openai_responses":
        return _response(model, "completed", [_responses_item("completed", TEXT)], _responses_usage())
    if dialect == "anthropic":
        return {
            "id": "msg_f",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": TEXT}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": INPUT, "output_tokens": OUTPUT},
        }
    return _gemini_chunk(model, TEXT, finish=True)


def error_body(dialect: Dialect, status: int, message: str) -> dict[str, Any]:
    """An error answer in ``dialect``'s own shape."""
    if dialect == "anthropic":
        kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}.get(status)
        return {"type": "error", "error": {"type": kind or "overloaded_error", "message": message}}
    if dialect == "gemini":
        rpc = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED"}.get(status, "UNAVAILABLE")
        return {"error": {"code": status, "message": message, "status": rpc}}
    code = {400: "invalid_request", 401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status, "overloaded")
    return {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}


HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head><body><center><h1>"
    + UPSTREAM_TEXT.encode()
    + b"</h1></center><hr><center>nginx/1.25.3</center></body></html>"
)


def deep_json(depth: int = 5000) -> bytes:
    """A JSON object nested ``depth`` deep: valid by the grammar, beyond every parser's recursion limit."""
    return b'{"candidates":' + b"[" * depth + b"]" * depth + b"}"


# ---- the server -------------------------------------------------------------------------------------------


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join([*lines, "connection: close"]) + "\r\n\r\n").encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


END = b"0\r\n\r\n"


class FaultUpstream:
    """The server: ``url`` once started; every request it got in ``seen``."""

    def __init__(self) -> None:
        self.port = 0
        self.seen: list[Seen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        try:
            seen = await self._read(stream)
            if seen is not None:
                self.seen.append(seen)
                reset = await self._answer(stream, seen)
                if reset:
                    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            pass
        finally:
            await stream.aclose()

    async def _read(self, stream: trio.SocketStream) -> Seen | None:
        conn = h11.Connection(h11.SERVER)
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return None
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        assert head is not None
        target = head.target.decode()
        dialect, model, stream_flag, _ = classify(target, bytes(body))
        headers = {name.decode(): value.decode() for name, value in head.headers}
        return Seen(head.method.decode(), target, headers, bytes(body), dialect, model, stream_flag, fault_of(model))

    async def _answer(self, out: trio.SocketStream, seen: Seen) -> bool:
        """Answer ``seen`` with its fault; whether the connection is to be reset rather than closed."""
        fault = seen.fault
        dialect = seen.dialect
        if fault == "stall_first":
            await trio.sleep(STALL)
            return False
        status = {"html_500": 500, "echo_auth": 400, "unauthorized": 401, "rate_limited": 429}.get(fault)
        status = status or {"overloaded": 529, "unavailable": 503}.get(fault)
        if fault == "html_500":
            await self._whole(out, 500, HTML_PAGE, "text/html")
            return False
        if status is not None:
            credential = seen.headers.get("authorization") or seen.headers.get("x-api-key") or ""
            credential = credential or seen.headers.get("x-goog-api-key", "")
            message = f"{UPSTREAM_TEXT}: Incorrect API key provided: {credential}"
            extra = [("retry-after", "7")] if fault == "rate_limited" else []
            body = json.dumps(error_body(dialect, status, message)).encode()
            await self._whole(out, status, body, "application/json", extra)
            return False
        if not seen.stream:
            return await self._whole_answer(out, seen)
        return await self._stream(out, seen)

    async def _whole(
        self,
        out: trio.SocketStream,
        status: int,
        body: bytes,
        content_type: str,
        extra: Sequence[tuple[str, str]] = (),
    ) -> None:
        headers = [("content-type", content_type), ("content-length", str(len(body))), *extra]
        await out.send_all(_head(status, headers) + body)

    async def _whole_answer(self, out: trio.SocketStream, seen: Seen) -> bool:
        fault = seen.fault
        if fault == "non_json":
            await self._whole(out, 200, HTML_PAGE, "application/json")
        elif fault == "deep":
            await self._whole(out, 200, deep_json(), "application/json")
        elif fault == "too_large":
            body = json.dumps(whole_answer(seen.dialect, seen.model)).encode()
            blanks = MAX_UPSTREAM_BODY + 1
            await out.send_all(_head(200, [("content-type", "application/json"), ("content-length", str(blanks))]))
            block = b" " * (1 << 20)
            sent = 0
            while sent < blanks - len(body):
                piece = block[: blanks - len(body) - sent]
                await out.send_all(piece)
                sent += len(piece)
            await out.send_all(body[: blanks - sent])
        else:
            kind = "text/html" if fault == "wrong_type" else "application/json"
            await self._whole(out, 200, json.dumps(whole_answer(seen.dialect, seen.model)).encode(), kind)
        return False

    async def _stream(self, out: trio.SocketStream, seen: Seen) -> bool:
        fault = seen.fault
        sse = "alt=sse" in seen.target or seen.dialect != "gemini"
        include_usage = True
        if seen.dialect == "openai_chat":
            options = json.loads(seen.body).get("stream_options") or {}
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
        frames = stream_frames(seen.dialect, seen.model, sse=sse, include_usage=include_usage)
        content_type = "text/event-stream" if sse else "application/json"
        if fault == "wrong_type":
            content_type = "text/plain"
        await out.send_all(_head(200, [("content-type", content_type), ("transfer-encoding", "chunked")]))
        if fault == "no_terminal":
            for frame in frames:
                if not frame.terminal:
                    await out.send_all(_chunk(frame.raw))
            await out.send_all(END)
            return False
        if fault in MID_STREAM:
            return await self._broken(out, frames, fault, sse)
        for frame in frames:
            await out.send_all(_chunk(frame.raw))
            if fault == "slow":
                await trio.sleep(SLOW)
        if fault == "linger":
            await trio.sleep(LINGER)
        await out.send_all(END)
        return False

    async def _broken(self, out: trio.SocketStream, frames: list[Frame], fault: str, sse: bool) -> bool:
        """The frames up to the ``CUT``-th text event, then ``fault``; whether to reset the connection."""
        texts = 0
        index = 0
        while texts < CUT:
            frame = frames[index]
            await out.send_all(_chunk(frame.raw))
            texts += frame.is_text
            index += 1
        rest = frames[index:]
        await trio.sleep(0.01)  # the events before the fault reach Relay (and its client) first
        if fault in ("cut", "reset"):
            return fault == "reset"
        if fault == "cut_event":
            await out.send_all(_chunk(rest[0].raw[: len(rest[0].raw) // 2]))
            return False
        if fault == "stall":
            await trio.sleep(STALL)
            return False
        if fault == "garbage":
            await out.send_all(b"zz-not-a-chunk-size\r\n" + rest[0].raw + b"\r\n")
            return False
        bad = b'{"candidates": [{oops}], "choices": [{oops}]}' if fault == "malformed" else deep_json()
        lead = b"" if sse else b",\r\n"
        if sse:
            event = rest[0].raw.split(b"\n", 1)[0] + b"\n" if rest[0].raw.startswith(b"event:") else b""
            await out.send_all(_chunk(event + b"data: " + bad + b"\n\n"))
        else:
            await out.send_all(_chunk(lead + bad))
        for frame in rest:
            await out.send_all(_chunk(frame.raw))
        await out.send_all(END)
        return False


@asynccontextmanager
async def fault_upstream() -> AsyncIterator[FaultUpstream]:
    """The fault-injecting upstream, served in this task's nursery for the body of the ``async with``."""
    upstream = FaultUpstream()
    async with trio.open_nursery() as nursery:
        await nursery.start(upstream.serve)
        try:
            yield upstream
        finally:
            nursery.cancel_scope.cancel()

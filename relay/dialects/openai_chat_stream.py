"""OpenAI Chat Completions answers: responses, streams, usage and errors, to and from the IR (sans-IO).

The request half of the codec is ``openai_chat``, which re-exports every public name of this module
(import them from there). Choices made on the users' behalf (docs/conversions/openai_chat.md):

- Only choice 0 is read: ``n`` > 1 is refused when a request is decoded, so no other choice comes.
- ``refusal`` text is read as text (the distinction is lost); ``annotations``, ``logprobs``, ``audio``
  and ``service_tier`` of an upstream answer are not kept.
- Finish reason: ``tool_calls`` whenever calls were emitted and the reason was ``stop`` (or none);
  ``length`` and ``content_filter`` are kept as they are (a call cut by ``length`` is never reported
  as ``tool_calls``); ``tool_calls`` with no call becomes ``stop``; unknown values become ``stop``. In a
  stream the first non-null ``finish_reason`` wins: a later one never overwrites it.
- Reasoning is read from ``reasoning_content`` (DeepSeek, vLLM) or ``reasoning`` (OpenRouter) and
  written as ``reasoning_content``; reasoning signatures and redacted reasoning (other dialects'
  proofs) are not sent to Chat clients.
- Usage: ``prompt_tokens_details.cached_tokens`` (DeepSeek's ``prompt_cache_hit_tokens`` when absent),
  ``cache_write_tokens`` and ``completion_tokens_details.reasoning_tokens`` are read and written.
- Tool calls without an id (some OpenAI-compatible servers) get ``common.derived_id(answer id, n, "call_")``.
- Stream decoding: the open block ends when another starts, and at the finish reason. An argument
  fragment for a tool call whose block has already ended (an upstream interleaving parallel calls)
  ends the stream with ``StreamError(502, code="upstream_interleaved")``: IR blocks never interleave.
  ``Finish`` is emitted at ``data: [DONE]`` (the usage chunk comes between the two); a stream without
  ``[DONE]`` is truncated.
- Stream encoding: the ``Start`` event gives id (``chatcmpl-`` prefixed) and ``created``, the client's
  request gives ``model`` and ``stream_options.include_usage``. ``Finish`` writes the finishing chunk,
  the usage chunk (zeros when the usage is unknown) when asked for, and ``data: [DONE]`` at once.
- Upstream errors keep their status, message, ``param`` and ``code`` (the ``type`` when there is no code).
"""

from __future__ import annotations

from typing import Any

import orjson

from relay.dialects import ir
from relay.dialects.common import bad_upstream, derived_id, error_text, load_object, prefixed, upstream_error
from relay.errors import ErrorKind, RelayError, kind_for_status
from relay.http.messages import Headers
from relay.http.sse import Parser, one_frame

COMPLETION_PREFIX = "chatcmpl-"

# ---- errors ------------------------------------------------------------------------------------------

_TYPES: dict[ErrorKind, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "method_not_allowed": "invalid_request_error",
    "request_timeout": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "upstream": "upstream_error",
    "timeout": "timeout_error",
    "internal": "server_error",
}

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


def error_payload(error: RelayError) -> dict[str, Any]:
    return {"error": {"message": error.message, "type": _TYPES[error.kind], "param": error.param, "code": error.code}}


def encode_error(error: RelayError) -> tuple[int, Headers, bytes]:
    headers = ((b"content-type", b"application/json"), *error.headers)
    return error.status, headers, orjson.dumps(error_payload(error))


def encode_stream_error(error: RelayError) -> bytes:
    """The last frame of a stream that failed after it started; the SDK raises on it."""
    return b"data: " + orjson.dumps(error_payload(error)) + b"\n\n"


def is_stream_error(data: bytes | None) -> bool:
    """Whether a stream event's data is a mid-stream error (``{"error": …}``), as OpenAI sends them."""
    if not data or b'"error"' not in data[:16]:
        return False  # the usual chunk starts {"id":"chatcmpl-…: no parsing on the way
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(payload, dict) and "error" in payload and "choices" not in payload


def is_error_body(body: bytes) -> bool:
    """Whether an upstream error body already has the OpenAI shape (then it is passed on as is)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    error = payload.get("error") if isinstance(payload, dict) else None
    return isinstance(error, dict) and isinstance(error.get("message"), str)


def complete_error_body(body: bytes) -> bytes:
    """An OpenAI-shaped error body with all four of message, type, param and code (unchanged when it has them)."""
    payload = orjson.loads(body)
    error = payload["error"]
    defaults = {"type": "upstream_error", "param": None, "code": None}
    if defaults.keys() <= error.keys():
        return body
    for name, value in defaults.items():
        error.setdefault(name, value)
    return orjson.dumps(payload)


def _error_fields(error: Any) -> tuple[str | None, str | None, str | None]:
    """(message, code, param) of an ``error`` object of the OpenAI shape, or of Gemini's (``status``)."""
    if isinstance(error, str):
        return error, None, None
    if not isinstance(error, dict):
        return None, None, None
    message = error.get("message")
    code = next((error[k] for k in ("code", "status", "type") if isinstance(error.get(k), str)), None)
    param = error.get("param")
    return (message if isinstance(message, str) else None), code, (param if isinstance(param, str) else None)


def decode_error(status: int, body: bytes) -> RelayError:
    """An upstream's error answer → ``RelayError``: its status (502 if not an error), message, code and param."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload:  # some servers wrap the error object in an array
        payload = payload[0]
    message, code, param = _error_fields(payload.get("error")) if isinstance(payload, dict) else (None, None, None)
    error = upstream_error(status, message or error_text(body), code)
    error.param = param
    return error


# ---- usage and finish reasons ------------------------------------------------------------------------

_FINISH: dict[str, ir.FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def finish_reason(raw: Any, called: bool) -> ir.FinishReason:
    """A finish reason made consistent with whether tool calls were emitted (``length`` stays ``length``)."""
    reason = _FINISH.get(raw, "stop") if isinstance(raw, str) else "stop"
    if called and reason == "stop":
        return "tool_calls"
    if not called and reason == "tool_calls":
        return "stop"
    return reason


def _count(source: Any, name: str) -> int:
    value = source.get(name) if isinstance(source, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def decode_usage(raw: Any) -> ir.Usage | None:
    """A ``usage`` object → ``ir.Usage`` (None when there is none)."""
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens_details")
    return ir.Usage(
        input_tokens=_count(raw, "prompt_tokens"),
        output_tokens=_count(raw, "completion_tokens"),
        cached_tokens=_count(prompt, "cached_tokens") or _count(raw, "prompt_cache_hit_tokens"),
        cache_write_tokens=_count(prompt, "cache_write_tokens"),
        reasoning_tokens=_count(raw.get("completion_tokens_details"), "reasoning_tokens"),
    )


def encode_usage(usage: ir.Usage) -> dict[str, Any]:
    prompt: dict[str, int] = {"cached_tokens": usage.cached_tokens}
    if usage.cache_write_tokens:
        prompt["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": prompt,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


class UsageReader:
    """Usage sniffed on the passthrough path: ``feed`` each stream event's data, or a whole body.

    Data without a ``"usage"`` key, or whose usage is null, costs a scan or two and no parse.
    The last usage that is not null wins.
    """

    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage: ir.Usage | None = None

    def feed(self, data: bytes) -> None:
        if b'"usage"' not in data:
            return
        # A key is followed by a colon (a string value "usage" never is; escaped quotes never match).
        keys = data.count(b'"usage":')
        if keys == 0 and b'"usage" ' not in data:
            return
        if keys and keys == data.count(b'"usage":null') + data.count(b'"usage": null'):
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        usage = decode_usage(payload.get("usage")) if isinstance(payload, dict) else None
        if usage is not None:
            self.usage = usage


def include_usage(req: ir.Request) -> bool:
    """Whether a client's streaming request asked for the usage chunk (``stream_options.include_usage``)."""
    options = req.extra.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


# ---- non-streaming responses -------------------------------------------------------------------------


def _reasoning_text(source: dict[str, Any]) -> str | None:
    for key in ("reasoning_content", "reasoning"):
        value = source.get(key)
        if isinstance(value, str):
            return value
    return None


def _decode_calls(raw: Any, answer_id: str) -> list[ir.ToolCall]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_upstream("the upstream answered a message whose tool_calls is not an array")
    calls = []
    for n, call in enumerate(raw):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_upstream(f"the upstream answered a malformed tool call (tool_calls[{n}])")
        call_id = call.get("id")
        arguments = function.get("arguments")
        calls.append(
            ir.ToolCall(
                id=call_id if isinstance(call_id, str) and call_id else derived_id(answer_id, n, "call_"),
                name=function["name"],
                arguments=arguments if isinstance(arguments, str) and arguments else "{}",
            )
        )
    return calls


def decode_response(body: bytes) -> ir.Response:
    """An upstream's ``chat.completion`` body → ``ir.Response``; a 502 when it is not one."""
    payload = load_object(body, upstream=True)
    if "error" in payload and "choices" not in payload:
        raise decode_error(502, body)
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise bad_upstream("the upstream answered a chat completion without choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise bad_upstream("the upstream answered a chat completion without a message")
    answer_id = payload.get("id") if isinstance(payload.get("id"), str) else ""
    parts: list[ir.Reasoning | ir.Text | ir.ToolCall] = []
    reasoning = _reasoning_text(message)
    if reasoning:
        parts.append(ir.Reasoning(reasoning, dialect="openai_chat"))
    for key in ("content", "refusal"):
        if isinstance(message.get(key), str) and message[key]:
            parts.append(ir.Text(message[key]))
    calls = _decode_calls(message.get("tool_calls"), answer_id)
    parts.extend(calls)
    created = payload.get("created")
    return ir.Response(
        id=answer_id,
        model=str(payload.get("model") or ""),
        parts=tuple(parts),
        finish_reason=finish_reason(choice.get("finish_reason"), bool(calls)),
        usage=decode_usage(payload.get("usage")),
        created=created if isinstance(created, int) and not isinstance(created, bool) else 0,
    )


def encode_response(resp: ir.Response, req: ir.Request) -> bytes:
    """``ir.Response`` → a ``chat.completion`` body for the client's request ``req`` (its model name)."""
    text = "".join(p.text for p in resp.parts if isinstance(p, ir.Text))
    calls = [
        {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
        for p in resp.parts
        if isinstance(p, ir.ToolCall)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    reasoning = "".join(p.text for p in resp.parts if isinstance(p, ir.Reasoning))
    if reasoning:
        message["reasoning_content"] = reasoning
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason(resp.finish_reason, bool(calls)),
    }
    payload: dict[str, Any] = {
        "id": prefixed(resp.id, COMPLETION_PREFIX),
        "object": "chat.completion",
        "created": resp.created,
        "model": req.model,
        "system_fingerprint": None,
        "choices": [choice],
    }
    if resp.usage is not None:
        payload["usage"] = encode_usage(resp.usage)
    return orjson.dumps(payload)


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

    def feed(self, chunk: bytes) -> list[ir.Event]:
        events: list[ir.Event] = []
        parser = self._parser
        one = one_frame(chunk) if not parser.pending else None
        if one is not None:  # the usual chunk: one whole frame
            if one[1] and not self._done:
                self._frame(one[1], events)
            return events
        for sse in parser.feed(chunk):
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
        message, code, _ = _error_fields(error)
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


class StreamEncoder:
    """``ir.Event`` → Chat Completions SSE bytes, each event's frames at once (nothing is held back).

    ``req`` is the client's request: its ``model`` is the one the chunks carry, and its
    ``stream_options.include_usage`` asks for the usage chunk. Id and ``created`` come from ``Start``.
    """

    __slots__ = (
        "_calls",
        "_delta_end",
        "_ended",
        "_include_usage",
        "_meta",
        "_model",
        "_reasoning_head",
        "_tail",
        "_text_head",
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
                out += self._reasoning_head + orjson.dumps(event.text) + self._delta_end
        elif isinstance(event, ir.ToolCallStart):
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
            out += self._finish(event)
        return out

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

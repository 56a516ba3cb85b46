"""What a dialect's real API would send: each output checked against the official SDKs' types and grammar.

``problems(dialect, kind, data)`` returns a list of readable complaints (empty: the bytes are what that
API would send). ``kind`` is ``"request"``, ``"body"`` or ``"stream"``. Responses and stream events
are parsed with the SDKs' pydantic models (openai ``ChatCompletion``/``ChatCompletionChunk``/
``Response``/``ResponseStreamEvent``, anthropic ``Message``/``RawMessageStreamEvent``, google-genai
``GenerateContentResponse``, which forbids unknown keys); requests with a strict walk of the SDKs'
request ``TypedDict``s (unknown keys and missing required keys are complaints). Stream grammars
(each dialect's stream grammar) are checked on top: order, ids, indices, sequence numbers, terminators.
"""

from __future__ import annotations

import collections.abc
import functools
import itertools
import types
import typing
from typing import Any

import orjson
import pydantic
import typing_extensions

from relay.http.sse import Parser

# ---- SSE ---------------------------------------------------------------------------------------------


def sse_events(data: bytes) -> tuple[list[tuple[str | None, bytes | None, bytes]], bytes]:
    """``(event name, data, raw)`` of each event, and the bytes left after the last blank line."""
    parser = Parser()
    events = parser.feed(data)
    rest = data[sum(len(e.raw) for e in events) :]
    return [(e.name.decode() if e.name else None, e.data, e.raw) for e in events], rest


def _json(data: bytes | None, where: str, out: list[str]) -> Any:
    try:
        return orjson.loads(data or b"")
    except orjson.JSONDecodeError as exc:
        out.append(f"{where}: data is not JSON ({exc})")
        return None


def _validate(model: Any, value: Any, where: str, out: list[str]) -> Any:
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as exc:
        out.append(f"{where}: {exc}")
        return None


@functools.cache
def _event_models(union: Any) -> dict[str, type[pydantic.BaseModel]]:
    """The models of a discriminated union of stream events, by their ``type`` literal."""
    union = _strip(union)
    models: dict[str, type[pydantic.BaseModel]] = {}
    for model in typing_extensions.get_args(union):
        for literal in typing_extensions.get_args(model.model_fields["type"].annotation):
            models[literal] = model
    return models


def _validate_event(union: Any, value: dict[str, Any], where: str, out: list[str]) -> Any:
    """``value`` as the union's member its ``type`` names (one readable error, not one per member)."""
    model = _event_models(union).get(value.get("type"))  # type: ignore[arg-type]
    if model is None:
        out.append(f"{where}: unknown event type {value.get('type')!r}")
        return None
    return _validate(model, value, where, out)


# ---- strict TypedDict walk (requests) -------------------------------------------------------------------

_SEQUENCES = {list, collections.abc.Iterable, collections.abc.Sequence}


_WRAPPERS = {typing.Required, typing.NotRequired, typing_extensions.Required, typing_extensions.NotRequired}
_WRAPPERS.add(typing_extensions.ReadOnly)


@functools.cache
def _hints(td: type) -> dict[str, Any]:
    return typing_extensions.get_type_hints(td, include_extras=True)


def _strip(tp: Any) -> Any:
    while True:
        origin = typing_extensions.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing_extensions.get_args(tp)[0]
        elif origin in _WRAPPERS:
            tp = typing_extensions.get_args(tp)[0]
        else:
            return tp


def check_typed(value: Any, tp: Any, path: str, allow: frozenset[str] = frozenset()) -> list[str]:
    """Complaints about ``value`` as an instance of the SDK annotation ``tp`` (TypedDicts strictly)."""
    tp = _strip(tp)
    if tp is Any or tp is object:
        return []
    if tp is type(None) or tp is None:
        return [] if value is None else [f"{path}: expected null, got {value!r:.60}"]
    origin = typing_extensions.get_origin(tp)
    args = typing_extensions.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        best: list[str] | None = None
        for alt in args:
            errors = check_typed(value, alt, path, allow)
            if not errors:
                return []
            if _plausible(value, alt) and (best is None or len(errors) < len(best)):
                best = errors
        return best or [f"{path}: {value!r:.80} matches none of {tp}"]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {args}"]
    if typing_extensions.is_typeddict(tp):
        return _check_dict(value, tp, path, allow)
    if origin in (dict, collections.abc.Mapping) or tp is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        return [e for k, v in value.items() for e in (check_typed(v, args[1], f"{path}.{k}") if args else [])]
    if origin in _SEQUENCES or "SequenceNotStr" in str(tp):
        if not isinstance(value, list):
            return [f"{path}: expected an array, got {value!r:.60}"]
        return [e for i, v in enumerate(value) for e in check_typed(v, args[0] if args else Any, f"{path}[{i}]")]
    if tp is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean"]
    if tp is int:
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{path}: expected an integer"]
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number"]
    if tp is str:
        return [] if isinstance(value, str) else [f"{path}: expected a string, got {value!r:.60}"]
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        try:
            tp.model_validate(value)
        except pydantic.ValidationError as exc:
            return [f"{path}: {exc}"]
        return []
    return []  # anything else (file types, protocols): not checked


def _plausible(value: Any, tp: Any) -> bool:
    """Whether ``value`` looks meant as ``tp`` (a TypedDict whose ``type`` literal matches, say)."""
    tp = _strip(tp)
    if typing_extensions.is_typeddict(tp):
        if not isinstance(value, dict):
            return False
        hint = _hints(tp).get("type")
        if hint is not None and typing_extensions.get_origin(_strip(hint)) is typing.Literal and "type" in value:
            return value["type"] in typing_extensions.get_args(_strip(hint))
        role = _hints(tp).get("role")
        if role is not None and typing_extensions.get_origin(_strip(role)) is typing.Literal and "role" in value:
            return value["role"] in typing_extensions.get_args(_strip(role))
        return True
    return True


def _check_dict(value: Any, td: type, path: str, allow: frozenset[str]) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object, got {value!r:.60}"]
    hints = _hints(td)
    errors = [f"{path}: unknown key {key!r}" for key in value if key not in hints and key not in allow]
    errors += [f"{path}: missing required key {key!r}" for key in td.__required_keys__ if key not in value]
    for key, item in value.items():
        if key in hints:
            errors += check_typed(item, hints[key], f"{path}.{key}")
    return errors


# ---- OpenAI Chat -----------------------------------------------------------------------------------------


def _chat_request(body: dict[str, Any], out: list[str]) -> None:
    from openai.types.chat import completion_create_params as p

    td = p.CompletionCreateParamsStreaming if body.get("stream") else p.CompletionCreateParamsNonStreaming
    out += check_typed(body, td, "body")


def _chat_body(body: Any, out: list[str]) -> None:
    from openai.types.chat import ChatCompletion

    if _validate(ChatCompletion, body, "body", out) is not None and body.get("object") != "chat.completion":
        out.append("body.object must be chat.completion")


def _chat_stream(data: bytes, out: list[str]) -> None:
    from openai.types.chat import ChatCompletionChunk

    events, rest = sse_events(data)
    if rest:
        out.append(f"bytes after the last event: {rest!r:.80}")
    ids, finishes, usage_seen, ended, errored = set(), [], False, False, False
    for n, (name, raw, _) in enumerate(events):
        where = f"event {n}"
        if name is not None:
            out.append(f"{where}: Chat streams have no event: lines ({name})")
        if ended or errored:
            out.append(f"{where}: comes after the end of the stream")
        if raw == b"[DONE]":
            ended = True
            continue
        payload = _json(raw, where, out)
        if not isinstance(payload, dict):
            continue
        if "error" in payload:
            errored = True
            error = payload["error"]
            if not isinstance(error, dict) or not isinstance(error.get("message"), str):
                out.append(f"{where}: an error frame needs error.message")
            continue
        chunk = _validate(ChatCompletionChunk, payload, where, out)
        if chunk is None:
            continue
        ids.add(chunk.id)
        if n == 0 and (not chunk.choices or chunk.choices[0].delta.role != "assistant"):
            out.append("the first chunk must carry delta.role assistant")
        for choice in chunk.choices:
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
            for call in choice.delta.tool_calls or ():
                if call.id is None and (call.type is not None or (call.function and call.function.name)):
                    out.append(f"{where}: a continuation tool-call delta carries type/name without id")
        if chunk.usage is not None:
            usage_seen = True
            if chunk.choices:
                out.append(f"{where}: the usage chunk must have choices []")
    if len(ids) > 1:
        out.append(f"chunks carry different ids: {sorted(ids)}")
    if errored:
        return
    if not ended:
        out.append("the stream does not end with data: [DONE]")
    if len(finishes) != 1:
        out.append(f"expected one finish_reason, got {finishes}")
    if not usage_seen:
        out.append("no usage chunk (the client asked for include_usage)")


# ---- OpenAI Responses ------------------------------------------------------------------------------------

_TERMINAL = {"response.completed", "response.incomplete", "response.failed", "error"}


def _responses_request(body: dict[str, Any], out: list[str]) -> None:
    from openai.types.responses import response_create_params as p

    td = p.ResponseCreateParamsStreaming if body.get("stream") else p.ResponseCreateParamsNonStreaming
    out += check_typed(body, td, "body")


def _responses_body(body: Any, out: list[str]) -> None:
    from openai.types.responses import Response

    response = _validate(Response, body, "body", out)
    if response is not None:
        _responses_ids(response, "body", out)


def _responses_ids(response: Any, where: str, out: list[str]) -> None:
    if not response.id.startswith("resp_"):
        out.append(f"{where}: response id {response.id!r} lacks resp_")
    prefixes = {"message": "msg_", "function_call": "fc_", "reasoning": "rs_"}
    for item in response.output:
        prefix = prefixes.get(item.type)
        if prefix and not (getattr(item, "id", None) or "").startswith(prefix):
            out.append(f"{where}: {item.type} item id {getattr(item, 'id', None)!r} lacks {prefix}")
        if item.type == "function_call" and not item.call_id:
            out.append(f"{where}: function_call item without call_id")


def _responses_stream(data: bytes, out: list[str]) -> None:
    from openai.types.responses import ResponseStreamEvent

    events, rest = sse_events(data)
    if rest:
        out.append(f"bytes after the last event: {rest!r:.80}")
    open_items: dict[int, str] = {}
    open_parts: set[tuple[int, int]] = set()
    ended = False
    last = None
    for n, (name, raw, _) in enumerate(events):
        where = f"event {n}"
        payload = _json(raw, where, out)
        if not isinstance(payload, dict):
            continue
        kind = payload.get("type")
        if name != kind:
            out.append(f"{where}: event: {name!r} but data.type {kind!r}")
        if payload.get("sequence_number") != n:
            out.append(f"{where}: sequence_number {payload.get('sequence_number')!r}, expected {n}")
        if ended and not (kind == "error" and last == "response.failed"):
            # response.failed then error is Relay's choice (the SDK raises APIError only on the error)
            out.append(f"{where}: {kind} comes after the terminal event")
        last = kind
        event = _validate_event(ResponseStreamEvent, payload, f"{where} ({kind})", out)
        if n == 0 and kind != "response.created":
            out.append("the first event must be response.created")
        if event is None:
            continue
        if kind == "response.output_item.added":
            open_items[event.output_index] = event.item.type
        elif kind == "response.output_item.done":
            if open_items.pop(event.output_index, None) is None:
                out.append(f"{where}: output_item.done for output_index {event.output_index} never added")
        elif kind == "response.content_part.added":
            open_parts.add((event.output_index, event.content_index))
        elif kind == "response.content_part.done":
            open_parts.discard((event.output_index, event.content_index))
        if kind in _TERMINAL:
            ended = True
            if kind != "error":
                _responses_ids(event.response, where, out)
    if not ended:
        out.append("no terminal event (response.completed / incomplete / failed / error)")
    elif events and orjson.loads(events[-1][1] or b"{}").get("type") in ("response.completed", "response.incomplete"):
        if open_items or open_parts:
            out.append(f"items/parts added but never done: {open_items} {open_parts}")


# ---- Anthropic ---------------------------------------------------------------------------------------------

#: Request fields the Messages API accepts that this SDK version's MessageCreateParams no longer lists.
_ANTHROPIC_LEGACY = frozenset({"temperature", "top_p", "top_k"})


def _anthropic_request(body: dict[str, Any], out: list[str]) -> None:
    from anthropic.types import message_create_params as p

    td = p.MessageCreateParamsStreaming if body.get("stream") else p.MessageCreateParamsNonStreaming
    out += check_typed(body, td, "body", _ANTHROPIC_LEGACY)
    for i, message in enumerate(body.get("messages") or ()):
        content = message.get("content")
        if content == "" or content == []:
            out.append(f"body.messages[{i}]: empty content")
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if block.get("type") == "text" and not block.get("text"):
                out.append(f"body.messages[{i}].content[{j}]: empty text block")
    roles = [m.get("role") for m in body.get("messages") or ()]
    if any(a == b for a, b in itertools.pairwise(roles)):
        out.append(f"consecutive messages with the same role: {roles}")


def _anthropic_body(body: Any, out: list[str]) -> None:
    from anthropic.types import Message

    message = _validate(Message, body, "body", out)
    if message is not None and not message.id.startswith("msg_"):
        out.append(f"body.id {message.id!r} lacks msg_")


def _anthropic_stream(data: bytes, out: list[str]) -> None:
    from anthropic.types import RawMessageStreamEvent

    events, rest = sse_events(data)
    if rest:
        out.append(f"bytes after the last event: {rest!r:.80}")
    expected_index, open_index, ended, kinds = 0, None, False, []
    for n, (name, raw, _) in enumerate(events):
        where = f"event {n}"
        payload = _json(raw, where, out)
        if not isinstance(payload, dict):
            continue
        kind = payload.get("type")
        kinds.append(kind)
        if name != kind:
            out.append(f"{where}: event: {name!r} but data.type {kind!r} (the SDK skips events without event:)")
        if ended:
            out.append(f"{where}: {kind} after the end of the stream")
        if kind == "ping":
            continue
        if kind == "error":
            ended = True
            error = payload.get("error")
            if not isinstance(error, dict) or not {"type", "message"} <= error.keys():
                out.append(f"{where}: an error event needs error.type and error.message")
            continue
        event = _validate_event(RawMessageStreamEvent, payload, f"{where} ({kind})", out)
        if event is None:
            continue
        if n == 0 and kind != "message_start":
            out.append("the first event must be message_start")
        if kind == "message_start" and not event.message.id.startswith("msg_"):
            out.append(f"{where}: message id {event.message.id!r} lacks msg_")
        if kind == "content_block_start":
            if open_index is not None or event.index != expected_index:
                out.append(f"{where}: block {event.index} starts (open {open_index}, expected {expected_index})")
            open_index = event.index
            expected_index = event.index + 1
        elif kind == "content_block_delta" and event.index != open_index:
            out.append(f"{where}: delta for block {event.index}, open is {open_index}")
        elif kind == "content_block_stop":
            if event.index != open_index:
                out.append(f"{where}: stop for block {event.index}, open is {open_index}")
            open_index = None
        elif kind == "message_delta" and open_index is not None:
            out.append(f"{where}: message_delta while block {open_index} is open")
        elif kind == "message_stop":
            ended = True
            if "message_delta" not in kinds:
                out.append("message_stop without a message_delta")
    if not ended:
        out.append("the stream ends without message_stop or error")


# ---- Gemini -------------------------------------------------------------------------------------------------

_GEMINI_REQUEST = {
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
    "labels",
}


def _gemini_request(body: dict[str, Any], out: list[str]) -> None:
    from google.genai import types

    for key in body:
        if key not in _GEMINI_REQUEST:
            out.append(f"body: unknown key {key!r}")
    checks = {
        "systemInstruction": types.Content,
        "generationConfig": types.GenerationConfig,
        "toolConfig": types.ToolConfig,
    }
    for key, model in checks.items():
        if key in body:
            _validate_json(model, body[key], f"body.{key}", out)
    for i, content in enumerate(body.get("contents") or ()):
        _validate_json(types.Content, content, f"body.contents[{i}]", out)
        if content.get("role") not in ("user", "model"):
            out.append(f"body.contents[{i}].role {content.get('role')!r}")
        if not content.get("parts"):
            out.append(f"body.contents[{i}]: no parts")
    for i, tool in enumerate(body.get("tools") or ()):
        _validate_json(types.Tool, tool, f"body.tools[{i}]", out)
    if not body.get("contents"):
        out.append("body.contents is missing or empty")


def _validate_json(model: Any, value: Any, where: str, out: list[str]) -> Any:
    """genai models from JSON text: bytes fields (thoughtSignature, inlineData.data) must be base64."""
    try:
        return model.model_validate_json(orjson.dumps(value))
    except pydantic.ValidationError as exc:
        out.append(f"{where}: {exc}")
        return None


def _gemini_body(body: Any, out: list[str]) -> None:
    from google.genai import types

    _validate_json(types.GenerateContentResponse, body, "body", out)


def _gemini_stream(data: bytes, out: list[str]) -> None:
    from google.genai import types

    events, rest = sse_events(data)
    if rest:
        out.append(f"bytes after the last event: {rest!r:.80}")
    finished = errored = False
    for n, (name, raw, frame) in enumerate(events):
        where = f"event {n}"
        if name is not None:
            out.append(f"{where}: Gemini SSE has no event: lines")
        if not frame.endswith(b"\r\n\r\n"):
            out.append(f"{where}: Gemini frames end with \\r\\n\\r\\n")
        if finished or errored:
            out.append(f"{where}: comes after the last chunk")
        payload = _json(raw, where, out)
        if not isinstance(payload, dict):
            continue
        if "error" in payload:
            errored = True
            error = payload["error"]
            if not isinstance(error, dict) or not {"code", "message", "status"} <= error.keys():
                out.append(f"{where}: an error needs code, message and status")
            continue
        chunk = _validate_json(types.GenerateContentResponse, payload, where, out)
        if chunk is not None and any(c.finish_reason for c in chunk.candidates or ()):
            finished = True
    if not (finished or errored):
        out.append("no chunk carries a finishReason and no error came")


# ---- entry point --------------------------------------------------------------------------------------------

_CHECKS = {
    ("openai_chat", "request"): _chat_request,
    ("openai_chat", "body"): _chat_body,
    ("openai_chat", "stream"): _chat_stream,
    ("openai_responses", "request"): _responses_request,
    ("openai_responses", "body"): _responses_body,
    ("openai_responses", "stream"): _responses_stream,
    ("anthropic", "request"): _anthropic_request,
    ("anthropic", "body"): _anthropic_body,
    ("anthropic", "stream"): _anthropic_stream,
    ("gemini", "request"): _gemini_request,
    ("gemini", "body"): _gemini_body,
    ("gemini", "stream"): _gemini_stream,
}


def problems(dialect: str, kind: str, data: bytes) -> list[str]:
    """What is wrong with ``data`` as a ``kind`` (request / body / stream) of ``dialect``; [] if nothing."""
    out: list[str] = []
    if kind == "stream":
        _CHECKS[dialect, kind](data, out)
        return out
    payload = _json(data, "body", out)
    if isinstance(payload, dict):
        _CHECKS[dialect, kind](payload, out)
    elif not out:
        out.append("the body is not a JSON object")
    return out

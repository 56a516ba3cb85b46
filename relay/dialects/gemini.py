"""Gemini ``generateContent`` / ``streamGenerateContent`` / ``countTokens``: requests, responses, errors.

Sans-IO: bytes in, IR out, and back. The model and the stream flag live in the URL (``path`` builds it);
the stream half (``StreamDecoder``, ``StreamEncoder``, ``ArraySplitter``) lives in ``gemini_stream`` and is
re-exported here. docs/conversions/gemini.md has the tables below in full.

Choices made on the users' behalf:

- Decoding a client request: every key is read in camelCase or snake_case (proto-JSON; the Python SDK
  sends ``parameters_json_schema``, ``thinking_config``…), never inside user data (schemas, ``args``,
  ``response``). Fields with no IR slot go to ``extra`` and are sent again only to a Gemini upstream:
  top-level ones as they are (``safetySettings``, ``cachedContent``, ``labels``…), the rest of
  ``generationConfig`` (``seed``, penalties, ``responseModalities``, a ``responseMimeType`` other than JSON
  or text…), non-function tools (``googleSearch``, ``codeExecution``…) and ``toolConfig.retrievalConfig``.
  ``candidateCount`` > 1, both ``thinkingBudget`` and ``thinkingLevel``, and parts with no IR slot
  (``executableCode``, ``codeExecutionResult``, a ``functionCall`` in a user turn) are a 400.
- ``functionCallingConfig``: AUTO / VALIDATED → auto, NONE → none, ANY → required, ANY with one allowed
  name → named; ANY with several names → required with the tools narrowed to those names (the same
  choice, said in a way every dialect can).
- Function calls without an id get ``derived_id("{contents[i]}/{name}/{args}", n, "call_gemini_")``; a
  ``functionResponse`` without an id takes the id of the oldest unanswered call of its name (its own
  derived id when there is none). A response ``{"result": "<text>"}`` is that text, ``{"error": …}`` an error
  result, anything else the object's JSON text. ``inlineData`` in the SDK's URL-safe base64 is made standard.
  ``image/*`` media become images, other media documents; a ``fileData`` without ``mimeType`` is guessed
  from the URI's extension. ``responseSchema`` and ``parameters`` (Gemini's OpenAPI schema: upper-case
  types, ``nullable``) are turned into JSON Schema; ``parametersJsonSchema``/``responseJsonSchema`` are kept.
- A ``thoughtSignature`` on a text part goes to the reasoning part right before it when that one has no
  signature, else becomes a reasoning part holding only the signature (as the stream decoder does).
- Encoding a request for a Gemini upstream: tool schemas go as ``parametersJsonSchema`` untouched; tool
  names outside ``[A-Za-z0-9_-]{1,64}``, tool-call arguments that are not a JSON object, tool results whose
  tool name is unknown, and a named tool choice that names no tool are a 400. Tool results become
  ``functionResponse`` (first in their user turn): a JSON-object text stays that object, other text is
  ``{"result": text}`` or ``{"error": text}``; their images follow as ``inlineData``/``fileData`` parts.
  Ids this codec derived are never sent (Gemini gave none); other ids are. ``thoughtSignature`` is sent
  back byte-identical only when Gemini made it; a model turn with calls but no Gemini signature gets
  ``skip_thought_signature_validator`` on its first call (Google's documented value for foreign history).
  Reasoning of other dialects is dropped. Consecutive same-role turns are merged; empty text is never
  sent. Images: data → ``inlineData`` (type from the IR, else sniffed, else ``image/jpeg``), ``data:`` URLs
  likewise, other URLs → ``fileData`` (type guessed from the extension, else ``image/jpeg``); ``detail``
  is dropped. A budget is sent as ``thinkingBudget``; an effort alone as ``thinkingLevel`` for Gemini 3+
  models, else as the budget of ``common.EFFORT_BUDGET``; never both. ``parallel_tool_calls``, tool
  ``strict``, the output format's ``name``/``strict`` have no Gemini slot.
- Responses: candidate 0 only; ``modelVersion`` is the client's model name, ``responseId`` the IR id without
  another dialect's prefix. Thoughts are shown as ``thought: true`` parts when the client asked for them;
  answer parts with no IR slot (images, code execution) are dropped. Usage: ``candidatesTokenCount``
  excludes thoughts, the IR's output includes them; a blocked prompt is ``content_filter``.
- Errors: ``{"error": {"code", "message", "status"}}``; an upstream's RPC status is kept as ``code``;
  Gemini's 400 ``API_KEY_INVALID`` is read as 401, ``RetryInfo.retryDelay`` as ``retry-after``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import attrs
import orjson

from relay.dialects import ir
from relay.dialects.common import (
    arguments_object,
    bad_request,
    bad_upstream,
    budget_for,
    derived_id,
    dumps,
    error_text,
    load_object,
    upstream_error,
)
from relay.dialects.gemini_stream import (
    DERIVED_ID_PREFIX,
    ArraySplitter,
    StreamDecoder,
    StreamEncoder,
    call_id,
    error_payload,
    finish_reason,
    finish_to_wire,
    function_call_part,
    response_id,
    sse_frame,
    stream_error,
    usage_from_wire,
    usage_to_wire,
    wire_call_id,
)
from relay.errors import RelayError
from relay.http.messages import Headers

__all__ = [
    "ArraySplitter",
    "StreamDecoder",
    "StreamEncoder",
    "UsageReader",
    "count_path",
    "decode_count_request",
    "decode_count_response",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_count_request",
    "encode_count_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "encode_stream_error",
    "path",
    "rename_model",
]

#: Google's documented thoughtSignature for function calls Gemini did not make (foreign history).
SKIP_SIGNATURE = "skip_thought_signature_validator"
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

# ---- paths -------------------------------------------------------------------------------------------------


def _model_name(model: str) -> str:
    return model if "/" in model else f"models/{model}"


def path(model: str, stream: bool) -> str:
    """The path of a generateContent call under the API version (``/models/{model}:generateContent``)."""
    name = quote(_model_name(model), safe="/")
    return f"/{name}:streamGenerateContent?alt=sse" if stream else f"/{name}:generateContent"


def count_path(model: str) -> str:
    return f"/{quote(_model_name(model), safe='/')}:countTokens"


# ---- errors ------------------------------------------------------------------------------------------------


def encode_error(error: RelayError) -> tuple[int, Headers, bytes]:
    """Relay's error as a Gemini error answer: ``{"error": {"code", "message", "status"}}``."""
    headers = ((b"content-type", b"application/json"), *error.headers)
    return error.status, headers, orjson.dumps(error_payload(error.status, error.message, error.code))


def encode_stream_error(error: RelayError, *, sse: bool = True, after_element: bool = True) -> bytes:
    """The last frame of a stream that failed after it started (the SDK raises on ``{"error": …}``).

    In array mode (``sse=False``) the error is the last element and closes the array: after an element
    already sent (``,`` first), or as the only one (``[`` first) with ``after_element=False``.
    """
    payload = orjson.dumps(error_payload(error.status, error.message, error.code))
    if sse:
        return sse_frame(payload)
    return (b",\r\n" if after_element else b"[") + payload + b"]"


def decode_error(status: int, body: bytes) -> RelayError:
    """An upstream's error answer: status and message kept, the RPC status as ``code``.

    Gemini answers a bad API key with 400 ``API_KEY_INVALID``: that is read as 401. A ``RetryInfo``
    detail becomes a ``retry-after`` header (whole seconds, rounded up).
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload:  # streamed without alt=sse, the error is an array's element
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return upstream_error(status, error_text(body))
    rpc = error.get("status") if isinstance(error.get("status"), str) else None
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    if status == 400 and any(d.get("reason") == "API_KEY_INVALID" for d in details):
        status, rpc = 401, "UNAUTHENTICATED"
    result = upstream_error(status, error["message"], rpc)
    for detail in details:
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = math.ceil(float(delay[:-1]))
            except ValueError:
                continue
            result.headers = ((b"retry-after", str(max(0, seconds)).encode()),)
    return result


# ---- passthrough helpers -----------------------------------------------------------------------------------


def rename_model(data: bytes, public: str, upstream: str) -> bytes:
    """A body, chunk or array with ``modelVersion`` set to the ``public`` name (data without one: unparsed)."""
    if public == upstream or b'"modelVersion"' not in data:
        return data
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    items = payload if isinstance(payload, list) else [payload]
    changed = False
    for item in items:
        if isinstance(item, dict) and "modelVersion" in item:
            item["modelVersion"] = public
            changed = True
    return orjson.dumps(payload) if changed else data


class UsageReader:
    """Usage sniffed on the passthrough path: ``feed`` each chunk's data, or a whole body (object or array).

    Gemini's ``usageMetadata`` is cumulative: the last one wins. Data without the key is not parsed.
    """

    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage: ir.Usage | None = None

    def feed(self, data: bytes) -> None:
        if b'"usageMetadata"' not in data:
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        for item in payload if isinstance(payload, list) else (payload,):
            meta = item.get("usageMetadata") if isinstance(item, dict) else None
            if isinstance(meta, dict):
                self.usage = usage_from_wire(meta)


# ---- reading fields in either spelling ---------------------------------------------------------------------

_SNAKE: dict[str, str] = {}
_UPPER = re.compile(r"[A-Z]")
_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "an array"}


def _snake(name: str) -> str:
    snake = _SNAKE.get(name)
    if snake is None:
        snake = _SNAKE[name] = _UPPER.sub(lambda m: "_" + m.group().lower(), name)
    return snake


def _camel(key: str) -> str:
    if "_" not in key:
        return key
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _field(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` (camelCase), else ``obj[name_in_snake_case]``."""
    value = obj.get(name)
    return obj.get(_snake(name)) if value is None else value


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _want(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        what = "a number" if float in kinds else _NAMES.get(kinds[0], kinds[0].__name__)
        raise bad_request(f"'{where}' must be {what}", where)
    return value


def _opt(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: str) -> Any:
    value = _field(obj, name)
    return None if value is None else _want(value, kind, _at(path, name))


def _req(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: str) -> Any:
    value = _field(obj, name)
    if value is None:
        raise bad_request(f"'{_at(path, name)}' is required", _at(path, name))
    return _want(value, kind, _at(path, name))


def _fail(message: str, where: str, upstream: bool) -> RelayError:
    if upstream:
        return bad_upstream(f"invalid Gemini answer at {where}: {message}")
    return bad_request(f"'{where}' {message}", where)


# ---- request: decode ---------------------------------------------------------------------------------------

_REQUEST_FIELDS = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model"})
_GENERATION_FIELDS = frozenset(
    {
        "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "responseMimeType",
        "responseSchema", "responseJsonSchema", "thinkingConfig",
    }
)  # fmt: skip
_LEVEL_IN: dict[str, ir.Effort] = {
    "MINIMAL": "minimal",
    "LOW": "low",
    "MEDIUM": "medium",
    "HIGH": "high",
    "XHIGH": "xhigh",
}
_URLSAFE = str.maketrans("-_", "+/")
_PART_META = frozenset({"thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"})


def decode_request(body: bytes, *, model: str, stream: bool) -> ir.Request:
    """A generateContent body → ``ir.Request`` (model and stream from the URL); a 400 naming the path otherwise."""
    return _decode(load_object(body), model=model, stream=stream, path="")


def decode_count_request(body: bytes, *, model: str) -> ir.Request:
    """A countTokens body: ``{contents}`` (with Vertex's ``systemInstruction``/``tools``) or
    ``{generateContentRequest: {…}}``, the two being exclusive."""
    payload = load_object(body)
    inner = _field(payload, "generateContentRequest")
    if inner is None:
        return _decode(payload, model=model, stream=False, path="")
    if _field(payload, "contents") is not None:
        raise bad_request("give 'contents' or 'generateContentRequest', not both", "generateContentRequest")
    inner = _want(inner, dict, "generateContentRequest")
    return _decode(inner, model=model, stream=False, path="generateContentRequest")


def _decode(payload: dict[str, Any], *, model: str, stream: bool, path: str) -> ir.Request:
    contents = _req(payload, "contents", list, path)
    if not contents:
        raise bad_request(f"'{_at(path, 'contents')}' must not be empty", _at(path, "contents"))
    tools, other_tools = _decode_tools(payload, path)
    tools, choice, tool_config = _decode_tool_config(payload, path, tools)
    generation, generation_extra = _decode_generation(payload, path)
    extra: dict[str, Any] = {k: v for k, v in payload.items() if _camel(k) not in _REQUEST_FIELDS}
    if other_tools:
        extra["tools"] = other_tools
    if tool_config:
        extra["toolConfig"] = tool_config
    if generation_extra:
        extra["generationConfig"] = generation_extra
    return ir.Request(
        model=model.removeprefix("models/"),
        system=_decode_system(payload, path),
        messages=_decode_contents(contents, _at(path, "contents")),
        stream=stream,
        tools=tools,
        tool_choice=choice,
        extra=extra,
        **generation,
    )


def _decode_system(payload: Mapping[str, Any], path: str) -> tuple[ir.Text, ...]:
    raw = _field(payload, "systemInstruction")
    where = _at(path, "systemInstruction")
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (ir.Text(raw),) if raw else ()
    _want(raw, dict, where)
    texts = []
    for j, part in enumerate(_opt(raw, "parts", list, where) or ()):
        text = _field(_want(part, dict, f"{where}.parts[{j}]"), "text")
        if not isinstance(text, str):
            raise bad_request(f"'{where}.parts[{j}]' must be a text part", f"{where}.parts[{j}]")
        if text:
            texts.append(ir.Text(text))
    return tuple(texts)


def _decode_contents(raw: list[Any], where: str) -> tuple[ir.Message, ...]:
    messages = []
    unanswered: list[ir.ToolCall] = []
    for i, content in enumerate(raw):
        path = f"{where}[{i}]"
        _want(content, dict, path)
        role = _opt(content, "role", str, path) or "user"
        parts = _opt(content, "parts", list, path) or []
        if role == "model":
            decoded = _model_parts(parts, f"{path}.parts", path, upstream=False)
            unanswered.extend(p for p in decoded if isinstance(p, ir.ToolCall))
            messages.append(ir.Message("assistant", tuple(decoded)))
        elif role in ("user", "function"):
            user = tuple(_user_part(part, f"{path}.parts[{j}]", unanswered) for j, part in enumerate(parts))
            messages.append(ir.Message("user", user))
        else:
            raise bad_request(f"'{path}.role' must be 'user' or 'model'", f"{path}.role")
    return tuple(messages)


def _user_part(part: Any, where: str, unanswered: list[ir.ToolCall]) -> ir.Part:
    _want(part, dict, where)
    text = _field(part, "text")
    if text is not None:
        return ir.Text(_want(text, str, f"{where}.text"))
    response = _field(part, "functionResponse")
    if response is not None:
        return _function_response(response, f"{where}.functionResponse", unanswered)
    media = _media(part, where)
    if media is not None:
        return media
    if _field(part, "functionCall") is not None:
        raise bad_request(f"'{where}.functionCall' can only be in a model turn", f"{where}.functionCall")
    raise _unsupported(part, where)


def _unsupported(part: Mapping[str, Any], where: str) -> RelayError:
    kind = next((k for k in part if _camel(k) not in _PART_META), None)
    if kind is None:
        return bad_request(f"'{where}' has no content (text, inlineData, fileData, functionCall…)", where)
    return bad_request(f"part kind '{kind}' cannot be converted for this model", f"{where}.{kind}")


def _media(part: Mapping[str, Any], where: str) -> ir.Image | ir.Document | None:
    blob = _field(part, "inlineData")
    if blob is not None:
        bw = f"{where}.inlineData"
        _want(blob, dict, bw)
        mime = _req(blob, "mimeType", str, bw)
        data = _req(blob, "data", str, bw).translate(_URLSAFE)
        if mime.startswith("image/"):
            return ir.Image(data=data, media_type=mime)
        return ir.Document(media_type=mime, data=data, name=_opt(blob, "displayName", str, bw))
    file = _field(part, "fileData")
    if file is not None:
        fw = f"{where}.fileData"
        _want(file, dict, fw)
        uri = _req(file, "fileUri", str, fw)
        mime = _opt(file, "mimeType", str, fw) or _guess_type(uri, "application/octet-stream")
        if mime.startswith("image/"):
            return ir.Image(url=uri, media_type=mime)
        return ir.Document(media_type=mime, url=uri, name=_opt(file, "displayName", str, fw))
    return None


def _model_parts(parts: list[Any], where: str, seed: str, *, upstream: bool) -> list[ir.Part]:
    """A model turn's (or an answer's) parts → IR parts; ``seed`` derives the ids of calls without one."""
    out: list[ir.Part] = []
    calls = 0
    for j, part in enumerate(parts):
        path = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise _fail("must be an object", path, upstream)
        signature = _field(part, "thoughtSignature")
        if signature is not None and not isinstance(signature, str):
            raise _fail("must be a base64 string", f"{path}.thoughtSignature", upstream)
        call = _field(part, "functionCall")
        if call is not None:
            out.append(_function_call(call, f"{path}.functionCall", signature or None, seed, calls, upstream))
            calls += 1
            continue
        text = _field(part, "text")
        if text is None and not signature:
            if not upstream:  # an answer's images and code execution parts have no IR slot: skipped
                media = _media(part, path)
                if media is None:
                    raise _unsupported(part, path)
                out.append(media)
            continue
        if text is not None and not isinstance(text, str):
            raise _fail("must be a string", f"{path}.text", upstream)
        _text_part(out, text or "", signature or None, thought=_field(part, "thought") is True)
    return out


def _text_part(out: list[ir.Part], text: str, signature: str | None, *, thought: bool) -> None:
    if thought and text:
        out.append(ir.Reasoning(text=text, signature=signature, dialect="gemini"))
        return
    if signature:
        prev = out[-1] if out else None
        if isinstance(prev, ir.Reasoning) and prev.dialect == "gemini" and not prev.signature and not prev.redacted:
            out[-1] = attrs.evolve(prev, signature=signature)
        else:
            out.append(ir.Reasoning(signature=signature, dialect="gemini"))
    if text:
        out.append(ir.Text(text))


def _function_call(raw: Any, where: str, signature: str | None, seed: str, index: int, upstream: bool) -> ir.ToolCall:
    if not isinstance(raw, dict):
        raise _fail("must be an object", where, upstream)
    name = _field(raw, "name")
    if not isinstance(name, str) or not name:
        raise _fail("must be a non-empty string", f"{where}.name", upstream)
    args = _field(raw, "args")
    if args is not None and not isinstance(args, dict):
        raise _fail("must be an object", f"{where}.args", upstream)
    id = _field(raw, "id")
    if id is not None and not isinstance(id, str):
        raise _fail("must be a string", f"{where}.id", upstream)
    arguments = dumps(args) if args else "{}"
    return ir.ToolCall(
        id=call_id(id, seed, name, arguments, index),
        name=name,
        arguments=arguments,
        signature=signature,
        signature_dialect="gemini" if signature else None,
    )


def _function_response(raw: Any, where: str, unanswered: list[ir.ToolCall]) -> ir.ToolResult:
    _want(raw, dict, where)
    id = _opt(raw, "id", str, where)
    name = _opt(raw, "name", str, where)
    if id:
        match = next((c for c in unanswered if c.id == id), None)
    else:
        match = next((c for c in unanswered if c.name == name), None)
    if match is not None:
        unanswered.remove(match)
    if not name:
        if match is None:
            raise bad_request(f"'{where}.name' is required", f"{where}.name")
        name = match.name
    result_id = id or (match.id if match is not None else derived_id(f"{where}/{name}", 0, DERIVED_ID_PREFIX))
    content, is_error = _result_content(_opt(raw, "response", dict, where))
    for k, part in enumerate(_opt(raw, "parts", list, where) or ()):
        media = _media(_want(part, dict, f"{where}.parts[{k}]"), f"{where}.parts[{k}]")
        if not isinstance(media, ir.Image):
            raise bad_request("only images can be converted in a function response", f"{where}.parts[{k}]")
        content.append(media)
    return ir.ToolResult(call_id=result_id, name=name, content=tuple(content), is_error=is_error)


def _result_content(response: dict[str, Any] | None) -> tuple[list[ir.Text | ir.Image], bool]:
    """A function response → (its content, whether it is an error result)."""
    if not response:
        return [], False
    if len(response) == 1:
        key, value = next(iter(response.items()))
        if key == "result" and isinstance(value, str):
            return [ir.Text(value)], False
        if key == "error":
            return [ir.Text(value if isinstance(value, str) else dumps(value))], True
    return [ir.Text(dumps(response))], False


def _decode_tools(payload: Mapping[str, Any], path: str) -> tuple[list[ir.Tool], list[dict[str, Any]]]:
    tools: list[ir.Tool] = []
    others: list[dict[str, Any]] = []
    where = _at(path, "tools")
    for i, tool in enumerate(_opt(payload, "tools", list, path) or ()):
        tw = f"{where}[{i}]"
        _want(tool, dict, tw)
        rest = {k: v for k, v in tool.items() if _camel(k) != "functionDeclarations"}
        if rest:
            others.append(rest)
        for k, decl in enumerate(_opt(tool, "functionDeclarations", list, tw) or ()):
            dw = f"{tw}.functionDeclarations[{k}]"
            _want(decl, dict, dw)
            schema = _opt(decl, "parametersJsonSchema", dict, dw)
            if schema is None:
                parameters = _opt(decl, "parameters", dict, dw)
                schema = json_schema(parameters) if parameters is not None else {}
            tools.append(ir.Tool(_req(decl, "name", str, dw), _opt(decl, "description", str, dw), schema))
    return tools, others


def _decode_tool_config(
    payload: Mapping[str, Any], path: str, tools: list[ir.Tool]
) -> tuple[tuple[ir.Tool, ...], ir.ToolChoice | None, dict[str, Any]]:
    config = _opt(payload, "toolConfig", dict, path)
    if config is None:
        return tuple(tools), None, {}
    where = _at(path, "toolConfig")
    rest = {k: v for k, v in config.items() if _camel(k) != "functionCallingConfig"}
    calling = _opt(config, "functionCallingConfig", dict, where)
    if calling is None:
        return tuple(tools), None, rest
    cw = f"{where}.functionCallingConfig"
    mode = (_opt(calling, "mode", str, cw) or "AUTO").upper()
    names = _opt(calling, "allowedFunctionNames", list, cw) or []
    declared = {t.name for t in tools}
    for k, name in enumerate(names):
        if _want(name, str, f"{cw}.allowedFunctionNames[{k}]") not in declared:
            raise bad_request(f"'{name}' is not a declared function", f"{cw}.allowedFunctionNames[{k}]")
    if mode in ("AUTO", "MODE_UNSPECIFIED", "VALIDATED"):
        return tuple(tools), ir.ToolChoice("auto"), rest
    if mode == "NONE":
        return tuple(tools), ir.ToolChoice("none"), rest
    if mode != "ANY":
        raise bad_request(f"'{cw}.mode' must be AUTO, ANY, NONE or VALIDATED", f"{cw}.mode")
    allowed = set(names)
    if len(allowed) == 1:
        return tuple(tools), ir.ToolChoice("named", names[0]), rest
    if allowed:
        tools = [t for t in tools if t.name in allowed]
    return tuple(tools), ir.ToolChoice("required"), rest


def _decode_generation(payload: Mapping[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``generationConfig`` → (IR request fields, the fields with no IR slot)."""
    where = _at(path, "generationConfig")
    config = _opt(payload, "generationConfig", dict, path) or {}
    count = _opt(config, "candidateCount", int, where)
    if count is not None and count > 1:
        raise bad_request("only one candidate can be converted: 'candidateCount' must be 1", f"{where}.candidateCount")
    top_k = _opt(config, "topK", (int, float), where)
    if top_k is not None and top_k != int(top_k):
        raise bad_request(f"'{where}.topK' must be a whole number", f"{where}.topK")
    stop = _opt(config, "stopSequences", list, where) or []
    for k, sequence in enumerate(stop):
        _want(sequence, str, f"{where}.stopSequences[{k}]")
    rest = {k: v for k, v in config.items() if _camel(k) not in _GENERATION_FIELDS}
    fields = {
        "max_tokens": _opt(config, "maxOutputTokens", int, where),
        "temperature": _opt(config, "temperature", (int, float), where),
        "top_p": _opt(config, "topP", (int, float), where),
        "top_k": None if top_k is None else int(top_k),
        "stop": tuple(stop),
        "output": _decode_output(config, where, rest),
        "reasoning": _decode_thinking(config, where),
    }
    return fields, rest


def _decode_output(config: Mapping[str, Any], where: str, rest: dict[str, Any]) -> ir.OutputFormat | None:
    mime = _opt(config, "responseMimeType", str, where)
    schema = _opt(config, "responseJsonSchema", dict, where)
    if schema is None and (gemini_schema := _opt(config, "responseSchema", dict, where)) is not None:
        schema = json_schema(gemini_schema)
    if mime == "application/json":
        return ir.OutputFormat("json_schema", schema=schema) if schema is not None else ir.OutputFormat("json_object")
    if mime not in (None, "text/plain"):  # text/x.enum and others: Gemini's own, sent on only to Gemini
        rest.update((k, v) for k, v in config.items() if _camel(k).startswith("response"))
    return None


def _decode_thinking(config: Mapping[str, Any], where: str) -> ir.ReasoningConfig | None:
    thinking = _opt(config, "thinkingConfig", dict, where)
    if thinking is None:
        return None
    tw = f"{where}.thinkingConfig"
    budget = _opt(thinking, "thinkingBudget", int, tw)
    level = _opt(thinking, "thinkingLevel", str, tw)
    include = _opt(thinking, "includeThoughts", bool, tw)
    if budget is not None and level is not None:
        raise bad_request("give 'thinkingBudget' or 'thinkingLevel', not both", tw)
    if budget is not None and budget < -1:
        raise bad_request(
            f"'{tw}.thinkingBudget' must be -1 (dynamic), 0 (off) or a token count", f"{tw}.thinkingBudget"
        )
    effort = None
    if level is not None and level.upper() != "THINKING_LEVEL_UNSPECIFIED":
        effort = _LEVEL_IN.get(level.upper())
        if effort is None:
            raise bad_request(f"'{tw}.thinkingLevel' must be MINIMAL, LOW, MEDIUM or HIGH", f"{tw}.thinkingLevel")
    if budget is None and effort is None and include is None:
        return None
    return ir.ReasoningConfig(effort=effort, budget_tokens=budget, include=include)


# ---- Gemini's OpenAPI schema → JSON Schema -----------------------------------------------------------------

_SCHEMA_KEYS = {
    "any_of": "anyOf", "max_items": "maxItems", "min_items": "minItems", "max_length": "maxLength",
    "min_length": "minLength", "max_properties": "maxProperties", "min_properties": "minProperties",
    "additional_properties": "additionalProperties", "defs": "$defs", "ref": "$ref",
}  # fmt: skip


def json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A Gemini ``Schema`` (upper-case ``type``, ``nullable``, the SDK's snake_case) → JSON Schema."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        key = _SCHEMA_KEYS.get(key, key)
        if key in ("propertyOrdering", "property_ordering", "nullable"):
            continue
        if key == "type" and isinstance(value, str):
            value = value.lower()
        elif key in ("properties", "$defs") and isinstance(value, dict):
            value = {k: json_schema(v) if isinstance(v, dict) else v for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            value = json_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            value = [json_schema(v) if isinstance(v, dict) else v for v in value]
        out[key] = value
    if schema.get("nullable") is True:
        kind = out.get("type")
        out["type"] = [kind, "null"] if isinstance(kind, str) else kind
    return out


# ---- request: encode ---------------------------------------------------------------------------------------

_LEVEL_OUT = {
    "none": "MINIMAL",
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
}
_GEMINI_MAJOR = re.compile(r"gemini-(\d+)")
_IMAGE_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
    ".heic": "image/heic", ".heif": "image/heif", ".pdf": "application/pdf",
}  # fmt: skip
_MAGIC = (("iVBOR", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"), ("UklGR", "image/webp"))


def encode_request(req: ir.Request, model: str, *, same_dialect: bool = False) -> bytes:
    """A generateContent body (the URL is ``path(model, req.stream)``); ``extra`` only with ``same_dialect``."""
    return orjson.dumps(_encode(req, model, same_dialect=same_dialect))


def encode_count_request(req: ir.Request, model: str) -> bytes:
    """A countTokens body: ``{"contents"}`` when that says it all, else ``{"generateContentRequest": {model,
    contents, systemInstruction, tools, toolConfig}}`` (the Developer API's ``countTokens`` takes no
    top-level ``systemInstruction`` or ``tools``)."""
    body = _encode(req, model, same_dialect=False)
    body.pop("generationConfig", None)
    if body.keys() == {"contents"}:
        return orjson.dumps(body)
    return orjson.dumps({"generateContentRequest": {"model": _model_name(model), **body}})


def decode_count_response(body: bytes) -> int:
    """``{"totalTokens": N}`` → N (absent: 0, as proto-JSON leaves zeros out); a 502 for anything else."""
    payload = load_object(body, upstream=True)
    count = payload.get("totalTokens", 0 if "error" not in payload else None)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise bad_upstream("the upstream's countTokens answer has no totalTokens count")
    return count


def encode_count_response(count: int) -> bytes:
    return orjson.dumps({"totalTokens": count, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": count}]})


def _encode(req: ir.Request, model: str, *, same_dialect: bool) -> dict[str, Any]:
    extra = dict(req.extra) if same_dialect else {}
    extra_tools = extra.pop("tools", None)
    extra_tool_config = extra.pop("toolConfig", None)
    extra_generation = extra.pop("generationConfig", None)
    body: dict[str, Any] = {"contents": _encode_contents(req.messages)}
    system = [{"text": t.text} for t in req.system if t.text]
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = _encode_tools(req.tools)
    if isinstance(extra_tools, list):
        tools.extend(extra_tools)
    if tools:
        body["tools"] = tools
    tool_config = dict(extra_tool_config) if isinstance(extra_tool_config, dict) else {}
    calling = _encode_choice(req)
    if calling is not None:
        tool_config["functionCallingConfig"] = calling
    if tool_config:
        body["toolConfig"] = tool_config
    generation = dict(extra_generation) if isinstance(extra_generation, dict) else {}
    generation.update(_encode_generation(req, model))
    if generation:
        body["generationConfig"] = generation
    for key, value in extra.items():
        body.setdefault(key, value)
    return body


def _encode_tools(tools: tuple[ir.Tool, ...]) -> list[dict[str, Any]]:
    declarations = []
    for i, tool in enumerate(tools):
        if not _TOOL_NAME.fullmatch(tool.name):
            raise bad_request(
                f"tool name {tool.name!r} cannot be sent to Gemini: names are 1 to 64 characters of "
                "A-Z, a-z, 0-9, '_' and '-'",
                f"tools[{i}].name",
            )
        declaration: dict[str, Any] = {"name": tool.name}
        if tool.description:
            declaration["description"] = tool.description
        if tool.parameters:
            declaration["parametersJsonSchema"] = dict(tool.parameters)
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def _encode_choice(req: ir.Request) -> dict[str, Any] | None:
    choice = req.tool_choice
    if choice is None or not req.tools:
        return None
    if choice.mode == "named":
        if choice.name not in {t.name for t in req.tools}:
            raise bad_request(f"the tool choice names {choice.name!r}, which is not among the tools", "tool_choice")
        return {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice.mode]}


def _encode_generation(req: ir.Request, model: str) -> dict[str, Any]:
    generation: dict[str, Any] = {}
    for key, value in (
        ("maxOutputTokens", req.max_tokens),
        ("temperature", req.temperature),
        ("topP", req.top_p),
        ("topK", req.top_k),
    ):
        if value is not None:
            generation[key] = value
    if req.stop:
        generation["stopSequences"] = list(req.stop)
    if req.output is not None and req.output.kind != "text":
        generation["responseMimeType"] = "application/json"
        if req.output.kind == "json_schema" and req.output.schema is not None:
            generation["responseJsonSchema"] = dict(req.output.schema)
    if req.reasoning is not None and (thinking := _encode_thinking(req.reasoning, model)):
        generation["thinkingConfig"] = thinking
    return generation


def _encode_thinking(config: ir.ReasoningConfig, model: str) -> dict[str, Any]:
    """``thinkingBudget`` or ``thinkingLevel`` (never both), and ``includeThoughts``."""
    thinking: dict[str, Any] = {}
    major = _GEMINI_MAJOR.search(model)
    if config.budget_tokens is None and config.effort is not None and major and int(major.group(1)) >= 3:
        thinking["thinkingLevel"] = _LEVEL_OUT[config.effort]
    elif (budget := budget_for(config)) is not None:
        thinking["thinkingBudget"] = budget
    if config.include is not None:
        thinking["includeThoughts"] = config.include
    return thinking


def _encode_contents(messages: tuple[ir.Message, ...]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if message.role == "assistant":
            parts = _model_parts_out(message.parts, request=True, show=False, where=f"messages[{i}]")
            names.update((p.id, p.name) for p in message.parts if isinstance(p, ir.ToolCall))
            role = "model"
        else:
            parts = _user_parts_out(message.parts, names, i)
            role = "user"
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    for content in contents:
        parts = content["parts"]
        if content["role"] == "user":
            parts.sort(key=lambda p: "functionResponse" not in p)  # function responses first, in order
            continue
        calls = [p for p in parts if "functionCall" in p]
        if calls and not any("thoughtSignature" in p for p in calls):
            calls[0]["thoughtSignature"] = SKIP_SIGNATURE
    return contents


def _user_parts_out(parts: tuple[ir.Part, ...], names: dict[str, str], i: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        where = f"messages[{i}].parts[{j}]"
        if isinstance(part, ir.Text):
            if part.text:
                out.append({"text": part.text})
        elif isinstance(part, ir.Image):
            out.append(_image_part(part, where))
        elif isinstance(part, ir.Document):
            out.append(_document_part(part))
        elif isinstance(part, ir.ToolResult):
            out.append(_function_response_part(part, names, where))
            media.extend(_image_part(p, where) for p in part.content if isinstance(p, ir.Image))
    return out + media


def _function_response_part(part: ir.ToolResult, names: dict[str, str], where: str) -> dict[str, Any]:
    name = part.name or names.get(part.call_id)
    if not name:
        raise bad_request(
            f"the tool result for call {part.call_id!r} has no tool name and no earlier call has its id: "
            "Gemini needs the function's name",
            f"{where}.name",
        )
    text = "\n".join(p.text for p in part.content if isinstance(p, ir.Text))
    value = _json_object(text)
    if part.is_error:
        response = {"error": text if value is None else value}
    else:
        response = {"result": text} if value is None else value
    wire: dict[str, Any] = {"name": name, "response": response}
    wire_id = wire_call_id(part.call_id)
    if wire_id is not None:
        wire = {"id": wire_id, **wire}
    return {"functionResponse": wire}


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _model_parts_out(parts: tuple[ir.Part, ...], *, request: bool, show: bool, where: str = "") -> list[dict[str, Any]]:
    """Assistant parts → Gemini parts (a model turn of a request, or an answer's candidate).

    Gemini's own reasoning always goes (with its signatures); other dialects' reasoning text goes as
    ``thought`` parts only with ``show`` (an answer whose client asked for thoughts), never in a request.
    """
    out: list[dict[str, Any]] = []
    skip = False
    for j, part in enumerate(parts):
        if skip:
            skip = False
        elif isinstance(part, ir.Text):
            if part.text:
                out.append({"text": part.text})
        elif isinstance(part, ir.ToolCall):
            arguments = arguments_object(part.arguments)
            if arguments is None and request:
                raise bad_request("tool call arguments must be a JSON object for Gemini", f"{where}.parts[{j}]")
            signature = part.signature if part.signature_dialect == "gemini" else None
            out.append(function_call_part(part.id, part.name, arguments or {}, signature))
        elif isinstance(part, ir.Reasoning):
            following = parts[j + 1] if j + 1 < len(parts) else None
            skip = _reasoning_out(part, following, out, show=show)
        elif request and isinstance(part, ir.Image):
            out.append(_image_part(part, f"{where}.parts[{j}]"))
        elif request and isinstance(part, ir.Document):
            out.append(_document_part(part))
    return out


def _reasoning_out(part: ir.Reasoning, following: ir.Part | None, out: list[dict[str, Any]], *, show: bool) -> bool:
    """Append a reasoning part; True when its signature rode on the text that follows (that text is sent)."""
    ours = part.dialect == "gemini"
    if ours and part.signature and not part.text:
        if isinstance(following, ir.Text) and following.text:
            out.append({"text": following.text, "thoughtSignature": part.signature})
            return True
        out.append({"text": "", "thoughtSignature": part.signature})
    elif part.text and (ours or show):
        wire: dict[str, Any] = {"text": part.text, "thought": True}
        if ours and part.signature:
            wire["thoughtSignature"] = part.signature
        out.append(wire)
    return False


def _guess_type(url: str, default: str) -> str:
    name = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    return _IMAGE_TYPES.get(name[dot:], default) if dot >= 0 else default


def _image_part(image: ir.Image, where: str) -> dict[str, Any]:
    data, media_type = image.data, image.media_type
    url = image.url or ""
    if data is None and url.startswith("data:"):
        head, comma, data = url.partition(",")
        if not comma or not head.endswith(";base64"):
            raise bad_request("a data: URL must be base64: data:<media type>;base64,<data>", where)
        media_type = media_type or head[5:-7] or None
    if data is not None:
        media_type = media_type or next((t for m, t in _MAGIC if data.startswith(m)), "image/jpeg")
        return {"inlineData": {"mimeType": media_type, "data": data}}
    return {"fileData": {"mimeType": media_type or _guess_type(url, "image/jpeg"), "fileUri": url}}


def _document_part(doc: ir.Document) -> dict[str, Any]:
    if doc.data is not None:
        return {"inlineData": {"mimeType": doc.media_type, "data": doc.data}}
    return {"fileData": {"mimeType": doc.media_type, "fileUri": doc.url or ""}}


# ---- responses ---------------------------------------------------------------------------------------------


def decode_response(body: bytes) -> ir.Response:
    """An upstream's GenerateContentResponse; a malformed one is a 502, an ``error`` body its error."""
    payload = load_object(body, upstream=True)
    if "error" in payload and "candidates" not in payload:
        error = stream_error(payload["error"])
        raise upstream_error(error.status, error.message, error.code)
    rid = payload.get("responseId") if isinstance(payload.get("responseId"), str) else ""
    model = payload.get("modelVersion") if isinstance(payload.get("modelVersion"), str) else ""
    meta = payload.get("usageMetadata")
    usage = usage_from_wire(meta) if isinstance(meta, dict) else None
    created = _created(payload.get("createTime"))
    candidates = payload.get("candidates")
    if not candidates:
        feedback = payload.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            return ir.Response(rid, model, (), "content_filter", usage, created=created)
        raise bad_upstream("the upstream's answer has no candidates")
    candidate = candidates[0] if isinstance(candidates, list) else None
    if not isinstance(candidate, dict):
        raise bad_upstream("the upstream's candidates are not a list of objects")
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list | None):
        raise bad_upstream("the upstream's candidate parts are not a list")
    decoded = _model_parts(parts or [], "candidates[0].content.parts", rid, upstream=True)
    has_calls = any(isinstance(p, ir.ToolCall) for p in decoded)
    return ir.Response(
        id=rid,
        model=model,
        parts=tuple(decoded),  # type: ignore[arg-type]  # answers hold no media (skipped above)
        finish_reason=finish_reason(candidate.get("finishReason"), has_calls),
        usage=usage,
        created=created,
    )


def _created(value: Any) -> int:
    """Vertex's ``createTime`` (RFC 3339) → Unix seconds; 0 when absent or unreadable."""
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        return 0


def encode_response(resp: ir.Response, req: ir.Request) -> bytes:
    """A GenerateContentResponse for the client: its model name, the IR id without a foreign prefix."""
    show = req.reasoning is not None and req.reasoning.include is True
    parts = _model_parts_out(resp.parts, request=False, show=show)
    candidate: dict[str, Any] = {}
    if parts:
        candidate["content"] = {"parts": parts, "role": "model"}
    candidate["finishReason"] = finish_to_wire(resp.finish_reason)
    candidate["index"] = 0
    body: dict[str, Any] = {"candidates": [candidate]}
    if resp.usage is not None:
        body["usageMetadata"] = usage_to_wire(resp.usage)
    body["modelVersion"] = req.model
    rid = response_id(resp.id)
    if rid:
        body["responseId"] = rid
    return orjson.dumps(body)

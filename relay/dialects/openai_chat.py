"""OpenAI Chat Completions (``POST /v1/chat/completions``): the codec's public face and its request half.

Sans-IO: bytes and dicts in, bytes and dicts out. Every name of the codec interface
(``relay.dialects``) is importable from here; responses, streams, usage and errors live in
``openai_chat_stream`` and are re-exported. The passthrough helpers (``read_request``,
``RequestInfo``, ``encode_passthrough``, ``rename_model``) serve a client and a channel that both
speak Chat: there the bytes go upstream unchanged.

``decode_request`` is the conversion path: what the IR cannot carry is a 400 naming it there, while
the passthrough serves it unchanged. Choices made on the users' behalf (docs/conversions/openai_chat.md):

- Leading system/developer messages form ``Request.system``; one that comes after another message
  becomes a user turn of its own (plain text, no prefix), as Gemini has it.
- Consecutive ``tool`` messages become one user turn of ``ToolResult`` parts, each named after the
  matching call in the history.
- Refused (400): ``n`` > 1, ``logprobs: true``, audio output (``audio``, ``modalities`` with audio),
  the deprecated ``functions``/``function_call``, ``input_audio`` parts, files by ``file_id``,
  assistant ``audio``, custom tools and ``allowed_tools`` tool choices.
- ``reasoning_effort: "max"`` decodes as ``xhigh``; ``max_completion_tokens`` wins over ``max_tokens``.
- Not kept: message ``name``, content parts' ``prompt_cache_breakpoint``, the refusal/text
  distinction, ``json_schema.description``.
- ``extra`` holds every other top-level field (``stream_options``, ``seed``, ``user``, ``metadata``,
  penalties, ``service_tier``…); it is sent upstream only with ``same_dialect``.
- Encoding: tool results marked ``is_error`` are sent as ``Error: <text>``; images in tool results go
  into a user message right after the tool messages; reasoning text goes back (as
  ``reasoning_content``) only when a Chat upstream produced it; ``top_k`` and ``ReasoningConfig.include``
  have no Chat field; a token budget becomes the nearest ``reasoning_effort`` (``common.effort_for``).
  Streaming requests always ask for the usage chunk.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import orjson

from relay.dialects import ir
from relay.dialects.common import bad_request, effort_for
from relay.dialects.common import error_text as error_text  # endpoints/chat.py reads it from here
from relay.dialects.openai_chat_stream import (
    StreamDecoder,
    StreamEncoder,
    UsageReader,
    complete_error_body,
    decode_error,
    decode_response,
    encode_error,
    encode_response,
    encode_stream_error,
    error_payload,
    include_usage,
    is_error_body,
    is_stream_error,
)

__all__ = [
    "RequestInfo",
    "StreamDecoder",
    "StreamEncoder",
    "UsageReader",
    "complete_error_body",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_passthrough",
    "encode_request",
    "encode_response",
    "encode_stream_error",
    "error_payload",
    "error_text",
    "include_usage",
    "is_error_body",
    "is_stream_error",
    "read_request",
    "refuse_ambiguous",
    "rename_model",
]

# ---- passthrough: what the relay reads of a request it sends on unchanged -------------------------------


class RequestInfo:
    """What the relay reads of a Chat Completions request body."""

    __slots__ = ("model", "payload", "stream")

    def __init__(self, payload: dict[str, Any], model: str, stream: bool) -> None:
        self.payload = payload
        self.model = model
        self.stream = stream


def read_request(body: bytes) -> RequestInfo:
    """Parse and check the fields the relay relies on; a 400 naming the parameter otherwise."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}", None) from None
    if not isinstance(payload, dict):
        raise bad_request("request body must be a JSON object", None)
    refuse_ambiguous(body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("you must provide a model parameter (a non-empty string)", "model")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array", "messages")
    stream = payload.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean", "stream")
    return RequestInfo(payload, model, stream)


#: Top-level fields the relay acts on: sent twice, the relay and the upstream might each read another one.
_DECIDING = ("model", "stream")


def refuse_ambiguous(body: bytes) -> None:
    """A 400 when a deciding field appears twice at the top level (a key's allow-list could be bypassed).

    JSON parsers differ on duplicate keys (last wins here, first wins elsewhere) and the original
    bytes go upstream. The full check runs only when the name occurs more than once anywhere.
    """
    if not any(body.count(b'"%s"' % name.encode()) > 1 for name in _DECIDING):
        return
    names: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        names[:] = [name for name, _ in items]  # the top-level object is the last one completed
        return {}

    try:
        json.loads(body, object_pairs_hook=pairs)
    except RecursionError:
        raise bad_request("request body is nested too deeply", None) from None
    except ValueError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}", None) from None
    for name in _DECIDING:
        if names.count(name) > 1:
            raise bad_request(f"'{name}' appears more than once in the body", name)


def encode_passthrough(info: RequestInfo, upstream_model: str, original: bytes) -> bytes:
    """The body for the upstream: the original bytes, unless the model name must change."""
    if upstream_model == info.model:
        return original
    return orjson.dumps({**info.payload, "model": upstream_model})


def rename_model(body: bytes, public_model: str, upstream_model: str) -> bytes:
    """A response body or stream chunk with the upstream's model name replaced by the public one."""
    if public_model == upstream_model:
        return body
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(payload, dict) and "model" in payload:
        payload["model"] = public_model
        return orjson.dumps(payload)
    return body


# ---- decode_request: a client's request to the IR ---------------------------------------------------

_ROLES = ("system", "developer", "user", "assistant", "tool")
_KNOWN = frozenset(
    {
        "model", "messages", "stream", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
        "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort",
    }
)  # fmt: skip
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_NOT_CONVERTED = "cannot be converted for this model's API"


def _want(value: Any, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    """``value`` when it is of ``kind`` (a bool is no number), else a 400 naming ``param``."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise bad_request(f"'{param}' must be {what}", param)
    return value


def _optional(source: dict[str, Any], name: str, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    value = source.get(name)
    return None if value is None else _want(value, kind, param, what)


def _data_url(url: str, param: str) -> tuple[str, str]:
    """``data:<type>[;params];base64,<data>`` → (media type, base64 data)."""
    head, comma, data = url.partition(",")
    if not comma or not head.endswith(";base64"):
        raise bad_request("a data: URL must be base64 encoded: data:<media type>;base64,<data>", param)
    return head[5:-7].split(";")[0] or "application/octet-stream", data


def _texts(content: Any, param: str) -> tuple[ir.Text, ...]:
    """A string, or an array of text parts (system, developer and tool messages)."""
    if isinstance(content, str):
        return (ir.Text(content),)
    _want(content, list, param, "a string or an array of text parts")
    texts = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        _want(part, dict, where, "an object")
        if part.get("type") != "text":
            raise bad_request(f"'{where}.type' must be 'text' here", f"{where}.type")
        texts.append(ir.Text(_want(part.get("text"), str, f"{where}.text", "a string")))
    return tuple(texts)


def _image(part: dict[str, Any], where: str) -> ir.Image:
    image = _want(part.get("image_url"), dict, f"{where}.image_url", "an object")
    url = _want(image.get("url"), str, f"{where}.image_url.url", "a string")
    detail = _optional(image, "detail", str, f"{where}.image_url.detail", "a string")
    if url.startswith("data:"):
        media_type, data = _data_url(url, f"{where}.image_url.url")
        return ir.Image(data=data, media_type=media_type, detail=detail)
    if url.startswith(("https://", "http://")):
        return ir.Image(url=url, detail=detail)
    raise bad_request("an image URL must be https: or a base64 data: URL", f"{where}.image_url.url")


def _file(part: dict[str, Any], where: str) -> ir.Document:
    file = _want(part.get("file"), dict, f"{where}.file", "an object")
    name = _optional(file, "filename", str, f"{where}.file.filename", "a string")
    data = file.get("file_data")
    if data is None:
        message = f"files by file_id {_NOT_CONVERTED}: send them inline (file_data)"
        raise bad_request(message, f"{where}.file.file_id" if "file_id" in file else f"{where}.file.file_data")
    _want(data, str, f"{where}.file.file_data", "a string")
    if data.startswith("data:"):
        media_type, data = _data_url(data, f"{where}.file.file_data")
        return ir.Document(media_type=media_type, data=data, name=name)
    return ir.Document(media_type="application/pdf", data=data, name=name)


def _user_part(part: Any, where: str) -> ir.Text | ir.Image | ir.Document:
    _want(part, dict, where, "an object")
    kind = part.get("type")
    if kind == "text":
        return ir.Text(_want(part.get("text"), str, f"{where}.text", "a string"))
    if kind == "image_url":
        return _image(part, where)
    if kind == "file":
        return _file(part, where)
    if kind == "input_audio":
        raise bad_request(f"audio input (input_audio) {_NOT_CONVERTED}", f"{where}.type")
    raise bad_request(f"unsupported content part type {kind!r} (text, image_url and file are)", f"{where}.type")


def _user(message: dict[str, Any], param: str) -> ir.Message:
    content = message.get("content")
    if isinstance(content, str):
        return ir.Message("user", (ir.Text(content),))
    _want(content, list, f"{param}.content", "a string or an array of content parts")
    return ir.Message("user", tuple(_user_part(part, f"{param}.content[{j}]") for j, part in enumerate(content)))


def _assistant_content(message: dict[str, Any], param: str) -> list[ir.Part]:
    parts: list[ir.Part] = []
    for key in ("reasoning_content", "reasoning"):
        reasoning = message.get(key)
        if reasoning is not None:
            text = _want(reasoning, str, f"{param}.{key}", "a string")
            parts.extend([ir.Reasoning(text, dialect="openai_chat")] if text else [])
            break
    content = message.get("content")
    if isinstance(content, str):
        parts.extend([ir.Text(content)] if content else [])
    elif content is not None:
        _want(content, list, f"{param}.content", "a string, an array of content parts or null")
        for j, part in enumerate(content):
            where = f"{param}.content[{j}]"
            _want(part, dict, where, "an object")
            kind = part.get("type")
            if kind not in ("text", "refusal"):
                raise bad_request(f"unsupported assistant content part type {kind!r}", f"{where}.type")
            parts.append(ir.Text(_want(part.get(kind), str, f"{where}.{kind}", "a string")))
    refusal = _optional(message, "refusal", str, f"{param}.refusal", "a string")
    if refusal:
        parts.append(ir.Text(refusal))
    for key in ("function_call", "audio"):
        if message.get(key) is not None:
            raise bad_request(f"an assistant message's '{key}' {_NOT_CONVERTED}", f"{param}.{key}")
    return parts


def _assistant(message: dict[str, Any], param: str, names: dict[str, str]) -> ir.Message:
    parts = _assistant_content(message, param)
    calls = message.get("tool_calls")
    for j, call in enumerate(_want(calls, list, f"{param}.tool_calls", "an array") if calls is not None else ()):
        where = f"{param}.tool_calls[{j}]"
        _want(call, dict, where, "an object")
        if call.get("type", "function") != "function":
            raise bad_request(f"tool calls of type {call.get('type')!r} {_NOT_CONVERTED}", f"{where}.type")
        function = _want(call.get("function"), dict, f"{where}.function", "an object")
        call_id = _want(call.get("id"), str, f"{where}.id", "a string")
        name = _want(function.get("name"), str, f"{where}.function.name", "a string")
        arguments = _optional(function, "arguments", str, f"{where}.function.arguments", "a string of JSON")
        parts.append(ir.ToolCall(id=call_id, name=name, arguments=arguments or "{}"))
        names[call_id] = name
    return ir.Message("assistant", tuple(parts))


def _messages(raw: list[Any]) -> tuple[tuple[ir.Text, ...], tuple[ir.Message, ...]]:
    system: list[ir.Text] = []
    messages: list[ir.Message] = []
    names: dict[str, str] = {}  # call id → tool name, from the assistant messages so far
    results: list[ir.ToolResult] = []  # consecutive tool messages, merged into one user turn
    for i, message in enumerate(raw):
        param = f"messages[{i}]"
        _want(message, dict, param, "an object")
        role = message.get("role")
        if role not in _ROLES:
            raise bad_request(f"'{param}.role' must be one of {', '.join(_ROLES)}", f"{param}.role")
        if role != "tool" and results:
            messages.append(ir.Message("user", tuple(results)))
            results = []
        if role in ("system", "developer"):
            texts = _texts(message.get("content"), f"{param}.content")
            if messages:
                messages.append(ir.Message("user", texts))
            else:
                system.extend(texts)
        elif role == "user":
            messages.append(_user(message, param))
        elif role == "assistant":
            messages.append(_assistant(message, param, names))
        else:
            call_id = _want(message.get("tool_call_id"), str, f"{param}.tool_call_id", "a string")
            content = _texts(message.get("content"), f"{param}.content")
            results.append(ir.ToolResult(call_id=call_id, name=names.get(call_id), content=content))
    if results:
        messages.append(ir.Message("user", tuple(results)))
    return tuple(system), tuple(messages)


def _tools(raw: Any) -> tuple[ir.Tool, ...]:
    tools = []
    for i, tool in enumerate(_want(raw, list, "tools", "an array")):
        param = f"tools[{i}]"
        _want(tool, dict, param, "an object")
        if tool.get("type") != "function":
            raise bad_request(
                f"tools of type {tool.get('type')!r} {_NOT_CONVERTED} (function tools are)", f"{param}.type"
            )
        function = _want(tool.get("function"), dict, f"{param}.function", "an object")
        tools.append(
            ir.Tool(
                name=_want(function.get("name"), str, f"{param}.function.name", "a string"),
                description=_optional(function, "description", str, f"{param}.function.description", "a string"),
                parameters=_optional(function, "parameters", dict, f"{param}.function.parameters", "an object") or {},
                strict=_optional(function, "strict", bool, f"{param}.function.strict", "a boolean"),
            )
        )
    return tuple(tools)


def _tool_choice(raw: Any) -> ir.ToolChoice:
    if raw in ("auto", "none", "required"):
        return ir.ToolChoice(mode=raw)
    if isinstance(raw, dict) and raw.get("type") == "function":
        function = _want(raw.get("function"), dict, "tool_choice.function", "an object")
        return ir.ToolChoice(
            mode="named", name=_want(function.get("name"), str, "tool_choice.function.name", "a string")
        )
    if isinstance(raw, dict) and raw.get("type") in ("allowed_tools", "custom"):
        raise bad_request(f"a tool_choice of type {raw['type']!r} {_NOT_CONVERTED}", "tool_choice.type")
    raise bad_request("'tool_choice' must be auto, none, required or {type: function, function: {name}}", "tool_choice")


def _output(raw: Any) -> ir.OutputFormat:
    _want(raw, dict, "response_format", "an object")
    kind = raw.get("type")
    if kind in ("text", "json_object"):
        return ir.OutputFormat(kind=kind)
    if kind != "json_schema":
        raise bad_request("'response_format.type' must be text, json_object or json_schema", "response_format.type")
    spec = _want(raw.get("json_schema"), dict, "response_format.json_schema", "an object")
    return ir.OutputFormat(
        kind="json_schema",
        name=_want(spec.get("name"), str, "response_format.json_schema.name", "a string"),
        schema=_optional(spec, "schema", dict, "response_format.json_schema.schema", "an object") or {},
        strict=_optional(spec, "strict", bool, "response_format.json_schema.strict", "a boolean"),
    )


def _stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    _want(raw, list, "stop", "a string or an array of strings")
    return tuple(_want(s, str, f"stop[{i}]", "a string") for i, s in enumerate(raw))


def _reasoning(payload: dict[str, Any]) -> ir.ReasoningConfig | None:
    effort = payload.get("reasoning_effort")
    if effort is None:
        return None
    if effort not in _EFFORTS:
        raise bad_request(f"'reasoning_effort' must be one of {', '.join(_EFFORTS)}", "reasoning_effort")
    return ir.ReasoningConfig(effort="xhigh" if effort == "max" else effort)


def _refuse_unconvertible(payload: dict[str, Any]) -> None:
    """A 400 for top-level fields asking for what the IR cannot carry back (see the module docstring)."""
    n = _optional(payload, "n", int, "n", "an integer")
    if n is not None and n > 1:
        raise bad_request(f"several choices (n > 1) {_NOT_CONVERTED}", "n")
    if _optional(payload, "logprobs", bool, "logprobs", "a boolean"):
        raise bad_request(f"logprobs {_NOT_CONVERTED}", "logprobs")
    modalities = payload.get("modalities")
    if payload.get("audio") is not None or (isinstance(modalities, list) and "audio" in modalities):
        raise bad_request(
            f"audio output {_NOT_CONVERTED}", "audio" if payload.get("audio") is not None else "modalities"
        )
    for name in ("functions", "function_call"):
        if payload.get(name) is not None:
            raise bad_request(f"the deprecated '{name}' {_NOT_CONVERTED}: use tools and tool_choice", name)


def decode_request(body: bytes) -> ir.Request:
    """A Chat Completions request body → ``ir.Request``; a 400 naming the parameter path otherwise."""
    info = read_request(body)
    payload = info.payload
    _refuse_unconvertible(payload)
    system, messages = _messages(payload["messages"])
    max_tokens = _optional(payload, "max_completion_tokens", int, "max_completion_tokens", "an integer")
    if max_tokens is None:
        max_tokens = _optional(payload, "max_tokens", int, "max_tokens", "an integer")
    tools = payload.get("tools")
    choice = payload.get("tool_choice")
    output = payload.get("response_format")
    return ir.Request(
        model=info.model,
        system=system,
        messages=messages,
        stream=info.stream,
        max_tokens=max_tokens,
        temperature=_optional(payload, "temperature", (int, float), "temperature", "a number"),
        top_p=_optional(payload, "top_p", (int, float), "top_p", "a number"),
        stop=_stop(payload.get("stop")),
        tools=_tools(tools) if tools is not None else (),
        tool_choice=_tool_choice(choice) if choice is not None else None,
        parallel_tool_calls=_optional(payload, "parallel_tool_calls", bool, "parallel_tool_calls", "a boolean"),
        output=_output(output) if output is not None else None,
        reasoning=_reasoning(payload),
        extra={k: v for k, v in payload.items() if k not in _KNOWN},
    )


# ---- encode_request: the IR to an upstream's request ---------------------------------------------------


def _encode_image(image: ir.Image) -> dict[str, Any]:
    url = f"data:{image.media_type or 'image/png'};base64,{image.data}" if image.data is not None else image.url
    spec: dict[str, Any] = {"url": url}
    if image.detail is not None:
        spec["detail"] = image.detail
    return {"type": "image_url", "image_url": spec}


def _encode_user_part(part: ir.Part, where: str) -> dict[str, Any]:
    if isinstance(part, ir.Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, ir.Image):
        return _encode_image(part)
    if isinstance(part, ir.Document):
        if part.data is None:
            raise bad_request("this model takes documents inline only, not by URL", where)
        data = f"data:{part.media_type};base64,{part.data}"
        return {"type": "file", "file": {"filename": part.name or "document.pdf", "file_data": data}}
    raise bad_request(f"a user message cannot hold a {type(part).__name__} for this model", where)


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One text part is sent as a plain string, anything else as an array of parts."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _encode_result(result: ir.ToolResult, images: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``tool`` message; the result's images are added to ``images`` (they go in a user message)."""
    texts = [{"type": "text", "text": p.text} for p in result.content if isinstance(p, ir.Text)]
    images.extend(_encode_image(p) for p in result.content if isinstance(p, ir.Image))
    if result.is_error:
        texts = [{"type": "text", "text": "Error: " + "".join(t["text"] for t in texts)}]
    return {"role": "tool", "tool_call_id": result.call_id, "content": _content(texts) if texts else ""}


def _encode_user(message: ir.Message, where: str) -> list[dict[str, Any]]:
    """Tool messages first (they must follow the assistant's calls), then the rest as one user message."""
    out: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for j, part in enumerate(message.parts):
        if isinstance(part, ir.ToolResult):
            out.append(_encode_result(part, rest))
        else:
            rest.append(_encode_user_part(part, f"{where}.parts[{j}]"))
    if rest or not out:
        out.append({"role": "user", "content": _content(rest) if rest else ""})
    return out


def _encode_assistant(message: ir.Message, where: str) -> dict[str, Any]:
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    reasoning: list[str] = []
    for j, part in enumerate(message.parts):
        if isinstance(part, ir.Text):
            texts.append({"type": "text", "text": part.text})
        elif isinstance(part, ir.ToolCall):
            function = {"name": part.name, "arguments": part.arguments}
            calls.append({"id": part.id, "type": "function", "function": function})
        elif isinstance(part, ir.Reasoning):
            if part.dialect == "openai_chat" and part.text:
                reasoning.append(part.text)
        else:
            raise bad_request(
                f"an assistant message cannot hold a {type(part).__name__} for this model", f"{where}.parts[{j}]"
            )
    out: dict[str, Any] = {"role": "assistant", "content": _content(texts) if texts else (None if calls else "")}
    if calls:
        out["tool_calls"] = calls
    if reasoning:
        out["reasoning_content"] = "".join(reasoning)
    return out


def _encode_tool(tool: ir.Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters:
        function["parameters"] = dict(tool.parameters)
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _encode_choice(choice: ir.ToolChoice) -> str | dict[str, Any]:
    if choice.mode != "named":
        return choice.mode
    if choice.name is None:
        return "required"
    return {"type": "function", "function": {"name": choice.name}}


def _encode_output(output: ir.OutputFormat) -> dict[str, Any]:
    if output.kind != "json_schema":
        return {"type": output.kind}
    spec: dict[str, Any] = {"name": output.name or "response", "schema": dict(output.schema or {})}
    if output.strict is not None:
        spec["strict"] = output.strict
    return {"type": "json_schema", "json_schema": spec}


def _encode_stream(body: dict[str, Any], stream: bool) -> None:
    if stream:
        options = body.get("stream_options")
        body["stream"] = True
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)


def _encode_tools(body: dict[str, Any], req: ir.Request) -> None:
    if not req.tools:  # OpenAI refuses tool_choice and parallel_tool_calls without tools
        return
    body["tools"] = [_encode_tool(tool) for tool in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = _encode_choice(req.tool_choice)
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls


def encode_request(
    req: ir.Request | RequestInfo,
    model: str,
    original: bytes = b"",
    *,
    same_dialect: bool = False,
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_completion_tokens",
) -> bytes:
    """``ir.Request`` → a Chat Completions body for ``model``.

    ``extra`` is sent only with ``same_dialect`` (it holds the source dialect's fields). Streaming
    requests always ask for the usage chunk. ``max_tokens_field`` is ``max_tokens`` for upstreams
    that do not know ``max_completion_tokens``. Given a ``RequestInfo`` and the original bytes, this
    is ``encode_passthrough`` (the older signature, kept for endpoints/chat.py).
    """
    if isinstance(req, RequestInfo):
        return encode_passthrough(req, model, original)
    body: dict[str, Any] = dict(req.extra) if same_dialect else {}
    body["model"] = model
    messages: list[dict[str, Any]] = [{"role": "system", "content": t.text} for t in req.system]
    for i, message in enumerate(req.messages):
        where = f"messages[{i}]"
        if message.role == "user":
            messages.extend(_encode_user(message, where))
        else:
            messages.append(_encode_assistant(message, where))
    body["messages"] = messages
    _encode_stream(body, req.stream)
    if req.max_tokens is not None:
        body[max_tokens_field] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop"] = list(req.stop)
    _encode_tools(body, req)
    if req.output is not None:
        body["response_format"] = _encode_output(req.output)
    if req.reasoning is not None and (effort := effort_for(req.reasoning)) is not None:
        body["reasoning_effort"] = effort
    return orjson.dumps(body)

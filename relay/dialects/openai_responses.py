"""OpenAI Responses (``POST /v1/responses``): requests, responses, errors and input tokens, to and from the IR.

Sans-IO: bytes in, IR out, and back. The stream codec is in ``openai_responses_stream`` (its
``StreamDecoder`` and ``StreamEncoder`` are reachable from here too); errors take the OpenAI shape
``{"error": {"message", "type", "param", "code"}}``.

What cannot cross to another dialect stays in ``extra`` (sent again only to a Responses upstream) and
``convertible(req)`` names it: the endpoint calls it before converting and answers a 400 naming the field
(``require_convertible`` does both). Those fields: ``previous_response_id``, ``conversation``, ``prompt``,
``background: true``, built-in tools (web_search, file_search, computer, mcp, custom, …), tool choices
that name them, ``item_reference`` and built-in tool items in ``input``, and files or images given by
``file_id``.

Choices made on users' behalf (docs/conversions/openai_responses.md has the table):

- ``instructions`` and the system/developer messages that open ``input`` form ``Request.system``; a
  system/developer message after the first other item becomes a user turn of its own. Encoding, the first
  system text becomes ``instructions`` and the others leading ``developer`` messages.
- Consecutive assistant-side items (``reasoning``, assistant ``message``, ``function_call``) form one assistant
  turn; consecutive ``function_call_output`` items one user turn of tool results (named from the matching call,
  else the item's ``name``). Consecutive assistant texts are encoded as one message, its text joined (a
  string: the SDK types ``output_text`` parts in input only with a stored item's ``id`` and ``status``).
- ``refusal`` parts are read as text. Message ``phase``/``status``, annotations and logprobs are not kept.
- A function call's ``fc_…`` item id rides in ``ToolCall.signature`` (``signature_dialect`` openai_responses),
  so it comes back only to this dialect.
- Reasoning items: the summary texts, joined with a blank line (the raw ``content`` texts when there is no
  summary), ``encrypted_content`` as the signature and the ``rs_…`` id. They are sent back only when they came
  from this dialect and have an id; others' reasoning is dropped from requests. In responses, any reasoning
  text becomes a summary; ``encrypted_content`` only when it is this dialect's.
- Reasoning ``effort: max`` decodes as ``xhigh``; any ``summary`` (auto/concise/detailed) is ``include``; a token
  budget is sent as the nearest effort. ``include`` shown reasoning is sent as ``summary: auto``.
- Requests converted from another dialect are sent with ``store: false`` (that client cannot use stored
  responses) and, when reasoning is asked for, ``include: ["reasoning.encrypted_content"]`` (the only way
  reasoning can be carried across turns without storage). With reasoning on (effort other than none),
  ``temperature`` and ``top_p`` are not sent (reasoning models refuse them). ``top_k`` is not sent (no such
  parameter); stop sequences cannot be expressed: a 400 naming ``stop``. ``max_output_tokens`` is at least 16.
- Function tools from another dialect get ``strict: false`` when strictness was unsaid (Responses defaults to
  strict, which refuses most schemas). ``allowed_tools`` becomes its tools alone, with its mode.
- Tool results marked as errors are sent as ``Error: <text>`` (Responses has no error flag).
- Text format ``description`` and ``verbosity``, ``include``, ``store``, ``metadata``, ``user``, ``truncation``,
  ``service_tier``, ``top_logprobs`` and the other fields with no IR slot are kept in ``extra`` only.
- A response's id gets the ``resp_`` prefix; item ids are derived from it (``msg_``, ``rs_``, ``fc_``) unless the
  upstream's own ids can be kept. ``created_at`` is the IR's ``created``. An answer cut by length or a content
  filter (``status: incomplete``) marks the message it ends with ``incomplete`` too, as OpenAI does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects import ir
from relay.dialects.common import (
    bad_request,
    bad_upstream,
    derived_id,
    effort_for,
    error_text,
    load_object,
    prefixed,
    upstream_error,
)
from relay.dialects.openai_chat import error_payload
from relay.errors import RelayError, kind_for_status
from relay.http.messages import Headers

if TYPE_CHECKING:
    from relay.dialects.openai_responses_stream import StreamDecoder, StreamEncoder

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "UsageReader",
    "convertible",
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
    "rename_model",
    "require_convertible",
]

DIALECT: ir.Dialect = "openai_responses"
#: OpenAI refuses ``max_output_tokens`` below this.
MIN_OUTPUT_TOKENS = 16
ENCRYPTED_REASONING = "reasoning.encrypted_content"

_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_SUMMARIES = ("auto", "concise", "detailed")
#: Top-level fields the IR holds whole; every other field is kept in ``extra``.
_IR_FIELDS = frozenset(
    {"model", "input", "instructions", "stream", "max_output_tokens", "temperature", "top_p", "parallel_tool_calls"}
)
#: Fields that tie a request to state kept by OpenAI (or to OpenAI-only machinery): never converted.
_STATEFUL = ("previous_response_id", "conversation", "prompt")
_TOOL_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})
_ITEM_KINDS = ("message", "function_call", "function_call_output", "reasoning")
#: Fields an input-token count body may carry (``/v1/responses/input_tokens``).
_COUNT_FIELDS = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning", "text",
        "truncation", "conversation", "previous_response_id", "personality",
    }
)  # fmt: skip

# ---- errors ------------------------------------------------------------------------------------------


def encode_error(error: RelayError) -> tuple[int, Headers, bytes]:
    headers = ((b"content-type", b"application/json"), *error.headers)
    return error.status, headers, orjson.dumps(error_payload(error))


def status_for_code(code: Any) -> int:
    """The HTTP status an upstream's mid-stream error code stands for (502 when it says nothing better)."""
    if not isinstance(code, str):
        return 502
    if "rate_limit" in code or code in ("too_many_requests", "insufficient_quota"):
        return 429
    if code.startswith("invalid") or code == "context_length_exceeded" or "image" in code:
        return 400
    return 504 if "timeout" in code else 502


def error_event(status: int, message: str, code: str | None, sequence_number: int) -> dict[str, Any]:
    """The ``error`` stream event: its documented top-level fields, and the nested ``error`` OpenAI sends
    (the Python SDK raises ``APIError`` on the nested one)."""
    nested = error_payload(RelayError(status, kind_for_status(status), message, code=code))["error"]
    return {
        "type": "error",
        "sequence_number": sequence_number,
        "code": code,
        "message": message,
        "param": None,
        "error": nested,
    }


def encode_stream_error(error: RelayError, *, sequence_number: int = 0) -> bytes:
    """The last frame of a stream that failed after it started (the SDK raises on it).

    On the passthrough path the upstream's sequence numbers are not counted: ``sequence_number`` is the
    caller's, 0 when it does not know better.
    """
    payload = error_event(error.status, error.message, error.code, sequence_number)
    payload["param"] = error.param
    payload["error"]["param"] = error.param
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"


def decode_error(status: int, body: bytes) -> RelayError:
    """An upstream's error answer, its status kept; the message and code read from the OpenAI shape."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        code = error.get("code")
        if not isinstance(code, str):
            code = error.get("type") if isinstance(error.get("type"), str) else None
        return upstream_error(status, error["message"], code)
    return upstream_error(status, error_text(body))


# ---- request: decode ---------------------------------------------------------------------------------


def _want(value: Any, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in kinds):
        raise bad_request(f"'{param}' must be {what}", param)
    return value


def _optional(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    value = obj.get(key)
    return None if value is None else _want(value, kind, param, what)


def _refuse_ambiguous(body: bytes) -> None:
    """A 400 when ``model`` or ``stream`` appears twice at the top level (parsers disagree on which wins)."""
    if body.count(b'"model"') < 2 and body.count(b'"stream"') < 2:
        return
    names: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        names[:] = [name for name, _ in items]  # the top-level object is the last one completed
        return {}

    try:
        json.loads(body, object_pairs_hook=pairs)
    except (RecursionError, ValueError):
        raise bad_request("request body is not valid JSON", None) from None
    for name in ("model", "stream"):
        if names.count(name) > 1:
            raise bad_request(f"'{name}' appears more than once in the body", name)


def _data_url(url: str, param: str) -> tuple[str, str]:
    """``data:<type>;base64,<data>`` → (media type, base64 data)."""
    head, comma, data = url.partition(",")
    if not comma or not head.endswith(";base64"):
        raise bad_request(f"'{param}' must be base64 encoded: data:<media type>;base64,<data>", param)
    return head[5:-7] or "application/octet-stream", data


def _image(part: Mapping[str, Any], where: str) -> ir.Image:
    url = _want(part.get("image_url"), str, f"{where}.image_url", "a string")
    detail = _optional(part, "detail", str, f"{where}.detail", "a string")
    if url.startswith("data:"):
        media_type, data = _data_url(url, f"{where}.image_url")
        return ir.Image(data=data, media_type=media_type, detail=detail)
    if url.startswith(("https://", "http://")):
        return ir.Image(url=url, detail=detail)
    raise bad_request(f"'{where}.image_url' must be an https: or a base64 data: URL", f"{where}.image_url")


def _document(part: Mapping[str, Any], where: str) -> ir.Document:
    name = _optional(part, "filename", str, f"{where}.filename", "a string")
    data = part.get("file_data")
    if data is None:
        url = _want(part.get("file_url"), str, f"{where}.file_url", "a string")
        return ir.Document(media_type="application/pdf", url=url, name=name)
    _want(data, str, f"{where}.file_data", "a string")
    media_type = "application/pdf"
    if data.startswith("data:"):
        media_type, data = _data_url(data, f"{where}.file_data")
    return ir.Document(media_type=media_type, data=data, name=name)


def _part_blocker(part: Any) -> bool:
    """Whether a content part can only go to OpenAI (by ``file_id``, or audio)."""
    if not isinstance(part, dict):
        return False
    kind = part.get("type")
    if kind == "input_image":
        return part.get("image_url") is None and part.get("file_id") is not None
    if kind == "input_file":
        return part.get("file_data") is None and part.get("file_url") is None and part.get("file_id") is not None
    return kind == "input_audio"


def _item_blocker(item: Any) -> str | None:
    """The path (relative to the item) of what in an input item cannot be converted, or None."""
    if not isinstance(item, dict):
        return None
    kind = item.get("type", "message" if "role" in item else "item_reference")
    if kind not in _ITEM_KINDS:
        return ""
    content = item.get("output") if kind == "function_call_output" else item.get("content")
    key = "output" if kind == "function_call_output" else "content"
    if isinstance(content, list):
        for j, part in enumerate(content):
            if _part_blocker(part) or (kind == "function_call_output" and _kind(part) == "input_file"):
                return f".{key}[{j}]"
    return None


def _kind(part: Any) -> Any:
    return part.get("type") if isinstance(part, dict) else None


def _user_parts(content: Any, where: str) -> tuple[ir.Part, ...]:
    if isinstance(content, str):
        return (ir.Text(content),)
    _want(content, list, where, "a string or an array of content parts")
    parts: list[ir.Part] = []
    for j, part in enumerate(content):
        path = f"{where}[{j}]"
        _want(part, dict, path, "an object")
        if _part_blocker(part):
            continue
        kind = part.get("type")
        if kind in ("input_text", "text"):
            parts.append(ir.Text(_want(part.get("text"), str, f"{path}.text", "a string")))
        elif kind == "input_image":
            parts.append(_image(part, path))
        elif kind == "input_file":
            parts.append(_document(part, path))
        else:
            message = f"'{path}.type' {kind!r} is not supported (input_text, input_image, input_file are)"
            raise bad_request(message, f"{path}.type")
    return tuple(parts)


def _system_texts(content: Any, where: str) -> tuple[ir.Text, ...]:
    if isinstance(content, str):
        return (ir.Text(content),)
    _want(content, list, where, "a string or an array of input_text parts")
    texts = []
    for j, part in enumerate(content):
        path = f"{where}[{j}]"
        _want(part, dict, path, "an object")
        if part.get("type") not in ("input_text", "text"):
            raise bad_request(f"'{path}.type' must be input_text in a system or developer message", f"{path}.type")
        texts.append(ir.Text(_want(part.get("text"), str, f"{path}.text", "a string")))
    return tuple(texts)


def _assistant_texts(content: Any, where: str) -> list[ir.Text]:
    if isinstance(content, str):
        return [ir.Text(content)] if content else []
    _want(content, list, where, "a string or an array of output_text parts")
    texts = []
    for j, part in enumerate(content):
        path = f"{where}[{j}]"
        _want(part, dict, path, "an object")
        kind = part.get("type")
        key = "refusal" if kind == "refusal" else "text"
        if kind not in ("output_text", "input_text", "text", "refusal"):
            raise bad_request(f"'{path}.type' must be output_text or refusal in an assistant message", f"{path}.type")
        text = _want(part.get(key), str, f"{path}.{key}", "a string")
        if text:
            texts.append(ir.Text(text))
    return texts


def _reasoning(item: Mapping[str, Any], where: str) -> ir.Reasoning:
    item_id = _optional(item, "id", str, f"{where}.id", "a string")
    texts = []
    for key, part_kind in (("summary", "summary_text"), ("content", "reasoning_text")):
        raw = item.get(key)
        for j, part in enumerate(_want(raw, list, f"{where}.{key}", "an array") if raw is not None else ()):
            path = f"{where}.{key}[{j}]"
            _want(part, dict, path, "an object")
            if part.get("type", part_kind) != part_kind:
                raise bad_request(f"'{path}.type' must be {part_kind}", f"{path}.type")
            texts.append(_want(part.get("text"), str, f"{path}.text", "a string"))
        if texts:
            break
    signature = _optional(item, "encrypted_content", str, f"{where}.encrypted_content", "a string")
    return ir.Reasoning(text="\n\n".join(texts), signature=signature or None, dialect=DIALECT, id=item_id)


def _function_call(item: Mapping[str, Any], where: str) -> ir.ToolCall:
    call_id = _want(item.get("call_id"), str, f"{where}.call_id", "a string")
    name = _want(item.get("name"), str, f"{where}.name", "a string")
    arguments = _want(item.get("arguments", "{}"), str, f"{where}.arguments", "a JSON string")
    item_id = _optional(item, "id", str, f"{where}.id", "a string")
    dialect: ir.Dialect | None = DIALECT if item_id else None
    return ir.ToolCall(id=call_id, name=name, arguments=arguments or "{}", signature=item_id, signature_dialect=dialect)


def _tool_result(item: Mapping[str, Any], where: str, names: Mapping[str, str]) -> ir.ToolResult:
    call_id = _want(item.get("call_id"), str, f"{where}.call_id", "a string")
    output = item.get("output")
    content: tuple[ir.Text | ir.Image, ...]
    if isinstance(output, str):
        content = (ir.Text(output),) if output else ()
    else:
        parts = _user_parts(output, f"{where}.output")
        content = tuple(p for p in parts if isinstance(p, (ir.Text, ir.Image)))
    name = names.get(call_id) or _optional(item, "name", str, f"{where}.name", "a string")
    return ir.ToolResult(call_id=call_id, name=name, content=content)


class _Turns:
    """Input items gathered into IR turns: assistant-side items merge, tool results merge."""

    def __init__(self) -> None:
        self.system: list[ir.Text] = []
        self.messages: list[ir.Message] = []
        self.names: dict[str, str] = {}
        self._role: str | None = None  # "assistant", "results" or None (the last turn is closed)
        self._parts: list[ir.Part] = []

    @property
    def started(self) -> bool:
        """Whether an item other than a leading system/developer message has been read."""
        return bool(self.messages) or self._role is not None

    def add(self, kind: str, parts: Iterable[ir.Part]) -> None:
        if kind != self._role:
            self.flush()
            self._role = kind
        self._parts.extend(parts)

    def flush(self) -> None:
        if self._role is not None:
            self.messages.append(ir.Message("assistant" if self._role == "assistant" else "user", tuple(self._parts)))
        self._role = None
        self._parts = []

    def user(self, parts: tuple[ir.Part, ...]) -> None:
        self.flush()
        self.messages.append(ir.Message("user", parts))


def _decode_item(item: Any, where: str, turns: _Turns) -> None:
    _want(item, dict, where, "an object")
    if _item_blocker(item) is not None:
        return  # kept in extra["input"]; convertible() names it
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        content = item.get("content")
        if role in ("system", "developer"):
            texts = _system_texts(content, f"{where}.content")
            if turns.started:
                turns.user(texts)
            else:
                turns.system.extend(texts)
        elif role == "user":
            turns.user(_user_parts(content, f"{where}.content"))
        elif role == "assistant":
            turns.add("assistant", _assistant_texts(content, f"{where}.content"))
        else:
            raise bad_request(f"'{where}.role' must be user, assistant, system or developer", f"{where}.role")
    elif kind == "function_call":
        call = _function_call(item, where)
        turns.names[call.id] = call.name
        turns.add("assistant", (call,))
    elif kind == "function_call_output":
        turns.add("results", (_tool_result(item, where, turns.names),))
    else:
        turns.add("assistant", (_reasoning(item, where),))


def _decode_input(payload: Mapping[str, Any], extra: dict[str, Any]) -> tuple[tuple[ir.Text, ...], _Turns]:
    turns = _Turns()
    instructions = _optional(payload, "instructions", str, "instructions", "a string")
    if instructions:
        turns.system.append(ir.Text(instructions))
    raw = payload.get("input")
    if isinstance(raw, str):
        turns.user((ir.Text(raw),))
    elif raw is not None:
        for i, item in enumerate(_want(raw, list, "input", "a string or an array of items")):
            _decode_item(item, f"input[{i}]", turns)
        turns.flush()
        if any(_item_blocker(item) is not None for item in raw):
            extra["input"] = raw  # sent as is to a Responses upstream, with the instructions it goes with
            if instructions is not None:
                extra["instructions"] = instructions
    return tuple(turns.system), turns


def _function_tool(tool: Mapping[str, Any], where: str) -> ir.Tool:
    name = _want(tool.get("name"), str, f"{where}.name", "a string")
    description = _optional(tool, "description", str, f"{where}.description", "a string")
    parameters = _optional(tool, "parameters", dict, f"{where}.parameters", "an object")
    strict = _optional(tool, "strict", bool, f"{where}.strict", "a boolean")
    return ir.Tool(name=name, description=description, parameters=parameters or {}, strict=strict)


def _decode_tools(payload: Mapping[str, Any], extra: dict[str, Any]) -> tuple[tuple[ir.Tool, ...], bool]:
    """The function tools; the raw list goes to ``extra`` when some tool has no IR form."""
    raw = payload.get("tools")
    if raw is None:
        return (), True
    tools = []
    lossless = True
    for i, tool in enumerate(_want(raw, list, "tools", "an array")):
        where = f"tools[{i}]"
        _want(tool, dict, where, "an object")
        if tool.get("type") == "function":
            tools.append(_function_tool(tool, where))
            lossless = lossless and tool.keys() <= _TOOL_KEYS
        else:
            _want(tool.get("type"), str, f"{where}.type", "a string")
            lossless = False
    return tuple(tools), lossless


def _decode_choice(
    payload: Mapping[str, Any], tools: tuple[ir.Tool, ...]
) -> tuple[ir.ToolChoice | None, tuple[ir.Tool, ...], bool]:
    """The tool choice, the tools it leaves (``allowed_tools`` narrows them), and whether it is exact."""
    raw = payload.get("tool_choice")
    if raw is None:
        return None, tools, True
    if raw in ("auto", "none", "required"):
        return ir.ToolChoice(mode=raw), tools, True
    _want(raw, dict, "tool_choice", "auto, none, required or an object")
    kind = raw.get("type")
    if kind == "function":
        return ir.ToolChoice("named", _want(raw.get("name"), str, "tool_choice.name", "a string")), tools, True
    if kind == "allowed_tools":
        mode = raw.get("mode")
        if mode not in ("auto", "required"):
            raise bad_request("'tool_choice.mode' must be auto or required", "tool_choice.mode")
        allowed = _want(raw.get("tools"), list, "tool_choice.tools", "an array")
        names = {t.get("name") for t in allowed if isinstance(t, dict) and t.get("type") == "function"}
        return ir.ToolChoice(mode=mode), tuple(t for t in tools if t.name in names), False
    _want(kind, str, "tool_choice.type", "a string")
    return None, tools, False  # a built-in tool: convertible() names it


def _decode_text(payload: Mapping[str, Any]) -> ir.OutputFormat | None:
    text = _optional(payload, "text", dict, "text", "an object")
    fmt = _optional(text or {}, "format", dict, "text.format", "an object")
    if fmt is None:
        return None
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return ir.OutputFormat(kind=kind)
    if kind != "json_schema":
        raise bad_request("'text.format.type' must be text, json_object or json_schema", "text.format.type")
    return ir.OutputFormat(
        kind="json_schema",
        name=_optional(fmt, "name", str, "text.format.name", "a string"),
        schema=_want(fmt.get("schema"), dict, "text.format.schema", "an object"),
        strict=_optional(fmt, "strict", bool, "text.format.strict", "a boolean"),
    )


def _decode_reasoning(payload: Mapping[str, Any]) -> ir.ReasoningConfig | None:
    raw = _optional(payload, "reasoning", dict, "reasoning", "an object")
    if raw is None:
        return None
    effort = raw.get("effort")
    if effort is not None and effort not in (*_EFFORTS, "max"):
        raise bad_request(f"'reasoning.effort' must be one of {', '.join(_EFFORTS)}, max", "reasoning.effort")
    include = None
    for key in ("summary", "generate_summary"):
        summary = raw.get(key)
        if summary is not None:
            if summary not in _SUMMARIES:
                raise bad_request(f"'reasoning.{key}' must be auto, concise or detailed", f"reasoning.{key}")
            include = True
    if effort is None and include is None:
        return None
    return ir.ReasoningConfig(effort="xhigh" if effort == "max" else effort, include=include)


def _decode(payload: dict[str, Any], fields: frozenset[str] | None) -> ir.Request:
    """A request body (``fields``: the keys allowed in ``extra``, all when None) → ``ir.Request``."""
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("you must provide a model parameter (a non-empty string)", "model")
    extra: dict[str, Any] = {k: v for k, v in payload.items() if k not in _IR_FIELDS}
    if fields is not None:
        extra = {k: v for k, v in extra.items() if k in fields}
    system, turns = _decode_input(payload, extra)
    tools, tools_exact = _decode_tools(payload, extra)
    choice, tools, choice_exact = _decode_choice(payload, tools)
    if tools_exact and choice_exact:  # else the raw tools and choice go to a Responses upstream as they are
        extra.pop("tools", None)
        extra.pop("tool_choice", None)
    stream = _optional(payload, "stream", bool, "stream", "a boolean")
    max_tokens = _optional(payload, "max_output_tokens", int, "max_output_tokens", "an integer")
    return ir.Request(
        model=model,
        system=system,
        messages=tuple(turns.messages),
        stream=bool(stream),
        max_tokens=max_tokens,
        temperature=_optional(payload, "temperature", (int, float), "temperature", "a number"),
        top_p=_optional(payload, "top_p", (int, float), "top_p", "a number"),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=_optional(payload, "parallel_tool_calls", bool, "parallel_tool_calls", "a boolean"),
        output=_decode_text(payload),
        reasoning=_decode_reasoning(payload),
        extra=extra,
    )


def decode_request(body: bytes) -> ir.Request:
    """A ``/v1/responses`` body → ``ir.Request``; a 400 naming the parameter path otherwise.

    Fields that cannot cross to another dialect stay in ``extra``: check ``convertible`` before converting.
    """
    payload = load_object(body)
    _refuse_ambiguous(body)
    return _decode(payload, None)


def convertible(req: ir.Request) -> str | None:
    """The parameter path of the first thing in a decoded request only OpenAI Responses can serve, or None.

    The endpoint calls this before sending a Responses client's request to an upstream of another dialect.
    """
    extra = req.extra
    for name in _STATEFUL:
        if extra.get(name) is not None:
            return name
    if extra.get("background"):
        return "background"
    for i, tool in enumerate(extra.get("tools") or ()):
        if isinstance(tool, dict) and tool.get("type") != "function":
            return f"tools[{i}]"
    choice = extra.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") not in ("function", "allowed_tools"):
        return "tool_choice"
    for i, item in enumerate(extra.get("input") or ()):
        blocker = _item_blocker(item)
        if blocker is not None:
            return f"input[{i}]{blocker}"
    return None


def require_convertible(req: ir.Request) -> None:
    """A 400 naming what only OpenAI Responses can serve, when the request holds such a thing."""
    path = convertible(req)
    if path is not None:
        raise bad_request(f"'{path}' works only with OpenAI Responses models and cannot be converted", path)


# ---- request: encode ---------------------------------------------------------------------------------


def _image_part(image: ir.Image) -> dict[str, Any]:
    url = f"data:{image.media_type or 'image/png'};base64,{image.data}" if image.data is not None else image.url
    return {"type": "input_image", "image_url": url, "detail": image.detail or "auto"}


def _input_part(part: ir.Part, where: str) -> dict[str, Any]:
    if isinstance(part, ir.Text):
        return {"type": "input_text", "text": part.text}
    if isinstance(part, ir.Image):
        return _image_part(part)
    if isinstance(part, ir.Document):
        if part.data is None:
            return {"type": "input_file", "file_url": part.url}
        data = f"data:{part.media_type};base64,{part.data}"
        return {"type": "input_file", "filename": part.name or "document.pdf", "file_data": data}
    raise bad_request(f"a user message cannot hold a {type(part).__name__}", where)


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One text part is sent as a plain string, anything else as an array of parts."""
    if len(parts) == 1 and parts[0]["type"] == "input_text":
        return parts[0]["text"]
    return parts


def _result_item(result: ir.ToolResult) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [_input_part(p, "") for p in result.content]
    if result.is_error:
        text = "".join(p.text for p in result.content if isinstance(p, ir.Text))
        parts = [{"type": "input_text", "text": "Error: " + text}] + [p for p in parts if p["type"] != "input_text"]
    output: str | list[dict[str, Any]] = _content(parts) if parts else ""
    return {"type": "function_call_output", "call_id": result.call_id, "output": output}


def _encode_user(message: ir.Message, i: int, items: list[dict[str, Any]]) -> None:
    content: list[dict[str, Any]] = []
    for j, part in enumerate(message.parts):
        if isinstance(part, ir.ToolResult):
            if content:
                items.append({"type": "message", "role": "user", "content": _content(content)})
                content = []
            items.append(_result_item(part))
        elif not isinstance(part, (ir.ToolCall, ir.Reasoning)):
            content.append(_input_part(part, f"messages[{i}].parts[{j}]"))
    if content:
        items.append({"type": "message", "role": "user", "content": _content(content)})


def reasoning_item(part: ir.Reasoning, item_id: str) -> dict[str, Any]:
    """A reasoning item (request input or response output); ``encrypted_content`` only when it is ours."""
    item: dict[str, Any] = {"type": "reasoning", "id": item_id, "summary": []}
    if part.text:
        item["summary"] = [{"type": "summary_text", "text": part.text}]
    if part.signature and part.dialect == DIALECT:
        item["encrypted_content"] = part.signature
    return item


def _call_item_id(call: ir.ToolCall) -> str | None:
    """The upstream's own ``fc_…`` id of a call made by this dialect, else None."""
    if call.signature_dialect == DIALECT and call.signature and call.signature.startswith("fc_"):
        return call.signature
    return None


def _encode_assistant(message: ir.Message, items: list[dict[str, Any]]) -> None:
    texts: list[str] = []  # consecutive texts, sent as one string (typed input messages take no part list)
    for part in message.parts:
        if isinstance(part, ir.Text):
            if part.text:
                texts.append(part.text)
            continue
        if texts:
            items.append({"type": "message", "role": "assistant", "content": "".join(texts)})
            texts = []
        if isinstance(part, ir.ToolCall):
            call: dict[str, Any] = {
                "type": "function_call",
                "call_id": part.id,
                "name": part.name,
                "arguments": part.arguments,
            }
            if (item_id := _call_item_id(part)) is not None:
                call["id"] = item_id
            items.append(call)
        elif isinstance(part, ir.Reasoning) and part.dialect == DIALECT and part.id and part.redacted is None:
            items.append(reasoning_item(part, part.id))
    if texts:
        items.append({"type": "message", "role": "assistant", "content": "".join(texts)})


def encode_input(req: ir.Request) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "developer", "content": text.text} for text in req.system[1:]
    ]
    for i, message in enumerate(req.messages):
        if message.role == "user":
            _encode_user(message, i, items)
        else:
            _encode_assistant(message, items)
    return items


def encode_tool(tool: ir.Tool, *, same_dialect: bool = False) -> dict[str, Any]:
    wire: dict[str, Any] = {"type": "function", "name": tool.name}
    if tool.description is not None:
        wire["description"] = tool.description
    wire["parameters"] = dict(tool.parameters) if tool.parameters else {"type": "object", "properties": {}}
    if tool.strict is not None or not same_dialect:
        wire["strict"] = bool(tool.strict)
    return wire


def encode_choice(choice: ir.ToolChoice) -> str | dict[str, Any]:
    return {"type": "function", "name": choice.name} if choice.mode == "named" else choice.mode


def encode_format(output: ir.OutputFormat) -> dict[str, Any]:
    if output.kind != "json_schema":
        return {"type": output.kind}
    fmt: dict[str, Any] = {"type": "json_schema", "name": output.name or "response"}
    fmt["schema"] = dict(output.schema or {})
    if output.strict is not None:
        fmt["strict"] = output.strict
    return fmt


def encode_reasoning(config: ir.ReasoningConfig) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    effort = effort_for(config)
    if effort is not None:
        wire["effort"] = effort
    if config.include:
        wire["summary"] = "auto"
    return wire


def _merge_reasoning(raw: Any, wire: dict[str, Any]) -> dict[str, Any]:
    """The client's own ``reasoning`` object with the IR's values (its ``max`` effort and summary kept)."""
    merged = dict(raw) if isinstance(raw, dict) else {}
    if wire.get("effort") is not None and not (wire["effort"] == "xhigh" and merged.get("effort") == "max"):
        merged["effort"] = wire["effort"]
    if "summary" in wire and merged.get("summary") is None and merged.get("generate_summary") is None:
        merged["summary"] = wire["summary"]
    return merged


def _reasoning_on(req: ir.Request) -> bool:
    return req.reasoning is not None and effort_for(req.reasoning) not in (None, "none")


def _encode_body(req: ir.Request, model: str, same_dialect: bool) -> dict[str, Any]:
    extra = req.extra if same_dialect else {}
    body: dict[str, Any] = dict(extra)
    body["model"] = model
    if "input" in extra:
        body["input"] = extra["input"]  # the client's own items, some of which the IR cannot hold
    else:
        body["input"] = encode_input(req)
        if req.system:
            body["instructions"] = req.system[0].text
    if req.stop:
        raise bad_request("stop sequences cannot be expressed by the OpenAI Responses API", "stop")
    if "tools" not in extra and req.tools:
        body["tools"] = [encode_tool(t, same_dialect=same_dialect) for t in req.tools]
    if "tool_choice" not in extra and req.tool_choice is not None and req.tools:
        body["tool_choice"] = encode_choice(req.tool_choice)
    if req.parallel_tool_calls is not None and (req.tools or "tools" in extra):
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.output is not None:
        raw_text = extra.get("text")
        text = dict(raw_text) if isinstance(raw_text, dict) else {}
        raw_format = text.get("format")
        text["format"] = {**(raw_format if isinstance(raw_format, dict) else {}), **encode_format(req.output)}
        body["text"] = text
    if req.reasoning is not None:
        wire = encode_reasoning(req.reasoning)
        wire = _merge_reasoning(extra.get("reasoning"), wire) if same_dialect else wire
        if wire:
            body["reasoning"] = wire
    if not same_dialect:
        body["store"] = False
        if req.reasoning is not None and (req.reasoning.include or _reasoning_on(req)):
            body["include"] = [ENCRYPTED_REASONING]
    return body


def encode_request(req: ir.Request, model: str, *, same_dialect: bool = False) -> bytes:
    """``ir.Request`` → a ``/v1/responses`` body for ``model``.

    ``extra`` is sent only with ``same_dialect`` (it holds a Responses client's fields with no IR slot).
    """
    body = _encode_body(req, model, same_dialect)
    if req.stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens if same_dialect else max(req.max_tokens, MIN_OUTPUT_TOKENS)
    sampling = same_dialect or not _reasoning_on(req)
    for name in ("temperature", "top_p"):
        value = getattr(req, name)
        if value is not None and sampling:
            body[name] = value
    return orjson.dumps(body)


# ---- input tokens ------------------------------------------------------------------------------------


def decode_count_request(body: bytes) -> ir.Request:
    """A ``/v1/responses/input_tokens`` body → ``ir.Request`` (Relay needs its ``model`` to route it)."""
    payload = load_object(body)
    _refuse_ambiguous(body)
    return _decode(payload, _COUNT_FIELDS)


def encode_count_request(req: ir.Request, model: str, *, same_dialect: bool = False) -> bytes:
    """``ir.Request`` → a ``/v1/responses/input_tokens`` body for ``model`` (only the fields it takes)."""
    body = _encode_body(req, model, same_dialect)
    return orjson.dumps({k: v for k, v in body.items() if k in _COUNT_FIELDS})


def decode_count_response(body: bytes) -> int:
    payload = load_object(body, upstream=True)
    count = payload.get("input_tokens")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise bad_upstream("the upstream's input token count has no input_tokens")
    return count


def encode_count_response(count: int) -> bytes:
    return orjson.dumps({"object": "response.input_tokens", "input_tokens": count})


# ---- usage -------------------------------------------------------------------------------------------


def _int(source: Any, name: str) -> int:
    value = source.get(name) if isinstance(source, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_wire(raw: Any) -> ir.Usage | None:
    if not isinstance(raw, dict):
        return None
    inputs = raw.get("input_tokens_details")
    return ir.Usage(
        input_tokens=_int(raw, "input_tokens"),
        output_tokens=_int(raw, "output_tokens"),
        cached_tokens=_int(inputs, "cached_tokens"),
        cache_write_tokens=_int(inputs, "cache_write_tokens"),
        reasoning_tokens=_int(raw.get("output_tokens_details"), "reasoning_tokens"),
    )


def usage_to_wire(usage: ir.Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


_TERMINAL = ("response.completed", "response.incomplete", "response.failed")
_LIFECYCLE_WITH_USAGE = tuple(kind.encode() for kind in _TERMINAL)


class UsageReader:
    """Usage sniffed on the passthrough path: ``feed`` each stream event's data, or a whole body."""

    def __init__(self) -> None:
        self.usage: ir.Usage | None = None

    def feed(self, data: bytes | None) -> None:
        if not data or b'"usage"' not in data:
            return  # deltas never carry usage: no parsing on the way
        if data.startswith(b'{"type"') and not any(kind in data[:40] for kind in _LIFECYCLE_WITH_USAGE):
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(payload, dict):
            return
        response = payload.get("response") if payload.get("type") in _TERMINAL else payload
        if isinstance(response, dict):
            usage = usage_from_wire(response.get("usage"))
            if usage is not None:
                self.usage = usage


def rename_model(data: bytes, public_model: str, upstream_model: str) -> bytes:
    """A body or stream event's data with the upstream's model name replaced by the public one.

    Lifecycle events carry it in ``response.model``; a whole Response at the top.
    """
    if public_model == upstream_model or b'"model"' not in data:
        return data
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    if not isinstance(payload, dict):
        return data
    target = payload.get("response") if isinstance(payload.get("response"), dict) else payload
    if "model" not in target:
        return data
    target["model"] = public_model
    return orjson.dumps(payload)


# ---- response ----------------------------------------------------------------------------------------


def response_id(id: str) -> str:
    return prefixed(id, "resp_")


def _finish(status: Any, reason: Any, called: bool) -> ir.FinishReason:
    if status == "incomplete":
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if called else "stop"


def failure(response: Mapping[str, Any]) -> RelayError:
    """The error a failed Response stands for, its status read from its code."""
    error = response.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else "the upstream response failed"
    return upstream_error(status_for_code(code), message, code)


def decode_output_item(item: Any) -> ir.Reasoning | ir.Text | ir.ToolCall | list[ir.Text] | None:
    """One output item; built-in tool items (no IR slot) give None."""
    if not isinstance(item, dict):
        raise bad_upstream("the upstream answered an output item that is not an object")
    kind = item.get("type")
    if kind == "message":
        texts = []
        for part in item.get("content") or ():
            if isinstance(part, dict) and part.get("type") in ("output_text", "refusal"):
                text = part.get("text" if part["type"] == "output_text" else "refusal")
                if isinstance(text, str) and text:
                    texts.append(ir.Text(text))
        return texts
    if kind == "function_call":
        if not isinstance(item.get("name"), str):
            raise bad_upstream("the upstream answered a function call without a name")
        item_id = item.get("id") if isinstance(item.get("id"), str) else None
        return ir.ToolCall(
            id=str(item.get("call_id") or ""),
            name=item["name"],
            arguments=item.get("arguments") or "{}",
            signature=item_id,
            signature_dialect=DIALECT if item_id else None,
        )
    if kind == "reasoning":
        try:
            return _reasoning(item, "output")
        except RelayError:
            raise bad_upstream("the upstream answered a malformed reasoning item") from None
    return None


def decode_response(body: bytes) -> ir.Response:
    """An upstream's Response body → ``ir.Response``; a failed response is its error, a malformed one a 502."""
    payload = load_object(body, upstream=True)
    output = payload.get("output")
    if not isinstance(output, list):
        raise bad_upstream("the upstream answered a response without an output list")
    status = payload.get("status", "completed")
    if status == "failed":
        raise failure(payload)
    if status not in ("completed", "incomplete"):
        raise bad_upstream(f"the upstream answered a response with status {status!r}")
    parts: list[ir.Reasoning | ir.Text | ir.ToolCall] = []
    for item in output:
        decoded = decode_output_item(item)
        if isinstance(decoded, list):
            parts.extend(decoded)
        elif decoded is not None:
            parts.append(decoded)
    details = payload.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    created = payload.get("created_at")
    return ir.Response(
        id=str(payload.get("id") or ""),
        model=str(payload.get("model") or ""),
        parts=tuple(parts),
        finish_reason=_finish(status, reason, any(isinstance(p, ir.ToolCall) for p in parts)),
        usage=usage_from_wire(payload.get("usage")),
        created=int(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else 0,
    )


def status_of(reason: ir.FinishReason) -> tuple[str, dict[str, str] | None]:
    """A finish reason → the Response ``status`` and ``incomplete_details``."""
    if reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def message_item(item_id: str, texts: list[str], status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": t, "annotations": [], "logprobs": []} for t in texts]
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def call_item(call_id: str, item_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def call_ids(seed: str, index: int, call_id: str, own_item_id: str | None) -> tuple[str, str]:
    """A call's ``call_id`` (its own, else derived) and item id (the upstream's ``fc_…``, else derived)."""
    return call_id or derived_id(seed, index, "call_"), own_item_id or derived_id(seed, index, "fc_")


def reasoning_id(seed: str, index: int, dialect: ir.Dialect | None, own_id: str | None) -> str:
    if dialect == DIALECT and own_id:
        return own_id
    return derived_id(seed, index, "rs_")


def output_items(
    parts: Iterable[ir.Reasoning | ir.Text | ir.ToolCall], seed: str, last_status: str = "completed"
) -> list[dict[str, Any]]:
    """A response's parts → output items; consecutive texts share one message.

    ``last_status`` is the status of a message that ends the output (``incomplete`` when the answer was cut,
    as OpenAI marks the message it was writing).
    """
    items: list[dict[str, Any]] = []
    texts: list[str] | None = None  # the texts of the message being built
    for part in parts:
        if isinstance(part, ir.Text):
            if not part.text:
                continue
            if texts is None:
                texts = []
                items.append({"_texts": texts})
            texts.append(part.text)
            continue
        texts = None
        index = len(items)
        if isinstance(part, ir.ToolCall):
            call_id, item_id = call_ids(seed, index, part.id, _call_item_id(part))
            items.append(call_item(call_id, item_id, part.name, part.arguments))
        elif part.redacted is None and (part.text or (part.signature and part.dialect == DIALECT)):
            items.append(reasoning_item(part, reasoning_id(seed, index, part.dialect, part.id)))
    last = len(items) - 1
    return [
        message_item(derived_id(seed, i, "msg_"), item["_texts"], last_status if i == last else "completed")
        if "_texts" in item
        else item
        for i, item in enumerate(items)
    ]


def response_echo(req: ir.Request) -> dict[str, Any]:
    """The request fields a Response repeats (the SDK's ``Response`` requires some of them)."""
    extra = req.extra
    raw_text = extra.get("text")
    text = dict(raw_text) if isinstance(raw_text, dict) else {}
    text["format"] = encode_format(req.output) if req.output is not None else {"type": "text"}
    reasoning = {"effort": None, "summary": None}
    if req.reasoning is not None:
        reasoning.update(_merge_reasoning(extra.get("reasoning"), encode_reasoning(req.reasoning)))
    tools = extra.get("tools")
    if tools is None:
        tools = [encode_tool(t, same_dialect=True) for t in req.tools]
    choice = extra.get("tool_choice")
    if choice is None:
        choice = encode_choice(req.tool_choice) if req.tool_choice is not None else "auto"
    echo: dict[str, Any] = {
        "instructions": "\n\n".join(t.text for t in req.system) if req.system else None,
        "max_output_tokens": req.max_tokens,
        "metadata": extra.get("metadata") or {},
        "parallel_tool_calls": True if req.parallel_tool_calls is None else req.parallel_tool_calls,
        "previous_response_id": extra.get("previous_response_id"),
        "reasoning": reasoning,
        "temperature": 1.0 if req.temperature is None else req.temperature,
        "text": text,
        "tool_choice": choice,
        "tools": tools,
        "top_p": 1.0 if req.top_p is None else req.top_p,
        "truncation": extra.get("truncation") or "disabled",
    }
    for name in ("user", "store", "service_tier", "top_logprobs", "max_tool_calls", "safety_identifier"):
        if extra.get(name) is not None:
            echo[name] = extra[name]
    return echo


def response_object(
    id: str,
    model: str,
    created: int,
    echo: Mapping[str, Any],
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: ir.Usage | None = None,
    incomplete: dict[str, str] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole Response object (the lifecycle events of a stream carry one too)."""
    return {
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        **echo,
        "usage": usage_to_wire(usage) if usage is not None else None,
    }


def encode_response(resp: ir.Response, req: ir.Request) -> bytes:
    """``ir.Response`` → a Response body for the client that sent ``req`` (its ``model`` is the one shown)."""
    id = response_id(resp.id)
    status, incomplete = status_of(resp.finish_reason)
    output = output_items(resp.parts, id, status)
    return orjson.dumps(
        response_object(
            id,
            req.model,
            resp.created,
            response_echo(req),
            status=status,
            output=output,
            usage=resp.usage,
            incomplete=incomplete,
        )
    )


def __getattr__(name: str) -> Any:
    """``StreamDecoder`` and ``StreamEncoder``, from ``openai_responses_stream`` (which builds on this module)."""
    if name in ("StreamDecoder", "StreamEncoder"):
        from relay.dialects import openai_responses_stream

        return getattr(openai_responses_stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""OpenAI Chat Completions requests (``POST /v1/chat/completions``): read, decoded, encoded (sans-IO).

Two paths. The passthrough (``read_request``, ``RequestInfo``, ``refuse_ambiguous``,
``encode_passthrough``) serves a client and a channel that both speak Chat: the relay checks the fields
it acts on and the bytes go upstream unchanged. The conversion path (``decode_request``, ``encode_request``)
goes through the IR: what the IR cannot carry is a 400 naming it there, while the passthrough serves it
unchanged. ``messages`` are read and written by ``openai.chat.messages``; everything here is re-exported by
``openai_chat``. Choices made on the users' behalf (docs/conversions/openai_chat.md):

- Refused (400): ``n`` > 1, ``logprobs: true``, audio output (``audio``, ``modalities`` with audio),
  the deprecated ``functions``/``function_call``, custom tools and ``allowed_tools`` tool choices.
- ``reasoning_effort: "max"`` decodes as ``xhigh``; ``max_completion_tokens`` wins over ``max_tokens``.
- Not kept: ``json_schema.description``.
- ``extra`` holds every other top-level field (``stream_options``, ``seed``, ``user``, ``metadata``,
  penalties, ``service_tier``…); it is sent upstream only with ``same_dialect``, and for another dialect
  ``require_kept`` refuses every field of it but those ``IGNORED`` or ``NEUTRAL``.
- Encoding: ``top_k`` and ``ReasoningConfig.include`` have no Chat field; a token budget becomes the
  nearest ``reasoning_effort`` (``common.effort_for``). Streaming requests always ask for the usage chunk.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from relay.dialects import hosted_tools, ir
from relay.dialects.common import (
    bad_request,
    dropped,
    effort_for,
    json_body,
    load_object,
    optional,
    refuse_ambiguous,
    refuse_dropped,
    want,
)
from relay.dialects.openai.chat.messages import _NOT_CONVERTED, decode_messages, encode_messages

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
    payload = load_object(body)
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


def encode_passthrough(info: RequestInfo, upstream_model: str, original: bytes) -> bytes:
    """The body for the upstream: the original bytes, unless the model name must change."""
    if upstream_model == info.model:
        return original
    return orjson.dumps({**info.payload, "model": upstream_model})


# ---- decode_request: a client's request to the IR ---------------------------------------------------

_KNOWN = frozenset(
    {
        "model", "messages", "stream", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
        "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort", "web_search_options",
    }
)  # fmt: skip
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def _tools(raw: Any) -> tuple[ir.Tool, ...]:
    tools = []
    for i, tool in enumerate(want(raw, list, "tools", "an array")):
        param = f"tools[{i}]"
        want(tool, dict, param, "an object")
        if tool.get("type") != "function":
            raise bad_request(
                f"tools of type {tool.get('type')!r} {_NOT_CONVERTED} (function tools are)", f"{param}.type"
            )
        function = want(tool.get("function"), dict, f"{param}.function", "an object")
        tools.append(
            ir.Tool(
                name=want(function.get("name"), str, f"{param}.function.name", "a string"),
                description=optional(function, "description", str, f"{param}.function.description", "a string"),
                parameters=optional(function, "parameters", dict, f"{param}.function.parameters", "an object") or {},
                strict=optional(function, "strict", bool, f"{param}.function.strict", "a boolean"),
            )
        )
    return tuple(tools)


def _tool_choice(raw: Any) -> ir.ToolChoice:
    if raw in ("auto", "none", "required"):
        return ir.ToolChoice(mode=raw)
    if isinstance(raw, dict) and raw.get("type") == "function":
        function = want(raw.get("function"), dict, "tool_choice.function", "an object")
        return ir.ToolChoice(
            mode="named", name=want(function.get("name"), str, "tool_choice.function.name", "a string")
        )
    if isinstance(raw, dict) and raw.get("type") in ("allowed_tools", "custom"):
        raise bad_request(f"a tool_choice of type {raw['type']!r} {_NOT_CONVERTED}", "tool_choice.type")
    raise bad_request("'tool_choice' must be auto, none, required or {type: function, function: {name}}", "tool_choice")


def _output(raw: Any) -> ir.OutputFormat:
    want(raw, dict, "response_format", "an object")
    kind = raw.get("type")
    if kind in ("text", "json_object"):
        return ir.OutputFormat(kind=kind)
    if kind != "json_schema":
        raise bad_request("'response_format.type' must be text, json_object or json_schema", "response_format.type")
    spec = want(raw.get("json_schema"), dict, "response_format.json_schema", "an object")
    return ir.OutputFormat(
        kind="json_schema",
        name=want(spec.get("name"), str, "response_format.json_schema.name", "a string"),
        schema=optional(spec, "schema", dict, "response_format.json_schema.schema", "an object") or {},
        strict=optional(spec, "strict", bool, "response_format.json_schema.strict", "a boolean"),
    )


def _stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    want(raw, list, "stop", "a string or an array of strings")
    return tuple(want(s, str, f"stop[{i}]", "a string") for i, s in enumerate(raw))


def _reasoning(payload: dict[str, Any]) -> ir.ReasoningConfig | None:
    effort = payload.get("reasoning_effort")
    if effort is None:
        return None
    if effort not in _EFFORTS:
        raise bad_request(f"'reasoning_effort' must be one of {', '.join(_EFFORTS)}", "reasoning_effort")
    return ir.ReasoningConfig(effort="xhigh" if effort == "max" else effort)


def _refuse_unconvertible(payload: dict[str, Any]) -> None:
    """A 400 for top-level fields asking for what the IR cannot carry back (see the module docstring)."""
    n = optional(payload, "n", int, "n", "an integer")
    if n is not None and n > 1:
        raise bad_request(f"several choices (n > 1) {_NOT_CONVERTED}", "n")
    if optional(payload, "logprobs", bool, "logprobs", "a boolean"):
        raise bad_request(f"logprobs {_NOT_CONVERTED}", "logprobs")
    modalities = payload.get("modalities")
    if payload.get("audio") is not None or (isinstance(modalities, list) and "audio" in modalities):
        raise bad_request(
            f"audio output {_NOT_CONVERTED}", "audio" if payload.get("audio") is not None else "modalities"
        )
    for name in ("functions", "function_call"):
        if payload.get(name) is not None:
            raise bad_request(f"the deprecated '{name}' {_NOT_CONVERTED}: use tools and tool_choice", name)


#: Fields with no effect on the answer, not sent when converting (docs/conversions/openai_chat.md).
IGNORED = frozenset(
    {
        "user", "safety_identifier", "metadata", "store", "service_tier", "prompt_cache_key",
        "prompt_cache_retention", "prediction", "stream_options",
    }
)  # fmt: skip
#: Fields kept when they ask for nothing (their default); any other value cannot be converted.
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "frequency_penalty": (0, 0.0),
    "presence_penalty": (0, 0.0),
    "logit_bias": ({},),
    "modalities": (["text"],),
    "verbosity": ("medium",),
}


def require_kept(req: ir.Request) -> None:
    """A 400 naming the first field of a decoded request a conversion would drop (``seed``, ``n: 2``…)."""
    refuse_dropped(dropped(req.extra, IGNORED, NEUTRAL))


def decode_request(body: bytes) -> ir.Request:
    """A Chat Completions request body → ``ir.Request``; a 400 naming the parameter path otherwise."""
    info = read_request(body)
    payload = info.payload
    _refuse_unconvertible(payload)
    system, messages = decode_messages(payload["messages"])
    max_tokens = optional(payload, "max_completion_tokens", int, "max_completion_tokens", "an integer")
    if max_tokens is None:
        max_tokens = optional(payload, "max_tokens", int, "max_tokens", "an integer")
    tools = payload.get("tools")
    choice = payload.get("tool_choice")
    output = payload.get("response_format")
    return ir.Request(
        model=info.model,
        system=system,
        messages=messages,
        stream=info.stream,
        max_tokens=max_tokens,
        temperature=optional(payload, "temperature", (int, float), "temperature", "a number"),
        top_p=optional(payload, "top_p", (int, float), "top_p", "a number"),
        stop=_stop(payload.get("stop")),
        tools=_tools(tools) if tools is not None else (),
        tool_choice=_tool_choice(choice) if choice is not None else None,
        parallel_tool_calls=optional(payload, "parallel_tool_calls", bool, "parallel_tool_calls", "a boolean"),
        output=_output(output) if output is not None else None,
        reasoning=_reasoning(payload),
        hosted=_web_search(payload.get("web_search_options")),
        extra={k: v for k, v in payload.items() if k not in _KNOWN},
    )


def _web_search(options: Any) -> tuple[ir.HostedTool, ...]:
    """``web_search_options`` (OpenAI's search models search the web before answering): a hosted web search,
    run by another provider where it has one, dropped where not (``hosted_tools``); its location is kept."""
    if options is None:
        return ()
    if not isinstance(options, dict):
        raise bad_request("'web_search_options' must be an object", "web_search_options")
    where = options.get("user_location")
    place = hosted_tools.location(where.get("approximate") if isinstance(where, dict) else None)
    return (
        ir.HostedTool(
            kind="web_search", label="web_search_options", location=place, dialect="openai_chat", raw=options
        ),
    )


# ---- encode_request: the IR to an upstream's request ---------------------------------------------------


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
    for hosted in req.hosted:  # a Chat client's own web search, back to a Chat upstream as it was
        if hosted.dialect == "openai_chat" and hosted.raw is not None:
            body["web_search_options"] = dict(hosted.raw)
    if not req.tools:  # OpenAI refuses tool_choice and parallel_tool_calls without tools
        return
    body["tools"] = [_encode_tool(tool) for tool in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = _encode_choice(req.tool_choice)
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls


def encode_request(
    req: ir.Request,
    model: str,
    *,
    same_dialect: bool = False,
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_completion_tokens",
) -> bytes:
    """``ir.Request`` → a Chat Completions body for ``model``.

    ``extra`` is sent only with ``same_dialect`` (it holds the source dialect's fields). Streaming
    requests always ask for the usage chunk. ``max_tokens_field`` is ``max_tokens`` for upstreams
    that do not know ``max_completion_tokens``.
    """
    body: dict[str, Any] = dict(req.extra) if same_dialect else {}
    body["model"] = model
    body["messages"] = encode_messages(req)
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
    return json_body(body)

"""OpenAI Responses on the mock's wire: ``POST /v1/responses`` (whole or streamed) and ``…/input_tokens``.

Output items come in this order: a ``reasoning`` item (``rs_…``; its summary holds the reasoning
text, and ``encrypted_content`` when ``include`` has ``reasoning.encrypted_content``), then either a
``message`` item (``msg_…``) or one item per call: ``function_call`` (``fc_…``; with ``namespace`` for a
tool of a ``namespace`` tool) or ``custom_tool_call`` (``ctc_…``, its ``input`` raw text) for a custom tool.
The tools offered are the request's ``tools`` and those of its ``additional_tools`` input items, namespace
tools opened. A stream is the full
lifecycle: ``response.created``, ``response.in_progress``, each item's ``added``/part/delta/``done``
events, then ``response.completed`` (``response.incomplete`` when cut by ``max_output_tokens``),
every event with its ``sequence_number`` from 0.
"""

from __future__ import annotations

from typing import Any

import orjson

from relay.config import MockOptions
from relay.mock import model, signing, wire_chat
from relay.mock.model import CREATED, JSON_OBJECT, Answer, Prompt, Reply, Tool, split
from relay.mock.strict_responses import problem

__all__ = ["frames", "input_tokens", "problem", "prompt", "respond", "response"]


def _kind(item: dict[str, Any]) -> str | None:
    return item.get("type", "message" if "role" in item else None)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _items(payload: dict[str, Any]) -> list[dict[str, Any]]:
    given = payload.get("input")
    if isinstance(given, str):
        return [{"type": "message", "role": "user", "content": given}]
    return [i for i in given or () if isinstance(i, dict)]


#: Items that instruct rather than speak: skipped when looking for the last turn or the last item.
_INSTRUCTIONS = ("additional_tools", "configuration_update")
#: Items that carry a tool's result back.
_RESULTS = (
    "function_call_output", "custom_tool_call_output", "local_shell_call_output", "shell_call_output",
    "apply_patch_call_output", "computer_call_output",
)  # fmt: skip


def _role_kind(item: dict[str, Any]) -> str:
    kind = _kind(item)
    if kind in _INSTRUCTIONS or (kind == "message" and item.get("role") in ("system", "developer")):
        return "instruction"
    return "user" if kind == "message" and item.get("role") == "user" else "other"


def _offered(tools: Any, namespace: str | None = None) -> list[Tool]:
    """Function and custom tools, namespace tools opened (one level, as the API nests them)."""
    found: list[Tool] = []
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            continue
        kind = tool.get("type")
        if kind == "function":
            schema = tool.get("parameters")
            found.append(Tool(tool["name"], schema if isinstance(schema, dict) else {}, namespace))
        elif kind == "custom":
            found.append(Tool(tool["name"], {}, namespace, custom=True))
        elif kind == "namespace" and namespace is None:
            found += _offered(tool.get("tools"), tool["name"])
    return found


def prompt(payload: dict[str, Any]) -> Prompt:
    """The neutral view of a Responses body."""
    items = _items(payload)
    messages = [i for i in items if _kind(i) == "message"]
    last_user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    said = [i for i in items if _role_kind(i) != "instruction"]
    last = said[-1] if said else {}
    answered = _kind(last) in _RESULTS
    texts = [payload["instructions"]] if isinstance(payload.get("instructions"), str) else []
    texts += [_text(i.get("content")) if _kind(i) == "message" else _text(i.get("output")) for i in items]
    tools = _offered(payload.get("tools"))
    for item in items:
        if _kind(item) == "additional_tools":
            tools += _offered(item.get("tools"))
    choice = payload.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    named = choice.get("name") if isinstance(choice, dict) and kind in ("function", "custom") else None
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        choice = choice.get("mode")
    reasoning = payload.get("reasoning")
    limit = payload.get("max_output_tokens")
    return Prompt(
        text=last_user,
        turn=model.last_turn((_role_kind(i), _text(i.get("content"))) for i in items),
        tools=tuple(tools),
        tool_choice="named" if named else choice if choice in ("none", "required") else "auto",
        tool_name=named,
        tool_result=model.result_text(last.get("output")) if answered else None,
        tool_results=model.results_since_text(
            (_role_kind(i) == "user" and bool(_text(i.get("content"))), int(_kind(i) in _RESULTS)) for i in items
        ),
        parallel=payload.get("parallel_tool_calls") is not False,
        max_tokens=limit if isinstance(limit, int) else None,
        reasoning=isinstance(reasoning, dict) and reasoning.get("effort") != "none",
        output_schema=_schema(payload.get("text")),
        prompt_tokens=model.count(texts),
        seed=model.digest(payload),
    )


def _schema(text: Any) -> dict[str, Any] | None:
    form = text.get("format") if isinstance(text, dict) else None
    if not isinstance(form, dict):
        return None
    if form.get("type") == "json_object":
        return JSON_OBJECT
    return form["schema"] if form.get("type") == "json_schema" and isinstance(form.get("schema"), dict) else None


# ---- the response and its items --------------------------------------------------------------------


def _usage(r: Reply) -> dict[str, Any]:
    return {
        "input_tokens": r.prompt_tokens,
        "input_tokens_details": {"cached_tokens": r.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": r.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": r.reasoning_tokens},
        "total_tokens": r.prompt_tokens + r.completion_tokens,
    }


def _status(r: Reply) -> str:
    return "incomplete" if r.finish_reason == "length" else "completed"


def _reasoning_item(r: Reply, encrypted: bool, done: bool) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": r.reasoning}] if done else []
    item: dict[str, Any] = {"id": f"rs_{r.id}", "type": "reasoning", "summary": summary}
    if encrypted and done:
        item["encrypted_content"] = signing.encrypted_reasoning(r.reasoning)
    return item


def _message_item(r: Reply, done: bool) -> dict[str, Any]:
    content = [{"type": "output_text", "text": r.text, "annotations": [], "logprobs": []}] if done else []
    status = _status(r) if done else "in_progress"
    return {"id": f"msg_{r.id}", "type": "message", "status": status, "role": "assistant", "content": content}


def _call_item(r: Reply, index: int, done: bool) -> dict[str, Any]:
    call = r.tool_calls[index]
    item = {
        "id": f"{'ctc' if call.custom else 'fc'}_{r.id[:16]}{index}",
        "type": "custom_tool_call" if call.custom else "function_call",
        "status": "completed" if done else "in_progress",
        "call_id": call.id,
        "name": call.name,
        "input" if call.custom else "arguments": call.arguments if done else "",
    }
    if call.namespace is not None:
        item["namespace"] = call.namespace
    return item


def _has_message(r: Reply) -> bool:
    return bool(r.text) or not (r.tool_calls or r.reasoning)


def _output(r: Reply, encrypted: bool) -> list[dict[str, Any]]:
    out = [_reasoning_item(r, encrypted, True)] if r.reasoning else []
    if _has_message(r):
        out.append(_message_item(r, True))
    return out + [_call_item(r, i, True) for i in range(len(r.tool_calls))]


def _echo_tool(tool: Any) -> Any:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        return tool
    keys = ("type", "name", "description", "parameters")
    return {**{k: tool.get(k) for k in keys}, "strict": tool.get("strict", True)}


def response(r: Reply | None, payload: dict[str, Any], output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The response object: in progress (``r`` None) or finished."""
    reasoning = payload.get("reasoning") if isinstance(payload.get("reasoning"), dict) else {}
    text = payload.get("text") if isinstance(payload.get("text"), dict) else {}
    status = "in_progress" if r is None else _status(r)
    return {
        "id": f"resp_{model.digest(payload)}",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": payload.get("instructions"),
        "max_output_tokens": payload.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": payload.get("model"),
        "output": output or [],
        "parallel_tool_calls": payload.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": "default",
        "store": payload.get("store", True),
        "temperature": payload.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": "medium"},
        "tool_choice": payload.get("tool_choice", "auto"),
        "tools": [_echo_tool(t) for t in payload.get("tools") or ()],
        "top_logprobs": 0,
        "top_p": payload.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None if r is None else _usage(r),
        "user": None,
        "metadata": {},
    }


# ---- the stream ------------------------------------------------------------------------------------


class _Events:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def __call__(self, kind: str, **fields: Any) -> None:
        body = {"type": kind, **fields, "sequence_number": len(self.frames)}
        self.frames.append(b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n")


def frames(r: Reply, payload: dict[str, Any]) -> list[bytes]:
    """Every SSE frame of the streamed answer."""
    emit = _Events()
    emit("response.created", response=response(None, payload))
    emit("response.in_progress", response=response(None, payload))
    encrypted = _encrypted(payload)
    index = 0
    if r.reasoning:
        _stream_reasoning(emit, r, index, encrypted)
        index += 1
    if _has_message(r):
        _stream_message(emit, r, index)
        index += 1
    for i in range(len(r.tool_calls)):
        _stream_call(emit, r, index, i)
        index += 1
    kind = "response.incomplete" if r.finish_reason == "length" else "response.completed"
    emit(kind, response=response(r, payload, _output(r, encrypted)))
    return emit.frames


def _stream_reasoning(emit: _Events, r: Reply, index: int, encrypted: bool) -> None:
    ident = f"rs_{r.id}"
    emit("response.output_item.added", output_index=index, item=_reasoning_item(r, encrypted, False))
    where = {"item_id": ident, "output_index": index, "summary_index": 0}
    emit("response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""})
    for piece in split(r.reasoning, r.chunks):
        emit("response.reasoning_summary_text.delta", **where, delta=piece)
    emit("response.reasoning_summary_text.done", **where, text=r.reasoning)
    emit("response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": r.reasoning})
    emit("response.output_item.done", output_index=index, item=_reasoning_item(r, encrypted, True))


def _stream_message(emit: _Events, r: Reply, index: int) -> None:
    where = {"item_id": f"msg_{r.id}", "output_index": index, "content_index": 0}
    emit("response.output_item.added", output_index=index, item=_message_item(r, False))
    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    emit("response.content_part.added", **where, part=empty)
    for piece in split(r.text, r.chunks):
        emit("response.output_text.delta", **where, delta=piece, logprobs=[])
    emit("response.output_text.done", **where, text=r.text, logprobs=[])
    emit("response.content_part.done", **where, part={**empty, "text": r.text})
    emit("response.output_item.done", output_index=index, item=_message_item(r, True))


def _stream_call(emit: _Events, r: Reply, index: int, call: int) -> None:
    item = _call_item(r, call, True)
    emit("response.output_item.added", output_index=index, item=_call_item(r, call, False))
    where = {"item_id": item["id"], "output_index": index}
    if item["type"] == "custom_tool_call":
        for piece in split(item["input"], r.chunks):
            emit("response.custom_tool_call_input.delta", **where, delta=piece)
        emit("response.custom_tool_call_input.done", **where, input=item["input"])
    else:
        for piece in split(item["arguments"], r.chunks):
            emit("response.function_call_arguments.delta", **where, delta=piece)
        emit("response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"])
    emit("response.output_item.done", output_index=index, item=item)


def _encrypted(payload: dict[str, Any]) -> bool:
    include = payload.get("include")
    return isinstance(include, list) and "reasoning.encrypted_content" in include


# ---- answers ---------------------------------------------------------------------------------------


def respond(payload: Any, options: MockOptions) -> Answer:
    refused = problem(payload)
    if refused is not None:
        param, message, code = refused
        return wire_chat.error(400, message, param, code=code)
    r = model.answer(prompt(payload), options)
    if r.directives.status:
        return Answer(r.directives.status, wire_chat.error_body(r.directives.status), model.JSON_HEADERS, r)
    if payload.get("stream"):
        return Answer(200, tuple(frames(r, payload)), model.SSE_HEADERS, r)
    body = response(r, payload, _output(r, _encrypted(payload)))
    return Answer(200, orjson.dumps(body), model.JSON_HEADERS, r)


def input_tokens(payload: Any) -> Answer:
    """``POST /v1/responses/input_tokens``: the input tokens the request would use."""
    refused = problem(payload, counting=True)
    if refused is not None:
        param, message, code = refused
        return wire_chat.error(400, message, param, code=code)
    return model.json_answer(200, {"object": "response.input_tokens", "input_tokens": prompt(payload).prompt_tokens})

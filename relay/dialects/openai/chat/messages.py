"""OpenAI Chat Completions ``messages`` ↔ IR turns: a request's conversation, both ways (sans-IO).

``openai.chat.request`` reads and writes the rest of the body (and calls ``decode_messages`` and
``encode_messages``). Choices made on the users' behalf (docs/conversions/openai_chat.md):

- Leading system/developer messages form ``Request.system``; one that comes after another message
  is a ``system`` turn in its place (each upstream dialect writes it as its nearest equivalent).
  Encoding, a ``system`` turn is a ``system`` message in its place, after the tool messages of the calls
  right before it.
- Consecutive ``tool`` messages become one user turn of ``ToolResult`` parts, each named after the
  matching call in the history.
- Refused (400): ``input_audio`` parts, files by ``file_id``, assistant ``audio`` and ``function_call``,
  tool calls of another type than ``function``.
- Not kept: message ``name``, content parts' ``prompt_cache_breakpoint``, the refusal/text distinction.
- An assistant's ``reasoning_details`` entries holding Relay's envelopes are other dialects' reasoning and
  proofs (``openai.chat.reasoning``); ``reasoning_content`` is then not read.
- Encoding: tool results marked ``is_error`` are sent as ``Error: <text>``; images in tool results go
  into a user message right after the tool messages; reasoning text goes back (as
  ``reasoning_content``) only when a Chat upstream produced it.
"""

from __future__ import annotations

from typing import Any

from relay.dialects import envelope, ir
from relay.dialects.common import bad_request, data_url, optional, want
from relay.dialects.openai.chat.reasoning import decode_details

_ROLES = ("system", "developer", "user", "assistant", "tool")
_NOT_CONVERTED = "cannot be converted for this model's API"

# ---- decoding: a client's messages to IR turns ------------------------------------------------------


def _texts(content: Any, param: str) -> tuple[ir.Text, ...]:
    """A string, or an array of text parts (system, developer and tool messages)."""
    if isinstance(content, str):
        return (ir.Text(content),)
    want(content, list, param, "a string or an array of text parts")
    texts = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        want(part, dict, where, "an object")
        if part.get("type") != "text":
            raise bad_request(f"'{where}.type' must be 'text' here", f"{where}.type")
        texts.append(ir.Text(want(part.get("text"), str, f"{where}.text", "a string")))
    return tuple(texts)


def _image(part: dict[str, Any], where: str) -> ir.Image:
    image = want(part.get("image_url"), dict, f"{where}.image_url", "an object")
    url = want(image.get("url"), str, f"{where}.image_url.url", "a string")
    detail = optional(image, "detail", str, f"{where}.image_url.detail", "a string")
    if url.startswith("data:"):
        media_type, data = data_url(url, f"{where}.image_url.url")
        return ir.Image(data=data, media_type=media_type, detail=detail)
    if url.startswith(("https://", "http://")):
        return ir.Image(url=url, detail=detail)
    raise bad_request("an image URL must be https: or a base64 data: URL", f"{where}.image_url.url")


def _file(part: dict[str, Any], where: str) -> ir.Document:
    file = want(part.get("file"), dict, f"{where}.file", "an object")
    name = optional(file, "filename", str, f"{where}.file.filename", "a string")
    data = file.get("file_data")
    if data is None:
        message = f"files by file_id {_NOT_CONVERTED}: send them inline (file_data)"
        raise bad_request(message, f"{where}.file.file_id" if "file_id" in file else f"{where}.file.file_data")
    want(data, str, f"{where}.file.file_data", "a string")
    if data.startswith("data:"):
        media_type, data = data_url(data, f"{where}.file.file_data")
        return ir.Document(media_type=media_type, data=data, name=name)
    return ir.Document(media_type="application/pdf", data=data, name=name)


def _user_part(part: Any, where: str) -> ir.Text | ir.Image | ir.Document:
    want(part, dict, where, "an object")
    kind = part.get("type")
    if kind == "text":
        return ir.Text(want(part.get("text"), str, f"{where}.text", "a string"))
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
    want(content, list, f"{param}.content", "a string or an array of content parts")
    return ir.Message("user", tuple(_user_part(part, f"{param}.content[{j}]") for j, part in enumerate(content)))


def _assistant_content(message: dict[str, Any], param: str) -> list[ir.Part | envelope.Proof]:
    parts: list[ir.Part | envelope.Proof] = []
    details = decode_details(message.get("reasoning_details"), param)  # other providers' proofs, wrapped
    for key in ("reasoning_content", "reasoning"):
        reasoning = message.get(key)
        if reasoning is not None:
            text = want(reasoning, str, f"{param}.{key}", "a string")
            parts.extend([ir.Reasoning(text, dialect="openai_chat")] if text and details is None else [])
            break
    parts.extend(details or ())
    content = message.get("content")
    if isinstance(content, str):
        parts.extend([ir.Text(content)] if content else [])
    elif content is not None:
        want(content, list, f"{param}.content", "a string, an array of content parts or null")
        for j, part in enumerate(content):
            where = f"{param}.content[{j}]"
            want(part, dict, where, "an object")
            kind = part.get("type")
            if kind not in ("text", "refusal"):
                raise bad_request(f"unsupported assistant content part type {kind!r}", f"{where}.type")
            parts.append(ir.Text(want(part.get(kind), str, f"{where}.{kind}", "a string")))
    refusal = optional(message, "refusal", str, f"{param}.refusal", "a string")
    if refusal:
        parts.append(ir.Text(refusal))
    for key in ("function_call", "audio"):
        if message.get(key) is not None:
            raise bad_request(f"an assistant message's '{key}' {_NOT_CONVERTED}", f"{param}.{key}")
    return parts


def _assistant(message: dict[str, Any], param: str, names: dict[str, str]) -> ir.Message:
    parts = _assistant_content(message, param)
    calls = message.get("tool_calls")
    for j, call in enumerate(want(calls, list, f"{param}.tool_calls", "an array") if calls is not None else ()):
        where = f"{param}.tool_calls[{j}]"
        want(call, dict, where, "an object")
        if call.get("type", "function") != "function":
            raise bad_request(f"tool calls of type {call.get('type')!r} {_NOT_CONVERTED}", f"{where}.type")
        function = want(call.get("function"), dict, f"{where}.function", "an object")
        call_id = want(call.get("id"), str, f"{where}.id", "a string")
        name = want(function.get("name"), str, f"{where}.function.name", "a string")
        arguments = optional(function, "arguments", str, f"{where}.function.arguments", "a string of JSON")
        parts.append(ir.ToolCall(id=call_id, name=name, arguments=arguments or "{}"))
        names[call_id] = name
    return ir.Message("assistant", tuple(envelope.settle(parts)))


def decode_messages(raw: list[Any]) -> tuple[tuple[ir.Text, ...], tuple[ir.Message, ...]]:
    """A request's ``messages`` → (``Request.system``, ``Request.messages``); a 400 naming the path otherwise."""
    system: list[ir.Text] = []
    messages: list[ir.Message] = []
    names: dict[str, str] = {}  # call id → tool name, from the assistant messages so far
    results: list[ir.ToolResult] = []  # consecutive tool messages, merged into one user turn
    for i, message in enumerate(raw):
        param = f"messages[{i}]"
        want(message, dict, param, "an object")
        role = message.get("role")
        if role not in _ROLES:
            raise bad_request(f"'{param}.role' must be one of {', '.join(_ROLES)}", f"{param}.role")
        if role != "tool" and results:
            messages.append(ir.Message("user", tuple(results)))
            results = []
        if role in ("system", "developer"):
            texts = _texts(message.get("content"), f"{param}.content")
            if messages:
                messages.append(ir.Message("system", texts))  # an instruction mid-conversation, kept in place
            else:
                system.extend(texts)
        elif role == "user":
            messages.append(_user(message, param))
        elif role == "assistant":
            messages.append(_assistant(message, param, names))
        else:
            call_id = want(message.get("tool_call_id"), str, f"{param}.tool_call_id", "a string")
            content = _texts(message.get("content"), f"{param}.content")
            results.append(ir.ToolResult(call_id=call_id, name=names.get(call_id), content=content))
    if results:
        messages.append(ir.Message("user", tuple(results)))
    return tuple(system), tuple(messages)


# ---- encoding: IR turns to an upstream's messages ----------------------------------------------------


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


def _encode_system(message: ir.Message) -> list[dict[str, Any]]:
    """A ``system`` turn: a system message in its place (none when it has no text)."""
    texts = [{"type": "text", "text": p.text} for p in message.parts if isinstance(p, ir.Text) and p.text]
    return [{"role": "system", "content": _content(texts)}] if texts else []


def encode_messages(req: ir.Request) -> list[dict[str, Any]]:
    """``Request.system`` and ``Request.messages`` → a Chat ``messages`` array.

    A system message that would come between an assistant's tool calls and their tool messages goes right after
    those (Chat wants the tool messages straight after the calls).
    """
    messages: list[dict[str, Any]] = [{"role": "system", "content": t.text} for t in req.system]
    held: list[dict[str, Any]] = []  # system messages waiting for the tool messages of the calls before them
    for i, message in enumerate(req.messages):
        where = f"messages[{i}]"
        if message.role == "system":
            waiting = held or (messages and messages[-1].get("tool_calls"))
            (held if waiting else messages).extend(_encode_system(message))
        elif message.role == "user":
            encoded = _encode_user(message, where)
            results = next((k for k, m in enumerate(encoded) if m["role"] != "tool"), len(encoded))
            messages.extend([*encoded[:results], *held, *encoded[results:]])
            held = []
        else:
            messages.extend([*held, _encode_assistant(message, where)])
            held = []
    return messages + held

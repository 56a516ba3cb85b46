"""OpenAI Responses input items ↔ IR turns: messages and their content parts, function calls, their outputs
and reasoning items (a request's ``input``; ``openai.responses.request`` reads and writes the rest of the body).

What only OpenAI can serve (``item_reference`` and built-in tool items in ``input``, files or images given by
``file_id``) is left out of the turns: the request keeps the raw ``input`` in ``extra`` and ``convertible``
names it. Items the IR holds in another form (``function_call`` with a ``namespace``, ``custom_tool_call`` and
its output, ``additional_tools``, ``web_search_call``: ``openai.responses.tools`` says how) keep the raw
``input`` too, for a Responses upstream.

Choices made on users' behalf (docs/conversions/openai_responses.md has the table):

- ``instructions`` and the system/developer messages that open ``input`` form ``Request.system``; a
  system/developer message after the first other item is a ``system`` turn in its place. Encoding, the first
  system text becomes ``instructions`` and the others leading ``developer`` messages; a ``system`` turn is a
  ``developer`` message in its place.
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
  text becomes a summary; ``encrypted_content`` is this dialect's, or another dialect's proof in Relay's
  envelope (``envelope``), which a client's reasoning item brings back (a call's proof onto its call).
- Tool results marked as errors are sent as ``Error: <text>`` (Responses has no error flag).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from relay.dialects import envelope, ir
from relay.dialects.common import bad_request, data_url, optional, want
from relay.dialects.openai.responses.tools import custom_arguments
from relay.dialects.tool_names import flat_name

DIALECT: ir.Dialect = "openai_responses"
_ITEM_KINDS = (
    "message", "function_call", "function_call_output", "reasoning",
    "custom_tool_call", "custom_tool_call_output", "web_search_call", "additional_tools",
)  # fmt: skip
#: Items the IR holds only in another form (namespaces, custom tools, searches, tools declared in ``input``): a
#: request with one keeps its raw ``input`` for a Responses upstream.
_RESHAPED = frozenset({"custom_tool_call", "custom_tool_call_output", "web_search_call", "additional_tools"})
_OUTPUTS = ("function_call_output", "custom_tool_call_output")

# ---- decode ------------------------------------------------------------------------------------------


def _image(part: Mapping[str, Any], where: str) -> ir.Image:
    url = want(part.get("image_url"), str, f"{where}.image_url", "a string")
    detail = optional(part, "detail", str, f"{where}.detail", "a string")
    if url.startswith("data:"):
        media_type, data = data_url(url, f"{where}.image_url")
        return ir.Image(data=data, media_type=media_type, detail=detail)
    if url.startswith(("https://", "http://")):
        return ir.Image(url=url, detail=detail)
    raise bad_request(f"'{where}.image_url' must be an https: or a base64 data: URL", f"{where}.image_url")


def _document(part: Mapping[str, Any], where: str) -> ir.Document:
    name = optional(part, "filename", str, f"{where}.filename", "a string")
    data = part.get("file_data")
    if data is None:
        url = want(part.get("file_url"), str, f"{where}.file_url", "a string")
        return ir.Document(media_type="application/pdf", url=url, name=name)
    want(data, str, f"{where}.file_data", "a string")
    media_type = "application/pdf"
    if data.startswith("data:"):
        media_type, data = data_url(data, f"{where}.file_data")
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
    content = item.get("output") if kind in _OUTPUTS else item.get("content")
    key = "output" if kind in _OUTPUTS else "content"
    if isinstance(content, list):
        for j, part in enumerate(content):
            if _part_blocker(part) or (kind in _OUTPUTS and _kind(part) == "input_file"):
                return f".{key}[{j}]"
    return None


def _kind(part: Any) -> Any:
    return part.get("type") if isinstance(part, dict) else None


def _user_parts(content: Any, where: str) -> tuple[ir.Part, ...]:
    if isinstance(content, str):
        return (ir.Text(content),)
    want(content, list, where, "a string or an array of content parts")
    parts: list[ir.Part] = []
    for j, part in enumerate(content):
        path = f"{where}[{j}]"
        want(part, dict, path, "an object")
        if _part_blocker(part):
            continue
        kind = part.get("type")
        if kind in ("input_text", "text"):
            parts.append(ir.Text(want(part.get("text"), str, f"{path}.text", "a string")))
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
    want(content, list, where, "a string or an array of input_text parts")
    texts = []
    for j, part in enumerate(content):
        path = f"{where}[{j}]"
        want(part, dict, path, "an object")
        if part.get("type") not in ("input_text", "text"):
            raise bad_request(f"'{path}.type' must be input_text in a system or developer message", f"{path}.type")
        texts.append(ir.Text(want(part.get("text"), str, f"{path}.text", "a string")))
    return tuple(texts)


def _assistant_texts(content: Any, where: str) -> list[ir.Text]:
    if isinstance(content, str):
        return [ir.Text(content)] if content else []
    want(content, list, where, "a string or an array of output_text parts")
    texts = []
    for j, part in enumerate(content):
        path = f"{where}[{j}]"
        want(part, dict, path, "an object")
        kind = part.get("type")
        key = "refusal" if kind == "refusal" else "text"
        if kind not in ("output_text", "input_text", "text", "refusal"):
            raise bad_request(f"'{path}.type' must be output_text or refusal in an assistant message", f"{path}.type")
        text = want(part.get(key), str, f"{path}.{key}", "a string")
        if text:
            texts.append(ir.Text(text))
    return texts


def _reasoning(item: Mapping[str, Any], where: str) -> ir.Reasoning:
    item_id = optional(item, "id", str, f"{where}.id", "a string")
    texts = []
    for key, part_kind in (("summary", "summary_text"), ("content", "reasoning_text")):
        raw = item.get(key)
        for j, part in enumerate(want(raw, list, f"{where}.{key}", "an array") if raw is not None else ()):
            path = f"{where}.{key}[{j}]"
            want(part, dict, path, "an object")
            if part.get("type", part_kind) != part_kind:
                raise bad_request(f"'{path}.type' must be {part_kind}", f"{path}.type")
            texts.append(want(part.get("text"), str, f"{path}.text", "a string"))
        if texts:
            break
    signature = optional(item, "encrypted_content", str, f"{where}.encrypted_content", "a string")
    return ir.Reasoning(text="\n\n".join(texts), signature=signature or None, dialect=DIALECT, id=item_id)


def _function_call(item: Mapping[str, Any], where: str) -> ir.ToolCall:
    call_id = want(item.get("call_id"), str, f"{where}.call_id", "a string")
    name = want(item.get("name"), str, f"{where}.name", "a string")
    namespace = optional(item, "namespace", str, f"{where}.namespace", "a string")
    if item.get("type") == "custom_tool_call":
        arguments = custom_arguments(want(item.get("input"), str, f"{where}.input", "a string"))
    else:
        arguments = want(item.get("arguments", "{}"), str, f"{where}.arguments", "a JSON string")
    name = flat_name(namespace, name)
    item_id = optional(item, "id", str, f"{where}.id", "a string")
    dialect: ir.Dialect | None = DIALECT if item_id else None
    return ir.ToolCall(id=call_id, name=name, arguments=arguments or "{}", signature=item_id, signature_dialect=dialect)


def _tool_result(item: Mapping[str, Any], where: str, names: Mapping[str, str]) -> ir.ToolResult:
    call_id = want(item.get("call_id"), str, f"{where}.call_id", "a string")
    output = item.get("output")
    content: tuple[ir.Text | ir.Image, ...]
    if isinstance(output, str):
        content = (ir.Text(output),) if output else ()
    else:
        parts = _user_parts(output, f"{where}.output")
        content = tuple(p for p in parts if isinstance(p, (ir.Text, ir.Image)))
    name = names.get(call_id) or optional(item, "name", str, f"{where}.name", "a string")
    return ir.ToolResult(call_id=call_id, name=name, content=content)


class _Turns:
    """Input items gathered into IR turns: assistant-side items merge, tool results merge."""

    def __init__(self) -> None:
        self.system: list[ir.Text] = []
        self.messages: list[ir.Message] = []
        self.names: dict[str, str] = {}
        #: The tools of ``additional_tools`` items: (their path, the raw list).
        self.added_tools: list[tuple[str, list[Any]]] = []
        self._role: str | None = None  # "assistant", "results" or None (the last turn is closed)
        self._parts: list[ir.Part | envelope.Proof] = []

    @property
    def started(self) -> bool:
        """Whether an item other than a leading system/developer message has been read."""
        return bool(self.messages) or self._role is not None

    def add(self, kind: str, parts: Iterable[ir.Part | envelope.Proof]) -> None:
        if kind != self._role:
            self.flush()
            self._role = kind
        self._parts.extend(parts)

    def flush(self) -> None:
        if self._role is not None:
            parts = tuple(envelope.settle(self._parts))  # wrapped proofs of calls, on their calls
            self.messages.append(ir.Message("assistant" if self._role == "assistant" else "user", parts))
        self._role = None
        self._parts = []

    def user(self, parts: tuple[ir.Part, ...]) -> None:
        self.flush()
        self.messages.append(ir.Message("user", parts))


def _decode_item(item: Any, where: str, turns: _Turns) -> None:
    want(item, dict, where, "an object")
    if _item_blocker(item) is not None:
        return  # kept in extra["input"]; convertible() names it
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        content = item.get("content")
        if role in ("system", "developer"):
            texts = _system_texts(content, f"{where}.content")
            if turns.started:  # an instruction mid-conversation, kept in place
                turns.flush()
                turns.messages.append(ir.Message("system", texts))
            else:
                turns.system.extend(texts)
        elif role == "user":
            turns.user(_user_parts(content, f"{where}.content"))
        elif role == "assistant":
            turns.add("assistant", _assistant_texts(content, f"{where}.content"))
        else:
            raise bad_request(f"'{where}.role' must be user, assistant, system or developer", f"{where}.role")
    elif kind in ("function_call", "custom_tool_call"):
        call = _function_call(item, where)
        turns.names[call.id] = call.name
        turns.add("assistant", (call,))
    elif kind in _OUTPUTS:
        turns.add("results", (_tool_result(item, where, turns.names),))
    elif kind == "additional_tools":
        turns.added_tools.append((f"{where}.tools", want(item.get("tools"), list, f"{where}.tools", "an array")))
    elif kind == "web_search_call":
        pass  # a search the provider ran: the upstream runs its own
    else:
        turns.add("assistant", (_client_reasoning(item, where),))


def _client_reasoning(item: Mapping[str, Any], where: str) -> ir.Reasoning | envelope.Proof:
    """A client's reasoning item: its ``encrypted_content`` may be Relay's envelope of another dialect's proof
    (the reasoning it carries, or a tool call's proof, attached to its call when the turn ends)."""
    part = _reasoning(item, where)
    if not envelope.is_envelope(part.signature):
        return part
    proof = envelope.opened(part.signature, f"{where}.encrypted_content")  # type: ignore[arg-type]
    return proof if proof.kind == "call" else envelope.as_reasoning(proof, part.text)


def _reshaped(item: Any) -> bool:
    """Whether the IR holds ``item`` only in another form (a Responses upstream gets the raw ``input``)."""
    return isinstance(item, dict) and (item.get("type") in _RESHAPED or item.get("namespace") is not None)


def _decode_input(payload: Mapping[str, Any], extra: dict[str, Any]) -> tuple[tuple[ir.Text, ...], _Turns]:
    turns = _Turns()
    instructions = optional(payload, "instructions", str, "instructions", "a string")
    if instructions:
        turns.system.append(ir.Text(instructions))
    raw = payload.get("input")
    if isinstance(raw, str):
        turns.user((ir.Text(raw),))
    elif raw is not None:
        for i, item in enumerate(want(raw, list, "input", "a string or an array of items")):
            _decode_item(item, f"input[{i}]", turns)
        turns.flush()
        if any(_item_blocker(item) is not None or _reshaped(item) for item in raw):
            extra["input"] = raw  # sent as is to a Responses upstream, with the instructions it goes with
            if instructions is not None:
                extra["instructions"] = instructions
    return tuple(turns.system), turns


# ---- encode ------------------------------------------------------------------------------------------


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


def reasoning_item(part: ir.Reasoning, item_id: str, wrapped: str | None = None) -> dict[str, Any]:
    """A reasoning item (request input or response output); ``encrypted_content`` only when it is ours, or
    ``wrapped``: another dialect's proof in Relay's envelope (for a client)."""
    item: dict[str, Any] = {"type": "reasoning", "id": item_id, "summary": []}
    if part.text:
        item["summary"] = [{"type": "summary_text", "text": part.text}]
    if part.signature and part.dialect == DIALECT:
        item["encrypted_content"] = part.signature
    elif wrapped:
        item["encrypted_content"] = wrapped
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
        elif message.role == "system":
            items.extend(_system_item(message))
        else:
            _encode_assistant(message, items)
    return items


def _system_item(message: ir.Message) -> list[dict[str, Any]]:
    """A ``system`` turn: a ``developer`` message in its place (none when it has no text)."""
    parts = [{"type": "input_text", "text": p.text} for p in message.parts if isinstance(p, ir.Text) and p.text]
    return [{"type": "message", "role": "developer", "content": _content(parts)}] if parts else []

"""Gemini ``contents``: a request's turns, and the parts of turns and answers, both ways.

Sans-IO. Shared by ``gemini.request`` (a request's ``contents``) and ``gemini.response`` (a candidate's
parts), with the readers of proto-JSON fields (camelCase or snake_case) that ``gemini.request`` uses too,
and the function-call ids ``gemini.stream`` uses too. Re-exported by ``gemini``. docs/conversions/gemini.md
has the tables below in full.

Choices made on the users' behalf:

- Decoding a client request: parts with no IR slot (``executableCode``, ``codeExecutionResult``, a
  ``functionCall`` in a user turn) are a 400.
- Function calls without an id get ``derived_id("{contents[i]}/{name}/{args}", n, "call_gemini_")``; a
  ``functionResponse`` without an id takes the id of the oldest unanswered call of its name (its own
  derived id when there is none). A response ``{"result": "<text>"}`` is that text, ``{"error": …}`` an error
  result, anything else the object's JSON text. ``inlineData`` in the SDK's URL-safe base64 is made standard.
  ``image/*`` media become images, other media documents; a ``fileData`` without ``mimeType`` is guessed
  from the URI's extension.
- A ``thoughtSignature`` on a text part goes to the reasoning part right before it when that one has no
  signature, else becomes a reasoning part holding only the signature (as the stream decoder does). One that
  is Relay's envelope (``envelope``, a client's request only) is another dialect's proof: on a call, the call's;
  else reasoning of that dialect (on an empty part, with the text of the unsigned thoughts right before it).
- Encoding an answer for a client: another dialect's proofs go as Relay's envelope in ``thoughtSignature``, on
  the thought part (``{"text": ""}`` when thoughts are not shown) or on the call.
- Encoding a request for a Gemini upstream: tool-call arguments that are not a JSON object and tool results
  whose tool name is unknown are a 400. Tool results become ``functionResponse`` (first in their user turn):
  a JSON-object text stays that object, other text is ``{"result": text}`` or ``{"error": text}``; their
  images follow as ``inlineData``/``fileData`` parts. Ids this codec derived are never sent (Gemini gave
  none); other ids are. ``thoughtSignature`` is sent back byte-identical only when Gemini made it; a model
  turn with calls but no Gemini signature gets ``skip_thought_signature_validator`` on its first call
  (Google's documented value for foreign history). Reasoning of other dialects is dropped. Consecutive
  same-role turns are merged; empty text is never sent. Images: data → ``inlineData`` (type from the IR,
  else sniffed, else ``image/jpeg``), ``data:`` URLs likewise, other URLs → ``fileData`` (type guessed from
  the extension, else ``image/jpeg``); ``detail`` is dropped.
- An IR ``system`` turn (an instruction mid-conversation) is user text in its place, marked by
  ``instructions.instruction_text`` (``<system>…</system>``): Gemini has no such turn, and moving it into
  ``systemInstruction`` would change the prompt's prefix each turn (and so miss Gemini's prompt cache).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from relay.dialects import envelope, instructions, ir
from relay.dialects.common import arguments_object, bad_request, bad_upstream, derived_id, dumps
from relay.errors import RelayError

#: Google's documented thoughtSignature for function calls Gemini did not make (foreign history).
SKIP_SIGNATURE = "skip_thought_signature_validator"
#: The prefix of function-call ids this codec derives (Gemini gave none); such ids are never sent to Gemini.
DERIVED_ID_PREFIX = "call_gemini_"

_URLSAFE = str.maketrans("-_", "+/")
_PART_META = frozenset({"thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"})
_IMAGE_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
    ".heic": "image/heic", ".heif": "image/heif", ".pdf": "application/pdf",
}  # fmt: skip
_MAGIC = (("iVBOR", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"), ("UklGR", "image/webp"))


# ---- function-call ids -------------------------------------------------------------------------------------


def call_id(id: Any, seed: str, name: str, arguments: str, index: int) -> str:
    """A function call's id: Gemini's, or one derived from the answer (``seed``), the call and its index."""
    if isinstance(id, str) and id:
        return id
    return derived_id(f"{seed}/{name}/{arguments}", index, DERIVED_ID_PREFIX)


def wire_call_id(id: str) -> str | None:
    """The id to send to Gemini: None for an empty id or one this codec derived (Gemini gave none)."""
    return None if not id or id.startswith(DERIVED_ID_PREFIX) else id


def function_call_part(id: str, name: str, args: dict[str, Any], signature: str | None) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "args": args}
    wire_id = wire_call_id(id)
    if wire_id is not None:
        call = {"id": wire_id, **call}
    part: dict[str, Any] = {"functionCall": call}
    if signature:
        part["thoughtSignature"] = signature
    return part


# ---- reading fields in either spelling ---------------------------------------------------------------------

_SNAKE: dict[str, str] = {}
_UPPER = re.compile(r"[A-Z]")
_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "an array"}


def _snake(name: str) -> str:
    snake = _SNAKE.get(name)
    if snake is None:
        snake = _SNAKE[name] = _UPPER.sub(lambda m: "_" + m.group().lower(), name)
    return snake


def camel(key: str) -> str:
    if "_" not in key:
        return key
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def field(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` (camelCase), else ``obj[name_in_snake_case]``."""
    value = obj.get(name)
    return obj.get(_snake(name)) if value is None else value


def subpath(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def want(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        what = "a number" if float in kinds else _NAMES.get(kinds[0], kinds[0].__name__)
        raise bad_request(f"'{where}' must be {what}", where)
    return value


def optional(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: str) -> Any:
    value = field(obj, name)
    return None if value is None else want(value, kind, subpath(path, name))


def required(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: str) -> Any:
    value = field(obj, name)
    if value is None:
        raise bad_request(f"'{subpath(path, name)}' is required", subpath(path, name))
    return want(value, kind, subpath(path, name))


def _fail(message: str, where: str, upstream: bool) -> RelayError:
    if upstream:
        return bad_upstream(f"invalid Gemini answer at {where}: {message}")
    return bad_request(f"'{where}' {message}", where)


# ---- decode: turns and parts -------------------------------------------------------------------------------


def decode_contents(raw: list[Any], where: str) -> tuple[ir.Message, ...]:
    messages = []
    unanswered: list[ir.ToolCall] = []
    for i, content in enumerate(raw):
        path = f"{where}[{i}]"
        want(content, dict, path)
        role = optional(content, "role", str, path) or "user"
        parts = optional(content, "parts", list, path) or []
        if role == "model":
            decoded = decode_model_parts(parts, f"{path}.parts", path, upstream=False)
            unanswered.extend(p for p in decoded if isinstance(p, ir.ToolCall))
            messages.append(ir.Message("assistant", tuple(decoded)))
        elif role in ("user", "function"):
            user = tuple(_user_part(part, f"{path}.parts[{j}]", unanswered) for j, part in enumerate(parts))
            messages.append(ir.Message("user", user))
        else:
            raise bad_request(f"'{path}.role' must be 'user' or 'model'", f"{path}.role")
    return tuple(messages)


def _user_part(part: Any, where: str, unanswered: list[ir.ToolCall]) -> ir.Part:
    want(part, dict, where)
    text = field(part, "text")
    if text is not None:
        return ir.Text(want(text, str, f"{where}.text"))
    response = field(part, "functionResponse")
    if response is not None:
        return _function_response(response, f"{where}.functionResponse", unanswered)
    media = _media(part, where)
    if media is not None:
        return media
    if field(part, "functionCall") is not None:
        raise bad_request(f"'{where}.functionCall' can only be in a model turn", f"{where}.functionCall")
    raise _unsupported(part, where)


def _unsupported(part: Mapping[str, Any], where: str) -> RelayError:
    kind = next((k for k in part if camel(k) not in _PART_META), None)
    if kind is None:
        return bad_request(f"'{where}' has no content (text, inlineData, fileData, functionCall…)", where)
    return bad_request(f"part kind '{kind}' cannot be converted for this model", f"{where}.{kind}")


def _media(part: Mapping[str, Any], where: str) -> ir.Image | ir.Document | None:
    blob = field(part, "inlineData")
    if blob is not None:
        bw = f"{where}.inlineData"
        want(blob, dict, bw)
        mime = required(blob, "mimeType", str, bw)
        data = required(blob, "data", str, bw).translate(_URLSAFE)
        if mime.startswith("image/"):
            return ir.Image(data=data, media_type=mime)
        return ir.Document(media_type=mime, data=data, name=optional(blob, "displayName", str, bw))
    file = field(part, "fileData")
    if file is not None:
        fw = f"{where}.fileData"
        want(file, dict, fw)
        uri = required(file, "fileUri", str, fw)
        mime = optional(file, "mimeType", str, fw) or _guess_type(uri, "application/octet-stream")
        if mime.startswith("image/"):
            return ir.Image(url=uri, media_type=mime)
        return ir.Document(media_type=mime, url=uri, name=optional(file, "displayName", str, fw))
    return None


def decode_model_parts(parts: list[Any], where: str, seed: str, *, upstream: bool) -> list[ir.Part]:
    """A model turn's (or an answer's) parts → IR parts; ``seed`` derives the ids of calls without one."""
    out: list[ir.Part] = []
    calls = 0
    for j, part in enumerate(parts):
        path = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise _fail("must be an object", path, upstream)
        signature = field(part, "thoughtSignature")
        if signature is not None and not isinstance(signature, str):
            raise _fail("must be a base64 string", f"{path}.thoughtSignature", upstream)
        proof = None
        if not upstream and envelope.is_envelope(signature):  # another dialect's proof, wrapped by Relay
            proof, signature = envelope.opened(signature, f"{path}.thoughtSignature"), None
        call = field(part, "functionCall")
        if call is not None:
            tool_call = _function_call(call, f"{path}.functionCall", signature or None, seed, calls, upstream)
            if proof is not None and proof.kind == "call":
                tool_call = attrs.evolve(tool_call, signature=proof.signature, signature_dialect=proof.dialect)
            out.append(tool_call)
            calls += 1
            continue
        text = field(part, "text")
        if text is None and not signature:
            if not upstream:  # an answer's images and code execution parts have no IR slot: skipped
                media = _media(part, path)
                if media is None:
                    raise _unsupported(part, path)
                out.append(media)
            continue
        if text is not None and not isinstance(text, str):
            raise _fail("must be a string", f"{path}.text", upstream)
        if proof is not None:
            _wrapped_part(out, text or "", proof, thought=field(part, "thought") is True)
            continue
        _text_part(out, text or "", signature or None, thought=field(part, "thought") is True)
    return out if upstream else envelope.settle(out)  # type: ignore[arg-type]


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


def _wrapped_part(out: list[ir.Part], text: str, proof: envelope.Proof, *, thought: bool) -> None:
    """A text part whose ``thoughtSignature`` is Relay's envelope: the reasoning (or call proof) it carries.

    On an empty part (a stream's proof after its thoughts), the reasoning takes the text of the thought
    parts right before it, which showed that same reasoning.
    """
    if proof.kind == "call":
        out.append(proof)  # type: ignore[arg-type]  # attached to its call by envelope.settle
        _text_part(out, text, None, thought=thought)
    elif thought and text:
        out.append(envelope.as_reasoning(proof, text))
    elif text:
        out.extend((envelope.as_reasoning(proof, ""), ir.Text(text)))
    else:
        shown: list[str] = []
        while out and _unsigned_thought(out[-1]):
            shown.append(out.pop().text)  # type: ignore[union-attr]
        out.append(envelope.as_reasoning(proof, "".join(reversed(shown))))


def _unsigned_thought(part: ir.Part) -> bool:
    return isinstance(part, ir.Reasoning) and part.dialect == "gemini" and not part.signature and not part.redacted


def _function_call(raw: Any, where: str, signature: str | None, seed: str, index: int, upstream: bool) -> ir.ToolCall:
    if not isinstance(raw, dict):
        raise _fail("must be an object", where, upstream)
    name = field(raw, "name")
    if not isinstance(name, str) or not name:
        raise _fail("must be a non-empty string", f"{where}.name", upstream)
    args = field(raw, "args")
    if args is not None and not isinstance(args, dict):
        raise _fail("must be an object", f"{where}.args", upstream)
    id = field(raw, "id")
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
    want(raw, dict, where)
    id = optional(raw, "id", str, where)
    name = optional(raw, "name", str, where)
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
    content, is_error = _result_content(optional(raw, "response", dict, where))
    for k, part in enumerate(optional(raw, "parts", list, where) or ()):
        media = _media(want(part, dict, f"{where}.parts[{k}]"), f"{where}.parts[{k}]")
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


# ---- encode: turns and parts -------------------------------------------------------------------------------


def encode_contents(messages: tuple[ir.Message, ...]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if message.role == "assistant":
            parts = encode_model_parts(message.parts, request=True, show=False, where=f"messages[{i}]")
            names.update((p.id, p.name) for p in message.parts if isinstance(p, ir.ToolCall))
            role = "model"
        elif message.role == "system":  # an instruction mid-conversation: marked user text in its place
            text = instructions.instruction_text(message)
            parts = [{"text": text}] if text else []
            role = "user"
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


def encode_model_parts(
    parts: tuple[ir.Part, ...], *, request: bool, show: bool, where: str = ""
) -> list[dict[str, Any]]:
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
            if part.signature_dialect == "gemini":
                signature = part.signature
            else:  # another dialect's proof: wrapped for a client, never sent to Gemini
                proof = (part.signature, part.signature_dialect, part.id)
                signature = None if request else envelope.call_envelope(*proof, "gemini")
            out.append(function_call_part(part.id, part.name, arguments or {}, signature))
        elif isinstance(part, ir.Reasoning):
            wrapped = None if request else envelope.reasoning_envelope(part, "gemini", with_text=not show)
            if wrapped is not None:  # another dialect's proof, for a client: on the thought part
                shown = show and bool(part.text)
                out.append({"text": part.text, "thought": True} if shown else {"text": ""})
                out[-1]["thoughtSignature"] = wrapped
                continue
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

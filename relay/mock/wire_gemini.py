"""Gemini on the mock's wire: ``…/models/{model}:generateContent``, ``:streamGenerateContent`` and
``:countTokens`` (under ``/v1beta/`` or ``/v1/``), and the Gemini model list.

Parts come in this order: the reasoning as a ``thought: true`` part (only with
``thinkingConfig.includeThoughts``), then the text, or one ``functionCall`` part per call (with an
``id``; the first carries a ``thoughtSignature`` when thinking is on, see ``signing``). Usage counts
thoughts apart (``thoughtsTokenCount``; ``candidatesTokenCount`` excludes them) and reports
``cachedContentTokenCount`` for ``mock:cached=N``. A stream sends one part per chunk; the last chunk
carries ``finishReason`` and the full ``usageMetadata``. With ``?alt=sse`` chunks are SSE events
ending in ``\\r\\n\\r\\n``; without, one JSON array sent element by element.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson

from relay.config import MockOptions
from relay.mock import model, signing
from relay.mock.model import JSON_OBJECT, Answer, Prompt, Reply, Tool, split
from relay.mock.strict_gemini import get, problem, thinking_on

__all__ = ["count_tokens", "error", "model_info", "model_list", "problem", "prompt", "respond", "response"]

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error(status: int, message: str, reason: str | None = None) -> Answer:
    """Google's error shape; ``reason`` adds the ``ErrorInfo`` detail Google sends (``API_KEY_INVALID``)."""
    name = _STATUS.get(status, "FAILED_PRECONDITION" if status < 500 else "UNKNOWN")
    error: dict[str, Any] = {"code": status, "message": message, "status": name}
    if reason is not None:
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}
        error["details"] = [info]
    return model.json_answer(status, {"error": error})


def _text(content: Any) -> str:
    parts = get(content, "parts")
    if not isinstance(parts, list):
        return ""
    return " ".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    )


def _responses(content: Any) -> list[Any]:
    parts = get(content, "parts")
    if not isinstance(parts, list):
        return []
    return [get(get(p, "functionResponse"), "response") for p in parts if get(p, "functionResponse") is not None]


def prompt(payload: dict[str, Any]) -> Prompt:
    """The neutral view of a generateContent body (camelCase or snake_case keys)."""
    contents = [c for c in get(payload, "contents") or () if isinstance(c, dict)]
    users = [c for c in contents if get(c, "role") in (None, "", "user") and _text(c)]
    last = contents[-1] if contents else {}
    results = _responses(last) if get(last, "role") in (None, "", "user") else []
    system = get(payload, "systemInstruction")
    texts = [_text(system)] if system else []
    texts += [" ".join([_text(c), *(model.result_text(r) for r in _responses(c))]).strip() for c in contents]
    config = get(payload, "generationConfig") or {}
    limit = get(config, "maxOutputTokens")
    stops = get(config, "stopSequences")
    kind, named = _choice(get(get(payload, "toolConfig"), "functionCallingConfig"))
    return Prompt(
        text=_text(users[-1]) if users else "",
        turn=model.last_turn(("user" if get(c, "role") in (None, "", "user") else "other", _text(c)) for c in contents),
        tools=_tools(get(payload, "tools")),
        tool_choice=kind,
        tool_name=named,
        tool_result=" ".join(model.result_text(r) for r in results) if results else None,
        tool_results=model.results_since_text(
            (get(c, "role") in (None, "", "user") and bool(_text(c)), len(_responses(c))) for c in contents
        ),
        max_tokens=limit if isinstance(limit, int) else None,
        reasoning=thinking_on(payload),
        output_schema=_schema(config),
        stop=tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else (),
        prompt_tokens=model.count(texts),
        seed=model.digest(payload),
    )


def _tools(tools: Any) -> tuple[Tool, ...]:
    found = []
    for tool in tools if isinstance(tools, list) else ():
        for declaration in get(tool, "functionDeclarations") or ():
            name = get(declaration, "name")
            schema = get(declaration, "parametersJsonSchema") or get(declaration, "parameters") or {}
            if isinstance(name, str):
                found.append(Tool(name, schema if isinstance(schema, dict) else {}))
    return tuple(found)


def _choice(config: Any) -> tuple[Literal["auto", "none", "required", "named"], str | None]:
    mode = get(config, "mode")
    if mode == "NONE":
        return "none", None
    if mode == "ANY":
        allowed = get(config, "allowedFunctionNames")
        if isinstance(allowed, list) and allowed and isinstance(allowed[0], str):
            return "named", allowed[0]
        return "required", None
    return "auto", None


def _schema(config: Any) -> dict[str, Any] | None:
    if get(config, "responseMimeType") != "application/json":
        return None
    for schema in (get(config, "responseJsonSchema"), config.get("_responseJsonSchema"), get(config, "responseSchema")):
        if isinstance(schema, dict):
            return schema
    return JSON_OBJECT


# ---- the response ----------------------------------------------------------------------------------


def _parts(r: Reply, thoughts: bool) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if r.reasoning and thoughts:
        parts.append({"text": r.reasoning, "thought": True})
    if r.text:
        parts.append({"text": r.text})
    for index, call in enumerate(r.tool_calls):
        args = orjson.loads(call.arguments)
        part: dict[str, Any] = {"functionCall": {"id": call.id, "name": call.name, "args": args}}
        if r.reasoning and index == 0:
            part["thoughtSignature"] = signing.call_signature(call.name, args)
        parts.append(part)
    return parts


def _usage(r: Reply, final: bool = True) -> dict[str, Any]:
    if not final:
        return {"promptTokenCount": r.prompt_tokens, "totalTokenCount": r.prompt_tokens}
    usage: dict[str, Any] = {
        "promptTokenCount": r.prompt_tokens,
        "candidatesTokenCount": r.completion_tokens - r.reasoning_tokens,
        "totalTokenCount": r.prompt_tokens + r.completion_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": r.prompt_tokens}],
    }
    if r.reasoning_tokens:
        usage["thoughtsTokenCount"] = r.reasoning_tokens
    if r.cached_tokens:
        usage["cachedContentTokenCount"] = r.cached_tokens
    return usage


def _chunk(r: Reply, model_name: str, parts: list[dict[str, Any]], final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if final:
        candidate["finishReason"] = "MAX_TOKENS" if r.finish_reason == "length" else "STOP"
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(r, final),
        "modelVersion": model_name,
        "responseId": r.id,
    }


def response(r: Reply, model_name: str, thoughts: bool) -> dict[str, Any]:
    return _chunk(r, model_name, _parts(r, thoughts), final=True)


def chunks(r: Reply, model_name: str, thoughts: bool) -> list[dict[str, Any]]:
    """The streamed answer: one part per chunk (text in ``r.chunks`` pieces), the last one finishing."""
    pieces: list[dict[str, Any]] = []
    for part in _parts(r, thoughts):
        if "text" in part:
            pieces += [{**part, "text": p} for p in split(part["text"], r.chunks)]
        else:
            pieces.append(part)
    pieces = pieces or [{"text": ""}]
    return [_chunk(r, model_name, [p], final=i == len(pieces) - 1) for i, p in enumerate(pieces)]


def _includes_thoughts(payload: dict[str, Any]) -> bool:
    return bool(get(get(get(payload, "generationConfig"), "thinkingConfig"), "includeThoughts"))


# ---- answers ---------------------------------------------------------------------------------------


def respond(payload: Any, options: MockOptions, model_name: str, stream: Literal["sse", "array"] | None) -> Answer:
    refused = problem(payload)
    if refused is not None:
        return error(400, refused)
    r = model.answer(prompt(payload), options)
    status = r.directives.status
    if status:
        return Answer(status, error(status, f"mock upstream error {status}").body, model.JSON_HEADERS, r)
    thoughts = _includes_thoughts(payload)
    if stream is None:
        return Answer(200, orjson.dumps(response(r, model_name, thoughts)), model.JSON_HEADERS, r)
    bodies = [orjson.dumps(c) for c in chunks(r, model_name, thoughts)]
    if stream == "sse":
        return Answer(200, tuple(b"data: " + b + b"\r\n\r\n" for b in bodies), model.SSE_HEADERS, r)
    frames = (b"[" + bodies[0], *(b",\r\n" + b for b in bodies[1:]), b"]")
    return Answer(200, frames, model.JSON_HEADERS, r)


def count_tokens(payload: Any) -> Answer:
    """``:countTokens``: ``{contents}`` or ``{generateContentRequest: {…}}`` → ``totalTokens``."""
    if not isinstance(payload, dict):
        return error(400, "Invalid JSON payload received. Expected an object.")
    for key in payload:
        if key not in ("contents", "generateContentRequest", "generate_content_request"):
            return error(400, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
    inner = get(payload, "generateContentRequest")
    request = inner if isinstance(inner, dict) else {"contents": payload.get("contents")}
    refused = problem(request)
    if refused is not None:
        return error(400, refused)
    tokens = prompt(request).prompt_tokens
    return model.json_answer(
        200, {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}
    )


def _info(name: str) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name,
        "description": "The relay mock model.",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
        "thinking": True,
    }


def model_list(models: Sequence[str]) -> bytes:
    return orjson.dumps({"models": [_info(m) for m in models]})


def model_info(name: str) -> bytes:
    return orjson.dumps(_info(name.removeprefix("models/")))

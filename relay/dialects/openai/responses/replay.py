"""The Responses stream of a finished Response object: what ``GET /v1/responses/{id}?stream=true`` replays when
no events of the response were kept (a response answered whole, or streamed without ``background``).

The sequence is the one OpenAI streams, with each text or argument string sent as a single delta:
``response.created`` and ``response.in_progress`` (the object with no output), then per output item
``response.output_item.added``, its parts (``content_part.added`` / ``output_text.delta`` / ``output_text.done`` /
``content_part.done`` for a message; ``function_call_arguments.delta`` / ``.done`` for a function call;
``reasoning_summary_part.added`` / ``reasoning_summary_text.delta`` / ``.done`` / ``reasoning_summary_part.done``
for a reasoning item's summary), ``response.output_item.done``, and last the terminal event of its status
(``response.completed``, ``response.incomplete``, ``response.failed`` or ``response.cancelled``). Sequence
numbers count from 0. Deterministic: the same object gives the same events.
"""

from __future__ import annotations

from typing import Any

import orjson

#: The terminal event of a Response's status.
TERMINAL = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
    "cancelled": "response.cancelled",
}


def frame(event: dict[str, Any]) -> bytes:
    """One SSE frame of a Responses event."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of ``response`` (a finished Response object), numbered from 0."""
    out: list[dict[str, Any]] = []
    opening = {**response, "status": "in_progress", "output": [], "usage": None, "error": None}
    opening["incomplete_details"] = None
    out.append({"type": "response.created", "response": opening})
    out.append({"type": "response.in_progress", "response": opening})
    for index, item in enumerate(response.get("output") or ()):
        if isinstance(item, dict):
            _item(out, index, item)
    status = str(response.get("status") or "completed")
    out.append({"type": TERMINAL.get(status, "response.completed"), "response": response})
    return [{"type": event["type"], "sequence_number": n, **event} for n, event in enumerate(out)]


def _item(out: list[dict[str, Any]], index: int, item: dict[str, Any]) -> None:
    kind = item.get("type")
    item_id = item.get("id")
    where = {"output_index": index, "item_id": item_id}
    if kind == "message":
        out.append({"type": "response.output_item.added", "output_index": index, "item": _opened(item, content=[])})
        for n, part in enumerate(item.get("content") or ()):
            if not isinstance(part, dict):
                continue
            at = {**where, "content_index": n}
            if part.get("type") == "output_text":
                text = str(part.get("text") or "")
                empty = {**part, "text": "", "annotations": []}
                out.append({"type": "response.content_part.added", **at, "part": empty})
                out.append({"type": "response.output_text.delta", **at, "delta": text, "logprobs": []})
                out.append({"type": "response.output_text.done", **at, "text": text, "logprobs": []})
            else:
                out.append({"type": "response.content_part.added", **at, "part": part})
            out.append({"type": "response.content_part.done", **at, "part": part})
    elif kind == "function_call":
        arguments = str(item.get("arguments") or "")
        out.append({"type": "response.output_item.added", "output_index": index, "item": _opened(item, arguments="")})
        out.append({"type": "response.function_call_arguments.delta", **where, "delta": arguments})
        out.append({"type": "response.function_call_arguments.done", **where, "arguments": arguments})
    elif kind == "reasoning":
        out.append({"type": "response.output_item.added", "output_index": index, "item": _opened(item, summary=[])})
        for n, part in enumerate(item.get("summary") or ()):
            if not isinstance(part, dict):
                continue
            at = {**where, "summary_index": n}
            text = str(part.get("text") or "")
            out.append({"type": "response.reasoning_summary_part.added", **at, "part": {**part, "text": ""}})
            out.append({"type": "response.reasoning_summary_text.delta", **at, "delta": text})
            out.append({"type": "response.reasoning_summary_text.done", **at, "text": text})
            out.append({"type": "response.reasoning_summary_part.done", **at, "part": part})
    else:
        out.append({"type": "response.output_item.added", "output_index": index, "item": item})
    out.append({"type": "response.output_item.done", "output_index": index, "item": item})


def _opened(item: dict[str, Any], **empty: Any) -> dict[str, Any]:
    """``item`` as it is announced, before its content: emptied, ``in_progress`` when it has a status."""
    opened = {**item, **empty}
    if "status" in item:
        opened["status"] = "in_progress"
    return opened

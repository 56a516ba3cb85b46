"""The mock upstream's stored responses, as OpenAI Responses keeps them (in memory, one store per ``Mock``).

``POST …/responses`` is answered by ``wire_responses`` as before, but a response created with ``store`` (the
default) is kept: its input items (those of the response it continued first) and the Response object. Then

- ``previous_response_id`` naming a kept response continues it: the mock answers the request with that
  response's input and output items put before its own (reasoning items without ``encrypted_content`` left
  out); an unknown id is refused as before (400 ``previous_response_not_found``);
- ``GET …/responses/{id}`` is the Response object, ``DELETE`` forgets it (OpenAI's deletion object), and
  ``GET …/responses/{id}/input_items`` lists its input items (``openai.responses.listing``); an unknown id is a
  404 in OpenAI's shape.

``background: true`` (with ``store``) is answered at once with the Response object ``queued``; the mock
finishes it instantly, so the next ``GET`` finds it ``completed`` (``?stream=true`` replays its events,
``openai.responses.replay``, from ``starting_after``), unless ``POST …/responses/{id}/cancel`` came first: then
it is ``cancelled`` with no output. Cancelling a response not created with ``background`` is a 400, one already
finished is answered as it is.

Deterministic: the same requests in the same order get the same answers (a response's id is the digest of
what the mock answered, as ``wire_responses`` makes it).
"""

from __future__ import annotations

import hashlib
import re
import weakref
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from relay.dialects.openai.responses.listing import as_items, listed, page
from relay.dialects.openai.responses.replay import events as replay_events
from relay.dialects.openai.responses.replay import frame as replay_frame
from relay.errors import RelayError
from relay.mock import wire_chat, wire_responses
from relay.mock.call import load_json
from relay.mock.model import SSE_HEADERS, Answer, json_answer

if TYPE_CHECKING:
    from relay.mock.call import Call, Dialect, MockState, RouteEntry


@attrs.define
class Kept:
    input_items: list[Any]
    response: dict[str, Any]
    #: A background response not yet looked at: ``queued`` until read, cancelled if cancelled first.
    pending: bool = False


#: Responses a mock keeps at most; beyond, the oldest are forgotten (a long benchmark must not grow it forever).
MAX_KEPT = 10_000

_stores: weakref.WeakKeyDictionary[MockState, dict[str, Kept]] = weakref.WeakKeyDictionary()


def _kept(mock: MockState) -> dict[str, Kept]:
    return _stores.setdefault(mock, {})


def _not_found(response_id: str) -> Answer:
    return wire_chat.error(404, f"Response with id '{response_id}' not found.", "response_id", code="not_found")


def _final(answer: Answer) -> dict[str, Any] | None:
    """The Response object of a successful answer, whole or streamed (its terminal event's)."""
    if answer.status != 200:
        return None
    if isinstance(answer.body, bytes):
        return orjson.loads(answer.body)  # type: ignore[no-any-return]
    last = answer.body[-1]
    data = last[last.index(b"\ndata: ") + len(b"\ndata: ") :]
    response = orjson.loads(data).get("response")
    return response if isinstance(response, dict) else None


def _continuing(answer: Answer, previous: Any) -> Answer:
    """``answer`` with its Response objects naming the response it continued."""
    unset, said = b'"previous_response_id":null', b'"previous_response_id":' + orjson.dumps(previous)
    if isinstance(answer.body, bytes):
        return attrs.evolve(answer, body=answer.body.replace(unset, said, 1))
    return attrs.evolve(answer, body=tuple(frame.replace(unset, said, 1) for frame in answer.body))


def _create(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    payload = load_json(dialect, call.body)
    if isinstance(payload, Answer):
        return payload
    if not isinstance(payload, dict):
        return wire_responses.respond(payload, mock.options)
    kept = _kept(mock)
    previous = payload.get("previous_response_id")
    try:
        own = as_items(payload.get("input"))
    except RelayError:
        return wire_responses.respond(payload, mock.options)  # refused there, as before
    inputs = own
    if isinstance(previous, str) and previous in kept:
        earlier = kept[previous]
        output = [
            item
            for item in earlier.response.get("output") or ()
            if not (isinstance(item, dict) and item.get("type") == "reasoning" and not item.get("encrypted_content"))
        ]
        inputs = [*earlier.input_items, *output, *own]
        payload = {k: v for k, v in payload.items() if k != "previous_response_id"}
        payload["input"] = inputs
    background = payload.get("background") is True
    if background:
        if payload.get("store") is False:
            return wire_chat.error(400, "Background mode requires 'store' to be true.", "store")
        payload = {**payload, "stream": False}
    answer = wire_responses.respond(payload, mock.options)
    if inputs is not own:
        answer = _continuing(answer, previous)
    response = _final(answer) if payload.get("store") is not False else None
    if response is not None and isinstance(response.get("id"), str):
        kept.pop(response["id"], None)
        if background:
            response = {**response, "background": True}
        kept[response["id"]] = Kept(inputs, response, pending=background)
        while len(kept) > MAX_KEPT:
            del kept[next(iter(kept))]
        if background:
            return json_answer(200, {**response, "status": "queued", "output": [], "usage": None})
    return answer


def _retrieve(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    found = _kept(mock).get(match["id"])
    if found is None:
        return _not_found(match["id"])
    found.pending = False
    if call.query.get("stream", "false") not in ("true", "1"):
        return json_answer(200, found.response)
    after = call.query.get("starting_after", "-1")
    if not after.lstrip("-").isdigit():
        return wire_chat.error(400, "'starting_after' must be an integer.", "starting_after")
    frames = tuple(replay_frame(event) for event in replay_events(found.response)[int(after) + 1 :])
    return Answer(200, frames, SSE_HEADERS)


def _cancel(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    found = _kept(mock).get(match["id"])
    if found is None:
        return _not_found(match["id"])
    if found.response.get("background") is not True:
        return wire_chat.error(400, "Only responses created with background=true can be cancelled.", "response_id")
    if found.pending:
        found.pending = False
        found.response = {**found.response, "status": "cancelled", "output": [], "usage": None}
    return json_answer(200, found.response)


def _delete(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    if _kept(mock).pop(match["id"], None) is None:
        return _not_found(match["id"])
    return json_answer(200, {"id": match["id"], "object": "response.deleted", "deleted": True})


def _input_items(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    found = _kept(mock).get(match["id"])
    if found is None:
        return _not_found(match["id"])
    try:
        return json_answer(200, page(listed(match["id"], found.input_items), call.query))
    except RelayError as error:
        return wire_chat.error(error.status, error.message, error.param, code=error.code)


def _compact(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    """OpenAI's compaction: the input's user messages, then one compaction item (a digest stands for the
    upstream's opaque ``encrypted_content``); the usage counts the input as ``wire_responses`` does."""
    payload = load_json(dialect, call.body)
    if isinstance(payload, Answer):
        return payload
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), str):
        return wire_chat.error(400, "Missing required parameter: 'model'.", "model")
    try:
        items = as_items(payload.get("input"))
    except RelayError as error:
        return wire_chat.error(400, error.message, "input")
    answered = _final(wire_responses.respond({**payload, "input": items, "stream": False}, mock.options))
    if answered is None:
        return wire_responses.respond({**payload, "input": items, "stream": False}, mock.options)
    digest = hashlib.sha256(orjson.dumps(items)).hexdigest()[:48]
    users = [
        {"type": "message", "role": "user", "id": f"msg_{digest[:40]}{n:08d}", "status": "completed",
         "content": [{"type": "input_text", "text": item.get("content")}] if isinstance(item.get("content"), str)
         else item.get("content")}
        for n, item in enumerate(i for i in items if isinstance(i, dict) and i.get("role") == "user")
    ]  # fmt: skip
    compaction = {"type": "compaction", "id": f"cmp_{digest}", "encrypted_content": f"mock-compaction:{digest}"}
    return json_answer(
        200,
        {
            "id": f"cmp_{digest}",
            "object": "response.compaction",
            "created_at": answered.get("created_at", 0),
            "output": [*users, compaction],
            "usage": answered.get("usage"),
        },
    )


_ONE = re.compile(r"/responses/(?P<id>(?!input_tokens$)[^/]+)$")

#: Routes ``relay.mock.router`` tries before its own: (method, path pattern, dialect or None, handler).
ROUTES: tuple[RouteEntry, ...] = (
    ("POST", re.compile(r"/responses$"), "openai", _create),
    ("GET", _ONE, "openai", _retrieve),
    ("DELETE", _ONE, "openai", _delete),
    ("GET", re.compile(r"/responses/(?P<id>[^/]+)/input_items$"), "openai", _input_items),
    ("POST", re.compile(r"/responses/compact$"), "openai", _compact),
    ("POST", re.compile(r"/responses/(?P<id>[^/]+)/cancel$"), "openai", _cancel),
)

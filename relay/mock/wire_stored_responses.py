"""The mock upstream's stored responses, as OpenAI Responses keeps them (in memory, one store per ``Mock``).

``POST …/responses`` is answered by ``wire_responses`` as before, but a response created with ``store`` (the
default) is kept: its input items (those of the response it continued first) and the Response object. Then

- ``previous_response_id`` naming a kept response continues it: the mock answers the request with that
  response's input and output items put before its own (reasoning items without ``encrypted_content`` left
  out); an unknown id is refused as before (400 ``previous_response_not_found``);
- ``GET …/responses/{id}`` is the Response object, ``DELETE`` forgets it (OpenAI's deletion object), and
  ``GET …/responses/{id}/input_items`` lists its input items (``openai_responses_listing``); an unknown id is a
  404 in OpenAI's shape.

Deterministic: the same requests in the same order get the same answers (a response's id is the digest of
what the mock answered, as ``wire_responses`` makes it).
"""

from __future__ import annotations

import re
import weakref
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from relay.dialects.openai_responses_listing import as_items, listed, page
from relay.errors import RelayError
from relay.mock import wire_chat, wire_responses
from relay.mock.model import Answer, json_answer

if TYPE_CHECKING:
    from relay.mock.router import Call, Dialect, Mock, RouteEntry


@attrs.frozen
class Kept:
    input_items: list[Any]
    response: dict[str, Any]


#: Responses a mock keeps at most; beyond, the oldest are forgotten (a long benchmark must not grow it forever).
MAX_KEPT = 10_000

_stores: weakref.WeakKeyDictionary[Mock, dict[str, Kept]] = weakref.WeakKeyDictionary()


def _kept(mock: Mock) -> dict[str, Kept]:
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


def _create(mock: Mock, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    from relay.mock import router  # the router imports this module

    payload = router._load(dialect, call.body)
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
    answer = wire_responses.respond(payload, mock.options)
    if inputs is not own:
        answer = _continuing(answer, previous)
    response = _final(answer) if payload.get("store") is not False else None
    if response is not None and isinstance(response.get("id"), str):
        kept.pop(response["id"], None)
        kept[response["id"]] = Kept(inputs, response)
        while len(kept) > MAX_KEPT:
            del kept[next(iter(kept))]
    return answer


def _retrieve(mock: Mock, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    found = _kept(mock).get(match["id"])
    return json_answer(200, found.response) if found is not None else _not_found(match["id"])


def _delete(mock: Mock, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    if _kept(mock).pop(match["id"], None) is None:
        return _not_found(match["id"])
    return json_answer(200, {"id": match["id"], "object": "response.deleted", "deleted": True})


def _input_items(mock: Mock, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    found = _kept(mock).get(match["id"])
    if found is None:
        return _not_found(match["id"])
    try:
        return json_answer(200, page(listed(match["id"], found.input_items), call.query))
    except RelayError as error:
        return wire_chat.error(error.status, error.message, error.param, code=error.code)


_ONE = re.compile(r"/responses/(?P<id>(?!input_tokens$)[^/]+)$")

#: Routes ``relay.mock.router`` tries before its own: (method, path pattern, dialect or None, handler).
ROUTES: tuple[RouteEntry, ...] = (
    ("POST", re.compile(r"/responses$"), "openai", _create),
    ("GET", _ONE, "openai", _retrieve),
    ("DELETE", _ONE, "openai", _delete),
    ("GET", re.compile(r"/responses/(?P<id>[^/]+)/input_items$"), "openai", _input_items),
)

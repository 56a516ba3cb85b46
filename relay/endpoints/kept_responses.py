"""Stateful Responses on every channel: ``previous_response_id`` and ``store`` for ``POST /v1/responses``.

``prepare`` reads the request before it is routed. When Relay keeps the response it continues (an answer it
converted), that response's input and output items go before the request's own ``input`` and the field is
dropped: every channel then gets the whole conversation (its ``instructions`` are not carried over, as
OpenAI). When an OpenAI Responses upstream keeps it, the request is pinned to that upstream's channel and
passed through as it is. A response another key owns, or one that expired, is a 404
``previous_response_not_found``; an id Relay never saw passes through to an OpenAI Responses channel (the
upstream decides) and is a 404 on any other.

``Keeper`` then watches each attempt: on a converted channel it reads the final Response (the whole answer,
or a stream's ``response.completed`` / ``response.incomplete`` event) and keeps it with its input items; on
an OpenAI Responses channel it notes only which channel keeps the response (its id, read from the answer or
the stream's first event). Nothing is kept when the request says ``store: false``. A stream's response is
kept after its last event and before the stream's end, so a client that reads to the end can continue at
once. Expired rows (``[responses] retention_days``) are never served, and deleted by a prune that runs at
most every ``PRUNE_EVERY`` seconds in each process, after a save.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects.openai.responses.listing import as_items
from relay.errors import RelayError
from relay.http import sse
from relay.http.messages import Response
from relay.store import Store, StoreError, Tx, conversations
from relay.store import responses as kept

from .conversation_responses import Link, echoed, record
from .relayed import Steps

if TYPE_CHECKING:
    from relay.app import Relay

log = logging.getLogger("relay.responses")

#: Seconds between two prunes of expired responses by one process.
PRUNE_EVERY = 600.0
#: The terminal events of a converted stream whose response is kept.
_KEPT_EVENTS = (b"response.completed", b"response.incomplete")
_ECHO_UNSET = b'"previous_response_id":null'
_CONVERSATION_UNSET = b'"conversation":null'
_CONVERSATION_KEY = b'"conversation":'
_PREVIOUS_KEY = b'"previous_response_id":'

_pruned: weakref.WeakKeyDictionary[Store, float] = weakref.WeakKeyDictionary()


def not_found(response_id: str, param: str | None = None) -> RelayError:
    if param == "previous_response_id":
        return RelayError(
            404,
            "not_found",
            f"Previous response with id '{response_id}' not found.",
            param=param,
            code="previous_response_not_found",
        )
    return RelayError(404, "not_found", f"No response found with id '{response_id}'.", code="response_not_found")


def cutoff(relay: Relay) -> float | None:
    return kept.cutoff_for(relay.config.responses.retention_days, time.time())


def _chain(earlier: kept.StoredResponse) -> list[Any]:
    """The items a follow-up of ``earlier`` starts with: its input, then its output, but reasoning items with no
    ``encrypted_content`` (only the upstream that made them could read them by id)."""
    output = [
        item
        for item in earlier.output_items
        if not (isinstance(item, dict) and item.get("type") == "reasoning" and not item.get("encrypted_content"))
    ]
    return [*earlier.input_items, *output]


async def prepare(relay: Relay, key_name: str, payload: dict[str, Any]) -> Keeper:
    """The keeper of a ``/v1/responses`` request (its payload with the chain it continues, and its pin)."""
    store_flag = payload.get("store")
    if store_flag is not None and not isinstance(store_flag, bool):
        raise RelayError(400, "invalid_request", "'store' must be a boolean", param="store")
    keeper = Keeper(relay, key_name, payload, store=store_flag is not False)
    if keeper.store:
        keeper.input_items = as_items(payload.get("input"))
    previous = payload.get("previous_response_id")
    if previous is None:
        return keeper
    if not isinstance(previous, str) or not previous:
        raise RelayError(
            400, "invalid_request", "'previous_response_id' must be a non-empty string", param="previous_response_id"
        )
    keeper.previous = previous
    limit = cutoff(relay)

    def look(tx: Tx) -> tuple[kept.StoredResponse | kept.Affinity | None, bool]:
        return kept.find(tx, previous, key_name, limit), kept.known(tx, previous)

    try:
        found, known = await relay.gateway.store.transaction(look)
    except StoreError as error:
        log.warning("stored responses unavailable: %s", error)
        raise RelayError(
            503, "upstream", "the response store is unavailable; try again shortly", code="store_unavailable"
        ) from None
    if isinstance(found, kept.StoredResponse):
        if found.status in ("queued", "in_progress"):  # a background response not finished yet
            raise RelayError(
                400,
                "invalid_request",
                f"Previous response with id '{previous}' is still {found.status}; wait until it finishes.",
                param="previous_response_id",
            )
        own = as_items(payload.get("input"))
        chained = _chain(found)
        keeper.input_items = [*chained, *own]
        keeper.chained = True
        keeper.payload = {k: v for k, v in payload.items() if k != "previous_response_id"}
        keeper.payload["input"] = keeper.input_items
    elif isinstance(found, kept.Affinity):
        keeper.pin = found.channel if found.channel in relay.channels else None
        keeper.unresolved = True
    elif known:
        raise not_found(previous, "previous_response_id")
    else:
        keeper.unresolved = True
    return keeper


class Keeper:
    """What one ``/v1/responses`` request keeps of its answer, attempt after attempt."""

    def __init__(self, relay: Relay, key_name: str, payload: dict[str, Any], *, store: bool) -> None:
        self.relay = relay
        self.key_name = key_name
        #: The payload to send (the chain put first when Relay keeps the response continued), until ``take``.
        self.payload: dict[str, Any] | None = payload
        self.model = payload.get("model")
        self.store = store
        #: The ``previous_response_id`` the client gave.
        self.previous: str | None = None
        #: The input items of the response (the chain's, then the request's own), when it is to be kept.
        self.input_items: list[Any] = []
        #: Relay keeps the response continued: its items were put first, and the field dropped.
        self.chained = False
        self.instructions = payload.get("instructions")
        #: ``previous_response_id`` stays in the body: only an OpenAI Responses channel can take it.
        self.unresolved = False
        #: The channel of the upstream keeping the response continued.
        self.pin: str | None = None
        self.channel = ""
        self.converted = False
        #: The attempt's final Response object (converted), or the id the upstream gave (passed through).
        self.response: dict[str, Any] | None = None
        self.upstream_id: str | None = None
        #: The conversation the response answers in (``conversation_responses``), and the attempt's final
        #: Response object on any channel, read to extend it.
        self.conversation: Link | None = None
        self.final: dict[str, Any] | None = None

    def take(self) -> dict[str, Any]:
        """The payload to send; the keeper lets it go (a stream must not hold its request)."""
        payload, self.payload = self.payload, None
        assert payload is not None
        return payload

    def begin(self, channel: str, converted: bool) -> None:
        """An attempt on ``channel``; a 404 when it is converted and the response continued is unknown to Relay."""
        if converted and self.unresolved:
            assert self.previous is not None
            raise not_found(self.previous, "previous_response_id")
        self.channel = channel
        self.converted = converted
        self.response = None
        self.upstream_id = None
        self.final = None

    def watch(self, steps: Steps) -> Steps:
        """``steps`` with this keeper reading the stream on the way."""
        if not self.store and not self.chained and self.conversation is None:
            return steps
        return _Watched(steps, self)

    async def settle(self, answer: Response | None) -> Response | None:
        """Keep what the attempt answered (``answer``: its whole answer, None for a stream); the answer to give."""
        if answer is not None and 200 <= answer.status < 300 and (self.store or self.chained or self.conversation):
            answer = self._read_whole(answer)
        if self.store and self.converted and self.response is not None:
            await self._keep(self.response)
        elif self.store and not self.converted and self.upstream_id is not None:
            affinity = kept.Affinity(self.upstream_id, self.key_name, self.channel, time.time())
            await self._write(lambda tx: kept.save_affinity(tx, affinity), affinity.id, short=True)
        if self.conversation is not None and self.final is not None:
            await record(self.relay, self.key_name, self.conversation, self.final)
        return answer

    def _read_whole(self, answer: Response) -> Response:
        try:
            response = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            return answer
        if not isinstance(response, dict) or not isinstance(response.get("id"), str):
            return answer
        if self.chained and response.get("previous_response_id") is None:
            response["previous_response_id"] = self.previous  # the chain was put in the input: said as asked
            answer = Response(answer.status, orjson.dumps(response), answer.headers)
        if self.conversation is not None:
            self.final = response = echoed(response, self.conversation)
            answer = Response(answer.status, orjson.dumps(response), answer.headers)
        if self.converted:
            self.response = response
        else:
            self.upstream_id = response["id"]
        return answer

    def echo(self, data: bytes) -> bytes:
        """One piece of the client's stream, its Response objects saying the ``previous_response_id`` asked."""
        if self.chained and _ECHO_UNSET in data:
            data = data.replace(_ECHO_UNSET, b'"previous_response_id":' + orjson.dumps(self.previous))
        if self.conversation is not None:
            named = b'"conversation":' + orjson.dumps({"id": self.conversation.id})
            data = data.replace(_CONVERSATION_UNSET, named)
            if _CONVERSATION_KEY not in data:  # objects with no such field (a key, never in a JSON string's text)
                data = data.replace(_PREVIOUS_KEY, named + b"," + _PREVIOUS_KEY)
        return data

    async def _keep(self, response: dict[str, Any]) -> None:
        status = response.get("status")
        if status not in ("completed", "incomplete"):
            return
        usage = response.get("usage")
        record = kept.StoredResponse(
            id=response["id"],
            key_name=self.key_name,
            channel=self.channel,
            model=str(response.get("model") or self.model or ""),
            created_at=time.time(),
            status=status,
            previous_response_id=self.previous,
            instructions=self.instructions,
            input_items=self.input_items,
            output_items=list(response.get("output") or []),
            usage=usage if isinstance(usage, dict) else None,
            response=response,
        )
        await self._write(lambda tx: kept.save(tx, record), record.id)

    async def _write(self, save: Callable[[Tx], bool], id: str, *, short: bool = False) -> None:
        """``save`` in a transaction (``short``: one small row, run as the hot path's are), with a prune when due."""
        store = self.relay.gateway.store
        now = time.time()
        limit = cutoff(self.relay)
        prune = limit is not None and now - _pruned.get(store, 0.0) >= PRUNE_EVERY
        if prune:
            _pruned[store] = now

        def write(tx: Tx) -> bool:
            saved = save(tx)
            if prune and limit is not None:
                kept.prune(tx, limit)
                conversations.prune(tx, limit)  # counted from a conversation's last change
            return saved

        try:
            run = store.transaction_now if short and not prune else store.transaction
            if not await run(write):
                log.warning("response %s not kept: another key has a response of that id", id)
        except StoreError as error:
            log.warning("response %s not kept (store unavailable): %s", id, error)


class _Watched:
    """A stream's steps, with the keeper reading what goes to the client: a converted stream's final Response,
    or the id of a passed-through one (from its first event that carries a response)."""

    __slots__ = ("_ends", "_keeper", "_parser", "_steps")

    def __init__(self, steps: Steps, keeper: Keeper) -> None:
        self._steps = steps
        self._keeper = keeper
        self._parser = sse.Parser() if keeper.store and not keeper.converted else None
        #: Passed through in a conversation: every event read, for the final Response.
        self._ends = sse.Parser() if keeper.conversation is not None and not keeper.converted else None

    def step(self, chunk: bytes) -> tuple[bytes, bool]:
        data, done = self._steps.step(chunk)
        return self._see(data, done), done

    def end(self) -> bytes:
        return self._see(self._steps.end(), True)

    def _see(self, data: bytes, final: bool) -> bytes:
        keeper = self._keeper
        data = keeper.echo(data)
        if not data:
            return data
        if keeper.converted:
            if final and (keeper.store or keeper.conversation):  # the encoder writes its last events whole
                for event in sse.Parser().feed(data):
                    if event.name in _KEPT_EVENTS:
                        keeper.response = keeper.final = _response_of(event)
        elif self._ends is not None:
            for event in self._ends.feed(data):
                if event.name in _KEPT_EVENTS:
                    keeper.final = _response_of(event)
        if not keeper.converted and self._parser is not None:  # passed through: the first response object names the id
            for event in self._parser.feed(data):
                found = _response_of(event)
                if found is not None:
                    keeper.upstream_id = found.get("id") if isinstance(found.get("id"), str) else None
                    self._parser = None
                    break
        return data


def _response_of(event: sse.Event) -> dict[str, Any] | None:
    if event.data is None or b'"response"' not in event.data:
        return None
    try:
        payload = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None
    response = payload.get("response") if isinstance(payload, dict) else None
    return response if isinstance(response, dict) else None

"""The mock upstream's Anthropic Message Batches, kept in memory per mock process (``wire_files`` keeps the state).

``POST /messages/batches`` answers each request's ``params`` at once with the mock model's own message (a
request the Messages API would refuse, or one asking to stream, is ``errored`` with that refusal) and ends the
batch; a body with ``mock:batch_hold`` makes a batch that stays ``in_progress`` until it is cancelled (then it
ends, every request ``canceled``). ``GET /messages/batches`` (``limit``, ``after_id``, ``before_id``), ``GET
…/{id}``, ``POST …/{id}/cancel``, ``DELETE …/{id}`` (an ended batch only), ``GET …/{id}/results`` (JSONL, an ended
batch only). Ids count up per process (``msgbatch_mock000001``), times are ``CREATED`` plus that count.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import orjson

from relay.mock import wire_anthropic
from relay.mock.model import CREATED, Answer, json_answer

if TYPE_CHECKING:
    from relay.mock.call import Call, Dialect, Handler, MockState, RouteEntry

MAX_REQUESTS = 100_000
HOLD = b"mock:batch_hold"
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@attrs.define
class Kept:
    batch: dict[str, Any]
    #: The requests (custom_id, params) of a batch still in progress; the results' lines once it ended.
    requests: list[tuple[str, Any]]
    results: list[bytes] = attrs.field(factory=list)


class _State(Protocol):
    message_batches: dict[str, Kept]

    def tick(self) -> int: ...


def _time(n: int) -> str:
    return datetime.fromtimestamp(CREATED + n, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _results_url(call: Call, id: str) -> str:
    prefix = call.path.split("/messages/batches", 1)[0]
    host = call.headers.get(b"host", "mock.invalid")
    return f"http://{host}{prefix}/messages/batches/{id}/results"


def _error(status: int, message: str) -> Answer:
    return wire_anthropic.error(status, message)


def _answer(mock: MockState, custom_id: str, params: Any) -> tuple[bytes, bool]:
    """The results line of one request, and whether it succeeded."""
    if isinstance(params, dict) and params.get("stream"):
        answer = _error(400, "params.stream: streaming is not supported in a message batch")
    else:
        answer = wire_anthropic.respond(params, mock.options)
    body = orjson.loads(answer.body) if isinstance(answer.body, bytes) else None
    if answer.status == 200:
        result: dict[str, Any] = {"type": "succeeded", "message": body}
    else:
        result = {"type": "errored", "error": body}
    return orjson.dumps({"custom_id": custom_id, "result": result}), answer.status == 200


def _end(kept: Kept, n: int, results: list[bytes], counts: dict[str, int]) -> None:
    kept.results = results
    kept.requests = []
    kept.batch.update(processing_status="ended", ended_at=_time(n), request_counts=counts)


def _counts(**given: int) -> dict[str, int]:
    return {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0, **given}


def routes(state_of: Callable[[MockState], _State]) -> tuple[RouteEntry, ...]:
    """The routes, reading the process's state through ``state_of``."""

    def versioned(handle: Handler) -> Handler:
        def route(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
            if not call.headers.get(b"anthropic-version"):
                return _error(400, "anthropic-version: header is required")
            return handle(mock, call, match, dialect)

        return route

    def find(mock: MockState, id: str) -> Kept | Answer:
        kept = state_of(mock).message_batches.get(id)
        return kept if kept is not None else _error(404, f"No message batch with id '{id}' was found")

    @versioned
    def create(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
        try:
            payload = orjson.loads(call.body)
        except orjson.JSONDecodeError:
            return _error(400, "the request body is not JSON")
        if not isinstance(payload, dict) or set(payload) != {"requests"}:
            return _error(400, "the request body must be an object with 'requests' (and nothing else)")
        requests = payload["requests"]
        if not isinstance(requests, list) or not requests or len(requests) > MAX_REQUESTS:
            return _error(400, f"requests: must be a list of 1 to {MAX_REQUESTS} requests")
        seen: set[str] = set()
        for index, item in enumerate(requests):
            if not isinstance(item, dict) or set(item) != {"custom_id", "params"}:
                return _error(400, f"requests.{index}: must be an object with 'custom_id' and 'params'")
            custom_id = item["custom_id"]
            if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
                return _error(400, f"requests.{index}.custom_id: 1 to 64 letters, digits, '_' or '-'")
            if custom_id in seen:
                return _error(400, f"requests.{index}.custom_id: '{custom_id}' is used twice in the batch")
            seen.add(custom_id)
            if not isinstance(item["params"], dict):
                return _error(400, f"requests.{index}.params: must be an object")
        state = state_of(mock)
        n = state.tick()
        id = f"msgbatch_mock{n:06d}"
        batch: dict[str, Any] = {
            "id": id,
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": _counts(processing=len(requests)),
            "ended_at": None,
            "created_at": _time(n),
            "expires_at": _time(n + 86_400),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": None,
        }
        kept = Kept(batch, [(item["custom_id"], item["params"]) for item in requests])
        state.message_batches[id] = kept
        if HOLD not in call.body:
            answered = [_answer(mock, custom_id, params) for custom_id, params in kept.requests]
            succeeded = sum(1 for _, ok in answered if ok)
            counts = _counts(succeeded=succeeded, errored=len(answered) - succeeded)
            _end(kept, n, [line for line, _ in answered], counts)
            batch["results_url"] = _results_url(call, id)
        return json_answer(200, batch)

    @versioned
    def listing(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
        raw = call.query.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            return _error(400, "limit: must be an integer from 1 to 1000")
        limit = int(raw)
        items = [kept.batch for kept in state_of(mock).message_batches.values()]
        items.sort(key=lambda b: b["id"], reverse=True)
        ids = [b["id"] for b in items]
        after, before = call.query.get("after_id"), call.query.get("before_id")
        if after is not None:
            items = items[ids.index(after) + 1 :] if after in ids else []
        elif before is not None:
            items = items[: ids.index(before)] if before in ids else []
            items = items[-limit:]
        page = items[:limit]
        return json_answer(
            200,
            {
                "data": page,
                "has_more": len(items) > limit,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            },
        )

    @versioned
    def retrieve(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
        kept = find(mock, match["id"])
        return kept if isinstance(kept, Answer) else json_answer(200, kept.batch)

    @versioned
    def cancel(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
        kept = find(mock, match["id"])
        if isinstance(kept, Answer):
            return kept
        if kept.batch["processing_status"] == "ended":
            return _error(400, f"Message batch '{match['id']}' has already ended and cannot be canceled")
        n = state_of(mock).tick()
        kept.batch["cancel_initiated_at"] = _time(n)
        answered = {**kept.batch, "processing_status": "canceling"}
        results = [
            orjson.dumps({"custom_id": custom_id, "result": {"type": "canceled"}}) for custom_id, _ in kept.requests
        ]
        _end(kept, n, results, _counts(canceled=len(results)))
        kept.batch["results_url"] = _results_url(call, match["id"])
        return json_answer(200, answered)

    @versioned
    def delete(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
        kept = find(mock, match["id"])
        if isinstance(kept, Answer):
            return kept
        if kept.batch["processing_status"] != "ended":
            return _error(400, f"Message batch '{match['id']}' is still in progress: cancel it before deleting it")
        del state_of(mock).message_batches[match["id"]]
        return json_answer(200, {"id": match["id"], "type": "message_batch_deleted"})

    @versioned
    def results(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
        kept = find(mock, match["id"])
        if isinstance(kept, Answer):
            return kept
        if kept.batch["processing_status"] != "ended":
            return _error(404, f"Message batch '{match['id']}' has no results yet: it is still in progress")
        body = b"".join(line + b"\n" for line in kept.results)
        return Answer(200, body, ((b"content-type", b"application/binary"),))

    return (
        ("POST", re.compile(r"/messages/batches$"), "anthropic", create),
        ("GET", re.compile(r"/messages/batches$"), "anthropic", listing),
        ("POST", re.compile(r"/messages/batches/(?P<id>[^/]+)/cancel$"), "anthropic", cancel),
        ("GET", re.compile(r"/messages/batches/(?P<id>[^/]+)/results$"), "anthropic", results),
        ("GET", re.compile(r"/messages/batches/(?P<id>[^/]+)$"), "anthropic", retrieve),
        ("DELETE", re.compile(r"/messages/batches/(?P<id>[^/]+)$"), "anthropic", delete),
    )

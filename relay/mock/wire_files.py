"""The mock upstream's OpenAI Files and Batches, kept in memory per mock process (Anthropic's Message Batches:
``wire_message_batches``, whose routes this module's ``ROUTES`` carries too).

Files: ``POST /files`` (multipart: ``file``, ``purpose``, optional ``expires_after[anchor]``/``[seconds]``),
``GET /files`` (``purpose``, ``limit``, ``order``, ``after``), ``GET /files/{id}``, ``GET /files/{id}/content``,
``DELETE /files/{id}``. Batches: ``POST /batches`` runs every line of the input file at once through the mock
model's own answer for the line's ``url`` (Chat Completions, Responses, Embeddings) and ends ``completed`` with an
output file (lines answered 200) and an error file (the others); an input file whose text has ``mock:batch_hold``
makes a batch that stays ``in_progress`` until it is cancelled. ``GET /batches`` (``limit``, ``after``), ``GET
/batches/{id}``, ``POST /batches/{id}/cancel`` (``cancelling`` in the answer, ``cancelled`` after; a 409 once the
batch ended).

Ids count up per process (``file-mock000001``, ``batch_mock000001``) and times are ``CREATED`` plus that count, so
the same calls in the same order get the same answers. Refusals are OpenAI's: 400 for a bad form or field, 404
for an unknown id.
"""

from __future__ import annotations

import re
import weakref
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from relay.endpoints import multipart_form
from relay.errors import RelayError
from relay.mock import wire_chat, wire_embeddings, wire_message_batches, wire_responses
from relay.mock.model import CREATED, Answer, json_answer

if TYPE_CHECKING:
    from relay.mock.call import Call, Dialect, MockState, RouteEntry

PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations")
#: Lines a batch input file may have, and its most bytes (OpenAI's limits).
MAX_LINES = 50_000
MAX_BATCH_FILE = 200 * 1024 * 1024
HOLD = b"mock:batch_hold"
_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@attrs.define
class StoredFile:
    meta: dict[str, Any]
    data: bytes


@attrs.define
class State:
    """What one mock process keeps: files and batches by id, and the counter their ids and times come from."""

    files: dict[str, StoredFile] = attrs.field(factory=dict)
    batches: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    message_batches: dict[str, wire_message_batches.Kept] = attrs.field(factory=dict)
    count: int = 0

    def tick(self) -> int:
        self.count += 1
        return self.count


_STATES: weakref.WeakKeyDictionary[MockState, State] = weakref.WeakKeyDictionary()


def state_of(mock: MockState) -> State:
    state = _STATES.get(mock)
    if state is None:
        state = _STATES[mock] = State()
    return state


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> Answer:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return wire_chat.error(status, message, param, kind=kind, code=code)


def _no_such_file(id: str) -> Answer:
    return _error(404, f"No such File object: {id}", "id")


def _int(value: str | None, name: str, low: int, high: int, default: int) -> int | Answer:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        return _error(400, f"Invalid '{name}': expected an integer, got {value!r}.", name)
    if not low <= number <= high:
        return _error(400, f"Invalid '{name}': must be between {low} and {high}.", name)
    return number


def _page(items: list[dict[str, Any]], after: str | None, limit: int) -> dict[str, Any]:
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


# ---- files ---------------------------------------------------------------------------------------------------


def add_file(state: State, data: bytes, filename: str, purpose: str, expires_in: int | None = None) -> dict[str, Any]:
    n = state.tick()
    meta: dict[str, Any] = {
        "id": f"file-mock{n:06d}",
        "object": "file",
        "bytes": len(data),
        "created_at": CREATED + n,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "expires_at": CREATED + n + expires_in if expires_in is not None else None,
        "status_details": None,
    }
    state.files[meta["id"]] = StoredFile(meta, data)
    return meta


def _upload(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    try:
        form = multipart_form.parse(call.body, call.headers.get(b"content-type", ""))
    except RelayError as error:
        return _error(400, error.message)
    files = form.files("file")
    if len(files) != 1:
        return _error(
            400, "Missing required parameter: 'file'." if not files else "Only one 'file' may be sent.", "file"
        )
    purpose = form.field("purpose")
    if purpose is None:
        return _error(400, "Missing required parameter: 'purpose'.", "purpose")
    if purpose not in PURPOSES:
        return _error(400, f"Invalid value for 'purpose': {purpose!r}; expected one of {sorted(PURPOSES)}.", "purpose")
    anchor, seconds = form.field("expires_after[anchor]"), form.field("expires_after[seconds]")
    expires_in: int | None = None
    if anchor is not None or seconds is not None:
        if anchor != "created_at":
            return _error(400, "Invalid 'expires_after[anchor]': expected 'created_at'.", "expires_after.anchor")
        checked = _int(seconds, "expires_after[seconds]", 3600, 2_592_000, -1)
        if isinstance(checked, Answer):
            return checked
        if checked < 0:
            return _error(400, "Missing required parameter: 'expires_after[seconds]'.", "expires_after.seconds")
        expires_in = checked
    part = files[0]
    if purpose == "batch":
        if len(part.data) > MAX_BATCH_FILE:
            return _error(400, f"A batch input file may be at most {MAX_BATCH_FILE} bytes.", "file")
        if not (part.filename or "").endswith(".jsonl"):
            return _error(400, "A batch input file must be a .jsonl file.", "file")
    return json_answer(200, add_file(state_of(mock), part.data, part.filename or "file", purpose, expires_in))


def _list_files(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    limit = _int(call.query.get("limit"), "limit", 1, 10_000, 10_000)
    if isinstance(limit, Answer):
        return limit
    order = call.query.get("order", "desc")
    if order not in ("asc", "desc"):
        return _error(400, "Invalid 'order': expected 'asc' or 'desc'.", "order")
    purpose = call.query.get("purpose")
    items = [f.meta for f in state_of(mock).files.values() if purpose is None or f.meta["purpose"] == purpose]
    items.sort(key=lambda meta: (meta["created_at"], meta["id"]), reverse=order == "desc")
    return json_answer(200, _page(items, call.query.get("after"), limit))


def _retrieve_file(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    kept = state_of(mock).files.get(match["id"])
    return json_answer(200, kept.meta) if kept is not None else _no_such_file(match["id"])


def _delete_file(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    if state_of(mock).files.pop(match["id"], None) is None:
        return _no_such_file(match["id"])
    return json_answer(200, {"id": match["id"], "object": "file", "deleted": True})


def _file_content(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    kept = state_of(mock).files.get(match["id"])
    if kept is None:
        return _no_such_file(match["id"])
    return Answer(200, kept.data, ((b"content-type", b"application/octet-stream"),))


# ---- batches -------------------------------------------------------------------------------------------------


def _answer_line(mock: MockState, url: str, body: Any) -> Answer:
    if url == "/v1/chat/completions":
        return wire_chat.respond(body, mock.options)
    if url == "/v1/responses":
        return wire_responses.respond(body, mock.options)
    if url == "/v1/embeddings":
        return wire_embeddings.openai_embeddings(body)
    return _error(400, f"The mock upstream does not answer batch lines for {url}.", "url")


def _run(
    mock: MockState, lines: list[bytes], endpoint: str, batch_id: str
) -> tuple[list[bytes], list[bytes], str | None]:
    """(output lines, error lines, the batch's model) of an input file's lines."""
    output: list[bytes] = []
    errors: list[bytes] = []
    model: str | None = None
    for index, raw in enumerate(lines):
        line = orjson.loads(raw)
        body = line["body"]
        if model is None and isinstance(body, dict) and isinstance(body.get("model"), str):
            model = body["model"]
        answer = (
            _answer_line(mock, line["url"], body)
            if isinstance(body, dict) and not body.get("stream")
            else _error(400, "A batch line's body must be a JSON object without 'stream'.", "body")
        )
        answered = orjson.loads(answer.body) if isinstance(answer.body, bytes) else None
        result = {
            "id": f"batch_req_{batch_id.removeprefix('batch_')}_{index:05d}",
            "custom_id": line["custom_id"],
            "response": {"status_code": answer.status, "request_id": f"req_{batch_id}_{index:05d}", "body": answered},
            "error": None,
        }
        (output if answer.status == 200 else errors).append(orjson.dumps(result))
    return output, errors, model


def _invalid_lines(data: bytes, endpoint: str) -> str | None:
    """Why the input file cannot be a batch for ``endpoint``, or None."""
    lines = [line for line in data.splitlines() if line.strip()]
    if not lines:
        return "The input file is empty."
    if len(lines) > MAX_LINES:
        return f"The input file has more than {MAX_LINES} lines."
    seen: set[str] = set()
    models: set[str] = set()
    for number, raw in enumerate(lines, 1):
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return f"Line {number} is not valid JSON."
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
            return f"Line {number} has no 'custom_id' string."
        if line["custom_id"] in seen:
            return f"Line {number}: the custom_id {line['custom_id']!r} is used twice."
        seen.add(line["custom_id"])
        if line.get("method") != "POST":
            return f"Line {number}: 'method' must be 'POST'."
        if line.get("url") != endpoint:
            return f"Line {number}: 'url' must be the batch's endpoint {endpoint}."
        body = line.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return f"Line {number}: 'body' must be an object with a 'model'."
        models.add(body["model"])
    if len(models) > 1:
        return "The input file's lines name more than one model; a batch is for one model."
    return None


def _create_batch(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    try:
        payload = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        return _error(400, "The request body is not JSON.")
    if not isinstance(payload, dict):
        return _error(400, "The request body must be a JSON object.")
    for name in ("input_file_id", "endpoint", "completion_window"):
        if not isinstance(payload.get(name), str):
            return _error(400, f"Missing required parameter: '{name}'.", name)
    endpoint = payload["endpoint"]
    if endpoint not in ENDPOINTS:
        return _error(
            400, f"Invalid value for 'endpoint': {endpoint!r}; expected one of {list(ENDPOINTS)}.", "endpoint"
        )
    if payload["completion_window"] != "24h":
        return _error(400, "Invalid value for 'completion_window': expected '24h'.", "completion_window")
    metadata = payload.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and len(metadata) <= 16 and all(isinstance(v, str) for v in metadata.values())
    ):
        return _error(400, "Invalid 'metadata': at most 16 string values.", "metadata")
    state = state_of(mock)
    kept = state.files.get(payload["input_file_id"])
    if kept is None:
        return _error(400, f"Invalid 'input_file_id': no such file {payload['input_file_id']!r}.", "input_file_id")
    if kept.meta["purpose"] != "batch":
        return _error(400, "Invalid 'input_file_id': the file's purpose must be 'batch'.", "input_file_id")
    n = state.tick()
    batch: dict[str, Any] = {
        "id": f"batch_mock{n:06d}",
        "object": "batch",
        "endpoint": endpoint,
        "errors": None,
        "input_file_id": payload["input_file_id"],
        "completion_window": "24h",
        "status": "in_progress",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": CREATED + n,
        "in_progress_at": CREATED + n,
        "expires_at": CREATED + n + 86_400,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": metadata,
        "model": None,
    }
    state.batches[batch["id"]] = batch
    invalid = _invalid_lines(kept.data, endpoint)
    if invalid is not None:
        batch.update(
            status="failed",
            failed_at=CREATED + n,
            in_progress_at=None,
            errors={"object": "list", "data": [{"code": "invalid_input_file", "message": invalid, "line": None}]},
        )
        return json_answer(200, batch)
    lines = [line for line in kept.data.splitlines() if line.strip()]
    batch["request_counts"]["total"] = len(lines)
    if HOLD in kept.data:
        return json_answer(200, batch)
    output, errors, model = _run(mock, lines, endpoint, batch["id"])
    batch_id = batch["id"]
    out = add_file(state, b"".join(line + b"\n" for line in output), f"{batch_id}_output.jsonl", "batch_output")
    failed = add_file(state, b"".join(line + b"\n" for line in errors), f"{batch_id}_error.jsonl", "batch_output")
    batch.update(
        status="completed",
        model=model,
        output_file_id=out["id"],
        error_file_id=failed["id"] if errors else None,
        finalizing_at=CREATED + n,
        completed_at=CREATED + n,
        request_counts={"total": len(lines), "completed": len(output), "failed": len(errors)},
    )
    if not errors:
        state.files.pop(failed["id"])
    return json_answer(200, batch)


def _list_batches(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    limit = _int(call.query.get("limit"), "limit", 1, 100, 20)
    if isinstance(limit, Answer):
        return limit
    items = sorted(state_of(mock).batches.values(), key=lambda b: (b["created_at"], b["id"]), reverse=True)
    return json_answer(200, _page(items, call.query.get("after"), limit))


def _retrieve_batch(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    batch = state_of(mock).batches.get(match["id"])
    if batch is None:
        return _error(404, f"No batch found with id '{match['id']}'.", "batch_id")
    return json_answer(200, batch)


def _cancel_batch(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    state = state_of(mock)
    batch = state.batches.get(match["id"])
    if batch is None:
        return _error(404, f"No batch found with id '{match['id']}'.", "batch_id")
    if batch["status"] in _TERMINAL:
        return _error(409, f"Cannot cancel a batch with status '{batch['status']}'.")
    at = CREATED + state.tick()
    answered = {**batch, "status": "cancelling", "cancelling_at": at}
    batch.update(status="cancelled", cancelling_at=at, cancelled_at=at)
    return json_answer(200, answered)


#: Routes ``relay.mock.router`` tries before its own: (method, path pattern, dialect or None, handler).
#: Anthropic's ``/messages/batches…`` first: OpenAI's ``/batches`` patterns would take their paths' ends.
ROUTES: tuple[RouteEntry, ...] = (
    *wire_message_batches.routes(state_of),
    ("POST", re.compile(r"/files$"), "openai", _upload),
    ("GET", re.compile(r"/files$"), "openai", _list_files),
    ("GET", re.compile(r"/files/(?P<id>[^/]+)/content$"), "openai", _file_content),
    ("GET", re.compile(r"/files/(?P<id>[^/]+)$"), "openai", _retrieve_file),
    ("DELETE", re.compile(r"/files/(?P<id>[^/]+)$"), "openai", _delete_file),
    ("POST", re.compile(r"/batches$"), "openai", _create_batch),
    ("GET", re.compile(r"/batches$"), "openai", _list_batches),
    ("POST", re.compile(r"/batches/(?P<id>[^/]+)/cancel$"), "openai", _cancel_batch),
    ("GET", re.compile(r"/batches/(?P<id>[^/]+)$"), "openai", _retrieve_batch),
)

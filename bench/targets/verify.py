"""A target's routes checked before measuring: one plain and one streamed request each, and which API they reached.

A route is kept when both answers are complete in the client's dialect (a plain answer with content; a stream
with a first token and its dialect's end) and the neutral mock counted exactly those two calls, in the route's
upstream dialect: a proxy that quietly converts (or calls the mock twice) is caught here, not assumed away.
"""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench.http1 import ProtocolError, ResponseReader
from bench.neutral import NeutralMock, wire
from bench.targets.target import Target

TIMEOUT = 30.0
#: The event that ends a stream, per client dialect.
_ENDS = {
    "openai_chat": b"[DONE]",
    "openai_responses": b"response.completed",
    "anthropic": b"message_stop",
    "gemini": b"finishReason",
}


class RouteFailed(Exception):
    """A route's check failed; the message says how."""


def exchange(base_url: str, raw: bytes, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """Sends one request's bytes to ``base_url``'s host and reads one whole answer: (status, body decoded from
    chunked framing when it was chunked)."""
    parts = urlsplit(base_url)
    reader = ResponseReader()
    deadline = time.monotonic() + timeout
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout) as sock:
        sock.sendall(raw)
        while True:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            data = sock.recv(1 << 16)
            if not data:
                raise RouteFailed(f"the connection closed before the answer ended ({len(reader.buf)} bytes in)")
            try:
                if reader.feed(data):
                    break
            except ProtocolError as exc:
                raise RouteFailed(str(exc)) from exc
    body = bytes(reader.buf[reader.head_end : reader.body_end])
    return reader.status, dechunk(body) if reader.chunked else body


def dechunk(body: bytes) -> bytes:
    out = bytearray()
    at = 0
    while True:
        line = body.index(b"\r\n", at)
        size = int(body[at:line].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[line + 2 : line + 2 + size]
        at = line + 2 + size + 2


def _has_content(dialect: str, answer: Any) -> bool:
    if not isinstance(answer, dict):
        return False
    if dialect == "openai_chat":
        message = (answer.get("choices") or [{}])[0].get("message") or {}
        return bool(message.get("content") or message.get("tool_calls"))
    if dialect == "openai_responses":
        return bool(answer.get("output"))
    if dialect == "anthropic":
        return bool(answer.get("content"))
    candidates = answer.get("candidates") or [{}]
    return bool((candidates[0].get("content") or {}).get("parts"))


def check(target: Target, mock: NeutralMock | None, client: str, upstream: str) -> None:
    """One plain and one streamed ``instant`` request of ``client`` through the route to ``upstream``; raises
    RouteFailed with the reason. ``mock`` None: the target is not in front of the neutral mock (a URL)."""
    before = mock.stats()["dialects"] if mock is not None else {}
    status, body = exchange(target.base_url, target.request("instant", stream=False, client=client, upstream=upstream))
    if status != 200:
        raise RouteFailed(f"plain request: status {status}: {body[:300]!r}")
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RouteFailed(f"plain request: the answer is not JSON: {body[:200]!r}") from exc
    if not _has_content(client, answer):
        raise RouteFailed(f"plain request: no content in {body[:300]!r}")
    status, body = exchange(target.base_url, target.request("instant", stream=True, client=client, upstream=upstream))
    if status != 200:
        raise RouteFailed(f"streamed request: status {status}: {body[:300]!r}")
    events = wire.events(body)
    if not any(wire.first_token(client, e) for e in events):
        raise RouteFailed(f"streamed request: no event with content in {len(events)} events: {body[:300]!r}")
    if _ENDS[client] not in body:
        raise RouteFailed(f"streamed request: the stream has no {_ENDS[client].decode()}: {body[-300:]!r}")
    if mock is None:
        return
    after = mock.stats()["dialects"]
    calls = {d: after[d] - before[d] for d in after if after[d] != before[d]}
    if calls != {upstream: 2}:
        seen = ", ".join(f"{d} x{n}" for d, n in calls.items()) or "nothing"
        raise RouteFailed(f"the mock was called with {seen}, not {upstream} x2")


def verify(target: Target, mock: NeutralMock | None) -> dict[str, str]:
    """Checks every route of ``target``, keeping those that pass; {"client->upstream": reason} of the others.
    Raises RouteFailed when none is left (the target cannot be measured)."""
    dropped: dict[str, str] = {}
    for client in list(target.routes):
        for upstream in list(target.routes[client]):
            try:
                check(target, mock, client, upstream)
            except (RouteFailed, OSError, ValueError) as exc:
                dropped[f"{client}->{upstream}"] = str(exc) or type(exc).__name__
                del target.routes[client][upstream]
        if not target.routes[client]:
            del target.routes[client]
    if not target.routes:
        raise RouteFailed("no route works: " + "; ".join(f"{k}: {v}" for k, v in dropped.items()))
    target.dialects = tuple(target.routes)
    if target.dialect not in target.routes:
        target.dialect = target.dialects[0]
    target.model = target.model_for("fixed")
    return dropped

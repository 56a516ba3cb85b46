"""The model calls a task endpoint makes (a summary's parts, a translation's segments, an extraction's schema),
billed to the caller's key and logged each on its own row, linked to the task's request (``parent_id``).

Each call is a Chat Completions request answered by Relay itself (``Relay.handle``): the same key (the one the task
request presented, ``bind``), the same routing, failover, conversion for channels of other dialects, quota hold,
rate limits, settlement and request log as a client's own request to ``/v1/chat/completions``; it needs no code
of its own to reach an Anthropic or a Gemini channel, and ``response_format`` (structured output) goes through the
conversion as a client's would. When a call ends its usage and cost are added to the task's tally
(``Tally.children_usage``, ``children_cost``) for the task's answer; the task charges nothing more, and the admin
API shows its row with its calls' sums added (``relay.admin.request_log.with_calls``).

A call that fails raises the ``RelayError`` its request was answered with (a channel down: 502, no channel: 404,
the key's quota: 402…), so the task answers the same status and words in OpenAI's shape.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import trio

from relay.dialects import ir
from relay.errors import RelayError, kind_for_status
from relay.gateway.auth import presented_key
from relay.gateway.gateway import add_usage
from relay.gateway.tally import Tally
from relay.http import sse
from relay.http.messages import Headers, Request, Response, StreamResponse
from relay.http.shutdown import Shutdown

if TYPE_CHECKING:
    from relay.app import Relay

#: The route every call takes (Relay's own Chat Completions endpoint).
CHAT_PATH = "/v1/chat/completions"
#: Frames of a streamed call buffered between its request and the task reading them.
STREAM_BUFFER = 16


@attrs.frozen
class Completion:
    """A call's answer: the text (a JSON document when ``response_format`` asked for one), its usage, and the
    request id of its row in the log."""

    text: str
    usage: ir.Usage
    request_id: str


@attrs.frozen
class _Bound:
    secret: str
    shutdown: Shutdown


#: What each task request's calls present and watch: its key (a request's headers go once its answer starts,
#: ``Request.let_go``, while a streamed task still makes calls) and the server's shutdown.
_BOUND: weakref.WeakKeyDictionary[Request, _Bound] = weakref.WeakKeyDictionary()


def bind(request: Request, out: StreamResponse) -> None:
    """Remember the key ``request`` presented (and the shutdown ``out`` watches) for the calls made for it: called
    once the task request is authenticated, before its answer starts."""
    secret = presented_key(request)
    if secret is not None:
        _BOUND[request] = _Bound(secret, out.shutdown)


async def complete(
    relay: Relay,
    parent: Request,
    model: str,
    messages: list[dict[str, Any]],
    *,
    response_format: dict[str, Any] | None = None,
    max_tokens: int | None = None,
) -> Completion:
    """One call, answered whole; RelayError as its request was answered when it failed."""
    child = _child(parent, _body(model, messages, response_format, max_tokens, stream=False))
    sink = _Sink(_shutdown(parent), None)
    try:
        response = await relay.handle(child, sink, parent_id=parent.id)
    finally:
        account_child(parent, child)
    if response is None:  # a stream, though none was asked: read what it wrote
        raise RelayError(502, "upstream", "the model call answered with a stream", code="bad_upstream_answer")
    if response.status >= 400:
        raise _failure(response.status, response.body)
    try:
        answer = orjson.loads(response.body)
        text = answer["choices"][0]["message"].get("content") or ""
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        raise RelayError(
            502, "upstream", "the model call's answer could not be read", code="bad_upstream_answer"
        ) from None
    usage = child.usage if isinstance(child.usage, ir.Usage) else ir.Usage()
    return Completion(str(text), usage, child.id)


@trio.as_safe_channel
async def stream_complete(
    relay: Relay,
    parent: Request,
    model: str,
    messages: list[dict[str, Any]],
    *,
    response_format: dict[str, Any] | None = None,
    max_tokens: int | None = None,
) -> AsyncGenerator[str, None]:
    """One call, streamed: its text deltas as they come (``async with stream_complete(...) as deltas: async for
    delta in deltas``); its usage is recorded at its end however it ends. RelayError as its request was answered
    when it failed before its first delta; a stream cut later raises a 502."""
    child = _child(parent, _body(model, messages, response_format, max_tokens, stream=True))
    send, receive = trio.open_memory_channel[bytes](STREAM_BUFFER)
    sink = _Sink(_shutdown(parent), send)
    answered: list[Response | None] = []

    async def call() -> None:
        async with send:
            answered.append(await relay.handle(child, sink, parent_id=parent.id))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            parser = sse.Parser()
            finished = False
            async with receive:
                async for chunk in receive:
                    for event in parser.feed(chunk):
                        if event.data is None or event.data == b"[DONE]":
                            finished = finished or event.data == b"[DONE]"
                            continue
                        delta = _delta(event.data)
                        if delta:
                            yield delta
        response = answered[0] if answered else None
        if response is not None and response.status >= 400:
            raise _failure(response.status, response.body)
        if not finished and sink.status < 400:
            raise RelayError(502, "upstream", "the model call's stream was cut short", code="upstream_truncated")
    finally:
        account_child(parent, child)


def _body(
    model: str,
    messages: list[dict[str, Any]],
    response_format: dict[str, Any] | None,
    max_tokens: int | None,
    *,
    stream: bool,
) -> bytes:
    payload: dict[str, Any] = {"model": model, "messages": messages}
    if stream:
        payload["stream"] = True
    if response_format is not None:
        payload["response_format"] = response_format
    if max_tokens is not None:
        payload["max_tokens"] = max_tokens
    return orjson.dumps(payload)


def _child(parent: Request, body: bytes) -> Request:
    bound = _BOUND.get(parent)
    secret = bound.secret if bound is not None else presented_key(parent)
    if secret is None:
        raise RelayError(401, "authentication", "missing API key", code="missing_api_key")
    headers = [(b"authorization", b"Bearer " + secret.encode("latin-1")), (b"content-type", b"application/json")]
    return Request("POST", CHAT_PATH, "", headers, body, parent.client)


def _shutdown(parent: Request) -> Shutdown:
    bound = _BOUND.get(parent)
    return bound.shutdown if bound is not None else Shutdown()


def account_child(parent: Request, child: Request) -> None:
    """A child request's usage and cost (a model call, a search, a rerank), added to its parent's tally (the
    parent's row in the log shows their sum; nothing is charged twice)."""
    record, done = parent.record, child.record
    if not isinstance(record, Tally) or not isinstance(done, Tally):
        return
    if isinstance(child.usage, ir.Usage):
        record.children_usage = add_usage(record.children_usage, child.usage)
    elif record.children_usage is None:
        record.children_usage = ir.Usage()
    record.children_cost += done.cost


def _delta(data: bytes) -> str:
    try:
        chunk = orjson.loads(data)
        choices = chunk.get("choices") or []
        return str((choices[0].get("delta") or {}).get("content") or "") if choices else ""
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return ""


def _failure(status: int, body: bytes) -> RelayError:
    """The call's error (OpenAI's shape, as Relay answered it) as the task's."""
    try:
        error = orjson.loads(body)["error"]
        message, code, param = str(error["message"]), error.get("code"), error.get("param")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message, code, param = f"the model call failed with status {status}", None, None
    return RelayError(
        status,
        kind_for_status(status),
        message,
        code=str(code) if code is not None else None,
        param=str(param) if param is not None else None,
    )


class _Sink:
    """Where a call's answer goes instead of a socket: a streamed one's bytes into ``channel`` (backpressure: the
    call waits while the task is behind), its status kept. As a socket's writer does, ``send_nowait`` keeps what
    the channel cannot take at once, and the next ``send`` (``b""`` to flush) delivers it first, in order."""

    def __init__(self, shutdown: Shutdown, channel: trio.MemorySendChannel[bytes] | None) -> None:
        self._shutdown = shutdown
        self._channel = channel
        self._started = False
        self._gone = False
        self._unsent: list[bytes] = []
        self.status = 0

    @property
    def started(self) -> bool:
        return self._started

    @property
    def gone(self) -> bool:
        return self._gone

    @property
    def shutdown(self) -> Shutdown:
        return self._shutdown

    async def start(self, status: int, headers: Headers) -> None:
        self._started = True
        self.status = status

    async def send(self, data: bytes) -> None:
        pending, self._unsent = [*self._unsent, data] if data else self._unsent, []
        if self._channel is None or self._gone:
            return
        try:
            for piece in pending:
                await self._channel.send(piece)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._gone = True

    def send_nowait(self, data: bytes) -> bool:
        if self._channel is None or self._gone:
            return True
        if not data or self._unsent:
            if data:
                self._unsent.append(data)
            return not self._unsent
        try:
            self._channel.send_nowait(data)
        except trio.WouldBlock:
            self._unsent.append(data)
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._gone = True
        return True

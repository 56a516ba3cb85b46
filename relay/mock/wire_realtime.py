"""The mock's OpenAI Realtime: a session over any message transport (the mock server's WebSocket, or the memory
channels of an in-process ``mock`` channel), and the plain HTTP routes beside it.

A session says ``session.created`` on connect; ``session.update`` merges into the session and answers
``session.updated``; ``conversation.item.create`` and ``input_audio_buffer.append``/``commit`` add to the
conversation; ``response.create`` streams a response (``response.created``, the output item and content part,
``response.output_text.delta``s, or ``response.output_audio.delta``s with their transcript for the audio
modality, and ``response.done`` with usage); ``response.cancel`` ends the response being streamed as ``cancelled``.
A frame that is not a JSON object with a known ``type`` gets an ``error`` event, and the session goes on.

Usage is deterministic (docs/mock.md): text tokens are ``ceil(chars / 4)`` (+3 per item on input), input audio a
token per 100 ms of PCM16 at 24 kHz (4,800 bytes), output audio 2 tokens per delta (each 100 ms of silence); the
conversation the previous response saw is counted as cached input. The reply is the mock model's
(``relay.mock.model``): directives in the last user text steer it (``mock:chunks=N``, ``mock:delay_ms=N``,
``mock:drop_after=N`` closes the session with 1011 after N deltas, ``mock:stall_after=N`` stalls).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs
import orjson
import trio

from relay.config import MockOptions
from relay.mock import model
from relay.mock.call import Call, Dialect, MockState, RouteEntry, load_json
from relay.mock.model import Answer, json_answer

#: Bytes of PCM16 at 24 kHz in 100 ms: one input audio token.
AUDIO_TOKEN_BYTES = 4800
#: Each output audio delta: 100 ms of silence, counted as this many tokens.
AUDIO_DELTA_TOKENS = 2
_SILENCE = base64.b64encode(bytes(AUDIO_TOKEN_BYTES)).decode()
_SDP_ANSWER = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=mock-realtime\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)


class Transport(Protocol):
    """A message transport: a WebSocket (``relay.http.websocket.WebSocket``) or an in-process pair."""

    async def receive(self) -> str | bytes | None: ...

    async def send(self, data: str | bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


@attrs.define
class _Item:
    role: str
    text: str = ""
    audio_tokens: int = 0


class Session:
    """One mock Realtime session."""

    def __init__(self, transport: Transport, model_name: str, options: MockOptions) -> None:
        self.transport = transport
        self.options = options
        self.session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": "sess_mock0001",
            "model": model_name,
            "output_modalities": ["audio"],
            "instructions": "",
            "max_output_tokens": "inf",
            "audio": {"output": {"voice": "alloy", "format": {"type": "audio/pcm", "rate": 24000}}},
        }
        self.items: list[_Item] = []
        self.audio_buffer = 0
        self.events = 0
        self.responses = 0
        #: Input text and audio tokens the previous response saw (counted as cached in the next).
        self.seen = (0, 0)
        self.active: trio.CancelScope | None = None
        self._cancelled = False

    async def run(self) -> None:
        """Serve until the client closes (or a directive drops the session)."""
        async with trio.open_nursery() as nursery:
            await self.emit("session.created", session=self.session)
            while True:
                message = await self.transport.receive()
                if message is None:
                    nursery.cancel_scope.cancel()
                    return
                await self.handle(message, nursery)

    async def emit(self, kind: str, **fields: Any) -> None:
        self.events += 1
        event = {"type": kind, "event_id": f"event_mock{self.events:05d}", **fields}
        await self.transport.send(orjson.dumps(event).decode())

    async def error(self, message: str, code: str, event_id: str | None = None, param: str | None = None) -> None:
        detail = {"type": "invalid_request_error", "code": code, "message": message, "param": param}
        await self.emit("error", error={**detail, "event_id": event_id})

    async def handle(self, message: str | bytes, nursery: trio.Nursery) -> None:
        try:
            event = orjson.loads(message)
        except orjson.JSONDecodeError:
            await self.error("The event is not valid JSON.", "invalid_json")
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self.error(
                "The event must be a JSON object with a 'type'.", "missing_required_parameter", param="type"
            )
            return
        kind, event_id = event["type"], event.get("event_id")
        handler = _HANDLERS.get(kind)
        if handler is None:
            await self.error(f"Invalid value: '{kind}'. Not a client event type.", "invalid_value", event_id, "type")
            return
        await handler(self, event, nursery)

    # ---- client events --------------------------------------------------------------------------------------

    async def session_update(self, event: dict[str, Any], nursery: trio.Nursery) -> None:
        update = event.get("session")
        if not isinstance(update, dict):
            await self.error("Missing required parameter: 'session'.", "missing_required_parameter", None, "session")
            return
        modalities = update.get("output_modalities", self.session["output_modalities"])
        if modalities not in (["text"], ["audio"]):
            message = "Invalid value for 'session.output_modalities': use ['text'] or ['audio']."
            await self.error(message, "invalid_value", event.get("event_id"), "session.output_modalities")
            return
        self.session.update({k: v for k, v in update.items() if k != "type"})
        await self.emit("session.updated", session=self.session)

    async def item_create(self, event: dict[str, Any], nursery: trio.Nursery) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            await self.error("Missing required parameter: 'item'.", "missing_required_parameter", None, "item")
            return
        role = item.get("role") if isinstance(item.get("role"), str) else "user"
        text = " ".join(
            part.get("text") or part.get("transcript") or ""
            for part in item.get("content") or ()
            if isinstance(part, dict) and isinstance(part.get("text") or part.get("transcript") or "", str)
        )
        self.items.append(_Item(role, text))
        shown = {"id": item.get("id") or f"item_mock{len(self.items):04d}", "object": "realtime.item", **item}
        shown.setdefault("status", "completed")
        await self.emit("conversation.item.added", previous_item_id=None, item=shown)
        await self.emit("conversation.item.done", previous_item_id=None, item=shown)

    async def audio_append(self, event: dict[str, Any], nursery: trio.Nursery) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            await self.error("Missing required parameter: 'audio'.", "missing_required_parameter", None, "audio")
            return
        try:
            self.audio_buffer += len(base64.b64decode(audio, validate=True))
        except ValueError:
            await self.error("Invalid 'audio': not base64.", "invalid_value", event.get("event_id"), "audio")

    async def audio_commit(self, event: dict[str, Any], nursery: trio.Nursery) -> None:
        if self.audio_buffer <= 0:
            await self.error("Error committing input audio buffer: buffer is empty.", "input_audio_buffer_commit_empty")
            return
        item_id = f"item_mock{len(self.items) + 1:04d}"
        self.items.append(_Item("user", "", math.ceil(self.audio_buffer / AUDIO_TOKEN_BYTES)))
        self.audio_buffer = 0
        await self.emit("input_audio_buffer.committed", previous_item_id=None, item_id=item_id)

    async def audio_clear(self, event: dict[str, Any], nursery: trio.Nursery) -> None:
        self.audio_buffer = 0
        await self.emit("input_audio_buffer.cleared")

    async def response_create(self, event: dict[str, Any], nursery: trio.Nursery) -> None:
        if self.active is not None:
            message = "Conversation already has an active response in progress."
            await self.error(message, "conversation_already_has_active_response", event.get("event_id"))
            return
        self.active = trio.CancelScope()
        self._cancelled = False
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        nursery.start_soon(self._respond, self.active, response)

    async def response_cancel(self, event: dict[str, Any], nursery: trio.Nursery) -> None:
        if self.active is None:
            await self.error("Cancellation failed: no active response found.", "response_cancel_not_active")
            return
        self._cancelled = True
        self.active.cancel()

    # ---- a response -----------------------------------------------------------------------------------------

    async def _respond(self, scope: trio.CancelScope, overrides: dict[str, Any]) -> None:
        self.responses += 1
        response_id = f"resp_mock{self.responses:04d}"
        item_id = f"item_mock_out{self.responses:04d}"
        modalities = overrides.get("output_modalities") or self.session["output_modalities"]
        audio = modalities == ["audio"]
        last = next((i.text for i in reversed(self.items) if i.role == "user" and i.text), "")
        limit = overrides.get("max_output_tokens", self.session.get("max_output_tokens"))
        prompt = model.Prompt(text=last, max_tokens=limit if isinstance(limit, int) else None)
        reply = model.answer(prompt, self.options)
        pieces = model.split(reply.text, reply.chunks)
        shell = {"object": "realtime.response", "id": response_id, "output_modalities": modalities}
        await self.emit("response.created", response={**shell, "status": "in_progress", "output": [], "usage": None})
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant", "content": []}
        await self.emit("response.output_item.added", response_id=response_id, output_index=0, item=item)
        part_type = "output_audio" if audio else "output_text"
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        await self.emit("response.content_part.added", **where, part={"type": part_type})
        sent = 0
        directives = reply.directives
        with scope:
            for index, piece in enumerate(pieces):
                if directives.stall_after is not None and index >= directives.stall_after:
                    await trio.sleep_forever()
                if directives.drop_after is not None and index >= directives.drop_after:
                    await self.transport.close(1011, "mock:drop_after")
                    return
                if index and reply.chunk_delay:
                    await trio.sleep(reply.chunk_delay)
                if audio:
                    await self.emit("response.output_audio.delta", **where, delta=_SILENCE)
                    await self.emit("response.output_audio_transcript.delta", **where, delta=piece)
                else:
                    await self.emit("response.output_text.delta", **where, delta=piece)
                sent += 1
        said = "".join(pieces[:sent])
        status = "cancelled" if self._cancelled else "incomplete" if reply.finish_reason == "length" else "completed"
        self.active = None
        with trio.CancelScope(shield=True):
            if status != "cancelled":
                if audio:
                    await self.emit("response.output_audio.done", **where)
                    await self.emit("response.output_audio_transcript.done", **where, transcript=said)
                else:
                    await self.emit("response.output_text.done", **where, text=said)
            content = [{"type": part_type, ("transcript" if audio else "text"): said}]
            done_item = {**item, "status": "completed" if status == "completed" else "incomplete", "content": content}
            await self.emit("response.output_item.done", response_id=response_id, output_index=0, item=done_item)
            usage = self._usage(said, sent if audio else 0)
            self.items.append(_Item("assistant", said, sent * AUDIO_DELTA_TOKENS if audio else 0))
            await self.emit(
                "response.done", response={**shell, "status": status, "output": [done_item], "usage": usage}
            )

    def _usage(self, said: str, audio_deltas: int) -> dict[str, Any]:
        """The usage of a response over the conversation as it stands (``said``: the output's text)."""
        text_in = model.count(i.text for i in self.items if i.text) + model.tokens(
            self.session.get("instructions") or ""
        )
        audio_in = sum(i.audio_tokens for i in self.items)
        cached_text, cached_audio = min(self.seen[0], text_in), min(self.seen[1], audio_in)
        self.seen = (text_in, audio_in)
        text_out, audio_out = model.tokens(said), audio_deltas * AUDIO_DELTA_TOKENS
        return {
            "total_tokens": text_in + audio_in + text_out + audio_out,
            "input_tokens": text_in + audio_in,
            "output_tokens": text_out + audio_out,
            "input_token_details": {
                "text_tokens": text_in,
                "audio_tokens": audio_in,
                "image_tokens": 0,
                "cached_tokens": cached_text + cached_audio,
                "cached_tokens_details": {"text_tokens": cached_text, "audio_tokens": cached_audio, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }


_Handler = Callable[[Session, dict[str, Any], trio.Nursery], Awaitable[None]]


async def _noop(session: Session, event: dict[str, Any], nursery: trio.Nursery) -> None:
    return None


_HANDLERS: dict[str, _Handler] = {
    "session.update": Session.session_update,
    "conversation.item.create": Session.item_create,
    "conversation.item.retrieve": _noop,
    "conversation.item.truncate": _noop,
    "conversation.item.delete": _noop,
    "input_audio_buffer.append": Session.audio_append,
    "input_audio_buffer.commit": Session.audio_commit,
    "input_audio_buffer.clear": Session.audio_clear,
    "output_audio_buffer.clear": _noop,
    "response.create": Session.response_create,
    "response.cancel": Session.response_cancel,
}


def model_of(query: str) -> str | None:
    """The ``model`` of a Realtime URL's query."""
    match = re.search(r"(?:^|&)model=([^&]*)", query)
    return match[1] if match and match[1] else None


# ---- the HTTP routes beside the WebSocket ---------------------------------------------------------------------


def _session_of(payload: Any) -> dict[str, Any]:
    session = payload.get("session") if isinstance(payload, dict) and isinstance(payload.get("session"), dict) else {}
    if isinstance(payload, dict) and "session" not in payload:
        session = payload
    return {"type": "realtime", "object": "realtime.session", "id": "sess_mock_http", **session}


def _client_secrets(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    payload = load_json("openai", call.body or b"{}")
    if isinstance(payload, Answer):
        return payload
    return json_answer(200, {"value": "ek_mock_0001", "expires_at": 4102444800, "session": _session_of(payload)})


def _sessions(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    payload = load_json("openai", call.body or b"{}")
    if isinstance(payload, Answer):
        return payload
    secret = {"value": "ek_mock_0001", "expires_at": 4102444800}
    return json_answer(200, {**_session_of(payload), "client_secret": secret})


def _calls(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    kind = call.headers.get(b"content-type", "")
    if not (kind.startswith("application/sdp") or kind.startswith("multipart/form-data")):
        return json_answer(
            400, {"error": {"type": "invalid_request_error", "message": "expected an application/sdp offer"}}
        )
    if not call.body.startswith(b"v=0") and kind.startswith("application/sdp"):
        return json_answer(400, {"error": {"type": "invalid_request_error", "message": "the SDP offer is malformed"}})
    headers = ((b"content-type", b"application/sdp"), (b"location", b"/v1/realtime/calls/rtc_mock0001"))
    return Answer(201, _SDP_ANSWER.encode(), headers)


#: Routes ``relay.mock.router`` tries before its own.
ROUTES: tuple[RouteEntry, ...] = (
    ("POST", re.compile(r"/realtime/client_secrets$"), "openai", _client_secrets),
    ("POST", re.compile(r"/realtime/sessions$"), "openai", _sessions),
    ("POST", re.compile(r"/realtime/calls$"), "openai", _calls),
)

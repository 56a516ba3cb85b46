"""The mock's Gemini Live (``BidiGenerateContent`` over WebSocket), over any message transport (the mock server's
WebSocket, or the memory channels of an in-process ``mock`` channel of the Gemini dialect).

As Google's, every server message is a JSON object sent as a binary frame. The first client message must be
``setup`` (answered ``setupComplete``); then ``clientContent`` turns (answered when ``turnComplete``), and
``realtimeInput`` (``text``, or ``audio``/``mediaChunks`` answered at ``audioStreamEnd``). An answer is the mock
model's (``relay.mock.model``: ``Echo: …``, directives as for the other dialects, ``mock:drop_after=N`` closing with
1011 after N parts): ``serverContent.modelTurn`` parts (text, or 100 ms of silent PCM as ``inlineData`` when the
setup asks for ``AUDIO``), ``generationComplete``, then ``turnComplete`` with ``usageMetadata``. What is not a JSON
object of one known message closes the session with 1007, as Google's server does. Field names are read in either
of protobuf JSON's spellings (``clientContent`` or ``client_content``, as the google-genai SDK sends it).

Usage, deterministic: prompt text ``ceil(chars / 4) + 3`` per turn, prompt audio a token per 3,200 bytes (100 ms of
16 kHz PCM16), response text ``ceil(chars / 4)``, response audio 2 tokens per part; the previous turn's prompt is
counted as cached (``cachedContentTokenCount``).
"""

from __future__ import annotations

import base64
import math
from typing import Any

import orjson
import trio

from relay.config import MockOptions
from relay.mock import model
from relay.mock.wire_realtime import Transport

#: 100 ms of input audio at 16 kHz (PCM16): one prompt token.
AUDIO_TOKEN_BYTES = 3200
#: Each response audio part: 100 ms of silence at 24 kHz, counted as this many tokens.
AUDIO_PART_TOKENS = 2
_SILENCE = base64.b64encode(bytes(4800)).decode()
_CLIENT_MESSAGES = ("setup", "clientContent", "realtimeInput", "toolResponse")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def field(obj: dict[str, Any], name: str) -> Any:
    """``obj``'s field ``name`` (lowerCamelCase), or its snake_case spelling (protobuf JSON takes both)."""
    return obj[name] if name in obj else obj.get(_snake(name))


class Session:
    """One mock Live session."""

    def __init__(self, transport: Transport, options: MockOptions) -> None:
        self.transport = transport
        self.options = options
        self.setup: dict[str, Any] | None = None
        self.turns: list[tuple[str, int]] = []  # (text, audio tokens) of each user turn
        self.pending_text: list[str] = []
        self.audio_bytes = 0
        #: The prompt's text and audio tokens at the previous turn (counted as cached in the next).
        self.seen = (0, 0)
        self.active = False

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                message = await self.transport.receive()
                if message is None:
                    nursery.cancel_scope.cancel()
                    return
                if not await self.handle(message, nursery):
                    nursery.cancel_scope.cancel()
                    return

    async def send(self, payload: dict[str, Any]) -> None:
        await self.transport.send(orjson.dumps(payload))

    async def refuse(self, reason: str) -> bool:
        await self.transport.close(1007, reason)
        return False

    async def handle(self, message: str | bytes, nursery: trio.Nursery) -> bool:
        """Handle one client message; False once the session is closed."""
        try:
            payload = orjson.loads(message)
        except orjson.JSONDecodeError:
            return await self.refuse("Invalid JSON payload received.")
        kinds = [k for k in _CLIENT_MESSAGES if isinstance(payload, dict) and field(payload, k) is not None]
        if len(kinds) != 1:
            return await self.refuse("Invalid JSON payload received. Unknown name or not exactly one message.")
        kind, body = kinds[0], field(payload, kinds[0])
        if (kind == "setup") != (self.setup is None) or not isinstance(body, dict):
            return await self.refuse("Request contains an invalid argument: setup must come first, and once.")
        if kind == "setup":
            if not isinstance(body.get("model"), str) or not body["model"]:
                return await self.refuse("Request contains an invalid argument: setup.model is required.")
            self.setup = body
            await self.send({"setupComplete": {}})
        elif kind == "clientContent":
            for turn in body.get("turns") or ():
                if isinstance(turn, dict) and turn.get("role", "user") == "user":
                    parts = turn.get("parts") or ()
                    self.pending_text.append(" ".join(p.get("text", "") for p in parts if isinstance(p, dict)))
            if field(body, "turnComplete"):
                self._respond(nursery)
        elif kind == "realtimeInput":
            self._take_input(body, nursery)
        return True

    def _take_input(self, body: dict[str, Any], nursery: trio.Nursery) -> None:
        if isinstance(body.get("text"), str):
            self.pending_text.append(body["text"])
            self._respond(nursery)
            return
        for chunk in [body.get("audio"), *(field(body, "mediaChunks") or ())]:
            if isinstance(chunk, dict) and isinstance(chunk.get("data"), str):
                self.audio_bytes += len(base64.b64decode(chunk["data"]))
        if field(body, "audioStreamEnd"):
            self._respond(nursery)

    def _respond(self, nursery: trio.Nursery) -> None:
        text = " ".join(t for t in self.pending_text if t)
        self.turns.append((text, math.ceil(self.audio_bytes / AUDIO_TOKEN_BYTES)))
        self.pending_text, self.audio_bytes = [], 0
        if not self.active:
            self.active = True
            nursery.start_soon(self._answer, text)

    async def _answer(self, text: str) -> None:
        setup = self.setup or {}
        config = field(setup, "generationConfig")
        modalities = field(config, "responseModalities") if isinstance(config, dict) else None
        audio = "AUDIO" in (modalities or ["AUDIO"])
        reply = model.answer(model.Prompt(text=text), self.options)
        pieces = model.split(reply.text, reply.chunks)
        sent = 0
        for index, piece in enumerate(pieces):
            if reply.directives.drop_after is not None and index >= reply.directives.drop_after:
                await self.transport.close(1011, "mock:drop_after")
                return
            if index and reply.chunk_delay:
                await trio.sleep(reply.chunk_delay)
            part = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": _SILENCE}} if audio else {"text": piece}
            content: dict[str, Any] = {"modelTurn": {"role": "model", "parts": [part]}}
            if audio:
                content["outputTranscription"] = {"text": piece}
            await self.send({"serverContent": content})
            sent += 1
        said = "".join(pieces[:sent])
        await self.send({"serverContent": {"generationComplete": True}})
        self.active = False
        await self.send({"serverContent": {"turnComplete": True}, "usageMetadata": self._usage(said, audio, sent)})

    def _usage(self, said: str, audio: bool, parts: int) -> dict[str, Any]:
        text_in = model.count(t for t, _ in self.turns if t)
        audio_in = sum(a for _, a in self.turns)
        prompt = text_in + audio_in
        cached_text, cached_audio = min(self.seen[0], text_in), min(self.seen[1], audio_in)
        self.seen = (text_in, audio_in)
        out_text, out_audio = (0, parts * AUDIO_PART_TOKENS) if audio else (model.tokens(said), 0)
        details = [{"modality": "TEXT", "tokenCount": text_in}, {"modality": "AUDIO", "tokenCount": audio_in}]
        response = [{"modality": "AUDIO" if audio else "TEXT", "tokenCount": out_audio or out_text}]
        return {
            "promptTokenCount": prompt,
            "cachedContentTokenCount": cached_text + cached_audio,
            "responseTokenCount": out_text + out_audio,
            "totalTokenCount": prompt + out_text + out_audio,
            "promptTokensDetails": details,
            "cacheTokensDetails": [
                {"modality": "TEXT", "tokenCount": cached_text},
                {"modality": "AUDIO", "tokenCount": cached_audio},
            ],
            "responseTokensDetails": response,
        }

"""OpenAI's legacy Completions answers (``text_completion``) written from the IR of another API's answers.

A converted request is one upstream call per choice (``openai.completions.request``): each answer's text parts
joined become ``choices[i].text`` (after the prompt with ``echo``); reasoning and anything else is not shown.
Finish reasons: ``stop`` and ``length`` as they are, ``content_filter`` kept, ``tool_calls`` (never asked for)
``stop``. ``logprobs`` is always null. The usage is the sum of the calls' (``encode_usage``, Chat's shape).

A stream is the choices' streams one after another, each chunk naming its choice's ``index`` (the echoed prompt
first, then each text delta, then an empty text with the finish reason); one id and ``created`` for all (the
first call's), the usage chunk (``choices: []``) when the client asked for it, and ``data: [DONE]``.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from relay.dialects import ir
from relay.dialects.openai.chat.response import encode_stream_error, encode_usage
from relay.errors import RelayError, kind_for_status

_FINISH: dict[ir.FinishReason, str] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "stop",
}
DONE = b"data: [DONE]\n\n"


def text_of(response: ir.Response) -> str:
    return "".join(part.text for part in response.parts if isinstance(part, ir.Text))


def choice(index: int, text: str, finish: ir.FinishReason | None) -> dict[str, Any]:
    return {
        "text": text,
        "index": index,
        "logprobs": None,
        "finish_reason": _FINISH[finish] if finish is not None else None,
    }


def add(total: ir.Usage | None, usage: ir.Usage | None) -> ir.Usage | None:
    """Two usages summed (None when neither is known)."""
    if usage is None or total is None:
        return usage or total
    return ir.Usage(*(a + b for a, b in zip(attrs.astuple(total), attrs.astuple(usage), strict=True)))


def completion(id: str, created: int, model: str, choices: list[dict[str, Any]], usage: ir.Usage | None) -> bytes:
    """The whole ``text_completion`` object."""
    return orjson.dumps(
        {
            "id": id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": choices,
            "system_fingerprint": None,
            "usage": encode_usage(usage) if usage is not None else None,
        }
    )


@attrs.define
class Chunks:
    """What every chunk of one converted stream shares: its id and ``created`` (the first call's), its model."""

    model: str
    created: int
    #: Relay's own id until the first call's ``Start`` names one.
    id: str
    named: bool = False

    def chunk(self, index: int, text: str, finish: ir.FinishReason | None = None) -> bytes:
        body = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice(index, text, finish)],
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def usage(self, usage: ir.Usage | None) -> bytes:
        """The usage chunk (zeros when the upstream reported none)."""
        body = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": encode_usage(usage or ir.Usage()),
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"


class ChoiceEncoder:
    """One choice's stream: ``ir.Event`` → ``text_completion`` chunks (``relay.dialects.convert.Encoder``).

    ``finish`` writes nothing: the usage chunk and ``data: [DONE]`` come once every choice is done."""

    __slots__ = ("_chunks", "_echo", "_ended", "_index")

    def __init__(self, chunks: Chunks, index: int, echo: str | None) -> None:
        self._chunks = chunks
        self._index = index
        self._echo = echo
        self._ended = False

    def encode(self, event: ir.Event) -> bytes:
        if self._ended:
            return b""
        if isinstance(event, ir.StreamError):
            self._ended = True
            return encode_stream_error(
                RelayError(event.status, kind_for_status(event.status), event.message, code=event.code)
            )
        out = self._opening(event)
        if isinstance(event, ir.TextDelta):
            if event.text:
                out += self._chunks.chunk(self._index, event.text)
        elif isinstance(event, ir.Finish):
            self._ended = True
            out += self._chunks.chunk(self._index, "", event.reason)
        return out

    def _opening(self, event: ir.Event) -> bytes:
        """The stream's id (the first choice's Start) and the echoed prompt, before the choice's first text."""
        chunks = self._chunks
        if isinstance(event, ir.Start) and event.id and not chunks.named:
            chunks.id, chunks.named = event.id, True
        echo, self._echo = self._echo, None
        return chunks.chunk(self._index, echo) if echo else b""

    def finish(self) -> bytes:
        return b""

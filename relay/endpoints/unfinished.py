"""The usage of a stream that did not reach its end: the client went away, or the upstream broke.

Such a stream is charged for what the upstream produced. The upstream's usage usually comes last, so
what is missing is estimated: the output from the text, reasoning and tool-call arguments the
upstream sent (decoded again from the chunks kept on the way, only now that it is needed), a token
per four bytes; the input from the request, when the upstream did not report it at the start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING

from relay.dialects import gemini, ir
from relay.errors import RelayError

if TYPE_CHECKING:
    from .relayed import Relayed

BYTES_PER_TOKEN = 4


def charged(
    reported: ir.Usage | None,
    relayed: Relayed,
    codec: ModuleType,
    input_estimate: Callable[[], int],
    *,
    array: bool = False,
) -> ir.Usage | None:
    """The usage a relayed stream of ``codec``'s dialect is charged: what the upstream reported when the
    stream reached its end, else that completed by estimates (``input_estimate`` is only called then)."""
    if relayed.finished:
        return reported
    return completed(reported, input_estimate(), produced(codec, relayed.kept, array=array))


def produced(codec: ModuleType, chunks: Iterable[bytes], *, array: bool = False) -> int:
    """Output tokens in ``chunks`` of an upstream stream of ``codec``'s dialect (``array``: Gemini's JSON
    array instead of server-sent events)."""
    decoder = codec.StreamDecoder()
    splitter = gemini.ArraySplitter() if array else None
    size = 0
    try:
        for chunk in chunks:
            frames = [b"data: " + e + b"\n\n" for e in splitter.feed(chunk)] if splitter is not None else [chunk]
            for frame in frames:
                for event in decoder.feed(frame):
                    if isinstance(event, ir.TextDelta | ir.ReasoningDelta):
                        size += len(event.text.encode())
                    elif isinstance(event, ir.ToolCallDelta):
                        size += len(event.arguments.encode())
                    elif isinstance(event, ir.ToolCallStart):
                        size += len(event.name)
    except (ValueError, RelayError):
        pass  # the stream broke here: what came before counts
    return -(-size // BYTES_PER_TOKEN)


def completed(usage: ir.Usage | None, input_estimate: int, output: int) -> ir.Usage | None:
    """``usage`` as far as the upstream reported it, what it did not report estimated; None when the
    upstream neither reported nor produced anything (nothing is charged)."""
    if usage is None:
        if output == 0:
            return None
        return ir.Usage(input_tokens=input_estimate, output_tokens=output)
    return ir.Usage(
        input_tokens=usage.input_tokens or input_estimate,
        output_tokens=max(usage.output_tokens, output),
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens,
    )

"""The usage of a stream that did not reach its end: the client went away, the upstream broke, time ran out.

Such a stream is charged for what the upstream produced. The upstream's usage usually comes last, so
what is missing is estimated: the output from the bytes of text, reasoning and tool calls the upstream
sent (counted on the way, ``relay.endpoints.produced``), a token per four bytes; the input from the
request, when the upstream did not report it at the start.
"""

from __future__ import annotations

from collections.abc import Callable

from relay.dialects import ir

BYTES_PER_TOKEN = 4


def charged(
    reported: ir.Usage | None, finished: bool, produced: int, input_estimate: Callable[[], int]
) -> ir.Usage | None:
    """The usage a relayed stream is charged: what the upstream reported when the stream reached its end
    (``finished``), else that completed by estimates (``input_estimate`` is only called then) from the
    ``produced`` bytes of output."""
    if finished:
        return reported
    return completed(reported, input_estimate(), -(-produced // BYTES_PER_TOKEN))


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

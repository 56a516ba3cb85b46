"""What the suite's clients need to know of each dialect's streams: which SSE events carry a token, and the marker a
stream ends with. (Requests are built by bench.neutral.wire and bench.targets.Target.request.)

The load generators classify SSE events by a byte pattern (tolerant of the spaces a proxy's JSON encoder may add),
never by parsing JSON, so that the client's cost per frame stays small and the same for every target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DIALECTS = ("openai_chat", "openai_responses", "anthropic", "gemini")


@dataclass(frozen=True)
class Dialect:
    name: str
    #: Matches an SSE event (its bytes) that carries a token: text, tool-call arguments or reasoning.
    token: re.Pattern[bytes]
    #: Bytes of the stream's last event (the fan-out client ends a stream there).
    done: str


DIALECT: dict[str, Dialect] = {
    "openai_chat": Dialect(
        "openai_chat",
        re.compile(rb'"(?:content|arguments|reasoning_content|reasoning)"\s*:\s*"[^"]'),
        "[DONE]",
    ),
    "openai_responses": Dialect(
        "openai_responses",
        re.compile(rb'"type"\s*:\s*"response\.[a-z_.]*\.delta"'),
        "response.completed",
    ),
    "anthropic": Dialect(
        "anthropic",
        re.compile(rb'"type"\s*:\s*"(?:text|thinking|input_json)_delta"'),
        "message_stop",
    ),
    "gemini": Dialect(
        "gemini",
        re.compile(rb'"(?:text|functionCall|thought)"'),
        "finishReason",
    ),
}


def long_prompt(size: int) -> str:
    """A prompt of about ``size`` bytes of varied words (the long-prompt lane's 400 KB body)."""
    words = ("relay", "token", "stream", "latency", "upstream", "gateway", "bench", "prompt")
    out: list[str] = []
    total = 0
    i = 0
    while total < size:
        word = f"{words[i % len(words)]}{i % 997}"
        out.append(word)
        total += len(word) + 1
        i += 1
    return " ".join(out)

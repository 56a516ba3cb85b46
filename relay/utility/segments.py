"""Text split into segments measured in tokens, on structure: semantic-text-splitter's ``MarkdownSplitter``.

The splitter (a Rust library, the ``utility`` extra) cuts at the highest structural level that keeps a segment
within ``length`` tokens: sections under headings first, then paragraphs, list items and code blocks, then
sentences, then words, never inside a word unless a word alone is longer. Tokens are counted with OpenAI's
``o200k_base`` encoding (the GPT-4o family's), which the library carries, so splitting needs no download; other
models' tokenizers differ by some percent, named in docs/utility.md. ``overlap`` is the most tokens a segment
repeats of the one before it (the splitter takes whole units up to it).

Each segment's offsets are characters of the text it was cut from (``text[start:end] == segment.text``), and its
``tokens`` are counted with the same encoding: the splitter has no counting call, so ``tokens`` is the smallest
capacity at which the splitter keeps the segment whole (a binary search over the same tokenizer; a few splits of
a short text).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import attrs

from .documents import library

#: The encoding's model name for semantic-text-splitter, and the encoding's own name.
TOKENIZER_MODEL = "gpt-4o"
ENCODING = "o200k_base"
#: The largest ``length`` and ``overlap`` a request may ask for.
MAX_LENGTH = 100_000


@attrs.frozen
class Segment:
    text: str
    start: int
    end: int
    tokens: int


def split(text: str, length: int, overlap: int = 0) -> list[Segment]:
    """``text`` in segments of at most ``length`` tokens, each repeating at most ``overlap`` tokens of the one
    before; blocking (run it in a worker thread). 501 when the library is missing."""
    splitter = _splitter(length, min(overlap, length - 1) if length > 1 else 0)
    found: list[Segment] = []
    for start, chunk in splitter.chunk_indices(text):
        found.append(Segment(chunk, start, start + len(chunk), count(chunk)))
    return found


def count(text: str) -> int:
    """``text``'s tokens in the splitter's encoding."""
    if not text:
        return 0
    low, high = 1, max(1, len(text.encode()))  # a token is at least one byte
    while low < high:
        middle = (low + high) // 2
        if len(_counter(middle).chunks(text)) <= 1:
            high = middle
        else:
            low = middle + 1
    return low


@lru_cache(maxsize=64)
def _splitter(length: int, overlap: int) -> Any:
    module = library("semantic_text_splitter")
    return module.MarkdownSplitter.from_tiktoken_model(TOKENIZER_MODEL, length, overlap=overlap)


@lru_cache(maxsize=256)
def _counter(capacity: int) -> Any:
    module = library("semantic_text_splitter")
    return module.TextSplitter.from_tiktoken_model(TOKENIZER_MODEL, capacity, trim=False)

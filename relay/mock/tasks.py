"""The mock model's answers to the task pipelines' prompts (``relay.utility.prompts``), deterministic and
recognisable, so the task endpoints can be tried and tested end to end without a real model.

A task prompt is a user message whose first line is the task's instruction and whose material sits between
``<document>`` tags. ``answer`` reads that first line:

- ``Summarize the following text.`` → ``Summary: `` and the material's first sentence, then ``(N words)``;
- ``Combine the following partial summaries …`` → ``Summary of N parts: `` and each part's summary, joined;
- ``Translate the following text into LANGUAGE.`` → each line of the material with ``[LANGUAGE] `` put after its
  Markdown marks (``#``, ``-``, ``1.``, ``>``, ``|``), so the structure stays line for line;
- ``Summarize this source for a research report.`` → ``Source summary: `` and the source text's first sentence;
- ``Write a research report from the numbered sources.`` → ``# Report`` and one bullet per source, its summary
  citing its number (``- … [2]``). (The research plan asks for structured output: the mock's usual JSON.)

Anything else is not a task prompt (None): the mock answers as it always does. Structured output (an extraction)
is built from the material alone (``material``), not from the instruction around it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_DOCUMENT = re.compile(r"<document>\n?(.*?)\n?</document>", re.S)
_SENTENCE = re.compile(r"(.+?[.!?])(?:\s|$)", re.S)
_MARKS = re.compile(r"^(\s*(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*|\|\s*)?)(.*)$")
_TRANSLATE = re.compile(r"Translate the following text into (.+?)\.$")


def material(text: str) -> str:
    """What a task prompt holds between its ``<document>`` tags ("" for any other text)."""
    found = _DOCUMENT.search(text)
    return found.group(1) if found else ""


def _summarize(first: str, text: str) -> str:
    body = material(text)
    prose = " ".join(line.lstrip("#-*> ").strip() for line in body.splitlines() if line.strip())
    sentence = _SENTENCE.match(prose)
    lead = (sentence.group(1) if sentence else prose[:200]).strip()
    return f"Summary: {lead} ({len(prose.split())} words)"


def _reduce(first: str, text: str) -> str:
    parts = re.split(r"(?m)^Part \d+:\n", material(text))
    summaries = [p.strip().removeprefix("Summary: ") for p in parts if p.strip()]
    return f"Summary of {len(summaries)} parts: " + " ".join(summaries)


def _translate(first: str, text: str) -> str:
    found = _TRANSLATE.match(first)
    language = found.group(1) if found else "?"
    lines = []
    for line in material(text).split("\n"):
        marks = _MARKS.match(line)
        if not line.strip() or marks is None or re.fullmatch(r"\|?[\s|:-]+\|?", line.strip()):
            lines.append(line)  # blank lines and a table's rule stay as they are
            continue
        lines.append(f"{marks.group(1)}[{language}] {marks.group(2)}")
    return "\n".join(lines)


def _research_source(first: str, text: str) -> str:
    """``Source summary: `` and the first sentence of the source's text (after its title and URL lines)."""
    body = material(text).split("\n")[2:]
    prose = " ".join(line.lstrip("#-*> ").strip() for line in body if line.strip())
    sentence = _SENTENCE.match(prose)
    return "Source summary: " + (sentence.group(1) if sentence else prose[:200]).strip()


def _research_write(first: str, text: str) -> str:
    """``# Report``, then each numbered source's summary as a bullet citing it (``- … [n]``)."""
    lines = ["# Report", ""]
    for number, summary in re.findall(r"(?m)^\[(\d+)\] .*\n(.*)$", material(text)):
        lines.append(f"- {summary.removeprefix('Source summary: ').strip()} [{number}]")
    return "\n".join(lines)


#: The mock's transcription of any image.
IMAGE_TEXT = "## Image text\n\nThe mock model sees no pixels: this line stands for the image's text."


def _image(first: str, text: str) -> str:
    return IMAGE_TEXT


#: (the first line's start, the answer to a prompt opening with it): other tasks add theirs here.
TASKS: list[tuple[str, Callable[[str, str], str]]] = [
    ("Summarize the following text.", _summarize),
    ("Combine the following partial summaries", _reduce),
    ("Translate the following text into ", _translate),
    ("Transcribe the text in the following image.", _image),
    ("Summarize this source for a research report.", _research_source),
    ("Write a research report from the numbered sources.", _research_write),
]


def answer(text: str) -> str | None:
    """The mock's answer to a task prompt, or None when ``text`` is not one."""
    first = text.split("\n", 1)[0].strip()
    for opening, respond in TASKS:
        if first.startswith(opening):
            return respond(first, text)
    return None

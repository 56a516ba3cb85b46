"""``POST /v1/translate``: a text (``input``), a ``file`` or a ``url`` and a ``language`` in, the translation out.

1. The material is read as Markdown (``relay.utility.documents``: a DOCX's or HTML page's headings, lists and
   tables become Markdown's) and split on its structure into segments of at most ``segment_length`` tokens
   (``[utility] segment_tokens`` by default), so a segment never cuts a heading from its section's start
   when it can be helped, nor a paragraph or a sentence.
2. Each segment is translated by one model call (up to four at once), told to keep the Markdown line by line.
3. The translations are joined with the very whitespace that separated the segments, in order: Markdown in,
   Markdown out. ``{"object": "translation", "model", "language", "text", "segments", "usage"}``.

Every model call is billed to the key and logged with this request as its parent; this request's row shows
their sum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route

from . import calls, prompts, segments, task
from .blocking import run_blocking

if TYPE_CHECKING:
    from relay.app import Relay


async def translate(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    given = await task.begin(relay, request, out)
    language = task.required(given, "language")
    length = task.segment_tokens(relay, given)
    document = task.with_text(await task.document(relay, given, "input"), "translate")
    model = task.model(relay, request, given)
    parts = await run_blocking(segments.split, document.text, length, 0)

    def job(text: str) -> task.Job[str]:
        async def run() -> str:
            return (await calls.complete(relay, request, model, prompts.translate(text, language))).text.strip("\n")

        return run

    translated = await task.in_order([job(part.text) for part in parts])
    pieces: list[str] = []
    at = 0
    for part, text in zip(parts, translated, strict=True):
        pieces += [document.text[at : part.start], text]  # the whitespace between two segments, as it was
        at = part.end
    return Response.json(
        200,
        {
            "object": "translation",
            "id": f"translation_{request.id}",
            "model": model,
            "language": language,
            "text": "".join(pieces),
            "segments": len(parts),
            "usage": task.usage_json(request),
        },
    )


#: This module's routes (``relay.routes.ROUTES`` takes them in).
ROUTES: tuple[Route, ...] = (Route("POST", "/v1/translate", translate, uploads=True),)

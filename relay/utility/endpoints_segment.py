"""``POST /v1/segment``: a text (``text`` or its alias ``input``), a ``file`` or a ``url`` in, its segments out.

The document is read as Markdown (``relay.utility.documents``), then split on its structure into segments of at
most ``segment_length`` tokens (default 512; 64 to 100 000), each repeating at most ``segment_overlap`` tokens
(default 0) of the one before (``relay.utility.segments``)::

    {"object": "list", "data": [{"object": "segment", "index": 0, "text": "…", "start": 0, "end": 812,
     "tokens": 198}, …], "segment_length": 512, "segment_overlap": 0, "tokenizer": "o200k_base"}

``start`` and ``end`` are character offsets in the document's text (the Markdown the document became; for a
``text``, the text itself). No model is called: nothing is charged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route

from . import segments, task
from .blocking import run_blocking
from .form import invalid

if TYPE_CHECKING:
    from relay.app import Relay

DEFAULT_LENGTH = 512


async def segment(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    given = await task.begin(relay, request, out, main="text")
    length = given.integer("segment_length", DEFAULT_LENGTH, 64, segments.MAX_LENGTH)
    overlap = given.integer("segment_overlap", 0, 0, segments.MAX_LENGTH)
    if overlap >= length:
        raise invalid("segment_overlap", "'segment_overlap' must be smaller than 'segment_length'")
    document = await task.document(relay, given, "text")
    found = await run_blocking(segments.split, document.text, length, overlap)
    return Response.json(
        200,
        {
            "object": "list",
            "data": [
                {"object": "segment", "index": i, "text": s.text, "start": s.start, "end": s.end, "tokens": s.tokens}
                for i, s in enumerate(found)
            ],
            "segment_length": length,
            "segment_overlap": overlap,
            "tokenizer": segments.ENCODING,
        },
    )


#: This module's routes (``relay.routes.ROUTES`` takes them in).
ROUTES: tuple[Route, ...] = (Route("POST", "/v1/segment", segment, uploads=True),)

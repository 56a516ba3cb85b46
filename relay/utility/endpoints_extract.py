"""``POST /v1/extract``: a document (``file``, ``url``, or Markdown/plain text as ``input``) in, its text out.

- By default the answer is the document as Markdown, ``text/plain; charset=utf-8``.
- With ``Accept: application/json``: the document's text with its pages and blocks (headings, paragraphs, list
  items, tables, code), each with its offsets in the text (``relay.utility.documents``).
- An image (PNG, JPEG, GIF, WebP) is read by a model that sees images (``model``): its text transcribed as
  Markdown, a call billed to the key like the schema's.
- With a ``schema`` (a JSON Schema object; a form sends it as JSON text): a model fills it from the document, by
  the channel's structured output (Chat ``response_format`` of type ``json_schema``, converted for Anthropic and
  Gemini channels); the answer is ``{"object": "extraction", "model", "data": {…}, "usage"}``. The model call is
  billed to the key and logged with this request as its parent.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import orjson

from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route

from . import calls, prompts, task

if TYPE_CHECKING:
    from relay.app import Relay

TEXT_HEADERS = ((b"content-type", b"text/plain; charset=utf-8"),)


async def extract(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    given = await task.begin(relay, request, out)
    schema = given.json_object("schema")

    async def read_image(data: bytes, kind: str) -> str:
        data_url = f"data:{kind};base64,{base64.b64encode(data).decode()}"
        return (await calls.complete(relay, request, task.model(relay, request, given), prompts.image(data_url))).text

    document = await task.document(relay, given, "input", read_image)
    if schema is None:
        if wants_json(request):
            return Response.json(200, document.as_json())
        return Response(200, document.text.encode(), TEXT_HEADERS)
    model = task.model(relay, request, given)
    answer = await calls.complete(
        relay, request, model, prompts.extract(document.text), response_format=prompts.schema_format(schema)
    )
    try:
        data = orjson.loads(answer.text)
    except orjson.JSONDecodeError:
        raise RelayError(
            502, "upstream", "the model's answer was not the JSON the schema asks for", code="bad_upstream_answer"
        ) from None
    return Response.json(200, {"object": "extraction", "model": model, "data": data, "usage": task.usage_json(request)})


def wants_json(request: Request) -> bool:
    accept = (request.header(b"accept") or "").lower()
    return any(part.split(";", 1)[0].strip() == "application/json" for part in accept.split(","))


#: This module's routes (``relay.routes.ROUTES`` takes them in); a document upload may be up to
#: ``[limits] max_upload_bytes``.
ROUTES: tuple[Route, ...] = (Route("POST", "/v1/extract", extract, uploads=True),)

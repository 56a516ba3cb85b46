"""``POST /v1/render``: a ``prompt`` (or ``input``) in, an image out, through an image channel: the Images API's
pipeline (``relay.endpoints.images``), on the channels serving the ``model``.

- A JSON body, or a form without images: an image generation (``/images/generations``: OpenAI-family channels,
  and Gemini's image models). The Images API's fields pass as they are (``n``, ``size``, ``quality``,
  ``response_format``, ``background``, ``output_format``, …; a form's numbers are read as numbers).
- A form with reference images (``image`` files, several as ``image[]``; an optional ``mask``): an image edit
  (``/images/edits``, OpenAI-family channels), the prompt describing what to make of them.

The model is the request's ``model``, else ``[utility] render_model``, else the Images API's own default
(``dall-e-2``). The answer is the Images API's (``data[]`` of ``b64_json`` or ``url``), billed as its images are
(``[[prices]] image`` / ``image_sizes``, and the tokens the upstream reports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from relay.endpoints.images import forward_images
from relay.endpoints.images_request import read_form, read_generation
from relay.endpoints.multipart_form import encode, parse
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route

from .form import ALIAS, invalid, read_input

if TYPE_CHECKING:
    from relay.app import Relay

#: The Images API's fields that are integers (a form sends them as text).
_INTEGERS = ("n", "partial_images", "output_compression")


async def render(relay: Relay, request: Request, out: StreamResponse) -> Response | None:
    await relay.gateway.keys.authenticate(request)  # a bad key is a 401 before any complaint about the body
    default = relay.config.utility.render_model
    kind = (request.header(b"content-type") or "").split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        form = parse(request.body, request.header(b"content-type") or "")
        if form.files("image"):
            prompt = form.field("prompt") or form.field(ALIAS)
            if prompt is not None:
                form = form.replaced("prompt", prompt)
            if default and form.field("model") is None:
                form = form.replaced("model", default)
            body, content_type = encode([p for p in form.parts if p.name != ALIAS])
            return await forward_images(relay, request, out, read_form("edits", body, content_type))
    fields = read_input(request, "prompt").fields
    if fields.get("url") is not None:
        raise invalid("url", "/v1/render takes no 'url': send reference images as 'image' files of a form")
    payload: dict[str, Any] = {name: value for name, value in fields.items() if name != "url"}
    if kind == "multipart/form-data":  # a form without images: its fields as the JSON they stand for
        payload = {name: _typed(name, value) for name, value in payload.items()}
    if default and "model" not in payload:
        payload["model"] = default
    return await forward_images(relay, request, out, read_generation(orjson.dumps(payload)))


def _typed(name: str, value: Any) -> Any:
    if isinstance(value, str) and name in _INTEGERS and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, str) and name == "stream" and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


#: This module's routes (``relay.routes.ROUTES`` takes them in); it takes uploads (reference images).
ROUTES: tuple[Route, ...] = (Route("POST", "/v1/render", render, uploads=True),)

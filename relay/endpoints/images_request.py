"""OpenAI Images API requests, read and checked: generations (JSON), edits and variations (multipart forms).

Relay checks what every model shares (the fields' types and ranges, the files an edit needs) and leaves what
depends on the model (which sizes, qualities and formats it makes) to the upstream, which refuses in its own
words. Fields Relay does not know are sent on as they are (the API grows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from relay.dialects.common import load_object
from relay.errors import RelayError

from .multipart_form import Form, parse

Kind = Literal["generations", "edits", "variations"]
#: The model of a request that names none, as OpenAI: ``dall-e-2``.
DEFAULT_MODEL = "dall-e-2"
#: The size an image is billed at when neither the request nor the answer says (OpenAI's default).
DEFAULT_SIZE = "1024x1024"
MAX_IMAGES = 10
MAX_PARTIAL_IMAGES = 3
RESPONSE_FORMATS = ("url", "b64_json")
#: Text fields of a form or JSON body that must be strings when present.
_STRINGS = ("size", "quality", "style", "background", "moderation", "output_format", "user", "input_fidelity")


@attrs.frozen
class ImageCall:
    """One Images API request, as Relay needs it to route, hold, convert and bill it."""

    kind: Kind
    #: The model asked for (``DEFAULT_MODEL`` when the request names none).
    model: str
    #: The request named its model (else the upstream picks its own default, which is ``DEFAULT_MODEL``).
    named: bool
    n: int
    size: str | None
    quality: str | None
    response_format: str | None
    stream: bool
    #: "" for variations, which take no prompt.
    prompt: str
    #: The request's own body and content type, sent as they are when the model needs no renaming.
    body: bytes
    content_type: str
    #: The JSON body (generations) or the form (edits and variations).
    payload: dict[str, Any] | None = None
    form: Form | None = None

    def billed_size(self, size: str | None = None, quality: str | None = None) -> str:
        """``SIZE`` or ``SIZE/QUALITY`` of the images (``relay.gateway.pricing.image_price``): the answer's
        ``size`` and ``quality`` when it reports them, else the request's, else ``DEFAULT_SIZE``."""
        size = size or self.size or DEFAULT_SIZE
        quality = quality or self.quality
        return f"{size}/{quality}" if quality else size


def _invalid(message: str, param: str, code: str = "invalid_value") -> RelayError:
    return RelayError(400, "invalid_request", message, param=param, code=code)


def _integer(value: Any, name: str, low: int, high: int, *, text: bool) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and text:  # a form's fields are text
        try:
            value = int(value.strip())
        except ValueError:
            raise _invalid(f"'{name}' must be an integer, not {value!r}", name, "invalid_type") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"'{name}' must be an integer", name, "invalid_type")
    if not low <= value <= high:
        raise _invalid(f"'{name}' must be between {low} and {high}, not {value}", name)
    return value


def _boolean(value: Any, name: str, *, text: bool) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str) and value.strip().lower() in ("true", "false"):  # a form's fields are text
        return value.strip().lower() == "true"
    raise _invalid(f"'{name}' must be a boolean (true or false)", name, "invalid_type")


def _checked(fields: Mapping[str, Any], kind: Kind, body: bytes, content_type: str) -> dict[str, Any]:
    """The fields every image request shares, checked; the keyword arguments of its ``ImageCall``."""
    model = fields.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise _invalid("'model' must be a non-empty string", "model", "invalid_type")
    prompt = fields.get("prompt")
    if kind == "variations":
        if prompt is not None:
            raise _invalid("image variations take no 'prompt'", "prompt", "unknown_parameter")
        prompt = ""
    elif prompt is None:
        raise _invalid("'prompt' is required", "prompt", "missing_required_parameter")
    elif not isinstance(prompt, str):
        raise _invalid("'prompt' must be a string", "prompt", "invalid_type")
    elif not prompt.strip():
        raise _invalid("'prompt' must not be empty", "prompt")
    for name in _STRINGS:
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise _invalid(f"'{name}' must be a string", name, "invalid_type")
    response_format = fields.get("response_format")
    if response_format is not None and response_format not in RESPONSE_FORMATS:
        raise _invalid(f"'response_format' must be 'url' or 'b64_json', not {response_format!r}", "response_format")
    text = kind != "generations"  # a form: every field is text
    _integer(fields.get("partial_images"), "partial_images", 0, MAX_PARTIAL_IMAGES, text=text)
    _integer(fields.get("output_compression"), "output_compression", 0, 100, text=text)
    stream = _boolean(fields.get("stream"), "stream", text=text)
    if stream and kind == "variations":
        raise _invalid("image variations do not stream", "stream", "unknown_parameter")
    return {
        "kind": kind,
        "model": model or DEFAULT_MODEL,
        "named": model is not None,
        "n": _integer(fields.get("n"), "n", 1, MAX_IMAGES, text=text) or 1,
        "size": fields.get("size"),
        "quality": fields.get("quality"),
        "response_format": response_format,
        "stream": stream,
        "prompt": prompt,
        "body": body,
        "content_type": content_type,
    }


def read_generation(body: bytes) -> ImageCall:
    """``POST /v1/images/generations``: a JSON body."""
    payload = load_object(body)
    return ImageCall(**_checked(payload, "generations", body, "application/json"), payload=payload)


def read_form(kind: Kind, body: bytes, content_type: str) -> ImageCall:
    """``POST /v1/images/edits`` and ``/v1/images/variations``: a multipart form with the image files."""
    form = parse(body, content_type)
    fields = {part.name: form.field(part.name) for part in form.parts if part.filename is None}
    for name in ("image", "image[]", "mask"):
        if name in fields:
            raise _invalid(f"'{name}' must be a file, not a text field", name, "invalid_type")
    images = form.files("image")
    if not images:
        raise _invalid("'image' is required: the image file to " + kind[:-1], "image", "missing_required_parameter")
    if kind == "variations":
        if len(images) > 1:
            raise _invalid(f"image variations take one 'image', not {len(images)}", "image")
        if form.files("mask"):
            raise _invalid("image variations take no 'mask'", "mask", "unknown_parameter")
    if any(not part.data for part in images):
        raise _invalid("an 'image' file is empty", "image")
    masks = form.files("mask")
    if len(masks) > 1:
        raise _invalid(f"one 'mask' file at most, not {len(masks)}", "mask")
    if masks and not masks[0].data:
        raise _invalid("the 'mask' file is empty", "mask")
    return ImageCall(**_checked(fields, kind, body, content_type), form=form)

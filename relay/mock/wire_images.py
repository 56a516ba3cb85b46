"""The mock upstream's Images API (OpenAI's shape), and Gemini's image output from ``generateContent``.

- ``POST …/images/generations`` (JSON), ``POST …/images/edits`` and ``POST …/images/variations`` (multipart
  forms, read with ``relay.endpoints.multipart_form``). Checked as OpenAI checks them, by model family:

  ================  =========================  =================================  ========  =================
  family            sizes                      qualities                          n         response_format
  ================  =========================  =================================  ========  =================
  ``dall-e-2``      256x256, 512x512,          standard                           1-10      url (default),
                    1024x1024                                                                b64_json
  ``dall-e-3``      1024x1024, 1792x1024,      standard, hd                       1         url, b64_json
                    1024x1792                  (``style`` vivid or natural)
  ``gpt-image*``    auto, 1024x1024,           low, medium, high, auto            1-10      refused: always
                    1536x1024, 1024x1536                                                    b64_json
  ================  =========================  =================================  ========  =================

  Edits: ``dall-e-2`` (one square PNG ``image``, an optional PNG ``mask``) and ``gpt-image*`` (up to 16 PNG,
  JPEG or WebP images); variations: ``dall-e-2`` only (one PNG ``image``, no prompt). Any other model is a 400,
  as is an unknown parameter. ``stream: true`` (``gpt-image*`` only) answers server-sent events:
  ``partial_images`` partial images and one completed image per image, named ``image_generation.*`` or
  ``image_edit.*``.

  Each image is an 8x8 PNG (``relay.mock.png``) seeded by the endpoint, model, prompt, size, quality, the input
  images (and mask) and its index, so one request always gets the same bytes and its n images differ; ``url``
  answers are ``data:image/png;base64,…`` URLs. ``gpt-image*`` answers carry ``usage``: input tokens are the prompt's (a
  token is four characters, rounded up) plus 65 per input image; output tokens per image are 272, 1056 or 4160
  (low, medium or high quality; auto is medium) for 1024x1024, scaled by the pixels of the size.
  ``mock:status=NNN`` in the prompt answers that error status.

- ``POST …/models/{model}:generateContent`` whose ``generationConfig.responseModalities`` holds ``IMAGE``: one
  candidate with a text part and an ``inlineData`` PNG part (seeded by the model and the prompt), usage with
  1290 image tokens (``candidatesTokensDetails``). ``:streamGenerateContent`` (``?alt=sse`` or the JSON array)
  streams the same answer a part a chunk, the last with the finish reason and the usage. Any other
  generateContent is the mock model's own answer.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects.common import nested_deeper
from relay.endpoints import multipart_form
from relay.errors import RelayError
from relay.mock import model, png, wire_chat, wire_gemini
from relay.mock.directives import parse_directives
from relay.mock.model import CREATED, Answer, json_answer
from relay.mock.strict_gemini import get, problem

if TYPE_CHECKING:
    from relay.mock.call import Call, Dialect, MockState, RouteEntry

#: The deepest nesting the mock reads (as ``relay.mock.router``).
MAX_DEPTH = 200
SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image": ("auto", "1024x1024", "1536x1024", "1024x1536"),
}
QUALITIES = {
    "dall-e-2": ("standard",),
    "dall-e-3": ("standard", "hd"),
    "gpt-image": ("low", "medium", "high", "auto"),
}
PROMPT_LIMIT = {"dall-e-2": 1000, "dall-e-3": 4000, "gpt-image": 32000}
#: Output tokens of one 1024x1024 gpt-image image, by quality.
OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160, "auto": 1056}
#: Input tokens of one input image (edits).
INPUT_IMAGE_TOKENS = 65
#: Output tokens of one Gemini image.
GEMINI_IMAGE_TOKENS = 1290
MAX_EDIT_IMAGES = 16
_GENERATION_FIELDS = frozenset(
    {
        "prompt", "model", "n", "size", "quality", "response_format", "style", "user", "background", "moderation",
        "output_compression", "output_format", "partial_images", "stream", "safety_identifier",
    }
)  # fmt: skip
_EDIT_FIELDS = frozenset(
    {
        "image", "image[]", "mask", "prompt", "model", "n", "size", "quality", "response_format", "user",
        "background", "input_fidelity", "output_compression", "output_format", "partial_images", "stream",
        "safety_identifier",
    }
)  # fmt: skip
_VARIATION_FIELDS = frozenset({"image", "model", "n", "size", "response_format", "user"})
_IMAGE_TYPES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")


class Refused(Exception):
    """The mock refuses the request: its OpenAI error answer."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.answer = wire_chat.error(status, message, param, code="invalid_value" if param else None)


def family(name: str) -> str:
    """The model family whose rules apply; a 400 for a model that makes no images."""
    if name in ("dall-e-2", "dall-e-3"):
        return name
    if name.startswith(("gpt-image", "chatgpt-image")):
        return "gpt-image"
    raise Refused(f"Invalid value for 'model' = {name}: it does not make images.", "model")


def _one_of(value: Any, name: str, allowed: tuple[str, ...], model_name: str) -> None:
    if value is not None and value not in allowed:
        raise Refused(
            f"Invalid value: '{value}'. Supported values for '{name}' with {model_name} are: "
            + ", ".join(f"'{a}'" for a in allowed)
            + ".",
            name,
        )


class Ask:
    """One images request, read and checked."""

    def __init__(self, kind: str, fields: dict[str, Any], images: list[bytes]) -> None:
        self.kind = kind
        self.model = fields.get("model") if fields.get("model") is not None else "dall-e-2"
        if not isinstance(self.model, str):
            raise Refused("Invalid type for 'model': expected a string.", "model")
        self.family = family(self.model)
        self.images = images
        prompt = fields.get("prompt")
        if kind == "variations":
            if self.family != "dall-e-2":
                raise Refused(f"Image variations are only supported with dall-e-2, not {self.model}.", "model")
            prompt = ""
        elif prompt is None:
            raise Refused("Missing required parameter: 'prompt'.", "prompt")
        elif not isinstance(prompt, str):
            raise Refused("Invalid type for 'prompt': expected a string.", "prompt")
        elif not prompt:
            raise Refused("Invalid value for 'prompt': it must not be empty.", "prompt")
        elif len(prompt) > PROMPT_LIMIT[self.family]:
            raise Refused(
                f"Invalid 'prompt': string too long. Expected a string with maximum length "
                f"{PROMPT_LIMIT[self.family]}, but got a string with length {len(prompt)} instead.",
                "prompt",
            )
        self.prompt: str = prompt
        self.n = _integer(fields.get("n"), "n", 1, 10, 1)
        if self.family == "dall-e-3" and self.n != 1:
            raise Refused("Invalid 'n': dall-e-3 makes one image a request (n=1).", "n")
        self.size = fields.get("size")
        _one_of(self.size, "size", SIZES[self.family], self.model)
        self.quality = fields.get("quality")
        _one_of(self.quality, "quality", QUALITIES[self.family], self.model)
        self.format = fields.get("response_format")
        if self.format is not None and self.family == "gpt-image":
            raise Refused("Unknown parameter: 'response_format'.", "response_format")
        _one_of(self.format, "response_format", ("url", "b64_json"), self.model)
        style = fields.get("style")
        if style is not None:
            if self.family != "dall-e-3":
                raise Refused(f"Unknown parameter: 'style' ({self.model} takes no style).", "style")
            _one_of(style, "style", ("vivid", "natural"), self.model)
        if fields.get("stream") not in (None, True, False, "true", "false"):
            raise Refused("Invalid type for 'stream': expected a boolean.", "stream")
        self.stream = fields.get("stream") in (True, "true")
        if self.stream and self.family != "gpt-image":
            raise Refused(f"Streaming is only supported with the GPT image models, not {self.model}.", "stream")
        self.partials = _integer(fields.get("partial_images"), "partial_images", 0, 3, 0)

    def seed(self, index: int, extra: str = "") -> str:
        images = hashlib.sha256(b"".join(hashlib.sha256(i).digest() for i in self.images)).hexdigest()
        return f"{self.kind}|{self.model}|{self.prompt}|{self.size}|{self.quality}|{images}|{index}{extra}"

    def image(self, index: int) -> dict[str, Any]:
        data = base64.b64encode(png.png(self.seed(index))).decode("ascii")
        if self.family == "gpt-image" or self.format == "b64_json":
            out: dict[str, Any] = {"b64_json": data}
        else:
            out = {"url": "data:image/png;base64," + data}
        if self.family == "dall-e-3":
            out["revised_prompt"] = f"A picture of: {self.prompt}"
        return out

    def usage(self, images: int) -> dict[str, Any]:
        size = self.size if self.size not in (None, "auto") else "1024x1024"
        width, _, height = size.partition("x")
        per_image = round(OUTPUT_TOKENS[self.quality or "auto"] * int(width) * int(height) / (1024 * 1024))
        text = model.tokens(self.prompt)
        pictures = INPUT_IMAGE_TOKENS * len(self.images)  # a mask counts as an input image
        output = per_image * images
        return {
            "input_tokens": text + pictures,
            "input_tokens_details": {"text_tokens": text, "image_tokens": pictures},
            "output_tokens": output,
            "output_tokens_details": {"text_tokens": 0, "image_tokens": output},
            "total_tokens": text + pictures + output,
        }

    def answer(self) -> Answer:
        status = parse_directives(self.prompt).status
        if status:
            return Answer(status, wire_chat.error_body(status))
        if self.stream:
            return self._events()
        body: dict[str, Any] = {"created": CREATED, "data": [self.image(i) for i in range(self.n)]}
        if self.family == "gpt-image":
            body.update(self._described())
            body["usage"] = self.usage(self.n)
        return json_answer(200, body)

    def _described(self) -> dict[str, Any]:
        return {
            "background": "opaque",
            "output_format": "png",
            "quality": self.quality if self.quality not in (None, "auto") else "medium",
            "size": self.size if self.size not in (None, "auto") else "1024x1024",
        }

    def _events(self) -> Answer:
        prefix = "image_edit" if self.kind == "edits" else "image_generation"
        frames: list[bytes] = []
        for index in range(self.n):
            common = {"created_at": CREATED, **self._described()}
            for partial in range(self.partials):
                data = base64.b64encode(png.png(self.seed(index, f"|partial{partial}"))).decode("ascii")
                event = {"type": f"{prefix}.partial_image", "b64_json": data, "partial_image_index": partial}
                frames.append(_event(event["type"], {**event, **common}))
            done = {"type": f"{prefix}.completed", **self.image(index), **common, "usage": self.usage(1)}
            frames.append(_event(done["type"], done))
        return Answer(200, tuple(frames), model.SSE_HEADERS)


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _integer(value: Any, name: str, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise Refused(f"Invalid type for '{name}': expected an integer, but got a string.", name) from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise Refused(f"Invalid type for '{name}': expected an integer.", name)
    if value < low:
        raise Refused(f"Invalid '{name}': integer below minimum value. Expected a value >= {low}.", name)
    if value > high:
        raise Refused(f"Invalid '{name}': integer above maximum value. Expected a value <= {high}.", name)
    return value


# ---- OpenAI's Images API ---------------------------------------------------------------------------


def _generations(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    try:
        payload = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        return wire_chat.error(400, "We could not parse the JSON body of your request.")
    if not isinstance(payload, dict) or nested_deeper(payload, MAX_DEPTH):
        return wire_chat.error(400, "The request body must be a JSON object.")
    try:
        for name in payload:
            if name not in _GENERATION_FIELDS:
                raise Refused(f"Unknown parameter: '{name}'.", name)
        return Ask("generations", payload, []).answer()
    except Refused as refused:
        return refused.answer


def _form_route(kind: str) -> Any:
    def route(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
        try:
            form = multipart_form.parse(call.body, call.headers.get(b"content-type", ""))
        except RelayError as error:
            return wire_chat.error(400, error.message)
        try:
            return _form(kind, form)
        except Refused as refused:
            return refused.answer

    return route


def _form(kind: str, form: multipart_form.Form) -> Answer:
    allowed = _EDIT_FIELDS if kind == "edits" else _VARIATION_FIELDS
    for part in form.parts:
        if part.name not in allowed:
            raise Refused(f"Unknown parameter: '{part.name}'.", part.name)
    fields = {p.name: form.field(p.name) for p in form.parts if p.filename is None}
    for name in ("image", "image[]", "mask"):
        if name in fields:
            raise Refused(f"Invalid type for '{name}': expected a file, but got a string.", name)
    images = form.files("image") if kind == "edits" else [p for p in form.parts if p.name == "image"]
    if not images:
        raise Refused("Missing required parameter: 'image'.", "image")
    masks = [p for p in form.parts if p.name == "mask" and p.filename is not None]
    ask = Ask(kind, fields, [p.data for p in (*images, *masks)])
    if ask.family == "dall-e-3":
        raise Refused("Image edits are not supported with dall-e-3.", "model")
    pngs_only = ask.family == "dall-e-2"
    if pngs_only and len(images) > 1:
        raise Refused(f"{ask.model} takes one image to {kind[:-1]}, not {len(images)}.", "image")
    if len(images) > MAX_EDIT_IMAGES:
        raise Refused(f"Invalid 'image': at most {MAX_EDIT_IMAGES} images, got {len(images)}.", "image")
    if len(masks) > 1:
        raise Refused("Invalid 'mask': one mask file at most.", "mask")
    for name, part in [*(("image", p) for p in images), *(("mask", m) for m in masks)]:
        if pngs_only or name == "mask":
            if not png.is_png(part.data):
                raise Refused(f"Invalid input image: '{name}' must be a valid PNG file.", name)
        elif not part.data.startswith(_IMAGE_TYPES):
            raise Refused(f"Invalid input image: '{name}' must be a PNG, JPEG or WebP file.", name)
    return ask.answer()


# ---- Gemini's image output -------------------------------------------------------------------------


def _gemini_content(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    try:
        payload = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        return wire_gemini.error(400, "Invalid JSON payload received. The request body is not JSON.")
    if nested_deeper(payload, MAX_DEPTH):
        message = f"the request body is nested too deeply: at most {MAX_DEPTH} levels of arrays and objects"
        return wire_gemini.error(400, f"Invalid JSON payload received. {message}.")
    modalities = get(get(payload, "generationConfig"), "responseModalities")
    stream = None if match["verb"] == "generateContent" else "sse" if call.query.get("alt") == "sse" else "array"
    if not isinstance(modalities, list) or "IMAGE" not in (m.upper() for m in modalities if isinstance(m, str)):
        return wire_gemini.respond(payload, mock.options, match["model"], stream=stream)
    refused = problem(payload)
    if refused is not None:
        return wire_gemini.error(400, refused)
    prompt = wire_gemini.prompt(payload)
    status = parse_directives(prompt.text).status
    if status:
        return wire_gemini.error(status, f"mock upstream error {status}")
    data = base64.b64encode(png.png(f"gemini|{match['model']}|{prompt.text}")).decode("ascii")
    parts: list[dict[str, Any]] = [{"inlineData": {"mimeType": "image/png", "data": data}}]
    if "TEXT" in (m.upper() for m in modalities if isinstance(m, str)):
        parts.insert(0, {"text": f"Here is: {prompt.text}"})
    text_out = model.tokens(parts[0]["text"]) if "text" in parts[0] else 0
    usage = {
        "promptTokenCount": prompt.prompt_tokens,
        "candidatesTokenCount": GEMINI_IMAGE_TOKENS + text_out,
        "totalTokenCount": prompt.prompt_tokens + GEMINI_IMAGE_TOKENS + text_out,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt.prompt_tokens}],
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": GEMINI_IMAGE_TOKENS}],
    }
    answer = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage,
        "modelVersion": match["model"],
        "responseId": model.digest(payload),
    }
    if stream is None:
        return json_answer(200, answer)
    return _gemini_stream(answer, parts, stream == "sse")


def _gemini_stream(answer: dict[str, Any], parts: list[dict[str, Any]], sse: bool) -> Answer:
    """``answer`` streamed a part a chunk; the last chunk has the finish reason and the usage."""
    bodies = []
    for index, part in enumerate(parts):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
        chunk: dict[str, Any] = {"candidates": [candidate]}
        if index == len(parts) - 1:
            candidate["finishReason"] = "STOP"
            chunk["usageMetadata"] = answer["usageMetadata"]
        chunk.update(modelVersion=answer["modelVersion"], responseId=answer["responseId"])
        bodies.append(orjson.dumps(chunk))
    if sse:
        return Answer(200, tuple(b"data: " + body + b"\r\n\r\n" for body in bodies), model.SSE_HEADERS)
    return Answer(200, (b"[" + bodies[0], *(b",\r\n" + body for body in bodies[1:]), b"]"), model.JSON_HEADERS)


#: Routes ``relay.mock.router`` tries before its own: (method, path pattern, dialect or None, handler).
ROUTES: tuple[RouteEntry, ...] = (
    ("POST", re.compile(r"/images/generations$"), "openai", _generations),
    ("POST", re.compile(r"/images/edits$"), "openai", _form_route("edits")),
    ("POST", re.compile(r"/images/variations$"), "openai", _form_route("variations")),
    (
        "POST",
        re.compile(r"/models/(?P<model>[^/]+):(?P<verb>generateContent|streamGenerateContent)$"),
        "gemini",
        _gemini_content,
    ),
)

"""OpenAI image generations on Gemini: ``generateContent`` with image output, its answer as an Images answer.

The prompt goes as the user's text with ``generationConfig.responseModalities: ["IMAGE"]``; a ``size`` becomes
``imageConfig.aspectRatio`` (its width and height reduced: ``1536x1024`` is ``3:2``), when Gemini has that
ratio. The answer's ``inlineData`` images are the Images answer's images; its ``usageMetadata`` its tokens.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from math import gcd
from typing import Any

import attrs
import orjson

from relay.dialects import ir
from relay.dialects.common import load_object
from relay.dialects.gemini.response import usage_from_wire
from relay.errors import RelayError

#: The aspect ratios Gemini's ``imageConfig`` takes.
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
#: Finish reasons of an answer Gemini withheld for its content.
_BLOCKED = frozenset(
    {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_PROHIBITED_CONTENT", "RECITATION"}
)
#: Output formats by MIME type, as OpenAI names them.
_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}


def aspect_ratio(size: str | None) -> str | None:
    """Gemini's aspect ratio for an OpenAI ``size`` (None for no size or ``auto``); a 400 when it has none."""
    if size is None or size == "auto":
        return None
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise RelayError(
            400,
            "invalid_request",
            f"'size' must be WIDTHxHEIGHT or auto, not {size!r}",
            param="size",
            code="invalid_value",
        )
    divisor = gcd(int(width), int(height))
    ratio = f"{int(width) // divisor}:{int(height) // divisor}"
    if ratio not in ASPECT_RATIOS:
        raise RelayError(
            400,
            "invalid_request",
            f"'size' {size} has the aspect ratio {ratio}, which this model (served by Gemini) cannot make; "
            f"use a size of one of the ratios {', '.join(ASPECT_RATIOS)}, or auto",
            param="size",
            code="invalid_value",
        )
    return ratio


def encode_request(prompt: str, size: str | None) -> bytes:
    """The ``generateContent`` body that makes one image of ``prompt``."""
    config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
    ratio = aspect_ratio(size)
    if ratio is not None:
        config["imageConfig"] = {"aspectRatio": ratio}
    return orjson.dumps({"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": config})


@attrs.frozen
class Picture:
    mime_type: str
    #: The image, base64-encoded (as Gemini sends it and OpenAI's ``b64_json`` holds it).
    data: str

    def openai(self, response_format: str | None) -> dict[str, Any]:
        """The image as an OpenAI ``Image``: ``b64_json``, or a ``data:`` URL when ``url`` was asked."""
        if response_format == "url":
            return {"url": f"data:{self.mime_type};base64,{self.data}"}
        return {"b64_json": self.data}


@attrs.frozen
class Made:
    """What one ``generateContent`` answer made: its images and its tokens."""

    pictures: tuple[Picture, ...]
    usage: ir.Usage


def decode_response(data: bytes) -> Made:
    """A ``generateContent`` answer's images and usage; a 400 when Gemini withheld the image for its content,
    a 502 when it answered without one for another reason."""
    payload = load_object(data, upstream=True)
    pictures: list[Picture] = []
    reasons: list[str] = []
    candidates = payload.get("candidates")
    for candidate in candidates if isinstance(candidates, list) else ():
        if not isinstance(candidate, dict):
            continue
        if isinstance(candidate.get("finishReason"), str):
            reasons.append(candidate["finishReason"])
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            inline = (part.get("inlineData") or part.get("inline_data")) if isinstance(part, dict) else None
            if not isinstance(inline, dict):
                continue
            mime = inline.get("mimeType") or inline.get("mime_type")
            picture = inline.get("data")
            if isinstance(mime, str) and mime.startswith("image/") and isinstance(picture, str) and picture:
                pictures.append(Picture(mime, _checked_base64(picture)))
    feedback = payload.get("promptFeedback")
    if isinstance(feedback, dict) and isinstance(feedback.get("blockReason"), str):
        reasons.append(feedback["blockReason"])
    if not pictures:
        if _BLOCKED.intersection(reasons) or any(r.startswith(("SAFETY", "IMAGE_SAFETY")) for r in reasons):
            raise RelayError(
                400,
                "invalid_request",
                "the request was rejected by the model's safety system: no image was made",
                code="content_policy_violation",
                param="prompt",
            )
        raise RelayError(
            502,
            "upstream",
            "the upstream answered without an image",
            code="upstream_no_image",
            detail="Gemini answered without inlineData (finishReason " + (", ".join(reasons) or "none") + ")",
        )
    meta = payload.get("usageMetadata")
    usage = usage_from_wire(meta) if isinstance(meta, dict) else ir.Usage()
    return Made(tuple(pictures), usage)


def _checked_base64(data: str) -> str:
    try:
        base64.b64decode(data, validate=True)
    except ValueError:
        raise RelayError(502, "upstream", "the upstream sent a malformed image", code="upstream_malformed") from None
    return data


def images_answer(
    pictures: Sequence[Picture], usage: ir.Usage, response_format: str | None, created: int
) -> dict[str, Any]:
    """The OpenAI ``ImagesResponse`` of ``pictures``, with the tokens in gpt-image's ``usage`` shape."""
    answer: dict[str, Any] = {"created": created, "data": [p.openai(response_format) for p in pictures]}
    formats = {_FORMATS.get(p.mime_type) for p in pictures}
    if len(formats) == 1 and None not in formats:
        answer["output_format"] = formats.pop()
    answer["usage"] = {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"text_tokens": usage.input_tokens, "image_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"text_tokens": 0, "image_tokens": usage.output_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
    return answer


def completed_events(pictures: Sequence[Picture], usage: ir.Usage, created: int) -> bytes:
    """The stream of a ``stream: true`` generation made on Gemini (which streams no partial images): one
    ``image_generation.completed`` event per image, the request's tokens on the last."""
    out: list[bytes] = []
    for index, picture in enumerate(pictures):
        last = index == len(pictures) - 1
        event = {
            "type": "image_generation.completed",
            "b64_json": picture.data,
            "background": "opaque",
            "created_at": created,
            "output_format": _FORMATS.get(picture.mime_type, "png"),
            "quality": "auto",
            "size": "auto",
            "usage": {
                "input_tokens": usage.input_tokens if last else 0,
                "input_tokens_details": {"text_tokens": usage.input_tokens if last else 0, "image_tokens": 0},
                "output_tokens": usage.output_tokens if last else 0,
                "total_tokens": usage.input_tokens + usage.output_tokens if last else 0,
            },
        }
        out.append(b"event: image_generation.completed\ndata: " + orjson.dumps(event) + b"\n\n")
    return b"".join(out)

"""OpenAI image generations on Gemini (``relay.dialects.gemini.images``): sizes as aspect ratios, the answer's
images, and the answers without one (withheld for content: 400; otherwise: 502)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from relay.dialects import ir
from relay.dialects.gemini import images as images_gemini
from relay.errors import RelayError


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        (None, None),
        ("auto", None),
        ("1024x1024", "1:1"),
        ("1536x1024", "3:2"),
        ("1024x1536", "2:3"),
        ("1920x1080", "16:9"),
    ],
)
def test_sizes_become_aspect_ratios(size: str | None, ratio: str | None) -> None:
    body = json.loads(images_gemini.encode_request("a fox", size))
    assert body["contents"] == [{"role": "user", "parts": [{"text": "a fox"}]}]
    assert body["generationConfig"]["responseModalities"] == ["IMAGE"]
    assert body["generationConfig"].get("imageConfig") == ({"aspectRatio": ratio} if ratio else None)


@pytest.mark.parametrize("size", ["1792x1024", "big", "0x10", "10x", "x"])
def test_sizes_without_a_ratio_are_400s_naming_size(size: str) -> None:
    with pytest.raises(RelayError) as caught:
        images_gemini.encode_request("a fox", size)
    assert (caught.value.status, caught.value.param) == (400, "size")


def answer(parts: list[dict[str, Any]], finish: str = "STOP", **extra: Any) -> bytes:
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": finish}
    meta = {"promptTokenCount": 7, "candidatesTokenCount": 1290, "thoughtsTokenCount": 10}
    return json.dumps({"candidates": [candidate], "usageMetadata": meta, **extra}).encode()


def test_images_and_usage_are_read() -> None:
    data = base64.b64encode(b"\x89PNG fake").decode()
    made = images_gemini.decode_response(
        answer([{"text": "Here"}, {"inlineData": {"mimeType": "image/png", "data": data}}])
    )
    assert made.pictures == (images_gemini.Picture("image/png", data),)
    assert (made.usage.input_tokens, made.usage.output_tokens) == (7, 1300)
    shaped = images_gemini.images_answer(made.pictures, made.usage, "url", 5)
    assert shaped["data"] == [{"url": f"data:image/png;base64,{data}"}] and shaped["output_format"] == "png"
    assert shaped["usage"]["total_tokens"] == 1307
    assert images_gemini.images_answer(made.pictures, ir.Usage(), None, 5)["data"] == [{"b64_json": data}]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (answer([], "IMAGE_SAFETY"), 400, "content_policy_violation"),
        (answer([{"text": "no"}], "SAFETY"), 400, "content_policy_violation"),
        (
            json.dumps({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}).encode(),
            400,
            "content_policy_violation",
        ),
        (answer([{"text": "I can only talk"}]), 502, "upstream_no_image"),
        (answer([{"inlineData": {"mimeType": "image/png", "data": "!!not base64!!"}}]), 502, "upstream_malformed"),
        (b"[1]", 502, "upstream_malformed"),
    ],
)
def test_answers_without_an_image(body: bytes, status: int, code: str) -> None:
    with pytest.raises(RelayError) as caught:
        images_gemini.decode_response(body)
    assert (caught.value.status, caught.value.code) == (status, code)

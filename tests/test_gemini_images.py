"""What Gemini image output is billed: the images counted in an answer or a chunk, and the hold's images."""

from __future__ import annotations

from typing import Any

from relay.dialects import ir
from relay.endpoints import gemini_images


def answer(*parts: Any, candidates: int = 1) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": list(parts)}} for _ in range(candidates)]}


PNG = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}


def test_images_are_inline_data_parts_of_an_image_type() -> None:
    assert gemini_images.count(answer(PNG)) == 1
    assert gemini_images.count(answer({"text": "here"}, PNG, {"inline_data": {"mime_type": "IMAGE/JPEG"}})) == 2
    assert gemini_images.count(answer(PNG, candidates=3)) == 3
    assert gemini_images.count(answer({"inlineData": {"mimeType": "audio/wav", "data": ""}})) == 0
    assert gemini_images.count(answer({"text": "no picture"})) == 0
    for odd in ({}, {"candidates": None}, {"candidates": [None, {"content": []}]}, answer("part", {"inlineData": 1})):
        assert gemini_images.count(odd) == 0


def test_the_hold_covers_one_image_per_candidate_asked_for() -> None:
    asked = {"generationConfig": {"responseModalities": ["TEXT", "image"]}}
    assert gemini_images.hold(asked) == ir.Usage(images=1)
    assert gemini_images.hold({"generationConfig": {**asked["generationConfig"], "candidateCount": 3}}) == ir.Usage(
        images=3
    )
    assert gemini_images.hold({"generation_config": {"response_modalities": ["IMAGE"], "candidate_count": 2}}) == (
        ir.Usage(images=2)
    )
    assert gemini_images.hold({"generationConfig": {"responseModalities": ["TEXT"]}}) is None
    assert gemini_images.hold({"generationConfig": {"responseModalities": "IMAGE"}}) is None
    assert gemini_images.hold(None) is None


def test_billed_adds_the_images_to_the_usage() -> None:
    usage = ir.Usage(input_tokens=5, output_tokens=1290)
    assert gemini_images.billed(usage, 0) is usage
    assert gemini_images.billed(usage, 2) == ir.Usage(input_tokens=5, output_tokens=1290, images=2)
    assert gemini_images.billed(None, 1) == ir.Usage(images=1)
    assert gemini_images.billed(None, 0) is None

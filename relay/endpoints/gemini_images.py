"""Gemini's image output, billed per image beside its tokens (``[[prices]]`` ``image``).

A Gemini ``generateContent`` / ``streamGenerateContent`` whose ``generationConfig.responseModalities`` holds
``IMAGE`` may answer with images: ``inlineData`` parts of an ``image/*`` MIME type, in the answer or in the
stream's chunks (each image whole in one chunk). Relay counts them (``count``) and charges each as an image
of no size (the price's ``image``); the quota hold covers one image per candidate asked for (``hold``).
"""

from __future__ import annotations

from typing import Any

import attrs

from relay.dialects import ir


def asks_images(payload: dict[str, Any] | None) -> bool:
    """Whether a Gemini request asks for image output (``IMAGE`` among its response modalities)."""
    config = _config(payload)
    modalities = config.get("responseModalities", config.get("response_modalities"))
    if not isinstance(modalities, list):
        return False
    return any(isinstance(m, str) and m.upper() == "IMAGE" for m in modalities)


def hold(payload: dict[str, Any] | None) -> ir.Usage | None:
    """The images a Gemini request's hold covers: one per candidate it asks for, if it asks for images."""
    if not asks_images(payload):
        return None
    config = _config(payload)
    candidates = config.get("candidateCount", config.get("candidate_count"))
    valid = isinstance(candidates, int) and not isinstance(candidates, bool) and candidates > 0
    return ir.Usage(images=candidates if valid else 1)


def count(answer: dict[str, Any]) -> int:
    """The images in a Gemini answer (or stream chunk): its candidates' ``inlineData`` parts of an image type."""
    images = 0
    candidates = answer.get("candidates")
    for candidate in candidates if isinstance(candidates, list) else ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            inline = part.get("inlineData", part.get("inline_data")) if isinstance(part, dict) else None
            if not isinstance(inline, dict):
                continue
            mime = inline.get("mimeType", inline.get("mime_type"))
            if isinstance(mime, str) and mime.lower().startswith("image/"):
                images += 1
    return images


def billed(usage: ir.Usage | None, images: int) -> ir.Usage | None:
    """``usage`` with ``images`` made (unchanged when none were)."""
    if not images:
        return usage
    return attrs.evolve(usage or ir.Usage(), images=images)


def _config(payload: dict[str, Any] | None) -> dict[str, Any]:
    config = payload.get("generationConfig", payload.get("generation_config")) if payload is not None else None
    return config if isinstance(config, dict) else {}

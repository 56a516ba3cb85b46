"""OpenAI's Moderations on the mock's wire: ``POST …/moderations``, deterministic.

The request is checked as OpenAI checks it: ``input`` a string, a non-empty array of strings, or a non-empty
array of parts (``text``, ``image_url``; images only for ``omni-moderation-*`` models); ``model`` optional
(``omni-moderation-latest``), an ``omni-moderation-*`` or ``text-moderation-*`` name, else a 404.

One result per string of the input (one for a string; one for a whole array of parts). A category is flagged,
its score 0.98, when the text holds its trigger word (``TRIGGERS``: whole words, any case); every other score
is below 0.001, derived from the text. Images are not looked at: they only add ``image`` to the applied input
types of the categories OpenAI scores images for.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from typing import TYPE_CHECKING, Any

import orjson

from relay.dialects.common import nested_deeper
from relay.mock import wire_chat
from relay.mock.model import Answer, json_answer

if TYPE_CHECKING:
    from relay.mock.call import Call, Dialect, MockState, RouteEntry

DEFAULT_MODEL = "omni-moderation-latest"
MODEL_PREFIXES = ("omni-moderation-", "text-moderation-")
#: Each category (OpenAI's order) and the word that flags it.
TRIGGERS: dict[str, str] = {
    "harassment": "idiot",
    "harassment/threatening": "threaten",
    "hate": "hateful",
    "hate/threatening": "exterminate",
    "illicit": "shoplift",
    "illicit/violent": "bomb",
    "self-harm": "cutting",
    "self-harm/instructions": "overdose",
    "self-harm/intent": "suicidal",
    "sexual": "explicit",
    "sexual/minors": "underage",
    "violence": "kill",
    "violence/graphic": "gore",
}
#: The categories OpenAI also scores images for.
IMAGE_CATEGORIES = frozenset(
    {"self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "violence", "violence/graphic"}
)
FLAGGED_SCORE = 0.98
MAX_DEPTH = 200

_WORD = re.compile(r"[^\W_]+")


def _refuse(status: int, message: str, param: str | None = "input", code: str | None = None) -> Answer:
    return wire_chat.error(status, message, param=param, code=code)


def _inputs(value: Any, model: str) -> list[tuple[str, bool]] | Answer:
    """(text, holds an image) of each input to score, or a refusal."""
    if isinstance(value, str):
        return [(value, False)]
    if not isinstance(value, list) or not value:
        return _refuse(400, "'input' must be a string, a non-empty array of strings or a non-empty array of parts")
    if all(isinstance(item, str) for item in value):
        return [(item, False) for item in value]
    texts: list[str] = []
    image = False
    for index, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url" and isinstance(part.get("image_url"), dict) and part["image_url"].get("url"):
            if not model.startswith("omni-moderation-"):
                return _refuse(400, f"the model '{model}' does not accept images", param=f"input[{index}]")
            image = True
        else:
            return _refuse(400, f"'input[{index}]' must be a text or image_url part", param=f"input[{index}]")
    return [(" ".join(texts), image)]


def result(text: str, image: bool) -> dict[str, Any]:
    """One ``Moderation`` object, as OpenAI writes it."""
    found = set(_WORD.findall(text.lower()))
    categories = {name: word in found for name, word in TRIGGERS.items()}
    scores = {
        name: FLAGGED_SCORE if categories[name] else (zlib.crc32(f"{name}:{text}".encode()) % 1000) / 1_000_000
        for name in TRIGGERS
    }
    applied = {
        name: (["text"] if text or not image else []) + (["image"] if image and name in IMAGE_CATEGORIES else [])
        for name in TRIGGERS
    }
    return {
        "flagged": any(categories.values()),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
    }


def _moderations(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    try:
        payload = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        return _refuse(400, "the request body is not JSON", param=None)
    if not isinstance(payload, dict) or nested_deeper(payload, MAX_DEPTH):
        return _refuse(400, "the request body must be a JSON object, at most 200 levels deep", param=None)
    model = payload.get("model", DEFAULT_MODEL)
    if not isinstance(model, str):
        return _refuse(400, "'model' must be a string", param="model")
    if not model.startswith(MODEL_PREFIXES):
        message = f"The model `{model}` does not exist or you do not have access to it."
        return _refuse(404, message, param="model", code="model_not_found")
    if "input" not in payload:
        return _refuse(400, "'input' is required")
    inputs = _inputs(payload["input"], model)
    if isinstance(inputs, Answer):
        return inputs
    digest = hashlib.sha256(call.body).hexdigest()[:24]
    return json_answer(
        200, {"id": f"modr-{digest}", "model": model, "results": [result(text, image) for text, image in inputs]}
    )


#: Routes ``relay.mock.router`` tries before its own (``wire_rerank.ROUTES`` takes them in).
ROUTES: tuple[RouteEntry, ...] = (("POST", re.compile(r"/moderations$"), "openai", _moderations),)

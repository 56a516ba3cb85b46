"""A client's moderation request (``/v1/moderations``), checked before it passes to an OpenAI-family upstream.

OpenAI's shape: ``input`` is a string, an array of strings, or an array of multi-modal parts (``{"type": "text",
"text"}`` and ``{"type": "image_url", "image_url": {"url"}}``); ``model`` is optional and defaults to
``DEFAULT_MODEL``, the name Relay routes the request by. The body goes upstream as the client wrote it, but for
``model``: the name the channel knows.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from relay.dialects import ir
from relay.dialects.common import bad_request, bad_upstream, load_object, refuse_ambiguous, want

#: The model a request that names none is routed by (OpenAI's own default).
DEFAULT_MODEL = "omni-moderation-latest"


@attrs.frozen
class ModerationRequest:
    model: str
    #: The client's body, parsed.
    payload: dict[str, Any]


def read_request(body: bytes) -> ModerationRequest:
    """The request; a 400 naming the parameter when it is not OpenAI's shape."""
    payload = load_object(body)
    refuse_ambiguous(body)
    model = payload.get("model")
    if model is None:
        model = DEFAULT_MODEL
    else:
        want(model, str, "model", "a string")
        if not model:
            raise bad_request("'model' must be a non-empty string", "model")
    _check_input(payload.get("input"))
    return ModerationRequest(model, payload)


def _check_input(value: Any) -> None:
    if value is None:
        raise bad_request("'input' is required: a string, an array of strings or an array of input parts", "input")
    if isinstance(value, str):
        return
    want(value, list, "input", "a string, an array of strings or an array of input parts")
    if not value:
        raise bad_request("'input' must not be an empty array", "input")
    strings = isinstance(value[0], str)  # an array of strings, or of parts: the first item says which
    for index, item in enumerate(value):
        if strings:
            want(item, str, f"input[{index}]", "a string (an array of strings and parts cannot be mixed)")
        else:
            _check_part(item, f"input[{index}]")


def _check_part(part: Any, param: str) -> None:
    """One multi-modal part."""
    want(part, dict, param, "an input part object (an array of strings and parts cannot be mixed)")
    kind = part.get("type")
    if kind == "text":
        want(part.get("text"), str, f"{param}.text", "a string")
    elif kind == "image_url":
        image = want(part.get("image_url"), dict, f"{param}.image_url", "an object with a 'url' string")
        url = want(image.get("url"), str, f"{param}.image_url.url", "a string")
        if not url:
            raise bad_request(f"'{param}.image_url.url' must not be empty", f"{param}.image_url.url")
    else:
        raise bad_request(f"'{param}.type' must be 'text' or 'image_url'", f"{param}.type")


def upstream_body(req: ModerationRequest, model: str) -> bytes:
    """The client's body for ``model`` (the name the channel knows)."""
    return orjson.dumps({**req.payload, "model": model})


def read_answer(data: bytes) -> ir.Usage | None:
    """The tokens an upstream's answer reports, if any (OpenAI's reports none: moderation is free); a 502 when
    the answer is not a moderation (a JSON object with a ``results`` array)."""
    payload = load_object(data, upstream=True)
    if not isinstance(payload.get("results"), list):
        raise bad_upstream("the upstream's moderation answer has no 'results' array")
    reported = payload.get("usage")
    if not isinstance(reported, dict):
        return None
    for name in ("input_tokens", "prompt_tokens", "total_tokens"):
        tokens = reported.get(name)
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0:
            return ir.Usage(input_tokens=tokens)
    return None

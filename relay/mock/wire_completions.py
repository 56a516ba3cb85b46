"""OpenAI's legacy Completions on the mock's wire: ``POST /v1/completions``.

Each prompt is answered as the mock model answers a user message (``relay.mock.model``): ``"Echo: <prompt>"``,
cut at a stop sequence or at ``max_tokens`` (16 when absent, as OpenAI's default), its directives obeyed. A prompt
given as tokens reads as its token ids joined by spaces, one token each. With ``suffix`` the answer is the one to
``"<prompt>[insert]<suffix>"``. ``echo`` puts the prompt before the text. Every prompt gets ``n`` choices (the same
text: the mock is deterministic), choice ``i * n + j`` being sample ``j`` of prompt ``i``. ``logprobs`` gives each
four-character piece of the text a logprob of -0.25 (and itself as the only top alternative).

Usage: a token is four characters, rounded up; prompt tokens count each prompt once, completion tokens every
choice. A stream sends each choice in turn (the echoed prompt, its text in ``mock:chunks`` pieces, an empty text
with its finish reason), then the usage chunk when ``stream_options.include_usage`` asks, then ``data: [DONE]``.

Refused as OpenAI refuses them (400): another field than ``CompletionCreateParams``'s, a missing or mistyped
``model`` or ``prompt``, values out of range, ``best_of`` below ``n`` or with ``stream``, ``stream_options``
without ``stream``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from relay.config import MockOptions
from relay.dialects.common import nested_deeper
from relay.mock import model, wire_chat
from relay.mock.model import CREATED, Answer, Prompt, Reply, split

if TYPE_CHECKING:
    from relay.mock.call import Call, Dialect, MockState, RouteEntry

_PARAMS = frozenset(
    {
        "model", "prompt", "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n",
        "presence_penalty", "seed", "stop", "stream", "stream_options", "suffix", "temperature", "top_p", "user",
    }
)  # fmt: skip
DEFAULT_MAX_TOKENS = 16
LOGPROB = -0.25
#: The deepest nesting the mock reads (as its router).
MAX_DEPTH = 200

Problem = tuple[str | None, str]


def problem(payload: Any) -> Problem | None:
    """What OpenAI would answer 400 to, as (param, message); None when the request is fine."""
    if not isinstance(payload, dict):
        return None, "the request body must be a JSON object"
    for key in payload:
        if key not in _PARAMS:
            return key, f"Unrecognized request argument supplied: {key}"
    if "model" not in payload:
        return "model", "you must provide a model parameter"
    if not isinstance(payload["model"], str):
        return "model", "Invalid type for 'model': expected a string."
    found = _prompt(payload.get("prompt"))
    checks: list[tuple[str, tuple[type, ...], float | None, float | None]] = [
        ("n", (int,), 1, 128),
        ("best_of", (int,), 1, 20),
        ("max_tokens", (int,), 0, None),
        ("logprobs", (int,), 0, 5),
        ("seed", (int,), None, None),
        ("temperature", (int, float), 0, 2),
        ("top_p", (int, float), 0, 1),
        ("presence_penalty", (int, float), -2, 2),
        ("frequency_penalty", (int, float), -2, 2),
    ]
    for name, kinds, low, high in checks:
        found = found or _value(payload.get(name), name, kinds, low, high)
    for name, kind, what in (
        ("echo", bool, "a boolean"),
        ("stream", bool, "a boolean"),
        ("suffix", str, "a string"),
        ("user", str, "a string"),
        ("logit_bias", dict, "an object"),
        ("stream_options", dict, "an object"),
    ):
        value = payload.get(name)
        if found is None and value is not None and not isinstance(value, kind):
            found = name, f"Invalid type for '{name}': expected {what}."
    return found or _stop(payload.get("stop")) or _together(payload)


def _prompt(prompt: Any) -> Problem | None:
    if prompt is None:
        return "prompt", "Missing required parameter: 'prompt'."
    if isinstance(prompt, str) or _prompts(prompt) is not None:
        return None
    return (
        "prompt",
        "Invalid type for 'prompt': expected a string, an array of strings, an array of integers or an array of "
        "arrays of integers.",
    )


def _value(value: Any, name: str, kinds: tuple[type, ...], low: float | None, high: float | None) -> Problem | None:
    if value is None:
        return None
    if not isinstance(value, kinds) or isinstance(value, bool):
        kind = "an integer" if kinds == (int,) else "a number"
        return name, f"Invalid type for '{name}': expected {kind}."
    if low is not None and value < low:
        return name, f"Invalid '{name}': {value} is less than the minimum of {low}."
    if high is not None and value > high:
        return name, f"Invalid '{name}': {value} is greater than the maximum of {high}."
    return None


def _stop(stop: Any) -> Problem | None:
    if stop is None or isinstance(stop, str):
        return None
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        return "stop", "Invalid type for 'stop': expected a string or an array of strings."
    if len(stop) > 4:
        return "stop", f"Invalid 'stop': expected an array with maximum length 4, but got {len(stop)} items instead."
    return None


def _together(payload: dict[str, Any]) -> Problem | None:
    n, best_of = payload.get("n") or 1, payload.get("best_of")
    if best_of is not None and best_of < n:
        return "best_of", "best_of must be greater than or equal to n."
    if best_of is not None and best_of > 1 and payload.get("stream"):
        return "best_of", "Cannot stream results with best_of > 1."
    if payload.get("stream_options") is not None and not payload.get("stream"):
        return "stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    usage = (payload.get("stream_options") or {}).get("include_usage")
    if usage is not None and not isinstance(usage, bool):
        return "stream_options.include_usage", "Invalid type for 'stream_options.include_usage': expected a boolean."
    return None


def _token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _prompts(prompt: Any) -> list[tuple[str, int]] | None:
    """Each prompt's text and tokens; None when ``prompt`` has no allowed shape."""
    if isinstance(prompt, str):
        return [(prompt, model.tokens(prompt))]
    if not isinstance(prompt, list) or not prompt:
        return None
    if all(isinstance(p, str) for p in prompt):
        return [(p, model.tokens(p)) for p in prompt]
    if all(_token(t) for t in prompt):
        return [(" ".join(map(str, prompt)), len(prompt))]
    if all(isinstance(p, list) and p and all(_token(t) for t in p) for p in prompt):
        return [(" ".join(map(str, p)), len(p)) for p in prompt]
    return None


def _reply(payload: dict[str, Any], text: str, tokens: int, options: MockOptions) -> Reply:
    suffix = payload.get("suffix")
    stop = payload.get("stop")
    limit = payload.get("max_tokens")
    prompt = Prompt(
        text=f"{text}[insert]{suffix}" if suffix else text,
        max_tokens=DEFAULT_MAX_TOKENS if limit is None else limit,
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        prompt_tokens=tokens,
        seed=model.digest(payload),
    )
    return model.answer(prompt, options)


def _logprobs(text: str, offset: int, top: int) -> dict[str, Any]:
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    starts = [offset + i for i in range(0, len(text), 4)]
    return {
        "tokens": pieces,
        "token_logprobs": [LOGPROB] * len(pieces),
        "top_logprobs": [{p: LOGPROB} for p in pieces] if top > 0 else None,
        "text_offset": starts,
    }


def _choice(index: int, text: str, finish: str | None, logprobs: int | None, offset: int = 0) -> dict[str, Any]:
    return {
        "text": text,
        "index": index,
        "logprobs": _logprobs(text, offset, logprobs) if logprobs is not None else None,
        "finish_reason": finish,
    }


def respond(payload: Any, options: MockOptions) -> Answer:
    """The whole answer to a Completions body: a refusal, a ``mock:status`` error, a body or a stream."""
    refused = problem(payload)
    if refused is not None:
        param, message = refused
        return wire_chat.error(400, message, param)
    prompts = _prompts(payload["prompt"])
    assert prompts is not None
    replies = [(text, _reply(payload, text, tokens, options)) for text, tokens in prompts]
    first = replies[0][1]
    failing = next((r for _, r in replies if r.directives.status), None)
    if failing is not None:
        status = failing.directives.status
        assert status is not None
        return Answer(status, wire_chat.error_body(status), model.JSON_HEADERS, failing)
    n = payload.get("n") or 1
    echo = payload.get("echo") is True
    logprobs = payload.get("logprobs")
    head = {"id": f"cmpl-{first.id}", "object": "text_completion", "created": CREATED, "model": payload["model"]}
    usage = {
        "prompt_tokens": sum(r.prompt_tokens for _, r in replies),
        "completion_tokens": sum(r.completion_tokens for _, r in replies) * n,
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if not payload.get("stream"):
        choices = [
            _choice(i * n + j, (text if echo else "") + r.text, r.finish_reason, logprobs)
            for i, (text, r) in enumerate(replies)
            for j in range(n)
        ]
        body = {**head, "choices": choices, "usage": usage, "system_fingerprint": "fp_mock"}
        return Answer(200, orjson.dumps(body), model.JSON_HEADERS, first)

    def frame(body: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps({**head, **body, "system_fingerprint": "fp_mock"}) + b"\n\n"

    frames = []
    for i, (text, r) in enumerate(replies):
        for j in range(n):
            index = i * n + j
            offset = 0
            pieces = ([text] if echo and text else []) + split(r.text, r.chunks)
            for piece in pieces:
                frames.append(frame({"choices": [_choice(index, piece, None, logprobs, offset)]}))
                offset += len(piece)
            frames.append(frame({"choices": [_choice(index, "", r.finish_reason, None)]}))
    if (payload.get("stream_options") or {}).get("include_usage") is True:
        frames.append(frame({"choices": [], "usage": usage}))
    frames.append(b"data: [DONE]\n\n")
    return Answer(200, tuple(frames), model.SSE_HEADERS, first)


def _handle(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    try:
        payload = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        return wire_chat.error(400, "the request body is not JSON")
    if nested_deeper(payload, MAX_DEPTH):
        return wire_chat.error(400, f"the request body is nested too deeply: at most {MAX_DEPTH} levels")
    return respond(payload, mock.options)


#: Routes ``relay.mock.router`` tries before its own: (method, path pattern, dialect or None, handler).
#: ``/chat/completions`` is Chat's, not this one.
ROUTES: tuple[RouteEntry, ...] = (("POST", re.compile(r"(?<!/chat)/completions$"), "openai", _handle),)

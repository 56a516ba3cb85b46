"""OpenAI's legacy Completions requests (``POST /v1/completions``): read and checked, and mapped onto Chat.

``read_request`` checks the fields Relay acts on, whatever the channel: ``model``, ``prompt`` (a string, an array
of strings, an array of tokens or an array of token arrays), ``stream``, ``stream_options``, ``echo``, ``suffix``,
``n``, ``best_of``, ``max_tokens``, ``logprobs``, ``stop``, ``temperature``, ``top_p`` and ``user``. Every other
field passes on to an OpenAI channel unread (its upstream judges it).

A channel of another API gets each (prompt, sample) as a Chat request through the IR (``chat_body``):

- the prompt is the one user message (``[{"role": "user", "content": prompt}]``), no system message;
- ``max_tokens`` is kept, and is 16 when absent (the Completions API's own default);
- ``temperature``, ``top_p``, ``stop``, ``user`` and every other field go as the same Chat field, where Chat's
  conversion judges them (``seed`` and other fields the channel's API lacks are a 400 naming them);
- Relay's own: ``stream`` (per call), ``stream_options`` (Relay writes the usage chunk), ``echo`` (Relay
  prepends the prompt), ``n`` (one call per sample);
- refused (400 naming the field): ``suffix`` (other than empty), ``logprobs`` (other than null), ``best_of``
  above ``n``, prompts given as tokens (Relay has no tokenizer), and more than ``MAX_CONVERTED`` choices.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from relay.dialects.common import bad_request, load_object, optional, refuse_ambiguous, want
from relay.errors import RelayError

#: The Completions API's default ``max_tokens``, applied when a request without one is converted.
DEFAULT_MAX_TOKENS = 16
#: OpenAI's limits on ``n``, ``best_of``, ``logprobs`` and the number of ``stop`` sequences.
MAX_N = 128
MAX_BEST_OF = 20
MAX_LOGPROBS = 5
MAX_STOP = 4
#: The most choices (prompts times n) a converted request may ask for: each is one upstream call.
MAX_CONVERTED = 16
#: Fields Relay itself carries out on a converted channel (never sent as Chat fields).
_OWN = frozenset({"model", "prompt", "stream", "stream_options", "echo", "suffix", "n", "best_of", "logprobs"})
_PROMPT_SHAPES = "a string, an array of strings, an array of tokens (integers) or an array of token arrays"


@attrs.frozen
class CompletionRequest:
    """What Relay reads of a Completions request body."""

    payload: dict[str, Any]
    model: str
    #: The prompts as text (one per element of an array); empty when they were given as tokens.
    prompts: tuple[str, ...]
    #: The prompt was given as tokens (an array of integers, or of such arrays).
    tokens: bool
    n: int
    stream: bool
    #: The client asked for the usage chunk (``stream_options.include_usage``).
    include_usage: bool
    echo: bool

    @property
    def choices(self) -> int:
        return max(len(self.prompts), 1) * self.n


def read_request(body: bytes) -> CompletionRequest:
    """Parse and check the fields Relay acts on; a 400 naming the parameter otherwise."""
    payload = load_object(body)
    refuse_ambiguous(body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("you must provide a model parameter (a non-empty string)", "model")
    prompts, tokens = _prompts(payload)
    stream = bool(optional(payload, "stream", bool, "stream", "a boolean"))
    options = optional(payload, "stream_options", dict, "stream_options", "an object")
    if options is not None and not stream:
        raise bad_request("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
    usage = optional(options or {}, "include_usage", bool, "stream_options.include_usage", "a boolean")
    n = _bounded(payload, "n", 1, MAX_N)
    best_of = _bounded(payload, "best_of", 1, MAX_BEST_OF)
    if best_of is not None and n is not None and best_of < n:
        raise bad_request("'best_of' must be greater than or equal to 'n'", "best_of")
    if best_of is not None and best_of > 1 and stream:
        raise bad_request("'best_of' cannot be used with 'stream': its best completions cannot be streamed", "best_of")
    _bounded(payload, "max_tokens", 0, None)
    _bounded(payload, "logprobs", 0, MAX_LOGPROBS)
    _number(payload, "temperature", 0, 2)
    _number(payload, "top_p", 0, 1)
    _stop(payload.get("stop"))
    optional(payload, "suffix", str, "suffix", "a string")
    optional(payload, "user", str, "user", "a string")
    echo = bool(optional(payload, "echo", bool, "echo", "a boolean"))
    return CompletionRequest(payload, model, prompts, tokens, n or 1, stream, usage is True, echo)


def _prompts(payload: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
    """The prompts as text, and whether they were tokens; a 400 for a missing prompt or one of another shape."""
    if "prompt" not in payload or payload["prompt"] is None:
        raise bad_request("Missing required parameter: 'prompt'.", "prompt")
    prompt = payload["prompt"]
    if isinstance(prompt, str):
        return (prompt,), False
    if not isinstance(prompt, list) or not prompt:
        raise bad_request(f"'prompt' must be {_PROMPT_SHAPES} (a non-empty one)", "prompt")
    kinds = (
        (lambda p: isinstance(p, str), "a string"),
        (_token, "a token (an integer of at least 0)"),
        (lambda p: isinstance(p, list) and bool(p) and all(_token(t) for t in p), "a non-empty array of tokens"),
    )
    for fits, what in kinds:
        if fits(prompt[0]):
            for i, element in enumerate(prompt):
                if not fits(element):
                    raise bad_request(f"'prompt[{i}]' must be {what}, as 'prompt[0]' is", f"prompt[{i}]")
            return (tuple(prompt), False) if what == "a string" else ((), True)
    raise bad_request(f"'prompt[0]' must be {_PROMPT_SHAPES}", "prompt[0]")


def _token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _bounded(payload: dict[str, Any], name: str, low: int, high: int | None) -> int | None:
    value = optional(payload, name, int, name, "an integer")
    if value is not None and (value < low or (high is not None and value > high)):
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise bad_request(f"'{name}' must be {span}", name)
    return value


def _number(payload: dict[str, Any], name: str, low: float, high: float) -> None:
    value = optional(payload, name, (int, float), name, "a number")
    if value is not None and not low <= value <= high:
        raise bad_request(f"'{name}' must be between {low} and {high}", name)


def _stop(value: Any) -> None:
    if value is None or isinstance(value, str):
        return
    want(value, list, "stop", "a string or an array of strings")
    if len(value) > MAX_STOP:
        raise bad_request(f"'stop' may hold at most {MAX_STOP} sequences", "stop")
    for i, item in enumerate(value):
        want(item, str, f"stop[{i}]", "a string")


# ---- a channel of another API: each (prompt, sample) a Chat request -------------------------------------------


def require_convertible(req: CompletionRequest) -> None:
    """A 400 naming what a channel of another API cannot do (the module docstring's list)."""
    payload = req.payload
    _not_converted = "cannot be converted: the API of the channel serving this model has no equivalent"
    if req.tokens:
        raise bad_request(
            "a prompt given as tokens can only be sent to an OpenAI channel: Relay has no tokenizer to turn it into "
            "text for the API of the channel serving this model",
            "prompt",
        )
    if payload.get("suffix") not in (None, ""):
        raise _unsupported(f"'suffix' {_not_converted} (text is only inserted by OpenAI's Completions API)", "suffix")
    if payload.get("logprobs") is not None:
        raise _unsupported(f"'logprobs' {_not_converted} (leave it out, or null)", "logprobs")
    best_of = payload.get("best_of")
    if best_of is not None and best_of > req.n:
        raise _unsupported(f"'best_of' {_not_converted} (leave it out, or set it to 'n')", "best_of")
    if req.choices > MAX_CONVERTED:
        raise bad_request(
            f"a converted request may ask for at most {MAX_CONVERTED} completions (prompts times n), each one call to "
            f"the channel serving this model; this one asks for {req.choices}",
            "n" if req.n > 1 else "prompt",
        )


def _unsupported(message: str, param: str) -> RelayError:
    error = bad_request(message, param)
    error.code = "unsupported_parameter"
    return error


def chat_body(req: CompletionRequest, prompt: str) -> bytes:
    """The Chat Completions body that asks the channel for one completion of ``prompt``."""
    payload = req.payload
    chat: dict[str, Any] = {k: v for k, v in payload.items() if k not in _OWN}
    chat["model"] = req.model
    chat["messages"] = [{"role": "user", "content": prompt}]
    if chat.get("max_tokens") is None:
        chat["max_tokens"] = DEFAULT_MAX_TOKENS
    if req.stream:
        chat["stream"] = True
    return orjson.dumps(chat)

"""A Realtime session's responses, each metered as a request of its own: held before it starts, settled when its
``response.done`` arrives, logged as one row.

The session holds one admitted "turn" at all times: the first is admitted before the WebSocket is accepted (a key
that cannot cover one response gets a 402 or 429 as plain HTTP), each next one as soon as the previous
response's ``response.done`` is settled. A turn's hold is the key's price of the conversation so far (the last
response's input and output tokens) plus ``NEW_INPUT`` tokens of new input, and its output ceiling (the session's
``max_output_tokens``, else ``[quota] default_max_output_tokens``); the charge is the response's usage at the
model's prices (at most the hold plus what the key's lease has free, as for every request). When the next turn
cannot be admitted (the quota ran out, a rate limit) the session is told with an ``error`` event and closed,
after the response that just finished. At the session's end the turn not used is released, unlogged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from relay.dialects import ir
from relay.gateway.routing import Candidate
from relay.gateway.tally import Tally
from relay.http.messages import Request

if TYPE_CHECKING:
    from relay.app import Relay

#: Tokens of new input (text and audio the client adds) a response's hold counts beyond the conversation so far.
NEW_INPUT = 1024


def usage_of(response: Any) -> ir.Usage | None:
    """The usage of a ``response.done``'s response (text and audio, input and output, cached), or None."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    given = usage.get("input_token_details")
    inputs: dict[str, Any] = given if isinstance(given, dict) else {}
    given = inputs.get("cached_tokens_details")
    cached: dict[str, Any] = given if isinstance(given, dict) else {}
    given = usage.get("output_token_details")
    outputs: dict[str, Any] = given if isinstance(given, dict) else {}
    return ir.Usage(
        input_tokens=_count(usage.get("input_tokens")),
        output_tokens=_count(usage.get("output_tokens")),
        cached_tokens=_count(inputs.get("cached_tokens")),
        audio_input_tokens=_count(inputs.get("audio_tokens")),
        cached_audio_tokens=_count(cached.get("audio_tokens")),
        audio_output_tokens=_count(outputs.get("audio_tokens")),
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class Meter:
    """The turns of one session (``relay.endpoints.realtime``)."""

    def __init__(self, relay: Relay, request: Request, session: Tally, plan: Sequence[Candidate]) -> None:
        self.relay = relay
        self.request = request
        self.session = session
        self.plan = plan
        #: The model the session is billed as now (``session.update`` may change it).
        self.model = session.requested_model or ""
        #: The session's ``max_output_tokens`` when it sets one (an int; ``"inf"`` is none).
        self.max_output: int | None = None
        self.turn: Tally | None = None
        self._turn_id = ""
        self._started = 0.0
        self._count = 0
        self._conversation = 0
        #: Responses settled, and the micro-credits they cost.
        self.responses = 0

    async def admit(self) -> None:
        """Admit the next turn (its hold taken, its rate limits counted); ``RelayError`` 402/429 if not."""
        self._count += 1
        session = self.session
        turn = Tally(session.dialect, session.route, key=session.key, requested_model=self.model, stream=True)
        turn.upstream_model, turn.channel, turn.multiplier = session.upstream_model, session.channel, session.multiplier
        turn_id = f"{self.request.id}-{self._count}"
        default = self.relay.config.quota.default_max_output_tokens
        payload = {"max_output_tokens": self.max_output or default}
        inputs = self._conversation + NEW_INPUT
        await self.relay.gateway.admit(turn, turn_id, b"", payload, self.plan, input_tokens=inputs)
        self.turn, self._turn_id, self._started = turn, turn_id, time.perf_counter()

    def started(self) -> None:
        """The upstream began a response (``response.created``): its latency counts from here."""
        self._started = time.perf_counter()
        if self.turn is not None:  # billed as the model the session has now (``session.update`` may change it)
            self.turn.channel, self.turn.upstream_model = self.session.channel, self.session.upstream_model
            self.turn.requested_model = self.model

    def first_output(self) -> None:
        if self.turn is not None and self.turn.first_byte is None:
            self.turn.first_byte = time.perf_counter()

    def settle(self, usage: ir.Usage | None, *, failed: bool = False) -> None:
        """Settle and log the turn with a finished response's usage (``failed``: the upstream says it failed)."""
        turn = self.turn
        if turn is None:
            return
        self.turn = None
        turn.usage = usage
        turn.end = "upstream_error" if failed else "completed"
        turn.error_kind = "upstream" if failed else None
        turn.attempts.append((turn.channel or "", "failed" if failed else "ok"))
        turn.first_byte = turn.first_byte or time.perf_counter()
        if usage is not None:
            self._conversation = usage.input_tokens + usage.output_tokens
        self.responses += 1
        self._finish(turn, 502 if failed else 200)

    def release(self) -> None:
        """The session ended: the turn admitted for a response that never came is released, unlogged."""
        turn = self.turn
        if turn is None:
            return
        self.turn = None
        turn.logged = False
        self._finish(turn, 499)

    def _finish(self, turn: Tally, status: int) -> None:
        request = self.request
        self.relay.gateway.finish(turn, self._turn_id, status, self._started, request.client, request.principal)

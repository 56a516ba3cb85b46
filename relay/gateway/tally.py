"""What Relay learns of one request as it goes: filled by the pipeline, read once at its end."""

from __future__ import annotations

import attrs

from relay.dialects import ir
from relay.store.keys import KeyRecord


@attrs.define(slots=True, eq=False)
class Tally:
    #: The client's dialect (``openai``, ``anthropic``, ``gemini``) and the route's path template.
    dialect: str
    route: str
    key: KeyRecord | None = None
    requested_model: str | None = None
    upstream_model: str | None = None
    #: The channel that answered (or the last one tried).
    channel: str | None = None
    #: (channel, outcome) for every attempt, in order: ``ok``, or what went wrong.
    attempts: list[tuple[str, str]] = attrs.field(factory=list)
    stream: bool = False
    #: ``time.perf_counter()`` when the first byte of the answer went to the client.
    first_byte: float | None = None
    usage: ir.Usage | None = None
    #: The channel's price multiplier, for the cost.
    multiplier: float = 1.0
    #: Micro-credits held for the request (None: nothing held); set once the hold is taken.
    held: int | None = None
    #: The request was admitted (counted by the rate limits, its hold taken): it must be settled.
    admitted: bool = False
    error_kind: str | None = None
    #: How the upstream exchange ended (``relay.endpoints.ending``); None while no upstream was called.
    end: str | None = None
    #: The operator's account of what went wrong (redacted; the log only, never the client).
    error_detail: str | None = None
    #: The status the upstream answered the last attempt with (None: no answer came).
    upstream_status: int | None = None
    #: False for requests the request log leaves out (health probes).
    logged: bool = True
    #: The request this one was made for (a task endpoint's model call, ``relay.utility.calls``); None: a client's.
    parent_id: str | None = None
    #: What the request cost, in micro-credits (set at its end by ``Gateway.finish``).
    cost: int = 0
    #: The usage and cost of the requests made for this one (its children, each charged and logged on its own
    #: row), for the task's answer; the admin API adds them to this request's row as it reads the log
    #: (``relay.admin.request_log.with_calls``), so nothing is charged or counted twice.
    children_usage: ir.Usage | None = None
    children_cost: int = 0

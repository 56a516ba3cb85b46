"""Every upstream fault, on every route (passthrough in each dialect, and chat -> anthropic, responses -> gemini,
anthropic -> openai chat conversions): the client gets a well-formed answer or error in its own dialect with
nothing of the upstream's in it, the request log's row says how the exchange ended, and the request is charged
what the upstream produced. The billing and log invariants are checked after each test (the ``faulty`` fixture).
"""

from __future__ import annotations

import pytest

from tests.faults.rig import (
    COMPLETED,
    SECRET_TAIL,
    STREAM_ROUTES,
    WHOLE_ROUTES,
    Rig,
    Route,
    produced,
    read_answer,
    sent_frames,
)
from tests.faults.upstream import BEFORE, MID_STREAM, TEXT, UPSTREAM_TEXT


def ids(route: Route) -> str:
    return route.id


#: How a stream broken by each fault ends.
MID_STREAM_END = {
    "cut": {"upstream_truncated"},
    "reset": {"upstream_truncated"},
    "cut_event": {"upstream_truncated"},
    "no_terminal": {"upstream_truncated"},
    # A chunk-size line that is not one: the body's framing broke (cut short, or malformed: either is the upstream's).
    "garbage": {"upstream_truncated", "upstream_malformed"},
    "malformed": {"upstream_malformed"},
    "deep": {"upstream_malformed"},
    "stall": {"timeout"},
}


# ---- no fault: the control ----------------------------------------------------------------------------


@pytest.mark.parametrize("route", WHOLE_ROUTES, ids=ids)
async def test_a_whole_answer_is_completed_and_charged_what_the_upstream_reported(faulty: Rig, route: Route) -> None:
    answer = read_answer(route, await faulty.ask(route, "ok", stream=False), stream=False)
    assert answer.status == 200 and answer.text == TEXT
    row = await faulty.row(answer.request_id)
    assert (row.status, row.end_kind, row.error_kind, row.error_detail) == (200, "completed", None, None)
    assert row.attempts == ((route.channel, "ok"),)
    COMPLETED.check(row)


@pytest.mark.parametrize("route", STREAM_ROUTES, ids=ids)
async def test_a_whole_stream_is_completed_and_charged_what_the_upstream_reported(faulty: Rig, route: Route) -> None:
    answer = read_answer(route, await faulty.ask(route, "ok", stream=True), stream=True)
    assert answer.finished and answer.error is None and answer.text == TEXT
    row = await faulty.row(answer.request_id)
    assert (row.status, row.end_kind, row.error_kind, row.stream) == (200, "completed", None, True)
    assert row.attempts == ((route.channel, "ok"),)
    COMPLETED.check(row)


# ---- faults after the stream started -------------------------------------------------------------------


@pytest.mark.parametrize("route", STREAM_ROUTES, ids=ids)
@pytest.mark.parametrize("fault", MID_STREAM)
async def test_a_stream_the_upstream_broke_ends_with_an_error_event_and_is_charged_as_produced(
    faulty: Rig, route: Route, fault: str
) -> None:
    answer = read_answer(route, await faulty.ask(route, fault, stream=True), stream=True)
    assert answer.status == 200
    assert answer.error is not None, "the stream ended as if it were whole"
    assert answer.text == "".join(f.text for f in sent_frames(route, fault))
    row = await faulty.row(answer.request_id)
    assert row.end_kind in MID_STREAM_END[fault], row
    assert row.error_kind == ("timeout" if fault == "stall" else "upstream"), row
    assert len(row.attempts) == 1 and row.attempts[0][0] == route.channel, row.attempts
    assert row.attempts[0][1] != "ok", row.attempts  # the breaker counted a failure, not a success
    assert row.stream and row.error_detail, row
    produced(route, fault).check(row)


# ---- faults before anything was answered ----------------------------------------------------------------


def _before_status(fault: str, status: int) -> None:
    if fault == "echo_auth":
        assert status == 400
    elif fault == "rate_limited":
        assert status == 429
    elif fault == "stall_first":
        assert status == 504
    else:  # an upstream 5xx, or its 401 (the client's own key is fine: never a 401 or 403 to it)
        assert 500 <= status <= 599, status


#: Every route, for a whole answer and for a stream (Gemini's JSON array is a stream's framing only).
BOTH = [
    pytest.param(route, stream, id=f"{route.id}-{'stream' if stream else 'whole'}")
    for route in STREAM_ROUTES
    for stream in (False, True)
    if stream or route.sse
]


#: The faults before the answer, asked for a whole answer or for a stream: a stream request differs only in its
#: path and its ``stream`` flag, so four faults cover it.
STREAMED_BEFORE = ("html_500", "echo_auth", "unauthorized", "stall_first")
BEFORE_CASES = [
    pytest.param(fault, route, stream, id=f"{fault}-{route.id}-{'stream' if stream else 'whole'}")
    for fault in BEFORE
    for route in STREAM_ROUTES
    for stream in (False, True)
    if (stream or route.sse) and (not stream or fault in STREAMED_BEFORE)
]


@pytest.mark.parametrize(("fault", "route", "stream"), BEFORE_CASES)
async def test_an_upstream_error_answer_reaches_the_client_as_relays_own_and_costs_nothing(
    faulty: Rig, route: Route, fault: str, stream: bool
) -> None:
    raw = await faulty.ask(route, fault, stream=stream)
    answer = read_answer(route, raw, stream=stream)
    assert answer.error is not None
    _before_status(fault, answer.status)
    if fault == "rate_limited":
        assert raw.headers.get(b"retry-after") == b"7", raw.headers
    row = await faulty.row(answer.request_id)
    assert row.status == answer.status, row
    assert row.end_kind == ("timeout" if fault == "stall_first" else "upstream_error"), row
    assert row.error_kind is not None, row
    assert row.attempts and all(channel == route.channel for channel, _ in row.attempts), row.attempts
    assert (row.input_tokens, row.output_tokens, row.cost_micros) == (0, 0, 0), row
    assert row.error_detail and SECRET_TAIL not in row.error_detail, row.error_detail
    if fault != "stall_first":  # the operator reads what the upstream said
        assert UPSTREAM_TEXT in row.error_detail, row.error_detail


# ---- faults of a whole answer ------------------------------------------------------------------------


@pytest.mark.parametrize("route", WHOLE_ROUTES, ids=ids)
@pytest.mark.parametrize("fault", ["non_json", "deep", "too_large"])
async def test_a_whole_answer_relay_cannot_read_is_a_502_and_costs_nothing(
    faulty: Rig, route: Route, fault: str
) -> None:
    answer = read_answer(route, await faulty.ask(route, fault, stream=False), stream=False)
    assert answer.status == 502 and answer.error is not None
    row = await faulty.row(answer.request_id)
    assert row.status == 502, row
    if fault == "too_large":
        assert row.end_kind in ("upstream_error", "upstream_malformed"), row
    else:
        assert row.end_kind == "upstream_malformed", row
    assert row.attempts and row.attempts[-1][0] == route.channel, row.attempts
    assert (row.input_tokens, row.output_tokens, row.cost_micros) == (0, 0, 0), row


@pytest.mark.parametrize(("route", "stream"), BOTH)
async def test_a_wrong_content_type_does_not_change_a_good_answer(faulty: Rig, route: Route, stream: bool) -> None:
    answer = read_answer(route, await faulty.ask(route, "wrong_type", stream=stream), stream=stream)
    assert answer.status == 200 and answer.finished and answer.text == TEXT
    row = await faulty.row(answer.request_id)
    assert (row.status, row.end_kind, row.error_kind) == (200, "completed", None)
    COMPLETED.check(row)

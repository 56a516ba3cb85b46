"""Realtime sessions through ``relay serve`` to ``relay mock-upstream`` with a raw wsproto client: bad frames,
oversized messages (1009), browser subprotocol auth, ``session.update`` to a model the key may not use, quota
running out mid-session, a client that stops reading (closed, its memory bounded), and either side vanishing
mid-response (the session billed for what completed, its row written)."""

from __future__ import annotations

from typing import Any

import trio

from tests.realtime.conftest import MODEL, POOR_QUOTA, balance, key_of, rows
from tests.realtime.wsclient import RawClient


async def connect(address: str, key: str, model: str = MODEL) -> RawClient:
    ws = await RawClient.connect(address, f"/v1/realtime?model={model}", [("authorization", f"Bearer {key_of(key)}")])
    assert (await ws.event())["type"] == "session.created"
    return ws


def say(text: str) -> dict[str, Any]:
    content = [{"type": "input_text", "text": text}]
    return {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": content}}


TEXT = {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}


async def respond(ws: RawClient, text: str) -> dict[str, Any]:
    """One turn: the user's text, a response, its ``response.done``."""
    await ws.send(say(text))
    await ws.send({"type": "response.create"})
    return (await ws.until("response.done"))[-1]


async def test_bad_frames_get_error_events_and_the_session_goes_on(stack: tuple[str, str]) -> None:
    address, _ = stack
    ws = await connect(address, "frames")
    await ws.send("{not json")
    assert (await ws.event())["error"]["code"] == "invalid_json"
    await ws.send({"type": "no.such.event"})
    assert (await ws.event())["error"]["code"] == "invalid_value"
    await ws.send(b"\x00binary")
    assert (await ws.event())["type"] == "error"
    await ws.send(TEXT)
    done = await respond(ws, "still here")
    assert done["response"]["status"] == "completed"
    await ws.close()
    session = rows(address, "frames", 2)[-1]
    assert (session["status"], session["end_kind"], session["error_kind"]) == (101, "completed", None)


async def test_a_frame_wsproto_cannot_parse_closes_with_1002(stack: tuple[str, str]) -> None:
    address, _ = stack
    ws = await connect(address, "frames")
    await ws.send_raw(b"\x83\x80\x00\x00\x00\x00")  # a masked frame of the reserved opcode 3
    assert await ws.closed() == 1002


async def test_a_message_over_the_limit_closes_with_1009(stack: tuple[str, str]) -> None:
    address, _ = stack
    ws = await connect(address, "big")
    await ws.send({"type": "input_audio_buffer.append", "audio": "A" * 70_000})  # [limits] allow 65,536 bytes
    assert await ws.closed() == 1009
    session = rows(address, "big", 1)[0]
    assert (session["end_kind"], session["error_kind"]) == ("error", "invalid_request")


async def test_the_browser_subprotocols_authenticate_and_realtime_is_chosen(stack: tuple[str, str]) -> None:
    address, _ = stack
    offered = ["realtime", f"openai-insecure-api-key.{key_of('subproto')}"]
    ws = await RawClient.connect(address, f"/v1/realtime?model={MODEL}", subprotocols=offered)
    assert ws.subprotocol == "realtime"
    assert (await ws.event())["type"] == "session.created"
    await ws.close()
    assert rows(address, "subproto", 1)[0]["status"] == 101


async def test_session_update_to_a_model_the_key_may_not_use_is_refused_and_not_forwarded(
    stack: tuple[str, str],
) -> None:
    address, _ = stack
    ws = await connect(address, "narrow")
    refused = {"type": "session.update", "event_id": "evt_1", "session": {"type": "realtime", "model": "gpt-4o"}}
    await ws.send(refused)
    error = await ws.event()
    assert error["type"] == "error" and error["error"]["code"] == "model_not_allowed"
    assert error["error"]["event_id"] == "evt_1" and error["error"]["param"] == "session.model"
    await ws.send({"type": "session.update", "session": {"type": "realtime", "model": "mock-realtime"}})
    error = await ws.event()  # the key may, but the session's channel does not serve it
    assert error["type"] == "error" and error["error"]["code"] == "model_not_allowed"
    await ws.send(TEXT)
    updated = await ws.event()  # the refused updates never reached the upstream: its session is unchanged
    assert updated["type"] == "session.updated" and updated["session"]["model"] == MODEL
    await ws.close()


async def test_an_allowed_model_change_is_renamed_for_the_channel_and_billed_as_itself(stack: tuple[str, str]) -> None:
    address, _ = stack
    ws = await connect(address, "alias", model="realtime-alias")
    change = {"type": "session.update", "session": {"type": "realtime", "model": "gpt-realtime-mini"}}
    await ws.send(change)
    updated = await ws.event()
    assert updated["session"]["model"] == "gpt-realtime-mini-2025"  # the channel's model_map
    await ws.send(TEXT)
    await ws.event()
    await respond(ws, "hello")
    await ws.close()
    response, session = rows(address, "alias", 2)
    assert session["requested_model"] == "gpt-realtime"  # the alias, resolved
    assert (response["requested_model"], response["upstream_model"]) == ("gpt-realtime-mini", "gpt-realtime-mini-2025")


async def test_a_key_that_runs_out_gets_an_error_event_and_the_session_closes_after_the_response(
    stack: tuple[str, str],
) -> None:
    address, _ = stack
    ws = await connect(address, "poor")
    await ws.send(TEXT)
    await ws.event()
    done = await respond(ws, "one")
    assert done["response"]["status"] == "completed"  # the response under way finishes
    error = await ws.event()
    assert error["type"] == "error" and error["error"]["code"] == "insufficient_quota"
    assert await ws.closed() == 1008
    response, session = rows(address, "poor", 2)
    assert (session["end_kind"], session["error_kind"]) == ("quota", "quota")
    assert response["cost_micros"] > 0
    assert balance(address, "poor") == round(POOR_QUOTA * 1_000_000) - response["cost_micros"]


async def test_a_client_that_stops_reading_is_closed_and_its_buffer_bounded(stack: tuple[str, str]) -> None:
    address, _ = stack
    ws = await connect(address, "slow")
    # Audio deltas of 6.4 KB each, 2,000 of them (12.8 MB), as fast as the mock can: the client reads none.
    await ws.send(say("mock:chunks=2000 " + "x" * 2000))
    await ws.send({"type": "response.create"})
    await trio.sleep(1.5)  # [limits] write_timeout = 1 s, then a second for the close frame to leave
    code = await ws.closed(timeout=20)
    assert code in (1008, 1006)  # 1008 when reading again in time for the close frame, else cut: never garbled
    assert ws.received < 2_000_000  # what reached the socket buffers, not the response
    session = rows(address, "slow", 1)[0]  # the response never finished: only the session's row
    assert (session["end_kind"], session["error_kind"]) == ("error", "client_slow")
    again = await connect(address, "slow")  # Relay serves on
    await again.close()


async def test_a_client_that_vanishes_mid_response_is_billed_for_what_completed(stack: tuple[str, str]) -> None:
    address, _ = stack
    ws = await connect(address, "abort")
    await ws.send(TEXT)
    await ws.event()
    first = await respond(ws, "one")
    await ws.send(say("mock:chunks=20 mock:delay_ms=100 two is slow"))
    await ws.send({"type": "response.create"})
    await ws.until("response.output_text.delta")
    await ws.abort()
    response, session = rows(address, "abort", 2)
    assert (session["end_kind"], session["error_kind"]) == ("client_closed", "client_gone")
    usage = first["response"]["usage"]
    assert response["input_tokens"] == usage["input_tokens"] and response["output_tokens"] == usage["output_tokens"]
    assert 100_000_000 - balance(address, "abort") == response["cost_micros"]


async def test_an_upstream_that_drops_mid_response_closes_the_client_and_bills_what_completed(
    stack: tuple[str, str],
) -> None:
    address, _ = stack
    ws = await connect(address, "drop")
    await ws.send(TEXT)
    await ws.event()
    await respond(ws, "one")
    await ws.send(say("mock:chunks=10 mock:drop_after=3 two drops"))
    await ws.send({"type": "response.create"})
    assert await ws.closed() == 1011  # the upstream's own close code, passed on
    response, session = rows(address, "drop", 2)
    assert (session["end_kind"], session["error_kind"]) == ("upstream_closed", "upstream")
    assert 100_000_000 - balance(address, "drop") == response["cost_micros"] > 0


async def test_a_channel_that_cannot_be_reached_is_failed_over(stack: tuple[str, str]) -> None:
    address, _ = stack
    ws = await connect(address, "failover", model="gpt-realtime-failover")
    await ws.send(TEXT)
    await ws.event()
    assert (await respond(ws, "still served"))["response"]["status"] == "completed"
    await ws.close()
    response, session = rows(address, "failover", 2)
    assert session["channel"] == "rt" and [a["channel"] for a in session["attempts"]] == ["dead", "rt"]
    assert session["attempts"][0]["outcome"] != "ok" and response["channel"] == "rt"

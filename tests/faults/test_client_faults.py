"""Faults on the client's side: a client that hangs up in the middle of a stream, and one that hangs up right
after the stream's last event, before the end of the response body (Codex CLI does, on every request). Either
way the request is logged once, with its attempts and how it ended, charged what the upstream produced, and its
access log line written."""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import h11
import pytest
import trio

from tests.faults.rig import COMPLETED, INPUT_PRICE, OUTPUT_PRICE, STREAM_ROUTES, Rig, Route, request_for, rig
from tests.faults.upstream import PIECES


@pytest.fixture
async def logged(tmp_path: Path) -> AsyncIterator[Rig]:
    """The rig with Relay's access log on."""
    async with rig(tmp_path, access_log=True) as served:
        yield served


def ids(route: Route) -> str:
    return route.id


async def hang_up(rig: Rig, route: Route, fault: str, enough: Callable[[bytes], bool]) -> tuple[str, bytes]:
    """A stream request along ``route``, read until ``enough(body so far)``; then the client closes its
    connection. (Relay's request id, the body read)."""
    target, headers, body = request_for(route, route.model(fault), stream=True)
    host, port = rig.url.removeprefix("http://").rsplit(":", 1)
    conn = h11.Connection(h11.CLIENT)
    head = [("host", f"{host}:{port}"), ("content-length", str(len(body))), *headers.items()]
    rig.sent += 1
    request_id, received = "", bytearray()
    stream = await trio.open_tcp_stream(host, int(port))
    with trio.fail_after(10):
        await stream.send_all(
            conn.send(h11.Request(method="POST", target=target, headers=head))
            + conn.send(h11.Data(data=body))
            + conn.send(h11.EndOfMessage())
        )
        while not enough(bytes(received)):
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                assert data, "Relay closed the connection first"
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                assert event.status_code == 200, event
                request_id = dict(event.headers)[b"x-request-id"].decode()
            elif isinstance(event, h11.Data):
                received += event.data
            else:
                raise AssertionError(f"the stream ended before the client hung up: {event}")
    await stream.aclose()
    return request_id, bytes(received)


def after_the_last_event(route: Route) -> Callable[[bytes], bool]:
    """Whether the body so far holds the route's client's terminal event, whole."""
    if not route.sse:
        return lambda body: body.rstrip().endswith(b"]")
    marker = {
        "openai_chat": b"data: [DONE]",
        "openai_responses": b"response.completed",
        "anthropic": b"message_stop",
        "gemini": b'"finishReason"',
    }[route.client]
    return lambda body: marker in body and body.endswith(b"\n\n")


def access_lines(caplog: pytest.LogCaptureFixture, request_id: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "relay.access" and request_id in r.getMessage()]


async def access_line(caplog: pytest.LogCaptureFixture, request_id: str) -> list[str]:
    """The access log lines of ``request_id``, once there is one (a request's line is written when it ends)."""
    with trio.move_on_after(5):
        while not access_lines(caplog, request_id):
            await trio.sleep(0.02)
    return access_lines(caplog, request_id)


@pytest.mark.parametrize("route", STREAM_ROUTES, ids=ids)
async def test_a_client_that_hangs_up_mid_stream_is_logged_once_and_charged_what_was_produced(
    logged: Rig, route: Route, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.access")
    seen = PIECES[1].strip().encode()
    request_id, _ = await hang_up(logged, route, "slow", lambda body: seen in body)
    row = await logged.row(request_id)
    assert row.end_kind == "client_closed", row
    assert row.attempts and row.attempts[0][0] == route.channel, row.attempts
    assert row.error_kind is not None, row
    # At least the two pieces the client saw were produced (and not all of them: the stream was cut short).
    assert 5 <= row.output_tokens < 20, row
    assert row.input_tokens > 0 and row.cost_micros > 0, row
    assert row.cost_micros == row.input_tokens * INPUT_PRICE + row.output_tokens * OUTPUT_PRICE, row
    assert len(await access_line(caplog, request_id)) == 1


@pytest.mark.parametrize("route", STREAM_ROUTES, ids=ids)
async def test_a_client_that_hangs_up_after_the_last_event_is_logged_completed_and_charged_in_full(
    logged: Rig, route: Route, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.access")
    request_id, _ = await hang_up(logged, route, "linger", after_the_last_event(route))
    row = await logged.row(request_id)
    assert (row.status, row.end_kind, row.error_kind) == (200, "completed", None), row
    assert row.attempts == ((route.channel, "ok"),), row.attempts
    COMPLETED.check(row)
    assert len(await access_line(caplog, request_id)) == 1


async def test_a_client_that_resets_its_connection_mid_stream_is_logged_once(logged: Rig) -> None:
    route = STREAM_ROUTES[0]
    seen = PIECES[1].strip().encode()
    target, headers, body = request_for(route, route.model("slow"), stream=True)
    request_id, _ = await hang_up(logged, route, "slow", lambda body: seen in body)
    # The same, closed with a reset (SO_LINGER 0) rather than a FIN.
    host, port = logged.url.removeprefix("http://").rsplit(":", 1)
    logged.sent += 1
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(host, int(port))
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = f"POST {target} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {len(body)}\r\n{head}\r\n".encode()
        await stream.send_all(request + body)
        received = b""
        while seen not in received:
            received += await stream.receive_some(65536)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()
    reset_id = received.split(b"x-request-id: ", 1)[1].split(b"\r\n", 1)[0].decode()
    for rid in (request_id, reset_id):
        row = await logged.row(rid)
        assert row.end_kind == "client_closed" and row.attempts and row.output_tokens > 0, row

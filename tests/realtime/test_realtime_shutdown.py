"""A Realtime session when Relay stops (SIGTERM): an idle session is closed with 1001 at once, a session with a
response under way gets that response whole first; both are logged as ended by the shutdown. And the keepalive:
a peer that answers no ping is closed with 1011."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.conftest import process
from tests.helpers import MOCK_ARGS
from tests.realtime.conftest import MODEL, key_of, relay_toml
from tests.realtime.test_realtime_sessions import TEXT, say
from tests.realtime.wsclient import RawClient


@pytest.fixture
def stopping(tmp_path: Path) -> Iterator[tuple[str, object, Path]]:
    """A relay of its own (it is stopped by the test): its address, its process and its store."""
    store = tmp_path / "relay.db"
    with process(*MOCK_ARGS) as (_, upstream):
        path = tmp_path / "relay.toml"
        limits = "shutdown_grace = 10\nwebsocket_ping_interval = 0.5\nwebsocket_ping_timeout = 1.5"
        path.write_text(relay_toml(f"http://{upstream}", f"sqlite:///{store}", limits))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (proc, address):
            yield address, proc, store


async def connect(address: str, key: str) -> RawClient:
    ws = await RawClient.connect(address, f"/v1/realtime?model={MODEL}", [("authorization", f"Bearer {key_of(key)}")])
    assert (await ws.event())["type"] == "session.created"
    await ws.send(TEXT)
    assert (await ws.event())["type"] == "session.updated"
    return ws


async def test_shutdown_lets_the_response_under_way_finish_then_closes_with_1001(
    stopping: tuple[str, object, Path],
) -> None:
    address, proc, store = stopping
    idle = await connect(address, "sdk")
    busy = await connect(address, "drop")
    await busy.send(say("mock:chunks=10 mock:delay_ms=150 a slow answer"))
    await busy.send({"type": "response.create"})
    await busy.until("response.output_text.delta")
    proc.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    assert await idle.closed() == 1001
    events = await busy.until("response.done")
    assert events[-1]["response"]["status"] == "completed"
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta").endswith("answer")
    assert await busy.closed() == 1001
    assert await trio.to_thread.run_sync(proc.wait, 15) == 0  # type: ignore[attr-defined]
    with sqlite3.connect(store) as db:
        logged = db.execute("SELECT key_name, status, end_kind, cost_micros FROM request_log ORDER BY time").fetchall()
    billed = [row for row in logged if row[1] == 200]
    assert sorted(logged) == sorted([("sdk", 101, "shutdown", 0), ("drop", 101, "shutdown", 0), *billed])
    assert [row[:3] for row in billed] == [("drop", 200, "completed")] and billed[0][3] > 0  # the finished response


async def test_a_peer_that_answers_no_ping_is_closed_with_1011(stopping: tuple[str, object, Path]) -> None:
    address, _, _ = stopping
    ws = await connect(address, "sdk")
    await trio.sleep(4)  # not reading: the pings (every 0.5 s) go unanswered past their 1.5 s
    assert await ws.closed() == 1011
    assert ws.close_reason == "keepalive ping timeout"
    answering = await connect(address, "sdk")  # one that reads answers them, and stays
    with trio.move_on_after(4):  # several pings, each answered as it is read
        await answering.message(timeout=5)
    assert answering.close_code is None
    await answering.close()

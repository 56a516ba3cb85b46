"""The request log: complete after a graceful shutdown in the middle of 40 in-flight streams (``relay serve`` as a
subprocess, SIGTERM), and kept through a store outage by the recorder, up to its bound (beyond it the oldest
records are dropped and counted)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import h11
import pytest
import trio

from relay.config import StoreConfig
from relay.gateway import recorder as recorder_module
from relay.store import StoreError, Tx, ledger, open_store
from relay.store import keys as stored
from relay.store.records import LogRecord, daily, read_logs
from tests.conftest import KEY
from tests.gateway_e2e.conftest import (
    chat_body,
    key_entry,
    mock_channel,
    read,
    relay_serve,
    relay_toml,
    terminate,
    write_toml,
)

T = TypeVar("T")
STREAMS = 40


async def stream_through(url: str, body: bytes, headed: Callable[[], None]) -> tuple[int, bytes, bool]:
    """A streaming request read to its end; ``headed()`` once the response head arrived. (status, body,
    whether the response ended properly)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = h11.Connection(h11.CLIENT)
    head = [
        ("host", f"{host}:{port}"),
        ("content-length", str(len(body))),
        ("content-type", "application/json"),
        ("authorization", f"Bearer {KEY}"),
    ]
    status, chunks = 0, []
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        request = h11.Request(method="POST", target="/v1/chat/completions", headers=head)
        await stream.send_all(conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                headed()
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return status, b"".join(chunks), True
            elif isinstance(event, h11.ConnectionClosed):
                return status, b"".join(chunks), False


async def test_sigterm_in_the_middle_of_forty_streams_logs_every_one(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/relay.db"
    text = relay_toml(store_url, channels=mock_channel("mock", chunks=8, chunk_delay=0.1), keys=key_entry("test", KEY))
    answers: list[tuple[int, bytes, bool]] = []
    headed = 0
    all_headed = trio.Event()

    def one_more() -> None:
        nonlocal headed
        headed += 1
        if headed == STREAMS:
            all_headed.set()

    with relay_serve(write_toml(tmp_path, text)) as (proc, url):

        async def client(index: int) -> None:
            body = chat_body(f"stream {index}", stream=True, stream_options={"include_usage": True})
            answers.append(await stream_through(url, body, one_more))

        async with trio.open_nursery() as nursery:
            for index in range(STREAMS):
                nursery.start_soon(client, index)
            with trio.fail_after(5):
                await all_headed.wait()
            # Every stream has started and none can have finished (8 chunks 100 ms apart): stop now.
            assert len(answers) == 0
            code = await terminate(proc)
    assert code == 0

    assert len(answers) == STREAMS
    assert all(status == 200 and complete and body.endswith(b"data: [DONE]\n\n") for status, body, complete in answers)

    def everything(tx: Tx) -> tuple[list[LogRecord], list[Any]]:
        return read_logs(tx, limit=1000), daily(tx)

    records, totals = await read(store_url, everything)
    assert len(records) == STREAMS
    assert len({r.request_id for r in records}) == STREAMS
    assert all(r.status == 200 and r.stream and r.input_tokens > 0 and r.output_tokens > 0 for r in records)
    assert sum(t.requests for t in totals) == STREAMS
    assert sum(t.output_tokens for t in totals) == sum(r.output_tokens for r in records)
    assert sum(t.errors for t in totals) == 0


class FlakyStore:
    """A real store whose transactions fail (StoreError) while ``down``."""

    def __init__(self, url: str) -> None:
        self.store = open_store(url)
        self.backend = self.store.backend
        self.down = False
        self.refused = 0

    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        if self.down:
            self.refused += 1
            raise StoreError("the store is down (test)")
        return await self.store.transaction(fn)

    transaction_now = transaction_background = transaction


def record(request_id: str) -> LogRecord:
    return LogRecord(
        time=1_700_000_000.0,
        request_id=request_id,
        key_name="test",
        dialect="openai",
        route="/v1/chat/completions",
        requested_model="mock-1",
        upstream_model="mock-1",
        channel="mock",
        attempts=(("mock", "ok"),),
        status=200,
        error_kind=None,
        stream=False,
        latency_ms=1.0,
        ttft_ms=1.0,
        input_tokens=3,
        output_tokens=4,
        cached_tokens=0,
        reasoning_tokens=0,
        cost_micros=0,
        client_addr="127.0.0.1:1",
    )


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


async def test_the_recorder_keeps_records_through_a_store_outage_up_to_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "FIRST_PAUSE", 0.02)  # retry sooner: the test waits for retries
    monkeypatch.setattr(recorder_module, "MAX_PAUSE", 0.05)

    url = f"sqlite:///{tmp_path}/relay.db"
    flaky = FlakyStore(url)
    await flaky.store.migrate()
    now = 1_700_000_000.0
    key = stored.KeyRecord(name="test", digest=stored.digest(KEY), quota_micros=1_000_000, created_at=now)
    await flaky.store.transaction(lambda tx: stored.create(tx, key))
    await flaky.store.transaction(lambda tx: ledger.admit(tx, "test", "held-1", 50_000, None, None, now))

    recorder = recorder_module.Recorder(flaky, StoreConfig(url=url, log_batch=4, log_interval=0.02, log_buffer=10))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run)

        # Down: 8 records and a settlement, within the bound of 10. Nothing is lost.
        flaky.down = True
        for i in range(8):
            recorder.log(record(f"a{i}"))
        recorder.settle(ledger.Settle("test", "held-1", 50_000, 20_000, 7, False, now))
        await until(lambda: flaky.refused >= 3)
        assert (recorder.failing, recorder.written, recorder.dropped, recorder.pending) == (True, 0, 0, 9)
        flaky.down = False
        await until(lambda: recorder.written == 8)
        assert (recorder.failing, recorder.dropped, recorder.pending) == (False, 0, 0)

        # Down again: 15 records against a bound of 10. The 5 oldest are dropped, and counted.
        flaky.down = True
        refused = flaky.refused
        for i in range(15):
            recorder.log(record(f"b{i:02d}"))
        await until(lambda: flaky.refused >= refused + 2)
        assert (recorder.dropped, recorder.pending) == (5, 10)
        flaky.down = False
        await until(lambda: recorder.written == 18)
        assert (recorder.failing, recorder.dropped, recorder.pending) == (False, 5, 0)
        await trio.sleep(0.1)
        assert recorder.written == 18  # nothing else was coming
        nursery.cancel_scope.cancel()

    def contents(tx: Tx) -> tuple[list[str], int | None, list[tuple[Any, ...]]]:
        ids = [r.request_id for r in read_logs(tx, limit=100)]
        entries = tx.execute("SELECT kind, amount_micros FROM quota_ledger WHERE request_id = 'held-1' ORDER BY id")
        return ids, ledger.balance(tx, "test"), entries

    ids, balance, entries = await flaky.store.transaction(contents)
    await flaky.store.aclose()
    assert sorted(ids) == sorted([f"a{i}" for i in range(8)] + [f"b{i:02d}" for i in range(5, 15)])
    assert entries == [("hold", 50_000), ("settle", 20_000)]
    assert balance == 1_000_000 - 20_000

"""SIGTERM to a real ``relay serve``: the in-flight stream ends with [DONE], then the process exits 0."""

import signal

import trio

from tests.conftest import KEY, process
from tests.http.apps import chat_body
from tests.http.procs import exit_code, refused_within, split_address, write_config
from tests.http.raw import connect, request

AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


async def test_sigterm_lets_the_stream_finish_and_exits_0(tmp_path):
    config = write_config(tmp_path)
    with process("serve", "--config", config, "--listen", "127.0.0.1:0") as (proc, address):
        host, port = split_address(address)
        body = chat_body("count mock:chunks=10 mock:delay_ms=100", stream=True)
        async with connect(host, port) as idle, connect(host, port) as busy:
            await idle.send(request("GET", "/healthz"))
            assert (await idle.response()).status == 200
            await busy.send(request("POST", "/v1/chat/completions", body, AUTH))
            head = await busy.head()
            assert head.status == 200 and head.headers["content-type"] == "text/event-stream"
            first = await busy.chunk()
            assert first.startswith(b"data: {")

            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(3):
                assert await idle.closed()
                rest = await busy.body(head)
            assert rest.endswith(b"data: [DONE]\n\n")
            assert (first + rest).count(b"data: {") >= 10  # every chunk, after the signal too
            assert await refused_within(host, port, 1)
        assert await exit_code(proc, 5) == 0

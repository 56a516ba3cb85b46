"""``relay serve --workers 2``: two processes answer on one port; SIGTERM to the parent stops them all."""

import os
import signal

import trio

from tests.conftest import KEY, process
from tests.http.apps import chat_body
from tests.http.procs import exit_code, session_process, split_address, write_config
from tests.http.raw import connect, request


async def healthz_pid(host: str, port: int) -> int | None:
    """The pid that answered GET /healthz on a new connection; None while nothing listens yet."""
    try:
        async with connect(host, port) as client:
            await client.send(request("GET", "/healthz", headers={"Connection": "close"}))
            response = await client.response()
    except (OSError, EOFError, trio.BrokenResourceError):
        return None
    assert response.status == 200
    payload = response.json()
    assert payload["status"] == "ok"
    return payload["pid"]


async def wait_for_workers(host: str, port: int, count: int) -> set[int]:
    """Open new connections (at most 200) until ``count`` distinct worker pids have answered."""
    pids: set[int] = set()
    for _ in range(200):
        pid = await healthz_pid(host, port)
        if pid is not None:
            pids.add(pid)
        if len(pids) == count:
            break
        await trio.sleep(0.01)
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_two_workers_share_the_port_and_stop_on_sigterm(tmp_path):
    config = write_config(tmp_path)
    with process("serve", "--config", config, "--listen", "127.0.0.1:0", "--workers", "2") as (proc, address):
        host, port = split_address(address)
        pids = await wait_for_workers(host, port, 2)
        assert len(pids) == 2, pids
        assert proc.pid not in pids

        proc.send_signal(signal.SIGTERM)
        assert await exit_code(proc, 8) == 0
        with trio.move_on_after(2):
            while any(alive(pid) for pid in pids):
                await trio.sleep(0.05)
        assert not any(alive(pid) for pid in pids)


async def test_ctrl_c_to_the_whole_group_still_lets_streams_finish(tmp_path):
    config = write_config(tmp_path)
    with session_process("serve", "--config", config, "--listen", "127.0.0.1:0", "--workers", "2") as (proc, address):
        host, port = split_address(address)
        assert len(await wait_for_workers(host, port, 2)) == 2
        body = chat_body("count mock:chunks=5 mock:delay_ms=100", stream=True)
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        async with connect(host, port) as client:
            await client.send(request("POST", "/v1/chat/completions", body, headers))
            head = await client.head()
            assert head.status == 200
            await client.chunk()
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
            with trio.fail_after(3):
                rest = await client.body(head)
        assert rest.endswith(b"data: [DONE]\n\n")
        assert await exit_code(proc, 8) == 0


async def test_ready_line_means_listening_and_workers_die_with_a_killed_supervisor(tmp_path):
    config = write_config(tmp_path)
    with process("serve", "--config", config, "--listen", "127.0.0.1:0", "--workers", "2") as (proc, address):
        host, port = split_address(address)
        assert await healthz_pid(host, port) is not None  # the first try, no waiting: the line meant it
        pids = await wait_for_workers(host, port, 2)
        assert len(pids) == 2, pids

        proc.kill()  # SIGKILL: the supervisor cannot pass anything on
        assert await exit_code(proc, 5) == -signal.SIGKILL
        with trio.move_on_after(5):
            while any(alive(pid) for pid in pids):
                await trio.sleep(0.05)
        assert not any(alive(pid) for pid in pids), "workers outlived their supervisor"

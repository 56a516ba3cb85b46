"""Graceful shutdown in-process: refuse new connections, close idle ones, finish streams, then cancel."""

import trio
import trio.testing

from relay.http.limits import Limits
from tests.conftest import serve_app
from tests.http.apps import SlowStreamApp
from tests.http.raw import connect, request


async def refuses_connections(host: str, port: int) -> bool:
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError:
        return True
    await stream.aclose()
    return False


async def test_shutdown_refuses_new_closes_idle_and_finishes_streams():
    app = SlowStreamApp()
    async with serve_app(app, Limits(shutdown_grace=5)) as served:
        async with connect(served.host, served.port) as idle, connect(served.host, served.port) as fresh:
            async with connect(served.host, served.port) as busy:
                await idle.send(request("GET", "/echo"))
                assert (await idle.response()).status == 200
                await busy.send(request("GET", "/stream?n=6&delay=0.05"))
                head = await busy.head()
                assert await busy.chunk() == b"chunk 0\n"

                served.shutdown.begin()
                await trio.testing.wait_all_tasks_blocked()
                assert await refuses_connections(served.host, served.port)
                with trio.fail_after(2):
                    assert await idle.closed()  # idle keep-alive: closed without an answer
                    assert await fresh.closed()  # accepted, never spoke: closed too

                with trio.fail_after(3):
                    rest = await busy.body(head)  # chunked to its terminating chunk
                    assert await busy.closed()
        assert rest == b"".join(b"chunk %d\n" % i for i in range(1, 6))
        assert app.finished.is_set() and not app.cancelled.is_set()
        with trio.fail_after(2):
            await served.done.wait()


async def test_streams_still_running_after_the_grace_period_are_cancelled():
    app = SlowStreamApp()
    async with serve_app(app, Limits(shutdown_grace=0.3)) as served:
        async with connect(served.host, served.port) as busy:
            await busy.send(request("GET", "/stream?n=1000&delay=0.05"))
            head = await busy.head()
            assert head.status == 200
            served.shutdown.begin()
            with trio.fail_after(3):
                try:
                    await busy.body(head)
                except EOFError:
                    pass  # cut without the terminating chunk: the client sees a truncated answer
                else:
                    raise AssertionError("a cancelled stream must not end like a complete one")
        with trio.fail_after(2):
            await app.cancelled.wait()
            await served.done.wait()
        assert not app.finished.is_set()

"""A client that leaves mid-response cancels the handler's work; the server keeps serving."""

import trio

from tests.conftest import serve_app
from tests.http.apps import SlowStreamApp
from tests.http.raw import connect, request


async def test_client_close_mid_stream_cancels_the_handler():
    app = SlowStreamApp()
    async with serve_app(app) as served:
        async with connect(served.host, served.port) as client:
            await client.send(request("GET", "/stream?n=100&delay=0.05"))
            assert (await client.head()).status == 200
            assert await client.chunk() == b"chunk 0\n"
        with trio.fail_after(2):
            await app.cancelled.wait()
        assert not app.finished.is_set()


async def test_client_reset_mid_stream_cancels_the_handler_and_the_server_survives():
    app = SlowStreamApp()
    async with serve_app(app) as served:
        async with connect(served.host, served.port) as client:
            await client.send(request("GET", "/stream?n=100&delay=0.05"))
            assert (await client.head()).status == 200
            await client.chunk()
            client.reset()
        with trio.fail_after(2):
            await app.cancelled.wait()
        async with connect(served.host, served.port) as client:
            await client.send(request("GET", "/echo"))
            assert (await client.response()).json()["path"] == "/echo"

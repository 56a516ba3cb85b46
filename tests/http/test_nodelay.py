"""Accepted client sockets have TCP_NODELAY: small stream frames leave at once, not after 40 ms."""

import socket

from relay.http import connection
from tests.conftest import serve_app
from tests.http.apps import SlowStreamApp
from tests.http.raw import connect, request


async def test_accepted_sockets_have_tcp_nodelay(monkeypatch):
    seen: list[int] = []
    run = connection.Connection.run

    async def recording_run(self: connection.Connection) -> None:
        seen.append(self.stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        await run(self)

    monkeypatch.setattr(connection.Connection, "run", recording_run)
    async with serve_app(SlowStreamApp()) as served:
        for _ in range(2):
            async with connect(served.host, served.port) as client:
                await client.send(request("GET", "/echo"))
                assert (await client.response()).status == 200
    assert len(seen) == 2
    assert all(seen), seen

"""The WebSocket server (relay/http/websocket.py) on a real loopback socket, with an echo app: the upgrade in place,
the subprotocol, fragments reassembled, the message limit (1009), a malformed frame (1002), pings answered, the
close handshake, a client vanishing (reported, not cancelled), a malformed handshake (400), an upgrade answered
as plain HTTP (the connection kept), frames sent with the handshake, and the keepalive of a silent peer (1011)."""

from __future__ import annotations

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Ping, Pong, TextMessage
from wsproto.events import Request as WsRequest
from wsproto.frame_protocol import FrameProtocol

from relay.http.limits import Limits
from relay.http.messages import Request, Response, StreamResponse
from tests.conftest import serve_app
from tests.http.raw import connect, request
from tests.realtime.wsclient import RawClient

LIMITS = Limits(websocket_max_message_bytes=1000, websocket_ping_interval=0.3, websocket_ping_timeout=1.0)


class EchoApp:
    """Echoes each message; ``/refuse`` answers 401 instead of upgrading; remembers how each socket closed."""

    def __init__(self) -> None:
        self.closes: list[tuple[int | None, str | None]] = []
        self.ended = trio.Event()

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        upgrade = request.websocket
        if upgrade is None or request.path == "/refuse":
            return Response(401 if upgrade else 200, b"plain")
        async with upgrade.accept("echo" if "echo" in upgrade.subprotocols else None) as ws:
            while (message := await ws.receive()) is not None:
                await ws.send(message)
            self.closes.append((ws.close_code, ws.closed_by))
        self.ended.set()
        return Response(101)

    def error(self, status: int, message: str, path: str | None, *, code: str | None = None) -> Response:
        return Response(status, message.encode())


async def test_messages_echo_with_the_chosen_subprotocol_and_the_close_is_answered() -> None:
    app = EchoApp()
    async with serve_app(app, LIMITS) as served:
        ws = await RawClient.connect(f"{served.host}:{served.port}", "/ws", subprotocols=["x", "echo"])
        assert ws.subprotocol == "echo"
        await ws.send("héllo")
        assert await ws.message() == "héllo"
        await ws.send(b"\x00\x01")
        assert await ws.message() == b"\x00\x01"
        # one message in three fragments
        for part, last in (("ab", False), ("cd", False), ("ef", True)):
            await ws.send_raw(ws.ws.send(TextMessage(data=part, message_finished=last)))
        assert await ws.message() == "abcdef"
        await ws.close(1000)
        assert ws.close_code == 1000
        await app.ended.wait()
    assert app.closes == [(1000, "client")]


async def test_a_message_over_the_limit_is_closed_with_1009_unread() -> None:
    app = EchoApp()
    async with serve_app(app, LIMITS) as served:
        ws = await RawClient.connect(f"{served.host}:{served.port}", "/ws")
        await ws.send("x" * 600)
        assert await ws.message() == "x" * 600
        for _ in range(3):  # 1,200 bytes in fragments: the limit counts the message, not a frame
            await ws.send_raw(ws.ws.send(TextMessage(data="y" * 400, message_finished=False)))
        assert await ws.closed() == 1009
    assert app.closes == [(1009, "server")]


async def test_a_frame_that_cannot_be_parsed_is_closed_with_1002() -> None:
    app = EchoApp()
    async with serve_app(app, LIMITS) as served:
        ws = await RawClient.connect(f"{served.host}:{served.port}", "/ws")
        await ws.send_raw(b"\x81\x05hello")  # a client frame must be masked
        assert await ws.closed() == 1002
    assert app.closes == [(1002, "server")]


async def test_pings_are_answered_and_a_silent_peer_is_closed_with_1011() -> None:
    app = EchoApp()
    async with serve_app(app, LIMITS) as served:
        stream = await trio.open_tcp_stream(served.host, served.port)
        client = RawClient(stream, *(await _handshake(stream)))
        await stream.send_all(client.ws.send(Ping(b"are you there")))
        client.ws.receive_data(await stream.receive_some(1024))
        events = list(client.ws.events())
        assert any(isinstance(e, Pong) and e.payload == b"are you there" for e in events)
        await trio.sleep(2.5)  # the server's pings (every 0.3 s) unanswered past 1 s
        assert await client.closed() == 1011
    assert app.closes == [(1011, "server")]


async def _handshake(stream: trio.SocketStream) -> tuple[WSConnection, None]:
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(WsRequest(host="relay", target="/ws")))
    while True:
        ws.receive_data(await stream.receive_some(4096))
        if any(isinstance(e, AcceptConnection) for e in ws.events()):
            return ws, None


async def test_a_client_that_vanishes_is_reported_to_the_endpoint_not_cancelled() -> None:
    app = EchoApp()
    async with serve_app(app, LIMITS) as served:
        ws = await RawClient.connect(f"{served.host}:{served.port}", "/ws")
        await ws.abort()
        with trio.fail_after(5):
            await app.ended.wait()  # the handler ran to its end (a cancelled one would not have)
    assert app.closes == [(1006, "client")]


async def test_a_malformed_handshake_is_a_400_and_an_upgrade_answered_plainly_keeps_the_connection() -> None:
    app = EchoApp()
    upgrade = {"connection": "upgrade", "upgrade": "websocket"}
    async with serve_app(app, LIMITS) as served, connect(served.host, served.port) as client:
        key = {"sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13"}
        await client.send(request("GET", "/refuse", headers={**upgrade, **key}))
        refused = await client.response()
        assert (refused.status, refused.body) == (401, b"plain")
        await client.send(request("GET", "/plain"))  # the same connection, as HTTP
        assert (await client.response()).status == 200
    async with serve_app(app, LIMITS) as served, connect(served.host, served.port) as client:
        await client.send(request("GET", "/ws", headers=upgrade))
        answer = await client.response()
        assert answer.status == 400 and answer.body.startswith(b"malformed WebSocket handshake")
        assert await client.closed()
    assert app.closes == []


async def test_frames_sent_with_the_handshake_are_not_lost() -> None:
    app = EchoApp()
    async with serve_app(app, LIMITS) as served:
        early = FrameProtocol(client=True, extensions=[]).send_data("early", fin=True)  # a masked text frame
        ws = await RawClient.connect(f"{served.host}:{served.port}", "/ws", early=early)
        assert await ws.message() == "early"
        await ws.close()

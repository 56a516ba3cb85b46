"""A recording proxy for the agent runs: it forwards the bytes between a client and Relay unchanged, and keeps
every exchange it sees (the request as sent, the response's status and body) for the run in progress.

Both directions are forwarded as they come, so streams stay streams; each direction is also read by an h11
connection of its own (the requests as a server would read them, the responses as a client would), which is
what turns the bytes into exchanges. Should h11 refuse something, forwarding goes on and that connection is
no longer recorded (``Recorder.notes`` says so).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import attrs
import h11
import trio

#: Headers never recorded: the client's credential, and those that only frame one hop.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "proxy-authorization", "cookie"})
#: Where a client's credential may be, in the order looked for.
AUTH_ORDER = ("authorization", "x-api-key", "x-goog-api-key")
HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})
#: The most of a response body kept (a whole stream of a short answer fits).
RESPONSE_KEEP = 256 * 1024


@attrs.define
class Exchange:
    """One request a client sent, and the answer it got."""

    label: str
    method: str
    #: The request target without a ``key=`` query value.
    path: str
    headers: dict[str, str]
    body: bytes
    #: The header that carried the client's credential (its value is never kept), or "".
    auth_header: str = ""
    status: int | None = None
    response_headers: dict[str, str] = attrs.Factory(dict)
    response: bytes = b""

    def body_json(self) -> Any:
        """The body as JSON, or as text when it is not JSON (recorded as sent either way)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return self.body.decode("utf-8", "replace")

    def record(self) -> dict[str, Any]:
        """What a fixture keeps of the request: method, path, the headers that are no secret, the body."""
        return {"method": self.method, "path": self.path, "headers": self.headers, "body": self.body_json()}


@attrs.define
class Recorder:
    """The exchanges of every run, grouped by the run's label (``begin`` starts a run)."""

    label: str = ""
    exchanges: list[Exchange] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)

    def begin(self, label: str) -> None:
        self.label = label

    def of(self, label: str) -> list[Exchange]:
        return [exchange for exchange in self.exchanges if exchange.label == label]


def _headers(raw: list[tuple[bytes, bytes]], *, drop: frozenset[str]) -> dict[str, str]:
    """Header names lower-cased (repeated ones joined with ``, ``), without ``drop`` and the secret ones."""
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key in drop or key in SECRET_HEADERS:
            continue
        text = value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def _without_key(target: str) -> str:
    """The target with the value of a ``key=`` query parameter (Gemini's credential) replaced by ``REDACTED``."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    parts = ["key=REDACTED" if part.startswith("key=") else part for part in query.split("&")]
    return f"{path}?{'&'.join(parts)}"


class _Mirror:
    """Reads one proxied connection's two byte streams into exchanges."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.requests = h11.Connection(h11.SERVER)
        self.responses = h11.Connection(h11.CLIENT)
        self.current: Exchange | None = None
        self.pending: list[Exchange] = []
        self.broken = False

    def _stop(self, why: str) -> None:
        if not self.broken:
            self.broken = True
            self.recorder.notes.append(f"a connection is no longer recorded: {why}")

    def from_client(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            self.requests.receive_data(data)
            self._read_requests()
        except h11.ProtocolError as exc:
            self._stop(f"request: {exc}")

    def from_server(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            self.responses.receive_data(data)
            self._read_responses()
        except h11.ProtocolError as exc:
            self._stop(f"response: {exc}")

    def _read_requests(self) -> None:
        while True:
            event = self.requests.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return
            if isinstance(event, h11.Request):
                headers = _headers(list(event.headers), drop=HOP_HEADERS)
                target = _without_key(event.target.decode("latin-1"))
                names = {name.decode("latin-1").lower() for name, _ in event.headers}
                auth = next((name for name in AUTH_ORDER if name in names), "")
                self.current = Exchange(self.recorder.label, event.method.decode(), target, headers, b"", auth)
                self.responses.send(h11.Request(method=event.method, target=event.target, headers=event.headers))
            elif isinstance(event, h11.Data):
                assert self.current is not None
                self.current.body += bytes(event.data)
                self.responses.send(h11.Data(data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert self.current is not None
                self.recorder.exchanges.append(self.current)
                self.pending.append(self.current)
                self.current = None
                self.responses.send(h11.EndOfMessage())
                self._next_cycle()

    def _read_responses(self) -> None:
        while True:
            event = self.responses.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return
            exchange = self.pending[0] if self.pending else self.current
            if isinstance(event, h11.Response):
                if exchange is not None:
                    exchange.status = event.status_code
                    exchange.response_headers = _headers(list(event.headers), drop=frozenset())
                self.requests.send(h11.Response(status_code=event.status_code, headers=event.headers))
            elif isinstance(event, h11.InformationalResponse):
                self.requests.send(event)
            elif isinstance(event, h11.Data):
                if exchange is not None and len(exchange.response) < RESPONSE_KEEP:
                    exchange.response += bytes(event.data)[: RESPONSE_KEEP - len(exchange.response)]
                self.requests.send(h11.Data(data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                if self.pending:
                    self.pending.pop(0)
                self.requests.send(h11.EndOfMessage())
                self._next_cycle()

    def _next_cycle(self) -> None:
        done = (h11.DONE, h11.DONE)
        if (self.requests.our_state, self.requests.their_state) == done and (
            self.responses.our_state,
            self.responses.their_state,
        ) == done:
            self.requests.start_next_cycle()
            self.responses.start_next_cycle()
            self._read_requests()


async def _pump(source: trio.SocketStream, sink: trio.SocketStream, seen: Any) -> None:
    try:
        while data := await source.receive_some(65536):
            seen(data)
            await sink.send_all(data)
        await sink.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


async def _proxy_one(client: trio.SocketStream, host: str, port: int, recorder: Recorder) -> None:
    mirror = _Mirror(recorder)
    async with client:
        try:
            server = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            recorder.notes.append(f"could not reach {host}:{port}: {exc}")
            return
        async with server, trio.open_nursery() as nursery:
            nursery.start_soon(_pump, client, server, mirror.from_client)
            nursery.start_soon(_pump, server, client, mirror.from_server)


async def serve_proxy(
    host: str, port: int, recorder: Recorder, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Listen on a free loopback port (given to ``task_status``) and proxy every connection to ``host:port``."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])

    async def handle(stream: trio.SocketStream) -> None:
        await _proxy_one(stream, host, port, recorder)

    await trio.serve_listeners(handle, listeners)


class ProxyThread:
    """``serve_proxy`` in a thread of its own (its own Trio loop), for callers that are not in one: the port is
    known once ``with`` is entered; leaving stops it."""

    def __init__(self, host: str, port: int, recorder: Recorder) -> None:
        self.target = (host, port)
        self.recorder = recorder
        self.port = 0
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            self._token, self._scope = trio.lowlevel.current_trio_token(), nursery.cancel_scope
            self.port = await nursery.start(serve_proxy, *self.target, self.recorder)
            self._ready.set()

    def __enter__(self) -> ProxyThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the recording proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._scope is not None
        trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        self._thread.join(10)

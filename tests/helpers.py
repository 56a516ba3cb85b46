"""Helpers for the relay tests: in-test upstreams, a raw HTTP/1.1 client, SSE reading, subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import h11
import pytest
import trio

from relay.http.messages import Request, Response, StreamResponse
from tests.conftest import KEY, process

AUTH = {"authorization": f"Bearer {KEY}"}
Handler = Callable[[Request, StreamResponse], Awaitable[Response | None]]


class Upstream:
    """An in-test upstream App: ``handler`` answers, and every request it gets is kept in ``requests``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []

    async def handle(self, request: Request, stream: StreamResponse) -> Response | None:
        self.requests.append(request)
        return await self.handler(request, stream)

    def error(self, status: int, message: str, path: str | None, *, code: str | None = None) -> Response:
        return Response.json(status, {"error": {"message": message, "type": "test", "param": None, "code": code}})


def chat(content: str = "hello", model: str = "mock-1", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def sse_frame(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return b"data: " + data.encode() + b"\n\n"


def sse_data(body: bytes) -> list[str]:
    """The ``data`` of every event of an SSE body (LF framing, one data line per event)."""
    out = []
    for block in body.split(b"\n\n"):
        lines = [line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:")]
        if lines:
            out.append(b"\n".join(lines).decode())
    return out


@attrs.define
class RawResponse:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    #: Whether the message ended properly (the chunked terminator, or the whole Content-Length).
    complete: bool

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(
    url: str, method: str, target: str, *, headers: dict[str, str] | None = None, body: bytes = b""
) -> RawResponse:
    """One request over a fresh loopback connection, parsed by h11 as a client; notes a truncated body."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    conn = h11.Connection(h11.CLIENT)
    head = [("host", f"{host}:{port}"), ("content-length", str(len(body))), *(headers or {}).items()]
    async with stream:
        await stream.send_all(
            conn.send(h11.Request(method=method, target=target, headers=head))
            + conn.send(h11.Data(data=body))
            + conn.send(h11.EndOfMessage())
        )
        response: h11.Response | None = None
        chunks: list[bytes] = []
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                complete = False
                break
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                complete = True
                break
            elif isinstance(event, h11.ConnectionClosed):
                complete = False
                break
    assert response is not None, "no response head"
    return RawResponse(response.status_code, dict(response.headers), b"".join(chunks), complete)


def assert_openai_error(payload: Any, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped error body, checked for its four keys."""
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def write(tmp_path: Path, text: str, name: str = "relay.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def relay_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """``python -m relay ARGS`` run to completion."""
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@contextmanager
def relay_with_stderr(config_path: Path, stderr_path: Path) -> Iterator[str]:
    """``relay serve`` as a subprocess whose stderr goes to a file; yields its base URL."""
    with (
        stderr_path.open("w") as stderr,
        process("serve", "--config", str(config_path), "--listen", "127.0.0.1:0", stderr=stderr) as (_, address),
    ):
        yield f"http://{address}"


MOCK_ARGS = ("mock-upstream", "--port", "0", "--quiet")


@pytest.fixture(scope="module")
def shared_mock_upstream() -> Iterator[str]:
    """``relay mock-upstream`` as a separate server, one per test module; yields its base URL."""
    with process(*MOCK_ARGS) as (_, address):
        yield f"http://{address}"


#: One channel of each upstream dialect, all at one server: (name, type, base_url suffix, extra lines, model).
DIALECT_CHANNELS = (
    ("chat", "openai", "/v1", 'api = "chat"\n', "chat-1"),  # Chat Completions for every client
    ("resp", "openai", "/v1", 'api = "responses"\n', "resp-1"),
    ("claude", "anthropic", "", "", "claude-1"),
    ("gemini", "gemini", "", "", "gemini-1"),
)


def upstream_relay_toml(
    upstream: str,
    *,
    store: str = "sqlite://:memory:",
    channels: tuple[tuple[str, str, str, str, str], ...] = DIALECT_CHANNELS,
) -> str:
    """A relay.toml (any port, no access log, the test key) whose ``channels`` all go to ``upstream``
    (``http://host:port``), a server of the test's own."""
    listed = "".join(
        f"""
[[channels]]
name = "{name}"
type = "{kind}"
base_url = "{upstream}{suffix}"
api_key = "sk-upstream"
{extra}models = ["{model}"]
"""
        for name, kind, suffix, extra, model in channels
    )
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
{listed}
[[keys]]
name = "test"
key = "{KEY}"
"""

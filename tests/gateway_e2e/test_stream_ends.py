"""How a stream ended, recorded once and acted on alike: the client hanging up mid-stream and right after the
last event, and a stream outliving the shutdown grace (it ends itself with an error event in the client's
dialect before the hard stop). Each checks the request-log row (status, error kind, end kind, attempts), the
charge, and the access-log line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import KEY

from .conftest import chat_body, key_entry, logs, mock_channel, relay_serve, relay_toml, settled, terminate, write_toml

SLOW = "mock:chunks=400 mock:delay_ms=25 " + "word " * 400


def _config(tmp_path: Path, store_url: str, *, grace: float = 10.0) -> Path:
    text = relay_toml(
        store_url,
        channels=mock_channel("mock", chunks=8),
        keys=key_entry("test", KEY, quota=100.0),
    )
    text = text.replace("access_log = false", "access_log = true").replace(
        "shutdown_grace = 10.0", f"shutdown_grace = {grace}"
    )
    return write_toml(tmp_path, text)


async def _open_stream(base: str, content: str) -> trio.SocketStream:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    body = chat_body(content, stream=True)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: relay\r\nauthorization: Bearer {KEY}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    await stream.send_all(head + body)
    return stream


async def _read_until(
    stream: trio.SocketStream, marker: bytes, got: bytearray | None = None, count: int = 1
) -> bytearray:
    """What the stream sent until ``marker`` appeared ``count`` times (or the connection closed)."""
    got = got if got is not None else bytearray()
    with trio.fail_after(20):
        while got.count(marker) < count:
            data = await stream.receive_some(65536)
            if not data:
                break
            got += data
    return got


async def test_a_client_that_hangs_up_mid_stream_is_logged_and_charged_for_what_it_got(
    tmp_path: Path, store_url: str
) -> None:
    config = _config(tmp_path, store_url)
    with relay_serve(config) as (proc, base):
        stream = await _open_stream(base, SLOW)
        got = await _read_until(stream, b"data: ", count=10)
        await stream.aclose()
        [row] = await logs(store_url, 1)
        await terminate(proc)
    assert b"[DONE]" not in got
    assert (row.status, row.error_kind, row.end_kind) == (200, "client_gone", "client_closed")
    assert row.attempts == (("mock", "client_closed"),)
    assert row.output_tokens > 0 and row.cost_micros > 0  # what the upstream produced, estimated
    [(_, _, kind, amount)] = [entry for entry in await settled(store_url) if entry[2] != "hold"]
    assert kind == "settle" and amount == row.cost_micros
    access = config.with_suffix(".log").read_text()
    assert f"{row.request_id} " in access and "end=client_closed" in access


async def test_a_client_that_hangs_up_right_after_the_last_event_completed(tmp_path: Path, store_url: str) -> None:
    config = _config(tmp_path, store_url)
    with relay_serve(config) as (proc, base):
        for _ in range(5):  # Codex CLI does this on every request
            stream = await _open_stream(base, "hello")
            await _read_until(stream, b"data: [DONE]\n\n")
            await stream.aclose()
        rows = await logs(store_url, 5)
        await terminate(proc)
    assert len(rows) == 5
    for row in rows:
        assert (row.status, row.error_kind, row.end_kind, row.attempts) == (200, None, "completed", (("mock", "ok"),))
        assert row.output_tokens > 0
    access = config.with_suffix(".log").read_text()
    assert access.count("end=completed") == 5


async def test_a_stream_longer_than_the_shutdown_grace_ends_with_an_error_event(tmp_path: Path, store_url: str) -> None:
    config = _config(tmp_path, store_url, grace=2.0)
    with relay_serve(config) as (proc, base):
        stream = await _open_stream(base, SLOW)  # 400 frames 25 ms apart: 10 s
        got = await _read_until(stream, b"data: ", count=5)
        with trio.fail_after(15):
            proc.send_signal(15)
            got = await _read_until(stream, b"\r\n0\r\n\r\n", got)  # the chunked body's end
            while proc.poll() is None:
                await trio.sleep(0.05)
        [row] = await logs(store_url, 1)
    status = proc.returncode
    assert status == 0
    frames = [line for line in bytes(got).split(b"\n") if line.startswith(b"data: {")]
    last = json.loads(frames[-1][6:])
    assert last["error"]["code"] == "server_shutting_down", last
    assert b"[DONE]" not in got
    assert (row.end_kind, row.attempts) == ("shutdown", (("mock", "shutdown"),))
    assert row.error_kind is not None and row.output_tokens > 0


# ---- every client dialect, same-dialect and converted: the log of a stream is always complete -----------------

#: Each client route: its path, its streamed request body for a model, its auth header, and what its last event holds.
ROUTES: dict[str, tuple[str, Callable[[str, str], dict[str, Any]], str, bytes]] = {
    "chat": (
        "/v1/chat/completions",
        lambda model, text: {"model": model, "stream": True, "messages": [{"role": "user", "content": text}]},
        "authorization: Bearer",
        b"[DONE]",
    ),
    "responses": (
        "/v1/responses",
        lambda model, text: {"model": model, "stream": True, "input": text},
        "authorization: Bearer",
        b"response.completed",
    ),
    "anthropic": (
        "/v1/messages",
        lambda model, text: {
            "model": model,
            "stream": True,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": text}],
        },
        "x-api-key:",
        b"message_stop",
    ),
    "gemini": (
        "/v1beta/models/{model}:streamGenerateContent?alt=sse",
        lambda model, text: {"contents": [{"role": "user", "parts": [{"text": text}]}]},
        "x-goog-api-key:",
        b'"finishReason"',
    ),
}


def _two_dialect_config(tmp_path: Path, store_url: str) -> Path:
    """A chat mock serving ``mock-1`` and an Anthropic mock serving ``mock-claude``: one same-dialect path for the
    chat client, converted paths for every other client (and the reverse for the Anthropic client)."""
    chat = mock_channel("mock", models=("mock-1",), chunks=8)
    channels = chat + mock_channel("other", models=("mock-claude",), chunks=8).replace(
        "[channels.mock]", '[channels.mock]\ndialect = "anthropic"'
    )
    text = relay_toml(store_url, channels=channels, keys=key_entry("test", KEY, quota=100_000.0))
    return write_toml(tmp_path, text.replace("access_log = false", "access_log = true"))


async def _open_route(base: str, route: str, model: str, text: str) -> trio.SocketStream:
    path, body_of, auth, _ = ROUTES[route]
    host, port = base.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    body = json.dumps(body_of(model, text)).encode()
    head = (
        f"POST {path.format(model=model)} HTTP/1.1\r\nhost: relay\r\n{auth} {KEY}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    await stream.send_all(head + body)
    return stream


async def _read_last_event(stream: trio.SocketStream, marker: bytes) -> bytearray:
    """What the stream sent until the event holding ``marker`` ended (its blank line), and not a byte more."""
    got = bytearray()
    with trio.fail_after(20):
        while marker not in got or b"\n\n" not in got[got.index(marker) :].replace(b"\r\n", b"\n"):
            data = await stream.receive_some(65536)
            assert data, f"the stream ended before {marker!r}: {bytes(got[-300:])!r}"
            got += data
    return got


@pytest.mark.parametrize("route", list(ROUTES))
async def test_every_route_logs_each_stream_its_client_left_right_after_the_last_event(
    tmp_path: Path, store_url: str, route: str
) -> None:
    config = _two_dialect_config(tmp_path, store_url)
    requests = 20
    with relay_serve(config) as (proc, base):
        for i in range(requests):  # half same-dialect or converted one way, half the other
            stream = await _open_route(base, route, "mock-1" if i % 2 else "mock-claude", f"hello {i}")
            await _read_last_event(stream, ROUTES[route][3])
            await stream.aclose()
        rows = await logs(store_url, requests)
        await terminate(proc)
    assert len(rows) == requests
    for row in rows:
        assert (row.status, row.error_kind, row.end_kind) == (200, None, "completed"), row
        assert row.attempts in ((("mock", "ok"),), (("other", "ok"),)), row
        assert row.output_tokens > 0 and row.cost_micros > 0
    access = [line for line in config.with_suffix(".log").read_text().splitlines() if " end=" in line]
    assert len(access) == requests and all(line.endswith("end=completed") for line in access), access
    assert all(any(f"{row.request_id} " in line for line in access) for row in rows)


@pytest.mark.parametrize("route", list(ROUTES))
async def test_every_route_logs_a_client_that_left_mid_stream(tmp_path: Path, store_url: str, route: str) -> None:
    config = _two_dialect_config(tmp_path, store_url)
    with relay_serve(config) as (proc, base):
        for model in ("mock-1", "mock-claude"):
            stream = await _open_route(base, route, model, SLOW)
            await _read_until(stream, b"data: ", count=6)
            await stream.aclose()
        rows = await logs(store_url, 2)
        await terminate(proc)
    for row in rows:
        assert (row.status, row.error_kind, row.end_kind) == (200, "client_gone", "client_closed"), row
        assert row.attempts in ((("mock", "client_closed"),), (("other", "client_closed"),)), row
        assert row.output_tokens > 0 and row.cost_micros > 0
    access = config.with_suffix(".log").read_text()
    assert access.count("end=client_closed") == 2

"""A relayed stream holds O(1) state whatever its length: nothing of what it relayed is kept for later (its
usage and the output it produced are counters), so a long stream's memory does not grow as it goes."""

from __future__ import annotations

import tracemalloc

import orjson
import pytest
import trio

from relay.config import loads
from relay.dialects.common import dumps_kept
from tests.conftest import KEY, config_from, serve_relay
from tests.helpers import upstream_relay_toml

FRAMES = 3000


async def _traced_between(port: int, body: bytes, first: int, last: int) -> tuple[int, int]:
    """Memory traced when the stream's frame ``first`` and frame ``last`` arrived (the stream read to its end)."""
    marks = {first: 0, last: 0}
    tracemalloc.start()
    try:
        seen = await _frames_read(port, body, marks)
    finally:
        tracemalloc.stop()
    assert seen >= FRAMES
    return marks[first], marks[last]


async def _frames_read(port: int, body: bytes, marks: dict[int, int]) -> int:
    """Read a stream to its end, noting the traced memory when each frame count in ``marks`` is reached."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: relay\r\nauthorization: Bearer {KEY}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    await stream.send_all(head + body)
    seen = 0
    with trio.fail_after(50):
        while True:
            data = await stream.receive_some(65536)
            if not data:
                break
            seen += data.count(b"data: ")
            for mark in marks:
                if marks[mark] == 0 and seen >= mark:
                    marks[mark] = tracemalloc.get_traced_memory()[0]
            if b"data: [DONE]" in data:
                break
    await stream.aclose()
    return seen


@pytest.mark.parametrize("model", ["mock-1", "mock-claude"])  # passthrough (Chat to Chat), and converted
async def test_a_long_stream_does_not_grow_in_memory(model: str) -> None:
    text = f"mock:chunks={FRAMES} mock:delay_ms=1 " + "lorem ipsum dolor sit amet " * 4500
    body = orjson.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": text}]})
    config = config_from(
        f"""
[server]
listen = "127.0.0.1:0"
access_log = false
[store]
url = "sqlite://:memory:"
[[channels]]
name = "mock"
type = "mock"
models = ["mock-1"]
[[channels]]
name = "claude"
type = "mock"
models = ["mock-claude"]
[channels.mock]
dialect = "anthropic"
[[keys]]
name = "test"
key = "{KEY}"
"""
    )
    async with serve_relay(config) as served:
        early, late = await _traced_between(served.port, body, 300, FRAMES - 100)
    # 2,600 frames apart: keeping what was relayed added 60 to 90 KB here (measured).
    assert late - early < 40_000, (early, late)


def test_a_kept_json_body_is_as_large_as_its_text_not_as_orjsons_buffer() -> None:
    payload = {"model": "m", "messages": [{"role": "user", "content": "x" * 3000}]}
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        kept = [dumps_kept(payload) for _ in range(50)]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "lineno")) / len(kept)
    assert kept[0] == orjson.dumps(payload)
    assert held < 2 * len(kept[0]), held  # orjson.dumps alone: ~32 KiB each


UPSTREAM_CHANNELS = (
    ("chat", "openai", "/v1", 'api = "chat"\n', "chat-1"),
    ("claude", "anthropic", "", "", "claude-1"),
)


@pytest.mark.parametrize("model", ["chat-1", "claude-1"])  # passthrough, and converted from Anthropic events
async def test_a_stream_from_a_real_upstream_holds_the_same_after_ten_times_the_frames(
    mock_upstream: str, model: str
) -> None:
    """Through sockets both ways (``relay mock-upstream`` in a process of its own, as a provider): what Relay
    holds at frame N and at frame 10·N is the same, give or take the allocator's noise."""
    text = f"mock:chunks={FRAMES} mock:delay_ms=1 " + "lorem ipsum dolor sit amet " * 4500
    body = orjson.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": text}]})
    config = loads(upstream_relay_toml(mock_upstream, channels=UPSTREAM_CHANNELS))
    async with serve_relay(config) as served:
        early, late = await _traced_between(served.port, body, FRAMES // 10, FRAMES - 100)
    # 2,600 frames apart; a stream that kept 16 bytes a frame would add 40 KB.
    assert late - early < 40_000, (early, late)

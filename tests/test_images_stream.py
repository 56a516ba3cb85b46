"""A streamed Images answer passed through (``relay.endpoints.images_stream``): events forwarded unchanged, the
completed images counted and their tokens added, the end at the last image asked for, errors and truncation."""

from __future__ import annotations

import json

import pytest

from relay.config import ChannelConfig
from relay.endpoints.images_stream import ImageStream
from relay.errors import RelayError
from relay.mock.transport import MockTransport
from relay.upstream.channels import Channel
from relay.upstream.exchange import Exchange


def stream(expected: int) -> ImageStream:
    config = ChannelConfig(name="img", type="mock", models=("*",))
    return ImageStream(Exchange(Channel(config, MockTransport(config.mock))), expected)


def event(kind: str, **fields: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


PARTIAL = event("image_generation.partial_image", b64_json="AA==", partial_image_index=0)
DONE = event(
    "image_generation.completed",
    b64_json="AA==",
    size="1024x1024",
    quality="low",
    usage={"input_tokens": 3, "output_tokens": 272, "total_tokens": 275},
)


async def test_events_pass_unchanged_and_the_images_are_counted() -> None:
    steps = stream(2)
    data = PARTIAL + DONE + PARTIAL
    out, done = steps.step(data[:50])
    assert (out, done) == (b"", False)  # no whole event yet
    out2, done = steps.step(data[50:])
    assert out + out2 == data and not done
    out, done = steps.step(DONE[:-1])
    assert (out, done) == (b"", False)
    out, done = steps.step(DONE[-1:] + PARTIAL)  # nothing after the last image asked for
    assert (out, done) == (DONE, True)
    usage = steps.usage("1024x1024/low")
    assert usage is not None
    assert (usage.images, usage.input_tokens, usage.output_tokens, usage.image_size) == (2, 6, 544, "1024x1024/low")
    assert (steps.size, steps.quality) == ("1024x1024", "low")


async def test_an_upstream_ending_after_an_image_is_an_end_and_before_any_is_truncated() -> None:
    steps = stream(3)
    steps.step(DONE)
    assert steps.end() == b""
    counted = steps.usage("x")
    assert counted is not None and counted.images == 1
    early = stream(1)
    early.step(PARTIAL)
    with pytest.raises(RelayError) as caught:
        early.end()
    assert caught.value.code == "upstream_truncated"
    assert early.usage("x") is None


async def test_an_error_event_ends_the_stream_with_relays_frame() -> None:
    steps = stream(1)
    error = b'event: error\ndata: {"error": {"message": "secret upstream words", "code": "server_error"}}\n\n'
    out, done = steps.step(PARTIAL + error)
    assert done and out.startswith(PARTIAL)
    frame = json.loads(out[len(PARTIAL) :].removeprefix(b"data: "))
    assert frame["error"]["code"] == "server_error" and "secret" not in frame["error"]["message"]
    assert steps.failed is not None and steps.failed.status == 502


async def test_malformed_event_is_a_502() -> None:
    with pytest.raises(RelayError) as caught:
        stream(1).step(b"data: {not json\n\n")
    assert caught.value.code == "upstream_malformed"

"""The sink a task's streamed model call writes into (relay/utility/calls.py): what the channel cannot take at once
is kept and delivered first by the next ``send``, as a socket's writer does (``relay.http.writer``)."""

from __future__ import annotations

import trio

from relay.http.shutdown import Shutdown
from relay.utility.calls import _Sink


async def test_what_send_nowait_could_not_deliver_comes_first_and_in_order() -> None:
    send, receive = trio.open_memory_channel[bytes](2)
    sink = _Sink(Shutdown(), send)
    await sink.start(200, ())
    assert sink.send_nowait(b"1") and sink.send_nowait(b"2")
    assert not sink.send_nowait(b"3")  # the channel is full: kept
    assert not sink.send_nowait(b"4")  # queued behind it, never ahead
    assert not sink.send_nowait(b"")  # something still waits

    async def flush() -> None:
        await sink.send(b"")  # what the pump calls to write what is left
        await sink.send(b"5")
        await send.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flush)
        got = [piece async for piece in receive]
    assert got == [b"1", b"2", b"3", b"4", b"5"]
    assert sink.send_nowait(b"")


async def test_a_reader_gone_makes_the_sink_gone() -> None:
    send, receive = trio.open_memory_channel[bytes](0)
    sink = _Sink(Shutdown(), send)
    await receive.aclose()
    assert sink.send_nowait(b"x") and sink.gone
    await sink.send(b"y")  # no error: what is written is lost, as to a client that left

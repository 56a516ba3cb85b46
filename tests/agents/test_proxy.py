"""The recording proxy of the agent runs: it forwards streams unchanged and records each request, never a key."""

from __future__ import annotations

import httpx
import trio

from relay.http.messages import Request, Response, StreamResponse
from tests.agents.proxy import Recorder, serve_proxy
from tests.conftest import serve_app
from tests.helpers import Upstream

FRAMES = [b"event: one\ndata: {}\n\n", b"event: two\ndata: {}\n\n"]


async def answer(request: Request, stream: StreamResponse) -> Response | None:
    if request.path.endswith("/stream"):
        await stream.start(200, [(b"content-type", b"text/event-stream")])
        for frame in FRAMES:
            await stream.send(frame)
        return None
    return Response.json(400, {"error": {"message": "no"}})


async def test_streams_pass_and_requests_are_recorded_without_keys() -> None:
    upstream = Upstream(answer)
    recorder = Recorder("run-1")
    async with serve_app(upstream) as served, trio.open_nursery() as nursery:
        port = await nursery.start(serve_proxy, served.host, served.port, recorder)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            # Two requests on one kept-alive connection: each is its own exchange.
            streamed = await client.post(
                "/v1/stream?key=sk-secret&alt=sse",
                json={"stream": True},
                headers={"x-api-key": "sk-secret", "anthropic-beta": "b1"},
            )
            refused = await client.post("/v1/other", content=b"not json", headers={"authorization": "Bearer sk-x"})
        nursery.cancel_scope.cancel()
    assert streamed.status_code == 200 and streamed.content == b"".join(FRAMES)
    assert refused.status_code == 400
    assert [request.path for request in upstream.requests] == ["/v1/stream", "/v1/other"]
    first, second = recorder.of("run-1")
    assert first.record() == {
        "method": "POST",
        "path": "/v1/stream?key=REDACTED&alt=sse",
        "headers": {
            "accept": "*/*",
            "accept-encoding": first.headers["accept-encoding"],
            "user-agent": first.headers["user-agent"],
            "anthropic-beta": "b1",
            "content-type": "application/json",
        },
        "body": {"stream": True},
    }
    assert (first.auth_header, first.status, first.response) == ("x-api-key", 200, b"".join(FRAMES))
    assert second.record()["body"] == "not json" and second.auth_header == "authorization"
    assert second.status == 400 and b'"no"' in second.response
    assert "sk-" not in repr([first.record(), second.record()])
    assert recorder.notes == []

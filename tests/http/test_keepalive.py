"""Keep-alive, pipelining, both body framings and 100-continue, on one h11 loop per connection."""

import trio

from tests.conftest import KEY, config_from, serve_relay
from tests.http.apps import chat_body
from tests.http.raw import chunked, connect, request

AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def echoed(response) -> str:
    assert response.status == 200, response.body
    return response.json()["choices"][0]["message"]["content"]


async def test_several_requests_share_one_connection():
    async with serve_relay() as relay, connect(relay.host, relay.port) as client:
        for i in range(3):
            await client.send(request("POST", "/v1/chat/completions", chat_body(f"turn {i}"), AUTH))
            response = await client.response()
            assert echoed(response) == f"Echo: turn {i}"
            assert "connection" not in response.headers
        await client.send(request("GET", "/healthz"))
        assert (await client.response()).json()["status"] == "ok"


async def test_pipelined_requests_are_answered_in_order():
    pipelined = b"".join(
        [
            request("GET", "/healthz"),
            request("POST", "/v1/chat/completions", chat_body("first"), AUTH),
            request("GET", "/no/such/path"),
            request("POST", "/v1/chat/completions", chat_body("second"), AUTH),
            request("GET", "/v1/chat/completions"),
        ]
    )
    async with serve_relay() as relay, connect(relay.host, relay.port) as client:
        await client.send(pipelined)  # one write: all five requests arrive together
        answers = [await client.response() for _ in range(5)]
    assert [a.status for a in answers] == [200, 200, 404, 200, 405]
    assert answers[0].json()["status"] == "ok"
    assert echoed(answers[1]) == "Echo: first"
    assert echoed(answers[3]) == "Echo: second"


async def test_chunked_request_body_is_reassembled():
    body = chat_body("in three chunks")
    head = request("POST", "/v1/chat/completions", headers={**AUTH, "Transfer-Encoding": "chunked"})
    async with serve_relay() as relay, connect(relay.host, relay.port) as client:
        await client.send(head + chunked(body[:10], body[10:25], body[25:]))
        assert echoed(await client.response()) == "Echo: in three chunks"
        await client.send(request("POST", "/v1/chat/completions", chat_body("then a sized one"), AUTH))
        assert echoed(await client.response()) == "Echo: then a sized one"


async def test_expect_100_continue_is_answered_before_the_body_is_sent():
    body = chat_body("after continue")
    async with serve_relay() as relay, connect(relay.host, relay.port) as client:
        await client.send(
            request("POST", "/v1/chat/completions", body, {**AUTH, "Expect": "100-continue"})[: -len(body)]
        )
        with trio.fail_after(2):
            interim = await client.head()  # nothing of the body has been sent yet
        assert interim.status == 100
        assert interim.raw.startswith(b"HTTP/1.1 100 Continue\r\n")
        await client.send(body)
        assert echoed(await client.response()) == "Echo: after continue"


async def test_idle_keepalive_connection_is_closed_after_its_timeout():
    async with serve_relay(config_from(keepalive_timeout=0.3)) as relay, connect(relay.host, relay.port) as client:
        await client.send(request("GET", "/healthz"))
        assert (await client.response()).status == 200
        with trio.fail_after(2):
            assert await client.closed()


async def test_last_allowed_request_carries_connection_close():
    async with (
        serve_relay(config_from(max_requests_per_connection=3)) as relay,
        connect(relay.host, relay.port) as client,
    ):
        headers = []
        for _ in range(3):
            await client.send(request("GET", "/healthz"))
            response = await client.response()
            assert response.status == 200
            headers.append(response.headers.get("connection"))
        assert headers == [None, None, "close"]
        with trio.fail_after(2):
            assert await client.closed()

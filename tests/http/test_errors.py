"""Unknown paths and wrong methods, through the served Relay: 404, and 405 with Allow, both JSON."""

from tests.conftest import serve_relay
from tests.http.raw import connect, request


async def test_unknown_path_is_404_and_the_connection_stays_usable():
    async with serve_relay() as relay, connect(relay.host, relay.port) as client:
        await client.send(request("GET", "/v1/no-such-thing"))
        error = (await client.response()).assert_error(404)
        assert "/v1/no-such-thing" in error["message"]
        await client.send(request("GET", "/healthz"))
        assert (await client.response()).status == 200


async def test_known_path_with_another_method_is_405_with_allow():
    async with serve_relay() as relay, connect(relay.host, relay.port) as client:
        await client.send(request("DELETE", "/v1/chat/completions"))
        response = await client.response()
        response.assert_error(405)
        assert response.headers["allow"] == "POST"
        await client.send(request("POST", "/healthz", b"{}"))
        response = await client.response()
        response.assert_error(405)
        assert response.headers["allow"] == "GET"

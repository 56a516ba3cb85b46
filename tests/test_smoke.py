import httpx

from tests.conftest import KEY, serve_relay


async def test_chat_completion_through_mock_channel():
    async with serve_relay() as relay, httpx.AsyncClient(base_url=relay.url) as client:
        r = await client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {KEY}"},
            json={"model": "fast", "messages": [{"role": "user", "content": "hello"}]},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == "fast"
        assert body["choices"][0]["message"]["content"] == "Echo: hello"

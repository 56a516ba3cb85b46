"""POST /v1/chat/completions to an ``openai`` channel: model aliasing, byte passthrough, 400s naming the parameter."""

import json

import httpx
import pytest
import trio

from relay.http.messages import Response
from tests.conftest import KEY, openai_channel_config, serve_app, serve_relay
from tests.helpers import (
    AUTH,
    Upstream,
    assert_openai_error,
    chat,
    raw_request,
    shared_mock_upstream,  # noqa: F401  (a fixture)
    sse_data,
    sse_frame,
)


@pytest.fixture
async def relay(shared_mock_upstream):  # noqa: F811
    async with serve_relay(openai_channel_config(shared_mock_upstream)) as served:
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=5) as client:
            yield client


@pytest.fixture
async def direct(shared_mock_upstream):  # noqa: F811
    async with httpx.AsyncClient(base_url=shared_mock_upstream + "/v1", timeout=5) as client:
        yield client


async def test_aliased_model_non_streaming(relay, direct):
    r = await relay.post("/v1/chat/completions", json=chat("hello", model="fast"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "fast"
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Echo: hello"
    # Apart from the model's name, the answer is the upstream's own answer for mock-1.
    expected = (await direct.post("/chat/completions", json=chat("hello", model="mock-1"))).json()
    assert expected["model"] == "mock-1"
    assert {**body, "model": "mock-1"} == expected


async def test_aliased_model_streaming_every_chunk_has_the_public_name(relay):
    request = chat("hello there", model="fast", stream=True, stream_options={"include_usage": True})
    r = await relay.post("/v1/chat/completions", json=request)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/event-stream"
    events = sse_data(r.content)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) >= 4
    assert all(c["model"] == "fast" for c in chunks)
    assert "mock-1" not in r.text
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Echo: hello there"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("stream", [False, True])
async def test_same_dialect_passthrough_is_byte_for_byte(relay, direct, stream):
    request = chat("bytes please", model="mock-2", stream=stream, stream_options={"include_usage": True})
    if not stream:
        del request["stream_options"]
    body = json.dumps(request, indent=1).encode()  # odd spacing: it must reach the upstream unchanged too
    through = await relay.post("/v1/chat/completions", content=body)
    straight = await direct.post("/chat/completions", content=body)
    assert through.status_code == straight.status_code == 200
    assert through.content == straight.content
    assert len(through.content) > 100


async def _echo_body(request, stream):
    payload = json.loads(request.body)
    if payload.get("stream"):
        await stream.start(200, [(b"content-type", b"text/event-stream")])
        chunk = {"id": "c", "object": "chat.completion.chunk", "model": payload["model"], "choices": []}
        await stream.send(sse_frame(chunk) + sse_frame(chunk))
        await stream.send(sse_frame("[DONE]"))
        return None
    answer = {"id": "c", "object": "chat.completion", "model": payload["model"], "choices": [], "extra": 1}
    return Response.json(200, answer)


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_sees_its_own_model_name_and_its_own_key(stream):
    upstream = Upstream(_echo_body)
    async with serve_app(upstream) as up, serve_relay(openai_channel_config(up.url)) as relay:
        request = chat("hi", model="fast", stream=stream, temperature=0.25, user="u-1", metadata={"a": "b"})
        async with httpx.AsyncClient(base_url=relay.url, headers=AUTH) as client:
            r = await client.post("/v1/chat/completions", json=request)
        assert r.status_code == 200, r.text
    (seen,) = upstream.requests
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    # everything else kept; a stream asks for the usage chunk, which its cost is computed from
    usage = {"stream_options": {"include_usage": True}} if stream else {}
    assert json.loads(seen.body) == {**request, "model": "mock-1", **usage}
    assert seen.header(b"authorization") == "Bearer sk-upstream"
    assert not any(KEY.encode() in value for _, value in seen.headers)  # the client's key stays here
    if stream:
        chunks = [json.loads(e) for e in sse_data(r.content)[:-1]]
        assert [c["model"] for c in chunks] == ["fast", "fast"]
    else:
        assert r.json() == {"id": "c", "object": "chat.completion", "model": "fast", "choices": [], "extra": 1}


async def test_unaliased_body_reaches_the_upstream_unchanged():
    upstream = Upstream(_echo_body)
    body = b'{"messages": [{"role": "user", "content": "caf\\u00e9"}],\n "model":"mock-7", "z": 1.50}'
    async with serve_app(upstream) as up, serve_relay(openai_channel_config(up.url)) as relay:
        r = await raw_request(relay.url, "POST", "/v1/chat/completions", headers=AUTH, body=body)
    assert r.status == 200
    assert upstream.requests[0].body == body


async def test_events_after_done_are_not_forwarded_and_a_lingering_upstream_does_not_hold_the_client():
    async def lingering(request, stream):
        await stream.start(200, [(b"content-type", b"text/event-stream")])
        await stream.send(sse_frame({"model": "mock-1", "choices": []}) + sse_frame("[DONE]") + sse_frame("late"))
        await trio.sleep_forever()

    async with serve_app(Upstream(lingering)) as up, serve_relay(openai_channel_config(up.url)) as relay:
        body = json.dumps(chat(model="mock-1", stream=True)).encode()
        with trio.fail_after(2.5):
            r = await raw_request(relay.url, "POST", "/v1/chat/completions", headers=AUTH, body=body)
    assert r.complete
    assert sse_data(r.body) == ['{"model": "mock-1", "choices": []}', "[DONE]"]


DEEP = b"[" * 1000 + b"]" * 1000
BAD_BODIES = [
    (b'{"model": "mock-1", "model": "mock-2", "messages": [1], "x": ' + DEEP + b"}", None, "nested too deeply"),
    (b"{not json", None, "not valid JSON"),
    (b"", None, "not valid JSON"),
    (b"\xff\xfe", None, "not valid JSON"),
    (b"[1, 2]", None, "JSON object"),
    (b'"text"', None, "JSON object"),
    (b'{"messages": [{"role": "user", "content": "x"}]}', "model", "model"),
    (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "model", "model"),
    (b'{"model": "", "messages": [{"role": "user", "content": "x"}]}', "model", "model"),
    (b'{"model": "mock-1"}', "messages", "messages"),
    (b'{"model": "mock-1", "messages": []}', "messages", "messages"),
    (b'{"model": "mock-1", "messages": "hello"}', "messages", "messages"),
    (b'{"model": "mock-1", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream", "stream"),
    (b'{"model": "mock-1", "messages": [{"role": "user", "content": "x"}], "stream": 1}', "stream", "stream"),
    (b'{"model": "gpt-x", "messages": [{"role": "user", "content": "x"}], "model": "mock-1"}', "model", "model"),
    (
        b'{"stream": false, "model": "mock-1", "messages": [{"role": "user", "content": "x"}], "stream": true}',
        "stream",
        "stream",
    ),
]


@pytest.mark.parametrize(("body", "param", "words"), BAD_BODIES)
async def test_bad_request_is_400_naming_the_parameter(relay, body, param, words):
    r = await relay.post("/v1/chat/completions", content=body)
    assert r.status_code == 400, r.text
    error = assert_openai_error(r.json(), param=param)
    assert error["type"] == "invalid_request_error"
    assert words in error["message"]


async def test_a_nested_model_key_is_not_a_duplicate(relay):
    request = chat("x", model="mock-1")
    request["tools"] = [
        {"type": "function", "function": {"name": "f", "parameters": {"properties": {"model": {"type": "string"}}}}}
    ]
    request["tool_choice"] = "none"
    r = await relay.post("/v1/chat/completions", json=request)
    assert r.status_code == 200, r.text


async def test_wrong_method_is_405_in_the_openai_shape(relay):
    r = await relay.get("/v1/chat/completions")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert_openai_error(r.json(), code="method_not_allowed")


async def test_bad_input_through_a_mock_channel_is_a_400_not_a_500():
    bodies = [
        chat(tools=5),
        chat(tools=[{"type": "function", "function": {"name": 1}}]),
        chat(tools=[{"type": "function", "function": {"name": "f"}}], tool_choice={"function": "f"}),
        chat(max_tokens="many"),
        chat(stream=True, stream_options=5),
        {"model": "mock-1", "messages": ["hello"]},
        {"model": "mock-1", "messages": [{"role": "user", "content": 5}]},
    ]
    async with serve_relay() as served, httpx.AsyncClient(base_url=served.url, headers=AUTH) as client:
        for body in bodies:
            r = await client.post("/v1/chat/completions", json=body)
            assert r.status_code == 400, (body, r.text)
            assert_openai_error(r.json())
        # Odd but valid schemas are answered, not crashed on.
        odd = {"properties": [1], "enum": 5}
        tools = [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": odd}}}}
        ]
        r = await client.post("/v1/chat/completions", json=chat(tools=tools))
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["finish_reason"] == "tool_calls"


async def test_a_stream_that_did_not_ask_for_usage_gets_none_but_is_charged_by_it():
    """Relay asks the upstream for the usage chunk (its cost is computed from it) and keeps it from a client
    that did not ask: no chunk without choices reaches it; one that asked gets it."""
    async with serve_relay() as relay, httpx.AsyncClient(base_url=relay.url, headers=AUTH) as client:
        plain = await client.post("/v1/chat/completions", json=chat("count me", stream=True))
        asked = await client.post(
            "/v1/chat/completions", json=chat("count me", stream=True, stream_options={"include_usage": True})
        )
    plain_chunks = [json.loads(e) for e in sse_data(plain.content)[:-1]]
    asked_chunks = [json.loads(e) for e in sse_data(asked.content)[:-1]]
    assert plain_chunks and all(c["choices"] for c in plain_chunks)
    assert next(c for c in asked_chunks if not c["choices"])["usage"]["completion_tokens"] > 0
    assert len(asked_chunks) == len(plain_chunks) + 1

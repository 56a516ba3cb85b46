"""What a channel puts on the wire with Relay's own request type (relay.upstream.response): the request line
under the base URL's path, the ``host`` and ``content-length`` headers, the channel's and the client's headers,
and the base URL's parts (default ports, IPv6, international names)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from relay.config import ChannelConfig
from relay.http.messages import Request, Response
from relay.upstream.channels import build_channels, encode_target, split_base_url
from tests.conftest import openai_channel_config, serve_app, serve_relay
from tests.helpers import AUTH, Upstream, chat, raw_request

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "mock-1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


async def test_a_channel_sends_one_post_with_its_host_length_and_headers() -> None:
    seen: list[tuple[str, str, list[tuple[bytes, bytes]], bytes]] = []

    async def answer(request: Request, stream: Any) -> Response:
        seen.append((request.method, request.path, list(request.headers), request.body))
        return Response.json(200, ANSWER)

    async with serve_app(Upstream(answer)) as up, serve_relay(openai_channel_config(up.url)) as relay:
        body = json.dumps(chat("hello")).encode()
        with trio.fail_after(10):
            r = await raw_request(relay.url, "POST", "/v1/chat/completions", headers=AUTH, body=body)
    assert r.status == 200, r.body
    [(method, path, headers, sent)] = seen
    assert (method, path) == ("POST", "/v1/chat/completions")
    names = [name for name, _ in headers]
    assert names[0] == b"host" and names[-1] == b"content-length" and len(names) == len(set(names))
    values = dict(headers)
    assert values[b"host"] == up.url.removeprefix("http://").encode()
    assert values[b"content-length"] == str(len(sent)).encode()
    assert values[b"authorization"] == b"Bearer sk-upstream"
    assert values[b"content-type"] == b"application/json" and values[b"user-agent"] == b"relay"
    assert json.loads(sent)["messages"] == [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize(
    ("base_url", "origin", "authority", "prefix"),
    [
        ("http://127.0.0.1:8081/v1", (b"http", "127.0.0.1", 8081), b"127.0.0.1:8081", "/v1"),
        ("https://api.openai.com/v1", (b"https", "api.openai.com", 443), b"api.openai.com", "/v1"),
        ("http://Example.COM:80", (b"http", "example.com", 80), b"example.com", ""),
        ("https://[::1]:8443/x", (b"https", "::1", 8443), b"[::1]:8443", "/x"),
        ("https://bücher.example/v1", (b"https", "bücher.example", 443), b"xn--bcher-kva.example", "/v1"),
    ],
)
def test_a_base_url_splits_into_origin_host_header_and_path(
    base_url: str, origin: tuple[bytes, str, int], authority: bytes, prefix: str
) -> None:
    assert split_base_url(base_url) == (origin, authority, prefix)


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        split_base_url("ftp://example.com/v1")


def test_a_request_target_is_percent_encoded_once() -> None:
    assert encode_target("/v1beta/models/gemini-2.5:streamGenerateContent?alt=sse") == (
        b"/v1beta/models/gemini-2.5:streamGenerateContent?alt=sse"
    )
    assert encode_target("/v1/models/a%2Fb:countTokens") == b"/v1/models/a%2Fb:countTokens"  # escapes kept as they are
    assert encode_target("/v1/modèle x") == b"/v1/mod%C3%A8le%20x"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_an_address_is_connected_to_directly_and_a_name_through_trios_resolver(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``trio.open_tcp_stream`` (happy eyeballs, a nursery per connection) only for names: an IP address costs a
    plain connect (docs/performance.md)."""
    resolved: list[tuple[str, int]] = []
    real = trio.open_tcp_stream

    async def counting(name: str, port: int, **kwargs: Any) -> trio.SocketStream:
        resolved.append((name, port))
        return await real(name, port, **kwargs)

    monkeypatch.setattr(trio, "open_tcp_stream", counting)

    async def answer(request: Request, stream: Any) -> Response:
        return Response.json(200, ANSWER)

    async with serve_app(Upstream(answer)) as up:
        base = up.url.replace("127.0.0.1", host)
        async with serve_relay(openai_channel_config(base)) as relay:
            with trio.fail_after(10):
                r = await raw_request(
                    relay.url, "POST", "/v1/chat/completions", headers=AUTH, body=json.dumps(chat("hi")).encode()
                )
    assert r.status == 200, r.body
    upstream_port = int(up.url.rpartition(":")[2])
    assert [name for name, port in resolved if port == upstream_port] == ([] if host == "127.0.0.1" else ["localhost"])


async def test_a_channel_sends_other_methods_and_content_types() -> None:
    """GET and DELETE go without a body (no length, no content type: some servers refuse a GET that has them);
    an upload goes with its own content type instead of JSON's; each on the same pooled connection."""
    seen: list[tuple[str, str, dict[bytes, bytes], bytes]] = []

    async def answer(request: Request, stream: Any) -> Response:
        seen.append((request.method, request.path, dict(request.headers), request.body))
        return Response.json(200, {"ok": request.method})

    async with serve_app(Upstream(answer)) as up:
        pool, channels = build_channels([ChannelConfig("c", "openai", ("m",), base_url=up.url + "/v1", api_key="k")])
        channel = channels["c"]
        try:
            with trio.fail_after(10):
                for method in ("GET", "DELETE"):
                    response = await channel.send("/files/file-1", b"", "k", method=method)
                    assert (response.status, json.loads(await response.read())) == (200, {"ok": method})
                    response.release()
                form = b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n"
                response = await channel.send("/files", form, "k", content_type="multipart/form-data; boundary=x")
                assert response.status == 200
                await response.read()
                response.release()
        finally:
            await pool.aclose()
    (get_method, get_path, get_headers, get_body), (delete_method, _, delete_headers, _), upload = seen
    assert (get_method, get_path, get_body, delete_method) == ("GET", "/v1/files/file-1", b"", "DELETE")
    for headers in (get_headers, delete_headers):
        assert b"content-length" not in headers and b"content-type" not in headers
        assert headers[b"authorization"] == b"Bearer k"
    assert upload[0] == "POST" and upload[3] == form
    assert upload[2][b"content-type"] == b"multipart/form-data; boundary=x"
    assert upload[2][b"content-length"] == str(len(form)).encode()

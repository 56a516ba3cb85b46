"""The Images API through ``relay serve`` to ``relay mock-upstream``: the openai SDK's ``images.generate``,
``images.edit`` and ``images.create_variation`` on an OpenAI channel, generations on a Gemini channel, the
refusals (an Anthropic channel, edits on Gemini, bad input, a too large upload), streamed partial images, and
what each request is billed (the request log's cost, a key whose quota cannot cover the images).

The mock's images are 8x8 PNGs made from the request (``relay.mock.wire_images``): the tests decode them.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import trio

from relay.mock import png
from relay.mock.wire_images import GEMINI_IMAGE_TOKENS, INPUT_IMAGE_TOKENS, OUTPUT_TOKENS
from relay.store.records import LogRecord
from tests.conftest import KEY, process
from tests.gateway_e2e.conftest import logs, post, read, settled
from tests.gateway_e2e.ledger import check_ledger
from tests.helpers import MOCK_ARGS, assert_openai_error, raw_request

#: ``images.create_variation`` is deprecated in the SDK (dall-e-2 only), and still served.
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")

SMALL_KEY = "sk-relay-images-small"
#: Credits the small key starts with: two 1024x1024 dall-e-2 images, not three.
SMALL_QUOTA = 0.05
MAX_UPLOAD = 100_000

DALLE2 = "dall-e-2"
DALLE3 = "dall-e-3"
GPT_IMAGE = "gpt-image-1"
PIXEL = "pixel-1"  # the openai channel knows it as dall-e-2
GEMINI = "gem-image-1"  # the gemini channel knows it as gemini-2.5-flash-image
CLAUDE = "claude-image-1"  # an anthropic channel: no images

#: Credits per image.
DALLE2_PRICE = 0.02
DALLE2_256_PRICE = 0.016
PIXEL_PRICE = 0.04
GPT_LOW_PRICE = 0.011
GEMINI_PRICE = 0.039
#: Credits per million tokens (micro-credits per token).
GPT_INPUT, GPT_OUTPUT = 5, 40
GEMINI_INPUT, GEMINI_OUTPUT = 1, 30


def relay_toml(upstream: str, store: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[limits]
max_upload_bytes = {MAX_UPLOAD}

[store]
url = "{store}"
key_refresh = 0.2
log_interval = 0.05

[routing]
key_rest = 0.001
breaker_failures = 1000

[[prices]]
model = "{DALLE2}"
image = {DALLE2_PRICE}
image_sizes = {{ "256x256" = {DALLE2_256_PRICE}, "512x512" = 0.018 }}

[[prices]]
model = "pixel-*"
image = {PIXEL_PRICE}

[[prices]]
model = "gpt-image-*"
input = {GPT_INPUT}
output = {GPT_OUTPUT}
image = 0.5
image_sizes = {{ "1024x1024/low" = {GPT_LOW_PRICE}, "1024x1024/high" = 0.167 }}

[[prices]]
model = "gem-image-*"
input = {GEMINI_INPUT}
output = {GEMINI_OUTPUT}
image = {GEMINI_PRICE}

[[channels]]
name = "oai"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream-oai"
models = ["{DALLE2}", "{DALLE3}", "gpt-image-*", "{PIXEL}"]
[channels.model_map]
"{PIXEL}" = "dall-e-2"

[[channels]]
name = "gem"
type = "gemini"
base_url = "{upstream}"
api_key = "sk-upstream-gem"
models = ["gem-image-*"]
[channels.model_map]
"{GEMINI}" = "gemini-2.5-flash-image"

[[channels]]
name = "claude"
type = "anthropic"
base_url = "{upstream}"
api_key = "sk-upstream-claude"
models = ["claude-image-*"]

[[keys]]
name = "img"
key = "{KEY}"

[[keys]]
name = "small"
key = "{SMALL_KEY}"
quota = {SMALL_QUOTA}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(Relay's base URL, its store URL): ``relay serve`` in front of ``relay mock-upstream``."""
    root = tmp_path_factory.mktemp("images")
    store = f"sqlite:///{root}/relay.db"
    with process(*MOCK_ARGS) as (_, upstream):
        path: Path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", store))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}", store


@pytest.fixture(scope="module")
def url(served: tuple[str, str]) -> str:
    return served[0]


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


def decoded_png(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, checked: signature, IHDR first, every chunk's CRC, the pixels' size."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        tag = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(tag + body) & 0xFFFFFFFF == crc, tag
        chunks.append((tag, body))
        position += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour) == (8, 2)  # 8-bit RGB
    pixels = zlib.decompress(b"".join(body for tag, body in chunks if tag == b"IDAT"))
    assert len(pixels) == height * (1 + 3 * width)
    return width, height


def from_data_url(url: str) -> bytes:
    head, _, data = url.partition(",")
    assert head == "data:image/png;base64", head
    return base64.b64decode(data)


def sample(seed: str = "input") -> tuple[str, bytes, str]:
    """An input image as the SDK takes a file: (name, bytes, type)."""
    return (f"{seed}.png", png.png(seed), "image/png")


def request_id(raw: Any) -> str:
    return str(raw.headers["x-request-id"])


async def logged(store: str, ids: dict[str, str]) -> dict[str, LogRecord]:
    """The request log's rows of ``ids`` (name -> request id), once all are written."""
    rows: dict[str, LogRecord] = {}
    for _ in range(200):  # the recorder writes its batches every 50 ms: up to 10 s, on a busy machine too
        found = {r.request_id: r for r in await logs(store, len(ids))}
        rows = {name: found[rid] for name, rid in ids.items() if rid in found}
        if len(rows) == len(ids):
            break
        await trio.sleep(0.05)
    assert set(rows) == set(ids)
    return rows


# ---- generations on the OpenAI channel ------------------------------------------------------------------------


def test_generate_b64_json_two_images_of_a_size(client: openai.OpenAI) -> None:
    answer = client.images.generate(model=DALLE2, prompt="a red fox", n=2, size="256x256", response_format="b64_json")
    assert isinstance(answer.created, int) and answer.data is not None and len(answer.data) == 2
    images = [base64.b64decode(image.b64_json or "") for image in answer.data]
    assert all(decoded_png(image) == (png.SIZE, png.SIZE) for image in images)
    assert images[0] != images[1]  # n images, each its own
    again = client.images.generate(model=DALLE2, prompt="a red fox", n=2, size="256x256", response_format="b64_json")
    assert [i.b64_json for i in again.data or []] == [i.b64_json for i in answer.data]  # deterministic
    other = client.images.generate(model=DALLE2, prompt="a blue fox", size="256x256", response_format="b64_json")
    assert (other.data or [])[0].b64_json != answer.data[0].b64_json


def test_generate_url_and_the_default_model(client: openai.OpenAI, url: str) -> None:
    answer = client.images.generate(model=DALLE2, prompt="a lighthouse", response_format="url")
    assert answer.data is not None and len(answer.data) == 1 and answer.data[0].b64_json is None
    assert decoded_png(from_data_url(answer.data[0].url or "")) == (8, 8)
    # No model: dall-e-2, as OpenAI (the mock's url answer is dall-e-2's default format)
    unnamed = client.images.generate(prompt="a lighthouse")
    assert (unnamed.data or [])[0].url == answer.data[0].url
    # dall-e-3 revises the prompt; the field passes through
    three = client.images.generate(model=DALLE3, prompt="a lighthouse", quality="hd", size="1792x1024")
    assert (three.data or [])[0].revised_prompt == "A picture of: a lighthouse"


def test_generate_gpt_image_reports_tokens(client: openai.OpenAI) -> None:
    prompt = "a watercolour of a harbour at dawn"
    answer = client.images.generate(model=GPT_IMAGE, prompt=prompt, quality="low", size="1024x1024", n=2)
    assert answer.data is not None and len(answer.data) == 2
    assert all(decoded_png(base64.b64decode(i.b64_json or "")) == (8, 8) for i in answer.data)
    assert answer.usage is not None
    assert answer.usage.input_tokens == -(-len(prompt) // 4)
    assert answer.usage.output_tokens == 2 * OUTPUT_TOKENS["low"]
    assert (answer.quality, answer.size, answer.output_format) == ("low", "1024x1024", "png")


def test_renamed_model_goes_upstream_by_its_channel_name(client: openai.OpenAI) -> None:
    """The mock makes images only with image models: ``pixel-1`` answered shows it went up as dall-e-2."""
    answer = client.images.generate(model=PIXEL, prompt="a kite", response_format="b64_json")
    direct = client.images.generate(model=DALLE2, prompt="a kite", response_format="b64_json")
    assert (answer.data or [])[0].b64_json == (direct.data or [])[0].b64_json
    edited = client.images.edit(model=PIXEL, image=sample(), prompt="add a hat", response_format="b64_json")
    edited_direct = client.images.edit(model=DALLE2, image=sample(), prompt="add a hat", response_format="b64_json")
    assert (edited.data or [])[0].b64_json == (edited_direct.data or [])[0].b64_json
    varied = client.images.create_variation(model=PIXEL, image=sample(), response_format="b64_json")
    assert decoded_png(base64.b64decode((varied.data or [])[0].b64_json or "")) == (8, 8)


# ---- edits and variations ------------------------------------------------------------------------------------


def test_edit_one_image(client: openai.OpenAI) -> None:
    answer = client.images.edit(model=DALLE2, image=sample(), prompt="add a hat", n=2, size="512x512")
    assert answer.data is not None and len(answer.data) == 2
    assert all(decoded_png(from_data_url(i.url or "")) == (8, 8) for i in answer.data)
    other = client.images.edit(model=DALLE2, image=sample("another"), prompt="add a hat", n=2, size="512x512")
    assert (other.data or [])[0].url != answer.data[0].url  # the input image counts


def test_edit_several_images(client: openai.OpenAI) -> None:
    images = [sample("one"), sample("two"), sample("three")]
    answer = client.images.edit(model=GPT_IMAGE, image=images, prompt="a collage", quality="low")
    assert answer.data is not None and len(answer.data) == 1
    assert decoded_png(base64.b64decode(answer.data[0].b64_json or "")) == (8, 8)
    # The SDK sends the array as image[] parts: the three reached the upstream (its image tokens count them)
    assert answer.usage is not None and answer.usage.input_tokens_details.image_tokens == 3 * INPUT_IMAGE_TOKENS
    two = client.images.edit(model=GPT_IMAGE, image=images[:2], prompt="a collage", quality="low")
    assert (two.data or [])[0].b64_json != answer.data[0].b64_json


def test_edit_with_a_mask(client: openai.OpenAI) -> None:
    plain = client.images.edit(model=DALLE2, image=sample(), prompt="a door", response_format="b64_json")
    masked = client.images.edit(
        model=DALLE2, image=sample(), mask=sample("mask"), prompt="a door", response_format="b64_json"
    )
    assert decoded_png(base64.b64decode((masked.data or [])[0].b64_json or "")) == (8, 8)
    assert (masked.data or [])[0].b64_json != (plain.data or [])[0].b64_json  # the mask reached the upstream
    # A mask that is not a PNG: the upstream's refusal, in OpenAI's shape, naming the mask
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model=DALLE2, image=sample(), mask=("m.jpg", b"\xff\xd8\xff\xe0", "image/jpeg"), prompt="x")
    assert caught.value.status_code == 400


def test_create_variation(client: openai.OpenAI) -> None:
    answer = client.images.create_variation(image=sample(), n=3, size="256x256", response_format="b64_json")
    assert answer.data is not None and len(answer.data) == 3
    assert all(decoded_png(base64.b64decode(i.b64_json or "")) == (8, 8) for i in answer.data)
    assert len({i.b64_json for i in answer.data}) == 3


# ---- streaming -----------------------------------------------------------------------------------------------


def test_generate_stream_relays_partial_images(client: openai.OpenAI) -> None:
    events = list(client.images.generate(model=GPT_IMAGE, prompt="a fern", stream=True, partial_images=2, n=2))
    kinds = [e.type for e in events]
    assert kinds == ["image_generation.partial_image"] * 2 + ["image_generation.completed"] + [
        "image_generation.partial_image"
    ] * 2 + ["image_generation.completed"]
    for event in events:
        assert decoded_png(base64.b64decode(event.b64_json)) == (8, 8)
    whole = client.images.generate(model=GPT_IMAGE, prompt="a fern", n=2)
    completed = [e.b64_json for e in events if e.type == "image_generation.completed"]
    assert completed == [i.b64_json for i in whole.data or []]


def test_edit_stream(client: openai.OpenAI) -> None:
    events = list(client.images.edit(model=GPT_IMAGE, image=sample(), prompt="snow", stream=True, partial_images=1))
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]
    assert decoded_png(base64.b64decode(events[-1].b64_json)) == (8, 8)


def test_stream_on_a_model_that_does_not_stream_is_the_upstreams_refusal(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        list(client.images.generate(model=DALLE2, prompt="a fern", stream=True))
    assert caught.value.status_code == 400


# ---- Gemini and Anthropic channels ---------------------------------------------------------------------------


def test_generate_on_gemini(client: openai.OpenAI) -> None:
    answer = client.images.generate(model=GEMINI, prompt="a red fox", n=2, size="1536x1024")
    assert answer.data is not None and len(answer.data) == 2
    images = [base64.b64decode(i.b64_json or "") for i in answer.data]
    assert all(decoded_png(image) == (8, 8) for image in images)
    assert images[0] == png.png("gemini|gemini-2.5-flash-image|a red fox")  # the channel's name for the model
    assert answer.usage is not None and answer.usage.output_tokens == 2 * GEMINI_IMAGE_TOKENS
    assert answer.output_format == "png"
    url = client.images.generate(model=GEMINI, prompt="a red fox", response_format="url")
    assert from_data_url((url.data or [])[0].url or "") == images[0]


def test_generate_stream_on_gemini(client: openai.OpenAI) -> None:
    events = list(client.images.generate(model=GEMINI, prompt="a red fox", stream=True, n=2))
    assert [e.type for e in events] == ["image_generation.completed"] * 2
    assert base64.b64decode(events[0].b64_json) == png.png("gemini|gemini-2.5-flash-image|a red fox")


def test_gemini_refuses_a_size_of_another_aspect_ratio(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model=GEMINI, prompt="a red fox", size="1792x1024")
    assert_openai_error({"error": caught.value.body}, param="size", code="invalid_value")
    assert "7:4" in caught.value.message


def test_refused_on_channels_without_them(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model=CLAUDE, prompt="a red fox")
    assert_openai_error({"error": caught.value.body}, param="model", code="unsupported_model")
    for call in (
        lambda: client.images.edit(model=GEMINI, image=sample(), prompt="a hat"),
        lambda: client.images.create_variation(model=GEMINI, image=sample()),
        lambda: client.images.edit(model=CLAUDE, image=sample(), prompt="a hat"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        assert_openai_error({"error": caught.value.body}, param="model", code="unsupported_model")


# ---- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": DALLE2}, "prompt"),
        ({"prompt": 7}, "prompt"),
        ({"prompt": "  "}, "prompt"),
        ({"prompt": "x", "n": 0}, "n"),
        ({"prompt": "x", "n": 11}, "n"),
        ({"prompt": "x", "n": "2"}, "n"),
        ({"prompt": "x", "n": True}, "n"),
        ({"prompt": "x", "size": 1024}, "size"),
        ({"prompt": "x", "quality": ["hd"]}, "quality"),
        ({"prompt": "x", "response_format": "png"}, "response_format"),
        ({"prompt": "x", "stream": "yes"}, "stream"),
        ({"prompt": "x", "partial_images": 4}, "partial_images"),
        ({"prompt": "x", "model": 3}, "model"),
    ],
)
async def test_generation_bad_input(url: str, body: dict[str, Any], param: str) -> None:
    answer = await post(url, "/v1/images/generations", json.dumps(body).encode())
    assert answer.status == 400, answer.body
    assert_openai_error(answer.json(), param=param)


async def test_generation_body_not_json_and_the_path_without_v1(url: str) -> None:
    answer = await post(url, "/v1/images/generations", b"{not json")
    assert answer.status == 400
    assert_openai_error(answer.json())
    plain = await post(url, "/images/generations", json.dumps({"prompt": "x", "model": DALLE2}).encode())
    assert plain.status == 200, plain.body


async def test_upstream_refusal_is_a_400_in_openai_shape(url: str) -> None:
    """dall-e-2 makes no 1792x1024 images: Relay leaves that to the upstream, whose 400 reaches the client."""
    answer = await post(url, "/v1/images/generations", json.dumps({"prompt": "x", "size": "1792x1024"}).encode())
    assert answer.status == 400
    assert_openai_error(answer.json(), param="size", code="invalid_value")


@pytest.mark.parametrize(("status", "relayed"), [(500, 502), (503, 503), (429, 429)])
async def test_upstream_errors_in_openai_shape_without_the_upstreams_words(url: str, status: int, relayed: int) -> None:
    body = json.dumps({"model": DALLE2, "prompt": f"mock:status={status}"}).encode()
    answer = await post(url, "/v1/images/generations", body)
    assert answer.status == relayed, answer.body
    error = assert_openai_error(answer.json())
    assert "mock upstream" not in error["message"]
    gemini = json.dumps({"model": GEMINI, "prompt": f"mock:status={status}"}).encode()
    answer = await post(url, "/v1/images/generations", gemini)
    assert answer.status == relayed, answer.body
    assert "mock upstream" not in assert_openai_error(answer.json())["message"]


def form(*parts: tuple[str, bytes, str | None]) -> tuple[bytes, str]:
    """A multipart body of (name, data, filename or None for a text field)."""
    boundary = "test-boundary-1234"
    out = b""
    for name, data, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        out += b"Content-Type: image/png\r\n" if filename else b""
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    ("path", "parts", "param"),
    [
        ("/v1/images/edits", [("prompt", b"a hat", None)], "image"),
        ("/v1/images/edits", [("image", b"not a file", None), ("prompt", b"a hat", None)], "image"),
        ("/v1/images/edits", [("image", png.png("x"), "x.png")], "prompt"),
        ("/v1/images/edits", [("image", png.png("x"), "x.png"), ("prompt", b"x", None), ("n", b"twelve", None)], "n"),
        ("/v1/images/edits", [("image", b"", "x.png"), ("prompt", b"x", None)], "image"),
        (
            "/v1/images/edits",
            [("image", png.png("x"), "x.png"), ("prompt", b"x", None), ("mask", png.png("m"), "m.png")] * 1
            + [("mask", png.png("n"), "n.png")],
            "mask",
        ),
        ("/v1/images/variations", [("n", b"2", None)], "image"),
        ("/v1/images/variations", [("image", png.png("x"), "x.png"), ("prompt", b"x", None)], "prompt"),
        (
            "/v1/images/variations",
            [("image", png.png("x"), "x.png"), ("response_format", b"gif", None)],
            "response_format",
        ),
    ],
)
async def test_form_bad_input(url: str, path: str, parts: list[tuple[str, bytes, str | None]], param: str) -> None:
    body, content_type = form(*parts)
    answer = await post(url, path, body, headers={"content-type": content_type})
    assert answer.status == 400, answer.body
    assert_openai_error(answer.json(), param=param)


async def test_a_bad_key_is_401_before_any_complaint_about_the_body(url: str) -> None:
    for path in ("/v1/images/generations", "/v1/images/edits", "/v1/images/variations"):
        answer = await post(url, path, b"{not json", key="sk-not-a-key")
        assert answer.status == 401, (path, answer.body)
        assert_openai_error(answer.json(), code="invalid_api_key")


async def test_form_not_multipart(url: str) -> None:
    answer = await post(url, "/v1/images/edits", json.dumps({"prompt": "x"}).encode())
    assert answer.status == 400
    assert_openai_error(answer.json(), code="invalid_content_type")
    body, content_type = form(("prompt", b"x", None))
    cut = await post(url, "/v1/images/edits", body[:-10], headers={"content-type": content_type})
    assert cut.status == 400
    assert_openai_error(cut.json(), code="invalid_multipart")


async def test_upload_larger_than_max_upload_bytes_is_413(url: str) -> None:
    body, content_type = form(("image", b"\x89PNG" + b"\0" * MAX_UPLOAD, "big.png"), ("prompt", b"x", None))
    answer = await raw_request(
        url,
        "POST",
        "/v1/images/edits",
        headers={"content-type": content_type, "authorization": f"Bearer {KEY}"},
        body=body,
    )
    assert answer.status == 413
    assert_openai_error(answer.json())
    # Generations are not uploads: the same size of JSON passes Relay's limits (the upstream refuses the prompt)
    big = json.dumps({"model": DALLE2, "prompt": "x" * MAX_UPLOAD}).encode()
    assert (await post(url, "/v1/images/generations", big)).status == 400


# ---- billing -------------------------------------------------------------------------------------------------


def micros(credits: float) -> int:
    return round(credits * 1_000_000)


async def test_request_log_cost_is_n_times_the_image_price(served: tuple[str, str]) -> None:
    url, store = served
    calls: dict[str, tuple[str, str, bytes, str | None]] = {
        "dalle2-256": (
            "/v1/images/generations",
            "json",
            json.dumps({"model": DALLE2, "prompt": "bill me", "n": 3, "size": "256x256"}).encode(),
            None,
        ),
        "dalle2-default": ("/v1/images/generations", "json", json.dumps({"prompt": "bill me", "n": 2}).encode(), None),
        "pixel": ("/v1/images/generations", "json", json.dumps({"model": PIXEL, "prompt": "bill me"}).encode(), None),
        "gpt": (
            "/v1/images/generations",
            "json",
            json.dumps({"model": GPT_IMAGE, "prompt": "bill me", "n": 2, "quality": "low"}).encode(),
            None,
        ),
        "gpt-stream": (
            "/v1/images/generations",
            "json",
            json.dumps({"model": GPT_IMAGE, "prompt": "bill me", "n": 2, "quality": "low", "stream": True}).encode(),
            None,
        ),
        "gemini": (
            "/v1/images/generations",
            "json",
            json.dumps({"model": GEMINI, "prompt": "bill me", "n": 2}).encode(),
            None,
        ),
        "edit": ("/v1/images/edits", "form", b"", None),
    }
    edit_body, edit_type = form(("image", png.png("x"), "x.png"), ("prompt", b"bill me", None), ("n", b"2", None))
    calls["edit"] = ("/v1/images/edits", "form", edit_body, edit_type)
    ids: dict[str, str] = {}
    answers: dict[str, Any] = {}
    for name, (path, _, body, content_type) in calls.items():
        headers = {"content-type": content_type} if content_type else None
        answer = await post(url, path, body, headers=headers)
        assert answer.status == 200, (name, answer.body)
        ids[name] = answer.headers[b"x-request-id"].decode()
        answers[name] = answer
    rows = await logged(store, ids)
    gpt_usage = answers["gpt"].json()["usage"]
    gemini_usage = answers["gemini"].json()["usage"]
    expected = {
        "dalle2-256": micros(3 * DALLE2_256_PRICE),
        "dalle2-default": micros(2 * DALLE2_PRICE),  # 1024x1024, the default size
        "pixel": micros(PIXEL_PRICE),  # priced by the name the client asked for
        "gpt": micros(2 * GPT_LOW_PRICE)
        + gpt_usage["input_tokens"] * GPT_INPUT
        + gpt_usage["output_tokens"] * GPT_OUTPUT,
        "gpt-stream": micros(2 * GPT_LOW_PRICE)
        + gpt_usage["input_tokens"] * 2 * GPT_INPUT  # each completed event reports its own image's tokens
        + gpt_usage["output_tokens"] * GPT_OUTPUT,
        "gemini": micros(2 * GEMINI_PRICE)
        + gemini_usage["input_tokens"] * GEMINI_INPUT
        + gemini_usage["output_tokens"] * GEMINI_OUTPUT,
        "edit": micros(2 * DALLE2_PRICE),
    }
    for name, cost in expected.items():
        row = rows[name]
        assert row.status == 200 and row.end_kind == "completed", (name, row)
        assert row.cost_micros == cost, (name, row.cost_micros, cost)
    assert rows["gpt"].output_tokens == 2 * OUTPUT_TOKENS["low"] and rows["gpt"].input_tokens > 0
    assert rows["gemini"].output_tokens == 2 * GEMINI_IMAGE_TOKENS and rows["gemini"].channel == "gem"
    assert rows["pixel"].upstream_model == "dall-e-2" and rows["pixel"].requested_model == PIXEL
    assert rows["dalle2-default"].requested_model == DALLE2
    assert rows["gpt-stream"].stream


async def test_a_quota_that_cannot_cover_n_images_is_402(served: tuple[str, str]) -> None:
    url, store = served
    three = json.dumps({"model": DALLE2, "prompt": "three", "n": 3}).encode()
    refused = await post(url, "/v1/images/generations", three, key=SMALL_KEY)
    assert refused.status == 402, refused.body
    assert_openai_error(refused.json(), code="insufficient_quota")
    two = json.dumps({"model": DALLE2, "prompt": "two", "n": 2}).encode()
    answer = await post(url, "/v1/images/generations", two, key=SMALL_KEY)
    assert answer.status == 200, answer.body
    await settled(store)
    report = await read(store, lambda tx: check_ledger(tx, "small"))
    assert report.spent == micros(2 * DALLE2_PRICE)
    assert report.balance == micros(SMALL_QUOTA) - micros(2 * DALLE2_PRICE)
    # What is left (0.01) cannot cover one more image
    one = json.dumps({"model": DALLE2, "prompt": "one"}).encode()
    assert (await post(url, "/v1/images/generations", one, key=SMALL_KEY)).status == 402

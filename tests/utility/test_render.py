"""``/v1/render`` through ``relay serve`` in front of ``relay mock-upstream``: a prompt (or ``input``) rendered by the
image channel as a generation (JSON or a form), reference images rendered as an edit, images billed, bad requests
and a chat-only channel refused in OpenAI's shape."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.mock.png import is_png, png
from tests.conftest import process
from tests.helpers import MOCK_ARGS

KEY = "sk-relay-render-tests"
ADMIN = "sk-admin-render-tests-0123456"


def relay_toml(upstream: str, store: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
log_interval = 0.05

[utility]
render_model = "gpt-image-1"

[[channels]]
name = "images"
type = "openai"
base_url = "{upstream}/v1"
models = ["dall-e-*", "gpt-image-*"]

[[channels]]
name = "claude"
type = "mock"
models = ["claude-*"]
[channels.mock]
dialect = "anthropic"

[[prices]]
model = "gpt-image-*"
image = 0.04

[[keys]]
name = "painter"
key = "{KEY}"

[[admin_keys]]
name = "root"
key = "{ADMIN}"
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("render")
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", f"sqlite:///{root}/relay.db"))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}"


def post(base: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(base + "/v1/render", headers={"authorization": f"Bearer {KEY}"}, timeout=20, **kwargs)


def images(reply: httpx.Response) -> list[bytes]:
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    return [base64.b64decode(item["b64_json"]) for item in data]


def test_input_renders_with_the_default_model_and_is_billed(base: str) -> None:
    reply = post(base, json={"input": "a red fox in the snow", "n": 2})
    made = images(reply)
    assert len(made) == 2 and all(is_png(image) for image in made) and made[0] != made[1]
    assert post(base, json={"prompt": "a red fox in the snow", "n": 2}).json()["data"] == reply.json()["data"]
    deadline = time.monotonic() + 10
    while (
        row := httpx.get(
            f"{base}/admin/v1/requests/{reply.headers['x-request-id']}", headers={"authorization": f"Bearer {ADMIN}"}
        )
    ).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    logged = row.json()
    assert logged["requested_model"] == "gpt-image-1" and logged["images"] == 2
    assert logged["cost_micros"] >= 80_000  # two images at 0.04, and the tokens (unpriced here)


def test_a_form_without_images_is_a_generation(base: str) -> None:
    made = images(
        post(
            base,
            files={
                "input": (None, "a lighthouse"),
                "n": (None, "3"),
                "model": (None, "dall-e-2"),
                "response_format": (None, "b64_json"),
            },
        )
    )
    assert len(made) == 3 and all(is_png(image) for image in made)


def test_reference_images_make_an_edit(base: str) -> None:
    reference = png("reference")
    edit = images(post(base, files={"image": ("ref.png", reference, "image/png"), "input": (None, "make it blue")}))
    generation = images(post(base, json={"prompt": "make it blue"}))
    assert len(edit) == 1 and is_png(edit[0])
    assert edit != generation  # the mock seeds an edit's image by its input image and endpoint


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "n": 11}, "n"),
        ({"prompt": "x", "url": "http://a"}, "url"),
    ],
)
def test_bad_requests(base: str, payload: dict[str, Any], param: str) -> None:
    reply = post(base, json=payload)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param


def test_a_chat_only_channel_is_refused(base: str) -> None:
    reply = post(base, json={"prompt": "x", "model": "claude-x"})
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "unsupported_model"

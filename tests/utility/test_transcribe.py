"""``/v1/transcribe`` through ``relay serve`` in front of ``relay mock-upstream``: a WAV upload transcribed by the
audio channel (the mock reads the text the WAV carries), ``instructions`` and ``language`` passed on, the seconds
billed, bad uploads, a ``url`` into loopback refused, a chat-only channel refused, a channel down (502)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.mock.audio_wav import wav
from tests.conftest import process
from tests.helpers import MOCK_ARGS

KEY = "sk-relay-transcribe-tests"
ADMIN = "sk-admin-transcribe-tests-0123"


def relay_toml(upstream: str, store: str, closed: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
log_interval = 0.05

[[channels]]
name = "audio"
type = "openai"
base_url = "{upstream}/v1"
models = ["whisper-1", "gpt-4o-transcribe"]

[[channels]]
name = "claude"
type = "mock"
models = ["claude-*"]
[channels.mock]
dialect = "anthropic"

[[channels]]
name = "down"
type = "openai"
base_url = "{closed}/v1"
models = ["whisper-down"]

[[prices]]
model = "whisper-*"
second = 0.0001

[[keys]]
name = "listener"
key = "{KEY}"

[[admin_keys]]
name = "root"
key = "{ADMIN}"
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("transcribe")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", f"sqlite:///{root}/relay.db", closed))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}"


def post(base: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {KEY}", **(headers or {})}
    return httpx.post(base + "/v1/transcribe", headers=headers, timeout=20, **kwargs)


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and "type" in error
    return error


def logged(base: str, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        found = httpx.get(f"{base}/admin/v1/requests/{request_id}", headers={"authorization": f"Bearer {ADMIN}"})
        if found.status_code == 200:
            return found.json()
        assert time.monotonic() < deadline, "the request did not reach the log"
        time.sleep(0.05)


def test_a_wav_upload_is_transcribed_and_billed_by_the_second(base: str) -> None:
    audio = wav("The quick brown fox jumps over the lazy dog", 1.0)
    reply = post(
        base,
        files={"file": ("talk.wav", audio, "audio/wav")},
        data={"model": "whisper-1", "language": "en", "instructions": "A pangram."},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "transcription" and body["model"] == "whisper-1" and body["language"] == "en"
    assert body["text"] == "The quick brown fox jumps over the lazy dog"
    seconds = body["usage"]["seconds"]
    assert seconds >= 1
    row = logged(base, reply.headers["x-request-id"])
    assert row["channel"] == "audio" and row["status"] == 200
    assert row["seconds"] == seconds
    assert row["cost_micros"] == round(seconds * 100)  # 0.0001 credits a second


def test_the_default_model_is_whisper_1(base: str) -> None:
    reply = post(base, files={"file": ("a.wav", wav("hello there", 1.0), "audio/wav")})
    assert reply.status_code == 200, reply.text
    assert reply.json()["model"] == "whisper-1" and reply.json()["text"] == "hello there"


def test_bad_uploads(base: str) -> None:
    assert openai_error(post(base, files={"model": (None, "whisper-1")}), 400)["param"] == "file"
    assert openai_error(post(base, data={"model": "whisper-1"}), 400)["param"] == "file"  # URL-encoded: no file
    assert openai_error(post(base, files={"file": ("a.wav", b"", "audio/wav")}), 400)["param"] == "file"
    openai_error(post(base, json={"model": "whisper-1"}), 400)
    openai_error(post(base, content=b"not a form", headers={"content-type": "multipart/form-data; boundary=x"}), 400)


def test_a_url_into_loopback_is_refused(base: str) -> None:
    error = openai_error(post(base, json={"url": f"{base}/healthz"}), 400)
    assert error["param"] in ("url", None)
    openai_error(post(base, json={"url": "http://169.254.169.254/latest/meta-data"}), 400)


def test_a_chat_only_channel_is_refused(base: str) -> None:
    reply = post(base, files={"file": ("a.wav", wav("hi", 1.0), "audio/wav")}, data={"model": "claude-x"})
    assert openai_error(reply, 400)["code"] == "unsupported_model"


def test_a_channel_down_is_a_502(base: str) -> None:
    reply = post(base, files={"file": ("a.wav", wav("hi", 1.0), "audio/wav")}, data={"model": "whisper-down"})
    openai_error(reply, 502)

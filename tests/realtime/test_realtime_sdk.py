"""OpenAI Realtime through ``relay serve`` to ``relay mock-upstream`` with the official ``openai`` SDK's client
(``client.realtime.connect``): text and audio responses arrive, each is billed (a request-log row of its own with
its tokens and cost, the key's balance down by that much) and the session has its row; the plain HTTP endpoints
(client secrets, beta sessions, WebRTC calls) are relayed; what is refused before the upgrade is plain HTTP."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.realtime.conftest import MODEL, balance, cost, key_of, rows
from tests.realtime.wsclient import RawClient, Rejected


def client(address: str, key: str) -> OpenAI:
    return OpenAI(api_key=key_of(key), base_url=f"http://{address}/v1", max_retries=0)


def usage_of(event: Any) -> dict[str, int]:
    usage = event.response.usage
    details, out = usage.input_token_details, usage.output_token_details
    return {
        "text_in": details.text_tokens,
        "cached_text": details.cached_tokens_details.text_tokens,
        "audio_in": details.audio_tokens,
        "cached_audio": details.cached_tokens_details.audio_tokens,
        "text_out": out.text_tokens,
        "audio_out": out.audio_tokens,
    }


def test_a_text_response_arrives_and_is_billed_as_it_happens(stack: tuple[str, str]) -> None:
    address, _ = stack
    before = balance(address, "sdk")
    usages = []
    with client(address, "sdk").realtime.connect(model=MODEL, max_retries=0) as conn:
        assert conn.recv().type == "session.created"
        conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        assert conn.recv().type == "session.updated"
        for turn in ("Say hello", "And again"):
            item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": turn}]}
            conn.conversation.item.create(item=item)
            conn.response.create()
            text = ""
            for event in conn:
                if event.type == "response.output_text.delta":
                    text += event.delta
                if event.type == "response.done":
                    break
            assert text == f"Echo: {turn}"
            assert event.response.status == "completed"
            usages.append(usage_of(event))
            # Settled as it happens: the response's row is written while the session is still open.
            assert rows(address, "sdk", len(usages))[-1]["cost_micros"] == cost(usages[-1])
    assert usages[1]["cached_text"] == usages[0]["text_in"] > 0  # the conversation the first saw, cached
    logged = rows(address, "sdk", 3)
    session, responses = logged[-1], logged[:2]
    assert (session["status"], session["end_kind"], session["input_tokens"], session["cost_micros"]) == (
        101,
        "completed",
        0,
        0,
    )
    for row, usage in zip(responses, usages, strict=True):
        assert row["status"] == 200 and row["channel"] == "rt" and row["requested_model"] == MODEL
        assert row["input_tokens"] == usage["text_in"] + usage["audio_in"]
        assert row["output_tokens"] == usage["text_out"] + usage["audio_out"]
        assert row["cached_tokens"] == usage["cached_text"] + usage["cached_audio"]
        assert row["request_id"].startswith(session["request_id"] + "-")
    assert before - balance(address, "sdk") == sum(cost(u) for u in usages)


def test_an_audio_response_is_billed_at_the_audio_prices(stack: tuple[str, str]) -> None:
    address, _ = stack
    before = balance(address, "audio")
    audio = b""
    with client(address, "audio").realtime.connect(model=MODEL, max_retries=0) as conn:
        assert conn.recv().type == "session.created"
        conn.input_audio_buffer.append(audio=base64.b64encode(bytes(9600)).decode())  # 200 ms: 2 tokens
        conn.input_audio_buffer.commit()
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "mock:chunks=3 hi"}]}
        conn.conversation.item.create(item=item)
        conn.response.create()
        for event in conn:
            if event.type == "response.output_audio.delta":
                audio += base64.b64decode(event.delta)
            if event.type == "response.done":
                break
    usage = usage_of(event)
    assert usage["audio_in"] == 2 and usage["audio_out"] == 6 and len(audio) == 3 * 4800
    row = rows(address, "audio", 2)[0]
    assert row["cost_micros"] == cost(usage) and cost(usage) > cost({**usage, "audio_in": 0, "audio_out": 0})
    assert before - balance(address, "audio") == cost(usage)


def test_the_in_process_mock_channel_speaks_realtime(stack: tuple[str, str]) -> None:
    address, _ = stack
    with client(address, "sdk").realtime.connect(model="mock-realtime", max_retries=0) as conn:
        assert conn.recv().session.model == "mock-realtime"
        conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "in process"}]}
        conn.conversation.item.create(item=item)
        conn.response.create()
        text = ""
        for event in conn:
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.done":
                break
    assert text == "Echo: in process"
    assert rows(address, "sdk", 5)[-2]["channel"] == "inproc"


def test_client_secrets_sessions_and_calls_are_relayed(stack: tuple[str, str]) -> None:
    address, _ = stack
    secret = client(address, "http").realtime.client_secrets.create(session={"type": "realtime", "model": MODEL})
    assert secret.value.startswith("ek_") and secret.session.model == MODEL
    headers = {"authorization": f"Bearer {key_of('http')}"}
    beta = httpx.post(f"http://{address}/v1/realtime/sessions", json={"model": MODEL}, headers=headers, timeout=10)
    assert beta.status_code == 200 and beta.json()["client_secret"]["value"].startswith("ek_")
    offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    answer = httpx.post(
        f"http://{address}/v1/realtime/calls",
        params={"model": MODEL},
        content=offer,
        headers={**headers, "content-type": "application/sdp"},
        timeout=10,
    )
    assert answer.status_code == 201 and answer.headers["content-type"] == "application/sdp"
    assert answer.headers["location"] == "/v1/realtime/calls/rtc_mock0001"  # the call's id, for its control
    assert answer.text.startswith("v=0") and "m=audio" in answer.text
    refused = httpx.post(
        f"http://{address}/v1/realtime/calls", content=offer, headers={**headers, "content-type": "text/plain"}
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_content_type"
    logged = rows(address, "http", 3)  # the refusal came before the key was read: no row of the key's
    assert [r["status"] for r in logged] == [200, 200, 201] and all(r["cost_micros"] == 0 for r in logged)


def test_a_plain_get_is_told_to_upgrade(stack: tuple[str, str]) -> None:
    address, _ = stack
    answer = httpx.get(
        f"http://{address}/v1/realtime?model={MODEL}", headers={"authorization": f"Bearer {key_of('sdk')}"}
    )
    assert answer.status_code == 426 and answer.json()["error"]["code"] == "websocket_required"
    assert answer.headers["upgrade"] == "websocket"


@pytest.mark.parametrize(
    ("key", "query", "status", "code"),
    [
        ("nobody", "model=gpt-realtime", 401, "invalid_api_key"),
        ("narrow", "model=gpt-realtime-mini", 403, "model_not_allowed"),
        ("sdk", "model=claude-1", 404, "model_not_found"),
        ("sdk", "", 400, None),
    ],
)
async def test_a_handshake_refused_before_the_upgrade_is_plain_http_in_openai_shape(
    stack: tuple[str, str], key: str, query: str, status: int, code: str | None
) -> None:
    address, _ = stack
    with pytest.raises(Rejected) as refused:
        await RawClient.connect(address, f"/v1/realtime?{query}", [("authorization", f"Bearer {key_of(key)}")])
    assert refused.value.status == status and refused.value.json()["error"]["code"] == code


def test_the_sdk_sees_a_refused_session_as_an_error(stack: tuple[str, str]) -> None:
    address, _ = stack
    with pytest.raises(Exception) as raised:  # the websockets library's InvalidStatus, through the SDK
        with client(address, "nobody").realtime.connect(model=MODEL, max_retries=0) as conn:
            conn.recv()
    assert "401" in str(raised.value)

"""Gemini Live through ``relay serve`` to ``relay mock-upstream`` with the official ``google-genai`` SDK
(``client.aio.live.connect``, asyncio, run in the test's thread): a text turn and an audio turn arrive and are
billed from their ``usageMetadata`` (a row each, the key's balance down by as much), the in-process mock channel
speaks Live too, and what is refused after the upgrade (the model, the quota) closes the session with 1008 and a
reason the SDK shows; a malformed setup is 1007, a wrong key a 401 before the upgrade.

The SDK dials ``wss://`` whenever it has an API key; Relay serves plain ``ws://`` here (TLS is a terminator's job
in front of it), so ``sdk`` points the SDK's WebSocket at ``ws://`` and drops its TLS context: every message is
still the SDK's own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google import genai
from google.genai import _api_client, errors, types
from websockets.exceptions import ConnectionClosed

from tests.realtime.conftest import POOR_QUOTA, balance, cost, key_of, rows
from tests.realtime.wsclient import RawClient, Rejected

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
_websocket_base_url = _api_client.BaseApiClient._websocket_base_url


def sdk(address: str, api_key: str) -> genai.Client:
    client = genai.Client(api_key=api_key, http_options=types.HttpOptions(base_url=f"http://{address}"))
    api = client._api_client
    api._websocket_base_url = lambda options=None: _websocket_base_url(api, options).replace("wss://", "ws://", 1)  # type: ignore[method-assign]
    api._websocket_ssl_ctx = {}
    return client


def converse(address: str, api_key: str, model: str, turns: list[str], *, audio: bool = False) -> list[dict[str, Any]]:
    """Each turn said (text, or 200 ms of audio before the text when ``audio``), its answer read to turnComplete:
    [{"text", "audio" bytes, "usage"}] per turn."""

    async def run() -> list[dict[str, Any]]:
        answers = []
        config = {"response_modalities": ["AUDIO" if audio else "TEXT"]}
        async with sdk(address, api_key).aio.live.connect(model=model, config=config) as session:
            for turn in turns:
                if audio:
                    blob = types.Blob(data=bytes(6400), mime_type="audio/pcm;rate=16000")
                    await session.send_realtime_input(audio=blob)
                parts = [{"text": turn}]
                await session.send_client_content(turns={"role": "user", "parts": parts}, turn_complete=True)
                answer: dict[str, Any] = {"text": "", "audio": b"", "usage": None}
                async for message in session.receive():
                    answer["text"] += message.text or ""
                    answer["audio"] += message.data or b""
                    if message.usage_metadata is not None:
                        answer["usage"] = message.usage_metadata
                answers.append(answer)
        return answers

    return asyncio.run(run())


def usage_of(metadata: Any) -> dict[str, int]:
    def modality(details: Any, name: str) -> int:
        return sum(d.token_count or 0 for d in details or () if d.modality.name == name)

    return {
        "text_in": modality(metadata.prompt_tokens_details, "TEXT"),
        "cached_text": modality(metadata.cache_tokens_details, "TEXT"),
        "audio_in": modality(metadata.prompt_tokens_details, "AUDIO"),
        "cached_audio": modality(metadata.cache_tokens_details, "AUDIO"),
        "text_out": modality(metadata.response_tokens_details, "TEXT"),
        "audio_out": modality(metadata.response_tokens_details, "AUDIO"),
    }


def test_text_turns_arrive_and_each_is_billed_from_its_usage_metadata(stack: tuple[str, str]) -> None:
    address, _ = stack
    before = balance(address, "live")
    answers = converse(address, key_of("live"), "gemini-live", ["Hello live", "once more"])
    assert [a["text"] for a in answers] == ["Echo: Hello live", "Echo: once more"]
    usages = [usage_of(a["usage"]) for a in answers]
    assert usages[1]["cached_text"] == usages[0]["text_in"] > 0
    first, second, session = rows(address, "live", 3)
    for row, usage in ((first, usages[0]), (second, usages[1])):
        assert row["status"] == 200 and row["channel"] == "gem" and row["cost_micros"] == cost(usage)
    assert (session["status"], session["end_kind"], session["cost_micros"]) == (101, "completed", 0)
    assert before - balance(address, "live") == cost(usages[0]) + cost(usages[1])


def test_an_audio_turn_is_billed_at_the_audio_prices(stack: tuple[str, str]) -> None:
    address, _ = stack
    [answer] = converse(address, key_of("live"), "gemini-live", ["mock:chunks=3 speak"], audio=True)
    usage = usage_of(answer["usage"])
    assert usage["audio_in"] == 2 and usage["audio_out"] == 6 and len(answer["audio"]) == 3 * 4800
    assert rows(address, "live", 5)[-2]["cost_micros"] == cost(usage)


def test_the_in_process_mock_channel_speaks_live(stack: tuple[str, str]) -> None:
    address, _ = stack
    [answer] = converse(address, key_of("live-inproc"), "mock-gemini-live", ["in process"])
    assert answer["text"] == "Echo: in process"
    assert rows(address, "live-inproc", 2)[0]["channel"] == "inproc-gemini"


def test_a_model_the_key_may_not_use_closes_with_1008_after_the_upgrade(stack: tuple[str, str]) -> None:
    address, _ = stack
    with pytest.raises(errors.APIError) as refused:
        converse(address, key_of("live-narrow"), "gemini-live-pro", ["hi"])
    assert refused.value.code == 1008 and "may not use the model" in str(refused.value)
    [session] = rows(address, "live-narrow", 1)
    assert (session["status"], session["error_kind"]) == (403, "permission")


def test_a_key_that_runs_out_is_closed_with_1008_after_its_turn(stack: tuple[str, str]) -> None:
    address, _ = stack
    # the close comes after the first turn: the SDK meets it sending the second (or reading, if it got that far)
    with pytest.raises((errors.APIError, ConnectionClosed)) as refused:
        converse(address, key_of("live-poor"), "gemini-live", ["one", "two"])
    assert "1008" in str(refused.value) and "quota" in str(refused.value)
    turn, session = rows(address, "live-poor", 2)
    assert (session["end_kind"], session["error_kind"]) == ("quota", "quota")
    assert balance(address, "live-poor") == round(POOR_QUOTA * 1_000_000) - turn["cost_micros"]


async def test_a_malformed_setup_closes_with_1007_and_a_wrong_key_is_a_401(stack: tuple[str, str]) -> None:
    address, _ = stack
    ws = await RawClient.connect(address, PATH, [("x-goog-api-key", key_of("live"))])
    await ws.send({"setup": {"generationConfig": {}}})  # no model
    assert await ws.closed() == 1007 and "model" in ws.close_reason
    with pytest.raises(Rejected) as wrong:
        await RawClient.connect(address, f"{PATH}?key=sk-not-a-key")
    assert wrong.value.status == 401 and wrong.value.json()["error"]["status"] == "UNAUTHENTICATED"

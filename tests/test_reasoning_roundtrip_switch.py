"""A conversation that moves to another channel: wrapped proofs go to the dialect that made them, and no other.

Turn 1 runs on a channel of one upstream dialect (its answer carries that provider's proofs, wrapped by Relay
for the client); turn 2 sends the history back to a channel of another dialect. Another provider's proof is
dropped there, never forwarded (wrapped or not), and the request still succeeds. When turn 2's channel speaks
the client's own dialect, the request would pass through byte for byte: its envelopes are taken out first,
every other field untouched.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from relay.dialects import envelope
from relay.mock import signing
from tests.conftest import KEY
from tests.test_reasoning_roundtrip import WEATHER, Rig, proofs, serving

HEADERS = {"authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with serving() as served:
        yield served


DIALECT_OF = {"chat-1": "openai_chat", "resp-1": "openai_responses", "claude-1": "anthropic", "gemini-1": "gemini"}


def request(client: str, model: str, history: list[Any]) -> tuple[str, dict[str, Any]]:
    """A client's request (tools offered, reasoning asked for) with ``history``."""
    if client == "openai_chat":
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
        return "/v1/chat/completions", {
            "model": model,
            "messages": history,
            "tools": tools,
            "reasoning_effort": "low",
        }
    if client == "openai_responses":
        return "/v1/responses", {
            "model": model,
            "input": history,
            "tools": [{"type": "function", "name": "get_weather", "parameters": WEATHER}],
            "reasoning": {"effort": "low", "summary": "auto"},
            "include": ["reasoning.encrypted_content"],
            "store": False,
        }
    if client == "anthropic":
        return "/v1/messages", {
            "model": model,
            "max_tokens": 4096,
            "messages": history,
            "tools": [{"name": "get_weather", "input_schema": WEATHER}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "metadata": {"user_id": "u-1"},  # no IR slot: passes through on an Anthropic channel
        }
    return f"/v1beta/models/{model}:generateContent", {
        "contents": history,
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": WEATHER}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}},
        "safetySettings": [],  # no IR slot: passes through on a Gemini channel
    }


def question(client: str) -> Any:
    if client == "anthropic":  # with a cache breakpoint, which only a passthrough keeps
        return {"role": "user", "content": [{"type": "text", "text": "Oslo", "cache_control": {"type": "ephemeral"}}]}
    if client == "gemini":
        return {"role": "user", "parts": [{"text": "Oslo"}]}
    return {"role": "user", "content": "Oslo"}


def answered(client: str, answer: dict[str, Any]) -> list[Any]:
    """The history entries a client adds for an answer with one tool call: the answer as it came, the result."""
    if client == "openai_chat":
        message = answer["choices"][0]["message"]
        (call,) = message["tool_calls"]
        return [message, {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
    if client == "openai_responses":
        (call,) = [item for item in answer["output"] if item["type"] == "function_call"]
        return [*answer["output"], {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]
    if client == "anthropic":
        (call,) = [block for block in answer["content"] if block["type"] == "tool_use"]
        result = {"type": "tool_result", "tool_use_id": call["id"], "content": "sunny"}
        return [{"role": "assistant", "content": answer["content"]}, {"role": "user", "content": [result]}]
    content = answer["candidates"][0]["content"]
    (call,) = [part["functionCall"] for part in content["parts"] if "functionCall" in part]
    result = {"functionResponse": {"id": call["id"], "name": call["name"], "response": {"result": "sunny"}}}
    return [content, {"role": "user", "parts": [result]}]


def reply(client: str, answer: dict[str, Any]) -> str:
    if client == "openai_chat":
        return answer["choices"][0]["message"]["content"]
    if client == "openai_responses":
        return "".join(c["text"] for item in answer["output"] if item["type"] == "message" for c in item["content"])
    if client == "anthropic":
        return "".join(block["text"] for block in answer["content"] if block["type"] == "text")
    return "".join(p.get("text", "") for p in answer["candidates"][0]["content"]["parts"] if not p.get("thought"))


async def two_turns(rig: Rig, client: str, first: str, then: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Turn 1 on ``first``, turn 2 (the tool's result) on ``then``: the bodies upstream ``then`` and
    ``first`` got."""
    async with httpx.AsyncClient(base_url=rig.url, timeout=10, headers=HEADERS) as http:
        history = [question(client)]
        path, body = request(client, first, history)
        response = await http.post(path, json=body)
        assert response.status_code == 200, response.text
        wrapped = [m for m in re.findall(rb'"(UkxZ[^"]+)"', response.content)]
        assert wrapped and all(envelope.unwrap(w.decode()).dialect == DIALECT_OF[first] for w in wrapped)
        history += answered(client, response.json())
        path, body = request(client, then, history)
        response = await http.post(path, json=body)
        assert response.status_code == 200, response.text
        assert reply(client, response.json()) == "Tool said: sunny"
    sent = orjson.loads(rig.upstream.exchanges[-1].body)
    return sent, {"answer": rig.upstream.exchanges[0].answer}


#: (client, the first channel's model, the second's): each client meets each proof-making dialect once.
CONVERTED = [
    ("openai_chat", "gemini-1", "resp-1"),
    ("openai_chat", "resp-1", "claude-1"),
    ("openai_responses", "gemini-1", "claude-1"),
    ("openai_responses", "claude-1", "gemini-1"),
    ("anthropic", "resp-1", "gemini-1"),
    ("anthropic", "gemini-1", "chat-1"),
    ("gemini", "resp-1", "claude-1"),
    ("gemini", "claude-1", "resp-1"),
]


@pytest.mark.parametrize(("client", "first", "then"), CONVERTED, ids=[f"{c}-{a}-then-{b}" for c, a, b in CONVERTED])
async def test_a_wrapped_proof_sent_to_another_dialect_is_dropped(rig: Rig, client: str, first: str, then: str) -> None:
    sent, before = await two_turns(rig, client, first, then)
    raw = orjson.dumps(sent)
    assert b"UkxZ" not in raw
    made = proofs(DIALECT_OF[first], before["answer"])
    assert made and not any(p in raw for p in made)  # the first provider's proofs reach no other


#: (client, the first channel's model): turn 2 goes to the channel of the client's own dialect.
PASSTHROUGH = [
    ("openai_chat", "claude-1", "chat-1"),
    ("openai_responses", "claude-1", "resp-1"),
    ("anthropic", "gemini-1", "claude-1"),
    ("gemini", "resp-1", "gemini-1"),
]


@pytest.mark.parametrize(("client", "first", "then"), PASSTHROUGH, ids=[f"{c}-{a}-then-{b}" for c, a, b in PASSTHROUGH])
async def test_a_passthrough_with_envelopes_takes_them_out(rig: Rig, client: str, first: str, then: str) -> None:
    sent, before = await two_turns(rig, client, first, then)
    raw = orjson.dumps(sent)
    assert b"UkxZ" not in raw
    made = proofs(DIALECT_OF[first], before["answer"])
    assert made and not any(p in raw for p in made)
    if client == "anthropic":
        # every other field as the client sent it: the cache breakpoint, metadata; thinking turned off, since
        # the calling turn lost its only thinking block (the Gemini call's proof)
        assert sent["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
        assert sent["metadata"] == {"user_id": "u-1"} and "thinking" not in sent
        assert [b["type"] for b in sent["messages"][1]["content"]] == ["tool_use"]
    elif client == "gemini":
        assert sent["safetySettings"] == []
        model_parts = sent["contents"][1]["parts"]
        assert not any(p.get("thought") for p in model_parts)  # the Responses reasoning went with its proof
        (call,) = [p for p in model_parts if "functionCall" in p]
        assert call["thoughtSignature"] in signing.GEMINI_SKIP  # Gemini 3 wants one on a call it did not make
    elif client == "openai_chat":
        assert "reasoning_details" not in sent["messages"][1]
        assert sent["messages"][1]["reasoning_content"].startswith("Thinking about: ")  # the text, as shown
    else:
        assert [item.get("type", "message") for item in sent["input"]] == [
            "message",
            "function_call",
            "function_call_output",
        ]


async def test_an_altered_envelope_is_refused_in_anthropics_own_words(rig: Rig) -> None:
    """Claude Code recognises this message and retries without thinking."""
    async with httpx.AsyncClient(base_url=rig.url, timeout=10, headers=HEADERS) as http:
        history = [question("anthropic")]
        path, body = request("anthropic", "gemini-1", history)
        answer = (await http.post(path, json=body)).json()
        content = answer["content"]
        (thinking,) = [i for i, b in enumerate(content) if b["type"] == "thinking" and b["thinking"] == ""]
        signature = content[thinking]["signature"]
        content[thinking]["signature"] = signature[:40] + ("A" if signature[40] != "A" else "B") + signature[41:]
        history += answered("anthropic", {"content": content})
        for model in ("gemini-1", "claude-1"):  # converted, and on the passthrough
            path, body = request("anthropic", model, history)
            response = await http.post(path, json=body)
            assert response.status_code == 400, response.text
            assert response.json()["error"] == {
                "type": "invalid_request_error",
                "message": f"messages.1.content.{thinking}: Invalid `signature` in `thinking` block",
            }
    assert len([e for e in rig.upstream.exchanges if e.answer]) == 1  # neither reached the upstream


@pytest.mark.parametrize("client", ["openai_chat", "openai_responses", "gemini"])
async def test_an_altered_envelope_is_a_400_naming_its_field(rig: Rig, client: str) -> None:
    async with httpx.AsyncClient(base_url=rig.url, timeout=10, headers=HEADERS) as http:
        history = [question(client)]
        path, body = request(client, "claude-1", history)
        data = (await http.post(path, json=body)).content
        (wrapped,) = set(re.findall(rb'"(UkxZ[^"]+)"', data))
        broken = wrapped[:30] + (b"A" if wrapped[30:31] != b"A" else b"B") + wrapped[31:]
        history += answered(client, orjson.loads(data.replace(wrapped, broken)))
        for model in (
            "gemini-1",
            {"openai_chat": "chat-1", "openai_responses": "resp-1", "gemini": "gemini-1"}[client],
        ):
            path, body = request(client, model, history)
            response = await http.post(path, json=body)
            assert response.status_code == 400, response.text
            text = response.text
            assert "reasoning envelope" in text and "altered" in text
            if client != "gemini":
                param = response.json()["error"]["param"]
                assert param.endswith(("encrypted_content", ".signature")), param


async def test_counting_a_passthrough_with_envelopes_takes_them_out(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.url, timeout=10, headers=HEADERS) as http:
        history = [question("anthropic")]
        path, body = request("anthropic", "gemini-1", history)
        history += answered("anthropic", (await http.post(path, json=body)).json())
        _, body = request("anthropic", "claude-1", history)
        del body["max_tokens"], body["metadata"]
        response = await http.post("/v1/messages/count_tokens", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["input_tokens"] > 0
    counted = rig.upstream.exchanges[-1]
    assert counted.path.endswith("/count_tokens") and b"UkxZ" not in counted.body

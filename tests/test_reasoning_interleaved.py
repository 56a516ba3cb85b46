"""Interleaved thinking with tools, end to end: one agent turn of several steps through every pair.

One agent turn — reasoning, a call, its result, reasoning, another call, its result, … then text — runs through
Relay for each client dialect's official SDK against each upstream dialect, same-dialect pairs as controls,
whole and streamed. The prompt's ``mock:rounds=3`` makes the mock call a tool after each result until three came
back (docs/mock.md); each step reasons about the last result, so each step's proof is its own: an Anthropic
thinking block and its signature, a Gemini ``thoughtSignature`` on each call, a Responses reasoning item with its
``encrypted_content`` (the Anthropic client asks for ``interleaved-thinking`` as Claude Code does). The client
sends back exactly what came, plus each result, as its SDK's users do. Every step answers 200 (the SDKs raise
otherwise), the last says ``Tool said: …``, each upstream request carries every proof the upstream made before,
and the last one holds the whole turn, read as the provider reads it: each step's proof, native, in its place.

Relay and the capturing mock of tests/test_reasoning_roundtrip.py serve the whole module, started once in a
thread of their own.
"""

from __future__ import annotations

import base64
import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import orjson
import pytest
import trio
from google import genai
from google.genai import types

from relay.mock import signing
from tests.conftest import KEY
from tests.test_reasoning_roundtrip import (
    MODELS,
    WEATHER,
    Exchange,
    Rig,
    chat_answer,
    gemini_answer,
    proofs,
    serving,
)

CLIENTS = ("openai_chat", "openai_responses", "anthropic", "gemini")
PAIRS = [(client, model) for client in CLIENTS for model in MODELS]
ROUNDS = 3
PROMPT = f"Weather in Oslo, then wherever it leads mock:rounds={ROUNDS}"
#: What the upstream reasons about at each step: the question, then each result (``mock:rounds``).
STEPS = [f"Thinking about: {PROMPT}", *(f"Thinking about: {n}" for n in ("sunny 1", "sunny 2", "sunny 3"))]
#: Claude Code's beta for thinking between tool calls.
INTERLEAVED = {"anthropic-beta": "interleaved-thinking-2025-05-14"}


def result(step: int) -> str:
    """The tool's result at ``step`` (from 1): each differs, so each next step reasons about something new."""
    return f"sunny {step}"


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    """One Relay in front of one capturing mock for every test here, their trio loop in a thread of its own."""
    started: queue.Queue[tuple[Rig, trio.lowlevel.TrioToken, trio.Event] | BaseException] = queue.Queue()

    async def serve() -> None:
        try:
            stop = trio.Event()
            async with serving() as served:
                started.put((served, trio.lowlevel.current_trio_token(), stop))
                await stop.wait()
        except BaseException as exc:
            started.put(exc)
            raise

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    up = started.get(timeout=10)
    if isinstance(up, BaseException):
        raise up
    served, token, stop = up
    try:
        yield served
    finally:
        trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(timeout=10)


# ---- one agent turn, as each SDK's users write it -----------------------------------------------------------


def chat_turn(url: str, model: str, stream: bool) -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    messages: list[Any] = [{"role": "user", "content": PROMPT}]

    with client:
        for step in range(1, ROUNDS + 2):
            message = chat_answer(client, model, messages, tools, stream)
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                return message.content
            messages += [{"role": "tool", "tool_call_id": c.id, "content": result(step)} for c in message.tool_calls]
    raise AssertionError("the turn did not end")


def responses_turn(url: str, model: str, stream: bool) -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": False}]
    items: list[Any] = [{"role": "user", "content": PROMPT}]

    def send() -> list[dict[str, Any]]:
        args = {
            "model": model,
            "input": items,
            "tools": tools,
            "reasoning": {"effort": "low", "summary": "auto"},
            "include": ["reasoning.encrypted_content"],
            "store": False,
        }
        if not stream:
            return [item.model_dump(exclude_none=True) for item in client.responses.create(**args).output]
        return [  # as Codex keeps them: each finished output item
            event.item.model_dump(exclude_none=True)
            for event in client.responses.create(**args, stream=True)
            if event.type == "response.output_item.done"
        ]

    with client:
        for step in range(1, ROUNDS + 2):
            output = send()
            items += output
            calls = [item for item in output if item["type"] == "function_call"]
            if not calls:
                return "".join(c["text"] for item in output if item["type"] == "message" for c in item["content"])
            items += [{"type": "function_call_output", "call_id": c["call_id"], "output": result(step)} for c in calls]
    raise AssertionError("the turn did not end")


def anthropic_turn(url: str, model: str, stream: bool) -> str:
    client = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
    tools = [{"name": "get_weather", "input_schema": WEATHER}]
    messages: list[Any] = [{"role": "user", "content": PROMPT}]

    def send() -> Any:
        args = {
            "model": model,
            "max_tokens": 4096,
            "messages": messages,
            "tools": tools,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "extra_headers": INTERLEAVED,
        }
        if not stream:
            return client.messages.create(**args)
        with client.messages.stream(**args) as events:
            return events.get_final_message()

    with client:
        for step in range(1, ROUNDS + 2):
            message = send()
            messages.append({"role": "assistant", "content": message.content})
            calls = [block for block in message.content if block.type == "tool_use"]
            if not calls:
                return "".join(block.text for block in message.content if block.type == "text")
            results = [{"type": "tool_result", "tool_use_id": c.id, "content": result(step)} for c in calls]
            messages.append({"role": "user", "content": results})
    raise AssertionError("the turn did not end")


def gemini_turn(url: str, model: str, stream: bool) -> str:
    options = types.HttpOptions(base_url=url, api_version="v1beta", timeout=10_000)
    client = genai.Client(api_key=KEY, vertexai=False, http_options=options)
    tool = types.Tool(
        function_declarations=[types.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER)]
    )
    thinking = types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
    config = types.GenerateContentConfig(tools=[tool], thinking_config=thinking)
    contents = [types.Content(role="user", parts=[types.Part(text=PROMPT)])]

    with client:
        for step in range(1, ROUNDS + 2):
            content = gemini_answer(client, model, contents, config, stream)
            contents.append(content)
            calls = [part.function_call for part in content.parts or [] if part.function_call]
            if not calls:
                return "".join(p.text or "" for p in content.parts or [] if not p.thought)
            answers = [
                types.Part(
                    function_response=types.FunctionResponse(id=c.id, name=c.name, response={"result": result(step)})
                )
                for c in calls
            ]
            contents.append(types.Content(role="user", parts=answers))
    raise AssertionError("the turn did not end")


TURNS: dict[str, Callable[[str, str, bool], str]] = {
    "openai_chat": chat_turn,
    "openai_responses": responses_turn,
    "anthropic": anthropic_turn,
    "gemini": gemini_turn,
}


# ---- what the upstream must get back ------------------------------------------------------------------------


def _native(dialect: str, found: set[bytes]) -> set[bytes]:
    """Proofs made comparable: a Gemini signature as its bytes (google-genai sends it back URL-safe)."""
    if dialect != "gemini":
        return found
    return {base64.urlsafe_b64decode(p.replace(b"+", b"-").replace(b"/", b"_") + b"=" * (-len(p) % 4)) for p in found}


def assert_every_step_came_back(exchanges: list[Exchange], dialect: str) -> None:
    assert len(exchanges) == ROUNDS + 1, [e.path for e in exchanges]
    made = 0
    for before, after in itertools.pairwise(exchanges):
        assert b"UkxZ" not in after.body  # never Relay's envelope: only the provider's own values
        sent = _native(dialect, proofs(dialect, before.answer))
        made += len(sent)
        missing = sent - _native(dialect, proofs(dialect, orjson.dumps(orjson.loads(after.body))))
        assert not missing, (missing, after.body)
    assert made or dialect == "openai_chat"  # reasoning was asked: the upstream made proofs
    _check_turn(dialect, orjson.loads(exchanges[-1].body))


def _check_turn(dialect: str, body: dict[str, Any]) -> None:
    """The last request's history holds the whole turn: each step with its own reasoning and proof, in order."""
    steps = STEPS[:ROUNDS]
    if dialect == "anthropic":
        turns = [m["content"] for m in body["messages"] if m["role"] == "assistant"]
        assert [[b["type"] for b in turn] for turn in turns] == [["thinking", "tool_use"]] * ROUNDS
        assert [turn[0]["thinking"] for turn in turns] == steps
        assert all(signing.thinking_signature_ok(t[0]["thinking"], t[0]["signature"]) for t in turns)
        assert body["thinking"]["type"] == "enabled"
    elif dialect == "gemini":
        turns = [c["parts"] for c in body["contents"] if c.get("role") == "model"]
        calls = [p for parts in turns for p in parts if "functionCall" in p]
        assert len(calls) == ROUNDS and all("functionCall" in parts[-1] for parts in turns)
        for part in calls:
            args = part["functionCall"]["args"]
            assert part["thoughtSignature"] not in signing.GEMINI_SKIP
            assert signing.call_signature_ok(part["functionCall"]["name"], args, part["thoughtSignature"])
        assert len({p["thoughtSignature"] for p in calls}) == ROUNDS
    elif dialect == "openai_responses":
        items = body["input"]
        calls = [i for i, item in enumerate(items) if item.get("type") == "function_call"]
        assert len(calls) == ROUNDS and len({items[i]["id"] for i in calls}) == ROUNDS
        for i in calls:  # each call with its own fc_ id, right after its own reasoning item
            assert items[i]["id"].startswith("fc_")
            assert items[i - 1]["type"] == "reasoning" and items[i - 1]["id"].startswith("rs_")
        assert [signing.decrypted_reasoning(items[i - 1]["encrypted_content"]) for i in calls] == steps
    else:
        turns = [m for m in body["messages"] if m["role"] == "assistant"]
        assert [m["reasoning_content"] for m in turns] == steps
        assert all(len(m["tool_calls"]) == 1 for m in turns)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("client", "model"), PAIRS, ids=[f"{c}-{m}" for c, m in PAIRS])
def test_an_interleaved_turn_gives_each_step_its_proof_back(rig: Rig, client: str, model: str, stream: bool) -> None:
    rig.upstream.exchanges.clear()
    assert TURNS[client](rig.url, model, stream) == f"Tool said: {result(ROUNDS)}"
    assert_every_step_came_back([e for e in rig.upstream.exchanges if e.answer], MODELS[model])
